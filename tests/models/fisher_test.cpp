// LQ-LoRA's Fisher statistics (models/fisher.h) on a tiny random model: the
// row/column sums accumulated from the backward's projection hook equal those
// of dense ∂L/∂W computed independently — through the LoRA gradient path: an
// adapter with A = [I; 0], B = 0 and scale 1 leaves the forward unchanged and
// its dB (out, r) holds dyᵀ·x·Aᵀ, whose first `in` columns are ∂L/∂W, from
// task_gradient's own loss (the LM mean NLL of a batch). Then the factored
// weights, and a decomposition weighted by a skewed Fisher against the plain one.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant/lq_decompose.h"
#include "core/quant/quant.h"
#include "models/fisher.h"
#include "models/llama.h"
#include "models/loaders/llama_loader.h"
#include "models/lora.h"
#include "models/quantize_llama.h"
#include "models/tasks/task.h"
#include "models/tasks/task_gradient.h"
#include "tests/core/lq_test_util.h"
#include "tests/models/task_test_util.h"

namespace zeroth {
namespace {

std::vector<std::vector<int32_t>> random_docs(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> docs;
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> d(size_t(6 + i % 3));  // lengths 6, 7, 8
    d[0] = 1;
    for (size_t t = 1; t < d.size(); ++t) d[t] = int32_t(rng() % 50);
    docs.push_back(d);
  }
  return docs;
}

TEST(Fisher, RowAndColumnSumsEqualThoseOfDenseGradients) {
  const LlamaModel model(make_random_llama(test::task_llama_config(50), 11), 2);
  const auto docs = random_docs(6, 3);
  FisherOptions fo;
  fo.batch_docs = 2;  // lengths 6,7 | 8,6 | 7,8: three batches of two documents
  const FisherStats st = accumulate_fisher(model, docs, fo);
  ASSERT_EQ(st.batches, 3);
  EXPECT_EQ(st.tokens, (6 + 7 + 8) * 2 - 6);

  // The same batches through task_gradient with identity adapters.
  const auto dims = model.projection_dims();
  const int64_t r = 64;  // ≥ every projection's input (32, or 64 for down)
  LoraAdapters id(LoraConfig{r, float(r), {Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down}}, 2,
                  dims);
  for (int l = 0; l < 2; ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      const int64_t in = dims[size_t(pi)][0];
      auto& A = id.A(l, Proj(pi));
      std::fill(A.begin(), A.end(), 0.0f);
      for (int64_t k = 0; k < in; ++k) A[size_t(k * in + k)] = 1.0f;
      std::fill(id.B(l, Proj(pi)).begin(), id.B(l, Proj(pi)).end(), 0.0f);
    }
  std::vector<Example> ex;
  for (const auto& d : docs) ex.push_back(Example{d, 0, -1});
  TaskConfig cfg;
  cfg.type = "lm";
  cfg.max_length = 32;
  const auto task = make_task_from_examples(cfg, ex, {}, {});
  const auto& train = task->examples(Split::Train);
  std::vector<ProjectionFisher> want(size_t(2) * kProjCount);
  double loss = 0;
  for (size_t b = 0; b < 3; ++b) {
    const TaskGradient g = task_gradient(model, *task, {&train[2 * b], &train[2 * b + 1]}, id);
    loss += g.loss;
    for (int l = 0; l < 2; ++l)
      for (int pi = 0; pi < kProjCount; ++pi) {
        const int64_t in = dims[size_t(pi)][0], out = dims[size_t(pi)][1];
        auto& f = want[size_t(l) * kProjCount + size_t(pi)];
        f.row.resize(size_t(out), 0.0);
        f.col.resize(size_t(in), 0.0);
        const auto& dB = g.grads.dB(l, Proj(pi));  // (out, r)
        ASSERT_EQ(int64_t(dB.size()), out * r);
        for (int64_t i = 0; i < out; ++i)
          for (int64_t j = 0; j < in; ++j) {
            const double v = double(dB[size_t(i * r + j)]);
            f.row[size_t(i)] += v * v / 3.0;
            f.col[size_t(j)] += v * v / 3.0;
          }
      }
  }
  EXPECT_NEAR(st.mean_loss, loss / 3.0, 1e-6 * loss);
  for (int l = 0; l < 2; ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      const auto& got = st.at(l, Proj(pi));
      const auto& exp = want[size_t(l) * kProjCount + size_t(pi)];
      ASSERT_EQ(got.row.size(), exp.row.size());
      ASSERT_EQ(got.col.size(), exp.col.size());
      double total = 0;
      for (double v : exp.row) total += v;
      ASSERT_GT(total, 0) << "layer " << l << " " << proj_name(Proj(pi));
      for (size_t i = 0; i < exp.row.size(); ++i)
        EXPECT_NEAR(got.row[i], exp.row[i], 1e-4 * exp.row[i] + 1e-9 * total)
            << "layer " << l << " " << proj_name(Proj(pi)) << " row " << i;
      for (size_t j = 0; j < exp.col.size(); ++j)
        EXPECT_NEAR(got.col[j], exp.col[j], 1e-4 * exp.col[j] + 1e-9 * total)
            << "layer " << l << " " << proj_name(Proj(pi)) << " col " << j;
    }
}

TEST(Fisher, RejectsEmptyCalibration) {
  const LlamaModel model(make_random_llama(test::task_llama_config(50), 11), 1);
  EXPECT_THROW(accumulate_fisher(model, {{1}, {}}), Error);
  FisherOptions fo;
  fo.batch_docs = 0;
  EXPECT_THROW(accumulate_fisher(model, random_docs(2, 1), fo), Error);
}

// ρ_i γ_j is the rank-1 fit r_i c_j / S; zero statistics are an error.
TEST(Fisher, WeightsAreTheRankOneFit) {
  ProjectionFisher f;
  f.row = {1.0, 3.0, 0.0};
  f.col = {2.0, 2.0};
  const auto [rw, cw] = fisher_weights(f, 0, Proj::Q);
  ASSERT_EQ(rw.size(), 3u);
  ASSERT_EQ(cw.size(), 2u);
  EXPECT_NEAR(double(rw[1]) * cw[0], 3.0 * 2.0 / 4.0, 1e-6);
  EXPECT_NEAR(double(rw[0]) * cw[1], 1.0 * 2.0 / 4.0, 1e-6);
  EXPECT_GT(rw[2], 0.0f);  // floored, so the weighted SVD can divide by it
  EXPECT_LT(rw[2], 1e-5f);
  ProjectionFisher zero;
  zero.row = {0.0, 0.0};
  zero.col = {0.0};
  EXPECT_THROW(fisher_weights(zero, 3, Proj::Down), Error);
}

// A skewed factored Fisher (a few heavy rows and columns): decomposing with
// its weights lowers Σ F_ij ΔW_ij² against the unweighted decomposition, and
// the error the decomposition reports is that sum.
TEST(Fisher, WeightedDecompositionLowersTheFisherError) {
  const int64_t m = 64, n = 128, r = 4;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<float> w(size_t(m * n));
  for (auto& v : w) v = nd(rng);
  ProjectionFisher f;
  f.row.resize(size_t(m));
  f.col.resize(size_t(n));
  for (int64_t i = 0; i < m; ++i) f.row[size_t(i)] = i % 8 == 0 ? 100.0 : 0.5;
  for (int64_t j = 0; j < n; ++j) f.col[size_t(j)] = j % 16 == 3 ? 200.0 : 1.0;
  const auto [rw, cw] = fisher_weights(f, 0, Proj::Gate);
  const DType t = *parse_dtype("nf3_b32");
  auto fisher_err = [&](const LqResult& res) { return test::residual2(w, res, m, n, r, rw, cw); };
  LqOptions o;
  o.rank = r;
  const LqResult plain = lq_decompose(w.data(), m, n, t, o);
  o.row_weights = rw;
  o.col_weights = cw;
  const LqResult weighted = lq_decompose(w.data(), m, n, t, o);
  EXPECT_NEAR(weighted.error, fisher_err(weighted), 1e-5 * weighted.norm2);
  const double ew = fisher_err(weighted), ep = fisher_err(plain);
  std::printf("Fisher-weighted error: weighted decomposition %.4g, plain %.4g\n", ew, ep);
  EXPECT_LT(ew, 0.9 * ep);
}

}  // namespace
}  // namespace zeroth

