#include "optim/adamw.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace zeroth {

void AdamWConfig::validate() const {
  ZEROTH_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "fo.beta1 and fo.beta2 must be in [0, 1), got {} "
               "and {}", beta1, beta2);
  ZEROTH_CHECK(eps > 0 && std::isfinite(eps), "fo.eps must be positive, got {}", eps);
  ZEROTH_CHECK(weight_decay >= 0 && std::isfinite(weight_decay), "fo.weight_decay must be >= 0, got {}", weight_decay);
}

AdamW::AdamW(const AdamWConfig& cfg, TrainableSet& theta) : cfg_(cfg), theta_(theta) {
  cfg_.validate();
  m_.assign(size_t(theta.size()), 0.0f);
  v_.assign(m_.size(), 0.0f);
}

void AdamW::step(const std::vector<float>& g, float lr) {
  ZEROTH_CHECK(g.size() == m_.size(), "AdamW: a gradient of {} values for {} parameters", g.size(), m_.size());
  ++t_;
  const double c1 = 1.0 - std::pow(double(cfg_.beta1), double(t_));
  const double c2 = 1.0 - std::pow(double(cfg_.beta2), double(t_));
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, step = float(double(lr) / c1), root_c2 = float(std::sqrt(c2));
  const float decay = lr * cfg_.weight_decay;
  for (const auto& t : theta_.tensors())
    for (int64_t i = 0; i < t.n; ++i) {
      const size_t k = size_t(t.offset + i);
      const float gi = g[k];
      m_[k] = b1 * m_[k] + (1.0f - b1) * gi;
      v_[k] = b2 * v_[k] + (1.0f - b2) * (gi * gi);
      // m̂/(√v̂ + eps) = (m/c1) / (√v/√c2 + eps)
      const float upd = step * m_[k] / (std::sqrt(v_[k]) / root_c2 + cfg_.eps);
      t.data[i] = t.data[i] - decay * t.data[i] - upd;
    }
}

void AdamW::restore(const TensorList& saved, const std::string& source) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const NamedTensor& nt : saved)
      if (nt.name == name) return nt.tensor;
    throw Error(fmt::format("{}: the AdamW state has no tensor '{}' (a snapshot of a mode zo run, or of another "
                            "trainable set?)", source, name));
  };
  std::vector<float> m(m_.size()), v(v_.size());
  for (const auto& t : theta_.tensors())
    for (auto* dst : {&m, &v}) {
      const std::string name = (dst == &m ? "adamw.m." : "adamw.v.") + t.name;
      const Tensor& s = find(name);
      ZEROTH_CHECK(s.dtype() == DType::F32 && s.shape() == t.shape, "{}: '{}' is {}, θ's tensor is {}", source, name,
                   s.describe(), shape_str(t.shape));
      if (t.n == 0) continue;
      const Tensor src = s.is_contiguous() ? s : s.contiguous();
      std::memcpy(dst->data() + t.offset, src.raw(), size_t(t.n) * sizeof(float));
    }
  const Tensor& steps = find("adamw.step");
  ZEROTH_CHECK(steps.dtype() == DType::F64 && steps.numel() == 1, "{}: 'adamw.step' is {}, expected one f64", source,
               steps.describe());
  const double t = *steps.data<double>();
  ZEROTH_CHECK(t >= 0 && t < 9e15 && t == std::floor(t), "{}: 'adamw.step' is {}, not a step count", source, t);
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = uint64_t(t);
}

TensorList AdamW::state() const {
  TensorList out;
  for (const auto& t : theta_.tensors())
    for (const auto* src : {&m_, &v_}) {
      Tensor copy = Tensor::empty(DType::F32, t.shape);
      if (t.n > 0) std::memcpy(copy.raw(), src->data() + t.offset, size_t(t.n) * sizeof(float));
      out.push_back({(src == &m_ ? "adamw.m." : "adamw.v.") + t.name, std::move(copy)});
    }
  Tensor steps = Tensor::empty(DType::F64, {1});
  *steps.data<double>() = double(t_);
  out.push_back({"adamw.step", std::move(steps)});
  return out;
}

}  // namespace zeroth
