// The trainable set: the ordered list of tensors a run trains (LoRA A/B per
// layer and target, optionally norms, or every weight of a full-precision model)
// with their global offsets — the index space the perturbations z live in.
#pragma once
#include <cstdint>
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
  void add(std::string name, const Shape& shape, float* data);
  const std::vector<TrainableTensor>& tensors() const { return tensors_; }
  int64_t size() const { return size_; }  // total elements
  std::vector<TrainableSpan> spans() const;
  // The tensor holding global index i, or nullptr.
  const TrainableTensor* find(const std::string& name) const;

  ParamHash hash() const;                 // over names, shapes and bytes, in order
  TensorList snapshot() const;            // copies, for safetensors
  // Overwrites the values from a snapshot; names and shapes must match exactly
  // (errors name the tensor and `source`).
  void restore(const TensorList& saved, const std::string& source);
  void copy_from(const TrainableSet& other);  // same layout required

 private:
  std::vector<TrainableTensor> tensors_;
  int64_t size_ = 0;
};

}  // namespace zeroth
