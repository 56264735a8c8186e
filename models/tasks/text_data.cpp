#include "models/tasks/text_data.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "core/file_check.h"
#include "core/error.h"
#include "models/tasks/records.h"

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
  check_input_file(path, "the data file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the data file", path);
  TextData out;
  if (is_jsonl(path)) {
    // JSONL goes through the record reader, so its errors (file:line, invalid
    // JSON or UTF-8, missing field) match the other tasks'.
    RecordOptions ro;
    ro.required = {opt.text_field};
    ro.skip_bad_rows = opt.skip_bad_rows;
    RecordFile f = read_records(path, ro);
    out.skipped_rows = f.skipped_rows;
    for (const Record& r : f.rows)
      if (auto t = trim(*r.find(opt.text_field)); !t.empty()) out.documents.push_back(std::move(t));
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  // Tokenizers take text, not bytes: name where the file stops being UTF-8.
  if (const size_t bad = find_invalid_utf8(text); bad != std::string::npos)
    fail("{}:{}: invalid UTF-8", path, 1 + std::count(text.begin(), text.begin() + int64_t(bad), '\n'));
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
