// CUDA forward ops paired with core/cpu/ops.cpp. Straightforward kernels: one
// block per row for reductions (rmsnorm, log-sum-exp), one block per (query
// row, head) for attention, one thread per element or pair elsewhere. Block
// reductions combine the warps' partials in a fixed order, so every result is
// deterministic run to run (not bit-equal to the CPU's sequential sums).
//
// Compiled with --fmad=false (CMake), so a*b + c rounds twice as on the CPU
// (-ffp-contract=off); rope spells its operations with __f*_rn as well.
#include <cfloat>
#include <cstdint>

#include "core/cuda/ops_kernels.h"

namespace zeroth::cuda {
namespace {

constexpr int kRowThreads = 256;   // rmsnorm, log-sum-exp: threads per row
constexpr int kAttnThreads = 128;  // attention: threads per (query row, head)
constexpr int kElemThreads = 256;

int elem_grid(int64_t n) {
  const int64_t g = (n + kElemThreads - 1) / kElemThreads;
  return int(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

// Reductions over the block: warps reduce by shuffles, then every thread folds
// the warp partials 0, 1, ... in order (same result in every thread). `red`
// holds one T per warp; the leading barrier lets callers reuse it back to back.
template <typename T, typename Op>
__device__ T block_reduce(T v, T* red, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = red[0];
  for (unsigned w = 1; w < blockDim.x / 32; ++w) r = op(r, red[w]);
  return r;
}
struct Add {
  template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// One block per row r of x (n, d).
__global__ void rmsnorm_kernel(const float* x, const float* w, float* out, int64_t d, float eps) {
  __shared__ float red[kRowThreads / 32];
  const float* xr = x + int64_t(blockIdx.x) * d;
  float* o = out + int64_t(blockIdx.x) * d;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_reduce(ss, red, Add{});
  const float inv = 1.0f / sqrtf(ss / float(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) o[i] = w[i] * (inv * xr[i]);
}

// One thread per (row, head, pair j): the same two products and one sum/difference as the CPU.
__global__ void rope_kernel(float* x, const int32_t* pos, int64_t n, int64_t heads, const float* cos,
                            const float* sin, int64_t hd, bool interleaved) {
  const int64_t half = hd / 2, total = n * heads * half;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t % half, rh = t / half;  // rh = r * heads + h
    const int64_t p = pos[rh / heads];
    float* v = x + rh * hd;
    float* a = interleaved ? v + 2 * j : v + j;
    float* b = interleaved ? v + 2 * j + 1 : v + j + half;
    const float c = cos[p * half + j], s = sin[p * half + j], x0 = *a, x1 = *b;
    *a = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    *b = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
  }
}

// One block per (query row r = blockIdx.x, head h = blockIdx.y). Dynamic shared
// memory: q row (hd) | warp partials (32) | scores of the row's keys (≤ max_len).
// Each thread scores keys j ≡ tid (mod blockDim) with the CPU's dot order, the
// block takes max and sum, then thread e sums a_j · v[j][e] over j in order.
// Every K/V row is read once per query row: O(L² · hd) global reads per head,
// which a flash-attention kernel (K/V tiles in shared memory shared by a tile
// of query rows, online softmax, tensor-core QKᵀ and PV) would cut to O(L² · hd / tile).
__global__ void attention_kernel(const float* q, const float* k, const float* v, float* out,
                                 const int64_t* row_start, int64_t heads, int64_t kv_heads, int64_t hd,
                                 float scale) {
  extern __shared__ float sh[];
  const int64_t r = blockIdx.x, h = blockIdx.y;
  const int64_t s0 = row_start[r];
  if (s0 < 0) return;
  float* qs = sh;
  float* red = sh + hd;
  float* att = red + 32;
  const int64_t qdim = heads * hd, kvdim = kv_heads * hd, kvh = h / (heads / kv_heads);
  for (int64_t e = threadIdx.x; e < hd; e += blockDim.x) qs[e] = q[r * qdim + h * hd + e];
  __syncthreads();
  const int64_t len = r - s0 + 1;  // keys s0..r
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const float* kj = k + (s0 + j) * kvdim + kvh * hd;
    float dot = 0.0f;
    for (int64_t e = 0; e < hd; ++e) dot += qs[e] * kj[e];
    att[j] = dot * scale;
    mx = fmaxf(mx, att[j]);
  }
  mx = block_reduce(mx, red, Max{});
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    att[j] = expf(att[j] - mx);
    sum += att[j];
  }
  sum = block_reduce(sum, red, Add{});  // its barriers also publish att[]
  const float inv = 1.0f / sum;
  for (int64_t e = threadIdx.x; e < hd; e += blockDim.x) {
    const float* ve = v + s0 * kvdim + kvh * hd + e;
    float acc = 0.0f;
    for (int64_t j = 0; j < len; ++j) acc += (att[j] * inv) * ve[j * kvdim];
    out[r * qdim + h * hd + e] = acc;
  }
}

__global__ void silu_mul_kernel(float* g, const float* u, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

__global__ void add_inplace_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __fadd_rn(y[i], x[i]);
}

__global__ void scale_rows_kernel(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m * n; i += int64_t(gridDim.x) * blockDim.x) {
    float* e = c + (i / n) * ldc + i % n;
    *e = beta == 0.0f ? 0.0f : beta * *e;
  }
}

// One block per row: max in float, Σ exp(x − max) in double (as the CPU), then
// log in double rounded once to float.
__global__ void logsumexp_kernel(const float* x, int64_t d, const int32_t* targets, float* out) {
  __shared__ float redf[kRowThreads / 32];
  __shared__ double redd[kRowThreads / 32];
  const float* xr = x + int64_t(blockIdx.x) * d;
  float mx = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) mx = fmaxf(mx, xr[i]);
  mx = block_reduce(mx, redf, Max{});
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += exp(double(xr[i] - mx));
  s = block_reduce(s, redd, Add{});
  if (threadIdx.x == 0) {
    const float lse = mx + float(log(s));
    out[blockIdx.x] = targets ? xr[targets[blockIdx.x]] - lse : lse;
  }
}

}  // namespace

