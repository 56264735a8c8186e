// A typed array in CUDA device memory, freed on scope exit, with host copies.
// Built on core/backend.h, so it compiles (and throws "built without CUDA") in a
// build without the CUDA backend too. Errors name the CUDA call that failed.
#pragma once
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "core/backend.h"

namespace zeroth {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n), p_(static_cast<T*>(cuda_malloc(n * sizeof(T)))) {}
  // A device copy of host values.
  explicit DeviceArray(std::span<const T> host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : n_(std::exchange(o.n_, 0)), p_(std::exchange(o.p_, nullptr)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      cuda_free(p_);
      n_ = std::exchange(o.n_, 0);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~DeviceArray() { cuda_free(p_); }

  T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  // host[0, size()) -> device (host.size() must equal size()).
  void upload(std::span<const T> host) {
    if (!host.empty()) cuda_copy_h2d(p_, host.data(), host.size_bytes() < bytes() ? host.size_bytes() : bytes());
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    if (n_) cuda_copy_d2h(h.data(), p_, bytes());
    return h;
  }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace zeroth
