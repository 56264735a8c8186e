// The real stories260K files in ../shared load, and agree with each other.
#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>

#include <fmt/format.h>

#include "core/formats/gguf.h"
#include "core/formats/inspect.h"
#include "core/formats/llama2c.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

const char* kDir = "/models/stories260K/";

TEST(SharedModels, Stories260KCheckpoint) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto ck = Llama2cCheckpoint::open(shared + kDir + "stories260K.bin");
  const auto& c = ck.config();
  EXPECT_EQ(c.version, 0);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(c.head_size(), 8);
  EXPECT_EQ(ck.tensor("token_embedding_table").shape(), (Shape{512, 64}));
  EXPECT_EQ(ck.tensor("wq").shape(), (Shape{5, 64, 64}));
  EXPECT_EQ(ck.tensor("wk").shape(), (Shape{5, 32, 64}));
  EXPECT_EQ(ck.tensor("w1").shape(), (Shape{5, 172, 64}));
  EXPECT_EQ(ck.tensor("w2").shape(), (Shape{5, 64, 172}));
  int64_t params = 0;
  for (const auto& t : ck.tensors()) params += t.tensor.numel();
  EXPECT_EQ(params, 260032);
}

TEST(SharedModels, Tok512) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto tok = read_llama2c_tokenizer(shared + kDir + "tok512.bin", 512);
  ASSERT_EQ(tok.vocab.size(), 512u);
  EXPECT_EQ(tok.vocab[0], "<unk>");
  EXPECT_EQ(tok.vocab[1], "\n<s>\n");
  EXPECT_EQ(tok.vocab[2], "\n</s>\n");
  EXPECT_EQ(tok.max_token_length, 7);
}

TEST(SharedModels, Stories260KGgufMatchesTheCheckpoint) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto g = GgufFile::open(shared + kDir + "stories260K-f32.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(g.get_u32("llama.block_count"), 5u);
  EXPECT_EQ(g.get_u32("llama.feed_forward_length"), 172u);
  EXPECT_EQ(g.get_u32("llama.attention.head_count"), 8u);
  EXPECT_EQ(g.get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(g.get_string("llama.tensor_data_layout"), "Meta AI original pth");
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(g.get_f32_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(g.tensor_infos().size(), 48u);

  // The 47 weight tensors are byte-identical to the llama2.c checkpoint's.
  const auto ck = Llama2cCheckpoint::open(shared + kDir + "stories260K.bin");
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
  };
  EXPECT_TRUE(same(g.tensor("token_embd.weight"), ck.tensor("token_embedding_table")));
  EXPECT_TRUE(same(g.tensor("output.weight"), ck.tensor("token_embedding_table")));
  EXPECT_TRUE(same(g.tensor("output_norm.weight"), ck.tensor("rms_final_weight")));
  const std::pair<const char*, const char*> per_layer[] = {
      {"attn_q", "wq"},   {"attn_k", "wk"},     {"attn_v", "wv"}, {"attn_output", "wo"}, {"ffn_gate", "w1"},
      {"ffn_down", "w2"}, {"ffn_up", "w3"},     {"attn_norm", "rms_att_weight"}, {"ffn_norm", "rms_ffn_weight"}};
  for (int l = 0; l < 5; ++l)
    for (const auto& [gguf_name, l2c_name] : per_layer) {
      const Tensor layer = ck.tensor(l2c_name).slice(0, l, l + 1);
      const Tensor g_t = g.tensor(fmt::format("blk.{}.{}.weight", l, gguf_name));
      EXPECT_TRUE(same(g_t, layer)) << gguf_name << " layer " << l;
      EXPECT_EQ(g_t.numel(), layer.numel());
    }
  // The tokenizer scores agree with tok512.bin.
  const auto tok = read_llama2c_tokenizer(shared + kDir + "tok512.bin");
  EXPECT_EQ(tokens[3], tok.vocab[3]);
}

TEST(SharedModels, InspectReportsAllThree) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto bin = inspect_model_file(shared + kDir + "stories260K.bin");
  EXPECT_EQ(bin.format, "llama2.c legacy");
  EXPECT_EQ(bin.parameters(), 260032);
  EXPECT_EQ(bin.summary["dim"], 64);
  const auto gguf = inspect_model_file(shared + kDir + "stories260K-f32.gguf");
  EXPECT_EQ(gguf.format, "gguf v3");
  EXPECT_EQ(gguf.parameters(), 260032 + 512 * 64);  // output.weight is stored again
  EXPECT_EQ(gguf.summary["tokenizer vocab size"], 512);
  EXPECT_EQ(gguf.summary["general.architecture"], "llama");
  const auto tok = inspect_model_file(shared + kDir + "tok512.bin");
  EXPECT_EQ(tok.format, "llama2.c tokenizer");
  EXPECT_EQ(tok.summary["vocab size"], 512);
}

}  // namespace
}  // namespace zeroth
