// CUDA generation of perturbation streams: the same Philox and exact-normal code
// as the CPU (core/perturb.h), so z is bit-identical by construction (the build
// passes --fmad=false and exact_normal.h uses __f*_rn intrinsics on the device).
#include <algorithm>
#include <cstdint>

#include "core/cuda/rng_kernels.h"

namespace zeroth::cuda {
namespace {

constexpr int kThreads = 256;

// What a kernel does with element i of the stream's range [lo, hi): j = i − lo.
// StoreZ writes z itself; StorePerturbed one variant's θ + σε·z (a product then
// a sum, each rounded: the CPU's θ + σε·z, e.g. PerturbedLora).
struct StoreZ {
  float* out;
  __device__ void operator()(int64_t j, float z) const { out[j] = z; }
};
struct StorePerturbed {
  const float* theta;
  float se;
  float* out;
  __device__ void operator()(int64_t j, float z) const { out[j] = __fadd_rn(theta[j], __fmul_rn(se, z)); }
};

// Rademacher streams, coalesced: warp w covers words [base, base + 32) (base =
// first_word + 32·w, grid-stride): lane l computes word base + l, then for
// j = 0..31 takes word j's bits by __shfl_sync and handles element
// 32·(base + j) + l, so each load and store of the warp is 32 consecutive
// floats. Loops are uniform per warp (every lane runs every __shfl_sync); only
// the element's work is predicated on the range.
template <typename Store>
__global__ void rademacher_kernel(PerturbationKey key, int64_t lo, int64_t hi, int64_t first_word, int64_t words,
                                  Store store) {
  const int lane = int(threadIdx.x & 31);
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t w0 = warp * 32; w0 < words; w0 += warps * 32) {
    const int64_t wi = first_word + w0 + lane;
    const uint32_t mine = perturbation_block(key, uint32_t(wi >> 2)).w[wi & 3];
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const uint32_t wj = __shfl_sync(0xffffffffu, mine, j);
      const int64_t i = (first_word + w0 + j) * 32 + lane;
      if (i >= lo && i < hi) store(i - lo, __uint_as_float(0x3F800000u | (((wj >> lane) & 1u) << 31)));
    }
  }
}

// Gaussian streams: one thread per Philox block = 4 elements.
template <typename Store>
__global__ void gaussian_kernel(PerturbationKey key, int64_t lo, int64_t hi, int64_t first_block, int64_t blocks,
                                Store store) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < blocks; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = first_block + t;
    float z[4];
    gaussian_quad(perturbation_block(key, uint32_t(b)), z);
    const int64_t from = max(lo, b * 4), to = min(hi, b * 4 + 4);
    for (int64_t i = from; i < to; ++i) store(i - lo, z[i - b * 4]);
  }
}

int grid_for(int64_t units) { return int(std::min<int64_t>((units + kThreads - 1) / kThreads, 65535)); }

// z[lo, hi) through `store`: the Rademacher or Gaussian kernel over the words or blocks the range touches.
template <typename Store>
cudaError_t launch_stream(const PerturbationKey& key, Distribution d, int64_t lo, int64_t hi, Store store) {
  if (hi <= lo) return cudaSuccess;
  const int64_t per = d == Distribution::Rademacher ? 32 : 4;
  const int64_t first = lo / per, units = (hi - 1) / per - first + 1;
  if (d == Distribution::Rademacher)
    rademacher_kernel<<<grid_for(units), kThreads>>>(key, lo, hi, first, units, store);
  else
    gaussian_kernel<<<grid_for(units), kThreads>>>(key, lo, hi, first, units, store);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_generate_z(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end,
                              float* out_device) {
  return launch_stream(key, d, begin, end, StoreZ{out_device});
}

cudaError_t launch_perturbed_copy(const PerturbationKey& key, Distribution d, int64_t offset, int64_t n,
                                  const float* theta_device, float sigma_eps, float* out_device) {
  return launch_stream(key, d, offset, offset + n, StorePerturbed{theta_device, sigma_eps, out_device});
}

}  // namespace zeroth::cuda
