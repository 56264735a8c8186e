#include "core/formats/gguf.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "core/formats/byte_reader.h"
#include "core/formats/ggml_types.h"

namespace zeroth {
namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// Smallest possible encodings, used to bound counts by the bytes left:
// kv = key length (8) + value type (4) + a 1-byte value;
// tensor info = name length (8) + n_dims (4) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 24;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
  GgufFile g;
  g.file_ = MappedFile::open(path);
  ByteReader in(g.file_->bytes(), path);

  const uint32_t magic = in.read<uint32_t>("magic");
  if (magic != kGgufMagic) in.fail(fmt::format("not a GGUF file (magic {:#010x}, expected \"GGUF\")", magic));
  g.version_ = in.read<uint32_t>("version");
  if (g.version_ == 1)
    in.fail("GGUF version 1 (32-bit counts) is not supported; convert it to v3 with llama.cpp's gguf tools");
  if (g.version_ == 0x02000000 || g.version_ == 0x03000000) in.fail("big-endian GGUF files are not supported");
  if (g.version_ != 2 && g.version_ != 3)
    in.fail(fmt::format("unsupported GGUF version {} (zeroth reads versions 2 and 3)", g.version_));
  const uint64_t n_tensors = in.read<uint64_t>("tensor count");
  const uint64_t n_kv = in.read<uint64_t>("metadata count");
  if (n_kv > in.remaining() / kMinKvBytes)
    in.fail(fmt::format("metadata count {} cannot fit in a file of {} bytes", n_kv, in.size()));
  if (n_tensors > in.remaining() / kMinTensorInfoBytes)
    in.fail(fmt::format("tensor count {} cannot fit in a file of {} bytes", n_tensors, in.size()));

  // ---- metadata ----
  g.kv_.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = read_gguf_string(in, fmt::format("metadata key {}", k));
    const auto what = fmt::format("metadata \"{}\"", key);
    const auto type = GgufValueType(in.read<uint32_t>(what));
    GgufValue v = read_gguf_value(in, type, what);
    if (!g.kv_index_.emplace(key, g.kv_.size()).second) in.fail(fmt::format("metadata key \"{}\" appears twice", key));
    g.kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    const auto av = a->as_u64();
    if (!av || *av == 0 || (*av & (*av - 1)) != 0 || *av > (1u << 20))
      in.fail(fmt::format("general.alignment {} is not a power of two up to 1 MiB", a->to_string()));
    g.alignment_ = *av;
  }

  // ---- tensor infos ----
  g.infos_.reserve(size_t(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo info;
    info.name = read_gguf_string(in, fmt::format("tensor {} name", t));
    const auto what = fmt::format("tensor \"{}\"", info.name);
    const uint32_t n_dims = in.read<uint32_t>(what);
    if (n_dims > kMaxDims) in.fail(fmt::format("{} has {} dimensions (at most {})", what, n_dims, kMaxDims));
    std::vector<uint64_t> ne(n_dims);
    uint64_t numel = 1;
    for (auto& d : ne) {
      d = in.read<uint64_t>(what);
      if (d > uint64_t(std::numeric_limits<int64_t>::max()) || !checked_mul(numel, d, &numel))
        in.fail(fmt::format("{} shape overflows", what));
    }
    if (!shape_fits_int64(ne))
      in.fail(fmt::format("{} shape is too large: its non-zero dimensions multiply past 2^60 elements", what));
    info.shape.assign(ne.rbegin(), ne.rend());
    info.ggml_type = in.read<uint32_t>(what);
    info.offset = in.read<uint64_t>(what);
    if (const GgmlTypeInfo* ti = ggml_type_info(info.ggml_type)) {
      const uint64_t row = ne.empty() ? 1 : ne[0];
      if (row % uint64_t(ti->block_elems) != 0)
        in.fail(fmt::format("{} rows of {} elements are not whole {} blocks of {}", what, row, ti->name,
                            ti->block_elems));
      if (!checked_mul(numel / uint64_t(ti->block_elems), uint64_t(ti->block_bytes), &info.nbytes))
        in.fail(fmt::format("{} byte size overflows", what));
      info.dtype = ti->dtype;
    }
    if (!g.tensor_index_.emplace(info.name, g.infos_.size()).second)
      in.fail(fmt::format("tensor name \"{}\" appears twice", info.name));
    g.infos_.push_back(std::move(info));
  }

  // ---- data section ----
  g.data_offset_ = align_up(in.pos(), g.alignment_);
  if (g.data_offset_ > in.size() && !g.infos_.empty())
    in.fail(fmt::format("data section at byte {} starts past the end of the file ({} bytes)", g.data_offset_,
                        in.size()));
  const uint64_t data_bytes = g.data_offset_ <= in.size() ? in.size() - g.data_offset_ : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& info : g.infos_) {
    if (info.offset % g.alignment_ != 0)
      in.fail(fmt::format("tensor \"{}\" offset {} is not a multiple of the alignment {}", info.name, info.offset,
                          g.alignment_));
    if (info.offset > data_bytes || info.nbytes > data_bytes - info.offset)
      in.fail(fmt::format("tensor \"{}\" bytes [{}, {}) lie outside the data section of {} bytes", info.name,
                          info.offset, info.offset + info.nbytes, data_bytes));
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->offset + by_offset[k - 1]->nbytes > by_offset[k]->offset)
      in.fail(fmt::format("tensors \"{}\" and \"{}\" overlap in the data section", by_offset[k - 1]->name,
                          by_offset[k]->name));
  return g;
}

