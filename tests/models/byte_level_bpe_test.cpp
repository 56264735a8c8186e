// GPT-2-style byte-level BPE: a hand-made vocabulary whose tokens are known, the regex
// pre-tokenizers, special tokens, exact round trips, and HF tokenizer.json files.
#include <cstdint>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/tokenizer.h"
#include "models/tokenizers/pretokenizer.h"
#include "tests/models/tokenizer_test_util.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

// GPT-2's byte alphabet, written out independently of the library: bytes outside
// '!'..'~', '¡'..'¬', '®'..'ÿ' take U+0100 onwards in byte order.
std::string byte_char(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int shifted = 0;
    for (int k = 0; k < b; ++k) {
      if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174 && k <= 255))) ++shifted;
    }
    cp = 256 + shifted;
  }
  std::string s;
  test::append_codepoint(s, static_cast<uint32_t>(cp));
  return s;
}

// Ids 0..255 are the bytes; each merge "a b" adds the piece "ab" in order; then specials.
TokenizerSpec byte_vocab(const std::vector<std::string>& merges, const std::string& pre = "gpt2") {
  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.source = "hand-made";
  spec.pre = pre;
  for (int b = 0; b < 256; ++b) spec.pieces.push_back(byte_char(b));
  for (const std::string& m : merges) {
    const size_t sp = m.find(' ');
    spec.pieces.push_back(m.substr(0, sp) + m.substr(sp + 1));
  }
  spec.merges = merges;
  spec.types.assign(spec.pieces.size(), 1);
  for (const char* special : {"<|endoftext|>", "<|im_start|>"}) {
    spec.pieces.push_back(special);
    spec.types.push_back(3);
  }
  spec.pieces.push_back("<tool>");
  spec.types.push_back(4);
  spec.bos = spec.eos = static_cast<int32_t>(256 + merges.size());
  return spec;
}

const std::vector<std::string> kHelloMerges = {
    "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġ Ġ"};

TEST(ByteLevelBpe, AppliesMergesInRankOrder) {
  auto tok = make_tokenizer(byte_vocab(kHelloMerges));
  const int32_t hello = 259, world = 264, endoftext = 266, im_start = 267, tool = 268;
  ASSERT_EQ(tok->token(world), "Ġworld");
  EXPECT_EQ(tok->encode("hello world", false, false), (std::vector<int32_t>{hello, world}));
  // Merges never cross pre-tokenizer words: the first space stands alone, not "ĠĠ".
  EXPECT_EQ(tok->encode("hello  world", false, false), (std::vector<int32_t>{hello, ' ', world}));
  // Without the leading space "world" only reaches w + or + ld.
  EXPECT_EQ(tok->encode("world", false, true), (std::vector<int32_t>{'w', 261, 263, endoftext}));
  EXPECT_EQ(tok->encode("hello<|im_start|>hello<tool>", true, false),
            (std::vector<int32_t>{endoftext, hello, im_start, hello, tool}));
  EXPECT_EQ(tok->decode({endoftext, hello, im_start, world, tool}), "hello world<tool>");
  EXPECT_EQ(tok->decode_piece(hello, world), " world");

  // Rank decides between overlapping pairs.
  EXPECT_EQ(make_tokenizer(byte_vocab({"a b", "b c"}))->encode("abc", false, false),
            (std::vector<int32_t>{256, 'c'}));
  EXPECT_EQ(make_tokenizer(byte_vocab({"b c", "a b"}))->encode("abc", false, false),
            (std::vector<int32_t>{'a', 256}));
}

