// Constructors of the two tokenizer kinds; make_tokenizer picks one by TokenizerSpec::model.
// Both expect a spec that passed validate().
#pragma once
#include <memory>

#include "models/tokenizer.h"

namespace zeroth {

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const TokenizerSpec& spec);
std::unique_ptr<Tokenizer> make_byte_level_bpe(const TokenizerSpec& spec);

}  // namespace zeroth
