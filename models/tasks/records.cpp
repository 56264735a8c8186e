#include "models/tasks/records.h"

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file_check.h"
#include "core/error.h"

namespace zeroth {
namespace {

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// A row that could not be read: fails, or is counted when skip_bad_rows.
struct BadRows {
  const std::string& name;
  const RecordOptions& opt;
  RecordFile& out;
  void report(int64_t line, const std::string& why) {
    if (!opt.skip_bad_rows) fail("{}:{}: {}", name, line, why);
    ++out.skipped_rows;
  }
};

std::string utf8_problem(std::string_view s) {
  const size_t at = find_invalid_utf8(s);
  return at == std::string_view::npos ? std::string() : fmt::format("invalid UTF-8 at byte {} of the row", at);
}

// Calls fn(line_number, line) for each line without its "\n" / "\r\n".
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  int64_t lineno = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(lineno++, line);
    pos = end + 1;
  }
}

std::string json_value_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();  // numbers and booleans as written: label 0 -> "0", true -> "true"
}

void parse_jsonl(std::string_view text, const std::string& name, const RecordOptions& opt, RecordFile& out) {
  BadRows bad{name, opt, out};
  for_each_line(text, [&](int64_t lineno, std::string_view line) {
    if (blank(line)) return;
    if (auto why = utf8_problem(line); !why.empty()) return bad.report(lineno, why);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return bad.report(lineno, std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object()) return bad.report(lineno, "not a JSON object");
    Record r;
    r.line = lineno;
    for (const auto& [key, value] : j.items()) {
      if (!value.is_null()) r.fields.emplace_back(key, json_value_text(value));  // null = absent
    }
    for (const auto& f : opt.required) {
      if (!r.find(f)) return bad.report(lineno, fmt::format("no field \"{}\"", f));
    }
    out.rows.push_back(std::move(r));
  });
}

// A header or data row of a delimited file: its cells and the line it starts on.
struct Cells {
  int64_t line = 0;
  std::vector<std::string> cells;
  std::string error;  // non-empty: the row is malformed
};

std::vector<Cells> split_tsv(std::string_view text) {
  std::vector<Cells> rows;
  for_each_line(text, [&](int64_t lineno, std::string_view line) {
    if (blank(line)) return;
    Cells c;
    c.line = lineno;
    c.error = utf8_problem(line);
    size_t pos = 0;
    while (true) {
      const size_t tab = line.find('\t', pos);
      c.cells.emplace_back(line.substr(pos, tab == std::string_view::npos ? std::string_view::npos : tab - pos));
      if (tab == std::string_view::npos) break;
      pos = tab + 1;
    }
    rows.push_back(std::move(c));
  });
  return rows;
}

// RFC 4180: fields separated by commas, rows by CRLF or LF; a field that opens
// with a quote runs to the closing quote, "" inside it is one quote, and it may
// hold commas and line breaks. A quote inside an unquoted field is kept as text.
std::vector<Cells> split_csv(std::string_view text, const std::string& name) {
  std::vector<Cells> rows;
  int64_t lineno = 1;
  size_t i = 0;
  while (i < text.size()) {
    Cells c;
    c.line = lineno;
    const size_t row_begin = i;
    std::string field;
    bool row_done = false;
    while (!row_done) {
      field.clear();
      if (i < text.size() && text[i] == '"') {
        const int64_t opened = lineno;
        ++i;
        while (true) {
          if (i >= text.size()) fail("{}:{}: quoted field never closed", name, opened);
          const char ch = text[i++];
          if (ch == '"') {
            if (i < text.size() && text[i] == '"') {
              field += '"';
              ++i;
            } else {
              break;
            }
          } else {
            if (ch == '\n') ++lineno;
            field += ch;
          }
        }
        // Only a delimiter may follow the closing quote.
        if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r' && c.error.empty())
          c.error = "text after the closing quote of a field";
        while (i < text.size() && text[i] != ',' && text[i] != '\n') {
          if (text[i] != '\r') field += text[i];
          ++i;
        }
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '\n') field += text[i++];
        if (!field.empty() && field.back() == '\r') field.pop_back();
      }
      c.cells.push_back(field);
      if (i >= text.size()) {
        row_done = true;
      } else if (text[i] == ',') {
        ++i;
      } else {  // '\n'
        ++i;
        ++lineno;
        row_done = true;
      }
    }
    const std::string_view raw = text.substr(row_begin, i - row_begin);
    if (blank(raw)) continue;
    if (c.error.empty()) c.error = utf8_problem(raw);
    rows.push_back(std::move(c));
  }
  return rows;
}

