// BatchScorer and evaluate(): one batched run over many adapter variants equals
// separate runs; classification losses equal column/token log-probs computed by
// hand; the stories260K golden NLL; SST-2 end to end on stories260K.
#include <cstdint>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "core/error.h"
#include "models/loaders/llama_loader.h"
#include "models/tasks/language_model.h"
#include "models/tasks/task.h"
#include "tests/models/task_test_util.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

constexpr int64_t kVocab = 300;

// Variant v runs with adapters[v]: a stand-in for the trainer's ±ε perturbations.
class VariantAdapters : public AdapterSet {
 public:
  explicit VariantAdapters(std::vector<const LoraAdapters*> v) : v_(std::move(v)) {}
  bool has(int l, Proj p) const override { return v_[0]->has(l, p); }
  LoraFactors get(int l, Proj p, int variant, float* s) const override { return v_[size_t(variant)]->get(l, p, 0, s); }
  size_t scratch_floats(int, Proj) const override { return 0; }

 private:
  std::vector<const LoraAdapters*> v_;
};

LoraAdapters random_adapters(const LlamaConfig& cfg, uint32_t seed) {
  LoraConfig lc;
  lc.rank = 4;
  lc.targets = {Proj::Q, Proj::V, Proj::Down};
  LoraAdapters a(lc, int(cfg.n_layers), test::task_proj_dims(cfg));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.2f);
  for (int l = 0; l < int(cfg.n_layers); ++l)
    for (Proj p : lc.targets) {
      for (auto& x : a.A(l, p)) x = nd(rng);
      for (auto& x : a.B(l, p)) x = nd(rng);
    }
  return a;
}

std::vector<Example> random_examples(std::mt19937& rng, int n, bool classification) {
  std::uniform_int_distribution<int32_t> tok(3, int32_t(kVocab) - 1), len(3, 12);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.tokens.push_back(1);  // BOS
    for (int k = len(rng); k > 0; --k) e.tokens.push_back(tok(rng));
    e.loss_begin = classification ? int64_t(e.tokens.size()) - 1 : i % 3;  // some completion-like
    e.label = classification ? i % 2 : -1;
    out.push_back(std::move(e));
  }
  return out;
}

std::unique_ptr<Task> classification_task(std::vector<Example> ex, std::vector<std::vector<int32_t>> words) {
  TaskConfig cfg;
  cfg.type = "classification";
  cfg.label_words = {{"0", "a"}, {"1", "b"}};
  return make_task_from_examples(cfg, {}, {}, std::move(ex), std::move(words));
}

std::unique_ptr<Task> lm_task(std::vector<Example> ex) {
  TaskConfig cfg;
  return make_task_from_examples(cfg, {}, {}, std::move(ex));
}

// Three variants in one batch give the losses of three separate runs.
void expect_batched_equals_separate(const Task& task) {
  const auto cfg = test::task_llama_config(kVocab);
  LlamaModel model(make_random_llama(cfg, 21), 2);
  const LoraAdapters a = random_adapters(cfg, 1), b = random_adapters(cfg, 2), c = random_adapters(cfg, 3);
  const VariantAdapters all({&a, &b, &c});
  const auto& ex = task.examples(Split::Test);
  BatchScorer batched(task);
  for (int32_t v = 0; v < 3; ++v)
    for (const auto& e : ex) batched.add(e, v);
  const auto r = batched.run(model, &all);
  ASSERT_EQ(r.loss.size(), 3u);
  EXPECT_EQ(r.tokens, batched.rows());
  const LoraAdapters* each[] = {&a, &b, &c};
  for (int32_t v = 0; v < 3; ++v) {
    BatchScorer alone(task);
    for (const auto& e : ex) alone.add(e, 0);
    const auto s = alone.run(model, each[v]);
    EXPECT_NEAR(r.loss[size_t(v)], s.loss[0], 1e-5 * std::abs(s.loss[0])) << "variant " << v;
    for (size_t i = 0; i < ex.size(); ++i) {
      EXPECT_NEAR(r.example_loss[size_t(v) * ex.size() + i], s.example_loss[i], 1e-4);
      if (task.is_classification()) {
        EXPECT_EQ(r.predicted[size_t(v) * ex.size() + i], s.predicted[i]);
      }
    }
  }
  // The adapters matter, so the comparison above is not between equal numbers.
  EXPECT_GT(std::abs(r.loss[0] - r.loss[1]), 1e-4);
  EXPECT_GT(std::abs(r.loss[1] - r.loss[2]), 1e-4);
}

