// Helpers for the task tests: two hand-made tokenizers (SentencePiece-style
// and GPT-2 byte-level) whose whole words are known tokens, and a tiny random
// LLaMA over either vocabulary.
#pragma once
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "models/llama.h"
#include "models/tokenizer.h"
#include "tests/models/tokenizer_test_util.h"

namespace zeroth::test {

// Words that become one token each (with their leading space) in both tokenizers.
inline const std::vector<std::string> kTaskWords = {"great", "terrible", "It", "was", "movie", "the", "good", "bad"};

// <unk> <s> </s>, 256 byte pieces, printable ASCII, ▁, then ▁-prefixed words
// built up one letter at a time (BPE needs every prefix as a piece), longer
// pieces scoring higher so words merge completely.
inline TokenizerSpec task_sentencepiece_spec() {
  const std::string sp = "\xE2\x96\x81";
  TokenizerSpec spec;
  spec.model = "llama";
  spec.source = "task-test-sentencepiece";
  spec.pieces = {"<unk>", "<s>", "</s>"};
  spec.types = {2, 3, 3};
  spec.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    spec.pieces.push_back(buf);
    spec.types.push_back(6);
    spec.scores.push_back(0);
  }
  auto add = [&](const std::string& p, float score) {
    for (const auto& q : spec.pieces)
      if (q == p) return;
    spec.pieces.push_back(p);
    spec.types.push_back(1);
    spec.scores.push_back(score);
  };
  add(sp, -1);
  for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), -1);
  for (const auto& w : kTaskWords)
    for (size_t k = 1; k <= w.size(); ++k) add(sp + w.substr(0, k), float(k));
  spec.bos = 1;
  spec.eos = 2;
  spec.unk = 0;
  return spec;
}

// GPT-2's byte alphabet: bytes outside '!'..'~', '¡'..'¬', '®'..'ÿ' map to U+0100 onwards.
inline std::string gpt2_byte_char(int b) {
  auto printable = [](int k) { return (k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174 && k <= 255); };
  int cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int k = 0; k < b; ++k) cp += printable(k) ? 0 : 1;
  }
  std::string s;
  append_codepoint(s, uint32_t(cp));
  return s;
}

// Ids 0..255 are bytes, then one piece per merge, then <|endoftext|> (BOS = EOS).
inline TokenizerSpec task_byte_level_spec() {
  const std::string g = gpt2_byte_char(' ');  // "Ġ"
  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.source = "task-test-byte-level";
  spec.pre = "gpt2";
  for (int b = 0; b < 256; ++b) spec.pieces.push_back(gpt2_byte_char(b));
  for (const auto& w : kTaskWords) {
    std::string built = g;
    for (char c : w) {
      const std::string merged = built + std::string(1, c);
      bool known = false;
      for (const auto& p : spec.pieces) known = known || p == merged;
      if (!known) {
        spec.merges.push_back(built + " " + std::string(1, c));
        spec.pieces.push_back(merged);
      }
      built = merged;
    }
  }
  spec.types.assign(spec.pieces.size(), 1);
  spec.pieces.push_back("<|endoftext|>");
  spec.types.push_back(3);
  spec.bos = spec.eos = int32_t(spec.pieces.size()) - 1;
  return spec;
}

inline LlamaConfig task_llama_config(int64_t vocab) {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 48; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = vocab;
  c.max_seq_len = 64;
  return c;
}

inline CausalLM::ProjectionDims task_proj_dims(const LlamaConfig& c) {
  return {{{c.dim, c.q_dim()}, {c.dim, c.kv_dim()}, {c.dim, c.kv_dim()}, {c.q_dim(), c.dim},
           {c.dim, c.hidden_dim}, {c.dim, c.hidden_dim}, {c.hidden_dim, c.dim}}};
}

}  // namespace zeroth::test
