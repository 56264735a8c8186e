// What both tokenizer kinds share: the piece table, its reverse index, token types, and
// the splitting of text around special tokens written literally in it.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "models/tokenizer.h"

namespace zeroth {

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for stray bytes, so
// scanning never stalls on invalid input).
inline size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Appends codepoint `cp` as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// Parses "<0xXX>" into its byte value.
std::optional<uint8_t> parse_byte_piece(std::string_view piece);

// A run of the input text: either plain text to split and merge, or one special token.
struct TextSegment {
  std::string_view text;
  int32_t special = -1;  // token id when this segment is a special token
};

class Vocabulary {
 public:
  // types may be empty: then every piece counts as normal, except that `bos`, `eos` become
  // control, `unk` unknown and <0xXX> pieces bytes (llama2.c stores no types).
  explicit Vocabulary(const TokenizerSpec& spec);

  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const;
  TokenType type(int32_t id) const;
  std::optional<int32_t> find(std::string_view piece) const;
  bool is_control(int32_t id) const { return type(id) == TokenType::kControl; }

  // Splits text into plain runs and special tokens (control and user-defined pieces),
  // longest special first at each position. Without specials it returns one segment.
  std::vector<TextSegment> split_special(std::string_view text) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> index_;
  std::vector<int32_t> specials_;   // ids of matchable specials, longest piece first
  bool special_first_byte_[256] = {};
};

// What both tokenizer kinds share: the vocabulary, the special ids and the
// BOS/EOS defaults, and the accessors over them.
class VocabularyTokenizer : public Tokenizer {
 public:
  explicit VocabularyTokenizer(const TokenizerSpec& spec)
      : vocab_(spec),
        bos_(spec.bos),
        eos_(spec.eos),
        unk_(spec.unk),
        add_bos_(spec.add_bos),
        add_eos_(spec.add_eos),
        source_(spec.source.empty() ? "memory" : spec.source) {}
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t vocab_size() const override { return vocab_.size(); }
  bool adds_bos() const override { return add_bos_; }
  bool adds_eos() const override { return add_eos_; }
  const std::string& token(int32_t id) const override { return vocab_.piece(id); }
  TokenType type(int32_t id) const override { return vocab_.type(id); }
  std::optional<int32_t> find(std::string_view piece) const override { return vocab_.find(piece); }

 protected:
  Vocabulary vocab_;
  int32_t bos_, eos_, unk_;
  bool add_bos_, add_eos_;
  std::string source_;  // the file the vocabulary came from, or "memory"
};

}  // namespace zeroth
