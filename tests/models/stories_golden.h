// The stories260K golden run of llama2.c run.c (../shared/golden/stories260K):
// BOS, "Once upon a time" and 60 greedy tokens. Row p of logits_64x512.f32 is
// the model's output after reading tokens 0..p.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace zeroth::test {

inline const std::vector<int32_t> kGoldenTokens = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410,
    408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388,
    426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};

// The 64 fed positions as one sequence.
inline std::vector<int32_t> golden_inputs() { return {kGoldenTokens.begin(), kGoldenTokens.begin() + 64}; }

// 64 x 512 f32 logits; short (and a test failure by the caller) when the file is.
inline std::vector<float> read_golden_logits(const std::string& shared) {
  std::ifstream in(shared + "/golden/stories260K/logits_64x512.f32", std::ios::binary);
  std::vector<float> v(64 * 512);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  v.resize(size_t(in.gcount()) / 4);
  return v;
}

}  // namespace zeroth::test
