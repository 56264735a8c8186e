// Launchers of the forward-op kernels (core/cuda/ops.cu), called by the host
// wrappers in core/cuda/ops_host.cpp, which check arguments and turn the
// returned CUDA error into a zeroth::Error. All pointers are device memory.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zeroth::cuda {

cudaError_t launch_rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps);
// x (n, heads*hd) in place; pos (n); cos, sin (max_pos, hd/2).
cudaError_t launch_rope(float* x, const int32_t* pos, int64_t n, int64_t heads, const float* cos, const float* sin,
                        int64_t hd, bool interleaved);
// row_start (n): first row of the sequence holding row r, or -1 for a row in none.
// max_len: the longest sequence (sizes the shared score buffer).
cudaError_t launch_attention(const float* q, const float* k, const float* v, float* out, const int64_t* row_start,
                             int64_t n, int64_t heads, int64_t kv_heads, int64_t hd, int64_t max_len);
// Shared memory the attention kernel needs for a sequence of max_len tokens, and the device's limit.
size_t attention_shared_bytes(int64_t hd, int64_t max_len);
cudaError_t attention_shared_limit(size_t* bytes);
cudaError_t launch_silu_mul(float* g, const float* u, int64_t n);
cudaError_t launch_add_inplace(float* y, const float* x, int64_t n);
// c (m rows of n, row stride ldc) = beta · c; beta = 0 writes zeros (NaNs in c included).
cudaError_t launch_scale_rows(float* c, int64_t m, int64_t n, int64_t ldc, float beta);
// out[r] = logsumexp(x[r, :]), or x[r, targets[r]] - logsumexp(x[r, :]) when targets is not null.
cudaError_t launch_logsumexp(const float* x, int64_t n, int64_t d, const int32_t* targets, float* out);

}  // namespace zeroth::cuda
