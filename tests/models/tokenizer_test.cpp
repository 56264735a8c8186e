// SentencePiece-style BPE: llama2.c goldens on tok512.bin, merge rules on a hand-made
// vocabulary, round trips on random UTF-8, and malformed tokenizer.bin files.
#include "models/tokenizer.h"

#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "tests/models/tokenizer_test_util.h"

namespace zeroth {
namespace {

std::string tok512_path(const std::string& shared) {
  return shared + "/models/stories260K/tok512.bin";
}

// The 65 tokens of llama2.c's greedy run (golden/stories260K/README.md).
const std::vector<int32_t> kGreedyTokens = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328,
    432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335,
    312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};

TEST(Llama2cTokenizer, EncodesPromptLikeRunC) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto tok = load_llama2c_tokenizer(tok512_path(shared), 512);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("Once upon a time", true, false),
            (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("Once upon a time", true, true),
            (std::vector<int32_t>{1, 403, 407, 261, 378, 2}));
  EXPECT_EQ(tok->token(403), " Once");
  EXPECT_EQ(tok->find(" upon"), 407);
  EXPECT_FALSE(tok->find("no such piece").has_value());
  EXPECT_NE(tok->describe().find("tok512.bin"), std::string::npos);
}

TEST(Llama2cTokenizer, DecodesGreedyRunLikeRunC) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto tok = load_llama2c_tokenizer(tok512_path(shared), 512);
  ASSERT_EQ(kGreedyTokens.size(), 65u);
  // run.c prints each piece after the first token, then a newline.
  const std::string printed = test::read_file(shared + "/golden/stories260K/greedy_64.txt");
  ASSERT_FALSE(printed.empty());
  EXPECT_EQ(tok->decode(kGreedyTokens) + "\n", printed);

  std::string streamed;
  for (size_t i = 1; i < kGreedyTokens.size(); ++i) {
    streamed += tok->decode_piece(kGreedyTokens[i - 1], kGreedyTokens[i]);
  }
  EXPECT_EQ(streamed + "\n", printed);
  // The space after BOS is dropped, the same piece elsewhere keeps it.
  EXPECT_EQ(tok->decode_piece(1, 403), "Once");
  EXPECT_EQ(tok->decode_piece(261, 403), " Once");
  EXPECT_EQ(tok->decode_piece(426, 13), "\n");  // <0x0A>
}

TEST(Llama2cTokenizer, RoundTripsRandomUtf8) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto tok = load_llama2c_tokenizer(tok512_path(shared), 512);
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    const std::string s = test::random_utf8(rng, 40);
    const std::vector<int32_t> ids = tok->encode(s, true, false);
    ASSERT_EQ(tok->decode(ids), s) << "trial " << trial;
  }
  // A character outside the 512 pieces is spelled in bytes: 😀 is F0 9F 98 80, id byte + 3.
  EXPECT_EQ(tok->encode("\xF0\x9F\x98\x80", false, false),
            (std::vector<int32_t>{tok->find(" ").value(), 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}));
}

TEST(Llama2cTokenizer, EncodesLongTextAndRoundTrips) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto tok = load_llama2c_tokenizer(tok512_path(shared), 512);
  std::string text = test::read_file(shared + "/data/tinystories/sample.txt");
  ASSERT_GT(text.size(), 1000u);
  while (text.size() < 200000) text += text;  // long enough that a quadratic merge would show
  const std::vector<int32_t> ids = tok->encode(text, true, false);
  EXPECT_LT(ids.size(), text.size() / 2);  // merges happened
  EXPECT_EQ(tok->decode(ids), text);
}

// A small ▁-spelled vocabulary: <unk> <s> </s>, 256 byte pieces, then merge pieces.
TokenizerSpec tiny_sentencepiece() {
  TokenizerSpec spec;
  spec.model = "llama";
  spec.source = "tiny";
  spec.pieces = {"<unk>", "<s>", "</s>"};
  spec.types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    spec.pieces.push_back(buf);
    spec.types.push_back(6);
  }
  const std::vector<std::pair<std::string, float>> normal = {
      {"\xE2\x96\x81", -1}, {"a", -2}, {"b", -2}, {"c", -2},   {"\xE2\x96\x81" "a", -5},
      {"ab", -3},            {"bc", -3}, {"\xE2\x96\x81" "ab", -4}, {"\xC3\xA9", -2}};
  for (const auto& [p, s] : normal) {
    spec.pieces.push_back(p);
    spec.types.push_back(1);
  }
  spec.scores.assign(259, 0.0f);
  for (const auto& [p, s] : normal) spec.scores.push_back(s);
  spec.bos = 1;
  spec.eos = 2;
  spec.unk = 0;
  return spec;
}

