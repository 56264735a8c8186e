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
  int64_t k_shot = 0;
  int64_t train_size = 0, dev_size = 0, test_size = 0;  // 0 = all
  uint64_t data_seed = 0;
  int64_t max_length = 256;   // tokens per sequence (cut from the left of prompts, the right of documents)
  bool skip_bad_rows = false; // skip and count malformed rows instead of failing
  void validate() const;      // errors name the task.* key
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

std::unique_ptr<Task> make_task(const TaskConfig& cfg, const Tokenizer& tok);

// Scores many (example, variant) pairs with ONE batched forward, so the 2q
// variants of a zeroth-order step share the frozen base's GEMMs.
class BatchScorer {
 public:
  explicit BatchScorer(const Task& task);
  // Variants must be added in non-decreasing order (TokenBatch's rule).
  void add(const Example& e, int32_t variant);
  struct Result {
    std::vector<double> loss;          // per variant: mean loss over its examples
    std::vector<double> example_loss;  // per added example, in add() order
    std::vector<int32_t> predicted;    // classification: predicted label per added example
    std::vector<int32_t> correct;      // classification: 1 when predicted == label
    int64_t tokens = 0;                // rows run through the model
  };
  Result run(const CausalLM& model, const AdapterSet* adapters = nullptr) const;
  bool empty() const;

 private:
  const Task& task_;
  struct Item { const Example* e; int32_t variant; };
  std::vector<Item> items_;
};

// Loss (and accuracy for classification) of a whole split, in batches of about
// batch_tokens rows.
struct EvalResult {
  double loss = 0;
  double accuracy = -1;  // classification only
  int64_t examples = 0, tokens = 0;
};
EvalResult evaluate(const CausalLM& model, const Task& task, Split split, int64_t batch_tokens = 4096,
                    const AdapterSet* adapters = nullptr);

}  // namespace zeroth
