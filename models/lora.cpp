#include "models/lora.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace zeroth {

namespace {
constexpr std::array<std::string_view, kProjCount> kNames = {"q", "k", "v", "o", "gate", "up", "down"};
}

std::string_view proj_name(Proj p) { return kNames[size_t(p)]; }

std::optional<Proj> parse_proj(std::string_view name) {
  if (name.ends_with("_proj")) name.remove_suffix(5);
  for (size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return Proj(i);
  return std::nullopt;
}

void LoraConfig::validate() const {
  ZEROTH_CHECK(rank > 0 && rank <= 4096, "lora.rank must be in 1..4096, got {}", rank);
  ZEROTH_CHECK(alpha > 0, "lora.alpha must be positive, got {}", alpha);
  ZEROTH_CHECK(!targets.empty(), "lora.targets is empty: name at least one of q, k, v, o, gate, up, down");
  for (size_t i = 0; i < targets.size(); ++i)
    for (size_t j = i + 1; j < targets.size(); ++j)
      ZEROTH_CHECK(targets[i] != targets[j], "lora.targets names {} twice", proj_name(targets[i]));
}

LoraAdapters::LoraAdapters(const LoraConfig& cfg, int n_layers,
                           const std::array<std::array<int64_t, 2>, kProjCount>& dims)
    : cfg_(cfg), n_layers_(n_layers), dims_(dims) {
  if (!cfg_.targets.empty()) cfg_.validate();  // no targets: a run that trains no adapters (full-weight mode)
  a_.resize(size_t(n_layers) * kProjCount);
  b_.resize(size_t(n_layers) * kProjCount);
  for (int l = 0; l < n_layers; ++l)
    for (Proj p : cfg_.targets) {
      a_[index(l, p)].assign(size_t(cfg_.rank * in_dim(p)), 0.0f);
      b_[index(l, p)].assign(size_t(out_dim(p) * cfg_.rank), 0.0f);
    }
}

bool LoraAdapters::has(int layer, Proj p) const { return !a_[index(layer, p)].empty(); }

LoraFactors LoraAdapters::get(int layer, Proj p, int, float*) const {
  return {a_[index(layer, p)].data(), b_[index(layer, p)].data(), cfg_.rank, cfg_.alpha / float(cfg_.rank)};
}

}  // namespace zeroth