TEST(ByteLevelBpe, SpecialTokensAreTextWhenNotParsed) {
  TokenizerSpec spec = byte_vocab(kHelloMerges);
  spec.parse_special = false;
  auto tok = make_tokenizer(spec);
  const auto ids = tok->encode("<|im_start|>", false, false);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok->decode(ids), "<|im_start|>");
}

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  PreTokenizer p(pretokenizer_patterns(pre));
  std::vector<std::string> out;
  for (std::string_view v : p.split(text)) out.emplace_back(v);
  return out;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, SplitsLikeGpt2) {
  EXPECT_EQ(split("gpt2", "I'm  here 123abc\n"),
            (Words{"I", "'m", " ", " here", " 123", "abc", "\n"}));
  EXPECT_EQ(split("default", "don't you've?! ok"), (Words{"don", "'t", " you", "'ve", "?!", " ok"}));
  EXPECT_EQ(split("gpt2", "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"),
            (Words{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_TRUE(split("gpt2", "").empty());
}

TEST(PreTokenizer, SplitsDigitsIndividuallyForSmolLM) {
  EXPECT_EQ(split("smollm", "abc 123"), (Words{"abc", " ", "1", "2", "3"}));
  EXPECT_EQ(split("gpt2", "abc 123"), (Words{"abc", " 123"}));
  EXPECT_EQ(split("smollm", "x2y's"), (Words{"x", "2", "y", "'s"}));
}

TEST(PreTokenizer, SplitsLikeLlama3) {
  EXPECT_EQ(split("llama3", "12345 HELLO'S"), (Words{"123", "45", " HELLO", "'S"}));
  EXPECT_EQ(split("llama-bpe", "a\n\nb"), (Words{"a", "\n\n", "b"}));
}

TEST(PreTokenizer, CoversArbitraryBytes) {
  std::mt19937 rng(7);
  for (const char* pre : {"gpt2", "llama3", "smollm", "qwen2"}) {
    for (int trial = 0; trial < 100; ++trial) {
      std::string bytes(static_cast<size_t>(rng() % 40), '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      std::string joined;
      for (const std::string& w : split(pre, bytes)) joined += w;
      ASSERT_EQ(joined, bytes) << pre;
    }
  }
  EXPECT_THROW(pretokenizer_patterns("no-such-pre"), Error);
  EXPECT_THROW(PreTokenizer({"(unclosed"}), Error);
}

TEST(ByteLevelBpe, RoundTripsExactly) {
  for (const char* pre : {"gpt2", "smollm", "llama3"}) {
    TokenizerSpec spec = byte_vocab(kHelloMerges, pre);
    spec.parse_special = false;
    auto tok = make_tokenizer(spec);
    std::mt19937 rng(42);
    for (int trial = 0; trial < 200; ++trial) {
      const std::string s = test::random_utf8(rng, 40);
      ASSERT_EQ(tok->decode(tok->encode(s, true, true)), s) << pre << " trial " << trial;
    }
    for (int trial = 0; trial < 100; ++trial) {  // not even valid UTF-8
      std::string bytes(static_cast<size_t>(rng() % 40), '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      ASSERT_EQ(tok->decode(tok->encode(bytes, false, false)), bytes) << pre;
    }
  }
}

TEST(ByteLevelBpe, RejectsMergesOutsideTheVocabulary) {
  TokenizerSpec spec = byte_vocab({"a b"});
  spec.merges.push_back("a c");  // "ac" is no piece
  EXPECT_THROW(make_tokenizer(spec), Error);
  spec = byte_vocab({"a b"});
  spec.merges.push_back("abc");  // no separator
  EXPECT_THROW(make_tokenizer(spec), Error);
}

// tokenizer.json in HF's layout for the hand-made vocabulary.
nlohmann::json hf_json(bool pair_merges) {
  const TokenizerSpec spec = byte_vocab(kHelloMerges);
  nlohmann::json vocab = nlohmann::json::object();
  for (int32_t id = 0; id < 266; ++id) vocab[spec.pieces[id]] = id;
  nlohmann::json merges = nlohmann::json::array();
  for (const std::string& m : kHelloMerges) {
    const size_t sp = m.find(' ');
    if (pair_merges) {
      merges.push_back({m.substr(0, sp), m.substr(sp + 1)});
    } else {
      merges.push_back(m);
    }
  }
  return {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 266}, {"content", "<|endoftext|>"}, {"special", true}},
        {{"id", 267}, {"content", "<|im_start|>"}, {"special", true}},
        {{"id", 268}, {"content", "<tool>"}, {"special", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Digits"}, {"individual_digits", true}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"byte_fallback", false}}}};
}

TEST(HfTokenizerJson, LoadsSmolLMStyleFile) {
  const auto dir = test::temp_dir("hfjson");
  for (bool pair_merges : {false, true}) {
    const std::string path = (dir / "tokenizer.json").string();
    test::write_file(path, hf_json(pair_merges).dump());
    auto tok = load_hf_tokenizer_json(path);
    EXPECT_EQ(tok->vocab_size(), 269);
    EXPECT_EQ(tok->bos_id(), 266);  // <|endoftext|> without a tokenizer_config.json
    EXPECT_EQ(tok->encode("hello world 42", false, false),
              (std::vector<int32_t>{259, 264, ' ', '4', '2'}));
    EXPECT_EQ(tok->encode("<|im_start|>hello", false, false), (std::vector<int32_t>{267, 259}));
    EXPECT_NE(tok->describe().find(path), std::string::npos);
  }
  test::write_file((dir / "tokenizer_config.json").string(),
                   R"({"bos_token": "<|im_start|>", "eos_token": {"content": "<|endoftext|>"},
                       "add_bos_token": true})");
  auto tok = load_hf_tokenizer_json((dir / "tokenizer.json").string());
  EXPECT_EQ(tok->bos_id(), 267);
  EXPECT_EQ(tok->eos_id(), 266);
  EXPECT_TRUE(tok->adds_bos());
  std::filesystem::remove_all(dir);
}

TEST(HfTokenizerJson, ReportsBadFiles) {
  const auto dir = test::temp_dir("hfjson-bad");
  const std::string path = (dir / "tokenizer.json").string();
  test::write_file(path, "{\"model\": {\"vocab\": ");
  test::expect_error_naming([&] { load_hf_tokenizer_json(path); }, path, "not valid JSON");

  nlohmann::json j = hf_json(false);
  j["model"]["type"] = "WordPiece";
  test::write_file(path, j.dump());
  test::expect_error_naming([&] { load_hf_tokenizer_json(path); }, path, "WordPiece");

  j = hf_json(false);
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  test::write_file(path, j.dump());
  test::expect_error_naming([&] { load_hf_tokenizer_json(path); }, path, "Metaspace");

  j = hf_json(false);
  j["model"].erase("merges");
  test::write_file(path, j.dump());
  test::expect_error_naming([&] { load_hf_tokenizer_json(path); }, path, "merges");

  const std::string config = (dir / "tokenizer_config.json").string();
  test::write_file(path, hf_json(false).dump());
  test::write_file(config, R"({"eos_token": "<|no_such|>"})");
  test::expect_error_naming([&] { load_hf_tokenizer_json(path); }, config, "<|no_such|>");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zeroth