namespace zeroth {
namespace {

// quantize_llama with Fisher statistics on a model whose q/k rows are stored
// interleaved (llama2.c, stories260K): the statistics come in the model's row
// order and must follow the rows into rotate-half order. One q row weighted
// 1e4 above the rest must come out reconstructed far better than the others,
// at its rotate-half position.
TEST(Fisher, QuantizeLlamaWeightsFollowTheRowPermutation) {
  LlamaConfig c = test::task_llama_config(50);
  c.rope_interleaved = true;
  LlamaWeights w = make_random_llama(c, 5);
  const int64_t rows = c.q_dim(), cols = c.dim, heavy = 1;  // model-order row 1: rotate-half row hd/2
  const Tensor orig = dequantize(w.layers[0].proj(Proj::Q), 1);
  const std::vector<float> want =
      interleaved_to_rotate_half_rows(orig.data<float>(), rows, cols, c.n_heads);
  std::vector<float> mark(size_t(rows), 0.0f);
  mark[size_t(heavy)] = 1.0f;
  const std::vector<float> moved = interleaved_to_rotate_half_rows(mark.data(), rows, 1, c.n_heads);
  const int64_t at = int64_t(std::max_element(moved.begin(), moved.end()) - moved.begin());
  ASSERT_NE(at, heavy);

  FisherStats st;
  st.n_layers = int(c.n_layers);
  st.batches = 1;
  const LlamaModel probe(w, 1);
  const auto dims = probe.projection_dims();
  for (int l = 0; l < st.n_layers; ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      ProjectionFisher f;
      f.row.assign(size_t(dims[size_t(pi)][1]), 1.0);
      f.col.assign(size_t(dims[size_t(pi)][0]), 1.0);
      if (l == 0 && Proj(pi) == Proj::Q) f.row[size_t(heavy)] = 1e4;
      st.proj.push_back(f);
    }
  QuantizeOptions o;
  o.rank = 2;
  o.budget_bits = 3.0;
  o.threads = 1;
  const QuantizeReport rep = quantize_llama(w, o, &st);
  EXPECT_EQ(rep.fisher_batches, 1);
  const auto& L0 = w.layers[0];
  const Tensor q = dequantize(L0.proj(Proj::Q), 1);
  const Tensor& B = L0.low_rank_b[size_t(Proj::Q)];  // (rows, r)
  const Tensor& A = L0.low_rank_a[size_t(Proj::Q)];  // (r, cols)
  ASSERT_TRUE(B.defined() && A.defined());
  std::vector<double> row_err(size_t(rows), 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double v = q.data<float>()[i * cols + j];
      for (int64_t k = 0; k < 2; ++k) v += double(B.data<float>()[i * 2 + k]) * A.data<float>()[k * cols + j];
      const double d = double(want[size_t(i * cols + j)]) - v;
      row_err[size_t(i)] += d * d;
    }
  double mean = 0;
  for (double e : row_err) mean += e / double(rows);
  std::printf("heavy row (rotate-half %lld) error %.3g, mean row error %.3g\n", static_cast<long long>(at),
              row_err[size_t(at)], mean);
  EXPECT_LT(row_err[size_t(at)], 0.05 * mean);
  // Statistics of the wrong shape are an error.
  st.proj[0].row.pop_back();
  LlamaWeights w2 = make_random_llama(c, 5);
  EXPECT_THROW(quantize_llama(w2, o, &st), Error);
}

}  // namespace
}  // namespace zeroth