// ---- metadata getters -------------------------------------------------------

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::require(std::string_view key, std::string_view wanted) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: metadata key \"{}\" ({}) is missing", path(), key, wanted);
  return *v;
}

void GgufFile::wrong_type(std::string_view key, const GgufValue& v, std::string_view wanted) const {
  fail("{}: metadata key \"{}\" is {} {}, expected {}", path(), key, v.type_str(), v.to_string(4), wanted);
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = require(key, "string");
  if (v.type != GgufValueType::STRING) wrong_type(key, v, "a string");
  return v.str;
}

uint32_t GgufFile::get_u32(std::string_view key) const {
  const GgufValue& v = require(key, "integer");
  const auto x = v.as_u64();
  if (!x || *x > std::numeric_limits<uint32_t>::max()) wrong_type(key, v, "an integer in u32 range");
  return uint32_t(*x);
}

int64_t GgufFile::get_i64(std::string_view key) const {
  const GgufValue& v = require(key, "integer");
  const auto x = v.as_i64();
  if (!x) wrong_type(key, v, "an integer in i64 range");
  return *x;
}

float GgufFile::get_f32(std::string_view key) const {
  const GgufValue& v = require(key, "number");
  const auto x = v.as_f64();
  if (!x) wrong_type(key, v, "a number");
  return float(*x);
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = require(key, "bool");
  if (v.type != GgufValueType::BOOL) wrong_type(key, v, "a bool");
  return v.u != 0;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = require(key, "array of strings");
  if (!v.is_array() || v.elem_type != GgufValueType::STRING) wrong_type(key, v, "an array of strings");
  return v.strings;
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue& v = require(key, "array of numbers");
  if (!v.is_array() || gguf_scalar_size(v.elem_type) == 0 || v.elem_type == GgufValueType::BOOL)
    wrong_type(key, v, "an array of numbers");
  std::vector<float> out(size_t(v.count));
  for (size_t k = 0; k < out.size(); ++k) out[k] = float(*v.element(k).as_f64());
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const GgufValue& v = require(key, "array of integers");
  if (!v.is_array() || !gguf_is_integer(v.elem_type)) wrong_type(key, v, "an array of integers");
  std::vector<int32_t> out(size_t(v.count));
  for (size_t k = 0; k < out.size(); ++k) {
    const auto x = v.element(k).as_i64();
    if (!x || *x < std::numeric_limits<int32_t>::min() || *x > std::numeric_limits<int32_t>::max())
      fail("{}: metadata key \"{}\" element {} does not fit in i32", path(), key, k);
    out[k] = int32_t(*x);
  }
  return out;
}

// ---- tensors ----------------------------------------------------------------

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &infos_[it->second];
}

Tensor GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (!info) fail("{}: no tensor named \"{}\"", path(), name);
  if (!info->dtype)
    throw FormatError(path(), fmt::format("tensor \"{}\" has ggml type {}, which zeroth cannot use", name,
                                          ggml_type_name(info->ggml_type)));
  auto storage = Storage::mapped(file_, size_t(data_offset_ + info->offset), size_t(info->nbytes));
  return Tensor::over(std::move(storage), 0, *info->dtype, info->shape);
}

TensorList GgufFile::tensors() const {
  TensorList out;
  for (const auto& info : infos_) out.push_back({info.name, tensor(info.name)});
  return out;
}

}  // namespace zeroth
