// Orthogonalizing a matrix by Newton–Schulz iterations, for ZO-Muon
// (optim/update.h): the step estimate of a rows × cols matrix G becomes
// approximately U·Vᵀ of its SVD G = U·S·Vᵀ, every singular value pushed
// towards 1, without an SVD.
//
//   X = G / (‖G‖_F + 1e-7), on Gᵀ when rows > cols (so X·Xᵀ is the small Gram)
//   repeat `steps` times:  A = X·Xᵀ;  B = b·A + c·(A·A);  X = a·X + B·X
// with the quintic's coefficients (a, b, c) = (3.4445, −4.7750, 2.0315) from
// the Muon optimizer, which drive singular values in (0, 1] into about
// [0.7, 1.2] in five steps.
//
// Determinism: plain loops in double, every sum in index order from +0.0,
// each operation rounded separately (no FMA: -ffp-contract=off), so every
// replica on every machine gets the same bits. Cost per step about
// 2·r²·c + r³ multiply-adds for r = min(rows, cols), c = max(rows, cols):
// cheap for LoRA factors (r = the LoRA rank), slow for big full-weight matrices.
#pragma once
#include <cstdint>

namespace zeroth {

// out[rows × cols] (row-major) = the orthogonalized g[rows × cols]; a zero g
// gives zeros. out may alias g.
void newton_schulz(const float* g, int64_t rows, int64_t cols, int steps, float* out);

}  // namespace zeroth
