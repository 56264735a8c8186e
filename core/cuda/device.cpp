// Device memory and queries for the CUDA backend (host code: built by the C++ compiler;
// kernels live in the .cu files beside it, which include no fmt headers).
#include <cuda_runtime.h>

#include "core/backend.h"
#include "core/error.h"

namespace zeroth {
namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
}  // namespace

bool cuda_built() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver"/"no device" error
    return 0;
  }
  return n;
}

bool cuda_available() { return cuda_device_count() > 0; }

std::string cuda_describe() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("built with CUDA, no usable device: ") + cudaGetErrorString(e);
  }
  if (n == 0) return "built with CUDA, no device";
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  return fmt::format("{} device(s); 0: {} (sm_{}{}, {:.1f} GiB)", n, p.name, p.major, p.minor,
                     double(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

std::string cuda_backend_class() {
  if (!cuda_available()) return "";
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, d), "cudaGetDeviceProperties");
  return fmt::format("cuda-sm{}{}", p.major, p.minor);
}

CudaMemoryInfo cuda_memory_info() {
  if (!cuda_available()) return {};
  CudaMemoryInfo m;
  check(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
  return m;
}

int cuda_current_device() {
  if (!cuda_available()) return -1;
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

void cuda_set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

void* cuda_malloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
  return p;
}
void cuda_free(void* p) noexcept { if (p) cudaFree(p); }
void cuda_copy_h2d(void* d, const void* s, size_t n) { check(cudaMemcpy(d, s, n, cudaMemcpyHostToDevice), "cudaMemcpy h2d"); }
void cuda_copy_d2h(void* d, const void* s, size_t n) { check(cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost), "cudaMemcpy d2h"); }
void cuda_copy_d2d(void* d, const void* s, size_t n) { check(cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice), "cudaMemcpy d2d"); }
void cuda_memset_zero(void* d, size_t n) { check(cudaMemset(d, 0, n), "cudaMemset"); }
void cuda_synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace zeroth
