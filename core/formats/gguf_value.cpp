#include "core/formats/gguf_value.h"

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "core/formats/byte_reader.h"

namespace zeroth {
namespace {

constexpr int kMaxArrayDepth = 8;

bool known_type(uint32_t t) { return t <= uint32_t(GgufValueType::F64); }

GgufValue decode_scalar(GgufValueType t, const uint8_t* p) {
  GgufValue v;
  v.type = t;
  auto get = [p](auto x) { std::memcpy(&x, p, sizeof(x)); return x; };
  switch (t) {
    case GgufValueType::U8: v.u = get(uint8_t()); break;
    case GgufValueType::I8: v.i = get(int8_t()); break;
    case GgufValueType::U16: v.u = get(uint16_t()); break;
    case GgufValueType::I16: v.i = get(int16_t()); break;
    case GgufValueType::U32: v.u = get(uint32_t()); break;
    case GgufValueType::I32: v.i = get(int32_t()); break;
    case GgufValueType::U64: v.u = get(uint64_t()); break;
    case GgufValueType::I64: v.i = get(int64_t()); break;
    case GgufValueType::F32: v.f = get(float()); break;
    case GgufValueType::F64: v.f = get(double()); break;
    case GgufValueType::BOOL: v.u = get(uint8_t()); break;
    default: break;
  }
  return v;
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  return known_type(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

bool gguf_is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::U16: case GgufValueType::I16:
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::U64: case GgufValueType::I64:
      return true;
    default: return false;
  }
}

bool gguf_is_float(GgufValueType t) { return t == GgufValueType::F32 || t == GgufValueType::F64; }

size_t gguf_scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    default: return 0;
  }
}

static bool is_signed(GgufValueType t) {
  return t == GgufValueType::I8 || t == GgufValueType::I16 || t == GgufValueType::I32 || t == GgufValueType::I64;
}

GgufValue GgufValue::element(size_t idx) const {
  const size_t es = gguf_scalar_size(elem_type);
  if (!is_array() || es == 0 || idx >= count) return {};
  return decode_scalar(elem_type, raw.data() + idx * es);
}

std::optional<int64_t> GgufValue::as_i64() const {
  if (!gguf_is_integer(type)) return std::nullopt;
  if (is_signed(type)) return i;
  if (u > uint64_t(INT64_MAX)) return std::nullopt;
  return int64_t(u);
}

std::optional<uint64_t> GgufValue::as_u64() const {
  if (!gguf_is_integer(type)) return std::nullopt;
  if (is_signed(type)) return i < 0 ? std::nullopt : std::optional<uint64_t>(uint64_t(i));
  return u;
}

std::optional<double> GgufValue::as_f64() const {
  if (gguf_is_float(type)) return f;
  if (!gguf_is_integer(type)) return std::nullopt;
  return is_signed(type) ? double(i) : double(u);
}

std::string GgufValue::type_str() const {
  if (!is_array()) return std::string(gguf_value_type_name(type));
  const std::string inner =
      elem_type == GgufValueType::ARRAY ? std::string("array") : std::string(gguf_value_type_name(elem_type));
  return fmt::format("array<{}>[{}]", inner, count);
}

std::string GgufValue::to_string(size_t max_items) const {
  switch (type) {
    case GgufValueType::STRING: return fmt::format("\"{}\"", str);
    case GgufValueType::BOOL: return u ? "true" : "false";
    case GgufValueType::F32: case GgufValueType::F64: return fmt::format("{}", f);
    case GgufValueType::ARRAY: break;
    default: return is_signed(type) ? std::to_string(i) : std::to_string(u);
  }
  std::string out = "[";
  const size_t shown = size_t(std::min<uint64_t>(count, max_items));
  for (size_t k = 0; k < shown; ++k) {
    if (k) out += ", ";
    if (elem_type == GgufValueType::STRING) out += fmt::format("\"{}\"", strings[k]);
    else if (elem_type == GgufValueType::ARRAY) out += arrays[k].to_string(max_items);
    else out += element(k).to_string();
  }
  if (shown < count) out += fmt::format(", ... ({} items)", count);
  return out + "]";
}

std::string read_gguf_string(ByteReader& in, std::string_view what) {
  const uint64_t n = in.read<uint64_t>(what);
  return std::string(in.read_bytes(n, what));  // read_bytes checks n against the bytes left
}

GgufValue read_gguf_value(ByteReader& in, GgufValueType t, std::string_view what, int depth) {
  if (!known_type(uint32_t(t))) in.fail(fmt::format("{}: unknown value type {}", what, uint32_t(t)));
  GgufValue v;
  v.type = t;
  if (t == GgufValueType::STRING) {
    v.str = read_gguf_string(in, what);
    return v;
  }
  if (t != GgufValueType::ARRAY) {
    const size_t es = gguf_scalar_size(t);
    in.need(es, what);
    v = decode_scalar(t, reinterpret_cast<const uint8_t*>(in.read_bytes(es, what).data()));
    return v;
  }
  if (depth >= kMaxArrayDepth) in.fail(fmt::format("{}: arrays nest deeper than {} levels", what, kMaxArrayDepth));
  const uint32_t et = in.read<uint32_t>(what);
  if (!known_type(et)) in.fail(fmt::format("{}: array of unknown value type {}", what, et));
  v.elem_type = GgufValueType(et);
  v.count = in.read<uint64_t>(what);
  // Every element takes at least this many bytes, which bounds the count by the
  // bytes left before any allocation (a lying count fails here, not in new[]).
  const size_t min_bytes = v.elem_type == GgufValueType::STRING ? 8
                           : v.elem_type == GgufValueType::ARRAY ? 12
                                                                 : gguf_scalar_size(v.elem_type);
  uint64_t need = 0;
  if (!checked_mul(v.count, min_bytes, &need) || need > in.remaining())
    in.fail(fmt::format("{}: array of {} {} values cannot fit in the {} bytes left", what, v.count,
                        gguf_value_type_name(v.elem_type), in.remaining()));
  if (v.elem_type == GgufValueType::STRING) {
    v.strings.reserve(size_t(v.count));
    for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(read_gguf_string(in, what));
  } else if (v.elem_type == GgufValueType::ARRAY) {
    v.arrays.reserve(size_t(v.count));
    for (uint64_t k = 0; k < v.count; ++k)
      v.arrays.push_back(read_gguf_value(in, GgufValueType::ARRAY, what, depth + 1));
  } else {
    const std::string_view bytes = in.read_bytes(need, what);
    v.raw.assign(bytes.begin(), bytes.end());
  }
  return v;
}

}  // namespace zeroth
