// A bounds-checked little-endian cursor over the bytes of a model file.
//
// Every read names what it reads, so a truncated or lying file fails with a
// FormatError such as "truncated at byte 1234: tensor 7 name needs 40 bytes, 3 remain"
// instead of reading past the end of the map.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "core/error.h"

namespace zeroth {

static_assert(std::endian::native == std::endian::little,
              "zeroth's file readers assume a little-endian host (every supported format is little-endian)");

// a * b, or nullopt-like failure reported through the bool: the count checks of
// every reader use it so that lying sizes cannot wrap around.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Tensor code multiplies a shape's dimensions in int64, in any order and also
// past a zero dimension (numel, strides, row bytes). A reader therefore accepts
// a shape only when its non-zero dimensions multiply to at most 2^60 elements:
// then every such product, times up to 8 bytes an element, fits. ([0, 2^62]
// holds no element, yet its row of 2^62 f32 overflowed int64.)
constexpr uint64_t kMaxShapeElements = uint64_t(1) << 60;
inline bool shape_fits_int64(std::span<const uint64_t> dims) {
  uint64_t n = 1;
  for (const uint64_t d : dims)
    if (d != 0 && (!checked_mul(n, d, &n) || n > kMaxShapeElements)) return false;
  return true;
}

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, std::string path, size_t pos = 0)
      : bytes_(bytes), path_(std::move(path)), pos_(pos) {}

  const std::string& path() const { return path_; }
  size_t pos() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return pos_ <= bytes_.size() ? bytes_.size() - pos_ : 0; }
  bool at_end() const { return remaining() == 0; }

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(path_, what); }

  // Throws unless n more bytes are available for `what`.
  void need(uint64_t n, std::string_view what) const {
    if (n > remaining())
      fail(fmt::format("truncated at byte {}: {} needs {} bytes but only {} remain", pos_, what, n, remaining()));
  }

  template <typename T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A view of the next n bytes (valid while the mapped file lives).
  std::string_view read_bytes(uint64_t n, std::string_view what) {
    need(n, what);
    std::string_view v(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(n));
    pos_ += size_t(n);
    return v;
  }

  void skip(uint64_t n, std::string_view what) {
    need(n, what);
    pos_ += size_t(n);
  }

  void seek(uint64_t pos, std::string_view what) {
    if (pos > bytes_.size()) fail(fmt::format("{} at byte {} lies past the end of the file ({} bytes)", what, pos, bytes_.size()));
    pos_ = size_t(pos);
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string path_;
  size_t pos_;
};

}  // namespace zeroth
