// Element types of zeroth tensors: plain scalars and quantized block formats.
//
// A quantized tensor is a stack of rows (last dim = k) and every row is stored
// independently in `row_bytes(type, k)` bytes, so row slices, tiles and shards of
// a weight are cheap. For block formats that is k / block_elems blocks of
// block_bytes each; NF4 adds its row-level double-quantization constants.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zeroth {

enum class DType : uint8_t {
  // plain scalars
  F32, F16, BF16, F64, I8, U8, I16, I32, I64, U16, U32, U64, BOOL,
  // GGUF block formats (decoded bit-exactly as ggml lays them out)
  Q8_0,   // 32 x int8 + f16 scale                       (34 B / 32)
  Q4_0,   // 32 x 4-bit (q-8) + f16 scale                  (18 B / 32)
  Q4_1,   // 32 x 4-bit + f16 scale + f16 min              (20 B / 32)
  Q5_0,   // 32 x 5-bit (q-16) + f16 scale                 (22 B / 32)
  Q4_K,   // super-block 256: 8 x 32, 6-bit scales/mins    (144 B / 256)
  Q5_K,   // super-block 256, 5-bit quants                 (176 B / 256)
  Q6_K,   // super-block 256, 6-bit quants, 8-bit scales   (210 B / 256)
  // zeroth's own quantization formats
  I8_B32, I8_B64, I8_B128,  // int8 absmax, f32 scale per block of 32/64/128
  I4_B32,                   // int4 symmetric (q-8), f32 scale per 32
  I4M_B32,                  // int4 with min, f32 scale + f32 min per 32
  NF4,                      // QLoRA NormalFloat4, block 64, double-quantized scales
  // The NormalFloat family of core/quant/nfk.h (2/3/4/8 bits, blocks 16..256,
  // q8 or f16 scales), 40 dtypes in a row: NFK_FIRST + i for i < 40.
  NFK_FIRST,
  NFK_LAST = NFK_FIRST + 39,
};

struct DTypeInfo {
  std::string_view name;     // canonical lower-case name ("f32", "q4_k", "nf4")
  bool quantized;
  int64_t block_elems;       // elements per block (1 for plain types)
  int64_t block_bytes;       // bytes per block (element size for plain types)
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
inline bool is_quantized(DType t) { return dtype_info(t).quantized; }
inline bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }
// Element size of a plain type; throws for quantized types.
size_t dtype_size(DType t);
// Bytes of one row of k elements. Throws if k is not a multiple of the block size.
size_t row_bytes(DType t, int64_t k);
// Parses a canonical name ("f32", "bf16", "q8_0", "i8_b64", "nf4", ...).
std::optional<DType> parse_dtype(std::string_view name);

}  // namespace zeroth
