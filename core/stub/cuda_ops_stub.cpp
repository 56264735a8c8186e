// The CUDA forward ops of a build without CUDA (core/cuda_ops.h): each says so.
#include <cstdint>

#include "core/cuda_ops.h"

#include "core/error.h"

namespace zeroth {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail("{}: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)", what);
}
}  // namespace

void rmsnorm_cuda(const float*, const float*, float*, int64_t, int64_t, float) { no_cuda("rmsnorm_cuda"); }
RopeTableCuda::RopeTableCuda(const RopeTable&) { no_cuda("RopeTableCuda"); }
void rope_cuda(float*, std::span<const int32_t>, int64_t, const RopeTableCuda&, bool) { no_cuda("rope_cuda"); }
void check_rope_positions(std::span<const int32_t>, const RopeTableCuda&) { no_cuda("check_rope_positions"); }
void rope_cuda(float*, const int32_t*, int64_t, int64_t, const RopeTableCuda&, bool) { no_cuda("rope_cuda"); }
void causal_attention_cuda(const float*, const float*, const float*, float*, std::span<const SeqSpan>, int64_t,
                           int64_t, int64_t, int64_t) {
  no_cuda("causal_attention_cuda");
}
AttentionRowsCuda::AttentionRowsCuda(std::span<const SeqSpan>, int64_t) { no_cuda("AttentionRowsCuda"); }
void causal_attention_cuda(const float*, const float*, const float*, float*, const AttentionRowsCuda&, int64_t, int64_t,
                           int64_t) {
  no_cuda("causal_attention_cuda");
}
void silu_mul_cuda(float*, const float*, int64_t) { no_cuda("silu_mul_cuda"); }
void add_inplace_cuda(float*, const float*, int64_t) { no_cuda("add_inplace_cuda"); }
void logsumexp_rows_cuda(const float*, int64_t, int64_t, float*) { no_cuda("logsumexp_rows_cuda"); }
void token_logprobs_cuda(const float*, std::span<const int32_t>, int64_t, float*) { no_cuda("token_logprobs_cuda"); }

}  // namespace zeroth
