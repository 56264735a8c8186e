// Block layouts of every quantized format, and the per-family scalar row codecs.
//
// GGUF blocks are byte-for-byte what ggml writes (little-endian f16 fields,
// no padding); zeroth's own blocks keep the scale first. The structs document
// the layout (sizeof/offsetof); the codecs read rows as unaligned byte streams
// with load_u16/load_f32, since rows of e.g. 34-byte blocks start anywhere.
//
// The scalar codecs here are the reference: core/cpu/qgemm_decode.cpp has SIMD
// decoders that must give bit-identical floats (tests/core/quant_simd_test.cpp).
#pragma once
#include <array>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace zeroth {

inline uint16_t load_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline float load_f32(const uint8_t* p) { float v; std::memcpy(&v, p, 4); return v; }
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }

// ---- GGUF (ggml) -----------------------------------------------------------
constexpr int64_t kQK = 32;    // elements per ggml legacy block
constexpr int64_t kQKK = 256;  // elements per K-quant super-block

// x[j] = d * q[j]
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
// byte j: low nibble -> x[j], high nibble -> x[j+16]; x = d * (q - 8)
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
// as Q4_0 but x = d * q + m
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
// 5-bit q: low nibbles as Q4_0 (x[j] from qs[j] & 0xF, x[j+16] from qs[j] >> 4),
// fifth bit of x[i] = bit i of qh (a little-endian u32); x = d * (q - 16)
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
// 8 sub-blocks of 32 with 6-bit scale and min packed in `scales` (see
// k_scale_min); 64-element chunk c uses bytes qs[32c, 32c+32): low nibbles are
// sub-block 2c, high nibbles sub-block 2c+1. x = (d*sc)*q - (dmin*mn).
struct BlockQ4K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; };
// As Q4_K plus a fifth bit: bit (2c) of qh[l] is the high bit of x[64c+l],
// bit (2c+1) that of x[64c+32+l].
struct BlockQ5K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// Two halves of 128: half h uses ql[64h, 64h+64), qh[32h, 32h+32), scales[8h, 8h+8).
// x[l+32i] (i=0..3, l<32) = (d*sc[l/16 + 2i]) * (q6 - 32), with q6's low 4 bits
// from ql[l + 32*(i&1)] (nibble i>>1) and high 2 bits from qh[l] >> 2i.
struct BlockQ6K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210);

// The 6-bit (scale, min) of sub-block j (0..7) of a Q4_K/Q5_K super-block:
// j < 4: low 6 bits of bytes j and j+4; j >= 4: low/high nibble of byte j+4
// with the top two bits taken from bytes j-4 (scale) and j (min).
inline void k_scale_min(int j, const uint8_t* s, uint8_t& sc, uint8_t& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = uint8_t((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    mn = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// ---- zeroth's own formats --------------------------------------------------
// int8 absmax: x = scale * q, q in [-127, 127], scale = absmax / 127.
template <int B> struct BlockI8 { float scale; int8_t qs[B]; };
// int4 symmetric: x = scale * (q - 8), q in [1, 15], scale = absmax / 7.
// Nibble order as Q4_0 (byte j: low -> x[j], high -> x[j+16]).
struct BlockI4 { float scale; uint8_t qs[16]; };
// int4 with min: x = scale * q + min, q in [0, 15], scale = (max - min) / 15.
struct BlockI4M { float scale; float min; uint8_t qs[16]; };
static_assert(sizeof(BlockI8<32>) == 36 && sizeof(BlockI8<64>) == 68 && sizeof(BlockI8<128>) == 132);
static_assert(sizeof(BlockI4) == 20 && sizeof(BlockI4M) == 24);

// NF4 row of k elements (k % 64 == 0), as row_bytes(NF4, k) in core/dtype.cpp:
//   codes  [k/2 B]    block b (64 elements) owns bytes [32b, 32b+32): byte j's
//                     low nibble is element 64b+j, its high nibble 64b+32+j
//   qscale [k/64 B]   block absmax, 8-bit: absmax_b = (qscale_b - 128) * gscale_g + mean_g
//   groups [8 B each] per 256 consecutive blocks g: f32 gscale_g, f32 mean_g
// x = absmax_b * kNf4Codebook[code].
constexpr int64_t kNf4Block = 64;
constexpr int64_t kNf4Group = 256;  // blocks per double-quantization group
// QLoRA's NormalFloat4 levels (Dettmers et al. 2023, Appendix E / bitsandbytes).
inline constexpr std::array<float, 16> kNf4Codebook = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// Byte offsets inside an NF4 row of k elements.
inline int64_t nf4_qscale_offset(int64_t k) { return k / 2; }
inline int64_t nf4_group_offset(int64_t k) { return k / 2 + k / kNf4Block; }
// The double-quantized absmax of block b of an NF4 row (what decoding uses).
float nf4_block_absmax(const uint8_t* row, int64_t k, int64_t b);

// ---- scalar codecs (reference), one row segment at a time ------------------
// decode_*: `nblocks` consecutive blocks starting at `blocks` -> nblocks*B floats.
void decode_q8_0(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q4_0(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q4_1(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q5_0(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q4_k(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q5_k(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_q6_k(const uint8_t* blocks, int64_t nblocks, float* out);
template <int B> void decode_i8(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_i4(const uint8_t* blocks, int64_t nblocks, float* out);
void decode_i4m(const uint8_t* blocks, int64_t nblocks, float* out);
// NF4 needs the whole row for its scales: decodes elements [k0, k0+len) of a
// row of k (k0 and len multiples of 64).
void decode_nf4(const uint8_t* row, int64_t k, int64_t k0, int64_t len, float* out);

// encode_*: k finite floats -> k/B blocks (callers check finiteness and k).
void encode_q8_0(const float* in, int64_t k, uint8_t* out);
void encode_q4_0(const float* in, int64_t k, uint8_t* out);
void encode_q4_1(const float* in, int64_t k, uint8_t* out);
void encode_q5_0(const float* in, int64_t k, uint8_t* out);
template <int B> void encode_i8(const float* in, int64_t k, uint8_t* out);
void encode_i4(const float* in, int64_t k, uint8_t* out);
void encode_i4m(const float* in, int64_t k, uint8_t* out);
void encode_nf4(const float* in, int64_t k, uint8_t* row);

// Decodes elements [k0, k0+len) of a row of k elements of any plain float or
// block dtype with the scalar codecs above (k0, len multiples of the block).
void decode_row_segment_scalar(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len,
                               float* out);

}  // namespace zeroth
