// Loading LLaMA-family weights from the file formats zeroth reads:
//   GGUF (general.architecture = llama), an HF model directory (config.json +
//   model.safetensors or sharded model-*.safetensors + index), a llama2.c .bin.
// Weights stay zero-copy views of the mapped file unless quantized on load.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/llama.h"

namespace zeroth {

struct LoadOptions {
  // Quantize f32/f16/bf16 projection weights to this dtype on load (int8, int4,
  // NF4, q8_0, ...). Embeddings and norms stay in full precision unless
  // quantize_embeddings is set; weights already quantized in the file are kept.
  // A weight whose row length is no multiple of the format's block size keeps
  // its file dtype (check Tensor::dtype() to see what was quantized).
  std::optional<DType> quantize;
  bool quantize_embeddings = false;
  int threads = 0;
};

enum class ModelFormat { Gguf, HfDirectory, Safetensors, Llama2c };
const char* model_format_name(ModelFormat f);
// By magic bytes (GGUF, llama2.c v1) or layout (a directory, a .safetensors
// file); a legacy llama2.c .bin has no magic and is recognised by its extension.
ModelFormat detect_model_format(const std::string& path);

LlamaWeights load_llama_weights(const std::string& path, const LoadOptions& opt = {});

// The pieces of each format, for callers that already hold the file.
class GgufFile;
class Llama2cCheckpoint;
LlamaWeights llama_from_gguf(const GgufFile& f, const LoadOptions& opt);
LlamaWeights llama_from_llama2c(const Llama2cCheckpoint& f, const LoadOptions& opt);
LlamaWeights llama_from_hf_directory(const std::string& dir, const LoadOptions& opt);

// Meta/GGUF (pairs interleaved) → HF (rotate-half) row order of a q or k
// matrix (heads·hd, cols), f32: within each head, HF row c·hd/2 + j is Meta
// row 2j + c. HF checkpoints of GGUF/llama2.c models need it (exports).
std::vector<float> interleaved_to_rotate_half_rows(const float* w, int64_t rows, int64_t cols, int64_t heads);

// The HF module path of a projection: "self_attn.q_proj", ..., "mlp.down_proj".
std::string hf_projection_module(Proj p);

// Applies LoadOptions::quantize to loaded weights, and converts f16/bf16 norms to f32.
void finish_loaded_weights(LlamaWeights& w, const LoadOptions& opt);

}  // namespace zeroth
