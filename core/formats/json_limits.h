// JSON parsing for headers read from model files: bounded nesting (a lying
// header of "[[[[..." must not exhaust the stack) and parse errors reported as
// FormatError naming the file.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace zeroth {

// Parses `text` as JSON; `what` names the part of the file ("safetensors header").
nlohmann::json parse_json_bounded(const std::string& path, std::string_view text, std::string_view what);

}  // namespace zeroth
