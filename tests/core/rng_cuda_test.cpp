// CUDA perturbation streams and fused apply against the CPU, bit for bit. They
// skip where no GPU is usable; in a build without CUDA the stub must say so.
#include <cstdint>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/apply.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/perturb.h"
#include "tests/core/cuda_test_util.h"

namespace zeroth {
namespace {

constexpr Distribution kBoth[] = {Distribution::Rademacher, Distribution::Gaussian};

// Device buffer of n floats, freed on scope exit.
struct DeviceFloats {
  explicit DeviceFloats(size_t n) : n(n), p(static_cast<float*>(cuda_malloc(n * sizeof(float)))) {}
  ~DeviceFloats() { cuda_free(p); }
  std::vector<float> to_host() const {
    std::vector<float> h(n);
    cuda_copy_d2h(h.data(), p, n * sizeof(float));
    return h;
  }
  size_t n;
  float* p;
};

using test::bit_mismatches;

TEST(PerturbCuda, StreamsEqualCpuBitForBit) {
  ZEROTH_REQUIRE_GPU();
  const PerturbationKey key{0x0123456789abcdefull, 3, 1, 2};
  for (Distribution d : kBoth)
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1 << 20}, {12345, 12345 + 1000003}, {7, 8}}) {
      DeviceFloats out(static_cast<size_t>(end - begin));
      generate_z_cuda(key, d, begin, end, out.p);
      std::vector<float> cpu(static_cast<size_t>(end - begin));
      generate_z_reference(key, d, begin, end, cpu.data());
      EXPECT_EQ(bit_mismatches(out.to_host(), cpu), 0) << distribution_name(d) << " [" << begin << ", " << end << ")";
    }
}

TEST(ApplyCuda, EqualsCpuReferenceBitForBit) {
  ZEROTH_REQUIRE_GPU();
  const int64_t offset = 1000003, n = 300001;
  std::mt19937 rng(1);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::vector<float> theta0(static_cast<size_t>(n));
  for (float& v : theta0) v = w(rng);
  std::vector<ScaledPerturbation> terms;
  for (uint32_t k = 0; k < 19; ++k) terms.push_back({{42, 7, k % 5, k}, w(rng) * 0.01f});
  for (Distribution d : kBoth)
    for (float decay : {1.0f, 0.9995f}) {
      DeviceFloats theta(static_cast<size_t>(n));
      cuda_copy_h2d(theta.p, theta0.data(), size_t(n) * sizeof(float));
      apply_perturbations_cuda(terms, d, offset, n, theta.p, decay);
      auto ref = theta0;
      apply_perturbations_reference(terms, d, offset, n, ref.data(), decay);
      EXPECT_EQ(bit_mismatches(theta.to_host(), ref), 0) << distribution_name(d) << " decay " << decay;
    }
}

// One variant's perturbed copy θ + σε·z on the device, as the CPU forms it
// (generate_z, then a product and a sum each rounded): bit for bit, at offsets
// that start and end inside Philox blocks.
TEST(PerturbedCopyCuda, EqualsCpuBitForBit) {
  ZEROTH_REQUIRE_GPU();
  const PerturbationKey key{99, 4, 2, 1};
  std::mt19937 rng(3);
  std::normal_distribution<float> w(0.0f, 0.05f);
  for (Distribution d : kBoth)
    for (auto [offset, n] : {std::pair<int64_t, int64_t>{0, 4096}, {77, 100003}, {129, 5}})
      for (float se : {1e-3f, -1e-3f, 0.37f}) {
        std::vector<float> theta(static_cast<size_t>(n)), z(theta.size()), want(theta.size());
        for (float& v : theta) v = w(rng);
        generate_z(key, d, offset, offset + n, z.data());
        for (size_t i = 0; i < want.size(); ++i) want[i] = theta[i] + se * z[i];
        DeviceFloats td(theta.size()), out(theta.size());
        cuda_copy_h2d(td.p, theta.data(), theta.size() * sizeof(float));
        perturbed_copy_cuda(key, d, offset, n, td.p, se, out.p);
        EXPECT_EQ(bit_mismatches(out.to_host(), want), 0)
            << distribution_name(d) << " offset " << offset << " n " << n << " σε " << se;
      }
  float x = 0;
  EXPECT_THROW(perturbed_copy_cuda(key, Distribution::Gaussian, -1, 1, &x, 1.0f, &x), Error);
}

TEST(RngCudaStub, SaysBuiltWithoutCuda) {
  if (cuda_built()) GTEST_SKIP() << "built with CUDA: the stub backend is not linked";
  float x = 0;
  EXPECT_THROW(generate_z_cuda({}, Distribution::Rademacher, 0, 1, &x), Error);
  EXPECT_THROW(apply_perturbations_cuda({}, Distribution::Rademacher, 0, 1, &x), Error);
  EXPECT_THROW(perturbed_copy_cuda({}, Distribution::Rademacher, 0, 1, &x, 1.0f, &x), Error);
}

}  // namespace
}  // namespace zeroth
