// Errors at zeroth's edges (files, configs, CLI, network) are exceptions whose
// message tells the user what to fix: the file, key or peer, and what was wrong.
#pragma once
#include <stdexcept>
#include <string>
#include <fmt/format.h>

namespace zeroth {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A file whose content is malformed (truncated, bit-flipped, lying header).
class FormatError : public Error {
 public:
  FormatError(const std::string& path, const std::string& what)
      : Error(path + ": " + what), path_(path) {}
  const std::string& path() const { return path_; }
 private:
  std::string path_;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace zeroth

// Internal invariant / argument check: throws zeroth::Error with the message.
#define ZEROTH_CHECK(cond, ...)                                              \
  do {                                                                       \
    if (!(cond)) ::zeroth::fail(__VA_ARGS__);                                \
  } while (0)
