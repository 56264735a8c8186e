// llama2.c checkpoints (karpathy/llama2.c) and its tokenizer.bin.
//
// Legacy (version 0): 7 x int32 header {dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len} (negative vocab_size = unshared classifier),
// then f32 weights in run.c's order, each layer-stacked:
//   token_embedding_table [vocab, dim], rms_att_weight [L, dim], wq [L, dim, dim],
//   wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn_weight [L, dim],
//   w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final_weight [dim],
//   freq_cis_real/imag [seq_len, head_size/2] (skipped: RoPE is recomputed),
//   wcls [vocab, dim] only when unshared.
// Version 1 (export.py version1_export): u32 magic "ak42", i32 version 1, the same
// 7 x int32, u8 shared_classifier, zero padding to 256 bytes, then f32 weights in
// the export's order: rms_att_weight, rms_ffn_weight, rms_final_weight,
// token_embedding_table, wq, wk, wv, wo, w1, w2, w3, and wcls when unshared (no freq_cis).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/named_tensor.h"
#include "core/mapped_file.h"

namespace zeroth {

constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42"
constexpr size_t kLlama2cLegacyHeaderBytes = 28;
constexpr size_t kLlama2cV1HeaderBytes = 256;

struct Llama2cConfig {
  int version = 0;  // 0 = legacy header, 1 = "ak42" version 1
  int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;
  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_size() * n_kv_heads; }
};

class Llama2cCheckpoint {
 public:
  // Throws FormatError naming the file: bad header values, or a size other than
  // exactly what the header implies (expected vs actual bytes).
  static Llama2cCheckpoint open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  const Llama2cConfig& config() const { return config_; }
  // Weights in file order with the names above (wcls only when unshared).
  const TensorList& tensors() const { return tensors_; }
  const Tensor& tensor(std::string_view name) const;  // throws Error naming the file
  // Bytes in the file that are no weight (header, padding, freq_cis tables).
  size_t skipped_bytes() const;

 private:
  std::shared_ptr<MappedFile> file_;
  Llama2cConfig config_;
  TensorList tensors_;
};

// Validates the header values of a checkpoint (positive, consistent head
// counts, sizes that fit in memory). Throws FormatError naming `path`.
void validate_llama2c_config(const Llama2cConfig& c, const std::string& path);

// tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, bytes.
struct Llama2cTokenizer {
  int32_t max_token_length = 0;
  std::vector<std::string> vocab;  // raw bytes of each token
  std::vector<float> scores;
};
// Reads tokens until the end of the file. If expected_vocab >= 0 the count must
// match (the file itself does not store it; the checkpoint header does).
Llama2cTokenizer read_llama2c_tokenizer(const std::string& path, int64_t expected_vocab = -1);

}  // namespace zeroth
