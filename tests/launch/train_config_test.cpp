// YAML → TrainConfig (launch/train_config.h): defaults, every key of every
// section, unknown keys and bad values as errors naming the key and the source,
// --set overrides, path expansion, and to_yaml() round trips. The embedded
// default and every recipe in configs/ parse.
#include <cstdint>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/roles.h"
#include "launch/train_config.h"

namespace zeroth::cli {

extern const char* const kDefaultConfigYaml;  // configs/default.yaml, embedded at build time

namespace {

// The two keys validation requires, so the rest can stay at defaults.
const std::string kMinimal = "model:\n  path: m.bin\ntask:\n  train: t.txt\n";

std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {},
                     const std::string& source = "recipe.yaml") {
  try {
    parse_train_config(yaml, source, sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The error names every one of `parts` (key, source, ...).
void expect_error(const std::string& yaml, const std::vector<std::string>& parts,
                  const std::vector<std::string>& sets = {}) {
  const std::string e = error_of(yaml, sets);
  ASSERT_FALSE(e.empty()) << "no error for:\n" << yaml;
  for (const auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << "\"" << e << "\" does not name " << p;
}

// Sets an environment variable for one scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(TrainConfig, Defaults) {
  const TrainConfig c = parse_train_config(kMinimal, "min.yaml", {});
  const TrainConfig d;  // the struct defaults
  EXPECT_EQ(c.source, "min.yaml");
  EXPECT_EQ(c.run.dir, d.run.dir);
  EXPECT_EQ(c.run.seed, 1234u);
  EXPECT_EQ(c.run.steps, 200);
  EXPECT_EQ(c.run.members, 2);
  EXPECT_EQ(c.run.hash_every, 10);
  EXPECT_FALSE(c.run.resume);
  EXPECT_TRUE(c.run.durable);  // the ledger is the only copy of the model: fsync by default
  EXPECT_EQ(c.model.path, "m.bin");
  EXPECT_EQ(c.model.quantize, "");
  EXPECT_EQ(c.lora.rank, 8);
  EXPECT_EQ(c.lora.alpha, 16.0f);
  EXPECT_EQ(c.lora.targets, (std::vector<Proj>{Proj::Q, Proj::V}));
  EXPECT_EQ(c.zo.q, 1);
  EXPECT_EQ(c.zo.eps, 1e-3f);
  EXPECT_TRUE(c.zo.central);
  EXPECT_EQ(c.zo.samples, 16);
  EXPECT_EQ(c.zo.distribution, Distribution::Rademacher);
  EXPECT_FALSE(c.zo.exact_gradients);
  EXPECT_EQ(c.optimizer.rule, UpdateRule::Sgd);
  EXPECT_EQ(c.optimizer.lr, 1e-3f);
  EXPECT_EQ(c.optimizer.schedule, LrSchedule::Constant);
  EXPECT_EQ(c.codec.init_scale, 1.0f);
  EXPECT_EQ(c.task.type, "lm");
  EXPECT_EQ(c.task.train_path, "t.txt");
  EXPECT_EQ(c.task.max_length, 256);
  EXPECT_EQ(c.eval.batch_tokens, 4096);
  // Derived: the optimizer follows the run.
  EXPECT_EQ(c.optimizer.total_steps, c.run.steps);
  EXPECT_EQ(c.optimizer.run_seed, c.run.seed);
  EXPECT_EQ(c.optimizer.distribution, c.zo.distribution);
}

// A recipe that sets every key to a non-default value.
const char* kEverything = R"(
run:
  dir: /tmp/runs/x
  seed: 99
  steps: 321
  members: 3
  threads: 5
  log_every: 7
  eval_every: 11
  snapshot_every: 13
  hash_every: 17
  durable: false
  resume: true
model:
  path: /models/m.gguf
  tokenizer: /models/tok.json
  quantize: nf4
  quantize_embeddings: true
  cuda_members: [0, 2]
  cuda_precision: bf16
lora:
  rank: 4
  alpha: 32
  targets: [q_proj, k, down]
zo:
  q: 6
  eps: 2.5e-3
  central: false
  samples: 3
  share_samples: false
  distribution: gaussian
  exact_gradients: true
  redundancy: 3
optimizer:
  rule: momentum
  lr: 1.0e-4
  weight_decay: 0.01
  momentum: 0.8
  schedule: cosine
  warmup_steps: 20
codec:
  init_scale: 0.5
  range_rms: 4
  ema: 0.9
  min_scale: 1.0e-6
task:
  type: classification
  train: /data/train.tsv
  dev: /data/dev.tsv
  test: /data/test.tsv
  separator: "###"
  text_field: body
  prompt_field: q
  completion_field: a
  template: "{sentence} Verdict:"
  label_field: y
  label_words: {"0": " no", "1": " yes"}
  k_shot: 8
  train_size: 0
  dev_size: 10
  test_size: 20
  data_seed: 3
  max_length: 100
  skip_bad_rows: true
eval:
  batch_tokens: 1024
elastic:
  spot_tolerances: {cpu-x86-64-v4: 0, "cuda-sm90|cpu-x86-64-v3": 2}
robust:
  rule: median
)";

void expect_everything(const TrainConfig& c) {
  EXPECT_EQ(c.run.dir, "/tmp/runs/x");
  EXPECT_EQ(c.run.seed, 99u);
  EXPECT_EQ(c.run.steps, 321);
  EXPECT_EQ(c.run.members, 3);
  EXPECT_EQ(c.run.threads, 5);
  EXPECT_EQ(c.run.log_every, 7);
  EXPECT_EQ(c.run.eval_every, 11);
  EXPECT_EQ(c.run.snapshot_every, 13);
  EXPECT_EQ(c.run.hash_every, 17);
  EXPECT_FALSE(c.run.durable);  // the default is true
  EXPECT_EQ(c.model.path, "/models/m.gguf");
  EXPECT_EQ(c.model.tokenizer, "/models/tok.json");
  EXPECT_EQ(c.model.quantize, "nf4");
  EXPECT_TRUE(c.model.quantize_embeddings);
  EXPECT_EQ(c.model.device, "cpu");
  EXPECT_EQ(c.model.cuda_members, (std::vector<int>{0, 2}));
  EXPECT_EQ(c.model.cuda_precision, "bf16");
  EXPECT_TRUE(c.model.on_cuda(2));
  EXPECT_FALSE(c.model.on_cuda(1));
  EXPECT_EQ(c.lora.rank, 4);
  EXPECT_EQ(c.lora.alpha, 32.0f);
  EXPECT_EQ(c.lora.targets, (std::vector<Proj>{Proj::Q, Proj::K, Proj::Down}));
  EXPECT_EQ(c.zo.q, 6);
  EXPECT_EQ(c.zo.eps, 2.5e-3f);
  EXPECT_FALSE(c.zo.central);
  EXPECT_EQ(c.zo.samples, 3);
  EXPECT_FALSE(c.zo.share_samples);
  EXPECT_EQ(c.zo.distribution, Distribution::Gaussian);
  EXPECT_TRUE(c.zo.exact_gradients);
  EXPECT_EQ(c.optimizer.rule, UpdateRule::Momentum);
  EXPECT_EQ(c.optimizer.lr, 1e-4f);
  EXPECT_EQ(c.optimizer.weight_decay, 0.01f);
  EXPECT_EQ(c.optimizer.momentum, 0.8f);
  EXPECT_EQ(c.optimizer.schedule, LrSchedule::Cosine);
  EXPECT_EQ(c.optimizer.warmup_steps, 20);
  EXPECT_EQ(c.optimizer.total_steps, 321);
  EXPECT_EQ(c.optimizer.run_seed, 99u);
  EXPECT_EQ(c.optimizer.distribution, Distribution::Gaussian);
  EXPECT_EQ(c.codec.init_scale, 0.5f);
  EXPECT_EQ(c.codec.range_rms, 4.0f);
  EXPECT_EQ(c.codec.ema, 0.9f);
  EXPECT_EQ(c.codec.min_scale, 1e-6f);
  const TaskConfig& t = c.task;
  EXPECT_EQ(t.type, "classification");
  EXPECT_EQ(t.train_path, "/data/train.tsv");
  EXPECT_EQ(t.dev_path, "/data/dev.tsv");
  EXPECT_EQ(t.test_path, "/data/test.tsv");
  EXPECT_EQ(t.separator, "###");
  EXPECT_EQ(t.text_field, "body");
  EXPECT_EQ(t.prompt_field, "q");
  EXPECT_EQ(t.completion_field, "a");
  EXPECT_EQ(t.template_text, "{sentence} Verdict:");
  EXPECT_EQ(t.label_field, "y");
  EXPECT_EQ(t.label_words, (std::map<std::string, std::string>{{"0", " no"}, {"1", " yes"}}));
  EXPECT_EQ(t.k_shot, 8);
  EXPECT_EQ(t.dev_size, 10);
  EXPECT_EQ(t.test_size, 20);
  EXPECT_EQ(t.data_seed, 3u);
  EXPECT_EQ(t.max_length, 100);
  EXPECT_TRUE(t.skip_bad_rows);
  EXPECT_EQ(c.eval.batch_tokens, 1024);
  EXPECT_EQ(c.zo.redundancy, 3u);
  EXPECT_EQ(c.optimizer.key_group, 3u);  // the apply follows the groups' keys
  EXPECT_EQ(c.robust.group, 3u);
  EXPECT_EQ(c.robust.rule, "median");
  // Pairs are stored sorted, so either order names the same pair.
  EXPECT_EQ(c.elastic.spot_tolerances,
            (std::map<std::string, int>{{"cpu-x86-64-v4", 0}, {"cpu-x86-64-v3|cuda-sm90", 2}}));
}

TEST(TrainConfig, GpuMemberKeysAreCheckedAgainstWhatCudaRuns) {
  const TrainConfig d = parse_train_config(kMinimal, "r", {});
  EXPECT_EQ(d.model.device, "cpu");
  EXPECT_FALSE(d.model.any_cuda());
  EXPECT_EQ(d.model.cuda_precision, "f32");
  const TrainConfig all = parse_train_config(kMinimal, "r", {"model.device=cuda"});
  EXPECT_TRUE(all.model.on_cuda(0) && all.model.on_cuda(1));
  expect_error(kMinimal, {"recipe.yaml", "model.device", "gpu", "cpu or cuda"}, {"model.device=gpu"});
  expect_error(kMinimal, {"model.cuda_members names member 2", "members 0..1"}, {"model.cuda_members=[2]"});
  expect_error(kMinimal, {"model.cuda_members names member 1 twice"}, {"model.cuda_members=[1, 1]"});
  expect_error(kMinimal, {"model.cuda_members", "not a member id"}, {"model.cuda_members=[x]"});
  expect_error(kMinimal, {"model.cuda_precision", "fp16", "f32, tf32 or bf16"}, {"model.cuda_precision=fp16"});
  // What CUDA members cannot be yet: gradient/JVP members, mode fo, full-weight training.
  expect_error(kMinimal, {"member 1 is a roles.grad member", "model.cuda_members"},
               {"model.cuda_members=[1]", "roles.grad=[1]"});
  expect_error(kMinimal, {"member 0 is a roles.jvp member"}, {"model.device=cuda", "roles.jvp=[0]"});
  expect_error(kMinimal, {"mode fo", "model.device"}, {"model.device=cuda", "mode=fo"});
  expect_error(kMinimal, {"trainable.full", "CUDA"}, {"model.cuda_members=[0]", "trainable.full=true"});
  expect_error(kMinimal, {"roles.auto"}, {"model.device=cuda", "roles.auto=true"});
  // A CPU gradient member beside a GPU ZO member is fine.
  const TrainConfig mixed = parse_train_config(kMinimal, "r", {"model.cuda_members=[1]", "roles.grad=[0]"});
  EXPECT_TRUE(mixed.model.on_cuda(1));
  EXPECT_FALSE(mixed.model.on_cuda(0));
}

TEST(TrainConfig, EverySectionIsRead) {
  const TrainConfig c = parse_train_config(kEverything, "all.yaml", {});
  expect_everything(c);
  EXPECT_TRUE(c.run.resume);
}

TEST(TrainConfig, UnknownKeysNameTheKeyAndSource) {
  expect_error(kMinimal + "foo: 1\n", {"recipe.yaml", "unknown key foo"});
  expect_error("model:\n  path: m.bin\ntask:\n  train: t.txt\n  foo: 3\n", {"recipe.yaml", "unknown key task.foo"});
  expect_error(kMinimal + "run:\n  stpes: 3\n", {"recipe.yaml", "run.stpes"});
  expect_error(kMinimal + "optimizer:\n  learning_rate: 3\n", {"optimizer.learning_rate"});
  // An unknown key that arrives through --set is named the same way.
  expect_error(kMinimal, {"recipe.yaml", "unknown key task.foo"}, {"task.foo=1"});
  expect_error(kMinimal, {"unknown key zo.qq"}, {"zo.qq=2"});
}

TEST(TrainConfig, BadValueTypesNameTheKey) {
  expect_error(kMinimal + "run:\n  steps: many\n", {"recipe.yaml", "run.steps", "integer"});
  expect_error(kMinimal + "run:\n  members: 2.5\n", {"run.members", "integer"});
  expect_error(kMinimal + "run:\n  durable: perhaps\n", {"run.durable", "boolean"});
  expect_error(kMinimal + "optimizer:\n  lr: fast\n", {"optimizer.lr", "number"});
  expect_error(kMinimal + "zo:\n  eps: [1]\n", {"zo.eps"});
  expect_error(kMinimal + "lora:\n  targets: q\n", {"lora.targets", "list"});
  expect_error(kMinimal + "lora:\n  targets: [[q]]\n", {"lora.targets"});
  expect_error("model:\n  path: m.bin\ntask:\n  train: t.txt\n  label_words: [a, b]\n", {"task.label_words", "mapping"});
  expect_error(kMinimal + "run: 5\n", {"recipe.yaml", "run", "mapping"});
  expect_error("- a\n- b\n", {"recipe.yaml", "mapping"});
  expect_error("run: {steps: 3\n", {"recipe.yaml", "invalid YAML"});
  // A seed is unsigned: a negative one must not wrap around silently.
  expect_error(kMinimal + "run:\n  seed: -1\n", {"run.seed"});
}

TEST(TrainConfig, InvalidValuesNameTheKey) {
  expect_error(kMinimal + "run:\n  members: 0\n", {"recipe.yaml", "run.members"});
  expect_error(kMinimal + "run:\n  steps: -1\n", {"run.steps"});
  expect_error(kMinimal + "optimizer:\n  lr: -0.1\n", {"recipe.yaml", "optimizer.lr"});
  expect_error(kMinimal + "optimizer:\n  rule: lion\n", {"optimizer.rule", "lion", "adamezo"});
  expect_error(kMinimal + "optimizer:\n  rule: adamezo\n  horizon: 0\n", {"optimizer.horizon"});
  expect_error(kMinimal + "optimizer:\n  rule: adam\n  beta2: 1.5\n", {"optimizer.beta2"});
  expect_error(kMinimal + "optimizer:\n  allora_eta: -1\n", {"optimizer.allora_eta"});
  expect_error(kMinimal + "optimizer:\n  muon_step: 3\n", {"muon_step"});
  expect_error(kMinimal + "zo:\n  lisa_layers: 2\nroles:\n  grad: [1]\nrun:\n  members: 2\n",
               {"zo.lisa_layers", "roles.grad"});
  expect_error(kMinimal + "zo:\n  lisa_layers: 2\noptimizer:\n  rule: adamezo\n", {"zo.lisa_layers", "adamezo"});
  expect_error(kMinimal + "zo:\n  lisa_layers: -1\n", {"zo.lisa_layers"});
  // A key with no value is an error naming it, never the compiled-in default;
  // for a string it is the empty string.
  expect_error(kMinimal + "optimizer:\n  lr:\n", {"optimizer.lr", "no value"});
  expect_error(kMinimal + "optimizer:\n  lr: ~\n", {"optimizer.lr", "no value"});
  expect_error(kMinimal, {"optimizer.lr", "no value"}, {"optimizer.lr="});
  expect_error(kMinimal, {"zo.central", "a boolean"}, {"zo.central="});
  expect_error(kMinimal, {"run.steps", "an integer"}, {"run.steps=~"});
  EXPECT_EQ(parse_train_config(kMinimal, "r.yaml", {"task.test="}).task.test_path, "");
  expect_error(kMinimal + "trainable:\n  sparse_density: 0.1\n", {"trainable.sparse_density", "trainable.full"});
  expect_error(kMinimal + "trainable:\n  full: true\n  sparse_density: 1.5\n", {"trainable.sparse_density"});
  expect_error(kMinimal + "zo:\n  eps_final: 1e-4\n", {"zo.eps_final", "zo.eps_steps"});
  expect_error(kMinimal + "zo:\n  eps_steps: 100\n", {"zo.eps_final", "zo.eps_steps"});
  expect_error(kMinimal + "zo:\n  eps_final: -1\n  eps_steps: 100\n", {"zo.eps_final"});
  const std::string hizoo = kMinimal + "optimizer:\n  rule: hizoo\n";
  expect_error(hizoo + "zo:\n  central: false\n", {"hizoo", "zo.central"});
  expect_error(hizoo + "zo:\n  share_samples: false\n", {"hizoo", "zo.share_samples"});
  expect_error(hizoo + "robust:\n  rule: clip\n", {"hizoo", "robust.rule"});
  expect_error(hizoo + "robust:\n  screen: true\n", {"hizoo", "robust.screen"});
  expect_error(hizoo + "roles:\n  grad: [1]\nrun:\n  members: 2\n", {"hizoo", "roles.grad"});
  expect_error(hizoo + "zo:\n  lisa_layers: 2\n", {"hizoo", "zo.lisa_layers"});
  expect_error(kMinimal + "optimizer:\n  rule: hizoo\n  hessian_smooth: 2\n", {"optimizer.hessian_smooth"});
  expect_error(kMinimal + "zo:\n  lozo_rank: -1\n", {"zo.lozo_rank"});
  expect_error(kMinimal + "zo:\n  lozo_rank: 2\n  lozo_period: 0\n", {"zo.lozo_period"});
  expect_error(kMinimal + "zo:\n  lozo_rank: 2\nroles:\n  grad: [1]\nrun:\n  members: 2\n",
               {"zo.lozo_rank", "roles.grad"});
  expect_error(hizoo + "zo:\n  lozo_rank: 2\n", {"zo.lozo_rank", "hizoo"});
  expect_error(hizoo + "zo:\n  orthogonal_slots: true\n", {"zo.orthogonal_slots", "hizoo"});
  expect_error(kMinimal + "zo:\n  orthogonal_slots: true\n  lozo_rank: 2\n", {"zo.orthogonal_slots", "zo.lozo_rank"});
  expect_error(kMinimal + "roles:\n  short_tokens: 40\n", {"roles.short_tokens", "roles.grad"});
  expect_error(kMinimal + "roles:\n  short_tokens: -1\n  grad: [1]\nrun:\n  members: 2\n", {"roles.short_tokens"});
  expect_error(kMinimal + "optimizer:\n  grad_weight: 0.5\n", {"optimizer.grad_weight", "roles.grad"});
  expect_error(kMinimal + "optimizer:\n  grad_weight: 1.5\nroles:\n  grad: [1]\nrun:\n  members: 2\n",
               {"optimizer.grad_weight"});
  expect_error(kMinimal + "optimizer:\n  schedule: step\n", {"optimizer.schedule"});
  expect_error(kMinimal + "lora:\n  targets: [q, qkv]\n", {"recipe.yaml", "lora.targets", "qkv"});
  expect_error(kMinimal + "lora:\n  targets: [q, q]\n", {"lora.targets"});
  expect_error(kMinimal + "lora:\n  rank: 0\n", {"lora.rank"});
  expect_error("model:\n  path: m.bin\n  quantize: nf5\ntask:\n  train: t.txt\n", {"recipe.yaml", "model.quantize", "nf5"});
  expect_error(kMinimal + "zo:\n  q: 0\n", {"zo.q"});
  expect_error(kMinimal + "zo:\n  distribution: uniform\n", {"zo.distribution"});
  expect_error(kMinimal + "codec:\n  ema: 1.5\n", {"codec.ema"});
  expect_error("model:\n  path: m.bin\ntask:\n  train: t.txt\n  type: regression\n", {"task.type"});
  expect_error("task:\n  train: t.txt\n", {"recipe.yaml", "model.path"});
  expect_error("model:\n  path: m.bin\n", {"recipe.yaml", "task.train"});
  expect_error(kMinimal + "eval:\n  batch_tokens: 0\n", {"eval.batch_tokens"});
  expect_error(kMinimal + "zo:\n  redundancy: 0\n", {"zo.redundancy"});
  expect_error(kMinimal + "run:\n  members: 4\nzo:\n  redundancy: 3\n", {"run.members", "multiple of zo.redundancy"});
  expect_error(kMinimal + "robust:\n  rule: median\n", {"robust.rule median", "zo.redundancy"});
  expect_error(kMinimal + "run:\n  members: 3\nzo:\n  redundancy: 3\nrobust:\n  rule: median\n  screen: true\n",
               {"robust.screen"});
  expect_error(kMinimal + "elastic:\n  spot_tolerances: {CPU: 1}\n", {"elastic.spot_tolerances", "CPU"});
  expect_error(kMinimal + "elastic:\n  spot_tolerances: {a|b|c: 1}\n", {"a|b|c"});
  expect_error(kMinimal + "elastic:\n  spot_tolerances: {cpu: -1}\n", {"elastic.spot_tolerances.cpu", "0..255"});
  expect_error(kMinimal + "elastic:\n  spot_tolerances: {cpu: 1x}\n", {"elastic.spot_tolerances.cpu"});
}

TEST(TrainConfig, SetOverrides) {
  const TrainConfig c = parse_train_config(kMinimal + "run:\n  steps: 5\n", "r.yaml",
                                           {"run.steps=9", "optimizer.lr=2e-4", "codec.ema=0.5",
                                            "lora.targets=[q,k,v]", "task.label_words={\"0\": \" no\", \"1\": \" yes\"}",
                                            "zo.central=false", "model.path=other.bin"});
  EXPECT_EQ(c.run.steps, 9);
  EXPECT_EQ(c.optimizer.total_steps, 9);
  EXPECT_EQ(c.optimizer.lr, 2e-4f);
  EXPECT_EQ(c.codec.ema, 0.5f);  // the codec section did not exist: created
  EXPECT_EQ(c.lora.targets, (std::vector<Proj>{Proj::Q, Proj::K, Proj::V}));
  EXPECT_EQ(c.task.label_words, (std::map<std::string, std::string>{{"0", " no"}, {"1", " yes"}}));
  EXPECT_FALSE(c.zo.central);
  EXPECT_EQ(c.model.path, "other.bin");
  // Later overrides win; the whole recipe may come from overrides.
  const TrainConfig d = parse_train_config("", "<none>", {"model.path=a", "task.train=b", "run.seed=5", "run.seed=6"});
  EXPECT_EQ(d.run.seed, 6u);
  EXPECT_EQ(d.task.train_path, "b");
  // Malformed overrides.
  expect_error(kMinimal, {"--set", "KEY=VALUE"}, {"run.steps"});
  expect_error(kMinimal, {"--set", "KEY=VALUE"}, {"=3"});
  expect_error(kMinimal + "run:\n  steps: 5\n", {"--set run.steps.x=1", "not a mapping"}, {"run.steps.x=1"});
  expect_error(kMinimal, {"--set", "not valid YAML"}, {"run.steps=[1"});
  expect_error(kMinimal, {"run.steps", "integer"}, {"run.steps=ten"});
}

TEST(TrainConfig, PathExpansion) {
  {
    const ScopedEnv shared("ZEROTH_SHARED", "/somewhere/shared");
    const ScopedEnv cache("ZEROTH_CACHE", "/var/cache/z");
    const TrainConfig c = parse_train_config(
        "model:\n  path: ${shared}/models/m.bin\n  tokenizer: ${cache}/tok.bin\ntask:\n  train: ${repo}/configs/x.txt\n"
        "  dev: ${shared}/a/${shared}/b\nrun:\n  dir: ${cache}/runs/r\n",
        "p.yaml", {});
    EXPECT_EQ(c.model.path, "/somewhere/shared/models/m.bin");
    EXPECT_EQ(c.model.tokenizer, "/var/cache/z/tok.bin");
    EXPECT_EQ(c.task.train_path, std::string(ZEROTH_SOURCE_DIR) + "/configs/x.txt");
    EXPECT_EQ(c.task.dev_path, "/somewhere/shared/a//somewhere/shared/b");  // every occurrence
    EXPECT_EQ(c.run.dir, "/var/cache/z/runs/r");
    // Overrides expand too.
    EXPECT_EQ(parse_train_config(kMinimal, "p.yaml", {"model.path=${repo}/m"}).model.path,
              std::string(ZEROTH_SOURCE_DIR) + "/m");
  }
  {
    const ScopedEnv shared("ZEROTH_SHARED", nullptr);
    const ScopedEnv cache("ZEROTH_CACHE", nullptr);
    const ScopedEnv home("HOME", "/home/someone");
    EXPECT_EQ(expand_path("${shared}/x"), std::string(ZEROTH_SHARED_DIR) + "/x");
    EXPECT_EQ(expand_path("${cache}/y"), "/home/someone/.cache/zeroth/y");
    EXPECT_EQ(expand_path("plain/${other}"), "plain/${other}");
  }
}

TEST(TrainConfig, ToYamlRoundTrips) {
  for (const std::string& text : {kMinimal, std::string(kEverything), std::string(kDefaultConfigYaml)}) {
    const TrainConfig c = parse_train_config(text, "a.yaml", {"task.separator=<|endoftext|>", "optimizer.lr=3.3e-5"});
    const std::string y = c.to_yaml();
    const TrainConfig back = parse_train_config(y, "b.yaml", {});
    EXPECT_EQ(back.to_yaml(), y);
    EXPECT_EQ(back.optimizer.lr, c.optimizer.lr);  // floats keep every bit
    EXPECT_EQ(back.zo.eps, c.zo.eps);
    EXPECT_EQ(back.task.separator, "<|endoftext|>");
    EXPECT_EQ(back.task.label_words, c.task.label_words);
    EXPECT_EQ(back.lora.targets, c.lora.targets);
    EXPECT_EQ(back.run.seed, c.run.seed);
    EXPECT_EQ(back.task.template_text, c.task.template_text);
  }
  // The newer rules' keys are stored where the rule reads them.
  for (const char* rule : {"adam", "adamezo", "muon"}) {
    const TrainConfig c = parse_train_config(kMinimal, "a.yaml",
                                             {std::string("optimizer.rule=") + rule, "optimizer.beta1=0.8",
                                              "optimizer.beta2=0.95", "optimizer.adam_eps=1e-6", "optimizer.horizon=7",
                                              "optimizer.muon_steps=3", "optimizer.allora_eta=0.5"});
    const TrainConfig back = parse_train_config(c.to_yaml(), "b.yaml", {});
    EXPECT_EQ(back.optimizer.rule, c.optimizer.rule);
    EXPECT_EQ(back.optimizer.allora_eta, 0.5f);
    if (c.optimizer.rule != UpdateRule::Muon) {
      EXPECT_EQ(back.optimizer.beta1, 0.8f);
      EXPECT_EQ(back.optimizer.beta2, 0.95f);
      EXPECT_EQ(back.optimizer.adam_eps, 1e-6f);
    } else {
      EXPECT_EQ(back.optimizer.muon_steps, 3);
    }
    if (c.optimizer.rule == UpdateRule::AdaMezo) {
      EXPECT_EQ(back.optimizer.horizon, 7);
    }
  }
  // The sparse mask's density and the ε schedule are stored (a resumed run and replay read them).
  {
    const TrainConfig c = parse_train_config(kMinimal, "a.yaml",
                                             {"trainable.full=true", "trainable.sparse_density=0.05",
                                              "zo.eps_final=1e-4", "zo.eps_steps=300"});
    const TrainConfig back = parse_train_config(c.to_yaml(), "b.yaml", {});
    EXPECT_EQ(back.trainable.sparse_density, 0.05f);
    EXPECT_EQ(back.zo.eps_final, 1e-4f);
    EXPECT_EQ(back.zo.eps_steps, 300);
    EXPECT_EQ(back.replica().trainable.sparse_density, 0.05f);
    const TrainConfig h = parse_train_config(kMinimal, "a.yaml", {"optimizer.rule=hizoo", "optimizer.hessian_smooth=1e-4"});
    const TrainConfig hb = parse_train_config(h.to_yaml(), "b.yaml", {});
    EXPECT_EQ(hb.optimizer.hessian_smooth, 1e-4f);
    EXPECT_TRUE(hb.zo.curvature);
    EXPECT_TRUE(hb.curvature_records());
    EXPECT_FALSE(back.zo.curvature);
    const TrainConfig l = parse_train_config(kMinimal, "a.yaml", {"zo.lozo_rank=3", "zo.lozo_period=7"});
    const TrainConfig lb = parse_train_config(l.to_yaml(), "b.yaml", {});
    EXPECT_EQ(lb.zo.directions.lozo_rank, 3);
    EXPECT_EQ(lb.zo.directions.lozo_period, 7);
    EXPECT_EQ(lb.optimizer.directions.lozo_rank, 3);
    EXPECT_EQ(lb.optimizer.directions.lozo_period, 7);
    const TrainConfig o = parse_train_config(kMinimal, "a.yaml", {"zo.orthogonal_slots=true", "zo.q=4"});
    EXPECT_TRUE(parse_train_config(o.to_yaml(), "b.yaml", {}).optimizer.directions.orthogonal_slots);
    const TrainConfig ax = parse_train_config(kMinimal, "a.yaml", {"roles.grad=[1]", "run.members=2",
                                                                     "roles.short_tokens=48"});
    EXPECT_EQ(parse_train_config(ax.to_yaml(), "b.yaml", {}).zo.short_tokens, 48);
  }
  // Every key survives, not only the ones compared above (resume is a
  // property of one invocation, not of the run, so it is not stored).
  const TrainConfig all = parse_train_config(parse_train_config(kEverything, "a", {}).to_yaml(), "b", {});
  expect_everything(all);
  EXPECT_FALSE(all.run.resume);
}

TEST(TrainConfig, EmbeddedDefaultAndRecipesParse) {
  const TrainConfig d = parse_train_config(kDefaultConfigYaml, "<embedded default>", {});
  EXPECT_EQ(d.task.type, "classification");
  EXPECT_GT(d.run.steps, 0);
  EXPECT_EQ(d.task.train_path.find("${"), std::string::npos);
  EXPECT_EQ(d.model.path.find("${"), std::string::npos);
  int recipes = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(ZEROTH_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(load_train_config(e.path().string(), {}));
    ++recipes;
  }
  EXPECT_GE(recipes, 3);
  EXPECT_THROW(load_train_config("/nonexistent/recipe.yaml", {}), Error);
}

// yaml-cpp keeps a key given twice and lookups find the first, so a second
// `task:` section (or label word) was silently ignored. Seen while fuzzing.
TEST(TrainConfig, DuplicateKeysAreErrors) {
  expect_error(kMinimal + "task:\n  type: classification\n", {"recipe.yaml", "task appears twice"});
  expect_error(kMinimal + "zo:\n  q: 2\n  q: 3\n", {"recipe.yaml", "zo.q appears twice"});
  expect_error("model:\n  path: m.bin\ntask:\n  train: t.txt\n  label_words: {'0': a, '0': b}\n",
               {"task.label_words.0 appears twice"});
}

// Found by fuzzing (tests/fuzz): YAML allows any node as a mapping key, and a
// map or list as a key made the unknown-key check (and task.label_words) throw
// yaml-cpp's TypedBadConversion instead of a zeroth::Error naming the section.
TEST(TrainConfig, NonScalarKeysAreErrorsNamingTheSection) {
  expect_error(kMinimal + "? [a, b]\n: 1\n", {"recipe.yaml", "the config", "not a plain name", "[a, b]"});
  expect_error(kMinimal + "zo:\n  {central: true}: 1\n", {"recipe.yaml", "zo", "not a plain name", "{central: true}"});
  expect_error("model:\n  path: m.bin\ntask:\n  train: t.txt\n  label_words:\n    [x]: y\n",
               {"task.label_words", "not a plain name", "[x]"});
  // The input the fuzzer found (a recipe with a block map as a top-level key).
  const auto path = std::filesystem::path(ZEROTH_SOURCE_DIR) / "tests/fuzz/regressions/train_config/map-as-key";
  try {
    load_train_config(path.string(), {});
    ADD_FAILURE() << "the fuzz input parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a plain name"), std::string::npos) << e.what();
  }
}

TEST(TrainConfig, RolesNameGradientMembers) {
  const auto c = parse_train_config(kMinimal, "recipe.yaml", {"run.members=4", "roles.grad=[1, 3]",
                                                              "roles.checkpoint=true"});
  EXPECT_EQ(c.roles.grad, (std::vector<int>{1, 3}));
  EXPECT_TRUE(c.roles.checkpoint);
  EXPECT_EQ(c.roles.role_of(3), MemberRole::Grad);
  EXPECT_EQ(c.roles.role_of(0), MemberRole::Zo);
  // The resolved config round-trips the roles.
  const auto again = parse_train_config(c.to_yaml(), "resolved", {});
  EXPECT_EQ(again.roles.grad, c.roles.grad);
  EXPECT_TRUE(again.roles.checkpoint);
  expect_error(kMinimal, {"roles.grad names member 4", "members 0..3"}, {"run.members=4", "roles.grad=[4]"});
  expect_error(kMinimal, {"roles.grad names member 1 twice"}, {"run.members=4", "roles.grad=[1, 1]"});
  expect_error(kMinimal, {"roles.grad", "\"one\" is not a member id"}, {"roles.grad=[one]"});
  expect_error(kMinimal, {"roles.grad", "trainable.full"}, {"roles.grad=[0]", "trainable.full=true"});
}

TEST(TrainConfig, RolesAutoMemoryAndGradSlots) {
  const auto c = parse_train_config(kMinimal, "recipe.yaml", {"run.members=4", "zo.q=2", "roles.auto=true",
                                                              "roles.memory=1.5GiB", "roles.grad_slots=16"});
  EXPECT_TRUE(c.roles.auto_roles);
  EXPECT_EQ(c.roles.memory, "1.5GiB");
  EXPECT_EQ(c.roles.slots_of_grad(c.zo.q), 16);
  const auto again = parse_train_config(c.to_yaml(), "resolved", {});
  EXPECT_TRUE(again.roles.auto_roles);
  EXPECT_EQ(again.roles.memory, "1.5GiB");
  EXPECT_EQ(again.roles.grad_slots, 16);
  EXPECT_EQ(parse_train_config(kMinimal, "r", {"zo.q=3"}).roles.slots_of_grad(3), 3);  // 0: zo.q
  expect_error(kMinimal, {"roles.memory", "\"lots\" is not a size"}, {"roles.memory=lots"});
  expect_error(kMinimal, {"roles.grad_slots is 5000"}, {"roles.grad_slots=5000"});
  expect_error(kMinimal, {"roles.grad_slots (4) differs from zo.q (1)", "zo.redundancy"},
               {"run.members=4", "zo.redundancy=2", "roles.grad_slots=4"});
  expect_error(kMinimal, {"roles.auto", "trainable.full"}, {"roles.auto=true", "trainable.full=true"});
  expect_error(kMinimal, {"mode fo", "roles.auto"}, {"mode=fo", "roles.auto=true"});
}

TEST(TrainConfig, JvpMembersAndTheirDirections) {
  const auto c = parse_train_config(kMinimal, "recipe.yaml", {"run.members=4", "roles.grad=[0]", "roles.jvp=[2, 3]",
                                                              "roles.jvp_directions=4"});
  EXPECT_EQ(c.roles.role_of(0), MemberRole::Grad);
  EXPECT_EQ(c.roles.role_of(1), MemberRole::Zo);
  EXPECT_EQ(c.roles.role_of(3), MemberRole::Jvp);
  EXPECT_STREQ(member_role_name(MemberRole::Jvp), "jvp");
  const auto again = parse_train_config(c.to_yaml(), "resolved", {});
  EXPECT_EQ(again.roles.jvp, (std::vector<int>{2, 3}));
  EXPECT_EQ(again.roles.jvp_directions, 4);
  expect_error(kMinimal, {"roles.grad and roles.jvp names member 1 twice"},
               {"run.members=4", "roles.grad=[1]", "roles.jvp=[1]"});
  expect_error(kMinimal, {"roles.jvp names member 9"}, {"run.members=4", "roles.jvp=[9]"});
  expect_error(kMinimal, {"roles.jvp_directions is -1"}, {"roles.jvp_directions=-1"});
  expect_error(kMinimal, {"mode fo", "roles.jvp"}, {"mode=fo", "roles.jvp=[0]"});
}

TEST(Roles, GradientMembersThatFitCountWithHeadroom) {
  const int64_t mib = 1 << 20;
  EXPECT_EQ(members_that_fit(0, 100 * mib), 0);
  EXPECT_EQ(members_that_fit(124 * mib, 100 * mib), 0);  // 1.25 × 100 MiB needed
  EXPECT_EQ(members_that_fit(125 * mib, 100 * mib), 1);
  EXPECT_EQ(members_that_fit(374 * mib, 100 * mib), 2);
  EXPECT_EQ(members_that_fit(375 * mib, 100 * mib), 3);
  // A probe that measured ~0 still costs 1 MiB (× headroom) per member.
  EXPECT_EQ(members_that_fit(1024, 0), 0);
  EXPECT_EQ(members_that_fit(5 * mib, 0), 4);
  // The record layout follows the roles: gradient members get roles.grad_slots.
  auto c = parse_train_config(kMinimal, "r", {"run.members=3", "zo.q=2", "roles.grad_slots=7"});
  const RecordLayout l = record_layout(c, {MemberRole::Zo, MemberRole::Grad, MemberRole::Jvp});
  EXPECT_EQ(l.slots_of(0), 2u);
  EXPECT_EQ(l.slots_of(1), 7u);
  EXPECT_EQ(l.slots_of(2), 7u);
  c.roles.grad_slots = 0;  // the same count: a uniform layout
  EXPECT_TRUE(record_layout(c, {MemberRole::Zo, MemberRole::Grad, MemberRole::Zo}).member_slots.empty());
}

TEST(TrainConfig, ModeFoTakesAdamWSettings) {
  const auto c = parse_train_config(kMinimal, "recipe.yaml", {"mode=fo", "fo.beta2=0.99", "fo.weight_decay=0.01"});
  EXPECT_EQ(c.mode, "fo");
  EXPECT_FLOAT_EQ(c.fo.beta2, 0.99f);
  const auto again = parse_train_config(c.to_yaml(), "resolved", {});
  EXPECT_EQ(again.mode, "fo");
  EXPECT_FLOAT_EQ(again.fo.weight_decay, 0.01f);
  expect_error(kMinimal, {"mode is \"sgd\"", "zo", "fo"}, {"mode=sgd"});
  expect_error(kMinimal, {"mode fo", "roles.grad"}, {"mode=fo", "roles.grad=[0]"});
  expect_error(kMinimal, {"fo.beta1"}, {"fo.beta1=1.5"});
}

}  // namespace
}  // namespace zeroth::cli
