#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/formats/safetensors.h"
#include "core/quant/quant.h"
#include "tests/core/format_files.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

using test::Bytes;
namespace fs = std::filesystem;

// One small tensor of every dtype safetensors holds, filled with a byte pattern.
TensorList every_dtype() {
  TensorList out;
  const DType all[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8, DType::U8, DType::I16,
                       DType::I32, DType::I64, DType::U16, DType::U32, DType::U64, DType::BOOL};
  int seed = 0;
  for (DType t : all) {
    Tensor x = Tensor::empty(t, {2, 3});
    auto* p = x.data<uint8_t>();
    for (size_t i = 0; i < x.nbytes(); ++i) p[i] = uint8_t(t == DType::BOOL ? i % 2 : (i * 7 + size_t(seed)) % 256);
    out.push_back({std::string("w.") + std::string(dtype_name(t)), x});
    ++seed;
  }
  out.push_back({"empty", Tensor::empty(DType::F32, {0, 4})});
  out.push_back({"scalar", Tensor::from_vector({3.5f}, {})});
  return out;
}

Bytes header_with(const std::string& json, const Bytes& data) {
  Bytes b;
  test::put<uint64_t>(b, json.size());
  test::put_bytes(b, json.data(), json.size());
  test::put_bytes(b, data.data(), data.size());
  return b;
}

void open_st(const std::string& p) { SafetensorsFile::open(p); }

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const auto dir = test::temp_dir("st-roundtrip");
  const auto path = (dir / "m.safetensors").string();
  const TensorList in = every_dtype();
  write_safetensors(path, in, {{"format", "pt"}, {"note", "zeroth test"}});
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.data_offset() % 8, 0u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "zeroth test");
  ASSERT_EQ(f.tensors().size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    // Written in the given order, so file (offset) order is the same.
    EXPECT_EQ(f.tensors()[i].name, in[i].name);
    const Tensor& t = f.tensor(in[i].name);
    EXPECT_EQ(t.dtype(), in[i].tensor.dtype()) << in[i].name;
    EXPECT_EQ(t.shape(), in[i].tensor.shape()) << in[i].name;
    ASSERT_EQ(t.nbytes(), in[i].tensor.nbytes());
    EXPECT_EQ(std::memcmp(t.raw(), in[i].tensor.raw(), t.nbytes()), 0) << in[i].name;
    EXPECT_TRUE(t.storage()->read_only()) << "tensors are views of the map";
  }
  EXPECT_THROW(f.tensor("missing"), Error);
  // The header is JSON padded with spaces to 8 bytes, as the format specifies.
  const Bytes raw = test::read_file(path);
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string text(raw.begin() + 8, raw.begin() + 8 + long(n));
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["w.bf16"]["dtype"], "BF16");
  EXPECT_EQ(j["w.bool"]["dtype"], "BOOL");
}

