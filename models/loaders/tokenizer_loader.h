// Finding a model's tokenizer: GGUF metadata, an HF directory's tokenizer.json,
// or an explicit --tokenizer file (llama2.c tokenizer.bin or tokenizer.json).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "models/tokenizer.h"

namespace zeroth {

class GgufFile;
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& f);

// `tokenizer_path` empty: the tokenizer the model file carries or sits beside.
// `vocab_size` is the model's, checked against the tokenizer's.
// The spec of that tokenizer (for writing it beside a converted model).
TokenizerSpec tokenizer_spec_for(const std::string& model_path, const std::string& tokenizer_path, int64_t vocab_size);
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path, const std::string& tokenizer_path,
                                          int64_t vocab_size);

}  // namespace zeroth
