// The trainable set: the ordered list of tensors a run trains (LoRA A/B per
// layer and target, optionally norms, or every weight of a full-precision model)
// with their global offsets — the index space the perturbations z live in.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/apply.h"
#include "core/hash.h"
#include "core/tensor.h"
#include "core/formats/named_tensor.h"

namespace zeroth {

struct TrainableTensor {
  std::string name;   // e.g. "layers.3.q.lora_A"
  Shape shape;
  float* data = nullptr;
  int64_t n = 0;
  int64_t offset = 0;  // global index of data[0]
};

class TrainableSet {
 public:
  // Appends a tensor at the next global offset. Order defines the index space.
  // The set does not own `data` (shape_numel(shape) floats); names are unique.
  void add(std::string name, const Shape& shape, float* data);
  const std::vector<TrainableTensor>& tensors() const { return tensors_; }
  int64_t size() const { return size_; }  // total elements
  std::vector<TrainableSpan> spans() const;
  // The tensor named `name`, or nullptr.
  const TrainableTensor* find(const std::string& name) const;
  // The tensor holding global index i in [0, size()), or nullptr.
  const TrainableTensor* at_index(int64_t i) const;

  // Over names, shapes and bytes, in order: equals hash_tensors() of snapshot()
  // (TensorHasher's layout, fed from θ in place without copies).
  ParamHash hash() const;
  TensorList snapshot() const;            // f32 copies in set order, for safetensors
  // Overwrites the values from a snapshot, matched by name (any order): every
  // tensor of the set must be present as f32 with the same shape and no extra
  // tensors may be there. Everything is checked before anything is written, so a
  // failed restore leaves θ untouched. Errors name the tensor and `source`.
  void restore(const TensorList& saved, const std::string& source);
  void copy_from(const TrainableSet& other);  // same names and shapes in order required

  // A static sparse mask over the index space (trainable.sparse_density): one
  // byte per element, 1 where the element is perturbed and updated; empty (the
  // default) for every element. Only the masked coordinates move: PerturbedLora
  // perturbs θ along z ⊙ mask and the optimizer steps along ĝ ⊙ mask.
  void set_mask(std::vector<uint8_t> mask);
  const std::vector<uint8_t>& mask() const { return mask_; }
  bool masked() const { return !mask_.empty(); }

  // HiZOO's diagonal curvature estimate D over the index space, lent by the
  // optimizer that owns it (optimizer.rule hizoo; empty otherwise): members
  // perturb θ along z/√D (PerturbedLora). The optimizer sets and clears it.
  void set_curvature(std::span<const float> d);
  std::span<const float> curvature() const { return curvature_; }

 private:
  std::vector<TrainableTensor> tensors_;
  int64_t size_ = 0;
  std::vector<uint8_t> mask_;
  std::span<const float> curvature_;
};

// SparseMeZO's static mask: in every tensor the round(density·n) (at least one)
// of its n elements with the smallest |θ|, density in (0, 1]; ties go to the
// lower index, so the mask is a function of θ's bits alone.
std::vector<uint8_t> magnitude_mask(const TrainableSet& theta, double density);

}  // namespace zeroth
