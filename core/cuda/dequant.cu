// Block-format decoders on the device, paired with the scalar codecs of
// core/quant/ (gguf_blocks.cpp, gguf_kquants.cpp, int8.cpp, int4.cpp, nf4.cpp,
// nfk.cpp).
// One thread per element: it reads the bytes its block needs (the block's
// constants hit L1/L2 for its 31+ neighbours) and performs the CPU decoder's
// float operations in the same order, each rounded once (--fmad=false), so the
// f32 output equals dequantize_row bit for bit. Rows of 18/20/34-byte blocks
// start at any byte, so multi-byte fields are assembled from single bytes.
//
// Grid: x over the k columns, y over rows (a grid-stride loop past 65535 rows).
#include <cstddef>
#include <cstdint>

#include "core/cuda/dequant_kernels.h"
#include "core/half.h"
#include "core/quant/blocks.h"
#include "core/quant/nfk.h"

namespace zeroth::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t ld_u16(const uint8_t* p) { return uint16_t(p[0] | (uint32_t(p[1]) << 8)); }
__device__ __forceinline__ float ld_f16(const uint8_t* p) { return f16_to_f32(ld_u16(p)); }
__device__ __forceinline__ float ld_f32(const uint8_t* p) {
  return __uint_as_float(uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24));
}
// Nibble of element i (0..31) of a 32-element block: byte i%16, low for i < 16.
__device__ __forceinline__ int nibble32(const uint8_t* qs, int64_t i) {
  const uint8_t b = qs[i & 15];
  return i < 16 ? (b & 0xF) : (b >> 4);
}

struct DecF32 {
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const { return ld_f32(row + 4 * j); }
};
struct DecF16 {
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const { return ld_f16(row + 2 * j); }
};
struct DecBF16 {
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const { return bf16_to_f32(ld_u16(row + 2 * j)); }
};
struct DecQ8_0 {  // d * q
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 34;
    return ld_f16(blk) * float(int8_t(blk[2 + (j & 31)]));
  }
};
struct DecQ4_0 {  // d * (q - 8)
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 18;
    return ld_f16(blk) * float(nibble32(blk + 2, j & 31) - 8);
  }
};
struct DecQ4_1 {  // d * q + m
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 20;
    return ld_f16(blk) * float(nibble32(blk + 4, j & 31)) + ld_f16(blk + 2);
  }
};
struct DecQ5_0 {  // d * (q - 16), the fifth bit of x[i] bit i of qh
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 22;
    const int i = int(j & 31);
    const int high = (blk[2 + (i >> 3)] >> (i & 7)) & 1;
    return ld_f16(blk) * float((nibble32(blk + 6, i) | (high << 4)) - 16);
  }
};
template <int B>
struct DecI8 {  // scale * q
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j / B) * (4 + B);
    return ld_f32(blk) * float(int8_t(blk[4 + j % B]));
  }
};
struct DecI4 {  // scale * (q - 8)
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 20;
    return ld_f32(blk) * float(nibble32(blk + 4, j & 31) - 8);
  }
};
struct DecI4M {  // scale * q + min
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 5) * 24;
    return ld_f32(blk) * float(nibble32(blk + 8, j & 31)) + ld_f32(blk + 4);
  }
};
struct DecNF4 {  // absmax_b * level[code], absmax_b = (qscale_b - 128) * gscale_g + mean_g
  float levels[16];
  __device__ float operator()(const uint8_t* row, int64_t k, int64_t j) const {
    const int64_t b = j >> 6, i = j & 63;
    const uint8_t* gp = row + k / 2 + k / kNf4Block + (b / kNf4Group) * 8;
    const float absmax = float(int(row[k / 2 + b]) - 128) * ld_f32(gp) + ld_f32(gp + 4);
    const uint8_t c = row[b * 32 + (i & 31)];
    return absmax * levels[i < 32 ? (c & 0xF) : (c >> 4)];
  }
};

