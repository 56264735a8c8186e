// Names of the CUDA GEMM precisions (core/cuda_matmul.h), in every build: the
// configuration parses them whether or not this build has the CUDA backend.
#include "core/cuda_matmul.h"
#include "core/error.h"

namespace zeroth {

const char* gemm_precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::F32: return "f32";
    case GemmPrecision::TF32: return "tf32";
    case GemmPrecision::BF16: return "bf16";
  }
  return "?";
}

GemmPrecision parse_gemm_precision(const std::string& s, const char* key) {
  if (s == "f32") return GemmPrecision::F32;
  if (s == "tf32") return GemmPrecision::TF32;
  if (s == "bf16") return GemmPrecision::BF16;
  fail("{}: '{}' is not a GEMM precision (f32, tf32 or bf16)", key, s);
}

}  // namespace zeroth
