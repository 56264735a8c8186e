// Shared by the CUDA tests: skip without a usable device, unless the environment
// asks for one (ZEROTH_REQUIRE_GPU=1, set by scripts/device-check), where the
// skip becomes a failure so a GPU run cannot pass by skipping.
#pragma once
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/backend.h"
#include "core/device_array.h"

namespace zeroth::test {

inline bool gpu_required() {
  const char* v = std::getenv("ZEROTH_REQUIRE_GPU");
  return v && std::strcmp(v, "0") != 0 && *v != '\0';
}

// max|a − ref| ÷ max|ref| (max|a − ref| when ref is all zero).
inline double normalized_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - double(ref[i])));
    den = std::max(den, std::fabs(double(ref[i])));
    if (std::isnan(a[i]) != std::isnan(ref[i])) num = INFINITY;
  }
  return den > 0 ? num / den : num;
}

// Elements whose bits differ; a size mismatch counts as every element of the longer.
inline int64_t bit_mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return int64_t(std::max(a.size(), b.size()));
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return bad;
}

template <typename T>
DeviceArray<T> to_device(const std::vector<T>& v) {
  return DeviceArray<T>(std::span<const T>(v));
}

}  // namespace zeroth::test

// First statement of every test that needs a GPU.
#define ZEROTH_REQUIRE_GPU()                                                                       \
  do {                                                                                             \
    if (!::zeroth::cuda_available()) {                                                             \
      if (::zeroth::test::gpu_required())                                                          \
        FAIL() << "ZEROTH_REQUIRE_GPU is set but no CUDA device is usable: " << ::zeroth::cuda_describe(); \
      GTEST_SKIP() << "no usable CUDA device: " << ::zeroth::cuda_describe();                     \
    }                                                                                              \
  } while (0)
