#include "core/formats/inspect.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/formats/ggml_types.h"
#include "core/formats/gguf.h"
#include "core/formats/json_limits.h"
#include "core/formats/llama2c.h"
#include "core/formats/safetensors.h"

namespace zeroth {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// Arrays longer than this are shown as their first kShownItems plus a count.
constexpr size_t kShownItems = 8;

// Model files may hold any bytes in names and strings, but a JSON report (and
// nlohmann's dump) needs valid UTF-8: every string that enters the report goes
// through here, which keeps valid UTF-8 and shows each byte of an invalid
// sequence (stray, overlong, surrogate, past U+10FFFF, cut short) as U+FFFD.
std::string report_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    const size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = n > 0 && n <= s.size() - i;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = uint8_t(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = cp << 6 | (b & 0x3Fu);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};  // shortest form per length
    ok = ok && cp >= kMin[n] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

ojson gguf_json(const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::STRING: return report_text(v.str);
    case GgufValueType::BOOL: return v.u != 0;
    case GgufValueType::F32: case GgufValueType::F64: return v.f;
    case GgufValueType::ARRAY: break;
    default: return v.as_i64() ? ojson(*v.as_i64()) : ojson(v.u);
  }
  ojson items = ojson::array();
  for (size_t k = 0; k < std::min<uint64_t>(v.count, kShownItems); ++k) {
    if (v.elem_type == GgufValueType::STRING) items.push_back(report_text(v.strings[k]));
    else if (v.elem_type == GgufValueType::ARRAY) items.push_back(gguf_json(v.arrays[k]));
    else items.push_back(gguf_json(v.element(k)));
  }
  if (v.count <= kShownItems) return items;
  return ojson{{"type", v.type_str()}, {"count", v.count}, {"first", items}};
}

void add_tensors(ModelFileReport& r, const TensorList& tensors) {
  for (const auto& [name, t] : tensors)
    r.tensors.push_back({name, std::string(dtype_name(t.dtype())), t.shape(), t.nbytes()});
}

ModelFileReport inspect_gguf(const std::string& path) {
  const GgufFile g = GgufFile::open(path);
  ModelFileReport r;
  r.format = fmt::format("gguf v{}", g.version());
  r.file_bytes = g.file_size();
  const std::string arch = g.has("general.architecture") ? g.get_string("general.architecture") : "";
  for (const auto& [key, v] : g.metadata()) {
    r.metadata[report_text(key)] = gguf_json(v);
    // The architecture's own hyperparameters and the tokenizer's scalars are the summary.
    const bool general = key == "general.architecture" || key == "general.name";
    const bool hyper = !arch.empty() && key.rfind(arch + ".", 0) == 0 && !v.is_array();
    const bool tok = key.rfind("tokenizer.ggml.", 0) == 0 && !v.is_array();
    if (general || hyper || tok) r.summary[report_text(key)] = gguf_json(v);
  }
  if (const GgufValue* toks = g.find("tokenizer.ggml.tokens")) r.summary["tokenizer vocab size"] = toks->count;
  r.summary["alignment"] = g.alignment();
  for (const auto& info : g.tensor_infos())
    r.tensors.push_back({report_text(info.name),
                         info.dtype ? std::string(dtype_name(*info.dtype)) : ggml_type_name(info.ggml_type), info.shape,
                         info.nbytes});
  return r;
}

void summarize_safetensors(ModelFileReport& r, const SafetensorsFile& f) {
  for (const auto& [k, v] : f.metadata()) r.metadata[k] = v;
  add_tensors(r, f.tensors());
  r.file_bytes += f.file_size();
}

