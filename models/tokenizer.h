// Tokenizers: text <-> token ids for the LLaMA-family models zeroth finetunes.
//
// Two kinds cover the models we load:
//  - SentencePiece-style BPE with byte fallback ("llama" in GGUF, llama2.c tokenizer.bin):
//    merges chosen by piece score, unknown codepoints spelled as <0xXX> byte pieces.
//  - GPT-2-style byte-level BPE ("gpt2" in GGUF, HF tokenizer.json with model BPE):
//    bytes mapped to printable codepoints, a regex pre-tokenizer, merges ranked by order.
// Both are built from a plain TokenizerSpec, so each file format only has to fill one in.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

// SentencePiece's token types, as stored in GGUF's tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // BOS, EOS, <|im_start|>...: never produced by merges, decode to ""
  kUserDefined = 4,  // added tokens matched whole in text, decode to their text
  kUnused = 5,
  kByte = 6,         // <0xXX>
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids for `text`. Special tokens written in the text are matched whole when the
  // tokenizer was built with parse_special.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos) const = 0;
  // Text of a whole sequence; control tokens (BOS, EOS) give nothing, user-defined ones their
  // text, the unknown token its piece. For SentencePiece the dummy-prefix space of the first
  // piece (or the piece after BOS) is dropped, so decode(encode(s)) == s.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Streaming form: the text `id` adds after `prev` (prev < 0: start of text). Byte tokens
  // come back as raw bytes, so a multi-byte character may arrive split over several calls.
  virtual std::string decode_piece(int32_t prev, int32_t id) const = 0;

  virtual int32_t bos_id() const = 0;  // -1 when the vocabulary has none
  virtual int32_t eos_id() const = 0;
  virtual int32_t vocab_size() const = 0;
  // Whether the model expects encode(..., add_bos = true) by default (GGUF add_bos_token).
  virtual bool adds_bos() const = 0;
  virtual bool adds_eos() const = 0;
  // The stored piece of `id` (▁/Ġ-spelled, as in the file); throws zeroth::Error when out of range.
  virtual const std::string& token(int32_t id) const = 0;
  virtual TokenType type(int32_t id) const = 0;
  virtual std::optional<int32_t> find(std::string_view piece) const = 0;
  // One line for logs: kind, size, special ids, where it came from.
  virtual std::string describe() const = 0;
};

// Everything a tokenizer is made of, independent of the file it came from (GGUF metadata,
// tokenizer.bin, tokenizer.json). Per-piece vectors are indexed by token id.
struct TokenizerSpec {
  std::string model = "llama";        // "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
  std::vector<std::string> pieces;
  std::vector<float> scores;          // llama: merge priority (higher first); empty = all 0
  std::vector<int32_t> types;         // TokenType per piece; empty = inferred (see make_tokenizer)
  std::vector<std::string> merges;    // gpt2: "left right", best first
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = true, add_eos = false;
  // Prepend a space before the text: llama default true, gpt2 default false (HF add_prefix_space).
  std::optional<bool> add_space_prefix;
  // llama: what stands for a space inside pieces: "▁" (U+2581, SentencePiece/GGUF) or " "
  // (llama2.c tokenizer.bin, whose exporter replaced it).
  std::string space_marker = "\xE2\x96\x81";
  // gpt2: pre-tokenizer name as in GGUF tokenizer.ggml.pre ("default", "gpt2", "llama3",
  // "llama-bpe", "smollm", "starcoder", "qwen2"), unless pre_regexes is non-empty: then those
  // PCRE2 patterns are applied in turn, each splitting the pieces the previous one made.
  std::string pre = "default";
  std::vector<std::string> pre_regexes;
  // Match control and user-defined pieces written in the text as whole tokens.
  bool parse_special = true;
  std::string source;                 // file it came from, for describe() and errors

  // Throws zeroth::Error naming `source` when sizes disagree or ids are out of range.
  void validate() const;
};

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec);

// llama2.c's tokenizer.bin: int32 max_token_length, then per token f32 score, int32 byte
// length, bytes. The file does not store its token count; it comes from the model header.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);
TokenizerSpec read_llama2c_tokenizer(const std::string& path, int32_t vocab_size);

// A TokenizerSpec as zeroth's own JSON file (zeroth_tokenizer.json in model
// directories zeroth writes); throws FormatError naming the file.
void write_tokenizer_spec(const std::string& path, const TokenizerSpec& spec);
TokenizerSpec read_tokenizer_spec(const std::string& path);

// HF tokenizers' tokenizer.json with model.type "BPE" (byte-level). BOS/EOS come from
// tokenizer_config.json beside it when present.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);
TokenizerSpec read_hf_tokenizer_json(const std::string& path);

}  // namespace zeroth
