// CUDA fused apply (core/apply.h): each thread keeps the accumulators of its
// elements in registers over all K terms (k = 0..K-1, the CPU's order), then
// writes θ once. Every operation is a __f*_rn intrinsic, so it
// matches apply_perturbations_reference bit for bit.
#include <algorithm>
#include <cstdint>

#include "core/cuda/rng_kernels.h"

namespace zeroth::cuda {
namespace {

constexpr int kThreads = 256;

// Rademacher: warp w covers words [base, base + 32) (base = first_word + 32·w,
// grid-stride). Lane l computes word base + l of each term, and the warp shares
// the words by __shfl_sync: lane l accumulates element 32·(base + j) + l in
// acc[j], so θ is read and written 32 consecutive floats per warp store. Loops
// are uniform per warp; only θ's loads and stores are predicated on the range.
__global__ void apply_rademacher_kernel(const ScaledPerturbation* terms, int64_t count, int64_t offset, int64_t n,
                                        int64_t first_word, int64_t words, float* theta, float decay) {
  const int lane = int(threadIdx.x & 31);
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t w0 = warp * 32; w0 < words; w0 += warps * 32) {
    const int64_t wi = first_word + w0 + lane;
    float acc[32];
#pragma unroll
    for (int j = 0; j < 32; ++j) acc[j] = 0.0f;
    for (int64_t k = 0; k < count; ++k) {
      const uint32_t mine = perturbation_block(terms[k].key, uint32_t(wi >> 2)).w[wi & 3];
      const uint32_t cb = __float_as_uint(terms[k].coeff);
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        const uint32_t wj = __shfl_sync(0xffffffffu, mine, j);
        acc[j] = __fadd_rn(acc[j], __uint_as_float(cb ^ (((wj >> lane) & 1u) << 31)));
      }
    }
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int64_t i = (first_word + w0 + j) * 32 + lane;
      if (i >= offset && i < offset + n) theta[i - offset] = __fsub_rn(__fmul_rn(theta[i - offset], decay), acc[j]);
    }
  }
}

// Gaussian: one thread per Philox block of 4 elements.
__global__ void apply_gaussian_kernel(const ScaledPerturbation* terms, int64_t count, int64_t offset, int64_t n,
                                      int64_t first_block, int64_t blocks, float* theta, float decay) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < blocks; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = first_block + t;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k = 0; k < count; ++k) {
      float z[4];
      gaussian_quad(perturbation_block(terms[k].key, uint32_t(b)), z);
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] = __fadd_rn(acc[j], __fmul_rn(terms[k].coeff, z[j]));
    }
    const int64_t lo = max(offset, b * 4), hi = min(offset + n, b * 4 + 4);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = b * 4 + j;
      if (i >= lo && i < hi) theta[i - offset] = __fsub_rn(__fmul_rn(theta[i - offset], decay), acc[j]);
    }
  }
}

int grid_for(int64_t units) { return int(std::min<int64_t>((units + kThreads - 1) / kThreads, 65535)); }

}  // namespace

cudaError_t launch_apply(const ScaledPerturbation* terms_device, int64_t count, Distribution d, int64_t offset,
                         int64_t n, float* theta_device, float decay) {
  if (n <= 0) return cudaSuccess;
  const int64_t per = d == Distribution::Rademacher ? 32 : 4;
  const int64_t first = offset / per, units = (offset + n - 1) / per - first + 1;
  if (d == Distribution::Rademacher)
    apply_rademacher_kernel<<<grid_for(units), kThreads>>>(terms_device, count, offset, n, first, units,
                                                           theta_device, decay);
  else
    apply_gaussian_kernel<<<grid_for(units), kThreads>>>(terms_device, count, offset, n, first, units,
                                                         theta_device, decay);
  return cudaGetLastError();
}

}  // namespace zeroth::cuda
