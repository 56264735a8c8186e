// Fuzz target: the llama2.c readers (core/formats/llama2c.h) on a file holding
// the input: a checkpoint (legacy or "ak42" version 1) or a tokenizer.bin.
//
// Every input goes through both readers, as `zeroth inspect` does with a .bin.
// Contract: read, or throw zeroth::Error (FormatError for a malformed file);
// every weight of an opened checkpoint lies inside the file, and its tokenizer
// check (expected vocab) returns or throws zeroth::Error.
#include <cstdint>
#include <string>

#include "core/formats/llama2c.h"
#include "tests/fuzz/model_file_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using zeroth::fuzz::Scratch;
  const std::string path = (Scratch::dir() / "model.bin").string();
  Scratch::write(path, data, size);
  int64_t vocab = -1;
  try {
    const auto ck = zeroth::Llama2cCheckpoint::open(path);
    zeroth::fuzz::read_every_byte(ck.tensors());
    ZEROTH_FUZZ_REQUIRE(ck.skipped_bytes() <= ck.file_size(), "more non-weight bytes than the file holds");
    vocab = ck.config().vocab_size;
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
  }
  try {
    const auto tok = zeroth::read_llama2c_tokenizer(path, vocab);
    ZEROTH_FUZZ_REQUIRE(tok.vocab.size() == tok.scores.size(), "tokens and scores differ in number");
    for (const auto& t : tok.vocab)
      ZEROTH_FUZZ_REQUIRE(t.size() <= size_t(tok.max_token_length), "a token is longer than max_token_length");
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
  }
  zeroth::fuzz::inspect_and_render(path);
  return 0;
}
