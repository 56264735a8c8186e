// Where the tests find real models fetched by scripts/get-models: a cache
// outside git, ${ZEROTH_CACHE:-$HOME/.cache/zeroth}/models.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace zeroth::test {

// Path of `name` in the model cache, or "" when it is not there.
inline std::string cached_model(const std::string& name) {
  std::filesystem::path dir;
  if (const char* c = std::getenv("ZEROTH_CACHE"); c && *c) {
    dir = std::filesystem::path(c) / "models";
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    dir = std::filesystem::path(h) / ".cache" / "zeroth" / "models";
  } else {
    return {};
  }
  const auto p = dir / name;
  return std::filesystem::is_regular_file(p) ? p.string() : std::string();
}

inline constexpr const char* kSmolLM2File = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr const char* kGemma3File = "gemma-3-270m-q4_k_m.gguf";

}  // namespace zeroth::test

// Skips the current test with a clear message when SmolLM2 is not cached.
#define ZEROTH_REQUIRE_SMOLLM2(var)                                                                  \
  const std::string var = ::zeroth::test::cached_model(::zeroth::test::kSmolLM2File);                \
  if (var.empty())                                                                                   \
  GTEST_SKIP() << ::zeroth::test::kSmolLM2File                                                       \
               << " is not in the model cache ($ZEROTH_CACHE or ~/.cache/zeroth/models); run scripts/get-models"

// Skips the current test with a clear message when Gemma 3 270M is not cached.
#define ZEROTH_REQUIRE_GEMMA3(var)                                                                   \
  const std::string var = ::zeroth::test::cached_model(::zeroth::test::kGemma3File);                 \
  if (var.empty())                                                                                   \
  GTEST_SKIP() << ::zeroth::test::kGemma3File                                                        \
               << " is not in the model cache ($ZEROTH_CACHE or ~/.cache/zeroth/models); run scripts/get-models gemma3"
