// `zeroth train [CONFIG]`: a zeroth-order finetuning run. Without a config it
// runs the embedded default (configs/default.yaml, compiled in).
#include <csignal>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <thread>

#include "comm/local_transport.h"
#include "core/error.h"
#include "launch/commands.h"
#include "launch/trainer.h"

namespace zeroth::cli {

extern const char* const kDefaultConfigYaml;  // configs/default.yaml, embedded at build time

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C: leave at once (the ledger stays recoverable)
}

// Opens (resume) or creates the run directory and its ledger; returns the history.
std::unique_ptr<LedgerFile> prepare_run_dir(TrainContext& ctx, const TrainConfig& c, const std::string& theta0_hash) {
  namespace fs = std::filesystem;
  const RunDir& dir = ctx.dir;
  LedgerHeader header;
  header.run_seed = c.run.seed;
  header.base_hash = ctx.base_hash;
  header.trainable_hash = theta0_hash;
  header.config = c.to_yaml();
  if (fs::exists(dir.ledger())) {
    ZEROTH_CHECK(c.run.resume, "{} already holds a run: pass --resume to continue it, or choose another run.dir",
                 dir.root);
    auto ledger = std::make_unique<LedgerFile>(LedgerFile::open(dir.ledger()));
    if (ledger->dropped_bytes() > 0)
      fmt::print(stderr, "ledger: dropped a torn tail of {} bytes (an interrupted write)\n", ledger->dropped_bytes());
    const auto& h = ledger->header();
    ZEROTH_CHECK(h.base_hash == header.base_hash, "{}: the run was trained on a different base model (hash {} vs {})",
                 dir.ledger(), h.base_hash, header.base_hash);
    ZEROTH_CHECK(h.trainable_hash == header.trainable_hash && h.run_seed == header.run_seed,
                 "{}: the run started from a different initialization (seed or LoRA shape changed)", dir.ledger());
    // Whatever shapes the function or how entries are applied must not change
    // on resume: the ledger would no longer rebuild the model.
    std::vector<std::string> keep_path = {"model.path=" + c.model.path, "task.train=" + c.task.train_path};
    const TrainConfig was = parse_train_config(h.config, dir.ledger() + " (its header)", keep_path);
    auto same = [&](bool eq, const char* key) {
      ZEROTH_CHECK(eq, "{}: {} differs from the run being resumed; a resumed run must keep it (start a new run.dir "
                   "to change it)", c.source, key);
    };
    same(was.lora.rank == c.lora.rank && was.lora.alpha == c.lora.alpha && was.lora.targets == c.lora.targets, "lora");
    same(was.trainable.norms == c.trainable.norms && was.trainable.full == c.trainable.full, "trainable");
    same(was.zo.distribution == c.zo.distribution, "zo.distribution");
    same(was.optimizer.rule == c.optimizer.rule, "optimizer.rule");
    same(was.optimizer.weight_decay == c.optimizer.weight_decay, "optimizer.weight_decay");
    same(was.optimizer.momentum == c.optimizer.momentum, "optimizer.momentum");
    same(was.model.quantize == c.model.quantize && was.model.quantize_embeddings == c.model.quantize_embeddings,
         "model.quantize");
    ctx.history = ledger->entries();
    fmt::print(stderr, "resuming {} at step {}\n", dir.root, ctx.history.size());
    return ledger;
  }
  ZEROTH_CHECK(!c.run.resume, "--resume: {} holds no ledger to resume", dir.root);
  fs::create_directories(dir.root);
  std::ofstream(dir.config()) << header.config;
  return std::make_unique<LedgerFile>(LedgerFile::create(dir.ledger(), header));
}

}  // namespace

