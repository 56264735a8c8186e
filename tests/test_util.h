// Helpers shared by the test binaries.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <unistd.h>

namespace zeroth::test {

// ../shared beside the checkout (models, goldens, data), or "" when absent.
inline std::string shared_dir() {
  const char* env = std::getenv("ZEROTH_SHARED");
  std::filesystem::path p = env ? env : ZEROTH_SHARED_DIR;
  return std::filesystem::is_directory(p) ? std::filesystem::canonical(p).string() : std::string();
}

// A fresh empty directory for one test's files.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("zeroth-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace zeroth::test

// Skips the current test with a clear message when ../shared is missing.
#define ZEROTH_REQUIRE_SHARED(var)                                                     \
  const std::string var = ::zeroth::test::shared_dir();                                \
  if (var.empty()) GTEST_SKIP() << "../shared is absent (set ZEROTH_SHARED to its path)"
