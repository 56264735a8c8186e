#include "optim/jvp_step.h"

#include <cstdint>

#include "core/error.h"
#include "models/tasks/task_jvp.h"

namespace zeroth {

LoraDirections::LoraDirections(const LoraTrainable& lora, Distribution d, std::vector<PerturbationKey> keys)
    : lora_(lora), dist_(d), keys_(std::move(keys)) {
  ZEROTH_CHECK(!lora.options().full, "the JVP path trains LoRA adapters and norms, not full weights (trainable.full)");
}

size_t LoraDirections::scratch_floats(int layer, Proj p) const {
  const auto& ad = lora_.adapters();
  return ad.A(layer, p).size() + ad.B(layer, p).size();
}

LoraFactors LoraDirections::get(int layer, Proj p, int k, float* scratch) const {
  ZEROTH_CHECK(k >= 0 && k < count(), "direction {} of {}", k, count());
  LoraFactors f = lora_.adapters().get(layer, p, 0, nullptr);  // r and scale of θ's adapter
  const auto& ad = lora_.adapters();
  const int64_t na = int64_t(ad.A(layer, p).size()), nb = int64_t(ad.B(layer, p).size());
  const PerturbationKey& key = keys_[size_t(k)];
  generate_z(key, dist_, lora_.offset_a(layer, p), lora_.offset_a(layer, p) + na, scratch);
  generate_z(key, dist_, lora_.offset_b(layer, p), lora_.offset_b(layer, p) + nb, scratch + na);
  f.A = scratch;
  f.B = scratch + na;
  return f;
}

const float* LoraDirections::norm(int layer, NormSlot slot, int k, float* scratch) const {
  ZEROTH_CHECK(k >= 0 && k < count(), "direction {} of {}", k, count());
  const int64_t n = int64_t(lora_.norm_size()), off = lora_.offset_norm(layer, slot);
  generate_z(keys_[size_t(k)], dist_, off, off + n, scratch);
  return scratch;
}

MemberStepResult jvp_member_step(const CausalLM& model, const Task& task, const LoraTrainable& lora,
                                 const ZoConfig& cfg, const JvpConfig& jcfg, uint64_t run_seed, uint64_t data_seed,
                                 uint64_t step, uint32_t member, uint32_t members, float codec_scale, uint32_t lane) {
  ZEROTH_CHECK(jcfg.directions_per_pass >= 0, "jvp: directions per pass must be >= 0 (0: all), got {}",
               jcfg.directions_per_pass);
  const PerturbedLora theta(lora, cfg.distribution, {Variant{PerturbationKey{}, 0.0f}});  // θ itself
  return exact_member_step(task, cfg, run_seed, data_seed, step, member, members, codec_scale, lane,
                           jcfg.directions_per_pass,
                           [&](const std::vector<const Example*>& examples, const std::vector<PerturbationKey>& keys) {
                             const LoraDirections dirs(lora, cfg.distribution, keys);
                             const TaskJvp tj = task_jvp(model, task, examples, theta, dirs, dirs.count());
                             SlotProjections sp{tj.loss, tj.tokens, {}};
                             for (double g : tj.derivatives) sp.g.push_back(float(g));
                             return sp;
                           });
}

}  // namespace zeroth
