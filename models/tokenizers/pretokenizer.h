// The regex pre-tokenizer of byte-level BPE: cuts text into words (letters with their
// leading space, runs of digits, punctuation, whitespace) so merges never cross them.
//
// A pre-tokenizer is a list of PCRE2 patterns (UTF + UCP, so \p{L} and \s mean Unicode
// letters and spaces). Each pattern splits every piece the previous one made into its
// matches and the text between them; nothing is ever dropped, so the pieces always
// concatenate back to the input, even for invalid UTF-8 (which no pattern matches).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zeroth {

// The patterns llama.cpp uses for a GGUF tokenizer.ggml.pre name; throws zeroth::Error
// listing the known names otherwise.
std::vector<std::string> pretokenizer_patterns(const std::string& pre_name);

// GPT-2's own pattern (HF ByteLevel with use_regex).
extern const char* const kGpt2Pattern;

class PreTokenizer {
 public:
  // Compiles the patterns; throws zeroth::Error with PCRE2's message and offset for a bad one.
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Views into `text`, in order, covering it exactly.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  void split_one(const Compiled& re, std::string_view text, std::vector<std::string_view>& out) const;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace zeroth
