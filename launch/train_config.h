// A training run's configuration: plain structs with defaults, read from a
// YAML recipe (configs/*.yaml) plus --set overrides, and validated as a whole.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/lora.h"
#include "models/tasks/task.h"
#include "optim/adamw.h"
#include "optim/codec.h"
#include "optim/lora_trainable.h"
#include "optim/member_role.h"
#include "optim/replica.h"
#include "optim/robust.h"
#include "optim/update.h"
#include "optim/zo_step.h"

namespace zeroth::cli {

struct RunConfig {
  std::string dir = "runs/default";  // run directory: config, ledger, snapshots, metrics, export
  uint64_t seed = 1234;             // run seed: LoRA init and every perturbation key
  int64_t steps = 200;
  int members = 2;                  // local transport: members in this process (threads)
  int threads = 0;                  // total compute threads (0 = all cores), split among members
  int64_t log_every = 10;
  int64_t eval_every = 0;           // dev eval every N steps (0 = only before and after)
  int64_t snapshot_every = 100;
  int64_t hash_every = 10;          // compare replica hashes every K steps
  // fsync the ledger after every entry: it is the only copy of the finetuned
  // model, and an fsync costs 0.2–0.3 ms a step (docs/benchmarks.md). false
  // trades a crash's last entries for that time (the OS still writes them soon).
  bool durable = true;
  bool resume = false;              // continue the run in `dir` (also --resume)
};

struct ModelSection {
  std::string path;
  std::string tokenizer;
  std::string quantize;             // quantize full-precision projections on load ("" = keep)
  bool quantize_embeddings = false;
  // Where members compute: "cpu", or "cuda" for every
  // member of this process on GPU 0. cuda_members names the logical members
  // that run on the GPU when the others stay on the CPU (a mixed run). Both
  // kinds apply the same committed steps to the same θ on the host, so
  // replicas agree bit for bit whoever computed a record.
  std::string device = "cpu";
  std::vector<int> cuda_members;
  std::string cuda_precision = "f32";  // GPU GEMMs: f32 (no TF32), tf32 or bf16 (models/llama_cuda.h)
  bool on_cuda(uint32_t member) const {
    if (device == "cuda") return true;
    for (int m : cuda_members)
      if (uint32_t(m) == member) return true;
    return false;
  }
  bool any_cuda() const { return device == "cuda" || !cuda_members.empty(); }
};

struct EvalSection {
  int64_t batch_tokens = 4096;      // rows per evaluation forward
};

// `zeroth coordinator` / `zeroth worker`: elastic volunteer runs over TCP.
struct ElasticSection {
  int min_workers = 1;            // below this the coordinator waits (wait_s), then fails
  int max_workers = 8;            // admitted members per step; also the draw lanes of the samples
  double heartbeat_s = 1.0;       // heartbeats both ways
  int missed_heartbeats = 5;      // failure-detection bound = heartbeat_s × missed_heartbeats
  double step_deadline_s = 60;    // results later than this are rejected; the member sits the step out
  double wait_s = 300;
  int max_per_identity = 0;       // members one credential may hold at once (0 = no cap)
  int joins_per_minute = 60;      // per remote address
  double spot_p = 0;              // spot checks: probability a member's records are recomputed by another
  int spot_tolerance = 1;         // codes may differ by this much (rounding at a boundary)
  // Per backend class ("cpu-x86-64-v4") or pair of classes ("a|b"), as
  // `zeroth calibrate` measures them; pairs not listed get spot_tolerance.
  std::map<std::string, int> spot_tolerances;
  int spot_partners = 2;          // evict after disagreeing with this many distinct members
  std::string data = "assigned";  // "assigned": the coordinator's task, samples by draw lane;
                                  // "private": each worker reads its own file (zeroth worker --data)
};

// Which logical members run which step. Members
// listed in `grad` backpropagate through the frozen base and send exact
// projections ⟨∇L, z_k⟩ on their own keys (optim/grad_step.h); the others run
// zeroth-order differences. Both send the same one-byte records into the same
// ledger, so roles may differ between runs and replicas still agree.
struct RolesSection {
  std::vector<int> grad;    // logical member ids with role grad
  std::vector<int> jvp;     // logical member ids with role jvp
  bool checkpoint = false;  // grad members: recompute each layer in backward (less memory)
  int jvp_directions = 0;   // jvp members: directions per forward-mode pass (0: all slots in one)
  // roles.auto: the other members become gradient members where this
  // process's free memory holds their backward (launch/roles.h measures its
  // peak once at start), else JVP members where it holds a forward-mode pass,
  // else zeroth-order members.
  bool auto_roles = false;
  std::string memory;       // roles.memory: what this process may use ("" = the machine's available memory)
  int grad_slots = 0;       // roles.grad_slots: slots per gradient or JVP member (0 = zo.q)
  int slots_of_grad(int zo_q) const { return grad_slots > 0 ? grad_slots : zo_q; }
  MemberRole role_of(uint32_t member) const {
    for (int m : grad)
      if (uint32_t(m) == member) return MemberRole::Grad;
    for (int m : jvp)
      if (uint32_t(m) == member) return MemberRole::Jvp;
    return MemberRole::Zo;
  }
};

struct TrainConfig {
  std::string source = "<defaults>";  // where it was read from
  RunConfig run;
  ModelSection model;
  LoraConfig lora;
  TrainableOptions trainable;       // norms and/or full-weight training beside LoRA
  ZoConfig zo;
  OptimizerConfig optimizer;
  CodecConfig codec;
  TaskConfig task;
  EvalSection eval;
  ElasticSection elastic;
  RobustConfig robust;              // aggregation against poisoned contributions
  RolesSection roles;               // gradient members beside ZO members
  std::string mode = "zo";          // zo: the one-byte ledger protocol; fo: data-parallel backprop + AdamW
  AdamWConfig fo;                   // mode fo's optimizer (lr and schedule from optimizer.*)

  void validate() const;  // errors name the key
  std::string to_yaml() const;  // resolved config, as stored in the run directory and ledger
  // What a replica of θ needs: the lora, trainable, optimizer, codec and robust
  // sections and run.seed.
  ReplicaConfig replica() const { return {lora, trainable, optimizer, codec, robust, run.seed}; }
  // Members send HiZOO's curvature codes beside their gradient codes (optimizer.rule hizoo).
  bool curvature_records() const { return optimizer.rule == UpdateRule::HiZoo; }
};

// Reads `yaml_text` (from `source`), applies overrides, validates. In path
// values ${shared} expands to $ZEROTH_SHARED (default: ../shared beside the
// source tree), ${repo} to the source tree and ${cache} to $ZEROTH_CACHE
// (default: ~/.cache/zeroth);
// relative paths are relative to the working directory.
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source,
                               const std::vector<std::string>& overrides);
std::string expand_path(const std::string& path);
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace zeroth::cli