// The NormalFloat family (core/quant/nfk.h): absmax_b * level[code], the code
// being bits [j·bits, (j+1)·bits) of its run of 8 elements' `bits` bytes
// (little endian); absmax_b from q8 scale codes and per-group constants, or f16.
struct DecNFK {
  float levels[256];
  int bits = 4;
  bool f16 = false;
  int64_t block = 64, code_bytes = 32;  // per block
  __device__ float operator()(const uint8_t* row, int64_t k, int64_t j) const {
    const int64_t nb = k / block, scale_off = nb * code_bytes, b = j / block, i = j % block;
    const uint8_t* run = row + b * code_bytes + (i >> 3) * bits;
    uint64_t w = 0;
    for (int t = 0; t < bits; ++t) w |= uint64_t(run[t]) << (8 * t);
    const uint32_t code = uint32_t(w >> ((i & 7) * bits)) & ((1u << bits) - 1u);
    float absmax;
    if (f16) {
      absmax = ld_f16(row + scale_off + 2 * b);
    } else {
      const uint8_t* gp = row + scale_off + nb + (b / kNfGroup) * 8;
      absmax = float(int(row[scale_off + b]) - 128) * ld_f32(gp) + ld_f32(gp + 4);
    }
    return absmax * levels[code];
  }
};

// (scale, min) of sub-block s (0..7) of a Q4_K/Q5_K super-block, as k_scale_min.
__device__ __forceinline__ void scale_min(int s, const uint8_t* sc, int& scale, int& min) {
  if (s < 4) {
    scale = sc[s] & 63;
    min = sc[s + 4] & 63;
  } else {
    scale = (sc[s + 4] & 0xF) | ((sc[s - 4] >> 6) << 4);
    min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
  }
}
// Q4_K / Q5_K: (d * sc) * q - dmin * mn; 64-element chunk c: low nibbles are
// sub-block 2c, high nibbles 2c+1; Q5_K's fifth bit is bit (2c or 2c+1) of qh[l].
template <bool kFive>
struct DecQK {
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    constexpr int kBytes = kFive ? 176 : 144;
    const uint8_t* blk = row + (j >> 8) * kBytes;
    const int i = int(j & 255), c = i >> 6, l = i & 63, sub = 2 * c + (l >> 5);
    int sc, mn;
    scale_min(sub, blk + 4, sc, mn);
    const uint8_t* qs = blk + (kFive ? 48 : 16) + 32 * c;
    const uint8_t byte = qs[l & 31];
    int q = l < 32 ? (byte & 0xF) : (byte >> 4);
    if (kFive) q |= ((blk[16 + (l & 31)] >> sub) & 1) << 4;
    return ld_f16(blk) * float(sc) * float(q) - ld_f16(blk + 2) * float(mn);
  }
};
// Q6_K: halves of 128; quarter iq of a half takes ql[l (+32 for odd iq)]'s low
// (iq < 2) or high nibble and bits 2·iq of qh[l]; scale sc[8h + l/16 + 2·iq].
struct DecQ6K {
  __device__ float operator()(const uint8_t* row, int64_t, int64_t j) const {
    const uint8_t* blk = row + (j >> 8) * 210;
    const int i = int(j & 255), h = i >> 7, t = i & 127, iq = t >> 5, l = t & 31;
    const uint8_t lo = blk[64 * h + l + 32 * (iq & 1)];
    const int q = int((iq < 2 ? (lo & 0xF) : (lo >> 4)) | (((blk[128 + 32 * h + l] >> (2 * iq)) & 3) << 4)) - 32;
    const float sc = float(int8_t(blk[192 + 8 * h + (l >> 4) + 2 * iq]));
    return ld_f16(blk + 208) * sc * float(q);
  }
};

template <typename Dec>
__global__ void dequant_kernel(Dec dec, const uint8_t* w, size_t row_bytes, int64_t k, int64_t rows, float* out_f32,
                               uint16_t* out_bf16) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= k) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float v = dec(w + r * row_bytes, k, j);
    if (out_f32)
      out_f32[r * k + j] = v;
    else
      out_bf16[r * k + j] = f32_to_bf16(v);
  }
}

