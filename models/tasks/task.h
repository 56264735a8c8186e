// Tasks: what a run finetunes on and how its loss and metrics are computed.
//   lm             language modelling on documents (loss on every next token)
//   completion     prompt + completion pairs (loss on the completion only)
//   classification MeZO-style prompted classification: a template such as
//                  "{sentence} It was" and label words {0: " terrible", 1: " great"};
//                  loss = cross-entropy over the label words' log-likelihoods,
//                  prediction = the label word with the highest (length-normalized)
//                  log-likelihood.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/causal_lm.h"
#include "models/tokenizer.h"

namespace zeroth {

enum class Split : uint8_t { Train, Dev, Test };
const char* split_name(Split s);

struct TaskConfig {
  std::string type = "lm";  // lm | completion | classification
  std::string train_path, dev_path, test_path;  // dev/test may be empty (then carved from train)
  // lm: plain text split on `separator`, or JSONL with `text_field`
  std::string separator = "<|endoftext|>";
  std::string text_field = "text";
  // completion (JSONL)
  std::string prompt_field = "prompt", completion_field = "completion";
  // classification (JSONL, TSV or CSV with a header)
  std::string template_text = "{sentence} It was";  // fields in braces are filled from the row
  std::string label_field = "label";
  std::map<std::string, std::string> label_words;   // label value -> word, e.g. {"0": " terrible", "1": " great"}
  // sampling (MeZO's protocol): k examples per class from train (0 = all), and
  // caps on each split, drawn with data_seed; dev carved from train when no dev_path
  // (the exact protocol is in models/tasks/sampling.h)
  int64_t k_shot = 0;
  int64_t train_size = 0, dev_size = 0, test_size = 0;  // 0 = default (see sampling.h)
  uint64_t data_seed = 0;
  int64_t max_length = 256;   // tokens per sequence (cut from the left of prompts, the right of documents)
  bool skip_bad_rows = false; // skip and count malformed rows instead of failing
  void validate() const;      // errors name the task.* key
  // validate() minus the data paths, for tasks built from examples in memory.
  void validate_settings() const;
};

// One example, tokenized (BOS included when the tokenizer has one).
struct Example {
  std::vector<int32_t> tokens;  // lm/completion: the whole sequence; classification: the prompt
  int64_t loss_begin = 0;       // lm/completion: rows [loss_begin, len-1) predict the next token
  int32_t label = -1;           // classification: index into Task::label_words()
};

class Task {
 public:
  virtual ~Task() = default;
  virtual const TaskConfig& config() const = 0;
  virtual const std::vector<Example>& examples(Split s) const = 0;
  bool is_classification() const { return config().type == "classification"; }
  // classification: token sequences of each label word (index = label index)
  virtual const std::vector<std::vector<int32_t>>& label_words() const = 0;
  // Rows skipped as malformed while reading (when skip_bad_rows).
  virtual int64_t skipped_rows() const = 0;
  virtual std::string describe() const = 0;  // one line: type, split sizes, label words
};

// Reads, samples and tokenizes the data. Errors name file:line or the task.* key.
std::unique_ptr<Task> make_task(const TaskConfig& cfg, const Tokenizer& tok);
// A task over examples already tokenized (tests, evaluate_nll, callers with
// their own data): splits indexed by Split; label_words only for classification.
std::unique_ptr<Task> make_task_from_examples(const TaskConfig& cfg, std::vector<Example> train,
                                              std::vector<Example> dev, std::vector<Example> test,
                                              std::vector<std::vector<int32_t>> label_words = {});

// Scores many (example, variant) pairs with ONE batched forward, so the 2q
// variants of a zeroth-order step share the frozen base's GEMMs.
//
// Losses: lm/completion examples score the mean NLL (nats) of their predicted
// tokens, and a variant's loss is the token-weighted mean over its examples
// (the loss of one big batch, as HF/MeZO compute it). Classification examples
// score -log softmax over the label words' summed log-likelihoods at the
// correct label, and a variant's loss is the mean over its examples.
// Single-token label words cost one sequence per example (the label columns of
// the prompt's last row); multi-token ones one sequence per (example, word).
class BatchScorer {
 public:
  explicit BatchScorer(const Task& task);
  // Variants must be added in non-decreasing order (TokenBatch's rule). The
  // example must outlive run().
  void add(const Example& e, int32_t variant);
  struct Result {
    std::vector<double> loss;            // index = variant id: its mean loss (NaN for ids never added)
    std::vector<double> example_loss;    // per added example, in add() order
    std::vector<int64_t> example_tokens; // per added example: predicted tokens (classification: 1)
    std::vector<int32_t> predicted;      // classification: predicted label per added example
    std::vector<int32_t> correct;        // classification: 1 when predicted == label
    int64_t tokens = 0;                  // rows run through the model
  };
  // Fails, naming task.max_length, when a sequence exceeds the model's context.
  Result run(const CausalLM& model, const AdapterSet* adapters = nullptr) const;
  bool empty() const;
  size_t size() const { return items_.size(); }
  // Rows the forward will run (for packing batches to a token budget).
  int64_t rows() const { return rows_; }
  // Rows an example adds.
  int64_t rows_of(const Example& e) const;
  void clear();

 private:
  const Task& task_;
  struct Item { const Example* e; int32_t variant; };
  std::vector<Item> items_;
  int64_t rows_ = 0;
};

// Loss (and accuracy for classification) of a whole split, in batches of about
// batch_tokens rows (one example always fits). The loss is weighted as in
// BatchScorer: per predicted token (lm/completion), per example (classification).
struct EvalResult {
  double loss = 0;
  double accuracy = -1;  // classification only
  int64_t examples = 0;
  int64_t tokens = 0;    // tokens the loss averages over (lm/completion: predicted tokens; classification: examples)
  int64_t rows = 0;      // rows run through the model
};
EvalResult evaluate(const CausalLM& model, const Task& task, Split split, int64_t batch_tokens = 4096,
                    const AdapterSet* adapters = nullptr);

}  // namespace zeroth