TEST(BatchScorer, BatchedVariantsEqualSeparateRunsLm) {
  std::mt19937 rng(5);
  expect_batched_equals_separate(*lm_task(random_examples(rng, 6, false)));
}

TEST(BatchScorer, BatchedVariantsEqualSeparateRunsClassification) {
  std::mt19937 rng(6);
  expect_batched_equals_separate(*classification_task(random_examples(rng, 6, true), {{7}, {9}}));
  expect_batched_equals_separate(*classification_task(random_examples(rng, 6, true), {{7, 8, 10}, {9}}));
}

TEST(BatchScorer, LmLossIsTokenWeighted) {
  const auto cfg = test::task_llama_config(kVocab);
  LlamaModel model(make_random_llama(cfg, 4), 1);
  std::mt19937 rng(8);
  const auto task = lm_task(random_examples(rng, 5, false));
  double total = 0;
  int64_t count = 0;
  for (const auto& e : task->examples(Split::Test)) {
    TokenBatch b;
    b.add(e.tokens);
    const auto h = model.forward_hidden(b);
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    for (int64_t t = e.loss_begin; t + 1 < int64_t(e.tokens.size()); ++t) {
      rows.push_back(t);
      targets.push_back(e.tokens[size_t(t + 1)]);
    }
    for (float lp : model.token_logprobs(h, rows, targets)) total -= lp;
    count += int64_t(rows.size());
  }
  const EvalResult r = evaluate(model, *task, Split::Test, 20);  // several batches
  EXPECT_EQ(r.tokens, count);
  EXPECT_EQ(r.examples, 5);
  EXPECT_NEAR(r.loss, total / double(count), 1e-5);
  EXPECT_LT(r.accuracy, 0);  // not a classification task
}

// Classification loss and predictions, recomputed from the model's log-probs.
void expect_classification_by_hand(const std::vector<std::vector<int32_t>>& words) {
  const auto cfg = test::task_llama_config(kVocab);
  LlamaModel model(make_random_llama(cfg, 12), 1);
  std::mt19937 rng(31);
  const auto task = classification_task(random_examples(rng, 10, true), words);
  double loss = 0;
  int correct = 0;
  std::vector<int32_t> predicted;
  for (const auto& e : task->examples(Split::Test)) {
    std::vector<double> ll;
    for (const auto& w : words) {
      TokenBatch b;
      std::vector<int32_t> seq = e.tokens;
      seq.insert(seq.end(), w.begin(), w.end());
      b.add(seq);
      const auto h = model.forward_hidden(b);
      double sum = 0;
      for (size_t j = 0; j < w.size(); ++j) {
        const int64_t row = int64_t(e.tokens.size() + j) - 1;
        // The first word token is read through column_logprobs, the rest
        // through token_logprobs: two routes to the same softmax.
        sum += j == 0 ? model.column_logprobs(h, {row}, {w[0]})[0] : model.token_logprobs(h, {row}, {w[j]})[0];
      }
      ll.push_back(sum);
    }
    double z = 0;
    for (double x : ll) z += std::exp(x);
    loss += std::log(z) - ll[size_t(e.label)];
    const int32_t p = ll[0] / double(words[0].size()) >= ll[1] / double(words[1].size()) ? 0 : 1;
    predicted.push_back(p);
    correct += p == e.label;
  }
  BatchScorer scorer(*task);
  for (const auto& e : task->examples(Split::Test)) scorer.add(e, 0);
  const auto r = scorer.run(model);
  EXPECT_EQ(r.predicted, predicted);
  EXPECT_NEAR(r.loss[0], loss / 10.0, 1e-5);
  const EvalResult ev = evaluate(model, *task, Split::Test, 30);
  EXPECT_EQ(ev.examples, 10);
  EXPECT_NEAR(ev.loss, loss / 10.0, 1e-5);
  EXPECT_DOUBLE_EQ(ev.accuracy, correct / 10.0);
}