ModelFileReport inspect_index(const std::string& path) {
  const SafetensorsIndex idx = read_safetensors_index(path);
  ModelFileReport r;
  const auto shards = idx.shards();
  r.format = fmt::format("safetensors, {} shards", shards.size());
  for (const auto& [k, v] : idx.metadata) r.metadata[k] = v;
  for (const auto& shard : shards) {
    const auto f = SafetensorsFile::open(idx.shard_path(shard));
    for (const auto& [name, file] : idx.weight_map)
      if (file == shard && !f.contains(name))
        throw FormatError(path, fmt::format("weight_map puts \"{}\" in {}, which does not hold it", name, shard));
    summarize_safetensors(r, f);
  }
  r.summary["shards"] = shards.size();
  return r;
}

ModelFileReport inspect_hf_directory(const std::string& dir) {
  const fs::path d(dir);
  ModelFileReport r;
  if (fs::exists(d / "model.safetensors.index.json")) {
    r = inspect_index((d / "model.safetensors.index.json").string());
  } else if (fs::exists(d / "model.safetensors")) {
    const auto f = SafetensorsFile::open((d / "model.safetensors").string());
    r.format = "safetensors";
    summarize_safetensors(r, f);
  } else {
    throw FormatError(dir, "directory holds neither model.safetensors nor model.safetensors.index.json");
  }
  r.format = fmt::format("hugging face directory ({})", r.format);
  if (fs::exists(d / "config.json")) {
    std::ifstream in(d / "config.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string cfg_path = (d / "config.json").string();
    const auto cfg = parse_json_bounded(cfg_path, ss.str(), "config.json");
    if (!cfg.is_object()) throw FormatError(cfg_path, "config.json is not a JSON object");
    for (const char* key : {"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings",
                            "rms_norm_eps", "rope_theta", "tie_word_embeddings", "torch_dtype"})
      if (cfg.contains(key)) r.summary[key] = ojson::parse(cfg[key].dump());
    r.metadata["config.json"] = ojson::parse(cfg.dump());
  }
  return r;
}

ModelFileReport inspect_llama2c(const std::string& path) {
  const auto ck = Llama2cCheckpoint::open(path);
  const auto& c = ck.config();
  ModelFileReport r;
  r.format = c.version == 0 ? "llama2.c legacy" : "llama2.c version 1";
  r.file_bytes = ck.file_size();
  r.summary = {{"dim", c.dim},           {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
               {"n_heads", c.n_heads},   {"n_kv_heads", c.n_kv_heads}, {"head_size", c.head_size()},
               {"vocab_size", c.vocab_size}, {"seq_len", c.seq_len},
               {"shared_classifier", c.shared_classifier}, {"non-weight bytes", ck.skipped_bytes()}};
  add_tensors(r, ck.tensors());
  return r;
}

ModelFileReport inspect_llama2c_tokenizer(const std::string& path) {
  const auto tok = read_llama2c_tokenizer(path);
  ModelFileReport r;
  r.format = "llama2.c tokenizer";
  r.file_bytes = fs::file_size(path);
  r.summary = {{"vocab size", tok.vocab.size()}, {"max_token_length", tok.max_token_length}};
  ojson first = ojson::array();
  for (size_t k = 0; k < std::min(tok.vocab.size(), kShownItems); ++k) first.push_back(report_text(tok.vocab[k]));
  r.metadata["tokens"] = ojson{{"count", tok.vocab.size()}, {"first", first}};
  return r;
}

ModelFileReport dispatch(const std::string& path) {
  if (fs::is_directory(path)) return inspect_hf_directory(path);
  if (!fs::exists(path)) fail("{}: no such file or directory", path);
  uint8_t head[9] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof(head));
  const size_t got = size_t(in.gcount());
  uint32_t magic = 0;
  uint64_t header_len = 0;
  std::memcpy(&magic, head, 4);
  std::memcpy(&header_len, head, 8);
  if (got >= 4 && magic == kGgufMagic) return inspect_gguf(path);
  if (got >= 4 && magic == kLlama2cMagic) return inspect_llama2c(path);
  if (ends_with(path, ".index.json")) return inspect_index(path);
  if (ends_with(path, ".safetensors") || (got == 9 && head[8] == '{' && header_len < fs::file_size(path))) {
    ModelFileReport r;
    r.format = "safetensors";
    summarize_safetensors(r, SafetensorsFile::open(path));
    return r;
  }
  if (ends_with(path, ".bin")) {
    // A .bin is a checkpoint or a tokenizer; the checkpoint's exact-size rule tells them apart.
    try {
      return inspect_llama2c(path);
    } catch (const FormatError&) {
      try {
        return inspect_llama2c_tokenizer(path);
      } catch (const FormatError&) {
      }
      throw;
    }
  }
  throw FormatError(path, "unknown model file format: expected GGUF (magic \"GGUF\"), safetensors, a "
                          "model.safetensors.index.json, a llama2.c .bin, or a Hugging Face model directory");
}

std::string with_commas(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

}  // namespace

int64_t ModelFileReport::parameters() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += shape_numel(t.shape);
  return n;
}

