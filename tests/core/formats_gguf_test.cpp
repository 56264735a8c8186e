#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "core/formats/ggml_types.h"
#include "core/formats/gguf.h"
#include "tests/core/format_files.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

using test::Bytes;
using test::GgufBuilder;

// ggml type ids and GGUF value type ids used below.
constexpr uint32_t kF32 = 0, kF16 = 1, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kBF16 = 30;
enum : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

GgufBuilder sample() {
  GgufBuilder g;
  g.string("general.architecture", "llama");
  g.scalar<uint32_t>("general.alignment", U32, 32);
  g.scalar<uint8_t>("t.u8", U8, 200);
  g.scalar<int8_t>("t.i8", I8, -5);
  g.scalar<uint16_t>("t.u16", U16, 60000);
  g.scalar<int16_t>("t.i16", I16, -300);
  g.scalar<uint32_t>("llama.embedding_length", U32, 64);
  g.scalar<int32_t>("t.i32", I32, -7);
  g.scalar<float>("t.f32", F32, 1e-5f);
  g.scalar<uint8_t>("t.bool", BOOL, 1);
  g.scalar<uint64_t>("t.u64_big", U64, uint64_t(1) << 40);
  g.scalar<int64_t>("t.i64", I64, -(int64_t(1) << 40));
  g.scalar<double>("t.f64", F64, 10000.0);
  g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", ""});
  g.array<float>("tokenizer.ggml.scores", F32, {0.f, -1.f, -2.5f, 3.f, 4.f});
  g.array<int32_t>("tokenizer.ggml.token_type", I32, {2, 3, 3, 1, 1});
  g.array<uint64_t>("t.u64s", U64, {1, uint64_t(1) << 33});
  // array of arrays: [[1, 2], [3]] as u8
  g.key("t.nested", ARRAY);
  test::put<uint32_t>(g.kv, ARRAY);
  test::put<uint64_t>(g.kv, 2);
  for (const Bytes& inner : {Bytes{1, 2}, Bytes{3}}) {
    test::put<uint32_t>(g.kv, U8);
    test::put<uint64_t>(g.kv, inner.size());
    test::put_bytes(g.kv, inner.data(), inner.size());
  }
  g.tensor("emb", {4, 3}, kF32, test::pattern_bytes(48, 1));
  g.tensor("half", {8}, kF16, test::pattern_bytes(16, 2));
  g.tensor("q8", {64, 2}, kQ8_0, test::pattern_bytes(2 * 2 * 34, 3));
  g.tensor("q4k", {256, 1}, kQ4_K, test::pattern_bytes(144, 4));
  g.tensor("q5", {32, 2}, kQ5_1, test::pattern_bytes(48, 5));  // listed, not usable
  g.tensor("q50", {32, 1}, kQ5_0, test::pattern_bytes(22, 6));
  g.tensor("bf", {2, 2, 2}, kBF16, test::pattern_bytes(16, 6));
  return g;
}

void open_gguf(const std::string& p) {
  const auto g = GgufFile::open(p);
  for (const auto& info : g.tensor_infos())
    if (info.dtype) g.tensor(info.name);
}

TEST(Gguf, ReadsBackMetadataOfEveryType) {
  const auto dir = test::temp_dir("gguf-meta");
  test::write_file(dir / "m.gguf", sample().build());
  const auto g = GgufFile::open((dir / "m.gguf").string());
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.data_offset() % 32, 0u);
  ASSERT_EQ(g.metadata().size(), 18u);
  EXPECT_EQ(g.metadata()[0].first, "general.architecture");  // file order kept
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(g.get_u32("t.u8"), 200u);
  EXPECT_EQ(g.get_i64("t.i8"), -5);
  EXPECT_EQ(g.get_u32("t.u16"), 60000u);
  EXPECT_EQ(g.get_i64("t.i16"), -300);
  EXPECT_EQ(g.get_i64("t.u64_big"), int64_t(1) << 40);
  EXPECT_EQ(g.get_i64("t.i64"), -(int64_t(1) << 40));
  EXPECT_FLOAT_EQ(g.get_f32("t.f32"), 1e-5f);
  EXPECT_FLOAT_EQ(g.get_f32("t.f64"), 10000.f);
  EXPECT_FLOAT_EQ(g.get_f32("t.i32"), -7.f);
  EXPECT_TRUE(g.get_bool("t.bool"));
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"<unk>", "<s>", "</s>", "a", ""}));
  EXPECT_EQ(g.get_f32_array("tokenizer.ggml.scores"), (std::vector<float>{0.f, -1.f, -2.5f, 3.f, 4.f}));
  EXPECT_EQ(g.get_i32_array("tokenizer.ggml.token_type"), (std::vector<int32_t>{2, 3, 3, 1, 1}));
  const GgufValue* nested = g.find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->arrays.size(), 2u);
  EXPECT_EQ(nested->arrays[0].element(1).u, 2u);
  EXPECT_EQ(nested->arrays[1].element(0).u, 3u);
  EXPECT_EQ(nested->to_string(), "[[1, 2], [3]]");
}

