#include "core/formats/ggml_types.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>

namespace zeroth {
namespace {

// Indexed by ggml type id. Block bytes follow ggml's block structs: e.g. q4_K is
// f16 d + f16 dmin + 12 bytes of 6-bit scales + 128 bytes of nibbles = 144 per 256.
constexpr GgmlTypeInfo kNone{"", 0, 0, std::nullopt};
constexpr std::array<GgmlTypeInfo, 40> kTypes = {{
    /* 0 */ {"f32", 1, 4, DType::F32},
    /* 1 */ {"f16", 1, 2, DType::F16},
    /* 2 */ {"q4_0", 32, 18, DType::Q4_0},
    /* 3 */ {"q4_1", 32, 20, DType::Q4_1},
    /* 4 */ kNone,  // q4_2, removed
    /* 5 */ kNone,  // q4_3, removed
    /* 6 */ {"q5_0", 32, 22, DType::Q5_0},
    /* 7 */ {"q5_1", 32, 24, std::nullopt},
    /* 8 */ {"q8_0", 32, 34, DType::Q8_0},
    /* 9 */ {"q8_1", 32, 36, std::nullopt},
    /* 10 */ {"q2_K", 256, 84, std::nullopt},
    /* 11 */ {"q3_K", 256, 110, std::nullopt},
    /* 12 */ {"q4_K", 256, 144, DType::Q4_K},
    /* 13 */ {"q5_K", 256, 176, DType::Q5_K},
    /* 14 */ {"q6_K", 256, 210, DType::Q6_K},
    /* 15 */ {"q8_K", 256, 292, std::nullopt},
    /* 16 */ {"iq2_xxs", 256, 66, std::nullopt},
    /* 17 */ {"iq2_xs", 256, 74, std::nullopt},
    /* 18 */ {"iq3_xxs", 256, 98, std::nullopt},
    /* 19 */ {"iq1_s", 256, 50, std::nullopt},
    /* 20 */ {"iq4_nl", 32, 18, std::nullopt},
    /* 21 */ {"iq3_s", 256, 110, std::nullopt},
    /* 22 */ {"iq2_s", 256, 82, std::nullopt},
    /* 23 */ {"iq4_xs", 256, 136, std::nullopt},
    /* 24 */ {"i8", 1, 1, DType::I8},
    /* 25 */ {"i16", 1, 2, DType::I16},
    /* 26 */ {"i32", 1, 4, DType::I32},
    /* 27 */ {"i64", 1, 8, DType::I64},
    /* 28 */ {"f64", 1, 8, DType::F64},
    /* 29 */ {"iq1_m", 256, 56, std::nullopt},
    /* 30 */ {"bf16", 1, 2, DType::BF16},
    /* 31 */ kNone,  // q4_0_4_4, removed
    /* 32 */ kNone,  // q4_0_4_8, removed
    /* 33 */ kNone,  // q4_0_8_8, removed
    /* 34 */ {"tq1_0", 256, 54, std::nullopt},
    /* 35 */ {"tq2_0", 256, 66, std::nullopt},
    /* 36 */ kNone,  // iq4_nl_4_4, removed
    /* 37 */ kNone,  // iq4_nl_4_8, removed
    /* 38 */ kNone,  // iq4_nl_8_8, removed
    /* 39 */ {"mxfp4", 32, 17, std::nullopt},
}};

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type) {
  if (ggml_type >= kTypes.size() || kTypes[ggml_type].block_elems == 0) return nullptr;
  return &kTypes[ggml_type];
}

std::string ggml_type_name(uint32_t ggml_type) {
  const auto* info = ggml_type_info(ggml_type);
  return info ? std::string(info->name) : fmt::format("unknown({})", ggml_type);
}

std::optional<uint32_t> ggml_type_of(DType t) {
  for (uint32_t i = 0; i < kTypes.size(); ++i)
    if (kTypes[i].dtype == t) return i;
  return std::nullopt;
}

}  // namespace zeroth
