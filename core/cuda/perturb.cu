// CUDA generation of perturbation streams: the same Philox and exact-normal code
// as the CPU (core/perturb.h), so z is bit-identical by construction (the build
// passes --fmad=false and exact_normal.h uses __f*_rn intrinsics on the device).
#include <algorithm>

#include "core/cuda/rng_kernels.h"

namespace zeroth::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per 32-element Rademacher word: word wi covers elements [32 wi, 32 wi + 32).
__global__ void rademacher_kernel(PerturbationKey key, int64_t begin, int64_t end, int64_t first_word,
                                  int64_t words, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < words; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t wi = first_word + t;
    const uint32_t w = perturbation_block(key, uint32_t(wi >> 2)).w[wi & 3];
    const int64_t lo = max(begin, wi * 32), hi = min(end, wi * 32 + 32);
    for (int64_t i = lo; i < hi; ++i) out[i - begin] = __uint_as_float(0x3F800000u | (((w >> (i & 31)) & 1u) << 31));
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
// (a product then a sum, each rounded: the CPU's θ + σε·z).
__global__ void perturbed_rademacher_kernel(PerturbationKey key, int64_t offset, int64_t n, int64_t first_word,
                                            int64_t words, const float* theta, float se, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < words; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t wi = first_word + t;
    const uint32_t w = perturbation_block(key, uint32_t(wi >> 2)).w[wi & 3];
    const int64_t lo = max(offset, wi * 32), hi = min(offset + n, wi * 32 + 32);
    for (int64_t i = lo; i < hi; ++i) {
      const float z = __uint_as_float(0x3F800000u | (((w >> (i & 31)) & 1u) << 31));
      out[i - offset] = __fadd_rn(theta[i - offset], __fmul_rn(se, z));
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
