// Prompt templates and label words for prompted classification.
//
// A template is text with {field} placeholders filled from a data row, e.g.
// "{sentence} It was"; "{{" and "}}" stand for literal braces.
//
// Label words must be tokenized as they appear right after the prompt in one
// sequence, not on their own: SentencePiece prepends a dummy space to every
// encode() call, so encode(" great") alone gives "▁▁great" (two spaces) where
// the real sequence "... It was great" holds "▁great". continuation_tokens()
// therefore tokenizes context + word and keeps what follows the context.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/tasks/records.h"
#include "models/tokenizer.h"

namespace zeroth {

class PromptTemplate {
 public:
  // Errors (unclosed or empty braces) name `key`, the config key holding the text.
  PromptTemplate(std::string_view text, const std::string& key);
  // Field names in order of first use.
  const std::vector<std::string>& fields() const { return fields_; }
  // The literal text after the last placeholder (" It was" above): what every
  // filled prompt ends with.
  const std::string& tail() const { return tail_; }
  // Fills the placeholders with the row's values, trimmed of surrounding
  // whitespace (SST-2's sentences end in a space, which would double the space
  // before " It was"). A missing field is an error naming `where` (file:line).
  std::string fill(const Record& row, const std::string& where) const;

 private:
  struct Piece { bool field; std::string text; };
  std::vector<Piece> pieces_;
  std::vector<std::string> fields_;
  std::string tail_;
};

// The tokens `word` becomes when it follows `context` in one encode() call
// (no BOS): encode(context + word) minus its prefix encode(context). Fails,
// naming `key`, when that is not a clean split (the word merges with the end of
// the context) or the word gives no tokens.
std::vector<int32_t> continuation_tokens(const Tokenizer& tok, std::string_view context, std::string_view word,
                                         const std::string& key);

// The context label words are tokenized after: the template's tail, or a
// stand-in word when the template ends with a placeholder (what precedes the
// label word then varies by row; a word end is the common case).
std::string label_word_context(const PromptTemplate& t);

}  // namespace zeroth
