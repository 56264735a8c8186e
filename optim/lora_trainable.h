// LoRA adapters as a trainable set, and the perturbed views of them that the
// batched forward of a zeroth-order step runs.
//
// θ is never perturbed in place: variant v of a step sees A + σ_v·ε·z_v and
// B + σ_v·ε·z_v, built per (layer, projection) in a scratch buffer only while
// that projection runs, from the same global indices the ledger's apply uses.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/perturb.h"
#include "models/causal_lm.h"
#include "models/lora.h"
#include "optim/directions.h"
#include "optim/trainable.h"

namespace zeroth {

// What a run trains beside (or instead of) LoRA adapters.
struct TrainableOptions {
  bool norms = false;  // the RMSNorm gains of every block and the final norm
  bool full = false;   // every weight in f32 (MeZO "full"; needs a full-precision base): the token
                       // embedding, every projection matrix and the output layer (the embedding
                       // itself when tied); LoRA targets are then ignored
  // > 0 (trainable.sparse_density, full mode only): SparseMeZO's static mask, the
  // fraction of each tensor's elements with the smallest |θ_0|
  // (optim/trainable.h magnitude_mask); only those are perturbed and updated.
  float sparse_density = 0.0f;
};

// The trainable set of a run, registered in a TrainableSet in this order:
// "tok_embeddings" (full mode); per layer: LoRA A/B per target
// ("layers.{l}.{proj}.lora_A|lora_B"), full weights ("layers.{l}.{proj}.weight"),
// norms ("layers.{l}.attn_norm|ffn_norm"); then "final_norm"; then "output"
// (full mode, untied models only: a tied output layer is "tok_embeddings").
// Offsets in that order are the index space of z.
class LoraTrainable {
 public:
  LoraTrainable(const LoraConfig& cfg, const CausalLM& model, const TrainableOptions& opt = {});
  // PEFT's initialization, made reproducible: A ~ N(0, 1/(3·in)) (the variance
  // of Kaiming-uniform with a = √5) from an exact Gaussian stream keyed by
  // `seed`, B = 0, so the adapted model starts equal to the base. Where the base
  // carries LQ-LoRA factors (CausalLM::base_low_rank, W ≈ Q + L1·L2), the
  // adapters start from them instead (B = L1/√scale, A = L2/√scale), so the
  // model again starts equal to the base; lora.rank must equal their rank.
  void initialize(uint64_t seed);

  LoraAdapters& adapters() { return *adapters_; }
  const LoraAdapters& adapters() const { return *adapters_; }
  TrainableSet& set() { return set_; }
  const TrainableSet& set() const { return set_; }
  // Global offsets of A and B of (layer, p) in the trainable index space.
  int64_t offset_a(int layer, Proj p) const { return off_[index(layer, p)][0]; }
  int64_t offset_b(int layer, Proj p) const { return off_[index(layer, p)][1]; }
  const TrainableOptions& options() const { return opt_; }

  // Full-weight mode: θ's copy of (layer, p) as (out, in) f32, and its offset.
  const float* weight(int layer, Proj p) const { return weights_[index(layer, p)].data(); }
  size_t weight_size(int layer, Proj p) const { return weights_[index(layer, p)].size(); }
  int64_t offset_weight(int layer, Proj p) const { return woff_[index(layer, p)]; }
  // Trained norms: θ's gains for (layer, slot) (layer = n_layers for Final), and offset.
  const float* norm(int layer, NormSlot slot) const { return norms_[norm_index(layer, slot)].data(); }
  size_t norm_size() const { return norms_.empty() ? 0 : norms_[0].size(); }
  int64_t offset_norm(int layer, NormSlot slot) const { return noff_[norm_index(layer, slot)]; }
  // Full mode: θ's token embedding (vocab, hidden) f32 and its offset; the
  // output layer's, which is the embedding's own when the model ties them.
  const float* embedding() const { return embedding_.data(); }
  int64_t offset_embedding() const { return eoff_; }
  int64_t hidden_size() const { return hidden_; }
  int64_t vocab_size() const { return vocab_; }
  bool separate_output() const { return !output_.empty(); }
  const float* output() const { return separate_output() ? output_.data() : embedding_.data(); }
  int64_t offset_output() const { return separate_output() ? ooff_ : eoff_; }

