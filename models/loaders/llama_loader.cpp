#include "models/loaders/llama_loader.h"

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "core/file_check.h"
#include "core/error.h"
#include "core/formats/gguf.h"
#include "core/formats/llama2c.h"
#include "core/quant/quant.h"

namespace zeroth {

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::Gguf: return "gguf";
    case ModelFormat::HfDirectory: return "hf-directory";
    case ModelFormat::Safetensors: return "safetensors";
    case ModelFormat::Llama2c: return "llama2c";
  }
  return "?";
}

ModelFormat detect_model_format(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) return ModelFormat::HfDirectory;
  check_input_file(path, "the model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the model file", path);
  uint32_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), 4);
  if (in.gcount() == 4 && magic == kGgufMagic) return ModelFormat::Gguf;
  if (in.gcount() == 4 && magic == kLlama2cMagic) return ModelFormat::Llama2c;
  if (path.ends_with(".safetensors")) return ModelFormat::Safetensors;
  if (path.ends_with(".bin")) return ModelFormat::Llama2c;
  fail("{}: unknown model format (expected a GGUF file, an HF model directory, or a llama2.c .bin)", path);
}

LlamaWeights load_llama_weights(const std::string& path, const LoadOptions& opt) {
  switch (detect_model_format(path)) {
    case ModelFormat::Gguf: return llama_from_gguf(GgufFile::open(path), opt);
    case ModelFormat::Llama2c: return llama_from_llama2c(Llama2cCheckpoint::open(path), opt);
    case ModelFormat::HfDirectory: return llama_from_hf_directory(path, opt);
    case ModelFormat::Safetensors:
      return llama_from_hf_directory(std::filesystem::path(path).parent_path().string(), opt);
  }
  fail("{}: unsupported model format", path);
}

void finish_loaded_weights(LlamaWeights& w, const LoadOptions& opt) {
  auto to_f32 = [](Tensor& t) {
    if (t.dtype() != DType::F32 || !t.is_contiguous()) t = Tensor::from_vector(t.to_float_vector(), t.shape());
  };
  // A tensor whose rows do not split into whole blocks stays as it is (as
  // llama.cpp does): e.g. stories260K's hidden size 172 fits no block format.
  auto quantize_weight = [&](Tensor& t, const std::string& name) {
    if (!opt.quantize || !is_float(t.dtype()) || t.dtype() == *opt.quantize) return;
    const int64_t block = dtype_info(*opt.quantize).block_elems;
    if (t.cols() % block != 0) {
      w.notes.push_back(fmt::format("{} kept in {}: rows of {} are not a multiple of {}'s block of {}", name,
                                    dtype_name(t.dtype()), t.cols(), dtype_name(*opt.quantize), block));
      return;
    }
    t = quantize(t, *opt.quantize, opt.threads);
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    auto& L = w.layers[l];
    to_f32(L.attn_norm);
    to_f32(L.ffn_norm);
    for (int p = 0; p < kProjCount; ++p)
      quantize_weight(L.proj(Proj(p)), fmt::format("layer {} {}", l, proj_name(Proj(p))));
  }
  to_f32(w.final_norm);
  const bool tied = w.output.storage() == w.tok_embeddings.storage() &&
                    w.output.byte_offset() == w.tok_embeddings.byte_offset();
  if (opt.quantize_embeddings) {
    quantize_weight(w.tok_embeddings, "token embeddings");
    if (tied) w.output = w.tok_embeddings;
    else quantize_weight(w.output, "output");
  }
}

LlamaWeights llama_from_llama2c(const Llama2cCheckpoint& f, const LoadOptions& opt) {
  const auto& h = f.config();
  LlamaWeights w;
  auto& c = w.config;
  c.dim = h.dim; c.hidden_dim = h.hidden_dim; c.n_layers = h.n_layers; c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads; c.vocab_size = h.vocab_size; c.max_seq_len = h.seq_len;
  c.tie_embeddings = h.shared_classifier;
  c.rope_interleaved = true;  // llama2.c rotates adjacent pairs
  c.validate();
  auto layer = [&](const char* name, int64_t l) {
    const Tensor& t = f.tensor(name);
    Shape s(t.shape().begin() + 1, t.shape().end());
    return t.slice(0, l, l + 1).reshape(s);
  };
  w.tok_embeddings = f.tensor("token_embedding_table");
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer L;
    L.attn_norm = layer("rms_att_weight", l);
    L.wq = layer("wq", l);
    L.wk = layer("wk", l);
    L.wv = layer("wv", l);
    L.wo = layer("wo", l);
    L.ffn_norm = layer("rms_ffn_weight", l);
    L.w_gate = layer("w1", l);
    L.w_down = layer("w2", l);
    L.w_up = layer("w3", l);
    w.layers.push_back(std::move(L));
  }
  w.final_norm = f.tensor("rms_final_weight");
  w.output = c.tie_embeddings ? w.tok_embeddings : f.tensor("wcls");
  finish_loaded_weights(w, opt);
  w.validate(f.path());
  return w;
}

}  // namespace zeroth
