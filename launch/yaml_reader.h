// Reading YAML recipes into plain config structs: every key is looked up by
// name, every value converted with an error naming the key and file, and any
// key left unread is an error ("unknown key"), so a typo never passes silently.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace zeroth::cli {

class YamlReader {
 public:
  YamlReader(YAML::Node node, std::string path, std::string file);

  // An absent key keeps `out` (the default). A key present with no value
  // (`lr:`, `lr: ~`, `--set optimizer.lr=`) is "" for a string and an error
  // naming the key for a number or boolean: it never falls back silently.
  template <typename T>
  void get(const std::string& key, T& out) {
    const std::optional<YAML::Node> v = take(key);
    if (!v) return;
    if (v->IsNull()) {
      if constexpr (std::is_same_v<T, std::string>) {
        out.clear();
        return;
      } else {
        fail("{}: {} has no value; give it {} or delete the key to use the default", file_, full(key),
             type_name<T>());
      }
    }
    try {
      out = v->as<T>();
    } catch (const YAML::Exception&) {
      fail("{}: {}: cannot read {} as {}", file_, full(key), YAML::Dump(*v), type_name<T>());
    }
  }
  void get(const std::string& key, std::vector<std::string>& out);
  void get(const std::string& key, std::map<std::string, std::string>& out);
  YamlReader child(const std::string& key);
  bool has(const std::string& key) const;
  // Throws for keys present in the node but never asked for.
  void finish() const;
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "a boolean";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else return "a string";
  }
  std::optional<YAML::Node> take(const std::string& key);  // nullopt: absent (a null value is returned)
  YAML::Node node_;
  std::string path_, file_;
  std::set<std::string> used_;
};

// Applies `--set a.b.c=value` overrides to a YAML tree (value parsed as YAML).
void apply_override(YAML::Node& root, const std::string& assignment);

}  // namespace zeroth::cli
