#define PCRE2_CODE_UNIT_WIDTH 8
#include "models/tokenizers/pretokenizer.h"

#include <pcre2.h>

#include "core/error.h"
#include "models/tokenizers/vocabulary.h"

namespace zeroth {

// Contractions, letters with an optional leading space, digits likewise, other symbols,
// and whitespace, where a run of spaces gives its last space to the word after it.
const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// LLaMA 3: case-insensitive contractions, a word may take one leading non-letter, numbers
// in groups of up to three digits, newlines kept apart from other whitespace.
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: as LLaMA 3 but every digit on its own.
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// HF Digits(individual_digits = true): each digit alone, before the GPT-2 split.
const char* const kIndividualDigits = R"(\p{N})";

}  // namespace

std::vector<std::string> pretokenizer_patterns(const std::string& pre_name) {
  if (pre_name.empty() || pre_name == "default" || pre_name == "gpt2" || pre_name == "gpt-2") {
    return {kGpt2Pattern};
  }
  if (pre_name == "llama3" || pre_name == "llama-bpe" || pre_name == "llama-v3") {
    return {kLlama3Pattern};
  }
  if (pre_name == "smollm" || pre_name == "starcoder" || pre_name == "refact") {
    return {kIndividualDigits, kGpt2Pattern};
  }
  if (pre_name == "qwen2") return {kQwen2Pattern};
  if (pre_name == "none") return {};  // HF files without a pre_tokenizer: the text is one word
  fail("unknown pre-tokenizer '{}' (tokenizer.ggml.pre); known: default, gpt2, llama3, "
       "llama-bpe, smollm, starcoder, refact, qwen2, none",
       pre_name);
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: arbitrary bytes are never an error, they just match nothing.
    auto compiled = std::make_unique<Compiled>();
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset,
                                   nullptr);
    if (!compiled->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern, offset,
           reinterpret_cast<const char*>(msg));
    }
    // JIT makes splitting several times faster; without it (unsupported CPU) PCRE2
    // interprets the same pattern, so a failure here is not an error.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    regexes_.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  for (const auto& re : regexes_) {
    std::vector<std::string_view> next;
    next.reserve(pieces.size() * 2);
    for (std::string_view p : pieces) split_one(*re, p, next);
    pieces.swap(next);
  }
  return pieces;
}

void PreTokenizer::split_one(const Compiled& re, std::string_view text,
                             std::vector<std::string_view>& out) const {
  // Match data per call keeps split() const and safe to call from several threads.
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re.code, nullptr);
  ZEROTH_CHECK(md != nullptr, "pre-tokenizer: out of memory for regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;      // where the next search starts
  size_t emitted = 0;  // text before this is already in `out`
  while (pos < text.size()) {
    const int rc = pcre2_match(re.code, subject, text.size(), pos, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("pre-tokenizer: regex match failed: {}", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t begin = ov[0], end = ov[1];
    if (begin > emitted) out.push_back(text.substr(emitted, begin - emitted));
    if (end > begin) {
      out.push_back(text.substr(begin, end - begin));
      emitted = end;
      pos = end;
    } else {
      // An empty match splits nothing; step over one character so the search moves on.
      emitted = begin;
      pos = begin + std::min(utf8_sequence_length(static_cast<unsigned char>(text[begin])),
                             text.size() - begin);
    }
  }
  if (emitted < text.size()) out.push_back(text.substr(emitted));
  pcre2_match_data_free(md);
}

}  // namespace zeroth
