#include "core/formats/json_limits.h"

#include <fmt/format.h>

#include "core/error.h"

namespace zeroth {

namespace {
// Model headers nest three levels; 64 leaves room for any honest writer.
constexpr int kMaxDepth = 64;
}  // namespace

nlohmann::json parse_json_bounded(const std::string& path, std::string_view text, std::string_view what) {
  // Scan brackets outside strings before parsing, so nesting is bounded before
  // any recursive structure is built.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth)
        throw FormatError(path, fmt::format("{} nests deeper than {} levels at byte {}", what, kMaxDepth, i));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path, fmt::format("{} is not valid JSON: {}", what, e.what()));
  }
}

}  // namespace zeroth
