// Dispatch of the row codecs by dtype, and whole-tensor quantize()/dequantize()
// (rows in parallel; each row is independent, so results never depend on the
// thread count).
//
// Non-finite inputs: plain float targets (f32/f16/bf16) carry NaN/Inf through;
// block formats cannot represent them (one NaN would poison a block's scale), so
// quantize_row throws an Error naming the element.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/quant/blocks.h"
#include "core/quant/nfk.h"
#include "core/quant/quant.h"

namespace zeroth {

void decode_row_segment_scalar(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len,
                               float* out) {
  const auto& info = dtype_info(t);
  ZEROTH_CHECK(k0 >= 0 && len >= 0 && k0 + len <= k && k0 % info.block_elems == 0 &&
                   len % info.block_elems == 0,
               "decode of {} elements [{}, {}) of a row of {}: bounds must be multiples of {}",
               info.name, k0, k0 + len, k, info.block_elems);
  const int64_t nb = len / info.block_elems;
  const uint8_t* blocks = row + k0 / info.block_elems * info.block_bytes;
  switch (t) {
    case DType::F32: std::memcpy(out, blocks, size_t(len) * 4); return;
    case DType::F64:
      for (int64_t i = 0; i < len; ++i) {
        double v; std::memcpy(&v, blocks + 8 * i, 8); out[i] = float(v);
      }
      return;
    case DType::F16: for (int64_t i = 0; i < len; ++i) out[i] = f16_to_f32(load_u16(blocks + 2 * i)); return;
    case DType::BF16: for (int64_t i = 0; i < len; ++i) out[i] = bf16_to_f32(load_u16(blocks + 2 * i)); return;
    case DType::Q8_0: decode_q8_0(blocks, nb, out); return;
    case DType::Q4_0: decode_q4_0(blocks, nb, out); return;
    case DType::Q4_1: decode_q4_1(blocks, nb, out); return;
    case DType::Q5_0: decode_q5_0(blocks, nb, out); return;
    case DType::Q4_K: decode_q4_k(blocks, nb, out); return;
    case DType::Q5_K: decode_q5_k(blocks, nb, out); return;
    case DType::Q6_K: decode_q6_k(blocks, nb, out); return;
    case DType::I8_B32: decode_i8<32>(blocks, nb, out); return;
    case DType::I8_B64: decode_i8<64>(blocks, nb, out); return;
    case DType::I8_B128: decode_i8<128>(blocks, nb, out); return;
    case DType::I4_B32: decode_i4(blocks, nb, out); return;
    case DType::I4M_B32: decode_i4m(blocks, nb, out); return;
    case DType::NF4: decode_nf4(row, k, k0, len, out); return;
    default:
      if (is_nf_family(t)) return decode_nfk(t, row, k, k0, len, out);
      fail("cannot decode dtype {} to f32: it is not a float or block format", info.name);
  }
}

void dequantize_row(DType type, const void* row, float* out, int64_t k) {
  (void)row_bytes(type, k);  // throws when k is not a multiple of the block
  decode_row_segment_scalar(type, static_cast<const uint8_t*>(row), k, 0, k, out);
}

bool can_quantize_to(DType t) {
  if (is_nf_family(t)) return true;
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0:
    case DType::I8_B32: case DType::I8_B64: case DType::I8_B128:
    case DType::I4_B32: case DType::I4M_B32: case DType::NF4:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType type, const float* in, void* row, int64_t k) {
  ZEROTH_CHECK(can_quantize_to(type),
               "cannot quantize to {}: supported targets are f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
               "i8_b32/64/128, i4_b32, i4m_b32, nf4, nf2|nf3|nf4|nf8_b16..b256[_f16] (K-quants are decode-only)",
               dtype_name(type));
  (void)row_bytes(type, k);  // throws when k is not a multiple of the block
  auto* out = static_cast<uint8_t*>(row);
  if (is_quantized(type)) {
    for (int64_t i = 0; i < k; ++i)
      ZEROTH_CHECK(std::isfinite(in[i]),
                   "cannot quantize to {}: element {} of the row is {}; block formats hold finite "
                   "values only (clean or clamp the weights first)",
                   dtype_name(type), i, in[i]);
  }
  switch (type) {
    case DType::F32: std::memcpy(out, in, size_t(k) * 4); return;
    case DType::F16: for (int64_t i = 0; i < k; ++i) store_u16(out + 2 * i, f32_to_f16(in[i])); return;
    case DType::BF16: for (int64_t i = 0; i < k; ++i) store_u16(out + 2 * i, f32_to_bf16(in[i])); return;
    case DType::Q8_0: encode_q8_0(in, k, out); return;
    case DType::Q4_0: encode_q4_0(in, k, out); return;
    case DType::Q4_1: encode_q4_1(in, k, out); return;
    case DType::Q5_0: encode_q5_0(in, k, out); return;
    case DType::I8_B32: encode_i8<32>(in, k, out); return;
    case DType::I8_B64: encode_i8<64>(in, k, out); return;
    case DType::I8_B128: encode_i8<128>(in, k, out); return;
    case DType::I4_B32: encode_i4(in, k, out); return;
    case DType::I4M_B32: encode_i4m(in, k, out); return;
    case DType::NF4: encode_nf4(in, k, out); return;
    default:
      if (is_nf_family(type)) encode_nfk(type, in, k, out);
      return;
  }
}

namespace {

// Runs f(row) for every row in parallel and rethrows the first error on the
// calling thread (exceptions must not escape an OpenMP region).
template <typename F>
void for_each_row(int64_t rows, int threads, F&& f) {
  std::mutex mu;
  std::exception_ptr first;
  parallel_for(rows, 16, threads, [&](int64_t r0, int64_t r1) {
    try {
      for (int64_t r = r0; r < r1; ++r) f(r);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first) first = std::current_exception();
    }
  });
  if (first) std::rethrow_exception(first);
}

}  // namespace

