#include "core/dtype.h"

#include <array>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/quant/nfk.h"

namespace zeroth {
namespace {

// NF4 row layout (see core/quant/nf4.h): k/2 bytes of packed codes, k/64 uint8
// quantized block scales, and per group of up to 256 blocks an f32 (scale, mean)
// pair for the second quantization level.
constexpr int64_t kNf4Block = 64;
constexpr int64_t kNf4Group = 256;

constexpr std::array<DTypeInfo, 26> kInfo = {{
    {"f32", false, 1, 4},      {"f16", false, 1, 2},     {"bf16", false, 1, 2},
    {"f64", false, 1, 8},      {"i8", false, 1, 1},      {"u8", false, 1, 1},
    {"i16", false, 1, 2},      {"i32", false, 1, 4},     {"i64", false, 1, 8},
    {"u16", false, 1, 2},      {"u32", false, 1, 4},     {"u64", false, 1, 8},
    {"bool", false, 1, 1},
    {"q8_0", true, 32, 34},    {"q4_0", true, 32, 18},   {"q4_1", true, 32, 20},   {"q5_0", true, 32, 22},
    {"q4_k", true, 256, 144},  {"q5_k", true, 256, 176}, {"q6_k", true, 256, 210},
    {"i8_b32", true, 32, 36},  {"i8_b64", true, 64, 68}, {"i8_b128", true, 128, 132},
    {"i4_b32", true, 32, 20},  {"i4m_b32", true, 32, 24},
    {"nf4", true, kNf4Block, 0},  // row-level layout: see row_bytes
}};

// The fixed table followed by the NF family, whose names are built once.
const std::vector<DTypeInfo>& info_table() {
  static const std::vector<std::string> nf_names = [] {
    std::vector<std::string> v;
    for (int i = 0; i < kNfFormatCount; ++i) v.push_back(nf_format(DType(int(DType::NFK_FIRST) + i)).name());
    return v;
  }();
  static const std::vector<DTypeInfo> table = [] {
    std::vector<DTypeInfo> t(kInfo.begin(), kInfo.end());
    for (int i = 0; i < kNfFormatCount; ++i) {
      const NfFormat f = nf_format(DType(int(DType::NFK_FIRST) + i));
      t.push_back({nf_names[size_t(i)], true, f.block, 0});  // row-level layout: see nf_row_bytes
    }
    return t;
  }();
  return table;
}

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  const auto& table = info_table();
  const auto i = static_cast<size_t>(t);
  ZEROTH_CHECK(i < table.size(), "invalid dtype id {}", i);
  return table[i];
}


size_t dtype_size(DType t) {
  const auto& info = dtype_info(t);
  ZEROTH_CHECK(!info.quantized, "dtype_size: {} is a block format; use row_bytes", info.name);
  return size_t(info.block_bytes);
}

size_t row_bytes(DType t, int64_t k) {
  const auto& info = dtype_info(t);
  ZEROTH_CHECK(k >= 0 && k % info.block_elems == 0,
               "a row of {} elements cannot be stored as {}: it needs a multiple of {}", k,
               info.name, info.block_elems);
  if (t == DType::NF4) {
    const int64_t blocks = k / kNf4Block;
    const int64_t groups = (blocks + kNf4Group - 1) / kNf4Group;
    return size_t(k / 2 + blocks + groups * 8);
  }
  if (is_nf_family(t)) return nf_row_bytes(t, k);
  return size_t(k / info.block_elems * info.block_bytes);
}

std::optional<DType> parse_dtype(std::string_view name) {
  const auto& table = info_table();
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i].name == name) return static_cast<DType>(i);
  return std::nullopt;
}

}  // namespace zeroth
