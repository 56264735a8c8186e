#include "core/tensor.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace zeroth {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->size_ = bytes;
  s->device_ = device;
  if (device == Device::CUDA) {
    void* p = cuda_malloc(bytes);
    cuda_memset_zero(p, bytes);
    s->data_ = static_cast<uint8_t*>(p);
    s->owner_ = std::shared_ptr<void>(p, [](void* q) { cuda_free(q); });
    return s;
  }
  const size_t padded = (bytes + kTensorAlign - 1) / kTensorAlign * kTensorAlign;
  void* p = std::aligned_alloc(kTensorAlign, padded ? padded : kTensorAlign);
  if (!p) fail("out of host memory allocating {} bytes", bytes);
  std::memset(p, 0, padded);
  s->data_ = static_cast<uint8_t*>(p);
  s->owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t bytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->data_ = static_cast<uint8_t*>(data);
  s->size_ = bytes;
  s->device_ = device;
  return s;
}

std::shared_ptr<Storage> Storage::mapped(std::shared_ptr<MappedFile> file, size_t offset, size_t bytes) {
  ZEROTH_CHECK(offset <= file->size() && bytes <= file->size() - offset,
               "{}: bytes [{}, {}) lie outside the file of {} bytes", file->path(), offset,
               offset + bytes, file->size());
  auto s = std::make_shared<Storage>();
  s->data_ = const_cast<uint8_t*>(file->data()) + offset;
  s->size_ = bytes;
  s->read_only_ = true;
  s->owner_ = std::move(file);
  return s;
}

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) { st[i] = s; s *= shape[i]; }
  return st;
}

static size_t bytes_for(DType dtype, const Shape& shape) {
  for (auto d : shape) ZEROTH_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  const int64_t k = shape.empty() ? 1 : shape.back();
  const int64_t rows = k == 0 ? 0 : shape_numel(shape) / k;
  return size_t(rows) * row_bytes(dtype, k);
}

Tensor Tensor::empty(DType dtype, const Shape& shape, Device device) {
  return over(Storage::allocate(bytes_for(dtype, shape), device), 0, dtype, shape);
}

Tensor Tensor::over(std::shared_ptr<Storage> storage, size_t offset, DType dtype, const Shape& shape) {
  const size_t need = bytes_for(dtype, shape);
  ZEROTH_CHECK(offset <= storage->size() && need <= storage->size() - offset,
               "tensor {}{} needs {} bytes at offset {} but its storage holds {}", dtype_name(dtype),
               shape_str(shape), need, offset, storage->size());
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = offset;
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  ZEROTH_CHECK(int64_t(v.size()) == shape_numel(shape), "from_vector: {} values for shape {}", v.size(),
               shape_str(shape));
  Tensor t = empty(DType::F32, shape);
  std::memcpy(t.raw(), v.data(), v.size() * sizeof(float));
  return t;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  if (i < 0) i += r;
  ZEROTH_CHECK(i >= 0 && i < r, "dim {} out of range for rank {}", i, r);
  return shape_[size_t(i)];
}

size_t Tensor::nbytes() const { return bytes_for(dtype_, shape_); }

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

const uint8_t* Tensor::row(int64_t r) const {
  ZEROTH_CHECK(is_contiguous(), "row() needs a contiguous tensor");
  ZEROTH_CHECK(r >= 0 && r < rows(), "row {} out of range ({} rows)", r, rows());
  return static_cast<const uint8_t*>(raw()) + size_t(r) * row_bytes();
}

