// The trainable set: index space, hash, snapshot/restore (also through a
// safetensors file) and copies, with errors that name the tensor and source.
#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "optim/trainable.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

struct Owned {
  std::vector<float> a = std::vector<float>(24), b = std::vector<float>(5), c = std::vector<float>(64);
  TrainableSet set;
  explicit Owned(float base) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = base + float(i);
    for (size_t i = 0; i < b.size(); ++i) b[i] = -base - float(i);
    for (size_t i = 0; i < c.size(); ++i) c[i] = base * 0.5f + float(i) * 0.25f;
    set.add("layers.0.q.lora_A", {4, 6}, a.data());
    set.add("norm.weight", {5}, b.data());
    set.add("layers.0.q.lora_B", {8, 8}, c.data());
  }
};

std::vector<std::pair<std::string, Tensor>> as_pairs(const TensorList& l) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& nt : l) out.emplace_back(nt.name, nt.tensor);
  return out;
}

TEST(TrainableSet, IndexSpace) {
  Owned o(1.0f);
  const TrainableSet& s = o.set;
  EXPECT_EQ(s.size(), 24 + 5 + 64);
  const auto spans = s.spans();
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[1].offset, 24);
  EXPECT_EQ(spans[2].offset, 29);
  EXPECT_EQ(spans[2].data, o.c.data());
  EXPECT_EQ(s.find("norm.weight")->n, 5);
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_EQ(s.at_index(0)->name, "layers.0.q.lora_A");
  EXPECT_EQ(s.at_index(28)->name, "norm.weight");
  EXPECT_EQ(s.at_index(29)->name, "layers.0.q.lora_B");
  EXPECT_EQ(s.at_index(92)->name, "layers.0.q.lora_B");
  EXPECT_EQ(s.at_index(93), nullptr);
  EXPECT_EQ(s.at_index(-1), nullptr);
  TrainableSet t;
  float x = 0;
  t.add("x", {1}, &x);
  EXPECT_THROW(t.add("x", {1}, &x), Error);
  EXPECT_THROW(t.add("y", {3}, nullptr), Error);
}

TEST(TrainableSet, HashMatchesTensorHasherAndSeesEveryBit) {
  Owned o(2.0f);
  const ParamHash h = o.set.hash();
  EXPECT_EQ(h, hash_tensors(as_pairs(o.set.snapshot())));
  Owned same(2.0f);
  EXPECT_EQ(same.set.hash(), h);
  uint32_t bits;
  std::memcpy(&bits, &o.c[63], 4);
  bits ^= 1;  // one ulp of the last element
  std::memcpy(&o.c[63], &bits, 4);
  EXPECT_NE(o.set.hash(), h);
  // Same bytes under another name or shape hash differently.
  Owned renamed(2.0f);
  TrainableSet r;
  r.add("layers.0.q.lora_A", {4, 6}, renamed.a.data());
  r.add("norm.bias", {5}, renamed.b.data());
  r.add("layers.0.q.lora_B", {8, 8}, renamed.c.data());
  EXPECT_NE(r.hash(), h);
  TrainableSet reshaped;
  reshaped.add("layers.0.q.lora_A", {6, 4}, renamed.a.data());
  reshaped.add("norm.weight", {5}, renamed.b.data());
  reshaped.add("layers.0.q.lora_B", {8, 8}, renamed.c.data());
  EXPECT_NE(reshaped.hash(), h);
}

TEST(TrainableSet, SnapshotRestoreThroughSafetensors) {
  Owned o(3.0f);
  const ParamHash h = o.set.hash();
  const TensorList snap = o.set.snapshot();
  o.a[0] = 99;  // the snapshot is a copy
  EXPECT_EQ(snap[0].tensor.data<float>()[0], 3.0f);
  const auto dir = test::temp_dir("trainable");
  const std::string path = (dir / "snap.safetensors").string();
  write_safetensors(path, snap);
  const SafetensorsFile f = SafetensorsFile::open(path);
  TensorList loaded = f.tensors();
  std::swap(loaded[0], loaded[2]);  // matched by name, not order
  o.set.restore(loaded, path);
  EXPECT_EQ(o.set.hash(), h);
}

TEST(TrainableSet, RestoreRejectsMismatchesAndLeavesThetaUntouched) {
  Owned o(4.0f);
  const TensorList good = Owned(5.0f).set.snapshot();
  const ParamHash before = o.set.hash();
  auto expect_error = [&](const TensorList& l, const std::string& what) {
    try {
      o.set.restore(l, "run/snapshot-7.safetensors");
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("run/snapshot-7.safetensors"), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
    }
    EXPECT_EQ(o.set.hash(), before);
  };
  TensorList missing = {good[0], good[2]};
  expect_error(missing, "'norm.weight'");
  TensorList wrong_shape = good;
  wrong_shape[2].tensor = Tensor::empty(DType::F32, {64});
  expect_error(wrong_shape, "'layers.0.q.lora_B' has shape [64]");
  TensorList extra = good;
  extra.push_back({"lm_head.weight", Tensor::empty(DType::F32, {2})});
  expect_error(extra, "'lm_head.weight'");
  TensorList wrong_dtype = good;
  wrong_dtype[1].tensor = Tensor::empty(DType::F16, {5});
  expect_error(wrong_dtype, "'norm.weight'");
  TensorList dup = good;
  dup.push_back(good[1]);
  expect_error(dup, "appears twice");
}

TEST(TrainableSet, CopyFrom) {
  Owned a(6.0f), b(7.0f);
  a.set.copy_from(b.set);
  EXPECT_EQ(a.set.hash(), b.set.hash());
  EXPECT_EQ(a.c[10], b.c[10]);
  EXPECT_NE(a.c.data(), b.c.data());
  TrainableSet other;
  other.add("layers.0.q.lora_A", {4, 6}, b.a.data());
  EXPECT_THROW(a.set.copy_from(other), Error);
}

}  // namespace
}  // namespace zeroth
