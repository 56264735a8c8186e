// `zeroth eval`: mean next-token negative log-likelihood of a text corpus.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/model_options.h"
#include "models/tasks/language_model.h"
#include "models/tasks/text_data.h"

namespace zeroth::cli {

Runner add_eval(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string data;
    TextDataOptions text;
    int64_t batch_tokens = 4096;
    int64_t max_docs = 0;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("eval", "Mean next-token NLL of a text corpus (documents BOS-prefixed, cut at "
                                         "the context length)");
  add_model_options(sub, opt->model);
  sub->add_option("-d,--data", opt->data, "Text file (documents split on --separator) or JSONL with a text field")
      ->required();
  sub->add_option("--separator", opt->text.separator, "Document separator of plain text files");
  sub->add_option("--text-field", opt->text.text_field, "JSONL field holding the text");
  sub->add_flag("--skip-bad-rows", opt->text.skip_bad_rows, "Skip JSONL rows without the field instead of failing");
  sub->add_option("--batch-tokens", opt->batch_tokens, "Tokens per forward batch")->check(CLI::PositiveNumber);
  sub->add_option("--max-docs", opt->max_docs, "Evaluate only the first N documents (0 = all)");
  sub->add_flag("--json", opt->json, "Print the result as JSON");
  return [opt] {
    auto loaded = load_model(opt->model);
    const auto data = read_text_documents(opt->data, opt->text);
    ZEROTH_CHECK(!data.documents.empty(), "{}: no documents found", opt->data);
    const auto& tok = *loaded.tokenizer;
    std::vector<std::vector<int32_t>> docs;
    for (const auto& d : data.documents) {
      if (opt->max_docs > 0 && int64_t(docs.size()) >= opt->max_docs) break;
      docs.push_back(tok.encode(d, tok.bos_id() >= 0, false));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const NllResult r = evaluate_nll(*loaded.model, docs, opt->batch_tokens);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opt->json) {
      nlohmann::json j = {{"documents", docs.size()}, {"tokens", r.tokens}, {"mean_nll", r.mean()},
                          {"perplexity", std::exp(r.mean())}, {"seconds", secs}, {"skipped_rows", data.skipped_rows}};
      fmt::print("{}\n", j.dump());
    } else {
      fmt::print("documents: {}\ntokens: {}\nmean NLL: {:.4f}\nperplexity: {:.3f}\n", docs.size(), r.tokens, r.mean(),
                 std::exp(r.mean()));
      fmt::print(stderr, "{:.2f} s, {:.0f} tokens/s\n", secs, double(r.tokens) / std::max(secs, 1e-9));
    }
    return 0;
  };
}

}  // namespace zeroth::cli
