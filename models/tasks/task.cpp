// make_task: read the data files, draw the splits (sampling.h), tokenize the
// chosen rows. Only the rows a split takes are tokenized, so a 16-shot task
// over SST-2's 67k training rows tokenizes a few dozen sentences.
#include "models/tasks/task.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

#include "core/error.h"
#include "models/tasks/prompt.h"
#include "models/tasks/records.h"
#include "models/tasks/sampling.h"
#include "models/tasks/text_data.h"

namespace zeroth {
namespace {

// What make_task builds: plain storage behind the Task interface.
class StoredTask : public Task {
 public:
  StoredTask(TaskConfig cfg, std::array<std::vector<Example>, 3> splits, std::vector<std::vector<int32_t>> words,
             int64_t skipped)
      : cfg_(std::move(cfg)), splits_(std::move(splits)), words_(std::move(words)), skipped_(skipped) {}
  const TaskConfig& config() const override { return cfg_; }
  const std::vector<Example>& examples(Split s) const override { return splits_[size_t(s)]; }
  const std::vector<std::vector<int32_t>>& label_words() const override { return words_; }
  int64_t skipped_rows() const override { return skipped_; }
  std::string describe() const override {
    std::string s = fmt::format("{}: train {}, dev {}, test {} examples", cfg_.type, splits_[0].size(),
                                splits_[1].size(), splits_[2].size());
    size_t i = 0;
    for (const auto& [value, word] : cfg_.label_words) {
      s += fmt::format("{} {}=\"{}\" {}", i == 0 ? "; label words" : ",", value, word,
                       i < words_.size() ? fmt::format("{}", fmt::join(words_[i], " ")) : "");
      ++i;
    }
    if (skipped_) s += fmt::format("; {} bad rows skipped", skipped_);
    return s;
  }