TEST(BatchScorer, ClassificationMatchesHandComputedLogprobs) {
  expect_classification_by_hand({{7}, {9}});          // single-token: one sequence per example
  expect_classification_by_hand({{7, 20, 33}, {9}});  // multi-token: one per (example, word)
}

TEST(BatchScorer, RejectsBadInput) {
  std::mt19937 rng(2);
  const auto task = lm_task(random_examples(rng, 2, false));
  BatchScorer s(*task);
  s.add(task->examples(Split::Test)[0], 1);
  EXPECT_THROW(s.add(task->examples(Split::Test)[1], 0), Error);  // variants must not decrease
  Example too_long;
  too_long.tokens.assign(65, 5);
  const auto cfg = test::task_llama_config(kVocab);
  LlamaModel model(make_random_llama(cfg, 1), 1);
  const auto long_task = lm_task({too_long});
  BatchScorer l(*long_task);
  l.add(long_task->examples(Split::Test)[0], 0);
  try {
    l.run(model);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("task.max_length"), std::string::npos) << e.what();
  }
}

TEST(Stories260K, LmTaskMatchesTheEvalGolden) {
  ZEROTH_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/models/stories260K/";
  LlamaModel model(load_llama_weights(dir + "stories260K.bin"), 2);
  auto tok = load_llama2c_tokenizer(dir + "tok512.bin", 512);
  TaskConfig cfg;
  cfg.train_path = shared + "/data/tinystories/sample.txt";
  cfg.max_length = 512;
  const auto task = make_task(cfg, *tok);
  const EvalResult r = evaluate(model, *task, Split::Train, 4096);
  EXPECT_EQ(r.tokens, 1804);  // `zeroth eval`'s golden: 1804 tokens, mean NLL 1.2664
  EXPECT_EQ(fmt::format("{:.4f}", r.loss), "1.2664");
  std::vector<std::vector<int32_t>> docs;
  for (const auto& e : task->examples(Split::Train)) docs.push_back(e.tokens);
  const NllResult n = evaluate_nll(model, docs, 1000);
  EXPECT_EQ(n.tokens, 1804);
  EXPECT_NEAR(n.mean(), r.loss, 1e-5);
}

TEST(Stories260K, Sst2RunsEndToEnd) {
  ZEROTH_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/models/stories260K/";
  LlamaModel model(load_llama_weights(dir + "stories260K.bin"), 2);
  auto tok = load_llama2c_tokenizer(dir + "tok512.bin", 512);
  TaskConfig cfg = {};
  cfg.type = "classification";
  cfg.train_path = shared + "/data/sst2/train.tsv";
  cfg.dev_path = shared + "/data/sst2/dev.tsv";  // GLUE's dev serves as test; dev is carved from train
  cfg.template_text = "{sentence} It was";
  cfg.label_words = {{"0", " terrible"}, {"1", " great"}};
  cfg.k_shot = 16;
  cfg.dev_size = 32;
  cfg.data_seed = 42;
  const auto t0 = std::chrono::steady_clock::now();
  const auto task = make_task(cfg, *tok);
  EXPECT_EQ(task->examples(Split::Train).size(), 32u);
  EXPECT_EQ(task->examples(Split::Dev).size(), 32u);
  EXPECT_EQ(task->examples(Split::Test).size(), 872u);
  // The 872 test examples (124k rows with " terrible" 5 tokens) take far
  // longer; train and dev show the path end to end.
  for (Split s : {Split::Train, Split::Dev}) {
    const EvalResult r = evaluate(model, *task, s, 4096);
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_GE(r.accuracy, 0.0);
    EXPECT_LE(r.accuracy, 1.0);
    // Measured, not asserted: stories260K is no classifier, so near chance.
    std::printf("[ sst2 ] %s: %lld examples, loss %.4f, accuracy %.4f, %lld rows\n", split_name(s),
                static_cast<long long>(r.examples), r.loss, r.accuracy, static_cast<long long>(r.rows));
  }
  std::printf("[ sst2 ] %s; %.2f s\n", task->describe().c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
}  // namespace zeroth
