// Low-rank adapters on the projections of a transformer block:
//   y = x Wᵀ + scale · (x Aᵀ) Bᵀ,  A: (r, in), B: (out, r), scale = alpha / r.
// Adapters live in full precision, apart from the frozen (quantized) base.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/perturb.h"

namespace zeroth {

enum class Proj : uint8_t { Q, K, V, O, Gate, Up, Down };
constexpr int kProjCount = 7;
std::string_view proj_name(Proj p);               // "q", "k", "v", "o", "gate", "up", "down"
std::optional<Proj> parse_proj(std::string_view name);  // also accepts HF names (q_proj, gate_proj, ...)

// The RMSNorm gains of a block: before attention, before the MLP; the final
// norm is addressed as layer = n_layers, slot Final.
enum class NormSlot : uint8_t { Attention, Ffn, Final };

struct LoraFactors {
  const float* A = nullptr;  // (r, in)
  const float* B = nullptr;  // (out, r)
  int64_t r = 0;
  float scale = 0;
};

// A variant's factors described as θ + σε·z rather than built: θ's factors
// (host memory) and where they sit in z's index space, the perturbation's key
// and σε (0: θ itself). A device forms the variant from these with its own
// perturbation kernel (perturbed_copy_cuda), so z never crosses the bus.
struct PerturbedFactors {
  LoraFactors theta;
  int64_t offset_a = 0, offset_b = 0;
  PerturbationKey key;
  Distribution dist = Distribution::Rademacher;
  float sigma_eps = 0;
};

// Supplies adapters to a forward pass, possibly a different variant per sequence.
class AdapterSet {
 public:
  virtual ~AdapterSet() = default;
  virtual bool has(int layer, Proj p) const = 0;
  // The factors variant `variant` uses at (layer, p). May build them in
  // `scratch` (scratch_floats(layer, p) floats) and point into it.
  virtual LoraFactors get(int layer, Proj p, int variant, float* scratch) const = 0;
  virtual size_t scratch_floats(int layer, Proj p) const = 0;
  // Where variant `variant`'s factors at (layer, p) are θ + σε·z: fills `out`
  // and returns true (get() must then give the same values). Others: false.
  virtual bool perturbed_factors(int /*layer*/, Proj /*p*/, int /*variant*/, PerturbedFactors& /*out*/) const {
    return false;
  }

  // Trainable norms: the (dim) gains `variant` uses for norm `slot` of `layer`,
  // or nullptr for the frozen base's. May build them in `scratch` (dim floats).
  virtual bool overrides_norms() const { return false; }
  virtual const float* norm(int /*layer*/, NormSlot /*slot*/, int /*variant*/, float* /*scratch*/) const {
    return nullptr;
  }
  // Full-weight training: the (out, in) f32 matrix `variant` uses for (layer, p)
  // in place of the frozen base's, or nullptr. May build it in `scratch`
  // (weight_scratch_floats(layer, p) floats).
  virtual bool overrides_weights() const { return false; }
  virtual const float* weight(int /*layer*/, Proj /*p*/, int /*variant*/, float* /*scratch*/) const { return nullptr; }
  virtual size_t weight_scratch_floats(int /*layer*/, Proj /*p*/) const { return 0; }

  // Full training of the token embedding: row `token` (hidden floats, f32) of
  // the embedding `variant` uses, or nullptr for the frozen base's. May build it
  // in `scratch` (hidden floats). The lookup asks only for the batch's tokens.
  virtual bool overrides_embeddings() const { return false; }
  virtual const float* embedding_row(int32_t /*token*/, int /*variant*/, float* /*scratch*/) const { return nullptr; }
  // Full training of the output layer (the lm head; the embedding itself when
  // tied): the (vocab, hidden) f32 matrix `variant`'s logits use, or nullptr for
  // the frozen base's. May build it in `scratch`, which it resizes only when it
  // does (vocab·hidden floats: the caller holds one variant's matrix at a time).
  virtual bool overrides_output() const { return false; }
  virtual const float* output(int /*variant*/, std::vector<float>& /*scratch*/) const { return nullptr; }
};

struct LoraConfig {
  int64_t rank = 8;
  float alpha = 16;
  std::vector<Proj> targets = {Proj::Q, Proj::V};
  void validate() const;
};

// One plain set of adapters (all variants see the same factors).
class LoraAdapters : public AdapterSet {
 public:
  // Shapes: in/out dims of each projection per layer come from `dims(p)` = {in, out}.
  LoraAdapters(const LoraConfig& cfg, int n_layers, const std::array<std::array<int64_t, 2>, kProjCount>& dims);
  bool has(int layer, Proj p) const override;
  LoraFactors get(int layer, Proj p, int variant, float* scratch) const override;
  size_t scratch_floats(int, Proj) const override { return 0; }

  const LoraConfig& config() const { return cfg_; }
  int n_layers() const { return n_layers_; }
  int64_t in_dim(Proj p) const { return dims_[size_t(p)][0]; }
  int64_t out_dim(Proj p) const { return dims_[size_t(p)][1]; }
  std::vector<float>& A(int layer, Proj p) { return a_[index(layer, p)]; }
  std::vector<float>& B(int layer, Proj p) { return b_[index(layer, p)]; }
  const std::vector<float>& A(int layer, Proj p) const { return a_[index(layer, p)]; }
  const std::vector<float>& B(int layer, Proj p) const { return b_[index(layer, p)]; }

 private:
  size_t index(int layer, Proj p) const { return size_t(layer) * kProjCount + size_t(p); }
  LoraConfig cfg_;
  int n_layers_;
  std::array<std::array<int64_t, 2>, kProjCount> dims_;
  std::vector<std::vector<float>> a_, b_;  // empty where not targeted
};

}  // namespace zeroth
