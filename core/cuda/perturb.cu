// CUDA generation of perturbation streams: the same Philox and exact-normal code
// as the CPU (core/perturb.h), so z is bit-identical by construction (the build
// passes --fmad=false and exact_normal.h uses __f*_rn intrinsics on the device).
#include <algorithm>

#include "core/cuda/rng_kernels.h"

namespace zeroth::cuda {
namespace {

constexpr int kThreads = 256;

// Rademacher streams, coalesced: warp w covers words [base, base + 32) (base =
// first_word + 32·w, grid-stride): lane l computes word base + l, then for
// j = 0..31 takes word j's bits by __shfl_sync and writes element
// 32·(base + j) + l, so each store of the warp is 32 consecutive floats. Loops
// are uniform per warp (every lane runs every __shfl_sync); only stores are
// predicated on the range.
__device__ __forceinline__ int lane_id() { return int(threadIdx.x & 31); }
__device__ __forceinline__ int64_t warp_id() { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; }
__device__ __forceinline__ int64_t warp_count() { return (int64_t(gridDim.x) * blockDim.x) >> 5; }
__device__ __forceinline__ float rademacher_of(uint32_t word, int bit) {
  return __uint_as_float(0x3F800000u | (((word >> bit) & 1u) << 31));
}

__global__ void rademacher_kernel(PerturbationKey key, int64_t begin, int64_t end, int64_t first_word,
                                  int64_t words, float* out) {
  const int lane = lane_id();
  for (int64_t w0 = warp_id() * 32; w0 < words; w0 += warp_count() * 32) {
    const int64_t wi = first_word + w0 + lane;
    const uint32_t mine = perturbation_block(key, uint32_t(wi >> 2)).w[wi & 3];
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const uint32_t wj = __shfl_sync(0xffffffffu, mine, j);
      const int64_t i = (first_word + w0 + j) * 32 + lane;
      if (i >= begin && i < end) out[i - begin] = rademacher_of(wj, lane);
    }
  }
}

// One thread per Philox block = 4 Gaussian elements.
__global__ void gaussian_kernel(PerturbationKey key, int64_t begin, int64_t end, int64_t first_block,
                                int64_t blocks, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < blocks; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = first_block + t;
    float z[4];
    gaussian_quad(perturbation_block(key, uint32_t(b)), z);
    const int64_t lo = max(begin, b * 4), hi = min(end, b * 4 + 4);
    for (int64_t i = lo; i < hi; ++i) out[i - begin] = z[i - b * 4];
  }
}

// One variant's perturbed copy: out[i - offset] = theta[i - offset] + se * z[i]
// (a product then a sum, each rounded: the CPU's θ + σε·z); Rademacher words
// shared across the warp as in rademacher_kernel, so loads and stores coalesce.
__global__ void perturbed_rademacher_kernel(PerturbationKey key, int64_t offset, int64_t n, int64_t first_word,
                                            int64_t words, const float* theta, float se, float* out) {
  const int lane = lane_id();
  for (int64_t w0 = warp_id() * 32; w0 < words; w0 += warp_count() * 32) {
    const int64_t wi = first_word + w0 + lane;
    const uint32_t mine = perturbation_block(key, uint32_t(wi >> 2)).w[wi & 3];
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const uint32_t wj = __shfl_sync(0xffffffffu, mine, j);
      const int64_t i = (first_word + w0 + j) * 32 + lane;
      if (i >= offset && i < offset + n)
        out[i - offset] = __fadd_rn(theta[i - offset], __fmul_rn(se, rademacher_of(wj, lane)));
    }
  }
}

__global__ void perturbed_gaussian_kernel(PerturbationKey key, int64_t offset, int64_t n, int64_t first_block,
                                          int64_t blocks, const float* theta, float se, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < blocks; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = first_block + t;
    float z[4];
    gaussian_quad(perturbation_block(key, uint32_t(b)), z);
    const int64_t lo = max(offset, b * 4), hi = min(offset + n, b * 4 + 4);
    for (int64_t i = lo; i < hi; ++i) out[i - offset] = __fadd_rn(theta[i - offset], __fmul_rn(se, z[i - b * 4]));
  }
}

int grid_for(int64_t units) { return int(std::min<int64_t>((units + kThreads - 1) / kThreads, 65535)); }

}  // namespace

cudaError_t launch_generate_z(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end,
                              float* out_device) {
  if (end <= begin) return cudaSuccess;
  const int64_t per = d == Distribution::Rademacher ? 32 : 4;
  const int64_t first = begin / per, units = (end - 1) / per - first + 1;
  if (d == Distribution::Rademacher)
    rademacher_kernel<<<grid_for(units), kThreads>>>(key, begin, end, first, units, out_device);
  else
    gaussian_kernel<<<grid_for(units), kThreads>>>(key, begin, end, first, units, out_device);
  return cudaGetLastError();
}

cudaError_t launch_perturbed_copy(const PerturbationKey& key, Distribution d, int64_t offset, int64_t n,
                                  const float* theta_device, float sigma_eps, float* out_device) {
  if (n <= 0) return cudaSuccess;
  const int64_t per = d == Distribution::Rademacher ? 32 : 4;
  const int64_t first = offset / per, units = (offset + n - 1) / per - first + 1;
  if (d == Distribution::Rademacher)
    perturbed_rademacher_kernel<<<grid_for(units), kThreads>>>(key, offset, n, first, units, theta_device, sigma_eps,
                                                               out_device);
  else
    perturbed_gaussian_kernel<<<grid_for(units), kThreads>>>(key, offset, n, first, units, theta_device, sigma_eps,
                                                             out_device);
  return cudaGetLastError();
}

}  // namespace zeroth::cuda