TEST(Gguf, GettersNameKeyAndFileOnMismatch) {
  const auto dir = test::temp_dir("gguf-getters");
  const auto path = (dir / "m.gguf").string();
  test::write_file(path, sample().build());
  const auto g = GgufFile::open(path);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = message([&] { g.get_u32("llama.block_count"); });
  EXPECT_NE(missing.find("llama.block_count"), std::string::npos) << missing;
  EXPECT_NE(missing.find(path), std::string::npos) << missing;
  EXPECT_NE(message([&] { g.get_u32("t.u64_big"); }).find("t.u64_big"), std::string::npos);  // > u32
  EXPECT_THROW(g.get_u32("t.i32"), Error);                                                  // negative
  EXPECT_THROW(g.get_u32("general.architecture"), Error);
  EXPECT_THROW(g.get_string("t.u8"), Error);
  EXPECT_THROW(g.get_f32("general.architecture"), Error);
  EXPECT_THROW(g.get_bool("t.u8"), Error);
  EXPECT_THROW(g.get_string_array("tokenizer.ggml.scores"), Error);
  EXPECT_THROW(g.get_f32_array("tokenizer.ggml.tokens"), Error);
  EXPECT_THROW(g.get_i32_array("tokenizer.ggml.scores"), Error);
  EXPECT_THROW(g.get_i32_array("t.u64s"), Error);  // 2^33 does not fit
}