Tensor Tensor::slice(int d, int64_t begin, int64_t end) const {
  const int r = rank();
  if (d < 0) d += r;
  ZEROTH_CHECK(d >= 0 && d < r, "slice: dim {} out of range for rank {}", d, r);
  ZEROTH_CHECK(0 <= begin && begin <= end && end <= shape_[size_t(d)], "slice [{}, {}) out of range for dim {} of {}",
               begin, end, d, shape_str(shape_));
  Tensor t = *this;
  if (is_quantized(dtype_)) {
    ZEROTH_CHECK(d < r - 1, "a {} tensor can only be sliced by rows, not along its last dim", dtype_name(dtype_));
    ZEROTH_CHECK(is_contiguous(), "slice of a non-contiguous quantized tensor");
    // rows spanned by one step along dim d
    int64_t rows_per = 1;
    for (int i = d + 1; i < r - 1; ++i) rows_per *= shape_[size_t(i)];
    if (d != 0) {
      for (int i = 0; i < d; ++i)
        ZEROTH_CHECK(shape_[size_t(i)] == 1, "quantized slice along dim {} needs leading dims of 1", d);
    }
    t.offset_ += size_t(begin * rows_per) * row_bytes();
    t.shape_[size_t(d)] = end - begin;
    return t;
  }
  t.offset_ += size_t(begin * strides_[size_t(d)]) * dtype_size(dtype_);
  t.shape_[size_t(d)] = end - begin;
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  ZEROTH_CHECK(is_contiguous(), "reshape of a non-contiguous tensor {}; call contiguous() first", describe());
  ZEROTH_CHECK(shape_numel(shape) == numel(), "reshape {} -> {} changes the element count", shape_str(shape_),
               shape_str(shape));
  if (is_quantized(dtype_))
    ZEROTH_CHECK(!shape.empty() && shape.back() == cols(), "reshape of a {} tensor must keep its row length {}",
                 dtype_name(dtype_), cols());
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  ZEROTH_CHECK(!is_quantized(dtype_), "transpose of a {} tensor: quantized tensors are row stacks", dtype_name(dtype_));
  const int r = rank();
  if (d0 < 0) d0 += r;
  if (d1 < 0) d1 += r;
  ZEROTH_CHECK(d0 >= 0 && d0 < r && d1 >= 0 && d1 < r, "transpose dims out of range for rank {}", r);
  Tensor t = *this;
  std::swap(t.shape_[size_t(d0)], t.shape_[size_t(d1)]);
  std::swap(t.strides_[size_t(d0)], t.strides_[size_t(d1)]);
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  ZEROTH_CHECK(defined(), "clone of an undefined tensor");
  if (device() != Device::CPU) {
    ZEROTH_CHECK(is_contiguous(), "clone of a non-contiguous device tensor");
    Tensor t = empty(dtype_, shape_, device());
    cuda_copy_d2d(t.raw(), raw(), nbytes());
    return t;
  }
  Tensor t = empty(dtype_, shape_);
  if (is_contiguous()) {
    std::memcpy(t.raw(), raw(), nbytes());
    return t;
  }
  // Strided gather, element by element (plain dtypes only reach here).
  const size_t es = dtype_size(dtype_);
  const int r = rank();
  std::vector<int64_t> idx(size_t(r), 0);
  const auto* src = static_cast<const uint8_t*>(raw());
  auto* dst = static_cast<uint8_t*>(t.raw());
  for (int64_t n = 0, total = numel(); n < total; ++n) {
    int64_t off = 0;
    for (int i = 0; i < r; ++i) off += idx[size_t(i)] * strides_[size_t(i)];
    std::memcpy(dst + size_t(n) * es, src + size_t(off) * es, es);
    for (int i = r - 1; i >= 0; --i) {
      if (++idx[size_t(i)] < shape_[size_t(i)]) break;
      idx[size_t(i)] = 0;
    }
  }
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  const Tensor src = contiguous();
  Tensor t = empty(dtype_, shape_, dev);
  if (dev == Device::CUDA) cuda_copy_h2d(t.raw(), src.raw(), src.nbytes());
  else cuda_copy_d2h(t.raw(), src.raw(), src.nbytes());
  return t;
}

std::vector<float> Tensor::to_float_vector() const {
  ZEROTH_CHECK(is_float(dtype_), "to_float_vector of a {} tensor (use dequantize)", dtype_name(dtype_));
  const Tensor c = to(Device::CPU).contiguous();
  std::vector<float> out(size_t(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (dtype_) {
      case DType::F32: out[i] = c.data<float>()[i]; break;
      case DType::F64: out[i] = float(c.data<double>()[i]); break;
      case DType::F16: out[i] = f16_to_f32(c.data<uint16_t>()[i]); break;
      default: out[i] = bf16_to_f32(c.data<uint16_t>()[i]); break;
    }
  }
  return out;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + (device() == Device::CUDA ? " cuda" : " cpu");
}

}  // namespace zeroth
