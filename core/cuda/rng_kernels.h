// Launchers of the perturbation and apply kernels (core/cuda/perturb.cu,
// core/cuda/apply.cu), called by the host wrappers in core/cuda/rng_host.cpp.
// Kept free of fmt (nvcc cannot compile it): they return the CUDA error code and
// the wrappers turn it into a zeroth::Error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/apply.h"
#include "core/perturb.h"

namespace zeroth::cuda {

// out_device[0, end-begin) = z[begin, end); the range is already checked.
cudaError_t launch_generate_z(const PerturbationKey& key, Distribution d, int64_t begin, int64_t end,
                              float* out_device);

// out_device[0, n) = theta_device[0, n) + sigma_eps · z[offset, offset + n); range checked.
cudaError_t launch_perturbed_copy(const PerturbationKey& key, Distribution d, int64_t offset, int64_t n,
                                  const float* theta_device, float sigma_eps, float* out_device);

// θ (device, n floats, global indices [offset, offset+n)) <- θ*decay - sum_k c_k z_k,
// terms_device[0, count) in device memory.
cudaError_t launch_apply(const ScaledPerturbation* terms_device, int64_t count, Distribution d, int64_t offset,
                         int64_t n, float* theta_device, float decay);

}  // namespace zeroth::cuda
