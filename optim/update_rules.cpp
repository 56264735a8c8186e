// The adaptive rules (adam, adamezo), ZO-Muon and ALLoRA's row scaling
// (optim/update.h): each forms ĝ over a piece of θ, turns it into the rule's
// direction d, and steps θ = θ·decay − lr·d (per-row lr with ALLoRA), with the
// float operations and order documented in the header.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "optim/layer_sampling.h"
#include "optim/newton_schulz.h"
#include "optim/update.h"

namespace zeroth {

namespace {

using Terms = std::vector<ScaledPerturbation>;

// a = ĝ over `spans` (each span's data points into the scratch it fills):
// a = 0·1 − Σ_k (−q_k)·z_k, as the sign rule forms it.
void estimate(const Terms& terms, Distribution d, std::span<const TrainableSpan> spans) {
  for (const TrainableSpan& s : spans) std::fill(s.data, s.data + s.n, 0.0f);
  apply_perturbations(terms, d, spans, 1.0f, 1);
}

struct Moments {
  float beta1, beta2, omb1, omb2;  // β and float(1 − β)
  void fold(const float* a, float* m, float* v, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      m[i] = m[i] * beta1 + omb1 * a[i];
      v[i] = v[i] * beta2 + omb2 * (a[i] * a[i]);
    }
  }
};

Moments moments_of(const OptimizerConfig& c) {
  return {c.beta1, c.beta2, float(1.0f - c.beta1), float(1.0f - c.beta2)};
}

// d = (m / bc1) / (sqrt(v / bc2) + eps)
void adam_direction(const float* m, const float* v, int64_t n, float bc1, float bc2, float eps, float* d) {
  for (int64_t i = 0; i < n; ++i) d[i] = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
}

// Spans over `buffer` (indexed from global `base`) matching `spans` of θ.
std::vector<TrainableSpan> spans_over(float* buffer, int64_t base, std::span<const TrainableSpan> spans) {
  std::vector<TrainableSpan> out;
  out.reserve(spans.size());
  for (const TrainableSpan& s : spans) out.push_back({buffer + (s.offset - base), s.n, s.offset});
  return out;
}

// x = 0 where the mask (from x's first element) is off: trainable.sparse_density.
void mask_out(float* x, const uint8_t* mask, int64_t n) {
  if (mask == nullptr) return;
  for (int64_t i = 0; i < n; ++i) x[i] = mask[i] ? x[i] : 0.0f;
}

// θ = θ·decay; with a sparse mask (indexed by global offset) only its coordinates.
void decay_only(std::span<const TrainableSpan> spans, float decay, const uint8_t* mask = nullptr) {
  if (decay == 1.0f) return;
  for (const TrainableSpan& s : spans) {
    if (mask == nullptr) {
      for (int64_t i = 0; i < s.n; ++i) s.data[i] = s.data[i] * decay;
    } else {
      const uint8_t* m = mask + s.offset;
      for (int64_t i = 0; i < s.n; ++i) s.data[i] = m[i] ? s.data[i] * decay : s.data[i];
    }
  }
}

// θ = θ·decay − lr·d; with a mask (from θ's first element) the other coordinates stay as they are.
void step(float* theta, const float* d, float decay, float lr, const uint8_t* mask, int64_t n) {
  if (mask == nullptr) {
    for (int64_t i = 0; i < n; ++i) theta[i] = theta[i] * decay - lr * d[i];
  } else {
    for (int64_t i = 0; i < n; ++i) theta[i] = mask[i] ? theta[i] * decay - lr * d[i] : theta[i];
  }
}

}  // namespace

