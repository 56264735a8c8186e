// `zeroth info`: what this build is and what it can use on this machine.
#include <fmt/format.h>

#include "core/backend.h"
#include "core/parallel.h"
#include "launch/commands.h"

namespace zeroth::cli {

Runner add_info(CLI::App& app) {
  app.add_subcommand("info", "Show the build (version, SIMD, CUDA) and this machine's devices");
  return [] {
    fmt::print("zeroth {}\n", ZEROTH_VERSION);
#if defined(__AVX512F__)
    fmt::print("cpu kernels: AVX-512\n");
#elif defined(__AVX2__)
    fmt::print("cpu kernels: AVX2+FMA\n");
#else
    fmt::print("cpu kernels: scalar\n");
#endif
    fmt::print("threads: {}\n", default_threads());
    fmt::print("cuda: {}\n", cuda_describe());
    return 0;
  };
}

}  // namespace zeroth::cli
