// HF tokenizers' tokenizer.json for byte-level BPE models (GPT-2, SmolLM2, LLaMA 3), and
// the tokenizer_config.json beside it for the BOS/EOS names and add_bos/add_eos.
//
// What is read: model {type BPE, vocab, merges, unk_token}, added_tokens (special ones
// become control tokens, the rest user-defined), and pre_tokenizer, translated into PCRE2
// patterns: ByteLevel(use_regex) is GPT-2's pattern, Digits is \p{N}, Split(Regex,
// Isolated) is its own pattern, Sequence applies its members in turn. Anything else is
// refused with the name of what is unsupported, rather than tokenizing differently.
#include <cstdint>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/file_check.h"
#include "core/error.h"
#include "models/tokenizer.h"
#include "models/tokenizers/pretokenizer.h"

namespace zeroth {
namespace {

using nlohmann::json;

json parse_json_file(const std::string& path) {
  check_input_file(path, "the tokenizer file");
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open the file", path));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw FormatError(path, std::string("not valid JSON: ") + e.what());
  }
}

// Escapes a literal for use inside a PCRE2 pattern (Split with a String pattern).
std::string regex_literal(const std::string& s) {
  return "\\Q" + s + "\\E";
}

void add_pre_tokenizer(const std::string& path, const json& node, TokenizerSpec& spec) {
  if (node.is_null()) return;
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    for (const json& member : node.at("pretokenizers")) add_pre_tokenizer(path, member, spec);
  } else if (type == "ByteLevel") {
    if (node.value("add_prefix_space", false)) spec.add_space_prefix = true;
    if (node.value("use_regex", true)) spec.pre_regexes.push_back(kGpt2Pattern);
  } else if (type == "Digits") {
    spec.pre_regexes.push_back(node.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Split") {
    const json& pattern = node.at("pattern");
    const std::string behavior = node.value("behavior", "");
    if (behavior != "Isolated" || node.value("invert", false)) {
      throw FormatError(path, "pre_tokenizer Split with behavior '" + behavior +
                                  "' (or invert) is not supported; only Isolated splits are");
    }
    if (pattern.contains("Regex")) {
      spec.pre_regexes.push_back(pattern.at("Regex").get<std::string>());
    } else {
      spec.pre_regexes.push_back(regex_literal(pattern.at("String").get<std::string>()));
    }
  } else {
    throw FormatError(path, "pre_tokenizer type '" + type +
                                "' is not supported (supported: ByteLevel, Digits, Split, Sequence)");
  }
}

// A special token named in tokenizer_config.json: a string, {"content": ...}, or null.
std::optional<std::string> token_name(const json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

TokenizerSpec read_hf_tokenizer_json(const std::string& path) {
  const json root = parse_json_file(path);
  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.source = path;
  spec.add_bos = false;
  spec.add_eos = false;
  try {
    const json& model = root.at("model");
    const std::string type = model.value("type", "BPE");
    if (type != "BPE") {
      throw FormatError(path, "model.type is '" + type + "'; only byte-level BPE is supported");
    }
    if (model.value("byte_fallback", false)) {
      throw FormatError(path, "model.byte_fallback is true: this is a SentencePiece-style "
                              "vocabulary; load the model's GGUF or tokenizer.bin instead");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
        throw FormatError(path, std::string("model.") + key + " is not supported");
      }
    }
    const json& normalizer = root.contains("normalizer") ? root["normalizer"] : json();
    // NFC is let through unapplied: text already in NFC, which is nearly all text, tokenizes
    // the same. Other normalizers change the text and would silently change the tokens.
    if (!normalizer.is_null() && normalizer.value("type", "") != "NFC") {
      throw FormatError(path, "normalizer '" + normalizer.value("type", "?") + "' is not supported");
    }

    // id -> piece, from the BPE vocab and the added tokens (which may extend it).
    std::map<int64_t, std::string> by_id;
    std::map<int64_t, int32_t> types;
    for (const auto& [piece, id] : model.at("vocab").items()) by_id[id.get<int64_t>()] = piece;
    if (root.contains("added_tokens")) {
      for (const json& t : root["added_tokens"]) {
        const int64_t id = t.at("id").get<int64_t>();
        by_id[id] = t.at("content").get<std::string>();
        types[id] = static_cast<int32_t>(t.value("special", false) ? TokenType::kControl
                                                                   : TokenType::kUserDefined);
      }
    }
    if (by_id.empty()) throw FormatError(path, "model.vocab is empty");
    const int64_t n = by_id.rbegin()->first + 1;
    if (by_id.begin()->first < 0 || static_cast<int64_t>(by_id.size()) != n) {
      throw FormatError(path, "token ids are not 0.." + std::to_string(n - 1) +
                                  " without gaps (" + std::to_string(by_id.size()) + " tokens)");
    }
    for (auto& [id, piece] : by_id) {
      spec.pieces.push_back(std::move(piece));
      auto it = types.find(id);
      spec.types.push_back(it == types.end() ? static_cast<int32_t>(TokenType::kNormal) : it->second);
    }

    // Merges: "left right" strings (older files) or ["left", "right"] pairs (newer ones).
    for (const json& m : model.at("merges")) {
      if (m.is_string()) {
        spec.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2) {
        spec.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      } else {
        throw FormatError(path, "model.merges holds " + m.dump() + "; expected \"a b\" or [a, b]");
      }
    }

    add_pre_tokenizer(path, root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(), spec);
    if (spec.pre_regexes.empty()) spec.pre = "none";

    auto id_of = [&](const std::string& piece, const std::string& from) -> int32_t {
      for (size_t i = 0; i < spec.pieces.size(); ++i) {
        if (spec.pieces[i] == piece) return static_cast<int32_t>(i);
      }
      throw FormatError(from, "special token '" + piece + "' is not in the vocabulary of " + path);
    };
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      spec.unk = id_of(model["unk_token"].get<std::string>(), path);
    }

    const std::string config_path =
        (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
    if (std::filesystem::exists(config_path)) {
      const json config = parse_json_file(config_path);
      if (auto name = token_name(config, "bos_token")) spec.bos = id_of(*name, config_path);
      if (auto name = token_name(config, "eos_token")) spec.eos = id_of(*name, config_path);
      if (auto name = token_name(config, "unk_token")) spec.unk = id_of(*name, config_path);
      if (auto name = token_name(config, "pad_token")) spec.pad = id_of(*name, config_path);
      spec.add_bos = config.value("add_bos_token", false);
      spec.add_eos = config.value("add_eos_token", false);
    } else {
      // GPT-2's convention: one <|endoftext|> both opens and ends documents.
      for (size_t i = 0; i < spec.pieces.size(); ++i) {
        if (spec.pieces[i] == "<|endoftext|>") spec.bos = spec.eos = static_cast<int32_t>(i);
      }
    }
  } catch (const json::exception& e) {
    throw FormatError(path, std::string("unexpected tokenizer.json layout: ") + e.what());
  }
  spec.validate();
  return spec;
}

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
  return make_tokenizer(read_hf_tokenizer_json(path));
}

}  // namespace zeroth