TEST(Gguf, TensorsAreReversedNeViewsOfTheFile) {
  const auto dir = test::temp_dir("gguf-tensors");
  const GgufBuilder b = sample();
  const Bytes bytes = b.build();
  test::write_file(dir / "m.gguf", bytes);
  const auto g = GgufFile::open((dir / "m.gguf").string());
  ASSERT_EQ(g.tensor_infos().size(), b.tensors.size());
  const std::pair<const char*, Shape> shapes[] = {{"emb", {3, 4}}, {"half", {8}},  {"q8", {2, 64}},
                                                  {"q4k", {1, 256}}, {"q5", {2, 32}}, {"bf", {2, 2, 2}},
                                                  {"q50", {1, 32}}};
  for (const auto& [name, shape] : shapes) EXPECT_EQ(g.find_tensor(name)->shape, shape) << name;
  const std::pair<const char*, DType> dtypes[] = {
      {"emb", DType::F32}, {"half", DType::F16}, {"q8", DType::Q8_0}, {"q4k", DType::Q4_K}, {"bf", DType::BF16},
      {"q50", DType::Q5_0}};
  for (size_t i = 0; i < b.tensors.size(); ++i) {
    const auto& want = b.tensors[i];
    const auto* info = g.find_tensor(want.name);
    EXPECT_EQ(info->nbytes, want.data.size()) << want.name;
    if (!info->dtype) continue;
    const Tensor t = g.tensor(want.name);
    ASSERT_EQ(t.nbytes(), want.data.size());
    EXPECT_EQ(std::memcmp(t.raw(), want.data.data(), want.data.size()), 0) << want.name;
  }
  for (const auto& [name, dt] : dtypes) EXPECT_EQ(g.tensor(name).dtype(), dt) << name;
  // The q5_1 tensor is listed but cannot be used: the error names it and its type.
  EXPECT_FALSE(g.find_tensor("q5")->dtype.has_value());
  try {
    g.tensor("q5");
    ADD_FAILURE() << "q5_1 tensor accessed";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("\"q5\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q5_1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g.tensors(), FormatError);
  EXPECT_THROW(g.tensor("nope"), Error);
}

TEST(Gguf, ReadsVersion2AndOtherAlignments) {
  const auto dir = test::temp_dir("gguf-v2");
  GgufBuilder b;
  b.version = 2;
  b.alignment = 64;
  b.scalar<uint32_t>("general.alignment", U32, 64);
  b.tensor("a", {16}, kF32, test::pattern_bytes(64));
  b.tensor("b", {3}, kF32, test::pattern_bytes(12));
  test::write_file(dir / "v2.gguf", b.build());
  const auto g = GgufFile::open((dir / "v2.gguf").string());
  EXPECT_EQ(g.version(), 2u);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.find_tensor("b")->offset, 64u);
  EXPECT_EQ(g.tensor("b").to_float_vector().size(), 3u);
}

TEST(Gguf, TruncationAnywhereIsAFormatError) {
  const auto dir = test::temp_dir("gguf-trunc");
  const Bytes b = sample().build();
  for (size_t n = 0; n < b.size(); n += n < 64 ? 1 : 5)
    test::expect_format_error(dir / "cut.gguf", Bytes(b.begin(), b.begin() + long(n)), open_gguf,
                              "truncated to " + std::to_string(n));
}

TEST(Gguf, FlippedHeaderBytesNeverCrash) {
  const auto dir = test::temp_dir("gguf-flip");
  const GgufBuilder s = sample();
  const Bytes b = s.build();
  int errors = 0, total = 0;
  for (size_t at = 0; at < b.size() - 100; at += 5, ++total) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80)}) {
      Bytes bad = b;
      bad[at] ^= mask;
      test::write_file(dir / "flip.gguf", bad);
      try {
        open_gguf((dir / "flip.gguf").string());
      } catch (const FormatError&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, total / 4);
}

// Rewrites the u32 value of general.alignment (the second key) in place.
void poke_alignment(GgufBuilder& b, uint32_t a) {
  const size_t at = 8 + std::string("general.architecture").size() + 4 + 8 + 5 + 8 +
                    std::string("general.alignment").size() + 4;
  test::poke<uint32_t>(b.kv, at, a);
}

