// GGUF (llama.cpp's model file), versions 2 and 3:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   | kv_count x (string key, u32 value type, value)
//   | tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
//   | padding to general.alignment (default 32) | data section
// Tensor offsets are relative to the data section and aligned too.
//
// ne[0] is the innermost dimension (the row length), so a zeroth Shape is ne
// reversed: a [n_vocab, n_embd] embedding has ne = {n_embd, n_vocab}.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/formats/gguf_value.h"
#include "core/formats/named_tensor.h"
#include "core/mapped_file.h"

namespace zeroth {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kGgufDefaultAlignment = 32;

struct GgufTensorInfo {
  std::string name;
  Shape shape;                 // zeroth order: reversed ne
  uint32_t ggml_type = 0;
  std::optional<DType> dtype;  // nullopt: a ggml type zeroth cannot use
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;         // 0 when the ggml type is unknown
};

class GgufFile {
 public:
  // Throws FormatError naming the file and what is wrong.
  static GgufFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // ---- metadata, in file order --------------------------------------------
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;  // nullptr if absent
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: throw Error naming key and file when the key is missing, has
  // another type, or its value does not fit (integers convert among integer types).
  std::string get_string(std::string_view key) const;
  uint32_t get_u32(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;  // f32/f64, or an integer
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;

  // ---- tensors, in file order ---------------------------------------------
  const std::vector<GgufTensorInfo>& tensor_infos() const { return infos_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // A zero-copy view of the map. Throws FormatError naming the tensor and its
  // ggml type when zeroth cannot use that type; Error when there is no such tensor.
  Tensor tensor(std::string_view name) const;
  // Every tensor as a view; throws at the first unusable one.
  TensorList tensors() const;

 private:
  const GgufValue& require(std::string_view key, std::string_view wanted) const;
  [[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, std::string_view wanted) const;

  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> infos_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace zeroth
