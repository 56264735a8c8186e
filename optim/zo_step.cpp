#include "optim/zo_step.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/philox.h"

namespace zeroth {

void ZoConfig::validate() const {
  ZEROTH_CHECK(q >= 1 && q <= 4096, "zo.q must be in 1..4096, got {}", q);
  ZEROTH_CHECK(eps > 0 && std::isfinite(eps), "zo.eps must be positive, got {}", eps);
  ZEROTH_CHECK(samples >= 1, "zo.samples must be >= 1, got {}", samples);
  ZEROTH_CHECK(redundancy >= 1 && redundancy <= 1024, "zo.redundancy must be in 1..1024, got {}", redundancy);
  ZEROTH_CHECK(lisa_layers >= 0, "zo.lisa_layers must be >= 0 (0 = every layer), got {}", lisa_layers);
  ZEROTH_CHECK(std::isfinite(eps_final) && eps_final >= 0,
               "zo.eps_final must be finite and > 0 (or 0: ε stays zo.eps), got {}", eps_final);
  ZEROTH_CHECK((eps_final == 0) == (eps_steps == 0), "zo.eps_final ({}) and zo.eps_steps ({}) go together: ε moves "
               "from zo.eps to zo.eps_final over zo.eps_steps steps (set both, or neither)", eps_final, eps_steps);
  ZEROTH_CHECK(eps_steps >= 0, "zo.eps_steps must be >= 0, got {}", eps_steps);
  directions.validate();
  ZEROTH_CHECK(short_tokens >= 0, "roles.short_tokens must be >= 0 (0: every member draws from every example), got {}",
               short_tokens);
  ZEROTH_CHECK(!curvature || (central && share_samples), "optimizer.rule hizoo estimates curvature from L(θ+εu), "
               "L(θ−εu) and L(θ) on the same examples: it needs zo.central: true and zo.share_samples: true");
}

float ZoConfig::eps_at(uint64_t step) const {
  if (eps_final <= 0 || eps_steps <= 0) return eps;
  const double p = std::min(1.0, double(step) / double(eps_steps));
  return float(double(eps) * std::pow(double(eps_final) / double(eps), p));
}

std::vector<int64_t> sample_indices(int64_t n_train, int64_t count, uint64_t data_seed, uint64_t draw) {
  ZEROTH_CHECK(n_train > 0, "the train split is empty");
  // Position in an endless stream of examples: draw d owns positions
  // [d·count, (d+1)·count). Each pass over the data (n_train positions) is a
  // fresh permutation keyed by (data_seed, pass).
  std::vector<int64_t> out(static_cast<size_t>(count));
  const uint64_t first = draw * uint64_t(count);
  uint64_t cached_pass = ~0ull;
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t pos = first + uint64_t(i);
    const uint64_t pass = pos / uint64_t(n_train);
    if (pass != cached_pass) {
      perm.resize(size_t(n_train));
      for (int64_t j = 0; j < n_train; ++j) perm[size_t(j)] = j;
      // Fisher–Yates with Philox draws: the same on every platform.
      const PhiloxKey key = philox_key(data_seed ^ 0x5a3e0f1d2c4b6a79ull);
      for (int64_t j = n_train - 1; j > 0; --j) {
        const PhiloxBlock b = philox4x32_10({{uint32_t(j), uint32_t(pass), uint32_t(pass >> 32), 0x0da7au}}, key);
        const uint64_t r = (uint64_t(b.w[0]) << 32) | b.w[1];
        std::swap(perm[size_t(j)], perm[size_t(r % uint64_t(j + 1))]);
      }
      cached_pass = pass;
    }
    out[size_t(i)] = perm[size_t(pos % uint64_t(n_train))];
  }
  return out;
}

std::vector<int64_t> draw_pool(const Task& task, const ZoConfig& cfg, bool exact) {
  if (cfg.short_tokens <= 0) return {};
  const auto& train = task.examples(Split::Train);
  std::vector<int64_t> pool;
  for (size_t i = 0; i < train.size(); ++i)
    if ((int64_t(train[i].tokens.size()) <= cfg.short_tokens) == exact) pool.push_back(int64_t(i));
  ZEROTH_CHECK(!pool.empty(), "roles.short_tokens {}: no train example has {} {} tokens, so the {} members have "
               "nothing to draw; pick a length between the shortest and the longest example", cfg.short_tokens,
               exact ? "at most" : "more than", cfg.short_tokens, exact ? "gradient/JVP" : "zeroth-order");
  return pool;
}

std::vector<int64_t> sample_pool(const std::vector<int64_t>& pool, int64_t n_train, int64_t count, uint64_t data_seed,
                                 uint64_t draw) {
  if (pool.empty()) return sample_indices(n_train, count, data_seed, draw);
  std::vector<int64_t> idx = sample_indices(int64_t(pool.size()), count, data_seed, draw);
  for (int64_t& i : idx) i = pool[size_t(i)];
  return idx;
}

