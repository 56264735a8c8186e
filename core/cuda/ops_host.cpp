// Host side of the CUDA forward ops (core/cuda_ops.h): argument checks with the
// CPU reference's messages, host metadata (positions, sequences, targets) moved
// to the device, and CUDA errors turned into zeroth::Error naming the call.
#include <cstdint>
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "core/cuda/ops_kernels.h"
#include "core/cuda_ops.h"
#include "core/error.h"

namespace zeroth {
namespace {
void check_launch(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("{}: kernel launch: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
}  // namespace

void rmsnorm_cuda(const float* x, const float* w, float* out, int64_t n, int64_t d, float eps) {
  ZEROTH_CHECK(n >= 0 && d > 0, "rmsnorm_cuda: bad shape ({}, {})", n, d);
  check_launch(cuda::launch_rmsnorm(x, w, out, n, d, eps), "rmsnorm_cuda");
}

RopeTableCuda::RopeTableCuda(const RopeTable& t)
    : head_dim(t.head_dim), max_pos(t.max_pos), cos(std::span<const float>(t.cos)), sin(std::span<const float>(t.sin)) {}

void check_rope_positions(std::span<const int32_t> positions, const RopeTableCuda& table) {
  for (int32_t p : positions)
    ZEROTH_CHECK(p >= 0 && p < table.max_pos, "position {} outside the RoPE table of {} positions", p, table.max_pos);
}

void rope_cuda(float* x, const int32_t* positions_device, int64_t n, int64_t heads, const RopeTableCuda& table,
               bool interleaved) {
  if (n == 0) return;
  check_launch(cuda::launch_rope(x, positions_device, n, heads, table.cos.data(), table.sin.data(), table.head_dim,
                                 interleaved),
               "rope_cuda");
}

void rope_cuda(float* x, std::span<const int32_t> positions, int64_t heads, const RopeTableCuda& table,
               bool interleaved) {
  check_rope_positions(positions, table);
  if (positions.empty()) return;
  const DeviceArray<int32_t> pos(positions);
  rope_cuda(x, pos.data(), int64_t(positions.size()), heads, table, interleaved);
  // pos is freed on return: cudaFree waits for the kernel that reads it.
}

namespace {
std::vector<int64_t> row_starts(std::span<const SeqSpan> seqs, int64_t n, int64_t& max_len) {
  ZEROTH_CHECK(n >= 0, "causal_attention_cuda: bad row count {}", n);
  std::vector<int64_t> row_start(size_t(n), -1);
  max_len = 0;
  for (const SeqSpan& s : seqs) {
    ZEROTH_CHECK(s.start >= 0 && s.length >= 0 && s.start + s.length <= n,
                 "causal_attention_cuda: sequence [{}, {}) outside the {} rows", s.start, s.start + s.length, n);
    for (int64_t r = s.start; r < s.start + s.length; ++r) row_start[size_t(r)] = s.start;
    max_len = std::max(max_len, s.length);
  }
  return row_start;
}
}  // namespace

AttentionRowsCuda::AttentionRowsCuda(std::span<const SeqSpan> seqs, int64_t rows) : n(rows) {
  const std::vector<int64_t> s = row_starts(seqs, rows, max_len);
  starts = DeviceArray<int64_t>(std::span<const int64_t>(s));
}

void causal_attention_cuda(const float* q, const float* k, const float* v, float* out, const AttentionRowsCuda& rows,
                           int64_t heads, int64_t kv_heads, int64_t hd) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  ZEROTH_CHECK(hd > 0, "causal_attention_cuda: bad head dim {}", hd);
  if (rows.n == 0) return;
  const size_t need = cuda::attention_shared_bytes(hd, rows.max_len);
  if (need > 48 * 1024) {
    size_t limit = 0;
    check_launch(cuda::attention_shared_limit(&limit), "causal_attention_cuda: shared memory query");
    ZEROTH_CHECK(need <= limit,
                 "causal_attention_cuda: a sequence of {} tokens needs {} KiB of shared memory for its scores, "
                 "the device allows {} KiB per block (split the sequence)",
                 rows.max_len, need / 1024, limit / 1024);
  }
  check_launch(cuda::launch_attention(q, k, v, out, rows.starts.data(), rows.n, heads, kv_heads, hd, rows.max_len),
               "causal_attention_cuda");
}

void causal_attention_cuda(const float* q, const float* k, const float* v, float* out, std::span<const SeqSpan> seqs,
                           int64_t n, int64_t heads, int64_t kv_heads, int64_t hd) {
  ZEROTH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "{} heads cannot share {} kv heads", heads, kv_heads);
  ZEROTH_CHECK(hd > 0 && n >= 0, "causal_attention_cuda: bad head dim {} or row count {}", hd, n);
  const AttentionRowsCuda rows(seqs, n);
  causal_attention_cuda(q, k, v, out, rows, heads, kv_heads, hd);
}

void silu_mul_cuda(float* g, const float* u, int64_t n) {
  ZEROTH_CHECK(n >= 0, "silu_mul_cuda: negative size {}", n);
  check_launch(cuda::launch_silu_mul(g, u, n), "silu_mul_cuda");
}

void add_inplace_cuda(float* y, const float* x, int64_t n) {
  ZEROTH_CHECK(n >= 0, "add_inplace_cuda: negative size {}", n);
  check_launch(cuda::launch_add_inplace(y, x, n), "add_inplace_cuda");
}

void logsumexp_rows_cuda(const float* x, int64_t n, int64_t d, float* out) {
  ZEROTH_CHECK(n >= 0 && d > 0, "logsumexp_rows_cuda: bad shape ({}, {})", n, d);
  check_launch(cuda::launch_logsumexp(x, n, d, nullptr, out), "logsumexp_rows_cuda");
}

void token_logprobs_cuda(const float* x, std::span<const int32_t> targets, int64_t d, float* out) {
  ZEROTH_CHECK(d > 0, "token_logprobs_cuda: empty vocabulary");
  for (int32_t t : targets) ZEROTH_CHECK(t >= 0 && t < d, "target token {} outside the vocabulary of {}", t, d);
  if (targets.empty()) return;
  const DeviceArray<int32_t> tg(targets);
  check_launch(cuda::launch_logsumexp(x, int64_t(targets.size()), d, tg.data(), out), "token_logprobs_cuda");
}

}  // namespace zeroth
