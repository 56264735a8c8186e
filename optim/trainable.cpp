// TrainableSet (optim/trainable.h): the index space of z over tensors the set
// does not own.
#include "optim/trainable.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace zeroth {

void TrainableSet::add(std::string name, const Shape& shape, float* data) {
  const int64_t n = shape_numel(shape);
  ZEROTH_CHECK(n >= 0, "TrainableSet::add: tensor '{}' has a negative shape {}", name, shape_str(shape));
  ZEROTH_CHECK(n == 0 || data != nullptr, "TrainableSet::add: tensor '{}' {} has no data", name, shape_str(shape));
  ZEROTH_CHECK(find(name) == nullptr, "TrainableSet::add: tensor '{}' was added twice", name);
  tensors_.push_back({std::move(name), shape, data, n, size_});
  size_ += n;
}

std::vector<TrainableSpan> TrainableSet::spans() const {
  std::vector<TrainableSpan> out;
  out.reserve(tensors_.size());
  for (const TrainableTensor& t : tensors_) out.push_back({t.data, t.n, t.offset});
  return out;
}

const TrainableTensor* TrainableSet::find(const std::string& name) const {
  for (const TrainableTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TrainableTensor* TrainableSet::at_index(int64_t i) const {
  if (i < 0 || i >= size_) return nullptr;
  // Offsets ascend; the holder is the last tensor starting at or before i with n > 0.
  auto it = std::upper_bound(tensors_.begin(), tensors_.end(), i,
                             [](int64_t v, const TrainableTensor& t) { return v < t.offset; });
  while (it != tensors_.begin()) {
    --it;
    if (i < it->offset + it->n) return &*it;
  }
  return nullptr;
}

ParamHash TrainableSet::hash() const {
  // TensorHasher::add's self-delimiting header (name length, name, dtype, rank,
  // dims as u64 LE), then the bytes; written here so θ is hashed in place.
  // tests/optim/trainable_test.cpp checks this equals hash_tensors(snapshot()).
  TensorHasher h;
  auto put_u64 = [&](uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    h.add_bytes(b, 8);
  };
  for (const TrainableTensor& t : tensors_) {
    put_u64(t.name.size());
    h.add_bytes(t.name.data(), t.name.size());
    put_u64(static_cast<uint64_t>(DType::F32));
    put_u64(uint64_t(t.shape.size()));
    for (int64_t d : t.shape) put_u64(uint64_t(d));
    h.add_bytes(t.data, size_t(t.n) * sizeof(float));
  }
  return h.finish();
}

TensorList TrainableSet::snapshot() const {
  TensorList out;
  out.reserve(tensors_.size());
  for (const TrainableTensor& t : tensors_) {
    Tensor copy = Tensor::empty(DType::F32, t.shape);
    if (t.n > 0) std::memcpy(copy.raw(), t.data, size_t(t.n) * sizeof(float));
    out.push_back({t.name, std::move(copy)});
  }
  return out;
}

void TrainableSet::restore(const TensorList& saved, const std::string& source) {
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const NamedTensor& nt : saved) {
    ZEROTH_CHECK(by_name.emplace(nt.name, &nt.tensor).second, "{}: tensor '{}' appears twice", source, nt.name);
    ZEROTH_CHECK(find(nt.name) != nullptr, "{}: tensor '{}' is not in the trainable set (wrong adapter or config?)",
                 source, nt.name);
  }
  std::vector<std::pair<const TrainableTensor*, const Tensor*>> plan;
  for (const TrainableTensor& t : tensors_) {
    auto it = by_name.find(t.name);
    ZEROTH_CHECK(it != by_name.end(), "{}: trainable tensor '{}' {} is missing", source, t.name,
                 shape_str(t.shape));
    const Tensor& s = *it->second;
    ZEROTH_CHECK(s.shape() == t.shape, "{}: tensor '{}' has shape {} but the trainable set expects {}", source,
                 t.name, shape_str(s.shape()), shape_str(t.shape));
    ZEROTH_CHECK(s.dtype() == DType::F32 && s.device() == Device::CPU,
                 "{}: tensor '{}' is {}; trainable tensors are restored from f32 host tensors only", source, t.name,
                 s.describe());
    plan.emplace_back(&t, &s);
  }
  for (auto [t, s] : plan) {
    if (t->n == 0) continue;
    const Tensor src = s->is_contiguous() ? *s : s->contiguous();
    std::memcpy(t->data, src.raw(), size_t(t->n) * sizeof(float));
  }
}

void TrainableSet::copy_from(const TrainableSet& other) {
  ZEROTH_CHECK(other.tensors_.size() == tensors_.size(), "TrainableSet::copy_from: {} tensors into a set of {}",
               other.tensors_.size(), tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i)
    ZEROTH_CHECK(other.tensors_[i].name == tensors_[i].name && other.tensors_[i].shape == tensors_[i].shape,
                 "TrainableSet::copy_from: tensor {} is '{}' {} but this set has '{}' {}", i, other.tensors_[i].name,
                 shape_str(other.tensors_[i].shape), tensors_[i].name, shape_str(tensors_[i].shape));
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].n > 0 && tensors_[i].data != other.tensors_[i].data)
      std::memcpy(tensors_[i].data, other.tensors_[i].data, size_t(tensors_[i].n) * sizeof(float));
}

void TrainableSet::set_mask(std::vector<uint8_t> mask) {
  ZEROTH_CHECK(mask.empty() || int64_t(mask.size()) == size_, "TrainableSet::set_mask: {} flags for {} elements",
               mask.size(), size_);
  mask_ = std::move(mask);
}

void TrainableSet::set_curvature(std::span<const float> d) {
  ZEROTH_CHECK(d.empty() || int64_t(d.size()) == size_, "TrainableSet::set_curvature: {} values for {} elements",
               d.size(), size_);
  curvature_ = d;
}

std::vector<uint8_t> magnitude_mask(const TrainableSet& theta, double density) {
  ZEROTH_CHECK(density > 0 && density <= 1, "trainable.sparse_density must be in (0, 1] (got {})", density);
  std::vector<uint8_t> mask(size_t(theta.size()), 0);
  std::vector<int64_t> order;
  for (const TrainableTensor& t : theta.tensors()) {
    if (t.n == 0) continue;
    const int64_t k = std::clamp<int64_t>(std::llround(density * double(t.n)), 1, t.n);
    order.resize(size_t(t.n));
    std::iota(order.begin(), order.end(), int64_t(0));
    const float* x = t.data;
    for (int64_t i = 0; i < t.n; ++i)
      ZEROTH_CHECK(std::isfinite(x[i]), "trainable.sparse_density: {}[{}] is {}; the magnitude mask needs finite "
                   "weights", t.name, i, x[i]);
    // A strict total order on (|x|, index): the k smallest are the same set on every machine.
    std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), [x](int64_t a, int64_t b) {
      const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
      return fa < fb || (fa == fb && a < b);
    });
    for (int64_t j = 0; j < k; ++j) mask[size_t(t.offset + order[size_t(j)])] = 1;
  }
  return mask;
}

}  // namespace zeroth
