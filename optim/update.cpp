// ZerothOrderOptimizer (optim/update.h): ledger entries → θ (and m), with the
// float operations and order documented in the header.
#include "optim/update.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "core/error.h"
#include "core/parallel.h"
#include "optim/layer_sampling.h"

namespace zeroth {

namespace {
constexpr std::pair<UpdateRule, const char*> kRuleNames[] = {
    {UpdateRule::Sgd, "sgd"},   {UpdateRule::Momentum, "momentum"}, {UpdateRule::Sign, "sign"},
    {UpdateRule::Adam, "adam"}, {UpdateRule::AdaMezo, "adamezo"},   {UpdateRule::Muon, "muon"},
    {UpdateRule::HiZoo, "hizoo"}};
}  // namespace

const char* update_rule_name(UpdateRule r) {
  for (const auto& [rule, name] : kRuleNames)
    if (rule == r) return name;
  return "?";
}

UpdateRule parse_update_rule(const std::string& name, const char* key) {
  for (const auto& [rule, n] : kRuleNames)
    if (name == n) return rule;
  throw Error(fmt::format("{}: \"{}\" is not an update rule (sgd, momentum, sign, adam, adamezo, muon or hizoo)", key, name));
}

void OptimizerConfig::validate() const {
  ZEROTH_CHECK(std::isfinite(lr) && lr >= 0, "optimizer.lr must be finite and >= 0 (got {})", lr);
  ZEROTH_CHECK(std::isfinite(weight_decay) && weight_decay >= 0,
               "optimizer.weight_decay must be finite and >= 0 (got {})", weight_decay);
  ZEROTH_CHECK(momentum >= 0 && momentum < 1, "optimizer.momentum must be in [0, 1) (got {})", momentum);
  ZEROTH_CHECK(beta1 >= 0 && beta1 < 1, "optimizer.beta1 must be in [0, 1) (got {})", beta1);
  ZEROTH_CHECK(beta2 >= 0 && beta2 < 1, "optimizer.beta2 must be in [0, 1) (got {})", beta2);
  ZEROTH_CHECK(std::isfinite(adam_eps) && adam_eps > 0, "optimizer.adam_eps must be finite and > 0 (got {})",
               adam_eps);
  ZEROTH_CHECK(horizon >= 1 && horizon <= 4096, "optimizer.horizon must be in 1..4096 (got {}): adamezo recomputes "
               "its moments from that many entries at every step", horizon);
  ZEROTH_CHECK(muon_steps >= 1 && muon_steps <= 20, "optimizer.muon_steps must be in 1..20 (got {})", muon_steps);
  ZEROTH_CHECK(grad_weight < 0.0f || grad_weight <= 1.0f, "optimizer.grad_weight must be in [0, 1] (got {}; "
               "unset or -1 turns Addax's mix off)", grad_weight);
  ZEROTH_CHECK(lisa_layers >= 0, "zo.lisa_layers must be >= 0 (got {}; 0 samples no layers)", lisa_layers);
  ZEROTH_CHECK(lisa_layers == 0 || rule != UpdateRule::AdaMezo, "zo.lisa_layers with optimizer.rule adamezo: "
               "AdaMeZO's window would mix steps in which a layer sat out; use adam, or set zo.lisa_layers 0");
  ZEROTH_CHECK(lisa_layers == 0 || rule != UpdateRule::HiZoo, "zo.lisa_layers with optimizer.rule hizoo: the "
               "curvature estimate of a layer that sat a step out would take that step's curvature; set zo.lisa_layers 0");
  directions.validate();
  ZEROTH_CHECK(directions.plain() || rule != UpdateRule::HiZoo, "zo.lozo_rank or zo.orthogonal_slots with "
               "optimizer.rule hizoo: its curvature estimate reads each record's plain z; drop one");
  ZEROTH_CHECK(std::isfinite(hessian_smooth) && hessian_smooth > 0 && hessian_smooth < 1,
               "optimizer.hessian_smooth must be in (0, 1) (got {}): hizoo's EMA weight of each step's curvature",
               hessian_smooth);
  ZEROTH_CHECK(std::isfinite(allora_eta) && allora_eta >= 0,
               "optimizer.allora_eta must be finite and >= 0 (got {}; 0 turns ALLoRA off)", allora_eta);
  ZEROTH_CHECK(warmup_steps >= 0, "optimizer.warmup_steps must be >= 0 (got {})", warmup_steps);
  ZEROTH_CHECK(total_steps >= 0, "optimizer.total_steps must be >= 0 (got {})", total_steps);
  ZEROTH_CHECK(schedule == LrSchedule::Constant || total_steps == 0 || total_steps > warmup_steps,
               "optimizer.total_steps ({}) must exceed warmup_steps ({}) for a decaying schedule", total_steps,
               warmup_steps);
}

int64_t OptimizerConfig::state_floats(int64_t theta_size) const {
  if (rule == UpdateRule::Adam) return 2 * theta_size;
  if (rule == UpdateRule::Momentum || rule == UpdateRule::HiZoo) return theta_size;
  return 0;
}

bool OptimizerConfig::stateless() const {
  return rule == UpdateRule::Sgd || rule == UpdateRule::Sign || rule == UpdateRule::Muon;
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

ZerothOrderOptimizer::ZerothOrderOptimizer(const OptimizerConfig& cfg, TrainableSet& theta, int threads)
    : cfg_(cfg), theta_(theta), threads_(threads) {
  cfg_.validate();
  if (cfg_.rule == UpdateRule::Momentum || cfg_.rule == UpdateRule::Adam) m_.assign(size_t(theta_.size()), 0.0f);
  if (cfg_.rule == UpdateRule::Adam) v_.assign(size_t(theta_.size()), 0.0f);
  if (cfg_.rule == UpdateRule::HiZoo) {
    d_.assign(size_t(theta_.size()), 1.0f);
    theta_.set_curvature(d_);  // members perturb θ along z/√D
  }
  layers_ = layer_count(theta_);
}

ZerothOrderOptimizer::~ZerothOrderOptimizer() {
  // Only our own loan: a successor may already have lent its D to θ.
  if (!d_.empty() && theta_.curvature().data() == d_.data()) theta_.set_curvature({});
}

void ZerothOrderOptimizer::load_momentum(std::span<const float> m) {
  ZEROTH_CHECK(cfg_.rule == UpdateRule::Momentum, "load_momentum: the {} rule has no momentum buffer",
               update_rule_name(cfg_.rule));
  ZEROTH_CHECK(int64_t(m.size()) == theta_.size(), "load_momentum: {} values for a trainable set of {}", m.size(),
               theta_.size());
  m_.assign(m.begin(), m.end());
}

bool ZerothOrderOptimizer::legacy_path() const {
  return cfg_.allora_eta == 0.0f && cfg_.lisa_layers == 0 && !theta_.masked() && cfg_.directions.plain() &&
         (cfg_.rule == UpdateRule::Sgd || cfg_.rule == UpdateRule::Momentum || cfg_.rule == UpdateRule::Sign);
}

ZerothOrderOptimizer::Prepared ZerothOrderOptimizer::prepare(const StepEntry& e) const {
  ZEROTH_CHECK(e.step <= UINT32_MAX, "step {}: perturbation keys hold 32-bit steps", e.step);
  ZEROTH_CHECK(std::isfinite(e.lr) && std::isfinite(e.scale), "step {}: lr {} and scale {} must be finite", e.step,
               e.lr, e.scale);
  Prepared p;
  p.step = e.step;
  p.lr = e.lr;
  p.decay = 1.0f - e.lr * cfg_.weight_decay;
  // hizoo's curvature records move D, not θ: they stay out of ĝ and its counts.
  size_t n_curv = 0;
  for (const Record& r : e.records) n_curv += r.kind == RecordKind::Curvature;
  ZEROTH_CHECK(n_curv == 0 || cfg_.rule == UpdateRule::HiZoo, "step {}: {} curvature record(s) in a run of the {} rule "
               "(only hizoo reads them)", e.step, n_curv, update_rule_name(cfg_.rule));
  const size_t n_rec = e.records.size() - n_curv;
  const float n = float(n_rec);
  auto terms = std::make_shared<std::vector<ScaledPerturbation>>();
  terms->reserve(n_rec);
  // The sgd fast path folds lr into the coefficients; every other path forms ĝ (c_k = −q_k).
  const bool lr_in_terms = cfg_.rule == UpdateRule::Sgd && legacy_path();
  // Addax's mix: each kind's mean, weighted, where the entry holds both kinds.
  size_t n_grad = 0;
  for (const Record& r : e.records) n_grad += r.kind == RecordKind::Gradient;
  const bool mix = cfg_.grad_weight >= 0.0f && n_grad > 0 && n_grad < n_rec;
  const float w_grad = cfg_.grad_weight, w_zo = 1.0f - cfg_.grad_weight;
  const float n_g = float(n_grad), n_z = float(n_rec - n_grad);
  for (const Record& r : e.records) {
    if (r.kind == RecordKind::Curvature) {
      const float h = e.exact ? r.value : decode_curvature(r.code);
      ZEROTH_CHECK(std::isfinite(h) && h >= 0, "step {}: curvature record (member {}, slot {}) holds {}", e.step,
                   r.member, r.slot, h);
      p.curvature.push_back(
          {PerturbationKey{cfg_.run_seed, uint32_t(e.step), key_member(r.member, cfg_.key_group), r.slot},
           h / float(n_curv)});
      continue;
    }
    const float g = e.exact ? r.value : decode_gradient(r.code, e.scale);
    const float q = !mix ? g / n : (r.kind == RecordKind::Gradient ? (g * w_grad) / n_g : (g * w_zo) / n_z);
    const float c = lr_in_terms ? e.lr * q : -q;
    terms->push_back({PerturbationKey{cfg_.run_seed, uint32_t(e.step), key_member(r.member, cfg_.key_group), r.slot}, c});
  }
  p.terms = std::move(terms);
  return p;
}

std::vector<ZerothOrderOptimizer::Prepared> ZerothOrderOptimizer::prepare_all(std::span<const StepEntry> entries) const {
  std::vector<Prepared> out;
  out.reserve(entries.size());
  uint64_t t = moment_steps_;
  std::vector<std::shared_ptr<const std::vector<ScaledPerturbation>>> window = recent_;
  for (const StepEntry& e : entries) {
    Prepared p = prepare(e);
    if (!p.terms->empty()) {
      ++t;
      if (cfg_.rule == UpdateRule::AdaMezo) {
        window.push_back(p.terms);
        if (window.size() > size_t(cfg_.horizon)) window.erase(window.begin());
        p.window = window;
      }
      // β^n as a product of n factors in double, rounded once: the same on every machine.
      const uint64_t n = cfg_.rule == UpdateRule::AdaMezo ? window.size() : t;
      double pow1 = 1, pow2 = 1;
      if (cfg_.rule == UpdateRule::Adam || cfg_.rule == UpdateRule::AdaMezo)
        for (uint64_t i = 0; i < n; ++i) {
          pow1 = pow1 * double(cfg_.beta1);
          pow2 = pow2 * double(cfg_.beta2);
        }
      p.bc1 = float(1.0 - pow1);
      p.bc2 = float(1.0 - pow2);
    }
    out.push_back(std::move(p));
  }
  return out;
}

void ZerothOrderOptimizer::commit_prepared(std::span<const Prepared> entries) {
  for (const Prepared& p : entries) {
    if (p.terms->empty()) continue;
    ++moment_steps_;
    if (cfg_.rule == UpdateRule::AdaMezo) recent_ = p.window;
  }
}

void ZerothOrderOptimizer::check_sizes() const {
  ZEROTH_CHECK(theta_.size() <= max_stream_elements(cfg_.distribution),
               "trainable set of {} elements exceeds the {} stream's index space", theta_.size(),
               distribution_name(cfg_.distribution));
  ZEROTH_CHECK(m_.empty() || int64_t(m_.size()) == theta_.size(),
               "the optimizer's buffers hold {} values but θ has {} (tensors added after the optimizer was made?)",
               m_.size(), theta_.size());
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
  ZEROTH_CHECK(legacy_path(), "step {}: θ on a GPU takes the plain sgd rule (no optimizer.allora_eta, "
               "zo.lisa_layers, zo.lozo_rank, zo.orthogonal_slots or trainable.sparse_density)", e.step);
  const Prepared p = prepare(e);
  for (const TrainableSpan& t : device_tensors)
    apply_perturbations_cuda(*p.terms, cfg_.distribution, t.offset, t.n, t.data, p.decay);
}

// θ is cut into windows of global indices [w·kReplayChunk, (w+1)·kReplayChunk);
// a window holds the pieces of every tensor inside it, so small tensors (LoRA
// matrices of a few thousand elements) share one apply call per entry. Each
// element's result depends only on its global index and the entry order, so the
// window split and the thread that runs a window do not matter.
void ZerothOrderOptimizer::run_fused(std::span<const Prepared> entries) {
  check_sizes();
  const std::vector<std::vector<TrainableSpan>> windows = replay_windows(theta_);
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
        if (p.terms->empty()) {
          if (p.decay != 1.0f)
            for (const TrainableSpan& s : spans)
              for (int64_t i = 0; i < s.n; ++i) s.data[i] = s.data[i] * p.decay;
          continue;
        }
        if (rule == UpdateRule::Sgd) {
          apply_perturbations(*p.terms, d, spans, p.decay, 1);
          continue;
        }
        if (rule == UpdateRule::Sign) std::fill(a.begin(), a.end(), 0.0f);
        // momentum: m = m·β − acc;  sign: a = 0·1 − acc
        apply_perturbations(*p.terms, d, aux, rule == UpdateRule::Momentum ? beta : 1.0f, 1);
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

std::vector<std::vector<TrainableSpan>> replay_windows(const TrainableSet& theta) {
  constexpr int64_t W = ZerothOrderOptimizer::kReplayChunk;
  std::vector<std::vector<TrainableSpan>> windows(size_t((theta.size() + W - 1) / W));
  for (const TrainableTensor& t : theta.tensors())
    for (int64_t i = t.offset; i < t.offset + t.n;) {
      const int64_t stop = std::min(t.offset + t.n, (i / W + 1) * W);
      windows[size_t(i / W)].push_back({t.data + (i - t.offset), stop - i, i});
      i = stop;
    }
  return windows;
}

void ZerothOrderOptimizer::apply(const StepEntry& entry) {
  std::vector<Prepared> p = prepare_all(std::span<const StepEntry>(&entry, 1));
  if (cfg_.rule == UpdateRule::Sgd && legacy_path() && !p[0].terms->empty()) {
    // One entry: core's multi-tensor apply shares chunks of every tensor among threads.
    check_sizes();
    const std::vector<TrainableSpan> spans = theta_.spans();
    apply_perturbations(*p[0].terms, cfg_.distribution, spans, p[0].decay, threads_);
  } else {
    run(p);
  }
  commit_prepared(p);
}

void ZerothOrderOptimizer::replay(std::span<const StepEntry> entries) {
  const std::vector<Prepared> prepared = prepare_all(entries);  // all checks before θ changes
  run(prepared);
  commit_prepared(prepared);
}

void ZerothOrderOptimizer::run(std::span<const Prepared> entries) {
  if (legacy_path())
    run_fused(entries);
  else if (cfg_.allora_eta == 0.0f && cfg_.lisa_layers == 0 && !theta_.masked() && cfg_.directions.plain() &&
           cfg_.rule != UpdateRule::Muon &&
           cfg_.rule != UpdateRule::HiZoo)
    run_fused_adaptive(entries);
  else
    run_tensorwise(entries);
}

}  // namespace zeroth
