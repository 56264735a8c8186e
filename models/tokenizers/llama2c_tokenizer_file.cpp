// llama2.c's tokenizer.bin, as written by its tokenizer.py export:
//   int32 max_token_length
//   vocab_size times: f32 score, int32 length, `length` bytes of the piece
// little-endian, no magic, no count: the token count comes from the checkpoint header.
// Pieces have SentencePiece's '▁' already replaced by plain spaces; ids 0, 1, 2 are
// <unk>, BOS and EOS, and 3..258 are the <0xXX> byte pieces.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/file_check.h"
#include "core/error.h"
#include "models/tokenizer.h"

namespace zeroth {
namespace {

// Reads fields off a byte buffer, turning every overrun into an error that names the file.
class Reader {
 public:
  Reader(const std::string& path, std::string bytes) : path_(path), bytes_(std::move(bytes)) {}

  template <typename T>
  T read(const char* what, int32_t token) {
    T v;
    need(sizeof v, what, token);
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string read_bytes(size_t n, int32_t token) {
    need(n, "piece bytes", token);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  void need(size_t n, const char* what, int32_t token) {
    if (remaining() >= n) return;
    throw FormatError(path_, token < 0
        ? fmt::format("truncated: the file is {} bytes, too short for its header", bytes_.size())
        : fmt::format("truncated at token {}: {} needs {} bytes at offset {} but the file is {} "
                      "bytes; is vocab_size right, or the file cut short?",
                      token, what, n, pos_, bytes_.size()));
  }
  const std::string& path_;
  std::string bytes_;
  size_t pos_ = 0;
};

}  // namespace

TokenizerSpec read_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  ZEROTH_CHECK(vocab_size > 0, "{}: vocab_size must be positive (from the checkpoint header), got {}",
               path, vocab_size);
  check_input_file(path, "the tokenizer file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the tokenizer file (llama2.c tokenizer.bin)", path));
  Reader r(path, std::string(std::istreambuf_iterator<char>(in), {}));

  const auto max_len = r.read<int32_t>("max_token_length", -1);
  // No real vocabulary has pieces of a megabyte; past that the file is not a tokenizer.bin.
  constexpr int32_t kMaxPiece = 1 << 20;
  if (max_len <= 0 || max_len > kMaxPiece) {
    throw FormatError(path, fmt::format("max_token_length is {}; expected 1..{} (is this a "
                                        "llama2.c tokenizer.bin?)", max_len, kMaxPiece));
  }

  TokenizerSpec spec;
  spec.model = "llama";
  spec.source = path;
  spec.space_marker = std::string(1, ' ');  // (assigning " " trips GCC 12 -Wrestrict)
  spec.add_space_prefix = true;
  // run.c never looks for "<s>" in a prompt; its BOS piece is even "\n<s>\n".
  spec.parse_special = false;
  spec.pieces.reserve(vocab_size);
  spec.scores.reserve(vocab_size);
  for (int32_t i = 0; i < vocab_size; ++i) {
    const auto score = r.read<float>("score", i);
    const auto len = r.read<int32_t>("length", i);
    if (len < 0 || len > max_len) {
      throw FormatError(path, fmt::format("token {} has length {}, outside 0..{} "
                                          "(max_token_length); the file is corrupt",
                                          i, len, max_len));
    }
    spec.scores.push_back(score);
    spec.pieces.push_back(r.read_bytes(static_cast<size_t>(len), i));
  }
  if (r.remaining() != 0) {
    throw FormatError(path, fmt::format("{} bytes left after {} tokens; the vocabulary is larger "
                                        "than the vocab_size given ({})",
                                        r.remaining(), vocab_size, vocab_size));
  }
  // llama2.c's fixed layout (see its run.c: BOS 1, EOS 2).
  spec.unk = vocab_size > 0 ? 0 : -1;
  spec.bos = vocab_size > 1 ? 1 : -1;
  spec.eos = vocab_size > 2 ? 2 : -1;
  spec.add_bos = true;
  spec.add_eos = false;
  spec.validate();
  return spec;
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  return make_tokenizer(read_llama2c_tokenizer(path, vocab_size));
}

}  // namespace zeroth
