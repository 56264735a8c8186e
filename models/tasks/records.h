// Rows of a data file as named string fields: JSONL (one object per line), TSV
// (a header row, then fields split on tabs) and CSV (a header row, RFC-4180
// quoting: "a, b" and "say ""hi""", quoted fields may span lines).
//
// Tasks read every format through this one shape, so a template such as
// "{sentence} It was" and a label field work the same on SST-2's TSV and on a
// JSONL dump. Every value is text: JSON numbers and booleans are kept as they
// are written ("0", "true"), so label words are keyed by that text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zeroth {

struct Record {
  int64_t line = 0;  // 1-based line of the file where the row starts
  std::vector<std::pair<std::string, std::string>> fields;  // (name, value) in file order
  const std::string* find(std::string_view name) const;     // nullptr when absent
};

enum class RecordFormat { Jsonl, Tsv, Csv };
const char* record_format_name(RecordFormat f);
// By extension: .jsonl/.ndjson/.json, .tsv, .csv; anything else is an error
// naming the file (plain-text documents go through read_text_documents).
RecordFormat record_format_of(const std::string& path);

struct RecordOptions {
  // Fields every row must have; a row without one is a bad row.
  std::vector<std::string> required;
  // Skip and count bad rows (missing field, wrong column count, invalid JSON or
  // UTF-8) instead of failing on the first. A bad header always fails.
  bool skip_bad_rows = false;
};

struct RecordFile {
  std::string path;
  RecordFormat format = RecordFormat::Jsonl;
  std::vector<Record> rows;
  int64_t skipped_rows = 0;
};

// Errors are zeroth::Error as "path:line: what was wrong".
RecordFile read_records(const std::string& path, const RecordOptions& opt = {});
// The same on text already in memory; `name` stands for the path in errors.
RecordFile parse_records(std::string_view text, RecordFormat format, const std::string& name,
                         const RecordOptions& opt = {});

// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms,
// surrogates and code points past U+10FFFF included), or npos when valid.
size_t find_invalid_utf8(std::string_view s);

}  // namespace zeroth