TEST(Safetensors, WritesStridedViewsAsContiguous) {
  const auto dir = test::temp_dir("st-strided");
  const auto path = (dir / "t.safetensors").string();
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  write_safetensors(path, {{"xt", x.transpose(0, 1)}});
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.tensor("xt").shape(), (Shape{3, 2}));
  EXPECT_EQ(f.tensor("xt").to_float_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

// Block formats travel as U8 rows plus a "zeroth.block.NAME" metadata entry and
// come back as the same dtype, shape and bytes; a lying entry is a FormatError.
TEST(Safetensors, BlockTensorsRoundTrip) {
  const auto dir = test::temp_dir("st-block");
  const auto path = (dir / "q.safetensors").string();
  std::vector<float> v(3 * 64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(double(i)));
  const Tensor w = Tensor::from_vector(v, {3, 64});
  const Tensor q8 = quantize(w, DType::Q8_0), nf = quantize(w, *parse_dtype("nf3_b16_f16"));
  write_safetensors(path, {{"plain", w}, {"q8", q8}, {"nf", nf}}, {{"format", "pt"}});
  const auto f = SafetensorsFile::open(path);
  for (const auto& [name, t] : std::vector<std::pair<std::string, Tensor>>{{"q8", q8}, {"nf", nf}}) {
    const Tensor& r = f.tensor(name);
    EXPECT_EQ(r.dtype(), t.dtype()) << name;
    EXPECT_EQ(r.shape(), t.shape()) << name;
    ASSERT_EQ(r.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(r.raw(), t.raw(), t.nbytes()), 0) << name;
  }
  EXPECT_EQ(f.tensor("plain").to_float_vector(), v);
  EXPECT_EQ(f.metadata().at("format"), "pt");

  // Metadata that disagrees with the stored bytes.
  const auto lie = [&](const std::string& meta) {
    const auto p2 = (dir / "lie.safetensors").string();
    write_safetensors(p2, {{"raw", Tensor::empty(DType::U8, {3, 34 * 2})}}, {{"zeroth.block.raw", meta}});
    return p2;
  };
  EXPECT_NO_THROW(SafetensorsFile::open(lie(R"({"dtype":"q8_0","shape":[3,64]})")));
  EXPECT_THROW(SafetensorsFile::open(lie(R"({"dtype":"q8_0","shape":[3,96]})")), FormatError);
  EXPECT_THROW(SafetensorsFile::open(lie(R"({"dtype":"q8_0","shape":[3,65]})")), FormatError);
  EXPECT_THROW(SafetensorsFile::open(lie(R"({"dtype":"f32","shape":[3,64]})")), FormatError);
  EXPECT_THROW(SafetensorsFile::open(lie(R"({"dtype":"q8_0"})")), FormatError);
  EXPECT_THROW(SafetensorsFile::open(lie(R"([1,2)")), FormatError);
  const auto p3 = (dir / "missing.safetensors").string();
  write_safetensors(p3, {{"raw", Tensor::empty(DType::U8, {1, 34})}}, {{"zeroth.block.other", R"({"dtype":"q8_0","shape":[1,32]})"}});
  EXPECT_THROW(SafetensorsFile::open(p3), FormatError);
}

TEST(Safetensors, FailedWriteKeepsTheExistingFile) {
  const auto dir = test::temp_dir("st-atomic");
  const auto path = (dir / "keep.safetensors").string();
  write_safetensors(path, {{"a", Tensor::from_vector({1, 2}, {2})}});
  const Bytes before = test::read_file(path);
  // An undefined tensor cannot be written; a duplicate name neither.
  EXPECT_THROW(write_safetensors(path, {{"a", Tensor::from_vector({9}, {1})}, {"q", Tensor()}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"a", Tensor::from_vector({9}, {1})}, {"a", Tensor::from_vector({9}, {1})}}),
               Error);
  EXPECT_EQ(test::read_file(path), before);
  // A write into a directory we cannot create files in fails and leaves no temp file.
  EXPECT_THROW(write_safetensors((dir / "no-such-dir" / "x.safetensors").string(), {}), Error);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u);
  // A successful overwrite replaces the contents.
  write_safetensors(path, {{"b", Tensor::from_vector({7}, {1})}});
  EXPECT_TRUE(SafetensorsFile::open(path).contains("b"));
  EXPECT_FALSE(SafetensorsFile::open(path).contains("a"));
}

TEST(Safetensors, TruncationAnywhereIsAFormatError) {
  const auto dir = test::temp_dir("st-trunc");
  const auto good = (dir / "good.safetensors").string();
  write_safetensors(good, every_dtype(), {{"k", "v"}});
  const Bytes b = test::read_file(good);
  // Every cut in the length field and the start of the JSON, then a stride through the rest.
  for (size_t n = 0; n < b.size(); n += n < 24 ? 1 : 13)
    test::expect_format_error(dir / "cut.safetensors", Bytes(b.begin(), b.begin() + long(n)), open_st,
                              "truncated to " + std::to_string(n));
}

