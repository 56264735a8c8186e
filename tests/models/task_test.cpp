// make_task: lm documents, completion boundaries, classification prompts and
// label words (tokenized as they follow the prompt, for both tokenizer kinds),
// config errors naming task.* keys and data errors naming file:line.
#include "models/tasks/task.h"

#include <cstdint>
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "models/tasks/prompt.h"
#include "tests/models/task_test_util.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TaskConfig sentiment_config(const std::string& train) {
  TaskConfig cfg;
  cfg.type = "classification";
  cfg.train_path = train;
  cfg.template_text = "{sentence} It was";
  cfg.label_words = {{"0", " terrible"}, {"1", " great"}};
  return cfg;
}

const char* kSentiment =
    "sentence\tlabel\n"
    "the movie was good \t1\n"
    "bad bad movie\t0\n"
    "It was the good movie\t1\n"
    "terrible\t0\n";

// The label word's tokens are exactly what follows the prompt when prompt and
// word are encoded together, i.e. what the model sees in a real sequence.
void expect_label_words_follow_prompts(const Tokenizer& tok, const std::string& space) {
  const auto dir = test::temp_dir("label-words");
  test::write_file(dir / "t.tsv", kSentiment);
  const auto task = make_task(sentiment_config(dir / "t.tsv"), tok);
  const auto& words = task->label_words();
  ASSERT_EQ(words.size(), 2u);
  // Each word is its one whole-word token, not a dummy space plus the word.
  EXPECT_EQ(words[0], (std::vector<int32_t>{tok.find(space + "terrible").value()}));
  EXPECT_EQ(words[1], (std::vector<int32_t>{tok.find(space + "great").value()}));
  const std::vector<std::string> prompts = {"the movie was good It was", "bad bad movie It was", "terrible It was"};
  for (const auto& p : prompts) {
    const auto prompt = tok.encode(p, true, false);
    for (const auto& [w, ids] : {std::pair{" terrible", words[0]}, {" great", words[1]}}) {
      auto expect = prompt;
      expect.insert(expect.end(), ids.begin(), ids.end());
      EXPECT_EQ(tok.encode(p + w, true, false), expect) << tok.describe() << ": \"" << p << w << "\"";
    }
  }
  // The examples are the filled prompts (values trimmed), BOS first.
  const auto& train = task->examples(Split::Train);
  ASSERT_EQ(train.size(), 4u);
  int64_t seen = 0;
  for (const auto& e : train) {
    EXPECT_EQ(e.tokens.front(), tok.bos_id());
    EXPECT_EQ(e.loss_begin, int64_t(e.tokens.size()) - 1);
    const std::string text = tok.decode(e.tokens);
    if (text == "the movie was good It was") {
      EXPECT_EQ(e.label, 1);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 1);
  std::filesystem::remove_all(dir);
}

TEST(ClassificationTask, LabelWordsFollowThePromptSentencePiece) {
  expect_label_words_follow_prompts(*make_tokenizer(test::task_sentencepiece_spec()), "\xE2\x96\x81");
}

TEST(ClassificationTask, LabelWordsFollowThePromptByteLevel) {
  expect_label_words_follow_prompts(*make_tokenizer(test::task_byte_level_spec()), test::gpt2_byte_char(' '));
}

TEST(ClassificationTask, LabelWordsFollowThePromptTok512) {
  ZEROTH_REQUIRE_SHARED(shared);
  auto tok = load_llama2c_tokenizer(shared + "/models/stories260K/tok512.bin", 512);
  // On its own " great" would gain SentencePiece's dummy space.
  EXPECT_NE(tok->encode(" great", false, false), continuation_tokens(*tok, " It was", " great", "k"));
  const auto dir = test::temp_dir("label-words-512");
  test::write_file(dir / "t.tsv", kSentiment);
  const auto task = make_task(sentiment_config(dir / "t.tsv"), *tok);
  for (const auto& e : task->examples(Split::Train)) {
    for (const auto& [w, ids] : {std::pair{" terrible", task->label_words()[0]}, {" great", task->label_words()[1]}}) {
      auto expect = e.tokens;
      expect.insert(expect.end(), ids.begin(), ids.end());
      EXPECT_EQ(tok->encode(tok->decode(e.tokens) + w, true, false), expect);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ClassificationTask, CutsPromptsFromTheLeftAndReportsBadRows) {
  auto tok = make_tokenizer(test::task_sentencepiece_spec());
  const auto dir = test::temp_dir("cls-rows");
  test::write_file(dir / "t.tsv", kSentiment);
  auto cfg = sentiment_config(dir / "t.tsv");
  cfg.max_length = 5;  // BOS + 3 prompt tokens + 1 label token
  const auto task = make_task(cfg, *tok);
  for (const auto& e : task->examples(Split::Train)) {
    EXPECT_LE(e.tokens.size(), 4u);
    EXPECT_EQ(e.tokens[0], tok->bos_id());
    EXPECT_EQ(tok->decode(e.tokens).substr(tok->decode(e.tokens).size() - 6), "It was");  // the end survives
  }
  test::write_file(dir / "bad.tsv", "sentence\tlabel\nfine\t1\nodd\t2\nok\t0\n");
  cfg = sentiment_config(dir / "bad.tsv");
  EXPECT_NE(error_of([&] { make_task(cfg, *tok); }).find("bad.tsv:3: label \"2\" is not one of task.label_words"),
            std::string::npos);
  cfg.skip_bad_rows = true;
  const auto skipped = make_task(cfg, *tok);
  EXPECT_EQ(skipped->skipped_rows(), 1);
  EXPECT_EQ(skipped->examples(Split::Train).size(), 2u);
  test::write_file(dir / "j.jsonl", "{\"sentence\": \"good\", \"label\": 1}\n{\"text\": \"x\", \"label\": 0}\n");
  cfg = sentiment_config(dir / "j.jsonl");
  EXPECT_NE(error_of([&] { make_task(cfg, *tok); }).find("j.jsonl:2: no field \"sentence\""), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ClassificationTask, KShotSplitsFollowTheSeed) {
  auto tok = make_tokenizer(test::task_byte_level_spec());
  const auto dir = test::temp_dir("cls-kshot");
  std::string rows = "sentence,label\n";
  for (int i = 0; i < 60; ++i) rows += fmt::format("\"movie {}, the {}\",{}\n", i, i % 3 ? "good" : "bad", i % 3 ? 1 : 0);
  test::write_file(dir / "t.csv", rows);
  auto cfg = sentiment_config(dir / "t.csv");
  cfg.k_shot = 4;
  cfg.data_seed = 5;
  const auto a = make_task(cfg, *tok), b = make_task(cfg, *tok);
  for (Split s : {Split::Train, Split::Dev}) {
    ASSERT_EQ(a->examples(s).size(), 8u) << split_name(s);
    int ones = 0;
    for (size_t i = 0; i < 8; ++i) {
      EXPECT_EQ(a->examples(s)[i].tokens, b->examples(s)[i].tokens);
      ones += a->examples(s)[i].label;
    }
    EXPECT_EQ(ones, 4);
  }
  EXPECT_NE(a->describe().find("train 8, dev 8, test 0"), std::string::npos) << a->describe();
  std::filesystem::remove_all(dir);
}

TEST(LmTask, DocumentsAreBosPrefixedAndCut) {
  auto tok = make_tokenizer(test::task_sentencepiece_spec());
  const auto dir = test::temp_dir("lm-task");
  test::write_file(dir / "d.txt", "the good movie<|endoftext|>bad<|endoftext|>It was the movie , the good movie");
  TaskConfig cfg;
  cfg.train_path = dir / "d.txt";
  cfg.max_length = 4;
  const auto task = make_task(cfg, *tok);
  const auto& train = task->examples(Split::Train);
  ASSERT_EQ(train.size(), 3u);  // "bad" is BOS + one token: still predicts one
  for (const auto& e : train) {
    EXPECT_EQ(e.tokens[0], tok->bos_id());
    EXPECT_LE(e.tokens.size(), 4u);
    EXPECT_EQ(e.loss_begin, 0);
  }
}

TEST(CompletionTask, LossStartsAtTheCompletion) {
  for (const auto& spec : {test::task_sentencepiece_spec(), test::task_byte_level_spec()}) {
    auto tok = make_tokenizer(spec);
    const auto dir = test::temp_dir("completion-task");
    test::write_file(dir / "c.jsonl",
                     "{\"prompt\": \"the movie was\", \"completion\": \" good\"}\n"
                     "{\"prompt\": \"It was the good bad movie\", \"completion\": \" terrible movie\"}\n");
    TaskConfig cfg;
    cfg.type = "completion";
    cfg.train_path = dir / "c.jsonl";
    auto task = make_task(cfg, *tok);
    ASSERT_EQ(task->examples(Split::Train).size(), 2u);
    for (const auto& e : task->examples(Split::Train)) {
      // The completion is what follows row loss_begin; the prompt is exact.
      const std::vector<int32_t> prompt(e.tokens.begin(), e.tokens.begin() + e.loss_begin + 1);
      const std::vector<int32_t> completion(e.tokens.begin() + e.loss_begin + 1, e.tokens.end());
      const std::string p = tok->decode(prompt), c = tok->decode(completion);
      EXPECT_EQ(prompt, tok->encode(p, true, false)) << spec.source;
      EXPECT_TRUE(c == " good" || c == " terrible movie" || c == "good" || c == "terrible movie") << c;
      EXPECT_EQ(tok->encode(p + (c[0] == ' ' ? c : " " + c), true, false), e.tokens) << spec.source;
    }
    cfg.max_length = 4;  // BOS + 1 prompt token + 2 completion tokens
    task = make_task(cfg, *tok);
    // Train keeps every row, in the data_seed shuffle's order: find the long one.
    const auto& both = task->examples(Split::Train);
    const Example& cut = both[0].tokens.size() - size_t(both[0].loss_begin) == 3 ? both[0] : both[1];
    EXPECT_EQ(cut.tokens.size(), 4u);
    EXPECT_EQ(cut.loss_begin, 1);
    EXPECT_EQ(tok->decode({cut.tokens[1]}), spec.model == "gpt2" ? " movie" : "movie");  // the prompt's last token
    std::filesystem::remove_all(dir);
  }
}

TEST(TaskConfig, ErrorsNameTheKey) {
  TaskConfig cfg;
  cfg.train_path = "x.txt";
  cfg.type = "regression";
  EXPECT_NE(error_of([&] { cfg.validate(); }).find("task.type"), std::string::npos);
  cfg = sentiment_config("x.tsv");
  cfg.k_shot = 4;
  cfg.train_size = 10;
  EXPECT_NE(error_of([&] { cfg.validate(); }).find("task.k_shot and task.train_size"), std::string::npos);
  cfg = sentiment_config("x.tsv");
  cfg.label_words = {{"1", " great"}};
  EXPECT_NE(error_of([&] { cfg.validate(); }).find("task.label_words"), std::string::npos);
  cfg = TaskConfig{};
  cfg.k_shot = 2;
  cfg.train_path = "x.txt";
  EXPECT_NE(error_of([&] { cfg.validate(); }).find("task.k_shot"), std::string::npos);
  EXPECT_NE(error_of([] { TaskConfig{}.validate(); }).find("task.train "), std::string::npos);
  EXPECT_NE(error_of([] { PromptTemplate("{sentence", "task.template"); }).find("task.template"),
            std::string::npos);
  const PromptTemplate t("Q: {q} {{literal}} {a}!", "k");
  EXPECT_EQ(t.fields(), (std::vector<std::string>{"q", "a"}));
  Record r;
  r.fields = {{"q", " why? "}, {"a", "because"}};
  EXPECT_EQ(t.fill(r, "f:1"), "Q: why? {literal} because!");
  EXPECT_EQ(t.tail(), "!");
  r.fields.pop_back();
  EXPECT_NE(error_of([&] { t.fill(r, "f:7"); }).find("f:7: no field \"a\""), std::string::npos);
}

}  // namespace
}  // namespace zeroth
