#include "launch/run_dir.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "core/mapped_file.h"

namespace zeroth::cli {

namespace fs = std::filesystem;

std::string RunDir::snapshot(uint64_t step) const { return fmt::format("{}/step-{:08d}.safetensors", snapshots(), step); }

void write_snapshot(const RunDir& dir, uint64_t step, const std::string& hash, const TensorList& tensors) {
  fs::create_directories(dir.snapshots());
  write_safetensors(dir.snapshot(step), tensors, {{"zeroth.step", std::to_string(step)}, {"zeroth.hash", hash}});
}

std::optional<Snapshot> latest_snapshot(const RunDir& dir, uint64_t max_step) {
  if (!fs::is_directory(dir.snapshots())) return std::nullopt;
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const auto& e : fs::directory_iterator(dir.snapshots())) {
    const std::string name = e.path().filename().string();
    uint64_t step = 0;
    if (std::sscanf(name.c_str(), "step-%lu.safetensors", &step) == 1 && step <= max_step)
      found.push_back({step, e.path().string()});
  }
  std::sort(found.rbegin(), found.rend());
  for (const auto& [step, path] : found) {
    try {
      const auto f = SafetensorsFile::open(path);
      const auto& md = f.metadata();
      auto it = md.find("zeroth.hash");
      if (it == md.end() || md.count("zeroth.step") == 0 || md.at("zeroth.step") != std::to_string(step)) continue;
      Snapshot s;
      s.step = step;
      s.hash = it->second;
      for (const auto& nt : f.tensors()) s.tensors.push_back({nt.name, nt.tensor.clone()});
      return s;
    } catch (const Error& e) {
      fmt::print(stderr, "warning: skipping unreadable snapshot {}: {}\n", path, e.what());
    }
  }
  return std::nullopt;
}

Snapshot snapshot_from_bytes(std::span<const uint8_t> bytes, uint64_t step, const std::string& who) {
  static std::atomic<uint64_t> serial{0};
  const fs::path dir = fs::temp_directory_path() / fmt::format("zeroth-snapshot-{}-{}", ::getpid(), serial++);
  RunDir tmp{dir.string()};
  fs::create_directories(tmp.snapshots());
  std::ofstream(tmp.snapshot(step), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  auto snap = latest_snapshot(tmp, step);
  fs::remove_all(dir);
  ZEROTH_CHECK(snap && snap->step == step, "{}'s snapshot of step {} could not be read", who, step);
  return std::move(*snap);
}

std::string base_model_hash(const std::string& model_path) {
  std::vector<std::string> files;
  if (fs::is_directory(model_path)) {
    for (const auto& e : fs::directory_iterator(model_path)) {
      const std::string n = e.path().filename().string();
      if (n.ends_with(".safetensors") || n == "config.json") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(model_path);
  }
  TensorHasher h;
  for (const auto& f : files) {
    const auto m = MappedFile::open(f);
    const std::string name = fs::path(f).filename().string();
    h.add_bytes(name.data(), name.size());
    h.add_bytes(m->data(), m->size());
  }
  return h.finish().hex();
}

}  // namespace zeroth::cli
