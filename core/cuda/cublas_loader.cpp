// core/cuda/cublas_loader.h: dlopen of libcublas and its six entry points.
#include "core/cuda/cublas_loader.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <string>

#include "core/error.h"

namespace zeroth::cuda {
namespace {

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown error";
}

void* open_cublas(std::string& tried) {
  const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  if (void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
  tried = name + " (" + dl_error() + ")";
  // Beside the CUDA runtime this binary was linked with.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaGetDeviceCount), &info) != 0 && info.dli_fname) {
    std::string path(info.dli_fname);
    path = path.substr(0, path.rfind('/') + 1) + name;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    tried += ", " + path + " (" + dl_error() + ")";
  }
  return nullptr;
}

template <typename F>
void bind(void* lib, F& f, const char* symbol) {
  f = reinterpret_cast<F>(dlsym(lib, symbol));
  ZEROTH_CHECK(f != nullptr, "cuBLAS: libcublas has no {} ({})", symbol, dl_error());
}

CublasApi load() {
  std::string tried;
  void* lib = open_cublas(tried);
  ZEROTH_CHECK(lib != nullptr, "cuBLAS: cannot load {}: install the CUDA toolkit's cuBLAS, or put its directory on "
               "LD_LIBRARY_PATH", tried);
  CublasApi api;
  bind(lib, api.create, "cublasCreate_v2");
  bind(lib, api.destroy, "cublasDestroy_v2");
  bind(lib, api.set_math_mode, "cublasSetMathMode");
  bind(lib, api.gemm_ex, "cublasGemmEx");
  bind(lib, api.status_name, "cublasGetStatusName");
  bind(lib, api.status_string, "cublasGetStatusString");
  return api;  // the library stays loaded for the life of the process
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();
  return api;
}

}  // namespace zeroth::cuda
