// GGUF files with general.architecture = "llama" (Llama 2/3, TinyLlama, SmolLM2,
// llama2.c conversions). Converters permute HF's rotate-half q/k rows back to
// Meta's interleaved layout, and "Meta AI original pth" files never left it, so
// both use interleaved RoPE.
#include <cstdint>

#include "core/error.h"

#include "core/formats/gguf.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {

LlamaWeights llama_from_gguf(const GgufFile& f, const LoadOptions& opt) {
  const std::string arch = f.has("general.architecture") ? f.get_string("general.architecture") : "";
  ZEROTH_CHECK(arch == "llama", "{}: general.architecture is \"{}\"; zeroth reads the \"llama\" family from GGUF",
               f.path(), arch);
  auto tensor = [&](const std::string& name) {
    ZEROTH_CHECK(f.find_tensor(name) != nullptr, "{}: tensor {} is missing", f.path(), name);
    return f.tensor(name);
  };
  LlamaWeights w;
  auto& c = w.config;
  c.dim = f.get_i64("llama.embedding_length");
  c.hidden_dim = f.get_i64("llama.feed_forward_length");
  c.n_layers = f.get_i64("llama.block_count");
  c.n_heads = f.get_i64("llama.attention.head_count");
  c.n_kv_heads = f.has("llama.attention.head_count_kv") ? f.get_i64("llama.attention.head_count_kv") : c.n_heads;
  c.max_seq_len = f.has("llama.context_length") ? f.get_i64("llama.context_length") : 2048;
  if (f.has("llama.attention.layer_norm_rms_epsilon")) c.norm_eps = f.get_f32("llama.attention.layer_norm_rms_epsilon");
  if (f.has("llama.rope.freq_base")) c.rope_theta = f.get_f32("llama.rope.freq_base");
  if (f.has("llama.attention.key_length")) c.head_dim = f.get_i64("llama.attention.key_length");
  if (f.has("llama.rope.scaling.type") && f.get_string("llama.rope.scaling.type") == "llama3") {
    c.rope_scaling.factor = f.get_f32("llama.rope.scaling.factor");
    if (f.has("llama.rope.scaling.original_context_length"))
      c.rope_scaling.original_max_position = f.get_i64("llama.rope.scaling.original_context_length");
  }
  c.rope_interleaved = true;
  w.tok_embeddings = tensor("token_embd.weight");
  c.vocab_size = w.tok_embeddings.dim(0);
  if (f.has("llama.vocab_size"))
    ZEROTH_CHECK(f.get_i64("llama.vocab_size") == c.vocab_size, "{}: llama.vocab_size {} but token_embd.weight has {} rows",
                 f.path(), f.get_i64("llama.vocab_size"), c.vocab_size);
  c.validate();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayer L;
    L.attn_norm = tensor(p + "attn_norm.weight");
    L.wq = tensor(p + "attn_q.weight");
    L.wk = tensor(p + "attn_k.weight");
    L.wv = tensor(p + "attn_v.weight");
    L.wo = tensor(p + "attn_output.weight");
    L.ffn_norm = tensor(p + "ffn_norm.weight");
    L.w_gate = tensor(p + "ffn_gate.weight");
    L.w_up = tensor(p + "ffn_up.weight");
    L.w_down = tensor(p + "ffn_down.weight");
    w.layers.push_back(std::move(L));
  }
  w.final_norm = tensor("output_norm.weight");
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  w.output = c.tie_embeddings ? w.tok_embeddings : tensor("output.weight");
  finish_loaded_weights(w, opt);
  w.validate(f.path());
  return w;
}

}  // namespace zeroth
