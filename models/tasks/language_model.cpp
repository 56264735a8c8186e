#include "models/tasks/language_model.h"

#include <algorithm>
#include <cstdint>

#include "models/tasks/task.h"

namespace zeroth {

NllResult evaluate_nll(const CausalLM& model, const std::vector<std::vector<int32_t>>& docs, int64_t batch_tokens,
                       const AdapterSet* adapters) {
  const int64_t ctx = model.max_seq_len();
  std::vector<Example> examples;
  for (const auto& d : docs) {
    if (d.size() < 2) continue;  // nothing to predict
    Example e;
    e.tokens.assign(d.begin(), d.begin() + std::min<int64_t>(ctx, int64_t(d.size())));
    examples.push_back(std::move(e));
  }
  TaskConfig cfg;
  cfg.type = "lm";
  cfg.max_length = std::max<int64_t>(2, ctx);
  const auto task = make_task_from_examples(cfg, {}, {}, std::move(examples));
  const EvalResult r = evaluate(model, *task, Split::Test, batch_tokens, adapters);
  NllResult out;
  out.tokens = r.tokens;
  out.total_nll = r.loss * double(r.tokens);
  return out;
}

}  // namespace zeroth
