// The NormalFloat family (layout in core/quant/nfk.h).
//
// Encoding a row: (1) absmax per block; (2) the block scales as decoding will
// see them: q8 double quantization as NF4's (per group of up to 256 blocks,
// mean = average absmax, gscale = max |absmax − mean| / 127, code =
// round((absmax − mean) / gscale) + 128), or f16 rounding; (3) each element is
// the nearest codebook level to x / absmax' (clamped to [−1, 1]; ties go up),
// found by a branch-free binary search over the midpoints between levels.
#include "core/quant/nfk.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/half.h"
#include "core/quant/blocks.h"

namespace zeroth {
namespace {

int bits_index(int bits) {
  for (int i = 0; i < 4; ++i)
    if (kNfBits[i] == bits) return i;
  return -1;
}
int block_index(int64_t block) {
  for (int i = 0; i < 5; ++i)
    if (kNfBlocks[i] == block) return i;
  return -1;
}

// Φ⁻¹(p) of the standard normal by bisection on erfc (double; monotone, so
// the result does not depend on anything but libm's erfc).
double normal_quantile(double p) {
  double lo = -12.0, hi = 12.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// QLoRA's construction (bitsandbytes create_normal_map) for n = 2^b levels:
// n/2 positive quantiles at probabilities linspace(offset, 1/2, n/2 + 1)
// without the last, n/2 − 1 negative ones at linspace(offset, 1/2, n/2)
// without the last, and 0; normalized by the largest. offset is the midpoint
// of 1 − 1/(2n) and 1 − 1/(2(n − 1)).
std::vector<float> make_codebook(int bits) {
  const int n = 1 << bits;
  const double offset = 1.0 - 0.5 * (1.0 / (2.0 * n) + 1.0 / (2.0 * (n - 1)));
  auto linspace = [](double a, double b, int count, int i) { return count == 1 ? a : a + (b - a) * i / (count - 1); };
  std::vector<double> v;
  for (int i = 0; i < n / 2; ++i) v.push_back(normal_quantile(linspace(offset, 0.5, n / 2 + 1, i)));
  for (int i = 0; i < n / 2 - 1; ++i) v.push_back(-normal_quantile(linspace(offset, 0.5, n / 2, i)));
  v.push_back(0.0);
  const double top = normal_quantile(offset);
  std::vector<float> out;
  for (double x : v) out.push_back(float(x / top));
  std::sort(out.begin(), out.end());
  return out;
}

struct Codebook {
  std::vector<float> levels, mid;  // 2^b levels; 2^b − 1 midpoints, then +inf (search padding)
  uint32_t zero = 0;               // index of the level 0
};

const Codebook& codebook(int bits) {
  static std::array<Codebook, 4> books;
  static std::once_flag once;
  std::call_once(once, [] {
    for (int i = 0; i < 4; ++i) {
      Codebook& c = books[size_t(i)];
      c.levels = make_codebook(kNfBits[i]);
      for (size_t j = 0; j + 1 < c.levels.size(); ++j) c.mid.push_back((c.levels[j] + c.levels[j + 1]) * 0.5f);
      c.mid.push_back(INFINITY);
      c.zero = uint32_t(std::find(c.levels.begin(), c.levels.end(), 0.0f) - c.levels.begin());
    }
  });
  return books[size_t(bits_index(bits))];
}

// Number of midpoints <= v (v in [−1, 1]): a branch-free binary search.
inline uint32_t level_code(const float* mid, int bits, float v) {
  uint32_t c = 0;
  for (uint32_t s = 1u << (bits - 1); s > 0; s >>= 1) c += (v >= mid[c + s - 1]) ? s : 0;
  return c;
}

struct RowLayout {
  NfFormat f;
  int64_t nb, code_bytes, scale_off, group_off;
};
RowLayout layout(DType t, int64_t k) {
  RowLayout L{nf_format(t), 0, 0, 0, 0};
  L.nb = k / L.f.block;
  L.code_bytes = L.f.block * L.f.bits / 8;
  L.scale_off = L.nb * L.code_bytes;
  L.group_off = L.scale_off + L.nb;  // q8 only
  return L;
}

// absmax' of every block as decoding sees it; writes the scale bytes when `row`.
void block_scales(const RowLayout& L, const float* in, float* scale, uint8_t* row) {
  for (int64_t b = 0; b < L.nb; ++b) {
    float m = 0.0f;
    const float* x = in + b * L.f.block;
    for (int64_t j = 0; j < L.f.block; ++j) m = std::max(m, std::fabs(x[j]));
    scale[b] = m;
  }
  if (L.f.scales == NfScales::F16) {
    for (int64_t b = 0; b < L.nb; ++b) {
      ZEROTH_CHECK(scale[b] <= 65504.0f, "{}: a block absmax of {} overflows f16 scales", L.f.name(), scale[b]);
      const uint16_t h = f32_to_f16(scale[b]);
      if (row) store_u16(row + L.scale_off + 2 * b, h);
      scale[b] = f16_to_f32(h);
    }
    return;
  }
  for (int64_t g0 = 0; g0 < L.nb; g0 += kNfGroup) {
    const int64_t g1 = std::min(L.nb, g0 + kNfGroup);
    double sum = 0.0;
    for (int64_t b = g0; b < g1; ++b) sum += scale[b];
    const float mean = float(sum / double(g1 - g0));
    float dev = 0.0f;
    for (int64_t b = g0; b < g1; ++b) dev = std::max(dev, std::fabs(scale[b] - mean));
    const float gscale = dev / 127.0f;
    ZEROTH_CHECK(std::isfinite(gscale), "{}: block scales overflow f32", L.f.name());
    if (row) {
      store_f32(row + L.group_off + (g0 / kNfGroup) * 8, gscale);
      store_f32(row + L.group_off + (g0 / kNfGroup) * 8 + 4, mean);
    }
    for (int64_t b = g0; b < g1; ++b) {
      const float q = gscale > 0.0f ? std::nearbyint((scale[b] - mean) / gscale) : 0.0f;
      const uint8_t code = uint8_t(std::clamp(q, -127.0f, 127.0f) + 128.0f);
      if (row) row[L.scale_off + b] = code;
      scale[b] = float(int(code) - 128) * gscale + mean;  // as decode computes it
    }
  }
}

// Codes of one block of x against scale s (s <= 0: every element is level "0").
void block_codes(const Codebook& cb, int bits, const float* x, int64_t n, float s, uint32_t* code) {
  if (!(s > 0.0f)) {
    std::fill(code, code + n, cb.zero);
    return;
  }
  const float inv = 1.0f / s;
  for (int64_t j = 0; j < n; ++j) code[j] = level_code(cb.mid.data(), bits, std::clamp(x[j] * inv, -1.0f, 1.0f));
}

float block_absmax(const RowLayout& L, const uint8_t* row, int64_t b) {
  if (L.f.scales == NfScales::F16) return f16_to_f32(load_u16(row + L.scale_off + 2 * b));
  const uint8_t* gp = row + L.group_off + (b / kNfGroup) * 8;
  return float(int(row[L.scale_off + b]) - 128) * load_f32(gp) + load_f32(gp + 4);
}

}  // namespace

std::string NfFormat::name() const {
  return "nf" + std::to_string(bits) + "_b" + std::to_string(block) + (scales == NfScales::F16 ? "_f16" : "");
}

double NfFormat::bits_per_element(int64_t k) const {
  return 8.0 * double(nf_row_bytes(nf_dtype(*this), k)) / double(k);
}

bool is_nf_family(DType t) { return t >= DType::NFK_FIRST && t <= DType::NFK_LAST; }

NfFormat nf_format(DType t) {
  ZEROTH_CHECK(is_nf_family(t), "dtype id {} is not one of the NF family (nf2..nf8)", int(t));
  const int i = int(t) - int(DType::NFK_FIRST);
  return {kNfBits[i / 10], kNfBlocks[(i / 2) % 5], i % 2 ? NfScales::F16 : NfScales::Q8};
}

DType nf_dtype(const NfFormat& f) {
  const int bi = bits_index(f.bits), ki = block_index(f.block);
  ZEROTH_CHECK(bi >= 0 && ki >= 0, "NF format with {} bits and blocks of {}: bits must be 2, 3, 4 or 8 and the "
               "block 16, 32, 64, 128 or 256", f.bits, f.block);
  return DType(int(DType::NFK_FIRST) + (bi * 5 + ki) * 2 + (f.scales == NfScales::F16 ? 1 : 0));
}

std::vector<DType> nf_family() {
  std::vector<DType> v;
  for (int i = 0; i < kNfFormatCount; ++i) v.push_back(DType(int(DType::NFK_FIRST) + i));
  return v;
}

const std::vector<float>& nf_codebook(int bits) {
  ZEROTH_CHECK(bits_index(bits) >= 0, "no NF codebook at {} bits (2, 3, 4 or 8)", bits);
  return codebook(bits).levels;
}

size_t nf_row_bytes(DType t, int64_t k) {
  const NfFormat f = nf_format(t);
  const int64_t nb = k / f.block;
  const int64_t codes = nb * f.block * f.bits / 8;
  if (f.scales == NfScales::F16) return size_t(codes + 2 * nb);
  return size_t(codes + nb + (nb + kNfGroup - 1) / kNfGroup * 8);
}

void encode_nfk(DType t, const float* in, int64_t k, uint8_t* row) {
  const RowLayout L = layout(t, k);
  const Codebook& cb = codebook(L.f.bits);
  std::vector<float> scale(size_t(L.nb));
  block_scales(L, in, scale.data(), row);
  std::vector<uint32_t> code(size_t(L.f.block));
  for (int64_t b = 0; b < L.nb; ++b) {
    block_codes(cb, L.f.bits, in + b * L.f.block, L.f.block, scale[size_t(b)], code.data());
    uint8_t* out = row + b * L.code_bytes;
    for (int64_t j0 = 0; j0 < L.f.block; j0 += 8) {  // 8 codes -> `bits` bytes
      uint64_t w = 0;
      for (int j = 0; j < 8; ++j) w |= uint64_t(code[size_t(j0 + j)]) << (j * L.f.bits);
      for (int i = 0; i < L.f.bits; ++i) out[j0 / 8 * L.f.bits + i] = uint8_t(w >> (8 * i));
    }
  }
}

void decode_nfk(DType t, const uint8_t* row, int64_t k, int64_t k0, int64_t len, float* out) {
  const RowLayout L = layout(t, k);
  const float* lv = codebook(L.f.bits).levels.data();
  const uint64_t mask = (uint64_t(1) << L.f.bits) - 1;
  for (int64_t b = k0 / L.f.block; b < (k0 + len) / L.f.block; ++b) {
    const float s = block_absmax(L, row, b);
    const uint8_t* c = row + b * L.code_bytes;
    float* y = out + (b * L.f.block - k0);
    for (int64_t j0 = 0; j0 < L.f.block; j0 += 8) {
      uint64_t w = 0;
      for (int i = 0; i < L.f.bits; ++i) w |= uint64_t(c[j0 / 8 * L.f.bits + i]) << (8 * i);
      for (int j = 0; j < 8; ++j) y[j0 + j] = s * lv[(w >> (j * L.f.bits)) & mask];
    }
  }
}

void roundtrip_nfk(DType t, const float* in, int64_t k, float* out) {
  const RowLayout L = layout(t, k);
  const Codebook& cb = codebook(L.f.bits);
  std::vector<float> scale(size_t(L.nb));
  block_scales(L, in, scale.data(), nullptr);
  std::vector<uint32_t> code(size_t(L.f.block));
  for (int64_t b = 0; b < L.nb; ++b) {
    const float s = scale[size_t(b)];
    block_codes(cb, L.f.bits, in + b * L.f.block, L.f.block, s, code.data());
    for (int64_t j = 0; j < L.f.block; ++j) out[b * L.f.block + j] = s * cb.levels[code[size_t(j)]];
  }
}

}  // namespace zeroth