template <typename Dec>
cudaError_t launch(Dec dec, const uint8_t* w, size_t row_bytes, int64_t k, int64_t rows, float* f32, uint16_t* bf16) {
  const dim3 grid{unsigned((k + kThreads - 1) / kThreads), unsigned(rows < 65535 ? rows : 65535)};
  dequant_kernel<<<grid, kThreads>>>(dec, w, row_bytes, k, rows, f32, bf16);
  return cudaGetLastError();
}

__global__ void f32_to_bf16_kernel(const float* x, int64_t m, int64_t k, int64_t ldx, uint16_t* out) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= k) return;
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) out[r * k + j] = f32_to_bf16(x[r * ldx + j]);
}

}  // namespace

bool dequant_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q4_0: case DType::Q4_1:
    case DType::Q5_0: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::I8_B32: case DType::I8_B64:
    case DType::I8_B128: case DType::I4_B32: case DType::I4M_B32: case DType::NF4:
      return true;
    default:
      return is_nf_family(t);
  }
}

cudaError_t launch_dequantize(DType t, const uint8_t* w, size_t rb, int64_t k, int64_t rows, float* f32,
                              uint16_t* bf16) {
  if (rows <= 0 || k <= 0) return cudaSuccess;
  switch (t) {
    case DType::F32: return launch(DecF32{}, w, rb, k, rows, f32, bf16);
    case DType::F16: return launch(DecF16{}, w, rb, k, rows, f32, bf16);
    case DType::BF16: return launch(DecBF16{}, w, rb, k, rows, f32, bf16);
    case DType::Q8_0: return launch(DecQ8_0{}, w, rb, k, rows, f32, bf16);
    case DType::Q4_0: return launch(DecQ4_0{}, w, rb, k, rows, f32, bf16);
    case DType::Q4_1: return launch(DecQ4_1{}, w, rb, k, rows, f32, bf16);
    case DType::Q5_0: return launch(DecQ5_0{}, w, rb, k, rows, f32, bf16);
    case DType::Q4_K: return launch(DecQK<false>{}, w, rb, k, rows, f32, bf16);
    case DType::Q5_K: return launch(DecQK<true>{}, w, rb, k, rows, f32, bf16);
    case DType::Q6_K: return launch(DecQ6K{}, w, rb, k, rows, f32, bf16);
    case DType::I8_B32: return launch(DecI8<32>{}, w, rb, k, rows, f32, bf16);
    case DType::I8_B64: return launch(DecI8<64>{}, w, rb, k, rows, f32, bf16);
    case DType::I8_B128: return launch(DecI8<128>{}, w, rb, k, rows, f32, bf16);
    case DType::I4_B32: return launch(DecI4{}, w, rb, k, rows, f32, bf16);
    case DType::I4M_B32: return launch(DecI4M{}, w, rb, k, rows, f32, bf16);
    case DType::NF4: {
      DecNF4 dec{};
      for (int i = 0; i < 16; ++i) dec.levels[i] = kNf4Codebook[size_t(i)];
      return launch(dec, w, rb, k, rows, f32, bf16);
    }
    default: {
      if (!is_nf_family(t)) return cudaErrorInvalidValue;
      const NfFormat f = nf_format(t);
      const std::vector<float>& cb = nf_codebook(f.bits);
      DecNFK dec{};
      for (size_t i = 0; i < cb.size() && i < 256; ++i) dec.levels[i] = cb[i];
      dec.bits = f.bits;
      dec.f16 = f.scales == NfScales::F16;
      dec.block = f.block;
      dec.code_bytes = f.block * f.bits / 8;
      return launch(dec, w, rb, k, rows, f32, bf16);
    }
  }
}

cudaError_t launch_f32_to_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, uint16_t* out) {
  if (m <= 0 || k <= 0) return cudaSuccess;
  const dim3 grid{unsigned((k + kThreads - 1) / kThreads), unsigned(m < 65535 ? m : 65535)};
  f32_to_bf16_kernel<<<grid, kThreads>>>(x, m, k, ldx, out);
  return cudaGetLastError();
}

}  // namespace zeroth::cuda
