// Perturbation and apply entry points of a build without CUDA: each says so.
#include <cstdint>

#include "core/apply.h"

#include "core/error.h"
#include "core/perturb.h"

namespace zeroth {

void generate_z_cuda(const PerturbationKey&, Distribution, int64_t, int64_t, float*) {
  fail("generate_z_cuda: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)");
}

void perturbed_copy_cuda(const PerturbationKey&, Distribution, int64_t, int64_t, const float*, float, float*) {
  fail("perturbed_copy_cuda: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)");
}

void apply_perturbations_cuda(std::span<const ScaledPerturbation>, Distribution, int64_t, int64_t, float*, float) {
  fail("apply_perturbations_cuda: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)");
}

}  // namespace zeroth
