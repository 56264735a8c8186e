// GGUF metadata values: 13 value types, where an array holds `count` values of one
// element type, including strings and (nested) arrays.
//
// Numeric arrays keep their raw little-endian bytes (decoded on demand), so a
// 150k-entry score array costs its file size, not 150k boxed values.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

class ByteReader;

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType t);  // "u32", "string", "array"
bool gguf_is_integer(GgufValueType t);
bool gguf_is_float(GgufValueType t);
// Bytes of one scalar of a fixed-size type; 0 for STRING and ARRAY.
size_t gguf_scalar_size(GgufValueType t);

struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  // Scalars: unsigned integers and BOOL in `u`, signed integers in `i`, floats in `f`.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  // Arrays.
  GgufValueType elem_type = GgufValueType::U8;
  uint64_t count = 0;
  std::vector<uint8_t> raw;             // count * gguf_scalar_size(elem_type) bytes
  std::vector<std::string> strings;     // elem_type == STRING
  std::vector<GgufValue> arrays;        // elem_type == ARRAY

  bool is_array() const { return type == GgufValueType::ARRAY; }
  // Element i of a numeric array as a scalar value.
  GgufValue element(size_t i) const;
  // Integer value of an integer scalar, if it fits in the target range.
  std::optional<int64_t> as_i64() const;
  std::optional<uint64_t> as_u64() const;
  std::optional<double> as_f64() const;  // any numeric scalar
  // "array<string>[512]", "u32", ...
  std::string type_str() const;
  // Human-readable value; arrays show their first `max_items` elements.
  std::string to_string(size_t max_items = 8) const;
};

// Reads one value of type `t` at the reader's position. Counts are checked
// against the bytes left before anything is allocated; arrays nest at most a few levels.
GgufValue read_gguf_value(ByteReader& in, GgufValueType t, std::string_view what, int depth = 0);
// Reads a GGUF string: u64 length, then bytes (no terminator).
std::string read_gguf_string(ByteReader& in, std::string_view what);

}  // namespace zeroth
