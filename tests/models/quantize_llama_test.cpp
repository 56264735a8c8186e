// `zeroth quantize` on stories260K (../shared): the written directory loads
// back to the same tensors, its forward is Q + L1·L2's, int8 stays close to
// the f32 original (so the q/k row permutation is right), the budget holds,
// and bad options are clear errors.
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/quant/quant.h"
#include "models/llama.h"
#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"
#include "models/quantize_llama.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

std::string stories(const std::string& shared) { return shared + "/models/stories260K/stories260K.bin"; }
std::string tok512(const std::string& shared) { return shared + "/models/stories260K/tok512.bin"; }

std::vector<float> logits_of(const LlamaModel& m, const std::vector<int32_t>& seq) {
  TokenBatch b;
  b.add(seq);
  const auto h = m.forward_hidden(b);
  std::vector<int64_t> rows(seq.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  return m.logits(h, rows);
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / den;
}

const std::vector<int32_t> kSeq = {1, 403, 407, 261, 378, 65, 280, 342, 95, 412, 300, 29, 351, 307};

TEST(QuantizeLlama, LqLoraDirectoryRoundTripsAndRunsQPlusL1L2) {
  ZEROTH_REQUIRE_SHARED(shared);
  LlamaWeights w = load_llama_weights(stories(shared));
  QuantizeOptions o;
  o.rank = 4;
  o.budget_bits = 3.0;
  o.max_iters = 4;
  o.threads = 2;
  const QuantizeReport rep = quantize_llama(w, o);
  EXPECT_LE(rep.q_bits, rep.budget_bits);
  EXPECT_FALSE(w.config.rope_interleaved);
  int quantized = 0;
  for (const auto& m : rep.matrices) {
    if (m.proj == Proj::Down) {  // rows of 172 fit no NF block
      EXPECT_TRUE(m.kept);
      continue;
    }
    ++quantized;
    EXPECT_EQ(m.rank, 4);
    // About 3 bits: 2-bit NF matrices keep 15-25 % of ‖W‖², 3-bit ones 3-5 %.
    EXPECT_LT(m.rel_error, 0.3) << m.layer << " " << proj_name(m.proj);
    EXPECT_FALSE(m.iteration_errors.empty());
  }
  EXPECT_EQ(quantized, 30);

  const auto dir = test::temp_dir("quantize-lq") / "out";
  const auto spec = tokenizer_spec_for(stories(shared), tok512(shared), w.config.vocab_size);
  write_quantized_llama(dir.string(), w, spec, rep, false);
  EXPECT_THROW(write_quantized_llama(dir.string(), w, spec, rep, false), Error);  // exists, no force

  const LlamaWeights r = load_llama_weights(dir.string());
  EXPECT_FALSE(r.config.rope_interleaved);
  for (size_t l = 0; l < w.layers.size(); ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      const Tensor &a = w.layers[l].proj(Proj(pi)), &b = r.layers[l].proj(Proj(pi));
      ASSERT_EQ(a.dtype(), b.dtype());
      ASSERT_EQ(a.shape(), b.shape());
      EXPECT_EQ(std::memcmp(a.contiguous().raw(), b.raw(), b.nbytes()), 0) << l << " " << pi;
      const Tensor& la = w.layers[l].low_rank_a[size_t(pi)];
      ASSERT_EQ(la.defined(), r.layers[l].low_rank_a[size_t(pi)].defined());
      if (la.defined()) {
        EXPECT_EQ(la.to_float_vector(), r.layers[l].low_rank_a[size_t(pi)].to_float_vector());
        EXPECT_EQ(w.layers[l].low_rank_b[size_t(pi)].to_float_vector(),
                  r.layers[l].low_rank_b[size_t(pi)].to_float_vector());
      }
    }
  // The directory's tokenizer is the source's.
  auto t0 = load_tokenizer(stories(shared), tok512(shared), 512);
  auto t1 = load_tokenizer(dir.string(), "", 512);
  EXPECT_EQ(t0->encode("Once upon a time, a cat sat.", true, false), t1->encode("Once upon a time, a cat sat.", true, false));

  // Its forward equals that of dense f32 weights dequant(Q) + L1·L2.
  LlamaWeights dense = load_llama_weights(dir.string());
  for (auto& L : dense.layers)
    for (int pi = 0; pi < kProjCount; ++pi) {
      Tensor W = dequantize(L.proj(Proj(pi)));
      Tensor& a = L.low_rank_a[size_t(pi)];
      Tensor& b = L.low_rank_b[size_t(pi)];
      if (a.defined()) {
        const int64_t out = W.dim(0), in = W.dim(1), rk = a.dim(0);
        float* wp = W.data<float>();
        for (int64_t i = 0; i < out; ++i)
          for (int64_t j = 0; j < in; ++j) {
            double s = 0;
            for (int64_t k = 0; k < rk; ++k) s += double(b.data<float>()[i * rk + k]) * a.data<float>()[k * in + j];
            wp[i * in + j] += float(s);
          }
        a = Tensor();
        b = Tensor();
      }
      L.proj(Proj(pi)) = W;
    }
  const LlamaModel qm(load_llama_weights(dir.string()), 2), dm(std::move(dense), 2);
  EXPECT_LT(max_rel_diff(logits_of(qm, kSeq), logits_of(dm, kSeq)), 1e-4);
}

// int8 is nearly lossless: the written model must agree with the original
// llama2.c checkpoint (Meta's interleaved q/k rows), which checks the
// permutation to HF's rotate-half order and the loader's RoPE choice.
TEST(QuantizeLlama, Int8DirectoryMatchesTheOriginal) {
  ZEROTH_REQUIRE_SHARED(shared);
  LlamaWeights w = load_llama_weights(stories(shared));
  QuantizeOptions o;
  o.method = "int8";
  const QuantizeReport rep = quantize_llama(w, o);
  EXPECT_EQ(rep.low_rank_bits, 0);
  const auto dir = test::temp_dir("quantize-i8") / "out";
  write_quantized_llama(dir.string(), w, tokenizer_spec_for(stories(shared), tok512(shared), 512), rep, false);
  const LlamaModel orig(load_llama_weights(stories(shared)), 2), q(load_llama_weights(dir.string()), 2);
  EXPECT_EQ(q.weights().layers[0].wq.dtype(), DType::I8_B64);
  const double d = max_rel_diff(logits_of(q, kSeq), logits_of(orig, kSeq));
  EXPECT_LT(d, 0.06);  // measured 0.029; q/k rows in the wrong order give O(1)
  EXPECT_GT(d, 0.0);   // it was quantized
}

TEST(QuantizeLlama, BadOptionsAreClearErrors) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto expect_error = [&](QuantizeOptions o, const std::string& needle) {
    LlamaWeights w = load_llama_weights(stories(shared));
    try {
      quantize_llama(w, o);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  QuantizeOptions o;
  o.method = "nf3";
  expect_error(o, "--method nf3");
  o = {};
  o.rank = 64;  // k and v are 32 x 64
  expect_error(o, "--rank 64 is larger");
  o = {};
  o.rank = 4;
  o.budget_bits = 2.0;  // nf2 with any scales costs more than 2 bits
  expect_error(o, "raise --budget-bits to at least");
  o = {};
  o.score_iters = 0;
  expect_error(o, "--score-iters");
}

}  // namespace
}  // namespace zeroth
