// ggml tensor type ids as stored in GGUF tensor infos, their block geometry, and
// the zeroth DType each one maps to (for those zeroth can use).
//
// Block geometry is known for more types than zeroth decodes, so a GGUF holding
// e.g. IQ2_XXS tensors still opens, lists them with their sizes, and fails only
// when such a tensor is accessed.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace zeroth {

struct GgmlTypeInfo {
  std::string_view name;        // ggml's spelling: "f32", "q4_K", "iq2_xxs"
  int64_t block_elems;          // elements per block along a row (ne[0])
  int64_t block_bytes;          // bytes per block
  std::optional<DType> dtype;   // the zeroth dtype with the same layout, if any
};

// nullptr for ids ggml never assigned or has since removed.
const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type);
// "q4_K", or "unknown(77)".
std::string ggml_type_name(uint32_t ggml_type);
// The ggml type id whose layout a zeroth dtype has (for writers); nullopt if none.
std::optional<uint32_t> ggml_type_of(DType t);

}  // namespace zeroth
