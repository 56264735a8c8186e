#include "launch/export_peft.h"
#include "models/quantize_llama.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "core/quant/quant.h"
#include "models/loaders/llama_loader.h"

namespace zeroth::cli {

using json = nlohmann::json;

namespace {

std::string hf_module(Proj p) {
  switch (p) {
    case Proj::Q: case Proj::K: case Proj::V: case Proj::O: return "self_attn." + std::string(proj_name(p)) + "_proj";
    default: return "mlp." + std::string(proj_name(p)) + "_proj";
  }
}

Tensor f32_tensor(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

void export_peft(const std::string& dir, const LoraAdapters& lora, const std::string& base_path,
                 bool base_interleaved, int64_t n_heads, int64_t n_kv_heads) {
  std::filesystem::create_directories(dir);
  const auto& cfg = lora.config();
  TensorList tensors;
  json targets = json::array();
  for (Proj p : cfg.targets) targets.push_back(std::string(proj_name(p)) + "_proj");
  for (int l = 0; l < lora.n_layers(); ++l)
    for (Proj p : cfg.targets) {
      const std::string base = "base_model.model.model.layers." + std::to_string(l) + "." + hf_module(p);
      std::vector<float> B = lora.B(l, p);
      if (base_interleaved && (p == Proj::Q || p == Proj::K))
        B = interleaved_to_rotate_half_rows(B.data(), lora.out_dim(p), cfg.rank, p == Proj::Q ? n_heads : n_kv_heads);
      tensors.push_back({base + ".lora_A.weight", f32_tensor(lora.A(l, p), {cfg.rank, lora.in_dim(p)})});
      tensors.push_back({base + ".lora_B.weight", f32_tensor(B, {lora.out_dim(p), cfg.rank})});
    }
  write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  const json c = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"r", cfg.rank}, {"lora_alpha", cfg.alpha},
                  {"lora_dropout", 0.0}, {"target_modules", targets}, {"bias", "none"}, {"fan_in_fan_out", false},
                  {"inference_mode", true}, {"base_model_name_or_path", base_path}};
  std::ofstream(dir + "/adapter_config.json") << c.dump(2) << "\n";
}

void export_merged(const std::string& dir, const LlamaModel& model, const AdapterSet& lora) {
  std::filesystem::create_directories(dir);
  const auto& w = model.weights();
  const auto& c = w.config;
  TensorList tensors;
  auto full = [](const Tensor& t) { return dequantize(t); };  // an export may hold one f32 matrix at a time
  Tensor embed = full(w.tok_embeddings);
  if (lora.overrides_embeddings()) {  // full training: θ's embedding, row by row
    float* e = embed.data<float>();
    for (int64_t t = 0; t < c.vocab_size; ++t) {
      float* row = e + t * c.dim;
      if (const float* r = lora.embedding_row(int32_t(t), 0, row); r && r != row) std::copy_n(r, c.dim, row);
    }
  }
  tensors.push_back({"model.embed_tokens.weight", embed});
  for (int l = 0; l < int(c.n_layers); ++l) {
    const auto& L = w.layers[size_t(l)];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    auto norm = [&](NormSlot slot, const Tensor& base) {
      std::vector<float> scratch(static_cast<size_t>(c.dim));
      const float* g = lora.overrides_norms() ? lora.norm(l, slot, 0, scratch.data()) : nullptr;
      return g ? Tensor::from_vector(std::vector<float>(g, g + c.dim), {c.dim}) : base;
    };
    tensors.push_back({pre + "input_layernorm.weight", norm(NormSlot::Attention, L.attn_norm)});
    tensors.push_back({pre + "post_attention_layernorm.weight", norm(NormSlot::Ffn, L.ffn_norm)});
    for (int pi = 0; pi < kProjCount; ++pi) {
      const Proj p = Proj(pi);
      Tensor W = full(L.proj(p));
      if (lora.overrides_weights()) {
        std::vector<float> scratch(lora.weight_scratch_floats(l, p));
        if (const float* t = lora.weight(l, p, 0, scratch.data()))
          W = Tensor::from_vector(std::vector<float>(t, t + W.numel()), W.shape());
      }
      // W += scale · B · A, in double per element: θ's adapter, else the base's
      // frozen LQ-LoRA factors where it has them.
      const auto f = lora.has(l, p) ? lora.get(l, p, 0, nullptr) : model.base_low_rank(l, p);
      if (f.r > 0) {
        const int64_t out = W.dim(0), in = W.dim(1);
        float* wp = W.data<float>();
        for (int64_t i = 0; i < out; ++i)
          for (int64_t j = 0; j < in; ++j) {
            double s = 0;
            for (int64_t k = 0; k < f.r; ++k) s += double(f.B[i * f.r + k]) * double(f.A[k * in + j]);
            wp[i * in + j] = float(double(wp[i * in + j]) + double(f.scale) * s);
          }
      }
      if (c.rope_interleaved && (p == Proj::Q || p == Proj::K))
        W = Tensor::from_vector(interleaved_to_rotate_half_rows(W.data<float>(), W.dim(0), W.dim(1),
                                                                p == Proj::Q ? c.n_heads : c.n_kv_heads),
                                W.shape());
      tensors.push_back({pre + hf_module(p) + ".weight", W});
    }
  }
  {
    std::vector<float> scratch(static_cast<size_t>(c.dim));
    const float* g = lora.overrides_norms() ? lora.norm(int(c.n_layers), NormSlot::Final, 0, scratch.data()) : nullptr;
    tensors.push_back({"model.norm.weight", g ? Tensor::from_vector(std::vector<float>(g, g + c.dim), {c.dim})
                                              : w.final_norm});
  }
  {
    std::vector<float> scratch;
    const float* o = lora.overrides_output() ? lora.output(0, scratch) : nullptr;
    const size_t n = size_t(c.vocab_size * c.dim);
    if (c.tie_embeddings) {
      // A tied checkpoint holds one matrix: the adapters' output layer must be their embedding.
      ZEROTH_CHECK(!o || std::equal(o, o + n, embed.data<float>()),
                   "export --merged: the trained output layer differs from the trained embedding, which this "
                   "model ties to it");
    } else {
      tensors.push_back({"lm_head.weight", o ? Tensor::from_vector(std::vector<float>(o, o + n), w.output.shape())
                                             : full(w.output)});
    }
  }
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  const json cfg = hf_llama_config(c);
  std::ofstream(dir + "/config.json") << cfg.dump(2) << "\n";
}

}  // namespace zeroth::cli
