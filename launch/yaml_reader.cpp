#include "launch/yaml_reader.h"

#include <utility>

namespace zeroth::cli {
namespace {

// A mapping key as text. YAML allows any node as a key (`? [a, b]`, `{x: 1}: 2`);
// a config's keys are plain names, so anything else is an error naming where.
std::string key_text(const YAML::Node& key, const std::string& file, const std::string& where) {
  if (!key.IsScalar()) {
    YAML::Emitter shown;  // on one line: {a: 1}, [x, y]
    shown.SetMapFormat(YAML::Flow);
    shown.SetSeqFormat(YAML::Flow);
    shown << key;
    fail("{}: {} has a key that is not a plain name: {}", file, where, shown.c_str());
  }
  return key.Scalar();
}

}  // namespace

YamlReader::YamlReader(YAML::Node node, std::string path, std::string file)
    : node_(std::move(node)), path_(std::move(path)), file_(std::move(file)) {
  ZEROTH_CHECK(!node_ || node_.IsNull() || node_.IsMap(), "{}: {} must be a mapping of keys to values", file_,
               path_.empty() ? "the config" : path_);
}

std::optional<YAML::Node> YamlReader::take(const std::string& key) {
  used_.insert(key);
  if (!node_ || !node_.IsMap()) return std::nullopt;
  const YAML::Node v = std::as_const(node_)[key];
  if (!v.IsDefined()) return std::nullopt;
  return v;
}

bool YamlReader::has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

void YamlReader::get(const std::string& key, std::vector<std::string>& out) {
  const auto v = take(key);
  if (!v) return;
  if (v->IsNull()) {  // `key:` with nothing after it: an empty list
    out.clear();
    return;
  }
  ZEROTH_CHECK(v->IsSequence(), "{}: {} must be a list", file_, full(key));
  out.clear();
  for (const auto& e : *v) {
    ZEROTH_CHECK(e.IsScalar(), "{}: {} must be a list of strings", file_, full(key));
    out.push_back(e.as<std::string>());
  }
}

void YamlReader::get(const std::string& key, std::map<std::string, std::string>& out) {
  const auto v = take(key);
  if (!v) return;
  if (v->IsNull()) {  // `key:` with nothing after it: an empty mapping
    out.clear();
    return;
  }
  ZEROTH_CHECK(v->IsMap(), "{}: {} must be a mapping", file_, full(key));
  out.clear();
  for (const auto& kv : *v) {
    const std::string k = key_text(kv.first, file_, full(key));
    ZEROTH_CHECK(kv.second.IsScalar(), "{}: {}.{} must be a string", file_, full(key), k);
    ZEROTH_CHECK(!out.count(k), "{}: {}.{} appears twice", file_, full(key), k);
    out[k] = kv.second.Scalar();
  }
}

YamlReader YamlReader::child(const std::string& key) {
  const auto v = take(key);
  return YamlReader(v ? *v : YAML::Node(), full(key), file_);
}

void YamlReader::finish() const {
  if (!node_ || !node_.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    const std::string k = key_text(kv.first, file_, path_.empty() ? "the config" : path_);
    if (!used_.count(k)) fail("{}: unknown key {}", file_, full(k));
    // yaml-cpp keeps both; lookups find the first, so the second would be ignored.
    if (!seen.insert(k).second) fail("{}: {} appears twice", file_, full(k));
  }
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  ZEROTH_CHECK(eq != std::string::npos && eq > 0, "--set {}: expected KEY=VALUE (e.g. optimizer.lr=1e-4)", assignment);
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::vector<std::string> keys;
  for (size_t b = 0;;) {
    const size_t e = path.find('.', b);
    keys.push_back(path.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("--set {}: the value is not valid YAML: {}", assignment, e.what());
  }
  // Walk (creating maps) down to the parent, then assign.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node next = chain.back()[keys[i]];
    ZEROTH_CHECK(!next || next.IsMap() || next.IsNull(), "--set {}: {} is not a mapping", assignment, keys[i]);
    chain.push_back(next);
  }
  chain.back()[keys.back()] = parsed;
}

}  // namespace zeroth::cli
