// Host side of the CUDA perturbation and apply kernels: argument checks, moving
// the terms to the device, and CUDA errors turned into zeroth::Error.
#include <cstdint>
#include <cuda_runtime.h>

#include "core/apply.h"
#include "core/backend.h"
#include "core/cuda/rng_kernels.h"
#include "core/error.h"
#include "core/perturb.h"

namespace zeroth {
namespace {
void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
}  // namespace

void generate_z_cuda(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end, float* out_device) {
  check_z_range(d, begin, end, "generate_z_cuda");
  if (end == begin) return;
  ZEROTH_CHECK(out_device != nullptr, "generate_z_cuda: output pointer is null");
  check_cuda(cuda::launch_generate_z(key, d, begin, end, out_device), "generate_z_cuda: kernel launch");
  check_cuda(cudaDeviceSynchronize(), "generate_z_cuda: kernel");
}

void perturbed_copy_cuda(const PerturbationKey& key, Distribution d, int64_t offset, int64_t n,
                         const float* theta_device, float sigma_eps, float* out_device) {
  ZEROTH_CHECK(n >= 0 && offset >= 0, "perturbed_copy_cuda: negative size {} or offset {}", n, offset);
  check_z_range(d, offset, offset + n, "perturbed_copy_cuda");
  if (n == 0) return;
  ZEROTH_CHECK(theta_device != nullptr && out_device != nullptr, "perturbed_copy_cuda: null pointer for {} elements", n);
  check_cuda(cuda::launch_perturbed_copy(key, d, offset, n, theta_device, sigma_eps, out_device),
             "perturbed_copy_cuda: kernel launch");
}

void apply_perturbations_cuda(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset, int64_t n,
                              float* theta_device, float decay) {
  ZEROTH_CHECK(n >= 0 && offset >= 0, "apply_perturbations_cuda: negative size {} or offset {}", n, offset);
  if (n == 0) return;
  ZEROTH_CHECK(theta_device != nullptr, "apply_perturbations_cuda: θ is null for {} elements", n);
  if (!terms.empty()) check_z_range(d, offset, offset + n, "apply_perturbations_cuda");
  void* terms_device = nullptr;
  if (!terms.empty()) {
    terms_device = cuda_malloc(terms.size_bytes());
    cuda_copy_h2d(terms_device, terms.data(), terms.size_bytes());
  }
  const cudaError_t launched = cuda::launch_apply(static_cast<const ScaledPerturbation*>(terms_device),
                                                  int64_t(terms.size()), d, offset, n, theta_device, decay);
  const cudaError_t finished = launched == cudaSuccess ? cudaDeviceSynchronize() : launched;
  cuda_free(terms_device);
  check_cuda(launched, "apply_perturbations_cuda: kernel launch");
  check_cuda(finished, "apply_perturbations_cuda: kernel");
}

}  // namespace zeroth
