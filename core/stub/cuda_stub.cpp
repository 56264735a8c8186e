// The backend of a build without CUDA: queries answer "none", everything else
// throws a clear error instead of crashing.
#include "core/backend.h"
#include "core/error.h"

namespace zeroth {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail("{}: zeroth was built without CUDA (reconfigure with nvcc installed, -DZEROTH_CUDA=ON)", what);
}
}  // namespace

bool cuda_built() { return false; }
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_describe() { return "built without CUDA"; }
std::string cuda_backend_class() { return ""; }
CudaMemoryInfo cuda_memory_info() { return {}; }
int cuda_current_device() { return -1; }
void cuda_set_device(int) { no_cuda("cuda_set_device"); }
void* cuda_malloc(size_t) { no_cuda("cuda_malloc"); }
void cuda_free(void*) noexcept {}
void cuda_copy_h2d(void*, const void*, size_t) { no_cuda("cuda_copy_h2d"); }
void cuda_copy_d2h(void*, const void*, size_t) { no_cuda("cuda_copy_d2h"); }
void cuda_copy_d2d(void*, const void*, size_t) { no_cuda("cuda_copy_d2d"); }
void cuda_memset_zero(void*, size_t) { no_cuda("cuda_memset_zero"); }
void cuda_synchronize() {}

}  // namespace zeroth
