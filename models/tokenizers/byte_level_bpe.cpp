// GPT-2-style byte-level BPE, as SmolLM2, LLaMA 3 and GPT-2 use it.
//
// Every byte of the text is first replaced by a printable codepoint (GPT-2's table: the
// printable Latin-1 bytes stand for themselves, the other 68 move to U+0100 onwards, so
// space is 'Ġ' and newline 'Ċ'). Vocabulary pieces are spelled in that alphabet, so any
// byte string can be encoded with no unknown tokens. The regex pre-tokenizer cuts the text
// into words; within a word, merges apply in the order of the merges list.
#include <cstdint>
#include <fmt/format.h>

#include <array>
#include <unordered_map>

#include "core/error.h"
#include "models/tokenizers/bpe_merge.h"
#include "models/tokenizers/kinds.h"
#include "models/tokenizers/pretokenizer.h"
#include "models/tokenizers/vocabulary.h"

namespace zeroth {
namespace {

// GPT-2's byte <-> printable-codepoint table.
struct ByteAlphabet {
  std::array<std::string, 256> byte_to_char;  // UTF-8 of the codepoint standing for a byte
  std::array<int16_t, 512> codepoint_to_byte; // -1 where no byte maps there

  ByteAlphabet() {
    codepoint_to_byte.fill(-1);
    uint32_t next_free = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? b : next_free++;
      append_utf8(byte_to_char[b], cp);
      codepoint_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet table;  // immutable after construction
  return table;
}

// Decodes one UTF-8 codepoint at `pos` (advancing it); -1 for an invalid sequence.
int64_t next_codepoint(std::string_view s, size_t& pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  const size_t n = utf8_sequence_length(lead);
  if (n == 1 || pos + n > s.size()) {
    ++pos;
    return lead < 0x80 ? lead : -1;
  }
  uint32_t cp = lead & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  pos += n;
  return cp;
}

class ByteLevelBpe final : public VocabularyTokenizer {
 public:
  explicit ByteLevelBpe(const TokenizerSpec& spec)
      : VocabularyTokenizer(spec),
        pre_(spec.pre_regexes.empty() ? pretokenizer_patterns(spec.pre) : spec.pre_regexes),
        add_space_prefix_(spec.add_space_prefix.value_or(false)),
        pre_name_(spec.pre_regexes.empty() ? spec.pre : "custom") {
    merges_.reserve(spec.merges.size());
    for (size_t rank = 0; rank < spec.merges.size(); ++rank) add_merge(spec.merges[rank], rank);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    std::vector<int32_t> ids;
    if (add_bos) {
      ZEROTH_CHECK(bos_ >= 0, "encode: {} has no BOS token; call encode with add_bos = false",
                   source_);
      ids.push_back(bos_);
    }
    for (const TextSegment& seg : vocab_.split_special(text)) {
      if (seg.special >= 0) {
        ids.push_back(seg.special);
      } else if (add_space_prefix_ && seg.text.data() == text.data() && seg.text[0] != ' ') {
        std::string prefixed(1, ' ');
        prefixed.append(seg.text);
        encode_plain(prefixed, ids);
      } else {
        encode_plain(seg.text, ids);
      }
    }
    if (add_eos) {
      ZEROTH_CHECK(eos_ >= 0, "encode: {} has no EOS token; call encode with add_eos = false",
                   source_);
      ids.push_back(eos_);
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) out += decode_piece(-1, id);
    return out;
  }

  std::string decode_piece(int32_t /*prev*/, int32_t id) const override {
    const TokenType t = vocab_.type(id);
    const std::string& piece = vocab_.piece(id);
    if (t == TokenType::kControl) return {};
    // Added tokens are stored as the text itself, not in the byte alphabet.
    if (t == TokenType::kUserDefined) return piece;
    const ByteAlphabet& alpha = byte_alphabet();
    std::string out;
    out.reserve(piece.size());
    for (size_t pos = 0; pos < piece.size();) {
      const size_t start = pos;
      const int64_t cp = next_codepoint(piece, pos);
      if (cp >= 0 && cp < 512 && alpha.codepoint_to_byte[cp] >= 0) {
        out += static_cast<char>(alpha.codepoint_to_byte[cp]);
      } else {
        out.append(piece, start, pos - start);  // not from the alphabet: keep as written
      }
    }
    return out;
  }

  std::string describe() const override {
    return fmt::format("byte-level BPE, {} tokens, {} merges, pre-tokenizer {}, bos {} eos {}, "
                       "from {}",
                       vocab_.size(), merges_.size(), pre_name_, bos_, eos_, source_);
  }

 private:
  struct MergeTarget {
    uint32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }

  // A merge is "left right". Byte-level pieces never contain a raw space, but be lenient
  // with vocabularies where they might: take the first split whose halves are both pieces.
  void add_merge(const std::string& merge, size_t rank) {
    for (size_t sp = merge.find(' '); sp != std::string::npos; sp = merge.find(' ', sp + 1)) {
      auto l = vocab_.find(std::string_view(merge).substr(0, sp));
      auto r = vocab_.find(std::string_view(merge).substr(sp + 1));
      if (!l || !r) continue;
      auto joined = vocab_.find(merge.substr(0, sp) + merge.substr(sp + 1));
      ZEROTH_CHECK(joined.has_value(),
                   "{}: merge {} '{}' makes a piece that is not in the vocabulary; the merges "
                   "list does not belong to this vocabulary",
                   source_, rank, merge);
      // A repeated pair keeps its first (best) rank.
      merges_.emplace(pair_key(*l, *r), MergeTarget{static_cast<uint32_t>(rank), *joined});
      return;
    }
    fail("{}: merge {} '{}' is not two vocabulary pieces separated by a space", source_, rank,
         merge);
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
    const ByteAlphabet& alpha = byte_alphabet();
    std::string word;
    for (std::string_view chunk : pre_.split(text)) {
      word.clear();
      for (char c : chunk) word += alpha.byte_to_char[static_cast<unsigned char>(c)];
      std::vector<BpeSymbol> symbols = bpe_symbols_per_char(word);
      for (BpeSymbol& s : symbols) {
        auto id = vocab_.find(std::string_view(word).substr(s.start, s.len));
        if (id) s.id = *id;
      }
      bpe_merge(symbols, [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeMerge> {
        if (l.id < 0 || r.id < 0) return std::nullopt;
        auto it = merges_.find(pair_key(l.id, r.id));
        if (it == merges_.end()) return std::nullopt;
        return BpeMerge{-static_cast<double>(it->second.rank), it->second.id};
      });
      for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
        if (symbols[i].id >= 0) {
          ids.push_back(symbols[i].id);
          continue;
        }
        ZEROTH_CHECK(unk_ >= 0,
                     "encode: {} lacks the piece for one of the 256 bytes and has no unknown "
                     "token; the vocabulary is not a byte-level one",
                     source_);
        ids.push_back(unk_);
      }
    }
  }

  PreTokenizer pre_;
  std::unordered_map<uint64_t, MergeTarget> merges_;  // (left id, right id) -> joined piece
  bool add_space_prefix_;
  std::string pre_name_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(const TokenizerSpec& spec) {
  return std::make_unique<ByteLevelBpe>(spec);
}

}  // namespace zeroth
