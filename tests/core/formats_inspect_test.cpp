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

}  // namespace
}  // namespace zeroth