uint64_t ModelFileReport::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.bytes;
  return n;
}

ModelFileReport inspect_model_file(const std::string& path) {
  ModelFileReport r = dispatch(path);
  r.path = report_text(path);
  if (r.summary.is_null()) r.summary = ojson::object();
  if (r.metadata.is_null()) r.metadata = ojson::object();
  return r;
}

std::string render_report_text(const ModelFileReport& r, bool with_metadata) {
  std::string out = fmt::format("{}\nformat: {}, {} bytes\n", r.path, r.format, with_commas(r.file_bytes));
  if (!r.summary.empty()) {
    out += "summary:\n";
    for (const auto& [k, v] : r.summary.items())
      out += fmt::format("  {:<40} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  if (with_metadata && !r.metadata.empty()) {
    out += fmt::format("metadata ({} entries):\n", r.metadata.size());
    for (const auto& [k, v] : r.metadata.items()) {
      std::string s = v.is_string() ? v.get<std::string>() : v.dump();
      if (v.is_object() && v.contains("type") && v.contains("first"))  // an abbreviated array
        s = fmt::format("{} {} ...", v["type"].get<std::string>(), v["first"].dump());
      if (s.size() > 200) s = fmt::format("{}...", s.substr(0, 197));
      out += fmt::format("  {:<40} {}\n", k, s);
    }
  }
  if (!r.tensors.empty()) {
    size_t w = 4;
    for (const auto& t : r.tensors) w = std::max(w, t.name.size());
    out += fmt::format("tensors ({}):\n  {:<{}}  {:<8} {:<20} {:>14}\n", r.tensors.size(), "name", w, "dtype", "shape",
                       "bytes");
    for (const auto& t : r.tensors)
      out += fmt::format("  {:<{}}  {:<8} {:<20} {:>14}\n", t.name, w, t.dtype, shape_str(t.shape), with_commas(t.bytes));
  }
  const int64_t params = r.parameters();
  out += fmt::format("total: {} tensors, {} parameters, {} bytes", r.tensors.size(), with_commas(uint64_t(params)),
                     with_commas(r.tensor_bytes()));
  if (params > 0) out += fmt::format(", {:.3f} bytes/weight", double(r.tensor_bytes()) / double(params));
  return out + "\n";
}

ojson render_report_json(const ModelFileReport& r, bool with_metadata) {
  ojson j{{"path", r.path}, {"format", r.format}, {"file_bytes", r.file_bytes}, {"summary", r.summary}};
  if (with_metadata) j["metadata"] = r.metadata;
  ojson tensors = ojson::array();
  for (const auto& t : r.tensors)
    tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
  j["tensors"] = std::move(tensors);
  const int64_t params = r.parameters();
  j["totals"] = {{"tensors", r.tensors.size()},
                 {"parameters", params},
                 {"bytes", r.tensor_bytes()},
                 {"bytes_per_weight", params > 0 ? double(r.tensor_bytes()) / double(params) : 0.0}};
  return j;
}

}  // namespace zeroth
