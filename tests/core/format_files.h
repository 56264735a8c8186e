// Test-only writers of small model files as byte vectors (GGUF, llama2.c), so
// tests can write valid files and then truncate, flip or lie about any field.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace zeroth::test {

using Bytes = std::vector<uint8_t>;

template <typename T>
void put(Bytes& b, T v) {
  const size_t n = b.size();
  b.resize(n + sizeof(T));
  std::memcpy(b.data() + n, &v, sizeof(T));
}
inline void put_bytes(Bytes& b, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = b.size();
  b.resize(at + n);
  std::memcpy(b.data() + at, p, n);
}
template <typename T>
void poke(Bytes& b, size_t at, T v) { std::memcpy(b.data() + at, &v, sizeof(T)); }

inline void write_file(const std::filesystem::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
inline Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// Writes `b` to `path` and expects `open(path)` to throw FormatError (any other
// exception, or success, fails the test with `label` in the message).
inline void expect_format_error(const std::filesystem::path& path, const Bytes& b,
                                const std::function<void(const std::string&)>& open, const std::string& label) {
  write_file(path, b);
  try {
    open(path.string());
    ADD_FAILURE() << label << ": opened without error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << label << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-FormatError: " << e.what();
  }
}

// A GGUF file: metadata entries appended as raw typed values, tensors laid out
// at `alignment`-aligned offsets in the order added.
struct GgufBuilder {
  uint32_t version = 3;
  uint64_t alignment = 32;
  uint64_t n_kv = 0;
  Bytes kv;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t ggml_type;
    Bytes data;
    int64_t offset_lie = 0;  // added to the offset written in the tensor info
  };
  std::vector<Tensor> tensors;

  static void put_str(Bytes& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    put_bytes(b, s.data(), s.size());
  }
  void key(const std::string& k, uint32_t type) {
    ++n_kv;
    put_str(kv, k);
    put<uint32_t>(kv, type);
  }
  template <typename T>
  void scalar(const std::string& k, uint32_t type, T v) { key(k, type); put<T>(kv, v); }
  void string(const std::string& k, const std::string& v) { key(k, 8); put_str(kv, v); }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9);
    put<uint32_t>(kv, 8);
    put<uint64_t>(kv, v.size());
    for (const auto& s : v) put_str(kv, s);
  }
  template <typename T>
  void array(const std::string& k, uint32_t elem_type, const std::vector<T>& v) {
    key(k, 9);
    put<uint32_t>(kv, elem_type);
    put<uint64_t>(kv, v.size());
    for (auto x : v) put<T>(kv, x);
  }
  void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, Bytes data) {
    tensors.push_back({name, std::move(ne), type, std::move(data), 0});
  }

  // Byte position of the first tensor info (after header and metadata).
  size_t infos_at() const { return 24 + kv.size(); }

  Bytes build() const {
    Bytes b;
    put<uint32_t>(b, 0x46554747);
    put<uint32_t>(b, version);
    put<uint64_t>(b, tensors.size());
    put<uint64_t>(b, n_kv);
    put_bytes(b, kv.data(), kv.size());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors) {
      put_str(b, t.name);
      put<uint32_t>(b, uint32_t(t.ne.size()));
      for (auto d : t.ne) put<uint64_t>(b, d);
      put<uint32_t>(b, t.ggml_type);
      put<uint64_t>(b, uint64_t(int64_t(offset) + t.offset_lie));
      offsets.push_back(offset);
      offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
    }
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    const size_t data_start = b.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      b.resize(data_start + offsets[i], 0);
      put_bytes(b, tensors[i].data.data(), tensors[i].data.size());
    }
    return b;
  }
};

// Bytes 0, 1, 2, ... (mod 251) so every tensor's contents are recognisable.
inline Bytes pattern_bytes(size_t n, uint8_t seed = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t((i + seed) % 251);
  return b;
}

}  // namespace zeroth::test
