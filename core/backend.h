// The device backend: CUDA where the build found nvcc (core/cuda/), otherwise a
// stub (core/stub/) whose functions say "built without CUDA". Callers never
// branch on the build; they ask cuda_available() or catch the error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace zeroth {

enum class Device : uint8_t { CPU, CUDA };

bool cuda_built();          // compiled with the CUDA backend
bool cuda_available();      // built with CUDA and at least one device is usable
int cuda_device_count();    // 0 when not available
std::string cuda_describe();  // one line: device name and memory, or why none

// A member's backend class, for spot checks (elastic.spot_tolerances): members
// of one class compute the same codes; across classes codes may differ by a
// rounding step. "cpu-x86-64-v4" (AVX-512 build), "cpu-x86-64-v3" (AVX2), ...
std::string cpu_backend_class();
// The class of a CUDA member on the calling thread's current device:
// "cuda-sm90" (compute capability); "" where CUDA is not available.
std::string cuda_backend_class();

// The current device's memory as the driver counts it (every process and
// context on it): free and total bytes; zeros where CUDA is not available.
struct CudaMemoryInfo {
  size_t free = 0, total = 0;
  size_t used() const { return total - free; }
};
CudaMemoryInfo cuda_memory_info();

// The calling thread's CUDA device (-1 where CUDA is not available), and
// making `device` the calling thread's (threads start on device 0).
int cuda_current_device();
void cuda_set_device(int device);

void* cuda_malloc(size_t bytes);             // throws on failure
void cuda_free(void* p) noexcept;
void cuda_copy_h2d(void* dst, const void* src, size_t bytes);
void cuda_copy_d2h(void* dst, const void* src, size_t bytes);
void cuda_copy_d2d(void* dst, const void* src, size_t bytes);
void cuda_memset_zero(void* dst, size_t bytes);
void cuda_synchronize();

}  // namespace zeroth