void ZerothOrderOptimizer::run_fused_adaptive(std::span<const Prepared> entries) {
  check_sizes();
  const std::vector<std::vector<TrainableSpan>> windows = replay_windows(theta_);
  const Distribution dist = cfg_.distribution;
  const bool adam = cfg_.rule == UpdateRule::Adam;
  const Moments mom = moments_of(cfg_);
  const float eps = cfg_.adam_eps;
  parallel_for(int64_t(windows.size()), 1, threads_, [&](int64_t b, int64_t e) {
    const size_t W = static_cast<size_t>(kReplayChunk);
    std::vector<float> a(W), d(W);
    std::vector<float> mw(adam ? 0 : W), vw(adam ? 0 : W);
    for (int64_t w = b; w < e; ++w) {
      const std::vector<TrainableSpan>& spans = windows[size_t(w)];
      const int64_t base = w * kReplayChunk;
      const std::vector<TrainableSpan> as = spans_over(a.data(), base, spans);
      for (const Prepared& p : entries) {
        if (p.terms->empty()) {
          decay_only(spans, p.decay);
          continue;
        }
        // The span's moments: adam's buffers at its global offset, adamezo's scratch at its window offset.
        auto m_of = [&](const TrainableSpan& s) { return adam ? m_.data() + s.offset : mw.data() + (s.offset - base); };
        auto v_of = [&](const TrainableSpan& s) { return adam ? v_.data() + s.offset : vw.data() + (s.offset - base); };
        auto a_of = [&](const TrainableSpan& s) { return a.data() + (s.offset - base); };
        if (adam) {
          estimate(*p.terms, dist, as);
          for (const TrainableSpan& s : spans) mom.fold(a_of(s), m_of(s), v_of(s), s.n);
        } else {  // adamezo: the moments from zero over the window's entries, oldest first
          std::fill(mw.begin(), mw.end(), 0.0f);
          std::fill(vw.begin(), vw.end(), 0.0f);
          for (const auto& terms : p.window) {
            estimate(*terms, dist, as);
            for (const TrainableSpan& s : spans) mom.fold(a_of(s), m_of(s), v_of(s), s.n);
          }
        }
        for (const TrainableSpan& s : spans) {
          float* dd = d.data() + (s.offset - base);
          adam_direction(m_of(s), v_of(s), s.n, p.bc1, p.bc2, eps, dd);
          for (int64_t i = 0; i < s.n; ++i) s.data[i] = s.data[i] * p.decay - p.lr * dd[i];
        }
      }
    }
  });
}

