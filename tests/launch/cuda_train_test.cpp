// The trainer's loop (run_member over the local transport, as `zeroth train`
// runs it) with GPU members beside CPU members, on a random model and in-memory
// data, so it needs neither ../shared nor a download:
//   - every member ends on the same θ hash (and run.hash_every = 1 compares the
//     replicas after every step: a difference stops the run with an error);
//   - the GPU member's model is the CUDA one, the others' the CPU one;
//   - the ledger replays from θ_0 to the run's final hash.
// The all-CPU run of the same harness runs everywhere; the GPU runs skip
// without a GPU (a failure under ZEROTH_REQUIRE_GPU=1).
#include <cstdint>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "comm/local_transport.h"
#include "launch/roles.h"
#include "launch/trainer.h"
#include "models/llama.h"
#include "optim/update.h"
#include "tests/core/cuda_test_util.h"
#include "tests/optim/member_step_test_util.h"

namespace zeroth::cli {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kVocab = 200;
constexpr int kSteps = 5;

struct LocalRun {
  std::vector<MemberOutcome> outcomes;
  std::vector<std::string> errors;
  std::vector<bool> on_gpu;  // per member: computed with the CUDA model
  std::string theta0, replayed;
};

// Three members, `kSteps` steps, replica hashes compared after every step.
LocalRun run_three(const std::vector<std::string>& device_sets, const std::string& dir) {
  fs::remove_all(dir);
  std::vector<std::string> sets = {"run.members=3", "run.steps=" + std::to_string(kSteps), "run.hash_every=1",
                                   "run.dir=" + dir, "zo.q=2", "zo.samples=2", "run.eval_every=0",
                                   "run.snapshot_every=0", "run.log_every=100", "lora.rank=2",
                                   "optimizer.lr=1e-2"};
  sets.insert(sets.end(), device_sets.begin(), device_sets.end());
  const TrainConfig c = parse_train_config("model:\n  path: random\ntask:\n  train: in-memory\n", "test", sets);
  TrainContext ctx;
  ctx.config = c;
  ctx.dir.root = dir;
  LlamaConfig lc;
  lc.dim = 64; lc.hidden_dim = 128; lc.n_layers = 2; lc.n_heads = 4; lc.n_kv_heads = 2; lc.vocab_size = kVocab;
  lc.max_seq_len = 64;
  ctx.model = std::make_unique<LlamaModel>(make_random_llama(lc, 3, DType::Q8_0), 1);
  ctx.task = make_task_from_examples(TaskConfig{}, test::random_documents(24, 5, kVocab), {}, {});
  ctx.base_hash = "random-q8_0";
  attach_cuda_model(ctx, {0, 1, 2}, false);
  LocalRun r;
  for (uint32_t m = 0; m < 3; ++m) r.on_gpu.push_back(&ctx.model_of(m) != ctx.model.get());
  LoraTrainable theta(c.lora, *ctx.model, c.trainable);
  theta.initialize(c.run.seed);
  r.theta0 = theta.set().hash().hex();
  auto ledger = prepare_run_dir(ctx, c, r.theta0);
  ctx.ledger = ledger.get();
  const RecordLayout layout = record_layout(c, {});
  auto group = std::make_shared<LocalGroup>(3u);
  r.outcomes.resize(3);
  r.errors.resize(3);
  std::vector<std::thread> threads;
  for (uint32_t m = 0; m < 3; ++m)
    threads.emplace_back([&, m] {
      LocalTransport tr(group, m);
      try {
        tr.set_layout(layout);
        r.outcomes[m] = run_member(ctx, tr);
      } catch (const std::exception& e) {
        r.errors[m] = e.what();
        tr.abort(e.what());  // the others stop at their next wait instead of waiting forever
      }
    });
  for (auto& t : threads) t.join();
  // Anyone holding the base and the ledger rebuilds the model.
  const LedgerFile written = LedgerFile::open(ctx.dir.ledger(), LedgerAccess::ReadOnly);
  ZerothOrderOptimizer opt(c.optimizer, theta.set());
  for (const StepEntry& e : written.entries()) opt.apply(e);
  r.replayed = theta.set().hash().hex();
  return r;
}

void expect_one_theta(const LocalRun& r) {
  for (uint32_t m = 0; m < 3; ++m) {
    EXPECT_EQ(r.errors[m], "") << "member " << m;
    EXPECT_EQ(r.outcomes[m].steps_done, uint64_t(kSteps)) << "member " << m;
    EXPECT_EQ(r.outcomes[m].final_hash, r.outcomes[0].final_hash) << "member " << m;
  }
  EXPECT_NE(r.outcomes[0].final_hash, r.theta0);  // the steps moved θ
  EXPECT_EQ(r.replayed, r.outcomes[0].final_hash);
}

// A run directory of this process (concurrent test runs do not collide), removed on scope exit.
struct TempDir {
  explicit TempDir(const char* name)
      : path((fs::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()))).string()) {}
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

TEST(TrainLoop, CpuMembersAgreeAndReplay) {
  const TempDir dir("zeroth-train-loop-cpu");
  const LocalRun r = run_three({}, dir.path);
  expect_one_theta(r);
  EXPECT_EQ(r.on_gpu, (std::vector<bool>{false, false, false}));
}

TEST(TrainLoopCuda, MixedCpuAndGpuMembersAgreeAfterEveryStep) {
  ZEROTH_REQUIRE_GPU();
  const TempDir dir("zeroth-train-loop-mixed");
  const LocalRun r = run_three({"model.cuda_members=[1]"}, dir.path);
  expect_one_theta(r);
  EXPECT_EQ(r.on_gpu, (std::vector<bool>{false, true, false}));
}

TEST(TrainLoopCuda, EveryMemberOnTheGpuInEachPrecision) {
  ZEROTH_REQUIRE_GPU();
  for (const char* p : {"f32", "tf32", "bf16"}) {
    const TempDir dir("zeroth-train-loop-gpu");
    const LocalRun r = run_three({"model.device=cuda", std::string("model.cuda_precision=") + p}, dir.path);
    expect_one_theta(r);
    EXPECT_EQ(r.on_gpu, (std::vector<bool>{true, true, true})) << p;
  }
}

}  // namespace
}  // namespace zeroth::cli
