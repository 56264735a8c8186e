#include "models/tasks/prompt.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace zeroth {
namespace {

std::string_view trim(std::string_view s) {
  const auto ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

PromptTemplate::PromptTemplate(std::string_view text, const std::string& key) {
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;
      i += 2;
      continue;
    }
    if (c == '}') fail("{}: \"}}\" without an opening \"{{\" at character {} (write \"}}}}\" for a brace)", key, i);
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    const size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos)
      fail("{}: \"{{\" at character {} is never closed (write \"{{{{\" for a brace)", key, i);
    const std::string name(trim(text.substr(i + 1, close - i - 1)));
    if (name.empty() || name.find('{') != std::string::npos)
      fail("{}: placeholder at character {} has no field name", key, i);
    if (!literal.empty()) pieces_.push_back({false, std::move(literal)});
    literal.clear();
    pieces_.push_back({true, name});
    if (std::find(fields_.begin(), fields_.end(), name) == fields_.end()) fields_.push_back(name);
    i = close + 1;
  }
  tail_ = literal;
  if (!literal.empty()) pieces_.push_back({false, std::move(literal)});
}

std::string PromptTemplate::fill(const Record& row, const std::string& where) const {
  std::string out;
  for (const Piece& p : pieces_) {
    if (!p.field) {
      out += p.text;
      continue;
    }
    const std::string* v = row.find(p.text);
    if (!v) fail("{}: no field \"{}\" (task.template_text uses {{{}}})", where, p.text, p.text);
    out += trim(*v);
  }
  return out;
}

std::vector<int32_t> continuation_tokens(const Tokenizer& tok, std::string_view context, std::string_view word,
                                         const std::string& key) {
  const std::vector<int32_t> ctx = tok.encode(context, false, false);
  std::string joined(context);
  joined += word;
  const std::vector<int32_t> all = tok.encode(joined, false, false);
  if (all.size() <= ctx.size() || !std::equal(ctx.begin(), ctx.end(), all.begin()))
    fail("{}: label word \"{}\" does not tokenize apart from the prompt before it (\"{}\"): it merges with the "
         "prompt's last token; start the word with a space or end the template with one",
         key, word, context);
  return {all.begin() + int64_t(ctx.size()), all.end()};
}

std::string label_word_context(const PromptTemplate& t) { return t.tail().empty() ? std::string("x") : t.tail(); }

}  // namespace zeroth
