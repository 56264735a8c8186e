// Fused apply of many perturbations to trainable parameters in one pass over θ:
//   θ[i] <- θ[i] * decay - acc[i],   acc[i] = sum_k c_k * z_k[i]   (k = 0 .. K-1)
// for the global indices i of the trainable index space (core/perturb.h), so a
// tensor, a slice or a shard is updated alone with the same bits as the whole.
//
// Fixed float operations and order (determinism rule; every backend matches
// apply_perturbations_reference bit for bit):
//   acc = +0.0f;  for k in 0..K-1: acc = acc + (c_k * z_k[i]);  θ = (θ * decay) - acc
// each operation rounded separately (no FMA). For Rademacher z, c_k * (+-1) is
// c_k with its sign bit flipped, which is what the fast paths compute: exact.
// decay = 1 leaves θ * decay == θ, so plain ZO-SGD uses the same formula.
//
// A step's entry becomes terms with c_k = lr * g_k / N (optim/ does that); many
// entries of a catch-up replay are concatenated into one list of terms.
#pragma once
#include <cstdint>
#include <span>

#include "core/perturb.h"

namespace zeroth {

// One perturbation with its coefficient: contributes -coeff * z(key) to θ.
struct ScaledPerturbation {
  PerturbationKey key;
  float coeff = 0.0f;
};

// A contiguous f32 tensor (or part of one) placed at global indices
// [offset, offset + n) of the trainable index space.
struct TrainableSpan {
  float* data = nullptr;
  int64_t n = 0;
  int64_t offset = 0;
};

// Elements of θ per work item: acc and one z buffer of this size stay in L1/L2
// (2 x 8 KiB) while all K terms are summed into it.
constexpr int64_t kApplyChunk = 2048;

// θ[0, n) holds global indices [offset, offset + n). AVX2 fast path, split in
// chunks over `threads` threads (<= 0: all); results do not depend on threads.
void apply_perturbations(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset, int64_t n,
                         float* theta, float decay = 1.0f, int threads = 0);

// Several tensors in one call (e.g. the LoRA A/B matrices of every layer), each
// at its own global offset; chunks of all tensors are shared among the threads.
void apply_perturbations(std::span<const ScaledPerturbation> terms, Distribution d,
                         std::span<const TrainableSpan> tensors, float decay = 1.0f, int threads = 0);

// The scalar reference: one element at a time from generate_z_reference, the
// formula above written out. Single-threaded; the oracle for every fast path.
void apply_perturbations_reference(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset,
                                   int64_t n, float* theta, float decay = 1.0f);

// The same on a CUDA device pointer theta_device[0, n); the terms are host memory.
// Waits for the kernel. The stub backend throws "built without CUDA".
void apply_perturbations_cuda(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset,
                              int64_t n, float* theta_device, float decay = 1.0f);

}  // namespace zeroth