Tensor quantize(const Tensor& w, DType to, int threads) {
  ZEROTH_CHECK(w.defined() && w.device() == Device::CPU, "quantize: needs a CPU tensor, got {}",
               w.defined() ? w.describe() : std::string("an undefined tensor"));
  ZEROTH_CHECK(!is_quantized(w.dtype()) && is_float(w.dtype()),
               "quantize: input must be a plain float tensor (f32/f16/bf16/f64), got {}", w.describe());
  const Tensor src = w.is_contiguous() ? w : w.contiguous();
  const int64_t k = src.cols(), rows = src.rows();
  Tensor out = Tensor::empty(to, src.shape());  // checks k against the block size
  const size_t in_bytes = src.row_bytes(), out_bytes = out.row_bytes();
  const auto* in_base = static_cast<const uint8_t*>(src.raw());
  auto* out_base = static_cast<uint8_t*>(out.raw());
  for_each_row(rows, threads, [&](int64_t r) {
    thread_local std::vector<float> buf;
    const float* x = reinterpret_cast<const float*>(in_base + r * in_bytes);
    if (src.dtype() != DType::F32) {
      buf.resize(size_t(k));
      dequantize_row(src.dtype(), in_base + r * in_bytes, buf.data(), k);
      x = buf.data();
    }
    try {
      quantize_row(to, x, out_base + r * out_bytes, k);
    } catch (const Error& e) {
      fail("quantize {} -> {}: row {}: {}", src.describe(), dtype_name(to), r, e.what());
    }
  });
  return out;
}

Tensor dequantize(const Tensor& w, int threads) {
  ZEROTH_CHECK(w.defined() && w.device() == Device::CPU, "dequantize: needs a CPU tensor, got {}",
               w.defined() ? w.describe() : std::string("an undefined tensor"));
  ZEROTH_CHECK(is_quantized(w.dtype()) || is_float(w.dtype()),
               "dequantize: {} is neither a float nor a block format", w.describe());
  const Tensor src = w.is_contiguous() ? w : w.contiguous();
  const int64_t k = src.cols(), rows = src.rows();
  Tensor out = Tensor::empty(DType::F32, src.shape());
  const size_t in_bytes = src.row_bytes();
  const auto* in_base = static_cast<const uint8_t*>(src.raw());
  float* out_base = out.data<float>();
  for_each_row(rows, threads, [&](int64_t r) {
    dequantize_row(src.dtype(), in_base + r * in_bytes, out_base + r * k, k);
  });
  return out;
}

}  // namespace zeroth
