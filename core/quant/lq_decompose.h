// LQ-LoRA's decomposition of a weight matrix (Guo et al., "LQ-LoRA", Alg. 1):
// W (m, n) ≈ Q + L1·L2 with Q in a quantized format and L1 (m, r), L2 (r, n)
// in full precision, by alternating
//   L1·L2 ← the best rank-r approximation of W − Q   (randomized SVD)
//   Q     ← quantize(W − L1·L2)
// from Q = 0, keeping the iterate of least error and stopping as soon as the
// error stops falling (the paper's rule) or after max_iters.
//
// Weighted variant: with row weights ρ (m) and column weights γ (n), the error
// is ‖diag(ρ)^½ (W − Q − L1·L2) diag(γ)^½‖²_F, and the low-rank step takes the
// best rank-r approximation in that norm: D_ρ^-½ · SVD_r(D_ρ^½ (W − Q) D_γ^½) · D_γ^-½
// (LQ-LoRA's row/column-factored Fisher weighting). Empty weights = all ones.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace zeroth {

struct LqOptions {
  int64_t rank = 64;
  int max_iters = 20;
  int power_iters = 2;    // subspace iterations of the randomized SVD from a random start
  int oversample = 8;     // extra columns of the sketch
  uint64_t seed = 0;      // the sketch's random start (Philox, Gaussian)
  bool bf16_factors = true;  // round L1, L2 to bf16 (how they are stored), before the last Q
  std::vector<float> row_weights, col_weights;  // Fisher ρ (m), γ (n); empty = unweighted
};

struct LqResult {
  std::vector<float> q;    // (m, n) row-major: decode(quantize(W − L1·L2)), what the file stores
  std::vector<float> target;  // (m, n) W − L1·L2: quantize() of it gives the packed Q
  std::vector<float> l1;   // (m, r) row-major
  std::vector<float> l2;   // (r, n) row-major
  std::vector<double> errors;  // (weighted) ‖W − Q − L1·L2‖²_F after each iteration
  int iterations = 0;          // run; the result is the best of them
  double error = 0;            // of the result (after bf16 rounding of the factors)
  double norm2 = 0;            // (weighted) ‖W‖²_F, for relative errors
};

// Quantizes each row of x (m, n) to `format` and back: out = decode(encode(x)).
void fake_quantize(DType format, const float* x, int64_t m, int64_t n, float* out);

// Best rank-r approximation of A (m, n) by a randomized SVD: A ≈ U·diag(s)·Vᵀ
// with U (m, r), V (n, r). `start` (n, r + oversample), if given, replaces the
// random sketch (a warm start from the previous iteration's V).
struct LowRank {
  std::vector<float> u, s, v;  // u (m, r), s (r), v (n, r), row-major
};
LowRank randomized_svd(const float* a, int64_t m, int64_t n, int64_t r, int oversample, int power_iters,
                       uint64_t seed, const std::vector<float>* start = nullptr);

// W − L1·L2 of the first iteration (L1·L2 = the weighted SVD_r(W), since Q
// starts at 0): what the first Q quantizes, the same for every format, so the
// allocator scores all configurations of a matrix with one SVD.
std::vector<float> lq_first_target(const float* w, int64_t m, int64_t n, DType format, const LqOptions& opt);

// The decomposition of w (m, n) with Q in `format` (rows of n must split into
// its blocks). rank 0 gives plain quantization (L1, L2 empty).
LqResult lq_decompose(const float* w, int64_t m, int64_t n, DType format, const LqOptions& opt);

}  // namespace zeroth
