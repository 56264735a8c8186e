#include "core/backend.h"

namespace zeroth {

// The float results of a forward (and so a member's codes) may differ in the
// last bits between kernels built for different instruction sets; thread counts
// do not change them (every reduction has a fixed order). Build targets are
// named by their x86-64 micro-architecture level.
std::string cpu_backend_class() {
#if defined(__x86_64__)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  return "cpu-x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__)
  return "cpu-x86-64-v3";
#else
  return "cpu-x86-64";
#endif
#elif defined(__aarch64__)
  return "cpu-aarch64";
#else
  return "cpu-other";
#endif
}

}  // namespace zeroth
