// Hugging Face safetensors: u64 LE header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {str: str}},
// then the data section. Offsets are relative to the data section (byte 8 + N).
//
// Reading maps the file once; every tensor is a zero-copy view of the map.
// Writing goes to a temporary file in the same directory, fsyncs it and renames it
// over the target, so a crash leaves either the old file or the complete new one.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/formats/named_tensor.h"
#include "core/mapped_file.h"

namespace zeroth {

using SafetensorsMetadata = std::map<std::string, std::string>;

// "F32", "BF16", "BOOL", ... as the format spells them; nullopt for zeroth's block types.
std::optional<std::string_view> safetensors_dtype_name(DType t);
std::optional<DType> parse_safetensors_dtype(std::string_view name);

class SafetensorsFile {
 public:
  // Throws FormatError naming the file and the first thing that is wrong.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  size_t data_offset() const { return data_offset_; }  // 8 + header length
  const SafetensorsMetadata& metadata() const { return metadata_; }
  // In data-section order (ascending offsets).
  const TensorList& tensors() const { return tensors_; }
  bool contains(std::string_view name) const;
  // Throws Error naming the file when there is no such tensor.
  const Tensor& tensor(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  size_t data_offset_ = 0;
  SafetensorsMetadata metadata_;
  TensorList tensors_;
};

// Writes tensors in the given order (the header lists them in that order and the
// data section follows it). Non-contiguous or device tensors are copied to host
// first. Block-quantized tensors are stored as U8 [rows, row bytes] with a
// "zeroth.block.NAME" metadata entry ({"dtype", "shape"}) that open() reads
// back into the block dtype. Throws Error for duplicate names or I/O failure;
// the existing file at `path`, if any, is untouched on failure.
void write_safetensors(const std::string& path, const TensorList& tensors,
                       const SafetensorsMetadata& metadata = {});

// The HF sharded layout: model.safetensors.index.json maps each tensor name to
// the shard file that holds it (relative to the index's directory).
struct SafetensorsIndex {
  std::string path;                               // of the index file
  SafetensorsMetadata metadata;                   // "metadata" (values stringified)
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
  std::vector<std::string> shards() const;        // distinct shard names, sorted
  std::string shard_path(const std::string& shard) const;  // beside the index
};
SafetensorsIndex read_safetensors_index(const std::string& path);

}  // namespace zeroth
