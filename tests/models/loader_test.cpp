// Loading LLaMA weights from HF directories (rotate-half q/k layout, f32 and
// bf16, single file and shards), quantize-on-load, and the errors bad model
// files give.
#include <cstdint>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "core/half.h"
#include "models/loaders/llama_loader.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

LlamaConfig small_config() {
  LlamaConfig c;
  c.dim = 64; c.hidden_dim = 96; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 80;
  c.max_seq_len = 64; c.rope_theta = 10000.0;
  return c;
}

// Meta/GGUF rows (pairs interleaved) -> HF rows (rotate-half), by the library's
// permutation (the export uses it too): the tests below check it end to end.
Tensor to_hf_rows(const Tensor& w, int64_t heads) {
  return Tensor::from_vector(interleaved_to_rotate_half_rows(w.data<float>(), w.dim(0), w.dim(1), heads), w.shape());
}

Tensor to_bf16(const Tensor& t) {
  Tensor out = Tensor::empty(DType::BF16, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) out.data<uint16_t>()[i] = f32_to_bf16(t.data<float>()[i]);
  return out;
}

Tensor round_bf16(const Tensor& t) {  // f32 tensor holding bf16-rounded values
  Tensor out = Tensor::empty(DType::F32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) out.data<float>()[i] = bf16_to_f32(f32_to_bf16(t.data<float>()[i]));
  return out;
}

