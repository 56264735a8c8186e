#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>

#include "core/formats/llama2c.h"
#include "tests/core/format_files.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

using test::Bytes;

// dim 8, hidden 12, 2 layers, 4 heads (head size 2), 2 kv heads, vocab 10, seq_len 6.
constexpr int32_t kHeader[7] = {8, 12, 2, 4, 2, 10, 6};

// Floats numbered 0, 1, 2, ... over the whole weight area, so every tensor's
// first element tells where the reader placed it.
Bytes checkpoint(int version, bool shared, int64_t weight_floats) {
  Bytes b;
  int32_t h[7];
  std::memcpy(h, kHeader, sizeof(h));
  if (version == 1) {
    test::put<uint32_t>(b, kLlama2cMagic);
    test::put<int32_t>(b, 1);
  } else if (!shared) {
    h[5] = -h[5];
  }
  for (int32_t x : h) test::put<int32_t>(b, x);
  if (version == 1) {
    test::put<uint8_t>(b, shared ? 1 : 0);
    b.resize(256, 0);
  }
  for (int64_t i = 0; i < weight_floats; ++i) test::put<float>(b, float(i));
  return b;
}

// Floats in the layout (d=8, h=12, L=2, kv_dim=4, vocab 10, seq 6, head 2):
// emb 80, att 16, wq 128, wk 64, wv 64, wo 128, ffn 16, w1 192, w2 192, w3 192, final 8.
constexpr int64_t kWeights = 80 + 16 + 128 + 64 + 64 + 128 + 16 + 192 + 192 + 192 + 8;
constexpr int64_t kFreqs = 2 * 6 * 1;  // freq_cis_real/imag: seq_len x head_size/2 each
constexpr int64_t kCls = 80;

float first(const Llama2cCheckpoint& ck, const char* name) { return ck.tensor(name).data<float>()[0]; }

void open_ck(const std::string& p) { Llama2cCheckpoint::open(p); }

TEST(Llama2c, LegacySharedLayout) {
  const auto dir = test::temp_dir("l2c-legacy");
  const auto path = (dir / "m.bin").string();
  test::write_file(path, checkpoint(0, true, kWeights + kFreqs));
  const auto ck = Llama2cCheckpoint::open(path);
  const auto& c = ck.config();
  EXPECT_EQ(c.version, 0);
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(c.kv_dim(), 4);
  ASSERT_EQ(ck.tensors().size(), 11u);
  EXPECT_EQ(ck.tensor("wk").shape(), (Shape{2, 4, 8}));
  EXPECT_EQ(ck.tensor("w2").shape(), (Shape{2, 8, 12}));
  EXPECT_EQ(first(ck, "token_embedding_table"), 0.f);
  EXPECT_EQ(first(ck, "rms_att_weight"), 80.f);
  EXPECT_EQ(first(ck, "wq"), 96.f);
  EXPECT_EQ(first(ck, "wo"), 96.f + 128 + 64 + 64);
  EXPECT_EQ(first(ck, "rms_final_weight"), float(kWeights - 8));
  EXPECT_EQ(ck.tensor("wq").data<float>()[64], 96.f + 64) << "layer 1 follows layer 0";
  EXPECT_THROW(ck.tensor("wcls"), Error);
  EXPECT_EQ(ck.skipped_bytes(), size_t(28 + kFreqs * 4));
}

TEST(Llama2c, LegacyUnsharedHasClassifierAfterFreqs) {
  const auto dir = test::temp_dir("l2c-unshared");
  const auto path = (dir / "m.bin").string();
  test::write_file(path, checkpoint(0, false, kWeights + kFreqs + kCls));
  const auto ck = Llama2cCheckpoint::open(path);
  EXPECT_FALSE(ck.config().shared_classifier);
  EXPECT_EQ(ck.config().vocab_size, 10);
  EXPECT_EQ(ck.tensor("wcls").shape(), (Shape{10, 8}));
  EXPECT_EQ(first(ck, "wcls"), float(kWeights + kFreqs));
}

TEST(Llama2c, Version1Layout) {
  const auto dir = test::temp_dir("l2c-v1");
  const auto path = (dir / "m.bin").string();
  test::write_file(path, checkpoint(1, false, kWeights + kCls));
  const auto ck = Llama2cCheckpoint::open(path);
  EXPECT_EQ(ck.config().version, 1);
  EXPECT_FALSE(ck.config().shared_classifier);
  // Norms first, then the embedding, then the matrices, then the classifier.
  EXPECT_EQ(first(ck, "rms_att_weight"), 0.f);
  EXPECT_EQ(first(ck, "rms_ffn_weight"), 16.f);
  EXPECT_EQ(first(ck, "rms_final_weight"), 32.f);
  EXPECT_EQ(first(ck, "token_embedding_table"), 40.f);
  EXPECT_EQ(first(ck, "wq"), 120.f);
  EXPECT_EQ(first(ck, "w3"), float(kWeights - 192));
  EXPECT_EQ(first(ck, "wcls"), float(kWeights));
  test::write_file(path, checkpoint(1, true, kWeights));
  EXPECT_TRUE(Llama2cCheckpoint::open(path).config().shared_classifier);
}

