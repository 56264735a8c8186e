// A TokenizerSpec as a JSON file (zeroth_tokenizer.json), so that a model
// directory written by zeroth (e.g. `zeroth quantize` of a GGUF or llama2.c
// model) carries its tokenizer whatever format it came from. Pieces that are
// not valid UTF-8 (SentencePiece byte pieces can be raw bytes) are written as
// {"hex": "..."}.
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/file_check.h"
#include "core/error.h"
#include "models/tokenizer.h"

namespace zeroth {
namespace {

using json = nlohmann::json;

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = uint8_t(s[i]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + size_t(len) > s.size()) return false;
    for (int k = 1; k < len; ++k)
      if ((uint8_t(s[i + size_t(k)]) >> 6) != 2) return false;
    i += size_t(len);
  }
  return true;
}

json piece_json(const std::string& p) {
  if (valid_utf8(p)) return p;
  static const char* hex = "0123456789abcdef";
  std::string h;
  for (unsigned char c : p) {
    h += hex[c >> 4];
    h += hex[c & 15];
  }
  return json{{"hex", h}};
}

std::string piece_from_json(const json& j, const std::string& path) {
  if (j.is_string()) return j.get<std::string>();
  if (!j.is_object() || !j.contains("hex") || !j["hex"].is_string() || j["hex"].get<std::string>().size() % 2)
    throw FormatError(path, "a piece is neither a string nor {\"hex\": even-length hex}");
  const std::string h = j["hex"].get<std::string>();
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw FormatError(path, "bad hex digit in a piece");
  };
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += char(nib(h[i]) * 16 + nib(h[i + 1]));
  return out;
}

}  // namespace

void write_tokenizer_spec(const std::string& path, const TokenizerSpec& s) {
  json pieces = json::array(), merges = json::array();
  for (const auto& p : s.pieces) pieces.push_back(piece_json(p));
  for (const auto& m : s.merges) merges.push_back(piece_json(m));
  json j = {{"format", "zeroth-tokenizer-1"}, {"model", s.model}, {"pieces", pieces}, {"scores", s.scores},
            {"types", s.types}, {"merges", merges}, {"bos", s.bos}, {"eos", s.eos}, {"unk", s.unk}, {"pad", s.pad},
            {"add_bos", s.add_bos}, {"add_eos", s.add_eos}, {"space_marker", piece_json(s.space_marker)},
            {"pre", s.pre}, {"pre_regexes", s.pre_regexes}, {"parse_special", s.parse_special}};
  if (s.add_space_prefix) j["add_space_prefix"] = *s.add_space_prefix;
  std::ofstream out(path);
  out << j.dump() << "\n";
  ZEROTH_CHECK(bool(out), "{}: cannot write the tokenizer", path);
}

TokenizerSpec read_tokenizer_spec(const std::string& path) {
  check_input_file(path, "the tokenizer file");
  std::ifstream in(path);
  ZEROTH_CHECK(bool(in), "{}: cannot open the tokenizer file", path);
  TokenizerSpec s;
  try {
    const json j = json::parse(in);
    if (j.value("format", "") != "zeroth-tokenizer-1") throw FormatError(path, "not a zeroth tokenizer file");
    s.model = j.at("model").get<std::string>();
    for (const auto& p : j.at("pieces")) s.pieces.push_back(piece_from_json(p, path));
    for (const auto& m : j.at("merges")) s.merges.push_back(piece_from_json(m, path));
    s.scores = j.at("scores").get<std::vector<float>>();
    s.types = j.at("types").get<std::vector<int32_t>>();
    s.bos = j.at("bos").get<int32_t>();
    s.eos = j.at("eos").get<int32_t>();
    s.unk = j.at("unk").get<int32_t>();
    s.pad = j.at("pad").get<int32_t>();
    s.add_bos = j.at("add_bos").get<bool>();
    s.add_eos = j.at("add_eos").get<bool>();
    if (j.contains("add_space_prefix")) s.add_space_prefix = j["add_space_prefix"].get<bool>();
    s.space_marker = piece_from_json(j.at("space_marker"), path);
    s.pre = j.at("pre").get<std::string>();
    s.pre_regexes = j.at("pre_regexes").get<std::vector<std::string>>();
    s.parse_special = j.at("parse_special").get<bool>();
  } catch (const json::exception& e) {
    throw FormatError(path, std::string("malformed tokenizer file: ") + e.what());
  }
  s.source = path;
  s.validate();
  return s;
}

}  // namespace zeroth
