// Text corpora for language modelling: a plain-text file of documents split on
// a separator (TinyStories' "<|endoftext|>"), or JSONL with a "text" field.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace zeroth {

struct TextDataOptions {
  std::string separator = "<|endoftext|>";  // plain text only; "" = the whole file is one document
  std::string text_field = "text";          // JSONL only
  bool skip_bad_rows = false;               // JSONL: skip and count rows without the field, instead of failing
};

struct TextData {
  std::vector<std::string> documents;  // trimmed of surrounding whitespace; empty ones dropped
  int64_t skipped_rows = 0;
};

// .jsonl / .json lines are read as JSONL, anything else as plain text. Errors
// name the file and line.
TextData read_text_documents(const std::string& path, const TextDataOptions& opt = {});

}  // namespace zeroth
