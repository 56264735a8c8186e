#include "models/loaders/tokenizer_loader.h"

#include <cstdint>
#include <filesystem>

#include "core/error.h"
#include "core/formats/gguf.h"
#include "models/loaders/llama_loader.h"

namespace zeroth {

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& f) {
  ZEROTH_CHECK(f.has("tokenizer.ggml.model") && f.has("tokenizer.ggml.tokens"),
               "{}: the file carries no tokenizer (tokenizer.ggml.model/tokens); pass --tokenizer", f.path());
  TokenizerSpec s;
  s.source = f.path();
  s.model = f.get_string("tokenizer.ggml.model");
  s.pieces = f.get_string_array("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.scores")) s.scores = f.get_f32_array("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.token_type")) s.types = f.get_i32_array("tokenizer.ggml.token_type");
  if (f.has("tokenizer.ggml.merges")) s.merges = f.get_string_array("tokenizer.ggml.merges");
  auto id = [&](const char* key, int32_t& out) {
    if (f.has(key)) out = int32_t(f.get_i64(key));
  };
  id("tokenizer.ggml.bos_token_id", s.bos);
  id("tokenizer.ggml.eos_token_id", s.eos);
  id("tokenizer.ggml.unknown_token_id", s.unk);
  id("tokenizer.ggml.padding_token_id", s.pad);
  if (f.has("tokenizer.ggml.add_bos_token")) s.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  if (f.has("tokenizer.ggml.add_eos_token")) s.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  if (f.has("tokenizer.ggml.add_space_prefix")) s.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  if (f.has("tokenizer.ggml.pre")) s.pre = f.get_string("tokenizer.ggml.pre");
  return s;
}

TokenizerSpec tokenizer_spec_for(const std::string& model_path, const std::string& tokenizer_path,
                                 int64_t vocab_size) {
  namespace fs = std::filesystem;
  if (!tokenizer_path.empty()) {
    if (tokenizer_path.ends_with(".json"))
      return fs::path(tokenizer_path).filename() == "zeroth_tokenizer.json" ? read_tokenizer_spec(tokenizer_path)
                                                                            : read_hf_tokenizer_json(tokenizer_path);
    return read_llama2c_tokenizer(tokenizer_path, int32_t(vocab_size));
  }
  switch (detect_model_format(model_path)) {
    case ModelFormat::Gguf: return tokenizer_spec_from_gguf(GgufFile::open(model_path));
    case ModelFormat::HfDirectory:
    case ModelFormat::Safetensors: {
      const fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
      // zeroth's own directories (`zeroth quantize`) carry zeroth_tokenizer.json.
      if (!fs::exists(dir / "tokenizer.json") && fs::exists(dir / "zeroth_tokenizer.json"))
        return read_tokenizer_spec((dir / "zeroth_tokenizer.json").string());
      return read_hf_tokenizer_json((dir / "tokenizer.json").string());
    }
    case ModelFormat::Llama2c: {
      const fs::path beside = fs::path(model_path).parent_path() / "tokenizer.bin";
      ZEROTH_CHECK(fs::exists(beside), "{}: a llama2.c checkpoint carries no tokenizer; pass --tokenizer "
                   "(its tokenizer.bin)", model_path);
      return read_llama2c_tokenizer(beside.string(), int32_t(vocab_size));
    }
  }
  fail("{}: unsupported model format", model_path);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path, const std::string& tokenizer_path,
                                          int64_t vocab_size) {
  auto tok = make_tokenizer(tokenizer_spec_for(model_path, tokenizer_path, vocab_size));
  ZEROTH_CHECK(tok->vocab_size() <= vocab_size, "{}: the tokenizer has {} tokens but the model only {}",
               tokenizer_path.empty() ? model_path : tokenizer_path, tok->vocab_size(), vocab_size);
  return tok;
}

}  // namespace zeroth
