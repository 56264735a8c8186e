#include <cstdint>
#include <gtest/gtest.h>

#include "core/formats/inspect.h"
#include "core/formats/safetensors.h"
#include "tests/core/format_files.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

namespace fs = std::filesystem;

TEST(Inspect, SafetensorsFileTableAndTotals) {
  const auto dir = test::temp_dir("inspect-st");
  const auto path = (dir / "m.safetensors").string();
  write_safetensors(path, {{"a", Tensor::empty(DType::BF16, {4, 8})}, {"b", Tensor::empty(DType::F32, {3})}},
                    {{"format", "pt"}});
  const auto r = inspect_model_file(path);
  EXPECT_EQ(r.format, "safetensors");
  ASSERT_EQ(r.tensors.size(), 2u);
  EXPECT_EQ(r.tensors[0].dtype, "bf16");
  EXPECT_EQ(r.parameters(), 35);
  EXPECT_EQ(r.tensor_bytes(), 76u);
  const auto j = render_report_json(r, true);
  EXPECT_EQ(j["totals"]["parameters"], 35);
  EXPECT_EQ(j["metadata"]["format"], "pt");
  EXPECT_EQ(j["tensors"][1]["shape"], nlohmann::json::array({3}));
  EXPECT_FALSE(render_report_json(r, false).contains("metadata"));
  const std::string text = render_report_text(r, true);
  EXPECT_NE(text.find("total: 2 tensors, 35 parameters, 76 bytes"), std::string::npos) << text;
}

TEST(Inspect, HuggingFaceDirectoryWithShards) {
  const auto dir = test::temp_dir("inspect-hf");
  write_safetensors((dir / "model-1.safetensors").string(), {{"x", Tensor::empty(DType::F16, {2, 2})}});
  write_safetensors((dir / "model-2.safetensors").string(), {{"y", Tensor::empty(DType::F16, {6})}});
  const std::string idx = R"({"weight_map":{"x":"model-1.safetensors","y":"model-2.safetensors"}})";
  test::write_file(dir / "model.safetensors.index.json", test::Bytes(idx.begin(), idx.end()));
  const std::string cfg = R"({"model_type":"llama","hidden_size":64,"num_hidden_layers":5,"other":[1,2]})";
  test::write_file(dir / "config.json", test::Bytes(cfg.begin(), cfg.end()));
  const auto r = inspect_model_file(dir.string());
  EXPECT_EQ(r.format, "hugging face directory (safetensors, 2 shards)");
  EXPECT_EQ(r.parameters(), 10);
  EXPECT_EQ(r.summary["model_type"], "llama");
  EXPECT_EQ(r.summary["hidden_size"], 64);
  // An index that points a tensor at the wrong shard is caught.
  const std::string lie = R"({"weight_map":{"x":"model-2.safetensors"}})";
  test::write_file(dir / "model.safetensors.index.json", test::Bytes(lie.begin(), lie.end()));
  EXPECT_THROW(inspect_model_file(dir.string()), FormatError);
}

TEST(Inspect, UnknownFormatsAreFormatErrors) {
  const auto dir = test::temp_dir("inspect-unknown");
  const std::string text = "hello, this is not a model";
  test::write_file(dir / "notes.txt", test::Bytes(text.begin(), text.end()));
  try {
    inspect_model_file((dir / "notes.txt").string());
    ADD_FAILURE() << "a text file was inspected";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model file format"), std::string::npos) << e.what();
  }
  // A .bin that is neither checkpoint nor tokenizer reports the checkpoint's problem.
  test::write_file(dir / "junk.bin", test::Bytes(100, 0xff));
  EXPECT_THROW(inspect_model_file((dir / "junk.bin").string()), FormatError);
  fs::create_directories(dir / "empty");
  EXPECT_THROW(inspect_model_file((dir / "empty").string()), FormatError);
  EXPECT_THROW(inspect_model_file((dir / "missing.gguf").string()), Error);
}

// Found by fuzzing (tests/fuzz): model files may hold any bytes in names and
// strings, and the JSON report threw nlohmann's type_error 316 (invalid UTF-8)
// from `zeroth inspect --json`, and from the text report's metadata arrays.
// Invalid bytes are now shown as U+FFFD; valid UTF-8 is kept as it is.
TEST(Inspect, NonUtf8NamesAndStringsRender) {
  const auto dir = test::temp_dir("inspect-utf8");
  // Valid é, then a stray byte, an overlong '/', a surrogate, a code point past U+10FFFF, a cut-short sequence.
  const std::string bad = "caf\xc3\xa9 \x92 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82";
  test::GgufBuilder g;
  g.string("general.architecture", "llama");
  g.string("general.name", bad);
  g.string("key" + bad, "v");
  g.strings("tokenizer.ggml.tokens", {"ok", bad});
  g.tensor("w" + bad, {4}, 0, test::pattern_bytes(16));
  const auto gguf = dir / "m.gguf";
  test::write_file(gguf, g.build());
  const auto r = inspect_model_file(gguf.string());
  std::string json;
  ASSERT_NO_THROW(json = render_report_json(r, true).dump(2));
  ASSERT_NO_THROW((void)render_report_text(r, true));
  const std::string shown = "caf\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd";
  EXPECT_EQ(r.summary["general.name"], shown);
  EXPECT_EQ(r.metadata["tokenizer.ggml.tokens"][1], shown);
  EXPECT_TRUE(r.metadata.contains("key" + shown));
  EXPECT_EQ(r.tensors.at(0).name, "w" + shown);

  // A llama2.c tokenizer with a token that is not UTF-8.
  test::Bytes tok;
  test::put<int32_t>(tok, 4);
  for (const std::string t : {"a", "\xa1", "bc"}) {
    test::put<float>(tok, 0.f);
    test::put<int32_t>(tok, int32_t(t.size()));
    test::put_bytes(tok, t.data(), t.size());
  }
  test::write_file(dir / "tok.bin", tok);
  const auto rt = inspect_model_file((dir / "tok.bin").string());
  EXPECT_EQ(rt.format, "llama2.c tokenizer");
  ASSERT_NO_THROW((void)render_report_json(rt, true).dump());
  ASSERT_NO_THROW((void)render_report_text(rt, true));
  EXPECT_EQ(rt.metadata["tokens"]["first"][1], "\xef\xbf\xbd");
}

// The inputs the fuzzer found (tests/fuzz/regressions/): inspect either reports
// a FormatError or renders both reports without throwing anything else.
TEST(Inspect, FuzzRegressionInputsRender) {
  const auto dir = test::temp_dir("inspect-fuzz");
  const fs::path inputs = fs::path(ZEROTH_SOURCE_DIR) / "tests/fuzz/regressions";
  for (const auto& [target, name] : {std::pair{"gguf", "model.gguf"}, std::pair{"llama2c", "model.bin"}}) {
    int seen = 0;
    for (const auto& e : fs::directory_iterator(inputs / target)) {
      SCOPED_TRACE(e.path().string());
      fs::copy_file(e.path(), dir / name, fs::copy_options::overwrite_existing);
      try {
        const auto r = inspect_model_file((dir / name).string());
        (void)render_report_json(r, true).dump();
        (void)render_report_text(r, true);
      } catch (const Error&) {
      } catch (const std::exception& x) {
        ADD_FAILURE() << "threw a non-zeroth::Error: " << x.what();
      }
      ++seen;
    }
    EXPECT_GE(seen, 1) << target;
  }
}

}  // namespace
}  // namespace zeroth