 private:
  size_t index(int layer, Proj p) const { return size_t(layer) * kProjCount + size_t(p); }
  size_t norm_index(int layer, NormSlot slot) const {
    return slot == NormSlot::Final ? norms_.size() - 1 : size_t(layer) * 2 + (slot == NormSlot::Ffn ? 1 : 0);
  }
  TrainableOptions opt_;
  std::unique_ptr<LoraAdapters> adapters_;  // heap: TrainableSet points into it
  TrainableSet set_;
  std::vector<std::array<int64_t, 2>> off_;
  std::vector<std::vector<float>> init_a_, init_b_;  // LQ-LoRA factors per (layer, p), or empty
  std::vector<std::vector<float>> weights_, norms_;  // full / norm training: θ's own copies
  std::vector<int64_t> woff_, noff_;
  std::vector<float> embedding_, output_;  // full mode; output_ only when untied
  int64_t eoff_ = -1, ooff_ = -1, hidden_ = 0, vocab_ = 0;
};

// One variant of a step's batched forward: the perturbation key and the signed
// multiple of ε applied (0 = the unperturbed θ).
struct Variant {
  PerturbationKey key;
  float sigma_eps = 0;  // σ·ε
};

// θ + σ_v·ε·z_v for every variant, for everything the run trains. With one
// variant of σε = 0 it is θ itself (evaluation, export).
class PerturbedLora : public AdapterSet {
 public:
  // lisa_layers K > 0 (zo.lisa_layers): each variant perturbs only the K layers
  // sampled for its key's step (optim/layer_sampling.h), as apply() moves them.
  // directions (zo.lozo_rank, zo.orthogonal_slots): the z each variant moves along (optim/directions.h).
  PerturbedLora(const LoraTrainable& lora, Distribution d, std::vector<Variant> variants, int lisa_layers = 0,
                Directions directions = {});
  bool has(int layer, Proj p) const override { return lora_.adapters().has(layer, p); }
  LoraFactors get(int layer, Proj p, int variant, float* scratch) const override;
  size_t scratch_floats(int layer, Proj p) const override;
  bool perturbed_factors(int layer, Proj p, int variant, PerturbedFactors& out) const override;
  bool overrides_norms() const override { return lora_.options().norms; }
  const float* norm(int layer, NormSlot slot, int variant, float* scratch) const override;
  bool overrides_weights() const override { return lora_.options().full; }
  const float* weight(int layer, Proj p, int variant, float* scratch) const override;
  size_t weight_scratch_floats(int layer, Proj p) const override { return lora_.weight_size(layer, p); }
  bool overrides_embeddings() const override { return lora_.options().full; }
  const float* embedding_row(int32_t token, int variant, float* scratch) const override;
  bool overrides_output() const override { return lora_.options().full; }
  const float* output(int variant, std::vector<float>& scratch) const override;

 private:
  // The variant's σε for a tensor of `layer` (-1: outside the layers): 0 where LISA leaves the layer out.
  float sigma_eps(int variant, int layer) const;
  // out = θ + σε·u over global indices [off, off + n) of the variant's key, with
  // u = z (LOZO's low-rank z on matrices where on), or z/√D where θ lends
  // HiZOO's curvature D; where θ has a mask, only on it (θ itself elsewhere).
  void perturb(const float* theta, float se, const PerturbationKey& key, int64_t off, int64_t n, float* out) const;
  const LoraTrainable& lora_;
  Distribution dist_;
  std::vector<Variant> variants_;
  std::vector<std::vector<uint8_t>> active_;  // LISA: per variant, its step's layers (empty: all)
  Directions directions_;
};

}  // namespace zeroth
