// `zeroth replay`: rebuild the finetuned trainable set from the base model and
// the ledger alone, and `zeroth export`: write a run's adapter in the HF PEFT
// layout (or the base with the adapter merged).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "core/error.h"
#include "core/formats/safetensors.h"
#include "launch/commands.h"
#include "launch/export_peft.h"
#include "launch/trainer.h"
#include "models/loaders/llama_loader.h"

namespace zeroth::cli {

namespace {

struct Rebuilt {
  TrainConfig config;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Replica> replica;
  uint64_t steps = 0;
  double seconds = 0;
};

// θ after every entry of `ledger_path`, for the base at `base_path` ("" = the
// path the run's config names). `dir` enables snapshots as a shortcut.
Rebuilt rebuild(const std::string& ledger_path, const std::string& base_path, const RunDir* dir, bool check_base) {
  LedgerFile ledger = LedgerFile::open(ledger_path);
  const LedgerHeader& h = ledger.header();
  std::vector<std::string> sets;
  if (!base_path.empty()) sets.push_back("model.path=" + base_path);
  Rebuilt r;
  r.config = parse_train_config(h.config, ledger_path + " (its header)", sets);
  if (check_base) {
    const std::string bh = base_model_hash(r.config.model.path);
    ZEROTH_CHECK(bh == h.base_hash, "{}: this base model's hash {} differs from the one the run trained ({})",
                 r.config.model.path, bh, h.base_hash);
  }
  LoadOptions lo;
  lo.quantize_embeddings = r.config.model.quantize_embeddings;
  if (!r.config.model.quantize.empty()) lo.quantize = parse_dtype(r.config.model.quantize);
  r.model = std::make_unique<LlamaModel>(load_llama_weights(r.config.model.path, lo));
  r.replica = std::make_unique<Replica>(r.config.replica(), *r.model);
  ZEROTH_CHECK(r.replica->hash() == h.trainable_hash, "{}: θ_0 rebuilt from the config has hash {}, the ledger says {}",
               ledger_path, r.replica->hash(), h.trainable_hash);
  const auto t0 = std::chrono::steady_clock::now();
  r.steps = catch_up(*r.replica, ledger.entries(), dir);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

Runner add_replay(CLI::App& app) {
  struct Options {
    std::string base, ledger, out;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("replay", "Rebuild the finetuned weights from the base model and the ledger");
  sub->add_option("--base", opt->base, "Base model (default: the path in the ledger's config)");
  sub->add_option("--ledger", opt->ledger, "The run's ledger (RUN/ledger.zl)")->required()->check(CLI::ExistingFile);
  sub->add_option("--out", opt->out, "Directory for adapter.safetensors (the rebuilt trainable set)")->required();
  return [opt] {
    Rebuilt r = rebuild(opt->ledger, opt->base, nullptr, true);
    std::filesystem::create_directories(opt->out);
    const std::string hash = r.replica->hash();
    write_safetensors(opt->out + "/adapter.safetensors", r.replica->theta().snapshot(),
                      {{"zeroth.step", std::to_string(r.steps)}, {"zeroth.hash", hash}});
    fmt::print("replayed {} steps in {:.3f} s ({:.0f} steps/s, {:.3g} parameter·records/s)\n", r.steps, r.seconds,
               double(r.steps) / std::max(r.seconds, 1e-9),
               double(r.replica->theta().size()) * double(r.steps) * r.config.zo.q * r.config.run.members /
                   std::max(r.seconds, 1e-9));
    fmt::print("hash: {}\n", hash);
    fmt::print("wrote {}/adapter.safetensors\n", opt->out);
    return 0;
  };
}

Runner add_export(CLI::App& app) {
  struct Options {
    std::string run, peft, merged, base;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("export", "Export a run's LoRA adapter (HF PEFT layout) or the merged model");
  sub->add_option("run", opt->run, "Run directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--peft", opt->peft, "Write adapter_model.safetensors + adapter_config.json here");
  sub->add_option("--merged", opt->merged, "Write the base with the adapter merged (HF safetensors + config.json)");
  sub->add_option("--base", opt->base, "Base model (default: the path in the run's config)");
  return [opt] {
    ZEROTH_CHECK(!opt->peft.empty() || !opt->merged.empty(), "export: name --peft DIR and/or --merged DIR");
    RunDir dir{opt->run};
    Rebuilt r = rebuild(dir.ledger(), opt->base, &dir, true);
    fmt::print(stderr, "rebuilt step {} (hash {})\n", r.steps, r.replica->hash());
    if (!opt->peft.empty()) {
      ZEROTH_CHECK(!r.config.trainable.full && !r.config.trainable.norms,
                   "export --peft: this run trained {}, which a PEFT LoRA adapter cannot hold; use --merged",
                   r.config.trainable.full ? "every weight" : "the norms");
      const auto& mc = r.model->config();
      export_peft(opt->peft, r.replica->lora().adapters(), r.config.model.path, mc.rope_interleaved, mc.n_heads, mc.n_kv_heads);
      fmt::print("wrote the PEFT adapter to {}\n", opt->peft);
    }
    if (!opt->merged.empty()) {
      const PerturbedLora theta(r.replica->lora(), r.config.zo.distribution, {Variant{}});
      export_merged(opt->merged, *r.model, theta);
      fmt::print("wrote the merged model to {}\n", opt->merged);
    }
    return 0;
  };
}

}  // namespace zeroth::cli
