// TokenizerSpec checks and the factory that turns a spec into a tokenizer.
#include <cstdint>

#include "core/error.h"

#include "models/tokenizer.h"
#include "models/tokenizers/kinds.h"

namespace zeroth {

void TokenizerSpec::validate() const {
  const std::string where = source.empty() ? std::string("tokenizer") : source;
  ZEROTH_CHECK(model == "llama" || model == "gpt2",
               "{}: tokenizer model '{}' is not supported; use \"llama\" (SentencePiece BPE) or "
               "\"gpt2\" (byte-level BPE)",
               where, model);
  ZEROTH_CHECK(!pieces.empty(), "{}: the vocabulary is empty", where);
  ZEROTH_CHECK(pieces.size() < static_cast<size_t>(INT32_MAX), "{}: {} pieces is more than int32 ids allow",
               where, pieces.size());
  const auto n = static_cast<int32_t>(pieces.size());
  ZEROTH_CHECK(scores.empty() || scores.size() == pieces.size(),
               "{}: {} scores for {} pieces; the counts must match", where, scores.size(), n);
  ZEROTH_CHECK(types.empty() || types.size() == pieces.size(),
               "{}: {} token types for {} pieces; the counts must match", where, types.size(), n);
  for (size_t i = 0; i < types.size(); ++i) {
    ZEROTH_CHECK(types[i] >= 0 && types[i] <= 6,
                 "{}: token {} has type {}; SentencePiece types are 0..6", where, i, types[i]);
  }
  const std::pair<const char*, int32_t> ids[] = {{"bos", bos}, {"eos", eos}, {"unk", unk}, {"pad", pad}};
  for (const auto& [name, id] : ids) {
    ZEROTH_CHECK(id >= -1 && id < n, "{}: {} token id {} is outside the vocabulary of {} pieces",
                 where, name, id, n);
  }
  if (model == "llama") {
    ZEROTH_CHECK(!space_marker.empty(), "{}: the space marker must not be empty", where);
  } else {
    ZEROTH_CHECK(!merges.empty(), "{}: a byte-level BPE vocabulary needs its merges list", where);
  }
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec) {
  spec.validate();
  if (spec.model == "llama") return make_sentencepiece_bpe(spec);
  return make_byte_level_bpe(spec);
}

}  // namespace zeroth
