#include "models/tasks/text_data.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace zeroth {
namespace {

std::string trim(std::string_view s) {
  const auto ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

bool is_jsonl(const std::string& path) {
  return path.ends_with(".jsonl") || path.ends_with(".ndjson") || path.ends_with(".json");
}

}  // namespace

TextData read_text_documents(const std::string& path, const TextDataOptions& opt) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the data file", path);
  TextData out;
  if (is_jsonl(path)) {
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
      if (trim(line).empty()) continue;
      std::string why;
      try {
        const auto j = nlohmann::json::parse(line);
        if (!j.is_object() || !j.contains(opt.text_field) || !j[opt.text_field].is_string())
          why = fmt::format("no string field \"{}\"", opt.text_field);
        else if (auto t = trim(j[opt.text_field].get<std::string>()); !t.empty())
          out.documents.push_back(std::move(t));
      } catch (const nlohmann::json::exception& e) {
        why = std::string("invalid JSON: ") + e.what();
      }
      if (!why.empty()) {
        if (!opt.skip_bad_rows) fail("{}:{}: {}", path, lineno, why);
        ++out.skipped_rows;
      }
    }
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (opt.separator.empty()) {
    if (auto t = trim(text); !t.empty()) out.documents.push_back(std::move(t));
    return out;
  }
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t next = text.find(opt.separator, pos);
    if (next == std::string::npos) next = text.size();
    if (auto t = trim(std::string_view(text).substr(pos, next - pos)); !t.empty()) out.documents.push_back(std::move(t));
    pos = next + opt.separator.size();
  }
  return out;
}

}  // namespace zeroth
