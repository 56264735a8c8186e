// A tensor with the name a model file gives it. File readers return their
// tensors as ordered lists of these (file order), and writers take them.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace zeroth {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

using TensorList = std::vector<NamedTensor>;

}  // namespace zeroth
