// Every CUDA forward op (core/cuda_ops.h) against the CPU reference (core/ops.h)
// by normalized error max|Δ| ÷ max|ref|, or bit for bit where both sides do the
// same single-rounded operations. Skipped without a GPU (a failure under
// ZEROTH_REQUIRE_GPU=1); the stub test checks the build without CUDA.
#include <cstdint>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/cuda_ops.h"
#include "core/error.h"
#include "core/ops.h"
#include "tests/core/cuda_test_util.h"
#include "tests/core/quant_test_util.h"

namespace zeroth {
namespace {

using test::bit_mismatches;
using test::normal_values;
using test::normalized_error;
using test::to_device;

// Tolerances, normalized by max|ref|. Reductions differ from the CPU's sequential
// float sums only in summation order (~sqrt(d)·2^-24 relative); silu by the
// device expf (≤ 2 ulp); log-sum-exp sums in double on both sides.
constexpr double kReductionTol = 1e-5;
constexpr double kElementwiseTol = 1e-6;

TEST(OpsCuda, RmsNormMatchesCpu) {
  ZEROTH_REQUIRE_GPU();
  for (auto [n, d] : {std::pair<int64_t, int64_t>{37, 4096}, {5, 1000}, {1, 3}}) {
    const auto x = normal_values(size_t(n * d), 1, 3.0f), w = normal_values(size_t(d), 2);
    std::vector<float> ref(x.size());
    rmsnorm(x.data(), w.data(), ref.data(), n, d, 1e-5f);
    auto xd = to_device(x), wd = to_device(w);
    DeviceArray<float> out(x.size());
    rmsnorm_cuda(xd.data(), wd.data(), out.data(), n, d, 1e-5f);
    EXPECT_LE(normalized_error(out.download(), ref), kReductionTol) << n << " x " << d;
  }
}

TEST(OpsCuda, RopeEqualsCpuBitForBitInBothLayouts) {
  ZEROTH_REQUIRE_GPU();
  const int64_t n = 50, heads = 6, hd = 64;
  const RopeTable table = make_rope_table(hd, 512, 10000.0, RopeScaling{8.0f, 1.0f, 4.0f, 256});
  const RopeTableCuda dtable(table);
  std::mt19937 rng(3);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (auto& p : pos) p = int32_t(rng() % 512);
  const auto x = normal_values(size_t(n * heads * hd), 4);
  for (bool interleaved : {false, true}) {
    auto ref = x;
    rope(ref.data(), pos.data(), n, heads, table, interleaved);
    auto xd = to_device(x);
    rope_cuda(xd.data(), pos, heads, dtable, interleaved);
    EXPECT_EQ(bit_mismatches(xd.download(), ref), 0) << (interleaved ? "interleaved" : "rotate-half");
  }
  auto xd = to_device(x);
  const std::vector<int32_t> bad = {0, 512};
  EXPECT_THROW(rope_cuda(xd.data(), bad, 1, dtable, false), Error);
}

// Packed sequences of several lengths (including 1), MHA and GQA.
TEST(OpsCuda, CausalAttentionMatchesCpu) {
  ZEROTH_REQUIRE_GPU();
  const std::vector<SeqSpan> seqs = {{0, 5}, {5, 33}, {38, 1}, {39, 90}};
  const int64_t n = 129, hd = 64;
  for (auto [heads, kv_heads] : {std::pair<int64_t, int64_t>{8, 8}, {8, 2}, {6, 1}}) {
    const auto q = normal_values(size_t(n * heads * hd), 5), k = normal_values(size_t(n * kv_heads * hd), 6),
               v = normal_values(size_t(n * kv_heads * hd), 7);
    std::vector<float> ref(q.size());
    causal_attention(q.data(), k.data(), v.data(), ref.data(), seqs, heads, kv_heads, hd);
    auto qd = to_device(q), kd = to_device(k), vd = to_device(v);
    DeviceArray<float> out(q.size());
    causal_attention_cuda(qd.data(), kd.data(), vd.data(), out.data(), seqs, n, heads, kv_heads, hd);
    EXPECT_LE(normalized_error(out.download(), ref), kReductionTol) << heads << " heads, " << kv_heads << " kv heads";
  }
}

// A sequence whose scores need more than the default 48 KiB of shared memory.
TEST(OpsCuda, CausalAttentionLongSequence) {
  ZEROTH_REQUIRE_GPU();
  const int64_t n = 13000, hd = 16;
  const std::vector<SeqSpan> seqs = {{0, n}};
  const auto q = normal_values(size_t(n * hd), 8, 0.3f), k = normal_values(size_t(n * hd), 9, 0.3f),
             v = normal_values(size_t(n * hd), 10);
  std::vector<float> ref(q.size());
  causal_attention(q.data(), k.data(), v.data(), ref.data(), seqs, 1, 1, hd);
  auto qd = to_device(q), kd = to_device(k), vd = to_device(v);
  DeviceArray<float> out(q.size());
  causal_attention_cuda(qd.data(), kd.data(), vd.data(), out.data(), seqs, n, 1, 1, hd);
  EXPECT_LE(normalized_error(out.download(), ref), kReductionTol);
}

TEST(OpsCuda, SiluMulAndAddMatchCpu) {
  ZEROTH_REQUIRE_GPU();
  const int64_t n = 1 << 20;
  const auto g = normal_values(size_t(n), 11, 4.0f), u = normal_values(size_t(n), 12);
  auto ref = g;
  silu_mul(ref.data(), u.data(), n);
  auto gd = to_device(g), ud = to_device(u);
  silu_mul_cuda(gd.data(), ud.data(), n);
  EXPECT_LE(normalized_error(gd.download(), ref), kElementwiseTol);

  auto sum = g;
  add_inplace(sum.data(), u.data(), n);
  auto yd = to_device(g);
  add_inplace_cuda(yd.data(), ud.data(), n);
  EXPECT_EQ(bit_mismatches(yd.download(), sum), 0);
}

TEST(OpsCuda, LogSumExpAndTokenLogprobsMatchCpu) {
  ZEROTH_REQUIRE_GPU();
  const int64_t n = 16, vocab = 32000;
  const auto x = normal_values(size_t(n * vocab), 13, 5.0f);
  std::vector<float> lse(static_cast<size_t>(n));
  logsumexp_rows(x.data(), n, vocab, lse.data());
  std::mt19937 rng(14);
  std::vector<int32_t> targets(static_cast<size_t>(n));
  std::vector<float> lp(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    targets[size_t(r)] = int32_t(rng() % vocab);
    lp[size_t(r)] = x[size_t(r * vocab + targets[size_t(r)])] - lse[size_t(r)];
  }
  auto xd = to_device(x);
  DeviceArray<float> out(static_cast<size_t>(n));
  logsumexp_rows_cuda(xd.data(), n, vocab, out.data());
  EXPECT_LE(normalized_error(out.download(), lse), kElementwiseTol);
  token_logprobs_cuda(xd.data(), targets, vocab, out.data());
  EXPECT_LE(normalized_error(out.download(), lp), kElementwiseTol);
  const std::vector<int32_t> bad = {int32_t(vocab)};
  EXPECT_THROW(token_logprobs_cuda(xd.data(), bad, vocab, out.data()), Error);
}

TEST(OpsCudaStub, SaysBuiltWithoutCuda) {
  if (cuda_built()) GTEST_SKIP() << "built with CUDA: the stub backend is not linked";
  float x = 0;
  EXPECT_THROW(rmsnorm_cuda(&x, &x, &x, 1, 1, 1e-5f), Error);
  EXPECT_THROW(silu_mul_cuda(&x, &x, 1), Error);
  EXPECT_THROW(logsumexp_rows_cuda(&x, 1, 1, &x), Error);
  EXPECT_THROW(causal_attention_cuda(&x, &x, &x, &x, {}, 1, 1, 1, 1), Error);
  EXPECT_THROW(DeviceArray<float>(4), Error);
}

}  // namespace
}  // namespace zeroth