uint64_t first_sample_draw(const ZoConfig& cfg, uint64_t step, uint32_t member, uint32_t members, uint32_t lane) {
  if (lane == kOwnLane) lane = member;
  ZEROTH_CHECK(lane < members, "draw lane {} is outside the step's {} lanes", lane, members);
  const uint64_t groups = cfg.share_samples ? 1 : uint64_t(cfg.q);
  return (step * members + lane) * groups;
}

void add_slot_record(MemberStepResult& out, float g, uint32_t member, uint32_t slot, RecordKind kind, bool exact,
                     float codec_scale, const PerturbationKey& dither_key) {
  if (kind != RecordKind::Curvature) out.gradients.push_back(g);
  Record rec;
  rec.member = member;
  rec.slot = slot;
  rec.kind = kind;
  if (exact) {
    if (!std::isfinite(g)) { ++out.dropped; return; }
    rec.value = g;
    rec.exact = true;
  } else {
    const Encoded e =
        kind == RecordKind::Curvature ? encode_curvature(g) : encode_gradient(g, codec_scale, dither_key);
    if (e.status == EncodeStatus::NonFinite) { ++out.dropped; return; }
    if (e.status == EncodeStatus::Clipped) ++out.clipped;
    rec.code = e.code;
  }
  out.records.push_back(rec);
}

MemberStepResult zo_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                const ZoConfig& cfg, uint64_t run_seed, uint64_t data_seed, uint64_t step,
                                uint32_t member, uint32_t members, float codec_scale, uint32_t lane) {
  const auto& train = task.examples(Split::Train);
  const int q = cfg.q;
  // Variants: central: (+ε, −ε) per slot; forward: +ε per slot, then θ itself
  // (one shared base variant when samples are shared, else one per slot).
  std::vector<Variant> variants;
  // Perturbations follow the member's group; the codec's rounding dither stays
  // the member's own, so the members of a group round independently.
  const uint32_t owner = key_member(member, cfg.redundancy);
  auto key = [&](int slot) { return PerturbationKey{run_seed, uint32_t(step), owner, uint32_t(slot)}; };
  auto own_key = [&](int slot) { return PerturbationKey{run_seed, uint32_t(step), member, uint32_t(slot)}; };
  const float eps = cfg.eps_at(step);
  for (int k = 0; k < q; ++k) {
    variants.push_back({key(k), eps});
    if (cfg.central) variants.push_back({key(k), -eps});
    else if (!cfg.share_samples) variants.push_back({key(k), 0.0f});
  }
  if (!cfg.central && cfg.share_samples) variants.push_back({key(0), 0.0f});
  if (cfg.curvature) variants.push_back({key(0), 0.0f});  // HiZOO's L(θ), after every slot's pair
  PerturbedLora adapters(lora, cfg.distribution, variants, cfg.lisa_layers, cfg.directions);

  BatchScorer scorer(task);
  const uint64_t first_draw = first_sample_draw(cfg, step, member, members, lane);
  std::vector<int64_t> shared;
  const std::vector<int64_t> pool = draw_pool(task, cfg, false);  // Addax: the long examples
  if (cfg.share_samples) shared = sample_pool(pool, int64_t(train.size()), cfg.samples, data_seed, first_draw);
  int32_t v = 0;
  for (int k = 0; k < q; ++k) {
    const auto idx = cfg.share_samples
                         ? shared
                         : sample_pool(pool, int64_t(train.size()), cfg.samples, data_seed, first_draw + uint64_t(k));
    const int per_slot = (cfg.central || !cfg.share_samples) ? 2 : 1;
    for (int j = 0; j < per_slot; ++j, ++v)
      for (int64_t i : idx) scorer.add(train[size_t(i)], v);
  }
  if ((!cfg.central && cfg.share_samples) || cfg.curvature)
    for (int64_t i : shared) scorer.add(train[size_t(i)], v);
  const BatchScorer::Result r = scorer.run(model, &adapters);

  MemberStepResult out;
  out.tokens = r.tokens;
  double sum = 0;
  for (double l : r.loss) sum += l;
  out.loss = sum / double(r.loss.size());
  for (int k = 0; k < q; ++k) {
    double g;
    if (cfg.central) g = (r.loss[size_t(2 * k)] - r.loss[size_t(2 * k + 1)]) / (2.0 * double(eps));
    else if (!cfg.share_samples) g = (r.loss[size_t(2 * k)] - r.loss[size_t(2 * k + 1)]) / double(eps);
    else g = (r.loss[size_t(k)] - r.loss[size_t(q)]) / double(eps);
    add_slot_record(out, float(g), member, uint32_t(k), RecordKind::ZerothOrder, cfg.exact_gradients, codec_scale,
                    own_key(k));
    if (!cfg.curvature) continue;
    const double l0 = r.loss[size_t(2 * q)];
    const float h = float(std::abs(r.loss[size_t(2 * k)] + r.loss[size_t(2 * k + 1)] - 2.0 * l0) /
                          (2.0 * double(eps) * double(eps)));
    add_slot_record(out, h, member, uint32_t(k), RecordKind::Curvature, cfg.exact_gradients, codec_scale, own_key(k));
  }
  return out;
}

}  // namespace zeroth
