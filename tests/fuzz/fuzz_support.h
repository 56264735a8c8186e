// What the fuzz targets share: a scratch directory for the parsers that read
// files, and the check that turns a broken property into a crash that libFuzzer
// records together with its input.
//
// The contract every target checks: a parser returns, or throws zeroth::Error
// (or the documented error type, e.g. tcp::FrameError). The targets catch only
// that type; any other exception escapes and libFuzzer reports it, as it does a
// crash, a sanitizer report, a leak or an allocation past -malloc_limit_mb.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace zeroth::fuzz {

// A property that must hold for every input failed: print it and abort.
[[noreturn]] inline void violated(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", file, line, what);
  std::abort();
}
#define ZEROTH_FUZZ_REQUIRE(cond, what)                                  \
  do {                                                                   \
    if (!(cond)) ::zeroth::fuzz::violated(__FILE__, __LINE__, (what));   \
  } while (0)

// A private directory under $TMPDIR (default /tmp), made on first use and removed
// at exit. scripts/fuzz points TMPDIR at its own work directory, so what a
// crashing run leaves behind goes when the script ends.
class Scratch {
 public:
  static const std::filesystem::path& dir() {
    static const Scratch s;
    return s.dir_;
  }
  // An empty directory dir()/name, emptied again on every call (so no file a
  // previous input wrote can change how this one parses).
  static std::filesystem::path fresh(const std::string& name) {
    const std::filesystem::path d = dir() / name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }
  // Writes the bytes to `path`, replacing what was there.
  static void write(const std::filesystem::path& path, const uint8_t* data, size_t n) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(n));
    if (!out) {
      std::fprintf(stderr, "fuzz scratch: cannot write %s\n", path.c_str());
      std::abort();
    }
  }

 private:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/zeroth-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      std::perror("fuzz scratch: mkdtemp");
      std::abort();
    }
    dir_ = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};

// An input the parser rejected. With ZEROTH_FUZZ_EXPLAIN=1 in the environment
// the reason is printed: run a target on one file to see why a seed fails.
inline void rejected(const std::exception& e) {
  static const bool explain = [] {
    const char* v = std::getenv("ZEROTH_FUZZ_EXPLAIN");
    return v && *v && *v != '0';
  }();
  if (explain) std::fprintf(stderr, "rejected: %s\n", e.what());
}

inline std::string_view as_text(const uint8_t* data, size_t n) {
  return {reinterpret_cast<const char*>(data), n};
}

}  // namespace zeroth::fuzz
