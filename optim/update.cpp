// ZerothOrderOptimizer (optim/update.h): ledger entries → θ (and m), with the
// float operations and order documented in the header.
#include "optim/update.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "core/error.h"
#include "core/parallel.h"

namespace zeroth {

const char* update_rule_name(UpdateRule r) {
  switch (r) {
    case UpdateRule::Sgd: return "sgd";
    case UpdateRule::Momentum: return "momentum";
    case UpdateRule::Sign: return "sign";
  }
  return "?";
}

void OptimizerConfig::validate() const {
  ZEROTH_CHECK(std::isfinite(lr) && lr >= 0, "optimizer.lr must be finite and >= 0 (got {})", lr);
  ZEROTH_CHECK(std::isfinite(weight_decay) && weight_decay >= 0,
               "optimizer.weight_decay must be finite and >= 0 (got {})", weight_decay);
  ZEROTH_CHECK(momentum >= 0 && momentum < 1, "optimizer.momentum must be in [0, 1) (got {})", momentum);
  ZEROTH_CHECK(warmup_steps >= 0, "optimizer.warmup_steps must be >= 0 (got {})", warmup_steps);
  ZEROTH_CHECK(total_steps >= 0, "optimizer.total_steps must be >= 0 (got {})", total_steps);
  ZEROTH_CHECK(schedule == LrSchedule::Constant || total_steps == 0 || total_steps > warmup_steps,
               "optimizer.total_steps ({}) must exceed warmup_steps ({}) for a decaying schedule", total_steps,
               warmup_steps);
}

float OptimizerConfig::lr_at(uint64_t step) const {
  const double base = double(lr);
  const double s = double(step);
  if (int64_t(step) < warmup_steps) return float(base * (s + 1.0) / double(warmup_steps));
  if (schedule == LrSchedule::Constant || total_steps == 0) return lr;
  const double span = double(total_steps - warmup_steps);
  double p = (s - double(warmup_steps)) / span;
  p = p < 0 ? 0 : (p > 1 ? 1 : p);
  if (schedule == LrSchedule::Linear) return float(base * (1.0 - p));
  return float(base * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
}

struct ZerothOrderOptimizer::Prepared {
  std::vector<ScaledPerturbation> terms;  // in record order; empty: decay only
  float decay = 1.0f;
  float lr = 0.0f;
};

ZerothOrderOptimizer::ZerothOrderOptimizer(const OptimizerConfig& cfg, TrainableSet& theta, int threads)
    : cfg_(cfg), theta_(theta), threads_(threads) {
  cfg_.validate();
  if (cfg_.rule == UpdateRule::Momentum) m_.assign(size_t(theta_.size()), 0.0f);
}

void ZerothOrderOptimizer::load_momentum(std::span<const float> m) {
  ZEROTH_CHECK(cfg_.rule == UpdateRule::Momentum, "load_momentum: the {} rule has no momentum buffer",
               update_rule_name(cfg_.rule));
  ZEROTH_CHECK(int64_t(m.size()) == theta_.size(), "load_momentum: {} values for a trainable set of {}", m.size(),
               theta_.size());
  m_.assign(m.begin(), m.end());
}

ZerothOrderOptimizer::Prepared ZerothOrderOptimizer::prepare(const StepEntry& e) const {
  ZEROTH_CHECK(e.step <= UINT32_MAX, "step {}: perturbation keys hold 32-bit steps", e.step);
  ZEROTH_CHECK(std::isfinite(e.lr) && std::isfinite(e.scale), "step {}: lr {} and scale {} must be finite", e.step,
               e.lr, e.scale);
  Prepared p;
  p.lr = e.lr;
  p.decay = 1.0f - e.lr * cfg_.weight_decay;
  const float n = float(e.records.size());
  p.terms.reserve(e.records.size());
  for (const Record& r : e.records) {
    const float q = (e.exact ? r.value : decode_gradient(r.code, e.scale)) / n;
    const float c = cfg_.rule == UpdateRule::Sgd ? e.lr * q : -q;
    p.terms.push_back({PerturbationKey{cfg_.run_seed, uint32_t(e.step), key_member(r.member, cfg_.key_group), r.slot}, c});
  }
  return p;
}

void ZerothOrderOptimizer::apply_cuda(const StepEntry& e, std::span<const TrainableSpan> device_tensors) const {
  ZEROTH_CHECK(cfg_.rule == UpdateRule::Sgd, "step {}: θ on a GPU takes the sgd rule; the {} rule keeps θ on the host",
               e.step, update_rule_name(cfg_.rule));
  const auto& host = theta_.tensors();
  ZEROTH_CHECK(device_tensors.size() == host.size(), "step {}: apply_cuda got {} device tensors for θ's {}", e.step,
               device_tensors.size(), host.size());
  for (size_t i = 0; i < host.size(); ++i)
    ZEROTH_CHECK(device_tensors[i].offset == host[i].offset && device_tensors[i].n == host[i].n,
                 "step {}: device tensor {} holds [{}, +{}) but θ's {} is [{}, +{})", e.step, i,
                 device_tensors[i].offset, device_tensors[i].n, host[i].name, host[i].offset, host[i].n);
  const Prepared p = prepare(e);
  for (const TrainableSpan& t : device_tensors)
    apply_perturbations_cuda(p.terms, cfg_.distribution, t.offset, t.n, t.data, p.decay);
}

// θ is cut into windows of global indices [w·kReplayChunk, (w+1)·kReplayChunk);
// a window holds the pieces of every tensor inside it, so small tensors (LoRA
// matrices of a few thousand elements) share one apply call per entry. Each
// element's result depends only on its global index and the entry order, so the
// window split and the thread that runs a window do not matter.
void ZerothOrderOptimizer::run_fused(std::span<const Prepared> entries) {
  ZEROTH_CHECK(theta_.size() <= max_stream_elements(cfg_.distribution),
               "trainable set of {} elements exceeds the {} stream's index space", theta_.size(),
               distribution_name(cfg_.distribution));
  ZEROTH_CHECK(cfg_.rule != UpdateRule::Momentum || int64_t(m_.size()) == theta_.size(),
               "momentum buffer holds {} values but θ has {} (tensors added after the optimizer was made?)",
               m_.size(), theta_.size());
  std::vector<std::vector<TrainableSpan>> windows(size_t((theta_.size() + kReplayChunk - 1) / kReplayChunk));
  for (const TrainableTensor& t : theta_.tensors())
    for (int64_t i = t.offset; i < t.offset + t.n;) {
      const int64_t stop = std::min(t.offset + t.n, (i / kReplayChunk + 1) * kReplayChunk);
      windows[size_t(i / kReplayChunk)].push_back({t.data + (i - t.offset), stop - i, i});
      i = stop;
    }
  const Distribution d = cfg_.distribution;
  const UpdateRule rule = cfg_.rule;
  const float beta = cfg_.momentum;
  float* m = m_.data();
  parallel_for(int64_t(windows.size()), 1, threads_, [&](int64_t b, int64_t e) {
    std::vector<float> a(rule == UpdateRule::Sign ? size_t(kReplayChunk) : 0);
    std::vector<TrainableSpan> aux;  // the window's spans over m or a
    for (int64_t w = b; w < e; ++w) {
      const std::vector<TrainableSpan>& spans = windows[size_t(w)];
      const int64_t base = w * kReplayChunk;  // a[] is indexed from the window start
      aux.clear();
      for (const TrainableSpan& s : spans)
        aux.push_back({rule == UpdateRule::Sign ? a.data() + (s.offset - base) : m + s.offset, s.n, s.offset});
      for (const Prepared& p : entries) {
        if (p.terms.empty()) {
          if (p.decay != 1.0f)
            for (const TrainableSpan& s : spans)
              for (int64_t i = 0; i < s.n; ++i) s.data[i] = s.data[i] * p.decay;
          continue;
        }
        if (rule == UpdateRule::Sgd) {
          apply_perturbations(p.terms, d, spans, p.decay, 1);
          continue;
        }
        if (rule == UpdateRule::Sign) std::fill(a.begin(), a.end(), 0.0f);
        // momentum: m = m·β − acc;  sign: a = 0·1 − acc
        apply_perturbations(p.terms, d, aux, rule == UpdateRule::Momentum ? beta : 1.0f, 1);
        for (size_t t = 0; t < spans.size(); ++t) {
          float* th = spans[t].data;
          const float* v = aux[t].data;
          if (rule == UpdateRule::Momentum) {
            for (int64_t i = 0; i < spans[t].n; ++i) th[i] = th[i] * p.decay - p.lr * v[i];
          } else {
            for (int64_t i = 0; i < spans[t].n; ++i) {
              const float sg = v[i] > 0.0f ? 1.0f : (v[i] < 0.0f ? -1.0f : 0.0f);
              th[i] = th[i] * p.decay - p.lr * sg;
            }
          }
        }
      }
    }
  });
}

void ZerothOrderOptimizer::apply(const StepEntry& entry) {
  Prepared p = prepare(entry);
  if (cfg_.rule == UpdateRule::Sgd && !p.terms.empty()) {
    // One entry: core's multi-tensor apply shares chunks of every tensor among threads.
    ZEROTH_CHECK(theta_.size() <= max_stream_elements(cfg_.distribution),
                 "trainable set of {} elements exceeds the {} stream's index space", theta_.size(),
                 distribution_name(cfg_.distribution));
    const std::vector<TrainableSpan> spans = theta_.spans();
    apply_perturbations(p.terms, cfg_.distribution, spans, p.decay, threads_);
    return;
  }
  run_fused(std::span<const Prepared>(&p, 1));
}

void ZerothOrderOptimizer::replay(std::span<const StepEntry> entries) {
  std::vector<Prepared> prepared;
  prepared.reserve(entries.size());
  for (const StepEntry& e : entries) prepared.push_back(prepare(e));  // all checks before θ changes
  run_fused(prepared);
}

}  // namespace zeroth
