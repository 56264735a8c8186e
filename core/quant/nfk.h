// NormalFloat formats at 2, 3, 4 and 8 bits with block sizes 16..256 and
// quantized (or f16) block scales: the configuration space LQ-LoRA's budget
// allocator chooses from (Guo et al., "LQ-LoRA", after QLoRA's NF4).
//
// One dtype per (bits, block, scale storage), 40 in all, named
//   nf{bits}_b{block}        8-bit double-quantized block scales (as NF4's)
//   nf{bits}_b{block}_f16    f16 block scales
// Row of k elements (k % block == 0), nb = k / block blocks:
//   codes   nb · block·bits/8 bytes; in each block, each run of 8 elements is
//           `bits` bytes holding a little-endian bit stream: element j of the
//           run is bits [j·bits, (j+1)·bits)
//   scales  q8:  nb bytes of 8-bit codes, absmax_b = (code_b − 128)·gscale_g + mean_g,
//                then per group g of up to 256 blocks an f32 gscale_g and f32 mean_g
//           f16: nb × f16 absmax_b
// x = absmax_b · codebook[code]. The codebook has 2^bits levels in [−1, 1]
// built as QLoRA builds NF4 (quantiles of N(0, 1), an exact zero, one more
// positive level than negative ones); at 4 bits it equals kNf4Codebook.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace zeroth {

enum class NfScales : uint8_t { Q8, F16 };

struct NfFormat {
  int bits = 4;         // 2, 3, 4 or 8
  int64_t block = 64;   // 16, 32, 64, 128 or 256
  NfScales scales = NfScales::Q8;
  std::string name() const;
  // Storage of a row of k elements, in bits per element (k a multiple of block).
  double bits_per_element(int64_t k) const;
};

constexpr int kNfFormatCount = 40;  // 4 bit widths × 5 blocks × 2 scale storages
constexpr int kNfBits[4] = {2, 3, 4, 8};
constexpr int64_t kNfBlocks[5] = {16, 32, 64, 128, 256};
constexpr int64_t kNfGroup = 256;   // blocks per group of q8 scale constants

bool is_nf_family(DType t);
NfFormat nf_format(DType t);  // throws for a dtype outside the family
DType nf_dtype(const NfFormat& f);  // throws for a combination outside the family
std::vector<DType> nf_family();    // all 40, in dtype order

// Levels of the b-bit codebook, ascending (2^b floats), computed once per b.
const std::vector<float>& nf_codebook(int bits);

// Bytes of one row of k elements (used by row_bytes).
size_t nf_row_bytes(DType t, int64_t k);

// Row codecs (k finite floats; callers check k and finiteness).
void encode_nfk(DType t, const float* in, int64_t k, uint8_t* row);
// Elements [k0, k0+len) of a row of k (k0, len multiples of the block).
void decode_nfk(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len, float* out);
// decode(encode(in)) without packing: the same floats, bit for bit, for the
// error tables of the budget allocator and the LQ decomposition.
void roundtrip_nfk(DType t, const float* in, int64_t k, float* out);

}  // namespace zeroth