TEST(Llama2c, SizeMustMatchTheHeaderExactly) {
  const auto dir = test::temp_dir("l2c-size");
  const auto p = dir / "m.bin";
  for (int64_t extra : {-1, 1}) {
    const Bytes b = checkpoint(0, true, kWeights + kFreqs + extra);
    test::write_file(p, b);
    try {
      open_ck(p.string());
      ADD_FAILURE() << "size off by " << extra << " float";
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(std::to_string(b.size())), std::string::npos) << m;
      EXPECT_NE(m.find(std::to_string(28 + 4 * (kWeights + kFreqs))), std::string::npos) << m;
    }
  }
  const Bytes good = checkpoint(1, true, kWeights);
  for (size_t n = 0; n < good.size(); n += n < 300 ? 1 : 61)
    test::expect_format_error(p, Bytes(good.begin(), good.begin() + long(n)), open_ck, "v1 cut to " + std::to_string(n));
  const Bytes legacy = checkpoint(0, true, kWeights + kFreqs);
  for (size_t n = 0; n < legacy.size(); n += n < 40 ? 1 : 61)
    test::expect_format_error(p, Bytes(legacy.begin(), legacy.begin() + long(n)), open_ck, "cut to " + std::to_string(n));
}

TEST(Llama2c, BadHeadersAreFormatErrors) {
  const auto dir = test::temp_dir("l2c-header");
  const auto p = dir / "m.bin";
  const Bytes good = checkpoint(0, true, kWeights + kFreqs);
  const std::pair<int, int32_t> lies[] = {
      {0, 0}, {0, -8}, {1, 0}, {2, 0}, {3, 3} /* 8 % 3 */, {4, 3} /* 4 % 3 */, {4, 8} /* kv > heads */,
      {6, 0}, {0, 0x7fffffff}, {1, 0x7fffffff}, {2, 0x7fffffff}, {5, int32_t(0x80000000)}, {3, 8} /* head size 1 */};
  for (const auto& [field, value] : lies) {
    Bytes b = good;
    test::poke<int32_t>(b, size_t(field) * 4, value);
    test::expect_format_error(p, b, open_ck, "field " + std::to_string(field) + " = " + std::to_string(value));
  }
  Bytes v = checkpoint(1, true, kWeights);
  test::poke<int32_t>(v, 4, 2);
  test::expect_format_error(p, v, open_ck, "version 2");
  v = checkpoint(1, true, kWeights);
  test::poke<uint8_t>(v, 36, 7);
  test::expect_format_error(p, v, open_ck, "shared flag 7");
}

Bytes tokenizer(const std::vector<std::pair<std::string, float>>& toks, int32_t max_len) {
  Bytes b;
  test::put<int32_t>(b, max_len);
  for (const auto& [s, score] : toks) {
    test::put<float>(b, score);
    test::put<int32_t>(b, int32_t(s.size()));
    test::put_bytes(b, s.data(), s.size());
  }
  return b;
}

TEST(Llama2c, TokenizerRoundTripAndLies) {
  const auto dir = test::temp_dir("l2c-tok");
  const auto p = dir / "tok.bin";
  const Bytes good = tokenizer({{"<unk>", 0.f}, {"\n", -1.f}, {"", 0.5f}, {"hello", -2.f}}, 5);
  test::write_file(p, good);
  const auto t = read_llama2c_tokenizer(p.string(), 4);
  EXPECT_EQ(t.max_token_length, 5);
  EXPECT_EQ(t.vocab, (std::vector<std::string>{"<unk>", "\n", "", "hello"}));
  EXPECT_EQ(t.scores, (std::vector<float>{0.f, -1.f, 0.5f, -2.f}));
  EXPECT_THROW(read_llama2c_tokenizer(p.string(), 5), FormatError);

  auto open_tok = [](const std::string& path) { read_llama2c_tokenizer(path); };
  for (size_t n = 0; n < good.size(); ++n) {
    // Cuts at a token boundary leave a shorter valid tokenizer; all others must fail.
    const bool boundary = n == 4 || n == 17 || n == 26 || n == 34;
    if (boundary) continue;
    test::expect_format_error(p, Bytes(good.begin(), good.begin() + long(n)), open_tok, "cut to " + std::to_string(n));
  }
  Bytes lie = good;
  test::poke<int32_t>(lie, 8, 1 << 30);  // first token's length
  test::expect_format_error(p, lie, open_tok, "huge token length");
  test::poke<int32_t>(lie, 8, -1);
  test::expect_format_error(p, lie, open_tok, "negative token length");
  test::expect_format_error(p, tokenizer({{"hello", 0.f}}, 4), open_tok, "token longer than max_token_length");
  test::expect_format_error(p, tokenizer({}, 0), open_tok, "max_token_length 0");
}

}  // namespace
}  // namespace zeroth