void parse_delimited(std::string_view text, RecordFormat format, const std::string& name, const RecordOptions& opt,
                     RecordFile& out) {
  std::vector<Cells> rows = format == RecordFormat::Tsv ? split_tsv(text) : split_csv(text, name);
  if (rows.empty()) fail("{}: empty file (a header row is expected)", name);
  const Cells& header = rows.front();
  if (!header.error.empty()) fail("{}:{}: header row: {}", name, header.line, header.error);
  for (size_t a = 0; a < header.cells.size(); ++a) {
    if (header.cells[a].empty()) fail("{}:{}: header column {} has no name", name, header.line, a + 1);
    for (size_t b = 0; b < a; ++b)
      if (header.cells[a] == header.cells[b])
        fail("{}:{}: header names column \"{}\" twice", name, header.line, header.cells[a]);
  }
  for (const auto& f : opt.required) {
    bool found = false;
    for (const auto& h : header.cells) found = found || h == f;
    if (!found) fail("{}:{}: no column \"{}\" in the header", name, header.line, f);
  }
  BadRows bad{name, opt, out};
  out.rows.reserve(rows.size() - 1);
  for (size_t r = 1; r < rows.size(); ++r) {
    Cells& c = rows[r];
    if (!c.error.empty()) {
      bad.report(c.line, c.error);
      continue;
    }
    if (c.cells.size() != header.cells.size()) {
      bad.report(c.line, fmt::format("{} columns, the header has {}", c.cells.size(), header.cells.size()));
      continue;
    }
    Record rec;
    rec.line = c.line;
    rec.fields.reserve(c.cells.size());
    for (size_t k = 0; k < c.cells.size(); ++k) rec.fields.emplace_back(header.cells[k], std::move(c.cells[k]));
    out.rows.push_back(std::move(rec));
  }
}

}  // namespace

const std::string* Record::find(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (k == name) return &v;
  return nullptr;
}

const char* record_format_name(RecordFormat f) {
  switch (f) {
    case RecordFormat::Jsonl: return "jsonl";
    case RecordFormat::Tsv: return "tsv";
    case RecordFormat::Csv: return "csv";
  }
  return "?";
}

RecordFormat record_format_of(const std::string& path) {
  if (path.ends_with(".jsonl") || path.ends_with(".ndjson") || path.ends_with(".json")) return RecordFormat::Jsonl;
  if (path.ends_with(".tsv")) return RecordFormat::Tsv;
  if (path.ends_with(".csv")) return RecordFormat::Csv;
  fail("{}: unknown data format (expected .jsonl, .tsv or .csv)", path);
}

RecordFile parse_records(std::string_view text, RecordFormat format, const std::string& name,
                         const RecordOptions& opt) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark is not data
  RecordFile out;
  out.path = name;
  out.format = format;
  if (format == RecordFormat::Jsonl)
    parse_jsonl(text, name, opt, out);
  else
    parse_delimited(text, format, name, opt, out);
  return out;
}

RecordFile read_records(const std::string& path, const RecordOptions& opt) {
  const RecordFormat format = record_format_of(path);
  check_input_file(path, "the data file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the data file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_records(ss.str(), format, path, opt);
}

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace zeroth