TEST(Gguf, LyingFilesAreFormatErrors) {
  const auto dir = test::temp_dir("gguf-lies");
  const auto p = dir / "lie.gguf";
  const Bytes good = sample().build();
  auto with = [&](size_t at, auto v) {
    Bytes b = good;
    test::poke(b, at, v);
    return b;
  };
  test::expect_format_error(p, with(0, uint32_t(0x46554748)), open_gguf, "magic");
  test::expect_format_error(p, with(4, uint32_t(1)), open_gguf, "version 1");
  test::expect_format_error(p, with(4, uint32_t(4)), open_gguf, "version 4");
  test::expect_format_error(p, with(4, uint32_t(0x03000000)), open_gguf, "big-endian");
  test::expect_format_error(p, with(8, ~uint64_t(0)), open_gguf, "huge tensor count");
  test::expect_format_error(p, with(8, uint64_t(8)), open_gguf, "one tensor too many");
  test::expect_format_error(p, with(16, uint64_t(1) << 60), open_gguf, "huge kv count");
  test::expect_format_error(p, with(16, uint64_t(20)), open_gguf, "one kv too many");
  test::expect_format_error(p, with(24, uint64_t(1) << 62), open_gguf, "huge key length");

  auto built = [&](auto&& edit) {
    GgufBuilder b = sample();
    edit(b);
    return b.build();
  };
  auto one_key = [&](auto&& write) {
    GgufBuilder b;
    b.key("k", ARRAY);
    write(b.kv);
    return b.build();
  };
  test::expect_format_error(p, one_key([](Bytes& kv) { test::put<uint32_t>(kv, U8), test::put<uint64_t>(kv, uint64_t(1) << 61); }),
                            open_gguf, "huge u8 array");
  test::expect_format_error(p, one_key([](Bytes& kv) { test::put<uint32_t>(kv, STRING), test::put<uint64_t>(kv, ~uint64_t(0)); }),
                            open_gguf, "huge string array");
  test::expect_format_error(p, one_key([](Bytes& kv) { test::put<uint32_t>(kv, 13), test::put<uint64_t>(kv, 0); }),
                            open_gguf, "array of unknown type");
  test::expect_format_error(p, one_key([](Bytes& kv) {
    for (int d = 0; d < 40; ++d) test::put<uint32_t>(kv, ARRAY), test::put<uint64_t>(kv, 1);
    test::put<uint32_t>(kv, U8), test::put<uint64_t>(kv, 0);
  }), open_gguf, "arrays nested 40 deep");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.key("bad", 13); test::put<uint32_t>(b.kv, 0); }), open_gguf,
                            "unknown value type");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.string("general.architecture", "x"); }), open_gguf,
                            "duplicate key");
  for (uint32_t a : {0u, 3u, 1u << 30})
    test::expect_format_error(p, built([&](GgufBuilder& b) { poke_alignment(b, a); }), open_gguf,
                              "alignment " + std::to_string(a));
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[1].offset_lie = 4; }), open_gguf, "misaligned offset");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[2].offset_lie = -64; }), open_gguf, "overlap");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[5].offset_lie = 1 << 20; }), open_gguf, "offset past end");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[5].ne = {2, 2, 4}; }), open_gguf, "shape past end");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[0].ne = {1u << 31, 1u << 31, 1u << 31, 8}; }),
                            open_gguf, "overflowing shape");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[0].ne = {1, 1, 1, 1, 48}; }), open_gguf, "5 dims");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensors[2].ne = {33, 2}; }), open_gguf, "partial q8_0 block");
  test::expect_format_error(p, built([](GgufBuilder& b) { b.tensor("emb", {1}, kF32, test::pattern_bytes(4)); }),
                            open_gguf, "duplicate tensor");
}

// ne = {0, 2^32, 2^31} holds no element, yet tensor code multiplied the rest
// of its (reversed) shape in int64 and overflowed (UBSan, while fuzzing:
// tests/fuzz). Non-zero dimensions must now multiply to at most 2^60.
TEST(Gguf, ZeroSizedShapesThatOverflowInt64AreFormatErrors) {
  const auto dir = test::temp_dir("gguf-zero-dims");
  const auto p = dir / "zero.gguf";
  for (const std::vector<uint64_t>& ne : {std::vector<uint64_t>{0, uint64_t(1) << 32, uint64_t(1) << 31},
                                          std::vector<uint64_t>{uint64_t(1) << 62, 0}}) {
    GgufBuilder g;
    g.tensor("t", ne, kF32, {});
    test::expect_format_error(p, g.build(), open_gguf, "ne[1] = " + std::to_string(ne[1]));
  }
  GgufBuilder sane;
  sane.tensor("t", {0, uint64_t(1) << 40}, kF32, {});
  test::write_file(p, sane.build());
  EXPECT_EQ(GgufFile::open(p.string()).tensor("t").numel(), 0);
  const auto input = std::filesystem::path(ZEROTH_SOURCE_DIR) / "tests/fuzz/regressions/gguf/shape-int64-overflow";
  test::expect_format_error(p, test::read_file(input), open_gguf, "fuzz regression input");
}

TEST(Gguf, UnknownGgmlTypesOpenAndFailOnAccess) {
  const auto dir = test::temp_dir("gguf-unknown");
  GgufBuilder b;
  b.tensor("odd", {4}, 99, test::pattern_bytes(4));
  b.tensor("ok", {1}, kF32, test::pattern_bytes(4));
  test::write_file(dir / "u.gguf", b.build());
  const auto g = GgufFile::open((dir / "u.gguf").string());
  EXPECT_EQ(g.tensor_infos().size(), 2u);
  EXPECT_EQ(ggml_type_name(99), "unknown(99)");
  EXPECT_THROW(g.tensor("odd"), FormatError);
  EXPECT_EQ(g.tensor("ok").numel(), 1);
}

}  // namespace
}  // namespace zeroth