TEST(SentencePieceBpe, MergesByScoreLeftmostFirst) {
  auto tok = make_tokenizer(tiny_sentencepiece());
  auto id = [&](const char* p) { return tok->find(p).value(); };
  // "▁abc": ab (-3) and bc (-3) tie, the leftmost wins; then ▁+ab (-4) beats ▁+a (gone).
  EXPECT_EQ(tok->encode("abc", false, false), (std::vector<int32_t>{id("\xE2\x96\x81" "ab"), id("c")}));
  // Spaces become ▁, the dummy prefix only opens the text.
  EXPECT_EQ(tok->encode("c a", true, false),
            (std::vector<int32_t>{1, id("\xE2\x96\x81"), id("c"), id("\xE2\x96\x81" "a")}));
  // é is a piece; ü is not, so it falls back to bytes C3 BC.
  EXPECT_EQ(tok->encode("\xC3\xA9\xC3\xBC", false, false),
            (std::vector<int32_t>{id("\xE2\x96\x81"), id("\xC3\xA9"), 0xC3 + 3, 0xBC + 3}));
  EXPECT_EQ(tok->decode(tok->encode(" c a", true, true)), " c a");
}

TEST(SentencePieceBpe, ParsesSpecialTokensWhenAsked) {
  TokenizerSpec spec = tiny_sentencepiece();
  auto tok = make_tokenizer(spec);
  const auto ids = tok->encode("a</s>b", false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{tok->find("\xE2\x96\x81" "a").value(), 2, tok->find("b").value()}));
  spec.parse_special = false;
  auto literal = make_tokenizer(spec);
  const auto spelled = literal->encode("a</s>b", false, false);
  EXPECT_EQ(std::count(spelled.begin(), spelled.end(), 2), 0);
  EXPECT_EQ(literal->decode(spelled), "a</s>b");
}

TEST(SentencePieceBpe, RoundTripsRandomUtf8) {
  auto tok = make_tokenizer(tiny_sentencepiece());
  std::mt19937 rng(99);
  for (int trial = 0; trial < 300; ++trial) {
    const std::string s = test::random_utf8(rng, 40);
    if (s.find('<') != std::string::npos) continue;  // could spell a special token
    ASSERT_EQ(tok->decode(tok->encode(s, true, false)), s) << "trial " << trial;
    ASSERT_EQ(tok->decode(tok->encode(s, false, false)), s) << "trial " << trial;
  }
}

TEST(TokenizerSpec, RejectsInconsistentSpecs) {
  TokenizerSpec spec = tiny_sentencepiece();
  spec.model = "wordpiece";
  EXPECT_THROW(make_tokenizer(spec), Error);
  spec = tiny_sentencepiece();
  spec.scores.pop_back();
  EXPECT_THROW(make_tokenizer(spec), Error);
  spec = tiny_sentencepiece();
  spec.bos = 100000;
  EXPECT_THROW(make_tokenizer(spec), Error);
  auto tok = make_tokenizer(tiny_sentencepiece());
  EXPECT_THROW(tok->token(-1), Error);
  EXPECT_THROW(tok->decode({100000}), Error);
}

TEST(Llama2cTokenizerFile, ReportsBadFiles) {
  ZEROTH_REQUIRE_SHARED(shared);
  const auto dir = test::temp_dir("tokbin");
  const std::string good = test::read_file(tok512_path(shared));

  const std::string truncated = (dir / "truncated.bin").string();
  test::write_file(truncated, good.substr(0, good.size() / 2));
  test::expect_error_naming([&] { load_llama2c_tokenizer(truncated, 512); }, truncated, "truncated");
  // A vocab_size larger than the file holds reads past its end as well.
  test::expect_error_naming([&] { load_llama2c_tokenizer(tok512_path(shared), 513); },
                      tok512_path(shared), "truncated");
  test::expect_error_naming([&] { load_llama2c_tokenizer(tok512_path(shared), 500); },
                      tok512_path(shared), "bytes left");

  std::string negative = good;
  const int32_t bad_len = -5;
  std::memcpy(negative.data() + 4 + 4, &bad_len, 4);  // length of token 0
  const std::string negative_path = (dir / "negative.bin").string();
  test::write_file(negative_path, negative);
  test::expect_error_naming([&] { load_llama2c_tokenizer(negative_path, 512); }, negative_path, "length -5");

  const std::string empty_path = (dir / "empty.bin").string();
  test::write_file(empty_path, "");
  test::expect_error_naming([&] { load_llama2c_tokenizer(empty_path, 512); }, empty_path, "truncated");
  test::expect_error_naming([&] { load_llama2c_tokenizer((dir / "absent.bin").string(), 512); },
                      (dir / "absent.bin").string(), "no such file");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zeroth