void ZerothOrderOptimizer::run_tensorwise(std::span<const Prepared> entries) {
  check_sizes();
  const auto& tensors = theta_.tensors();
  const Distribution dist = cfg_.distribution;
  const Moments mom = moments_of(cfg_);
  const float eps = cfg_.adam_eps, beta = cfg_.momentum;
  const double inv_eta2 = cfg_.allora_eta > 0 ? 1.0 / (double(cfg_.allora_eta) * double(cfg_.allora_eta)) : 0.0;
  const uint8_t* mask0 = theta_.masked() ? theta_.mask().data() : nullptr;  // trainable.sparse_density
  for (const Prepared& p : entries) {
    if (p.terms->empty()) {
      decay_only(theta_.spans(), p.decay, mask0);
      continue;
    }
    const std::vector<uint8_t> active = sampled_layers(cfg_.run_seed, p.step, layers_, cfg_.lisa_layers);
    parallel_for(int64_t(tensors.size()), 1, threads_, [&](int64_t tb, int64_t te) {
      std::vector<float> a, mw, vw, b, z;
      for (int64_t ti = tb; ti < te; ++ti) {
        const TrainableTensor& t = tensors[size_t(ti)];
        if (const int layer = tensor_layer(t.name); layer >= 0 && !active[size_t(layer)]) {
          // LISA: a layer that sits this step out only decays; its state waits.
          const TrainableSpan span{t.data, t.n, t.offset};
          decay_only({&span, 1}, p.decay, mask0);
          continue;
        }
        a.resize(size_t(t.n));
        const TrainableSpan as{a.data(), t.n, t.offset};
        float* d = a.data();  // the direction overwrites ĝ in place
        // ĝ, where a sparse mask is set only on its coordinates (the others' state stays 0).
        const uint8_t* mask = mask0 != nullptr ? mask0 + t.offset : nullptr;
        auto estimate = [&](const Terms& terms) {
          if (!cfg_.directions.plain()) {  // LOZO's or the orthogonal slots' z: acc = Σ_k c_k·z_k, a = 0·1 − acc
            z.resize(size_t(t.n));
            b.assign(size_t(t.n), 0.0f);
            for (const ScaledPerturbation& term : terms) {
              perturbation_z(theta_, term.key, dist, cfg_.directions, t.offset, t.offset + t.n, z.data());
              for (int64_t i = 0; i < t.n; ++i) b[size_t(i)] = b[size_t(i)] + term.coeff * z[size_t(i)];
            }
            for (int64_t i = 0; i < t.n; ++i) a[size_t(i)] = 0.0f * 1.0f - b[size_t(i)];
          } else {
            zeroth::estimate(terms, dist, {&as, 1});
          }
          mask_out(a.data(), mask, t.n);
        };
        switch (cfg_.rule) {
          case UpdateRule::Sgd:
            estimate(*p.terms);
            break;
          case UpdateRule::Momentum: {
            estimate(*p.terms);
            float* m = m_.data() + t.offset;
            for (int64_t i = 0; i < t.n; ++i) d[i] = m[i] = m[i] * beta + a[i];
            break;
          }
          case UpdateRule::Sign:
            estimate(*p.terms);
            for (int64_t i = 0; i < t.n; ++i) d[i] = a[i] > 0.0f ? 1.0f : (a[i] < 0.0f ? -1.0f : 0.0f);
            break;
          case UpdateRule::Adam:
            estimate(*p.terms);
            mom.fold(a.data(), m_.data() + t.offset, v_.data() + t.offset, t.n);
            adam_direction(m_.data() + t.offset, v_.data() + t.offset, t.n, p.bc1, p.bc2, eps, d);
            break;
          case UpdateRule::AdaMezo:
            mw.assign(size_t(t.n), 0.0f);
            vw.assign(size_t(t.n), 0.0f);
            for (const auto& terms : p.window) {
              estimate(*terms);
              mom.fold(a.data(), mw.data(), vw.data(), t.n);
            }
            adam_direction(mw.data(), vw.data(), t.n, p.bc1, p.bc2, eps, d);
            break;
          case UpdateRule::Muon:
            estimate(*p.terms);
            if (t.shape.size() == 2 && t.shape[0] > 1 && t.shape[1] > 1) {
              const int64_t rows = t.shape[0], cols = t.shape[1];
              newton_schulz(a.data(), rows, cols, cfg_.muon_steps, d);
              const float scale = float(std::sqrt(std::max(1.0, double(rows) / double(cols))));
              for (int64_t i = 0; i < t.n; ++i) d[i] = d[i] * scale;
              mask_out(d, mask, t.n);  // orthogonalization spreads ĝ over every coordinate
            }
            break;
          case UpdateRule::HiZoo: {
            estimate(*p.terms);
            float* D = d_.data() + t.offset;
            for (int64_t i = 0; i < t.n; ++i) d[i] = a[i] / std::sqrt(D[i]);
            if (p.curvature.empty()) break;
            // D moves toward h·D⊙z² (the direction d was formed from the D the members used).
            b.assign(size_t(t.n), 0.0f);
            z.resize(size_t(t.n));
            for (const ScaledPerturbation& c : p.curvature) {
              generate_z(c.key, dist, t.offset, t.offset + t.n, z.data());
              for (int64_t i = 0; i < t.n; ++i) b[size_t(i)] = b[size_t(i)] + c.coeff * (z[size_t(i)] * z[size_t(i)]);
            }
            const float keep = float(1.0f - cfg_.hessian_smooth), alpha = cfg_.hessian_smooth;
            for (int64_t i = 0; i < t.n; ++i) D[i] = D[i] * keep + alpha * (b[size_t(i)] * D[i]);
            break;
          }
        }
        if (inv_eta2 == 0.0) {
          step(t.data, d, p.decay, p.lr, mask, t.n);
          continue;
        }
        // ALLoRA: rows of a matrix (a vector is one row), norms before the step.
        const int64_t cols = t.shape.size() == 2 ? t.shape[1] : t.n;
        for (int64_t r0 = 0; r0 < t.n; r0 += cols) {
          double sq = 0;
          for (int64_t i = r0; i < r0 + cols; ++i) sq = sq + double(t.data[i]) * double(t.data[i]);
          const float lr_row = p.lr * float(1.0 / std::sqrt(sq + inv_eta2));
          step(t.data + r0, d + r0, p.decay, lr_row, mask != nullptr ? mask + r0 : nullptr, cols);
        }
      }
    });
  }
}

}  // namespace zeroth