 private:
  TaskConfig cfg_;
  std::array<std::vector<Example>, 3> splits_;
  std::vector<std::vector<int32_t>> words_;
  int64_t skipped_;
};

// One data file per split pool (train_path, dev_path, test_path); absent = nullopt.
template <typename T, typename Read>
std::array<std::optional<T>, 3> read_pools(const TaskConfig& cfg, Read&& read) {
  std::array<std::optional<T>, 3> pools;
  const std::array<const std::string*, 3> paths = {&cfg.train_path, &cfg.dev_path, &cfg.test_path};
  for (size_t p = 0; p < 3; ++p)
    if (!paths[p]->empty()) pools[p] = read(*paths[p]);
  return pools;
}

SamplingPlan plan_of(const TaskConfig& cfg) {
  SamplingPlan plan;
  plan.k_shot = cfg.k_shot;
  plan.train_size = cfg.train_size;
  plan.dev_size = cfg.dev_size;
  plan.test_size = cfg.test_size;
  plan.data_seed = cfg.data_seed;
  plan.classes = int32_t(cfg.label_words.size());
  return plan;
}

int64_t pool_size(const auto& pool, auto&& size) { return pool ? int64_t(size(*pool)) : -1; }

std::vector<int32_t> bos_of(const Tokenizer& tok) {
  return tok.bos_id() >= 0 ? std::vector<int32_t>{tok.bos_id()} : std::vector<int32_t>{};
}

// ---- lm: documents, BOS-prefixed, cut at max_length from the right ----
std::unique_ptr<Task> make_lm_task(const TaskConfig& cfg, const Tokenizer& tok) {
  TextDataOptions opt;
  opt.separator = cfg.separator;
  opt.text_field = cfg.text_field;
  opt.skip_bad_rows = cfg.skip_bad_rows;
  auto pools = read_pools<TextData>(cfg, [&](const std::string& p) { return read_text_documents(p, opt); });
  auto docs = [](const TextData& d) { return d.documents.size(); };
  const DrawnSplits d = draw_splits(plan_of(cfg), {}, pool_size(pools[0], docs), pool_size(pools[1], docs),
                                    pool_size(pools[2], docs));
  std::array<std::vector<Example>, 3> splits;
  const std::array<const SplitSource*, 3> sources = {&d.train, &d.dev, &d.test};
  for (size_t s = 0; s < 3; ++s) {
    for (int64_t row : sources[s]->rows) {
      Example e;
      e.tokens = tok.encode(pools[size_t(sources[s]->pool)]->documents[size_t(row)], tok.bos_id() >= 0, false);
      if (int64_t(e.tokens.size()) > cfg.max_length) e.tokens.resize(size_t(cfg.max_length));
      if (e.tokens.size() >= 2) splits[s].push_back(std::move(e));  // one token predicts nothing
    }
  }
  int64_t skipped = 0;
  for (const auto& p : pools) skipped += p ? p->skipped_rows : 0;
  return std::make_unique<StoredTask>(cfg, std::move(splits), std::vector<std::vector<int32_t>>{}, skipped);
}

// ---- completion: BOS + prompt + completion, loss on the completion ----
Example completion_example(const TaskConfig& cfg, const Tokenizer& tok, const std::string& prompt,
                           const std::string& completion) {
  const std::vector<int32_t> bos = bos_of(tok);
  std::vector<int32_t> p = tok.encode(prompt, false, false);
  // The completion's tokens as they follow the prompt in one text when that
  // splits cleanly (no SentencePiece dummy space, no merge across the
  // boundary); otherwise encoded on its own. Either way the prompt's tokens
  // are exactly encode(prompt), so the loss boundary is exact.
  std::vector<int32_t> c = tok.encode(prompt + completion, false, false);
  if (c.size() > p.size() && std::equal(p.begin(), p.end(), c.begin()))
    c.erase(c.begin(), c.begin() + int64_t(p.size()));
  else
    c = tok.encode(completion, false, false);
  const int64_t room = cfg.max_length - int64_t(bos.size());
  if (int64_t(c.size()) > room - 1) c.resize(size_t(std::max<int64_t>(0, room - 1)));  // keep one prompt token
  const int64_t keep = std::min<int64_t>(int64_t(p.size()), room - int64_t(c.size()));
  Example e;
  e.tokens = bos;
  e.tokens.insert(e.tokens.end(), p.end() - keep, p.end());  // cut from the left of the prompt
  e.loss_begin = std::max<int64_t>(0, int64_t(e.tokens.size()) - 1);
  e.tokens.insert(e.tokens.end(), c.begin(), c.end());
  return e;
}

std::unique_ptr<Task> make_completion_task(const TaskConfig& cfg, const Tokenizer& tok) {
  RecordOptions ro;
  ro.required = {cfg.prompt_field, cfg.completion_field};
  ro.skip_bad_rows = cfg.skip_bad_rows;
  auto pools = read_pools<RecordFile>(cfg, [&](const std::string& p) { return read_records(p, ro); });
  auto rows = [](const RecordFile& f) { return f.rows.size(); };
  const DrawnSplits d = draw_splits(plan_of(cfg), {}, pool_size(pools[0], rows), pool_size(pools[1], rows),
                                    pool_size(pools[2], rows));
  std::array<std::vector<Example>, 3> splits;
  const std::array<const SplitSource*, 3> sources = {&d.train, &d.dev, &d.test};
  for (size_t s = 0; s < 3; ++s) {
    for (int64_t row : sources[s]->rows) {
      const Record& r = pools[size_t(sources[s]->pool)]->rows[size_t(row)];
      Example e = completion_example(cfg, tok, *r.find(cfg.prompt_field), *r.find(cfg.completion_field));
      if (int64_t(e.tokens.size()) > e.loss_begin + 1) splits[s].push_back(std::move(e));
    }
  }
  int64_t skipped = 0;
  for (const auto& p : pools) skipped += p ? p->skipped_rows : 0;
  return std::make_unique<StoredTask>(cfg, std::move(splits), std::vector<std::vector<int32_t>>{}, skipped);
}

// ---- classification: template prompt, label words (MeZO) ----
std::unique_ptr<Task> make_classification_task(const TaskConfig& cfg, const Tokenizer& tok) {
  const PromptTemplate tmpl(cfg.template_text, "task.template");
  std::vector<std::vector<int32_t>> words;
  std::vector<std::string> values;
  size_t longest = 0;
  for (const auto& [value, word] : cfg.label_words) {
    words.push_back(continuation_tokens(tok, label_word_context(tmpl), word, "task.label_words." + value));
    values.push_back(value);
    longest = std::max(longest, words.back().size());
  }
  const std::vector<int32_t> bos = bos_of(tok);
  const int64_t prompt_room = cfg.max_length - int64_t(longest) - int64_t(bos.size());
  if (prompt_room < 1)
    fail("task.max_length = {} leaves no room for a prompt before the {}-token label words", cfg.max_length,
         longest);

  RecordOptions ro;
  ro.required = tmpl.fields();
  ro.required.push_back(cfg.label_field);
  ro.skip_bad_rows = cfg.skip_bad_rows;
  int64_t bad_labels = 0;
  struct Pool { RecordFile file; std::vector<int32_t> labels; };
  auto pools = read_pools<Pool>(cfg, [&](const std::string& path) {
    Pool p{read_records(path, ro), {}};
    // A label outside label_words is a bad row too: fail naming it, or drop it.
    std::vector<Record> kept;
    kept.reserve(p.file.rows.size());
    for (Record& r : p.file.rows) {
      const std::string& v = *r.find(cfg.label_field);
      const auto it = std::find(values.begin(), values.end(), v);
      if (it == values.end()) {
        if (!cfg.skip_bad_rows)
          fail("{}:{}: label \"{}\" is not one of task.label_words ({})", path, r.line, v, fmt::join(values, ", "));
        ++bad_labels;
        continue;
      }
      p.labels.push_back(int32_t(it - values.begin()));
      kept.push_back(std::move(r));
    }
    p.file.rows = std::move(kept);
    return p;
  });
  auto rows = [](const Pool& p) { return p.file.rows.size(); };
  const DrawnSplits d = draw_splits(plan_of(cfg), pools[0]->labels, pool_size(pools[0], rows),
                                    pool_size(pools[1], rows), pool_size(pools[2], rows));
  std::array<std::vector<Example>, 3> splits;
  const std::array<const SplitSource*, 3> sources = {&d.train, &d.dev, &d.test};
  for (size_t s = 0; s < 3; ++s) {
    for (int64_t row : sources[s]->rows) {
      const Pool& pool = *pools[size_t(sources[s]->pool)];
      const Record& r = pool.file.rows[size_t(row)];
      const std::vector<int32_t> p = tok.encode(tmpl.fill(r, fmt::format("{}:{}", pool.file.path, r.line)), false,
                                                false);
      const int64_t keep = std::min<int64_t>(int64_t(p.size()), prompt_room);  // cut from the left
      Example e;
      e.tokens = bos;
      e.tokens.insert(e.tokens.end(), p.end() - keep, p.end());
      if (e.tokens.empty()) continue;  // nothing to condition the label word on
      e.loss_begin = int64_t(e.tokens.size()) - 1;
      e.label = pool.labels[size_t(row)];
      splits[s].push_back(std::move(e));
    }
  }
  int64_t skipped = bad_labels;
  for (const auto& p : pools) skipped += p ? p->file.skipped_rows : 0;
  return std::make_unique<StoredTask>(cfg, std::move(splits), std::move(words), skipped);
}

}  // namespace

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Dev: return "dev";
    case Split::Test: return "test";
  }
  return "?";
}

