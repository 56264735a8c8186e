// What a model file holds, for `zeroth inspect`: the detected format, a summary
// of the architecture/config, all metadata, and a table of tensors with totals.
// Lives in core because it only reads file formats; it knows no model code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace zeroth {

struct InspectedTensor {
  std::string name;
  std::string dtype;  // zeroth's name, or ggml's for types zeroth cannot use
  Shape shape;
  uint64_t bytes = 0;
};

struct ModelFileReport {
  std::string path;
  std::string format;               // "gguf v3", "safetensors", "llama2.c legacy", ...
  uint64_t file_bytes = 0;          // all files together for directories and shards
  nlohmann::ordered_json summary;   // key facts (architecture, dims, tokenizer), object
  nlohmann::ordered_json metadata;  // every metadata entry, long arrays abbreviated, object
  std::vector<InspectedTensor> tensors;

  int64_t parameters() const;
  uint64_t tensor_bytes() const;
};

// Detects the format by magic, extension or directory layout: a GGUF file, a
// safetensors file, a model.safetensors.index.json, a Hugging Face directory
// (config.json + model.safetensors[.index.json]), a llama2.c checkpoint or
// tokenizer .bin. Throws FormatError for an unknown format or a malformed file.
ModelFileReport inspect_model_file(const std::string& path);

std::string render_report_text(const ModelFileReport& r, bool with_metadata);
nlohmann::ordered_json render_report_json(const ModelFileReport& r, bool with_metadata);

}  // namespace zeroth
