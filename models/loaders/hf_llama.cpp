// An HF model directory: config.json, model.safetensors (or shards listed in
// model.safetensors.index.json). HF stores q/k rows in rotate-half order, so the
// forward uses rotate-half RoPE for these weights (no permutation on load).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {
namespace {

using json = nlohmann::json;

LlamaConfig config_from_hf(const json& j, const std::string& path) {
  auto get = [&](const char* key) -> const json& {
    ZEROTH_CHECK(j.contains(key), "{}: config key \"{}\" is missing", path, key);
    return j.at(key);
  };
  const std::string type = j.value("model_type", "");
  ZEROTH_CHECK(type == "llama" || type == "mistral" || type.empty(),
               "{}: model_type \"{}\" is not a LLaMA-family model", path, type);
  LlamaConfig c;
  try {
    c.dim = get("hidden_size").get<int64_t>();
    c.hidden_dim = get("intermediate_size").get<int64_t>();
    c.n_layers = get("num_hidden_layers").get<int64_t>();
    c.n_heads = get("num_attention_heads").get<int64_t>();
    c.n_kv_heads = j.value("num_key_value_heads", c.n_heads);
    c.vocab_size = get("vocab_size").get<int64_t>();
    c.max_seq_len = j.value("max_position_embeddings", int64_t(2048));
    c.norm_eps = j.value("rms_norm_eps", 1e-5f);
    c.rope_theta = j.value("rope_theta", 10000.0);
    c.tie_embeddings = j.value("tie_word_embeddings", false);
    if (j.contains("head_dim") && j["head_dim"].is_number_integer()) c.head_dim = j["head_dim"].get<int64_t>();
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      const auto& s = j["rope_scaling"];
      const std::string rt = s.value("rope_type", s.value("type", ""));
      ZEROTH_CHECK(rt == "llama3", "{}: rope_scaling type \"{}\" is not supported (only llama3)", path, rt);
      c.rope_scaling.factor = s.value("factor", 8.0f);
      c.rope_scaling.low_freq_factor = s.value("low_freq_factor", 1.0f);
      c.rope_scaling.high_freq_factor = s.value("high_freq_factor", 4.0f);
      c.rope_scaling.original_max_position = s.value("original_max_position_embeddings", int64_t(8192));
    }
  } catch (const json::exception& e) {
    fail("{}: a config value has the wrong type: {}", path, e.what());
  }
  c.rope_interleaved = false;
  c.validate();
  return c;
}

}  // namespace

std::string hf_projection_module(Proj p) {
  switch (p) {
    case Proj::Q: return "self_attn.q_proj";
    case Proj::K: return "self_attn.k_proj";
    case Proj::V: return "self_attn.v_proj";
    case Proj::O: return "self_attn.o_proj";
    case Proj::Gate: return "mlp.gate_proj";
    case Proj::Up: return "mlp.up_proj";
    case Proj::Down: return "mlp.down_proj";
  }
  return "";
}

std::vector<float> interleaved_to_rotate_half_rows(const float* w, int64_t rows, int64_t cols, int64_t heads) {
  ZEROTH_CHECK(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0,
               "rotate-half permutation: {} rows do not split into {} heads of even size", rows, heads);
  const int64_t hd = rows / heads;
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < hd / 2; ++j)
      for (int64_t c = 0; c < 2; ++c)
        std::copy_n(w + (h * hd + 2 * j + c) * cols, cols, out.data() + (h * hd + c * hd / 2 + j) * cols);
  return out;
}

LlamaWeights llama_from_hf_directory(const std::string& dir, const LoadOptions& opt) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  std::ifstream in(cfg_path);
  ZEROTH_CHECK(bool(in), "{}: cannot open (an HF model directory needs config.json)", cfg_path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", cfg_path, e.what());
  }
  LlamaWeights w;
  w.config = config_from_hf(j, cfg_path);
  const auto& c = w.config;

  // Open the single file or every shard; tensors stay views of their maps.
  std::vector<SafetensorsFile> files;
  std::map<std::string, Tensor> by_name;
  const fs::path single = fs::path(dir) / "model.safetensors", index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files.push_back(SafetensorsFile::open(single.string()));
  } else if (fs::exists(index)) {
    const auto idx = read_safetensors_index(index.string());
    for (const auto& shard : idx.shards()) files.push_back(SafetensorsFile::open(idx.shard_path(shard)));
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  for (const auto& f : files)
    for (const auto& nt : f.tensors()) by_name[nt.name] = nt.tensor;
  auto tensor = [&](const std::string& name) {
    auto it = by_name.find(name);
    ZEROTH_CHECK(it != by_name.end(), "{}: tensor {} is missing", dir, name);
    return it->second;
  };
  w.tok_embeddings = tensor("model.embed_tokens.weight");
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LlamaLayer L;
    L.attn_norm = tensor(p + "input_layernorm.weight");
    L.wq = tensor(p + "self_attn.q_proj.weight");
    L.wk = tensor(p + "self_attn.k_proj.weight");
    L.wv = tensor(p + "self_attn.v_proj.weight");
    L.wo = tensor(p + "self_attn.o_proj.weight");
    L.ffn_norm = tensor(p + "post_attention_layernorm.weight");
    L.w_gate = tensor(p + "mlp.gate_proj.weight");
    L.w_up = tensor(p + "mlp.up_proj.weight");
    L.w_down = tensor(p + "mlp.down_proj.weight");
    // A frozen low-rank part (`zeroth quantize --method lq-lora`): W ≈ Q + B·A.
    for (int pi = 0; pi < kProjCount; ++pi) {
      const std::string m = p + hf_projection_module(Proj(pi));
      const bool has_a = by_name.count(m + ".low_rank_A") > 0, has_b = by_name.count(m + ".low_rank_B") > 0;
      ZEROTH_CHECK(has_a == has_b, "{}: {}.low_rank_A and .low_rank_B must both be present or both absent", dir, m);
      if (!has_a) continue;
      auto f32 = [](const Tensor& t) { return Tensor::from_vector(t.to_float_vector(), t.shape()); };
      L.low_rank_a[size_t(pi)] = f32(tensor(m + ".low_rank_A"));
      L.low_rank_b[size_t(pi)] = f32(tensor(m + ".low_rank_B"));
    }
    w.layers.push_back(std::move(L));
  }
  w.final_norm = tensor("model.norm.weight");
  const bool has_head = by_name.count("lm_head.weight") > 0;
  w.config.tie_embeddings = c.tie_embeddings || !has_head;
  w.output = has_head && !c.tie_embeddings ? tensor("lm_head.weight") : w.tok_embeddings;
  finish_loaded_weights(w, opt);
  w.validate(dir);
  return w;
}

}  // namespace zeroth