void TaskConfig::validate_settings() const {
  if (type != "lm" && type != "completion" && type != "classification")
    fail("task.type = \"{}\": expected lm, completion or classification", type);
  if (max_length < 2) fail("task.max_length = {}: at least 2 tokens are needed to predict one", max_length);
  for (auto [key, v] : {std::pair{"task.k_shot", k_shot}, {"task.train_size", train_size},
                        {"task.dev_size", dev_size}, {"task.test_size", test_size}})
    if (v < 0) fail("{} = {} must not be negative", key, v);
  if (k_shot > 0 && type != "classification") fail("task.k_shot needs task.type classification (it draws per class)");
  if (k_shot > 0 && train_size > 0) fail("task.k_shot and task.train_size both set: choose one");
  if (type == "classification") {
    if (label_words.size() < 2) fail("task.label_words: a classification task needs at least two labels");
    for (const auto& [value, word] : label_words)
      if (word.empty()) fail("task.label_words.{} is empty", value);
    if (template_text.empty()) fail("task.template is empty");
    if (label_field.empty()) fail("task.label_field is empty");
  }
}

void TaskConfig::validate() const {
  validate_settings();
  if (train_path.empty()) fail("task.train is not set");
}

std::unique_ptr<Task> make_task(const TaskConfig& cfg, const Tokenizer& tok) {
  cfg.validate();
  if (cfg.type == "lm") return make_lm_task(cfg, tok);
  if (cfg.type == "completion") return make_completion_task(cfg, tok);
  return make_classification_task(cfg, tok);
}

std::unique_ptr<Task> make_task_from_examples(const TaskConfig& cfg, std::vector<Example> train,
                                              std::vector<Example> dev, std::vector<Example> test,
                                              std::vector<std::vector<int32_t>> label_words) {
  cfg.validate_settings();
  const bool cls = cfg.type == "classification";
  if (cls && label_words.size() != cfg.label_words.size())
    fail("make_task_from_examples: {} label word sequences for {} task.label_words", label_words.size(),
         cfg.label_words.size());
  for (const auto& w : label_words) ZEROTH_CHECK(!w.empty(), "make_task_from_examples: a label word has no tokens");
  for (const auto* split : {&train, &dev, &test})
    for (const Example& e : *split) {
      ZEROTH_CHECK(!e.tokens.empty() && e.loss_begin >= 0 && e.loss_begin < int64_t(e.tokens.size()),
                   "make_task_from_examples: example of {} tokens with loss_begin {}", e.tokens.size(), e.loss_begin);
      ZEROTH_CHECK(!cls || (e.label >= 0 && e.label < int32_t(label_words.size())),
                   "make_task_from_examples: label {} outside the {} label words", e.label, label_words.size());
    }
  return std::make_unique<StoredTask>(cfg, std::array<std::vector<Example>, 3>{std::move(train), std::move(dev),
                                                                               std::move(test)},
                                      std::move(label_words), 0);
}

}  // namespace zeroth
