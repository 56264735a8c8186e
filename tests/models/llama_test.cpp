// The LLaMA forward on small random models: batched, cached and adapter paths
// must agree with each other (the golden checks against llama2.c are in
// llama_golden_test.cpp).
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/parallel.h"
#include "core/quant/quant.h"
#include "models/llama.h"

namespace zeroth {
namespace {

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 48; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 50;
  c.max_seq_len = 32;
  return c;
}

std::vector<int32_t> random_tokens(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

CausalLM::ProjectionDims proj_dims(const LlamaConfig& c) {
  return {{{c.dim, c.q_dim()}, {c.dim, c.kv_dim()}, {c.dim, c.kv_dim()}, {c.q_dim(), c.dim},
           {c.dim, c.hidden_dim}, {c.dim, c.hidden_dim}, {c.hidden_dim, c.dim}}};
}

TEST(Llama, PackedSequencesDoNotSeeEachOther) {
  LlamaModel model(make_random_llama(tiny_config(), 1), 1);
  std::mt19937 rng(3);
  const auto a = random_tokens(rng, 7, 50), b = random_tokens(rng, 11, 50);
  TokenBatch both, only_b;
  both.add(a);
  both.add(b);
  only_b.add(b);
  const auto hb = model.forward_hidden(both), ho = model.forward_hidden(only_b);
  const std::vector<float> tail(hb.begin() + 7 * 32, hb.end());
  EXPECT_LT(max_abs_diff(tail, ho), 1e-5f);
}

TEST(Llama, CachedDecodingMatchesTheBatchedForward) {
  LlamaModel model(make_random_llama(tiny_config(), 2), 2);
  std::mt19937 rng(5);
  const auto seq = random_tokens(rng, 12, 50);
  TokenBatch b;
  b.add(seq);
  const auto hidden = model.forward_hidden(b);
  const auto want = model.logits(hidden, {11});
  KVCache cache = model.new_cache();
  // Prompt in one chunk, then token by token: both paths of decode().
  std::vector<float> got = model.decode(cache, std::vector<int32_t>(seq.begin(), seq.begin() + 5));
  EXPECT_LT(max_abs_diff(got, model.logits(hidden, {4})), 1e-4f);
  for (size_t i = 5; i < seq.size(); ++i) got = model.decode(cache, {seq[i]});
  EXPECT_LT(max_abs_diff(got, want), 1e-4f);
  EXPECT_EQ(cache.length, 12);
}

TEST(Llama, LogprobsAreNormalizedAndMatchLogits) {
  LlamaModel model(make_random_llama(tiny_config(), 4), 1);
  std::mt19937 rng(9);
  TokenBatch b;
  b.add(random_tokens(rng, 6, 50));
  const auto hidden = model.forward_hidden(b);
  std::vector<int64_t> rows(6);
  std::vector<int32_t> all(50);
  for (int i = 0; i < 6; ++i) rows[size_t(i)] = i;
  for (int i = 0; i < 50; ++i) all[size_t(i)] = i;
  const auto lp = model.column_logprobs(hidden, rows, all);
  for (int r = 0; r < 6; ++r) {
    double s = 0;
    for (int v = 0; v < 50; ++v) s += std::exp(double(lp[size_t(r * 50 + v)]));
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  const auto tl = model.token_logprobs(hidden, {2, 5}, {7, 49});
  EXPECT_NEAR(tl[0], lp[2 * 50 + 7], 1e-6);
  EXPECT_NEAR(tl[1], lp[5 * 50 + 49], 1e-6);
}

// A vocabulary wider than one block of the log-prob walk (2,048 columns) and a
// batch taller than one block of rows (384): the running log-sum-exp must give
// a double log-softmax of logits(), and a row the same bits alone, in a batch
// or with another thread count.
TEST(Llama, LogprobsOverVocabularyBlocksMatchLogSoftmax) {
  LlamaConfig c = tiny_config();
  c.vocab_size = 5000;
  c.max_seq_len = 64;
  LlamaModel one(make_random_llama(c, 12), 1), two(make_random_llama(c, 12), 2);
  std::mt19937 rng(13);
  TokenBatch b;
  for (int s = 0; s < 8; ++s) b.add(random_tokens(rng, 50, 5000));
  const auto hidden = two.forward_hidden(b);
  const int64_t n = b.rows();
  ASSERT_GT(n, 384);
  std::vector<int64_t> rows(static_cast<size_t>(n));
  std::vector<int32_t> targets(static_cast<size_t>(n));
  std::uniform_int_distribution<int> tok(0, 4999);
  for (int64_t i = 0; i < n; ++i) {
    rows[size_t(i)] = n - 1 - i;  // out of order, as loss terms may be
    targets[size_t(i)] = tok(rng);
  }
  targets[0] = 4999;  // the last, partial block
  targets[1] = 2048;  // the first column of the second block
  const auto tl = two.token_logprobs(hidden, rows, targets);
  const auto lg = two.logits(hidden, rows);
  int later_max = 0;  // rows whose maximum lies past the first block (the rescale path)
  for (int64_t i = 0; i < n; ++i) {
    const float* x = lg.data() + i * 5000;
    const float mx = *std::max_element(x, x + 5000);
    later_max += *std::max_element(x, x + 2048) < mx;
    double s = 0;
    for (int v = 0; v < 5000; ++v) s += std::exp(double(x[v]) - double(mx));
    const double want = double(x[targets[size_t(i)]]) - double(mx) - std::log(s);
    ASSERT_NEAR(tl[size_t(i)], want, 2e-5) << "row " << rows[size_t(i)];
  }
  EXPECT_GT(later_max, 0);
  // Alone, in a smaller batch, and on one thread: the same bits.
  for (int64_t i : {int64_t(0), int64_t(1), int64_t(200), n - 1}) {
    const auto alone = one.token_logprobs(hidden, {rows[size_t(i)]}, {targets[size_t(i)]});
    EXPECT_EQ(alone[0], tl[size_t(i)]) << "row " << rows[size_t(i)];
  }
  EXPECT_EQ(one.token_logprobs(hidden, rows, targets), tl);
  // column_logprobs agrees with token_logprobs column by column.
  const std::vector<int32_t> cols = {0, 2047, 2048, 4999, targets[5]};
  const auto cl = two.column_logprobs(hidden, {rows[5], rows[0]}, cols);
  EXPECT_EQ(cl[4], tl[5]);
  EXPECT_EQ(cl[5 + 3], tl[0]);
  double mass = 0;
  const auto every = two.column_logprobs(hidden, {rows[3]}, [] {
    std::vector<int32_t> a(5000);
    for (int v = 0; v < 5000; ++v) a[size_t(v)] = v;
    return a;
  }());
  for (float x : every) mass += std::exp(double(x));
  EXPECT_NEAR(mass, 1.0, 1e-5);
}

// The same walk over a block-quantized output matrix: the blocks of columns
// are row slices of the packed matrix, and must score as logits() does with
// the whole matrix.
TEST(Llama, LogprobsOverVocabularyBlocksOfAQuantizedHead) {
  LlamaConfig c = tiny_config();
  c.vocab_size = 4500;
  c.max_seq_len = 64;
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    LlamaWeights w = make_random_llama(c, 14);
    w.output = quantize(w.output, t);
    LlamaModel model(std::move(w), 2);
    ASSERT_EQ(model.output_weight().dtype(), t);
    std::mt19937 rng(15);
    TokenBatch b;
    for (int s = 0; s < 3; ++s) b.add(random_tokens(rng, 40, 4500));
    const auto hidden = model.forward_hidden(b);
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    for (int64_t i = 0; i < b.rows(); ++i) {
      rows.push_back(i);
      targets.push_back(int32_t((i * 977) % 4500));
    }
    const auto tl = model.token_logprobs(hidden, rows, targets);
    const auto lg = model.logits(hidden, rows);
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* x = lg.data() + i * 4500;
      const float mx = *std::max_element(x, x + 4500);
      double s = 0;
      for (int v = 0; v < 4500; ++v) s += std::exp(double(x[v]) - double(mx));
      ASSERT_NEAR(tl[i], double(x[targets[i]]) - double(mx) - std::log(s), 2e-5) << dtype_name(t) << " row " << i;
    }
    EXPECT_EQ(model.token_logprobs(hidden, {rows[7]}, {targets[7]})[0], tl[7]) << dtype_name(t);
  }
}

// Variant v of a batch must compute exactly what a batch holding only that
// variant computes: the adapters of one variant never leak into another's rows.
class TwoVariants : public AdapterSet {
 public:
  TwoVariants(const LoraAdapters& a, const LoraAdapters& b) : a_(a), b_(b) {}
  bool has(int l, Proj p) const override { return a_.has(l, p); }
  LoraFactors get(int l, Proj p, int variant, float* s) const override {
    return variant == 0 ? a_.get(l, p, 0, s) : b_.get(l, p, 0, s);
  }
  size_t scratch_floats(int, Proj) const override { return 0; }
 private:
  const LoraAdapters &a_, &b_;
};

TEST(Llama, AdapterVariantsApplyToTheirOwnRows) {
  const auto cfg = tiny_config();
  LlamaModel model(make_random_llama(cfg, 6), 2);
  LoraConfig lc;
  lc.rank = 4;
  lc.targets = {Proj::Q, Proj::V, Proj::Down};
  LoraAdapters zero(lc, 2, proj_dims(cfg)), a(lc, 2, proj_dims(cfg)), b(lc, 2, proj_dims(cfg));
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  for (auto* ad : {&a, &b})
    for (int l = 0; l < 2; ++l)
      for (Proj p : lc.targets) {
        for (auto& x : ad->A(l, p)) x = nd(rng);
        for (auto& x : ad->B(l, p)) x = nd(rng);
      }
  const auto seq = random_tokens(rng, 9, 50);
  TokenBatch base, mixed, one;
  base.add(seq);
  one.add(seq, 0);
  mixed.add(seq, 0);
  mixed.add(seq, 1);
  // B = 0 (LoRA's initialization) leaves the base model unchanged.
  EXPECT_EQ(model.forward_hidden(base), model.forward_hidden(base, &zero));
  const auto h_a = model.forward_hidden(one, &a), h_b = model.forward_hidden(one, &b);
  EXPECT_GT(max_abs_diff(h_a, h_b), 1e-3f);  // the adapters matter...
  TwoVariants both(a, b);
  const auto h = model.forward_hidden(mixed, &both);
  const std::vector<float> first(h.begin(), h.begin() + 9 * 32), second(h.begin() + 9 * 32, h.end());
  EXPECT_LT(max_abs_diff(first, h_a), 1e-5f);  // ...and each stays on its own rows
  EXPECT_LT(max_abs_diff(second, h_b), 1e-5f);
}

// The parallel random maker (7B-sized speed figures): valid weights in the
// dtypes asked for, values in make_random_llama's ranges, the same bits with 1
// or 2 threads (each element a hash of its index), and other bits for another seed.
TEST(Llama, ParallelRandomWeightsAreValidAndIndependentOfThreads) {
  auto cfg = tiny_config();
  cfg.dim = 64;
  cfg.hidden_dim = 128;  // block formats: k a multiple of 64
  cfg.tie_embeddings = false;
  auto make = [&](int threads, uint64_t seed) {
    const ThreadsOverride t(threads);
    return make_random_llama_parallel(cfg, seed, DType::Q4_0, DType::BF16);
  };
  const LlamaWeights a = make(1, 5), b = make(2, 5), c = make(2, 6);
  a.validate("random");
  EXPECT_EQ(a.layers[0].wq.dtype(), DType::Q4_0);
  EXPECT_EQ(a.tok_embeddings.dtype(), DType::BF16);
  EXPECT_EQ(a.output.dtype(), DType::BF16);
  EXPECT_NE(a.output.raw(), a.tok_embeddings.raw());  // untied
  auto bytes = [](const Tensor& t) {
    const auto* p = static_cast<const uint8_t*>(t.raw());
    return std::vector<uint8_t>(p, p + t.nbytes());
  };
  const std::pair<const Tensor*, const Tensor*> same[] = {{&a.tok_embeddings, &b.tok_embeddings},
                                                          {&a.layers[1].w_down, &b.layers[1].w_down},
                                                          {&a.final_norm, &b.final_norm},
                                                          {&a.output, &b.output}};
  for (const auto& [x, y] : same) EXPECT_EQ(bytes(*x), bytes(*y)) << x->describe();
  EXPECT_NE(bytes(a.layers[0].wq), bytes(c.layers[0].wq));
  const auto norm = a.final_norm.to_float_vector();
  for (float g : norm) ASSERT_TRUE(g >= 0.8f && g <= 1.2f) << g;
  // Projections within U(±1/√fan_in) before quantization: the embedding's f32 values (bf16-rounded).
  const auto e = a.tok_embeddings.to_float_vector();
  const float bound = 1.0f / std::sqrt(float(cfg.dim));
  for (float v : e) ASSERT_LE(std::fabs(v), bound * 1.01f) << v;
  // A forward through it is finite.
  LlamaModel m(make(2, 5), 1);
  TokenBatch batch;
  batch.add({1, 2, 3, 4}, 0);
  for (float h : m.forward_hidden(batch)) ASSERT_TRUE(std::isfinite(h));
}

TEST(Llama, BadInputsGiveClearErrors) {
  auto w = make_random_llama(tiny_config(), 7);
  LlamaModel model(w, 1);
  TokenBatch b;
  b.add({1, 2, 50});
  EXPECT_THROW(model.forward_hidden(b), Error);
  TokenBatch long_seq;
  long_seq.add(std::vector<int32_t>(33, 1));
  EXPECT_THROW(model.forward_hidden(long_seq), Error);
  auto broken = w;
  broken.layers[1].wk = broken.layers[1].wq;  // wrong shape
  try {
    LlamaModel m(broken);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1 wk"), std::string::npos) << e.what();
  }
  TokenBatch order;
  order.add({1}, 1);
  EXPECT_THROW(order.add({1}, 0), Error);
}

}  // namespace
}  // namespace zeroth