// Writes `w` as an HF directory; shards > 1 splits the tensors over files with an index.
void write_hf(const LlamaWeights& w, const std::filesystem::path& dir, bool bf16, int shards,
              const std::string& drop = "") {
  const auto& c = w.config;
  nlohmann::json cfg = {{"model_type", "llama"}, {"hidden_size", c.dim}, {"intermediate_size", c.hidden_dim},
                        {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
                        {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                        {"max_position_embeddings", c.max_seq_len}, {"rms_norm_eps", c.norm_eps},
                        {"rope_theta", c.rope_theta}, {"tie_word_embeddings", true}};
  std::ofstream(dir / "config.json") << cfg.dump(2);
  TensorList all;
  auto add = [&](const std::string& name, const Tensor& t, bool matrix) {
    if (name != drop) all.push_back({name, bf16 && matrix ? to_bf16(t) : t});
  };
  add("model.embed_tokens.weight", w.tok_embeddings, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto& L = w.layers[size_t(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", L.attn_norm, false);
    add(p + "self_attn.q_proj.weight", to_hf_rows(L.wq, c.n_heads), true);
    add(p + "self_attn.k_proj.weight", to_hf_rows(L.wk, c.n_kv_heads), true);
    add(p + "self_attn.v_proj.weight", L.wv, true);
    add(p + "self_attn.o_proj.weight", L.wo, true);
    add(p + "post_attention_layernorm.weight", L.ffn_norm, false);
    add(p + "mlp.gate_proj.weight", L.w_gate, true);
    add(p + "mlp.up_proj.weight", L.w_up, true);
    add(p + "mlp.down_proj.weight", L.w_down, true);
  }
  add("model.norm.weight", w.final_norm, false);
  if (shards == 1) {
    write_safetensors((dir / "model.safetensors").string(), all);
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (int s = 0; s < shards; ++s) {
    TensorList part;
    const std::string file = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    for (size_t i = size_t(s); i < all.size(); i += size_t(shards)) {
      part.push_back(all[i]);
      index["weight_map"][all[i].name] = file;
    }
    write_safetensors((dir / file).string(), part);
  }
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

std::vector<float> logits_of(const LlamaWeights& w, const std::vector<int32_t>& seq) {
  LlamaModel m(w, 1);
  TokenBatch b;
  b.add(seq);
  const auto h = m.forward_hidden(b);
  std::vector<int64_t> rows(seq.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  return m.logits(h, rows);
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

const std::vector<int32_t> kSeq = {1, 17, 42, 5, 79, 33, 8, 60, 2, 11, 23};

TEST(HfLoader, RotateHalfLayoutGivesTheSameModel) {
  const auto w = make_random_llama(small_config(), 21);
  const auto dir = test::temp_dir("hf-f32");
  write_hf(w, dir, false, 1);
  const auto loaded = load_llama_weights(dir.string());
  EXPECT_FALSE(loaded.config.rope_interleaved);
  EXPECT_LT(max_diff(logits_of(w, kSeq), logits_of(loaded, kSeq)), 1e-4f);
  // Reading the HF rows with Meta's interleaved RoPE would be wrong: the test can tell.
  auto wrong = loaded;
  wrong.config.rope_interleaved = true;
  EXPECT_GT(max_diff(logits_of(w, kSeq), logits_of(wrong, kSeq)), 1e-3f);
}

TEST(HfLoader, Bf16ShardsAreReadInPlace) {
  auto w = make_random_llama(small_config(), 22);
  const auto dir = test::temp_dir("hf-bf16");
  write_hf(w, dir, true, 3);
  const auto loaded = load_llama_weights(dir.string());
  EXPECT_EQ(loaded.layers[0].wq.dtype(), DType::BF16);
  EXPECT_TRUE(loaded.layers[0].wq.storage()->read_only());  // a view of the mapped shard
  // The same model with weights rounded to bf16 in f32 gives the same logits.
  for (auto& L : w.layers)
    for (Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) *t = round_bf16(*t);
  w.tok_embeddings = round_bf16(w.tok_embeddings);
  w.output = w.tok_embeddings;
  EXPECT_LT(max_diff(logits_of(w, kSeq), logits_of(loaded, kSeq)), 1e-4f);
}

TEST(HfLoader, QuantizeOnLoadKeepsNormsAndEmbeddings) {
  auto cfg = small_config();
  cfg.hidden_dim = 128;
  const auto w = make_random_llama(cfg, 23);
  const auto dir = test::temp_dir("hf-quant");
  write_hf(w, dir, false, 1);
  LoadOptions opt;
  opt.quantize = DType::I8_B64;
  const auto q = load_llama_weights(dir.string(), opt);
  EXPECT_EQ(q.layers[1].w_down.dtype(), DType::I8_B64);
  EXPECT_EQ(q.layers[1].ffn_norm.dtype(), DType::F32);
  EXPECT_EQ(q.tok_embeddings.dtype(), DType::F32);
  EXPECT_LT(q.weight_bytes(), load_llama_weights(dir.string()).weight_bytes());
  const auto a = logits_of(w, kSeq), b = logits_of(q, kSeq);
  EXPECT_LT(max_diff(a, b), 0.05f);  // int8 absmax: small but nonzero error
  EXPECT_GT(max_diff(a, b), 0.0f);
  opt.quantize_embeddings = true;
  opt.quantize = DType::NF4;
  const auto q4 = load_llama_weights(dir.string(), opt);
  EXPECT_EQ(q4.tok_embeddings.dtype(), DType::NF4);
  EXPECT_EQ(q4.output.dtype(), DType::NF4);  // tied: the same quantized tensor
}

TEST(HfLoader, RowsThatFitNoBlockStayInFullPrecision) {
  const auto w = make_random_llama(small_config(), 25);  // hidden 96: down rows fit 32 but not 64
  const auto dir = test::temp_dir("hf-fallback");
  write_hf(w, dir, false, 1);
  LoadOptions opt;
  opt.quantize = DType::I8_B64;
  const auto q = load_llama_weights(dir.string(), opt);
  EXPECT_EQ(q.layers[0].w_down.dtype(), DType::F32);
  EXPECT_EQ(q.layers[0].w_up.dtype(), DType::I8_B64);
  ASSERT_EQ(q.notes.size(), 2u);  // one per layer
  EXPECT_NE(q.notes[0].find("layer 0 down kept in f32"), std::string::npos) << q.notes[0];
}

TEST(HfLoader, MissingTensorsAndBadConfigsNameWhatIsWrong) {
  const auto w = make_random_llama(small_config(), 24);
  const auto dir = test::temp_dir("hf-missing");
  write_hf(w, dir, false, 1, "model.layers.1.mlp.up_proj.weight");
  try {
    load_llama_weights(dir.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
  const auto dir2 = test::temp_dir("hf-badcfg");
  write_hf(w, dir2, false, 1);
  std::ofstream(dir2 / "config.json") << R"({"model_type": "llama", "hidden_size": 64})";
  try {
    load_llama_weights(dir2.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intermediate_size"), std::string::npos) << e.what();
  }
  std::ofstream(dir2 / "config.json") << R"({"model_type": "gpt_neox"})";
  EXPECT_THROW(load_llama_weights(dir2.string()), Error);
  EXPECT_THROW(load_llama_weights((dir2 / "nothing.gguf").string()), Error);
}

TEST(Llama2cLoader, SlicesAreViewsOfTheMappedCheckpoint) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto w = load_llama_weights(shared + "/models/stories260K/stories260K.bin");
  EXPECT_EQ(w.config.n_layers, 5);
  EXPECT_TRUE(w.layers[3].wq.storage()->read_only());
  EXPECT_EQ(w.layers[3].wq.shape(), (Shape{64, 64}));
  EXPECT_EQ(w.parameter_count(), 260032 - 0);  // tied classifier counted once
}

}  // namespace
}  // namespace zeroth
