// The row-wise forward ops of core/ops.h on CUDA device memory (core/cuda/ops.cu,
// host checks in core/cuda/ops_host.cpp; in a build without CUDA each function
// throws "built without CUDA"). Shapes and layouts are those of core/ops.h; every
// float pointer here is device memory, every std::span is host memory (small
// per-batch metadata: positions, sequence spans, targets), checked on the host
// before it is copied over.
//
// Kernels run on the default stream. The calls return after the launch: a fault
// inside a kernel surfaces at the next synchronizing call (cuda_synchronize, a
// copy to the host), named by that call.
//
// Agreement with the CPU reference (tests/core/cuda_ops_test.cpp): rope and
// add_inplace bit for bit (same single-rounded operations, --fmad=false);
// reductions (rmsnorm, attention, log-sum-exp) by summation order only; silu
// by the device expf's ≤ 2 ulp.
#pragma once
#include <cstdint>
#include <span>

#include "core/device_array.h"
#include "core/ops.h"

namespace zeroth {

// out = x / sqrt(mean(x^2) + eps) * w, per row.          x, out: (n, d); w: (d)
void rmsnorm_cuda(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps);

// The cos/sin tables of a RopeTable on the device, (max_pos, head_dim/2) each.
struct RopeTableCuda {
  explicit RopeTableCuda(const RopeTable& t);
  int64_t head_dim = 0, max_pos = 0;
  DeviceArray<float> cos, sin;
};
// Rotates x (n, heads*head_dim) in place; positions (n, host) must lie in the
// table. interleaved: pairs (2j, 2j+1); otherwise rotate-half pairs (j, j+hd/2).
void rope_cuda(float* x, std::span<const int32_t> positions, int64_t heads, const RopeTableCuda& table,
               bool interleaved);
// The same with the positions already on the device (n of them), for callers
// that rotate many tensors of one batch: they check the positions once
// (check_rope_positions) and copy them over once.
void check_rope_positions(std::span<const int32_t> positions, const RopeTableCuda& table);
void rope_cuda(float* x, const int32_t* positions_device, int64_t n, int64_t heads, const RopeTableCuda& table,
               bool interleaved);

// Causal grouped-query attention over packed sequences (seqs on the host).
//   q, out: (n, heads*hd)   k, v: (n, kv_heads*hd); rows outside every sequence are not written.
void causal_attention_cuda(const float* q, const float* k, const float* v, float* out,
                           std::span<const SeqSpan> seqs, int64_t n, int64_t heads, int64_t kv_heads, int64_t hd);
// The packed-sequence layout of a batch on the device (each row's sequence
// start, -1 outside every sequence), checked and copied once for all layers.
struct AttentionRowsCuda {
  AttentionRowsCuda(std::span<const SeqSpan> seqs, int64_t n);
  int64_t n = 0, max_len = 0;
  DeviceArray<int64_t> starts;
};
void causal_attention_cuda(const float* q, const float* k, const float* v, float* out, const AttentionRowsCuda& rows,
                           int64_t heads, int64_t kv_heads, int64_t hd);

// g = silu(g) * u over n values; y += x over n values.
void silu_mul_cuda(float* g, const float* u, int64_t n);
void add_inplace_cuda(float* y, const float* x, int64_t n);

// out[r] = log Σ_i exp(x[r, i]), x (n, d); accumulated in double as the CPU does.
void logsumexp_rows_cuda(const float* x, int64_t n, int64_t d, float* out);
// out[r] = x[r, targets[r]] − logsumexp(x[r, :]): the log-probability of each
// row's target token. x (n, d) logits; targets (n, host) in [0, d).
void token_logprobs_cuda(const float* x, std::span<const int32_t> targets, int64_t d, float* out);

}  // namespace zeroth
