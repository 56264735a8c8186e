// SentencePiece-style BPE with byte fallback, as LLaMA 1/2 and llama2.c's models use it.
//
// Encoding: spaces become the space marker, a marker is prepended (the "dummy prefix", so a
// word looks the same at the start of the text as after a space), the text is cut into
// UTF-8 characters, and adjacent pieces whose concatenation is in the vocabulary are
// joined, highest score first. Characters still outside the vocabulary are spelled as
// <0xXX> byte pieces. This reproduces llama2.c run.c's encode() token for token.
#include <cstdint>
#include <fmt/format.h>

#include <array>

#include "core/error.h"
#include "models/tokenizers/bpe_merge.h"
#include "models/tokenizers/kinds.h"
#include "models/tokenizers/vocabulary.h"

namespace zeroth {
namespace {

class SentencePieceBpe final : public VocabularyTokenizer {
 public:
  explicit SentencePieceBpe(const TokenizerSpec& spec)
      : VocabularyTokenizer(spec),
        scores_(spec.scores),
        add_space_prefix_(spec.add_space_prefix.value_or(true)),
        marker_(spec.space_marker) {
    if (scores_.empty()) scores_.assign(spec.pieces.size(), 0.0f);
    byte_ids_.fill(-1);
    for (int32_t id = 0; id < vocab_.size(); ++id) {
      if (vocab_.type(id) != TokenType::kByte) continue;
      if (auto b = parse_byte_piece(vocab_.piece(id))) {
        if (byte_ids_[*b] < 0) byte_ids_[*b] = id;
        ++byte_pieces_;
      }
    }
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
      } else {
        // The dummy prefix goes only before text that opens the input, as SentencePiece
        // sees it; text after a special token continues a sentence.
        encode_plain(seg.text, add_space_prefix_ && seg.text.data() == text.data(), ids);
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
    int32_t prev = -1;
    for (int32_t id : ids) {
      out += decode_piece(prev, id);
      prev = id;
    }
    return out;
  }

  std::string decode_piece(int32_t prev, int32_t id) const override {
    switch (vocab_.type(id)) {
      case TokenType::kControl:
        return {};
      case TokenType::kByte:
        if (auto b = parse_byte_piece(vocab_.piece(id))) return std::string(1, static_cast<char>(*b));
        break;
      default:
        break;
    }
    std::string text = unescape(vocab_.piece(id));
    // The dummy prefix is not part of the text: drop it from the first piece, as run.c
    // does after BOS and SentencePiece does at the start of a decode.
    if (add_space_prefix_ && (prev < 0 || prev == bos_) && !text.empty() && text[0] == ' ') {
      text.erase(0, 1);
    }
    return text;
  }

  std::string describe() const override {
    return fmt::format("SentencePiece BPE, {} tokens ({} byte pieces), bos {} eos {} unk {}, "
                       "space marker '{}', dummy prefix {}, from {}",
                       vocab_.size(), byte_pieces_, bos_, eos_, unk_, marker_,
                       add_space_prefix_ ? "on" : "off", source_);
  }

 private:
  // Pieces a merge may produce: SentencePiece never builds control, unknown, unused or
  // byte pieces out of text.
  static bool mergeable(TokenType t) {
    return t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUndefined;
  }

  void encode_plain(std::string_view text, bool dummy_prefix, std::vector<int32_t>& ids) const {
    std::string escaped;
    escaped.reserve(text.size() + marker_.size() * (1 + text.size() / 4));
    if (dummy_prefix) escaped += marker_;
    for (char c : text) {
      if (c == ' ') {
        escaped += marker_;
      } else {
        escaped += c;
      }
    }

    std::vector<BpeSymbol> symbols = bpe_symbols_per_char(escaped);
    const std::string_view view(escaped);
    for (BpeSymbol& s : symbols) {
      auto id = vocab_.find(view.substr(s.start, s.len));
      if (id && mergeable(vocab_.type(*id))) s.id = *id;
    }
    // Adjacent symbols are contiguous in `escaped`, so the joined piece is a substring.
    bpe_merge(symbols, [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeMerge> {
      auto id = vocab_.find(view.substr(l.start, l.len + r.len));
      if (!id || !mergeable(vocab_.type(*id))) return std::nullopt;
      return BpeMerge{scores_[*id], *id};
    });

    for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
      const BpeSymbol& s = symbols[i];
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      for (uint32_t k = 0; k < s.len; ++k) {
        const int32_t b = byte_ids_[static_cast<unsigned char>(escaped[s.start + k])];
        if (b >= 0) {
          ids.push_back(b);
        } else {
          ZEROTH_CHECK(unk_ >= 0,
                       "encode: {} has neither a byte piece nor an unknown token for a "
                       "character outside its vocabulary",
                       source_);
          ids.push_back(unk_);
          break;  // one <unk> per character, as SentencePiece without byte fallback
        }
      }
    }
  }

  // Stored pieces spell spaces with the marker; text has plain spaces.
  std::string unescape(const std::string& piece) const {
    if (marker_ == " ") return piece;
    std::string out;
    out.reserve(piece.size());
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, marker_.size(), marker_) == 0) {
        out += ' ';
        pos += marker_.size();
      } else {
        out += piece[pos++];
      }
    }
    return out;
  }

  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_{};
  int32_t byte_pieces_ = 0;
  bool add_space_prefix_;
  std::string marker_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const TokenizerSpec& spec) {
  return std::make_unique<SentencePieceBpe>(spec);
}

}  // namespace zeroth
