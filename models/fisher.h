// LQ-LoRA's data-aware weighting (Guo et al.): a diagonal Fisher approximation
// F_ij ≈ E[(∂L/∂W_ij)²] of every base projection W (out, in), over calibration
// batches of text under the LM loss, kept row/column-factored: only
//   row_i = Σ_batches Σ_j (∂L_b/∂W_ij)²,   col_j = Σ_batches Σ_i (∂L_b/∂W_ij)²
// are accumulated (divided by the number of batches: the expectation), never F.
// L_b is the mean NLL of batch b's predicted tokens.
//
// ∂L_b/∂W = dyᵀ·x (x the projection's input rows, dy the gradient of its
// output) is formed as one dense (out, in) GEMM per projection per batch, in
// the backward's projection hook (BackwardOptions::projection_hook), squared
// and summed into the two vectors, then dropped: at most one projection's dW
// is alive at a time. (An exact cheaper form exists for short batches —
// row_i = (dyᵀ·(x xᵀ)·dy)_ii needs n² (in + out) instead of n·in·out — but at
// the batch lengths used here the dense GEMM is simpler and not the cost that
// matters; the backward itself is.)
//
// fisher_weights() turns them into the decomposition's row/column weights:
// the rank-1 fit F ≈ row·colᵀ / S (S = Σ row = Σ col, so the fit keeps F's row
// and column sums), split as ρ = row/√S, γ = col/√S, so that ρ_i γ_j is the
// fitted F_ij itself and weighted errors Σ ρ_i γ_j ΔW_ij² are comparable
// across matrices (the allocator adds them up).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "models/llama.h"

namespace zeroth {

struct ProjectionFisher {
  std::vector<double> row;  // (out): Σ_j F_ij
  std::vector<double> col;  // (in):  Σ_i F_ij
};

struct FisherStats {
  int n_layers = 0;
  int64_t batches = 0, tokens = 0;  // tokens: predicted tokens over all batches
  double mean_loss = 0;             // mean over batches of the batch's mean NLL
  std::vector<ProjectionFisher> proj;  // index layer·kProjCount + proj, rows in the model's row order
  const ProjectionFisher& at(int layer, Proj p) const { return proj[size_t(layer) * kProjCount + size_t(p)]; }
};

struct FisherOptions {
  int64_t batch_docs = 1;  // documents (cut at the context) per batch, in order; each batch's gradient is
                           // one sample of the expectation (1: per-document gradients)
  bool checkpoint = false;     // BackwardOptions::checkpoint
};

// The Fisher statistics of `model`'s base projections over `docs` (token ids,
// BOS included). Documents of fewer than 2 tokens are skipped; fails when
// nothing is left to predict.
FisherStats accumulate_fisher(const LlamaModel& model, const std::vector<std::vector<int32_t>>& docs,
                              const FisherOptions& opt = {});

// ρ (rows), γ (cols) as described above, every entry floored at 1e-6 of its
// vector's mean (the weighted SVD divides by √ρ, √γ). Fails, naming the
// matrix, when its statistics are all zero.
std::pair<std::vector<float>, std::vector<float>> fisher_weights(const ProjectionFisher& f, int layer, Proj p);

}  // namespace zeroth
