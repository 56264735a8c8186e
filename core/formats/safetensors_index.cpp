// model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard}}.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/file_check.h"
#include "core/error.h"
#include "core/formats/json_limits.h"
#include "core/formats/safetensors.h"

namespace zeroth {

std::vector<std::string> SafetensorsIndex::shards() const {
  std::set<std::string> s;
  for (const auto& [name, shard] : weight_map) s.insert(shard);
  return {s.begin(), s.end()};
}

std::string SafetensorsIndex::shard_path(const std::string& shard) const {
  return (std::filesystem::path(path).parent_path() / shard).string();
}

SafetensorsIndex read_safetensors_index(const std::string& path) {
  check_input_file(path, "the safetensors index");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto j = parse_json_bounded(path, text, "safetensors index");
  if (!j.is_object()) throw FormatError(path, "index is not a JSON object");
  SafetensorsIndex idx;
  idx.path = path;
  if (auto m = j.find("metadata"); m != j.end() && m->is_object())
    for (auto it = m->begin(); it != m->end(); ++it)
      idx.metadata[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  const auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) throw FormatError(path, "missing \"weight_map\" object");
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) throw FormatError(path, "weight_map entry \"" + it.key() + "\" is not a string");
    const std::string shard = it->get<std::string>();
    // A shard is a file beside the index, never a path that climbs out of it.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw FormatError(path, "weight_map entry \"" + it.key() + "\" names a bad shard \"" + shard + "\"");
    idx.weight_map[it.key()] = shard;
  }
  return idx;
}

}  // namespace zeroth