TEST(Safetensors, FlippedHeaderBytesNeverCrash) {
  const auto dir = test::temp_dir("st-flip");
  const auto good = (dir / "good.safetensors").string();
  write_safetensors(good, every_dtype(), {{"k", "v"}});
  const Bytes b = test::read_file(good);
  uint64_t n;
  std::memcpy(&n, b.data(), 8);
  int errors = 0;
  for (size_t at = 0; at < 8 + n; at += 3) {
    Bytes bad = b;
    bad[at] ^= 0x5a;
    test::write_file(dir / "flip.safetensors", bad);
    // A flip inside a tensor name can leave a valid file; anything else must be a FormatError.
    try {
      SafetensorsFile::open((dir / "flip.safetensors").string());
    } catch (const FormatError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, int(n) / 6);
}

TEST(Safetensors, LyingHeadersAreFormatErrors) {
  const auto dir = test::temp_dir("st-lies");
  const auto p = dir / "lie.safetensors";
  const Bytes data8 = test::pattern_bytes(8);
  struct Case {
    const char* label;
    std::string json;
  };
  const Case cases[] = {
      {"not an object", "[1, 2]"},
      {"not JSON", "{\"a\": {\"dtype\": \"F32\""},
      {"unknown dtype", R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})"},
      {"quantized dtype", R"({"a":{"dtype":"Q8_0","shape":[2],"data_offsets":[0,8]}})"},
      {"shape lies", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"},
      {"float dim", R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})"},
      {"huge shape", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})"},
      {"offsets past end", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"},
      {"offsets reversed", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})"},
      {"gap", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"},
      {"trailing bytes", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})"},
      {"missing offsets", R"({"a":{"dtype":"F32","shape":[2]}})"},
      {"three offsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})"},
      {"metadata not strings", R"({"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"},
      {"metadata not object", R"({"__metadata__":"x","a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"},
      {"deep nesting", std::string(100000, '[') + std::string(100000, ']')},
  };
  for (const auto& c : cases) test::expect_format_error(p, header_with(c.json, data8), open_st, c.label);

  // Header lengths that lie about the file size.
  Bytes b = header_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8);
  SafetensorsFile::open((test::write_file(p, b), p.string()));  // the honest version opens
  for (uint64_t lie : {uint64_t(b.size()), uint64_t(1) << 40, ~uint64_t(0), uint64_t(3)}) {
    Bytes bad = b;
    test::poke<uint64_t>(bad, 0, lie);
    test::expect_format_error(p, bad, open_st, "header length " + std::to_string(lie));
  }
}

// Shapes whose element count is 0 passed the size check, but tensor code then
// multiplied their other dimensions in int64 and overflowed (UBSan, while
// fuzzing: tests/fuzz). Non-zero dimensions must now multiply to at most 2^60.
TEST(Safetensors, ZeroSizedShapesThatOverflowInt64AreFormatErrors) {
  const auto dir = test::temp_dir("st-zero-dims");
  const auto p = dir / "zero.safetensors";
  for (const char* shape : {"[4294967296, 2147483648, 0]", "[0, 4611686018427387904]", "[1152921504606846977, 0]"})
    test::expect_format_error(p, header_with(std::string(R"({"a":{"dtype":"F32","shape":)") + shape +
                                                 R"(,"data_offsets":[0,0]}})", {}),
                              open_st, shape);
  // Zero-sized tensors of sane shapes still open.
  test::write_file(p, header_with(R"({"a":{"dtype":"F32","shape":[0, 1152921504606846976],"data_offsets":[0,0]}})", {}));
  EXPECT_EQ(SafetensorsFile::open(p.string()).tensor("a").numel(), 0);
  // The inputs the fuzz target keeps (byte 0 is its selector).
  for (const auto& e : fs::directory_iterator(fs::path(ZEROTH_SOURCE_DIR) / "tests/fuzz/regressions/safetensors")) {
    const Bytes b = test::read_file(e.path());
    ASSERT_FALSE(b.empty());
    test::expect_format_error(p, Bytes(b.begin() + 1, b.end()), open_st, e.path().filename().string());
  }
}

TEST(Safetensors, ReadsTheShardedIndex) {
  const auto dir = test::temp_dir("st-index");
  write_safetensors((dir / "model-00001-of-00002.safetensors").string(), {{"a", Tensor::from_vector({1}, {1})}});
  write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {{"b", Tensor::from_vector({2}, {1})}});
  const std::string idx = R"({"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors",
                              "b":"model-00002-of-00002.safetensors"}})";
  test::write_file(dir / "model.safetensors.index.json", Bytes(idx.begin(), idx.end()));
  const auto index = read_safetensors_index((dir / "model.safetensors.index.json").string());
  EXPECT_EQ(index.metadata.at("total_size"), "8");
  ASSERT_EQ(index.shards().size(), 2u);
  EXPECT_EQ(index.weight_map.at("b"), "model-00002-of-00002.safetensors");
  const auto shard = SafetensorsFile::open(index.shard_path(index.weight_map.at("b")));
  EXPECT_EQ(shard.tensor("b").to_float_vector(), std::vector<float>{2});

  auto open_index = [](const std::string& p) { read_safetensors_index(p); };
  const auto p = dir / "bad.index.json";
  for (const std::string& bad : {std::string("{}"), std::string(R"({"weight_map":[]})"),
                                std::string(R"({"weight_map":{"a":1}})"), std::string(R"({"weight_map":{"a":"../x"}})"),
                                std::string("{\"weight_map\":")})
    test::expect_format_error(p, Bytes(bad.begin(), bad.end()), open_index, bad);
}

}  // namespace
}  // namespace zeroth
