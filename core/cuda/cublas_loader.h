// cuBLAS, loaded when first used (dlopen) rather than when the program starts.
// Linked in the usual way, libcublasLt's load-time set-up costs every zeroth
// process about 150 MiB of resident memory (measured: 164 MiB RSS for an idle
// `zeroth worker`, 9 MiB without it), whether or not it ever touches a GPU.
#pragma once
#include <cublas_v2.h>

namespace zeroth::cuda {

// The cuBLAS entry points zeroth calls.
struct CublasApi {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasDestroy_v2) destroy = nullptr;
  decltype(&::cublasSetMathMode) set_math_mode = nullptr;
  // The header overloads cublasGemmEx for C++ (a cudaDataType compute type): this is the exported one.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&::cublasGetStatusName) status_name = nullptr;
  decltype(&::cublasGetStatusString) status_string = nullptr;
};

// Loads libcublas.so.<major of the headers> on the first call: by its name (the
// loader's search path and this binary's RUNPATH), else from the directory of
// the CUDA runtime this binary loaded. Throws zeroth::Error naming what was
// tried; a later call tries again.
const CublasApi& cublas();

}  // namespace zeroth::cuda
