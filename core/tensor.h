// Tensors: a typed, shaped view of bytes held by a Storage (aligned host memory,
// a memory-mapped file, or CUDA device memory).
//
// Plain dtypes have element strides, so slices and transposes are views.
// Quantized dtypes are stacks of independently stored rows (see core/dtype.h):
// their views are row ranges of a contiguous tensor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/dtype.h"
#include "core/mapped_file.h"

namespace zeroth {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

constexpr size_t kTensorAlign = 64;

class Storage {
 public:
  // Zero-filled, kTensorAlign-aligned memory on the device.
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device = Device::CPU);
  // Memory owned elsewhere that outlives every tensor over it (no copy, no free).
  static std::shared_ptr<Storage> borrow(void* data, size_t bytes, Device device = Device::CPU);
  // Bytes [offset, offset+bytes) of a mapped file, kept alive by the storage.
  static std::shared_ptr<Storage> mapped(std::shared_ptr<MappedFile> file, size_t offset, size_t bytes);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }
  bool read_only() const { return read_only_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  Device device_ = Device::CPU;
  bool read_only_ = false;
  std::shared_ptr<void> owner_;  // frees or unmaps on last release
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(DType dtype, const Shape& shape, Device device = Device::CPU);  // zeroed
  static Tensor zeros(DType dtype, const Shape& shape, Device device = Device::CPU) { return empty(dtype, shape, device); }
  // A contiguous tensor over existing storage starting at byte `offset`.
  static Tensor over(std::shared_ptr<Storage> storage, size_t offset, DType dtype, const Shape& shape);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements (plain dtypes)
  int rank() const { return int(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }  // k of a row
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  size_t row_bytes() const { return zeroth::row_bytes(dtype_, cols()); }
  size_t nbytes() const;  // bytes of the elements when contiguous
  bool is_contiguous() const;
  Device device() const { return storage_ ? storage_->device() : Device::CPU; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

  void* raw() const { return storage_->data() + offset_; }
  template <typename T> T* data() const { return static_cast<T*>(raw()); }
  const uint8_t* row(int64_t r) const;  // start of row r of a contiguous tensor

  // Views
  Tensor slice(int dim, int64_t begin, int64_t end) const;
  Tensor reshape(const Shape& shape) const;   // contiguous only
  Tensor transpose(int d0, int d1) const;     // plain dtypes only
  // Copies
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device device) const;
  std::vector<float> to_float_vector() const;  // plain float dtypes, any layout

  std::string describe() const;  // "f32[64, 512] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_, strides_;
};

}  // namespace zeroth
