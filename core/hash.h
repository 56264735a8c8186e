// Parameter hashes: XXH3-128 over an ordered list of tensors (their names,
// dtypes, shapes and bytes, little-endian as stored). Replicas compare these at
// step boundaries; the value is the same on every platform and backend.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace zeroth {

struct ParamHash {
  uint64_t hi = 0, lo = 0;
  bool operator==(const ParamHash&) const = default;
  std::string hex() const;  // 32 lower-case hex digits
};

class TensorHasher {
 public:
  TensorHasher();
  ~TensorHasher();
  TensorHasher(const TensorHasher&) = delete;
  TensorHasher& operator=(const TensorHasher&) = delete;
  void add(const std::string& name, const Tensor& t);  // device tensors are copied to host
  void add_bytes(const void* data, size_t n);
  ParamHash finish() const;

 private:
  void* state_;
};

ParamHash hash_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors);
ParamHash hash_bytes(const void* data, size_t n);

}  // namespace zeroth
