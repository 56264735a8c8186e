#include "optim/grad_step.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "models/tasks/task_gradient.h"

namespace zeroth {

std::vector<float> flatten_gradient(const LoraTrainable& lora, const AdapterGradients& grads) {
  ZEROTH_CHECK(!lora.options().full, "the gradient path trains LoRA adapters and norms, not full weights "
               "(trainable.full)");
  std::vector<float> flat(size_t(lora.set().size()), 0.0f);
  std::vector<char> filled(flat.size(), 0);
  auto put = [&](int64_t offset, const std::vector<float>& g, int64_t expect, const char* what, int layer) {
    ZEROTH_CHECK(int64_t(g.size()) == expect, "flatten_gradient: {} of layer {} has {} floats, the trainable set {}",
                 what, layer, g.size(), expect);
    std::copy(g.begin(), g.end(), flat.begin() + offset);
    std::fill(filled.begin() + offset, filled.begin() + offset + expect, 1);
  };
  const auto& ad = lora.adapters();
  for (int l = 0; l < ad.n_layers(); ++l)
    for (Proj p : ad.config().targets) {
      put(lora.offset_a(l, p), grads.dA(l, p), int64_t(ad.A(l, p).size()), "lora_A", l);
      put(lora.offset_b(l, p), grads.dB(l, p), int64_t(ad.B(l, p).size()), "lora_B", l);
    }
  if (lora.options().norms) {
    ZEROTH_CHECK(grads.norms.size() == size_t(2 * ad.n_layers() + 1), "flatten_gradient: no norm gradients for a "
                 "run that trains norms");
    const int64_t n = int64_t(lora.norm_size());
    for (int l = 0; l < ad.n_layers(); ++l)
      for (NormSlot s : {NormSlot::Attention, NormSlot::Ffn}) put(lora.offset_norm(l, s), grads.dnorm(l, s), n, "norm", l);
    put(lora.offset_norm(ad.n_layers(), NormSlot::Final), grads.dnorm(ad.n_layers(), NormSlot::Final), n,
        "final norm", ad.n_layers());
  }
  for (size_t i = 0; i < filled.size(); ++i)
    ZEROTH_CHECK(filled[i], "flatten_gradient: trainable index {} ({}) has no gradient", i,
                 lora.set().at_index(int64_t(i))->name);
  return flat;
}

double project_gradient(const std::vector<float>& g, const PerturbationKey& key, Distribution d) {
  constexpr int64_t kChunk = 8192;  // a multiple of generate_z's 1024-element groups: whole groups straight out
  alignas(32) static thread_local float z[kChunk];
  const int64_t n = int64_t(g.size());
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    generate_z(key, d, i0, i0 + len, z);
    // 8 float lanes per chunk, folded into the double total in chunk order.
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
      for (int l = 0; l < 8; ++l) acc[l] += g[size_t(i0 + i + l)] * z[i + l];
    double s = 0;
    for (float a : acc) s += double(a);
    for (; i < len; ++i) s += double(g[size_t(i0 + i)]) * double(z[i]);
    total += s;
  }
  return total;
}

MemberStepResult exact_member_step(const Task& task, const ZoConfig& cfg, uint64_t run_seed, uint64_t data_seed,
                                   uint64_t step, uint32_t member, uint32_t members, float codec_scale, uint32_t lane,
                                   int group_limit, const ProjectSlots& project) {
  const auto& train = task.examples(Split::Train);
  const int q = cfg.q;
  // Perturbations follow the member's redundancy group, as in zo_member_step
  // and apply(); the rounding dither stays the member's own.
  const uint32_t owner = key_member(member, cfg.redundancy);
  auto key = [&](int slot) { return PerturbationKey{run_seed, uint32_t(step), owner, uint32_t(slot)}; };
  auto own_key = [&](int slot) { return PerturbationKey{run_seed, uint32_t(step), member, uint32_t(slot)}; };
  // The draws zo_member_step makes for this member and step.
  const uint64_t groups = cfg.share_samples ? 1 : uint64_t(q);
  const uint64_t first_draw = first_sample_draw(cfg, step, member, members, lane);
  const int per_group = cfg.share_samples ? q : 1;
  const int chunk = group_limit > 0 ? std::min(group_limit, per_group) : per_group;

  MemberStepResult out;
  std::vector<float> g(static_cast<size_t>(q));
  double loss_sum = 0;
  const std::vector<int64_t> pool = draw_pool(task, cfg, true);  // Addax: the short examples
  for (uint64_t grp = 0; grp < groups; ++grp) {
    const auto idx = sample_pool(pool, int64_t(train.size()), cfg.samples, data_seed, first_draw + grp);
    std::vector<const Example*> examples;
    for (int64_t i : idx) examples.push_back(&train[size_t(i)]);
    const int k_begin = int(grp) * per_group, k_end = k_begin + per_group;
    for (int k0 = k_begin; k0 < k_end; k0 += chunk) {
      std::vector<PerturbationKey> keys;
      for (int k = k0; k < std::min(k_end, k0 + chunk); ++k) keys.push_back(key(k));
      const SlotProjections sp = project(examples, keys);
      ZEROTH_CHECK(sp.g.size() == keys.size(), "{} projections for {} slots", sp.g.size(), keys.size());
      std::copy(sp.g.begin(), sp.g.end(), g.begin() + k0);
      if (k0 == k_begin) loss_sum += sp.loss;  // later chunks see the same samples and θ
      out.tokens += sp.tokens;
    }
  }
  for (int k = 0; k < q; ++k)
    add_slot_record(out, g[size_t(k)], member, uint32_t(k), RecordKind::Gradient, cfg.exact_gradients, codec_scale,
                    own_key(k));
  out.loss = loss_sum / double(groups);
  return out;
}

MemberStepResult grad_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                  const ZoConfig& cfg, const GradConfig& gcfg, uint64_t run_seed, uint64_t data_seed,
                                  uint64_t step, uint32_t member, uint32_t members, float codec_scale, uint32_t lane) {
  const PerturbedLora theta(lora, cfg.distribution, {Variant{PerturbationKey{}, 0.0f}});  // θ itself
  BackwardOptions bo;
  bo.checkpoint = gcfg.checkpoint;
  // One backward per sample group serves all of its slots.
  return exact_member_step(task, cfg, run_seed, data_seed, step, member, members, codec_scale, lane, 0,
                           [&](const std::vector<const Example*>& examples, const std::vector<PerturbationKey>& keys) {
                             const TaskGradient tg = task_gradient(model, task, examples, theta, bo);
                             const std::vector<float> flat = flatten_gradient(lora, tg.grads);
                             SlotProjections sp{tg.loss, tg.tokens, {}};
                             for (const auto& k : keys) sp.g.push_back(float(project_gradient(flat, k, cfg.distribution)));
                             return sp;
                           });
}

}  // namespace zeroth