cudaError_t launch_rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps) {
  if (n == 0) return cudaSuccess;
  rmsnorm_kernel<<<unsigned(n), kRowThreads>>>(x, w, out, d, eps);
  return cudaGetLastError();
}

cudaError_t launch_rope(float* x, const int32_t* pos, int64_t n, int64_t heads, const float* cos, const float* sin,
                        int64_t hd, bool interleaved) {
  const int64_t total = n * heads * (hd / 2);
  if (total == 0) return cudaSuccess;
  rope_kernel<<<elem_grid(total), kElemThreads>>>(x, pos, n, heads, cos, sin, hd, interleaved);
  return cudaGetLastError();
}

size_t attention_shared_bytes(int64_t hd, int64_t max_len) { return size_t(hd + 32 + max_len) * sizeof(float); }

cudaError_t attention_shared_limit(size_t* bytes) {
  int dev = 0, limit = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  *bytes = size_t(limit);
  return e;
}

cudaError_t launch_attention(const float* q, const float* k, const float* v, float* out, const int64_t* row_start,
                             int64_t n, int64_t heads, int64_t kv_heads, int64_t hd, int64_t max_len) {
  if (n == 0 || heads == 0) return cudaSuccess;
  const size_t shared = attention_shared_bytes(hd, max_len);
  if (shared > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared));
    if (e != cudaSuccess) return e;
  }
  const dim3 grid{unsigned(n), unsigned(heads)};
  attention_kernel<<<grid, kAttnThreads, shared>>>(q, k, v, out, row_start, heads, kv_heads, hd,
                                                   1.0f / sqrtf(float(hd)));
  return cudaGetLastError();
}

cudaError_t launch_silu_mul(float* g, const float* u, int64_t n) {
  if (n == 0) return cudaSuccess;
  silu_mul_kernel<<<elem_grid(n), kElemThreads>>>(g, u, n);
  return cudaGetLastError();
}

cudaError_t launch_add_inplace(float* y, const float* x, int64_t n) {
  if (n == 0) return cudaSuccess;
  add_inplace_kernel<<<elem_grid(n), kElemThreads>>>(y, x, n);
  return cudaGetLastError();
}

cudaError_t launch_scale_rows(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  if (m == 0 || n == 0) return cudaSuccess;
  scale_rows_kernel<<<elem_grid(m * n), kElemThreads>>>(c, m, n, ldc, beta);
  return cudaGetLastError();
}

cudaError_t launch_logsumexp(const float* x, int64_t n, int64_t d, const int32_t* targets, float* out) {
  if (n == 0) return cudaSuccess;
  logsumexp_kernel<<<unsigned(n), kRowThreads>>>(x, d, targets, out);
  return cudaGetLastError();
}

}  // namespace zeroth::cuda