Runner add_train(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> sets;
    std::string resume;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("train", "Zeroth-order finetuning (MeZO/SPSA, one byte per sample); without CONFIG "
                                          "it runs the embedded default");
  sub->add_option("config", opt->config, "YAML recipe (see configs/)");
  sub->add_option("--set", opt->sets, "Override a config key, e.g. --set optimizer.lr=1e-4 (repeatable)");
  sub->add_option("--resume", opt->resume, "Continue the run in this directory (its config.yaml, unless CONFIG is given)");
  return [opt] {
    std::vector<std::string> sets = opt->sets;
    std::string path = opt->config;
    if (!opt->resume.empty()) {
      sets.push_back("run.dir=" + opt->resume);
      sets.push_back("run.resume=true");
      if (path.empty()) path = opt->resume + "/config.yaml";
    }
    const TrainConfig c = path.empty() ? parse_train_config(kDefaultConfigYaml, "<embedded default>", sets)
                                       : load_train_config(path, sets);
    fmt::print(stderr, "zeroth train: {} ({} steps, {} members)\n", c.source, c.run.steps, c.run.members);
    TrainContext ctx = make_train_context(c);
    fmt::print(stderr, "task: {}\n", ctx.task->describe());
    // θ_0's hash, as every member will compute it.
    std::string theta0;
    {
      LoraTrainable probe(c.lora, *ctx.model, c.trainable);
      probe.initialize(c.run.seed);
      theta0 = probe.set().hash().hex();
      fmt::print(stderr, "trainable: {}{}: {} parameters\n",
                 c.trainable.full ? "every projection matrix (full)"
                                  : fmt::format("LoRA r {} alpha {} on {} projections", c.lora.rank, c.lora.alpha,
                                                c.lora.targets.size()),
                 c.trainable.norms ? " and the norms" : "", probe.set().size());
    }
    auto ledger = prepare_run_dir(ctx, c, theta0);
    ctx.ledger = ledger.get();
    ctx.stop = &g_stop;
    std::signal(SIGINT, on_sigint);
    std::signal(SIGTERM, on_sigint);

    auto group = std::make_shared<LocalGroup>(uint32_t(c.run.members));
    std::vector<MemberOutcome> outcomes(size_t(c.run.members));
    std::vector<std::string> errors(size_t(c.run.members));
    std::vector<std::thread> threads;
    for (int m = 0; m < c.run.members; ++m)
      threads.emplace_back([&, m] {
        LocalTransport tr(group, uint32_t(m));
        tr.set_slots(uint32_t(c.zo.q), c.zo.exact_gradients);
        try {
          outcomes[size_t(m)] = run_member(ctx, tr);
        } catch (const std::exception& e) {
          errors[size_t(m)] = e.what();
          tr.abort(e.what());
        }
      });
    for (auto& t : threads) t.join();
    std::signal(SIGINT, SIG_DFL);
    for (const auto& e : errors)
      if (!e.empty() && e.rfind("stopping: ", 0) != 0) fail("{}", e);
    for (const auto& e : errors)
      if (!e.empty()) fail("{}", e);

    const auto& o = outcomes[0];
    bool agree = true;
    for (const auto& x : outcomes) agree = agree && x.final_hash == o.final_hash;
    fmt::print("steps: {} ({} run now)\n", o.steps_done, o.steps_run);
    const double per_step = o.steps_run ? double(o.record_bytes_sent) / double(o.steps_run) : 0.0;
    fmt::print("bytes per member per step: {:.1f} for records (q = {} slot(s): {} byte(s) each + a {}-byte header); "
               "{:.1f} with the loss and hash exchanges\n",
               per_step, c.zo.q, c.zo.exact_gradients ? 4 : 1, kMemberRecordsHeader,
               o.steps_run ? double(o.bytes_sent) / double(o.steps_run) : 0.0);
    fmt::print("replica hashes: {} ({} members, {})\n", agree ? "all equal" : "DIFFER", outcomes.size(), o.final_hash);
    fmt::print("run directory: {}\n", ctx.dir.root);
    return agree ? 0 : 3;
  };
}

}  // namespace zeroth::cli
