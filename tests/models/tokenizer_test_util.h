// Helpers for the tokenizer tests: random UTF-8 text and file writing.
#pragma once
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "models/tokenizers/vocabulary.h"

namespace zeroth::test {

// Expects `f` to throw a zeroth::Error whose message names `path` and contains `what`.
template <typename F>
void expect_error_naming(F&& f, const std::string& path, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

// UTF-8 of one codepoint, by the library's encoder (the tests check tokenizers, not it).
inline void append_codepoint(std::string& out, uint32_t cp) { append_utf8(out, cp); }

// Valid UTF-8 of up to `max_chars` codepoints mixing ASCII words and spaces, control
// characters (NUL, tab, newline), Latin-1, Greek, CJK, emoji and astral codepoints.
// U+2581 (the SentencePiece space marker) never appears: it stands for a space there.
inline std::string random_utf8(std::mt19937& rng, int max_chars) {
  std::uniform_int_distribution<int> len_dist(0, max_chars);
  std::uniform_int_distribution<int> kind_dist(0, 9);
  const int n = len_dist(rng);
  std::string s;
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  for (int i = 0; i < n; ++i) {
    switch (kind_dist(rng)) {
      case 0: case 1: case 2: append_codepoint(s, pick('a', 'z')); break;
      case 3: s += ' '; break;
      case 4: append_codepoint(s, pick(0x00, 0x1F)); break;
      case 5: append_codepoint(s, pick(0x21, 0x7F)); break;
      case 6: append_codepoint(s, pick(0x80, 0x7FF)); break;
      case 7: append_codepoint(s, pick(0x4E00, 0x9FFF)); break;
      case 8: append_codepoint(s, pick(0x1F300, 0x1F64F)); break;
      default: append_codepoint(s, pick(0x10000, 0x10FFFF)); break;
    }
  }
  return s;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace zeroth::test
