#include "launch/train_config.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/file_check.h"
#include "core/cuda_matmul.h"
#include "core/dtype.h"
#include "core/sysmem.h"
#include "launch/yaml_reader.h"

namespace zeroth::cli {
namespace {

Distribution parse_distribution(const std::string& s, const std::string& key) {
  if (s == "rademacher") return Distribution::Rademacher;
  if (s == "gaussian") return Distribution::Gaussian;
  fail("{}: \"{}\" is not a distribution (rademacher or gaussian)", key, s);
}

LrSchedule parse_schedule(const std::string& s) {
  if (s == "constant") return LrSchedule::Constant;
  if (s == "linear") return LrSchedule::Linear;
  if (s == "cosine") return LrSchedule::Cosine;
  fail("optimizer.schedule: \"{}\" is not a schedule (constant, linear or cosine)", s);
}

const char* schedule_name(LrSchedule s) {
  return s == LrSchedule::Linear ? "linear" : s == LrSchedule::Cosine ? "cosine" : "constant";
}

}  // namespace

std::string expand_path(const std::string& path) {
  auto env_or = [](const char* var, std::string fallback) {
    const char* v = std::getenv(var);
    return v && *v ? std::string(v) : fallback;
  };
  std::string out = path;
  auto replace = [&](const std::string& token, const std::string& value) {
    for (size_t p; (p = out.find(token)) != std::string::npos;) out.replace(p, token.size(), value);
  };
  if (out.find("${shared}") != std::string::npos) replace("${shared}", env_or("ZEROTH_SHARED", ZEROTH_SHARED_DIR));
  if (out.find("${repo}") != std::string::npos) replace("${repo}", ZEROTH_SOURCE_DIR);
  if (out.find("${cache}") != std::string::npos)
    replace("${cache}", env_or("ZEROTH_CACHE", env_or("HOME", "/tmp") + "/.cache/zeroth"));
  return out;
}

namespace {
// "a" or "a|b" (backend classes, [a-z0-9-]), with the pair sorted.
std::string spot_pair_key(const std::string& key, const std::string& source) {
  const size_t bar = key.find('|');
  std::string a = key.substr(0, bar), b = bar == std::string::npos ? a : key.substr(bar + 1);
  for (const std::string* part : {&a, &b}) {
    bool ok = !part->empty() && part->size() <= 32;
    for (const char ch : *part) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-');
    ZEROTH_CHECK(ok, "{}: elastic.spot_tolerances key \"{}\" must be a backend class (like cpu-x86-64-v4) or two "
                 "joined by | (see `zeroth calibrate`)", source, key);
  }
  return a == b ? a : a < b ? a + "|" + b : b + "|" + a;
}
int parse_tolerance(const std::string& value, const std::string& key, const std::string& source) {
  size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(value, &used);
  } catch (const std::exception&) {
  }
  ZEROTH_CHECK(used == value.size() && v >= 0 && v <= 255,
               "{}: elastic.spot_tolerances.{} is \"{}\": give a code difference in 0..255", source, key, value);
  return v;
}
}  // namespace

TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source,
                               const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail("{}: invalid YAML: {}", source, e.what());
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) apply_override(root, o);

  TrainConfig c;
  c.source = source;
  YamlReader top(root, "", source);
  // Lists of logical member ids (roles.grad, model.cuda_members, ...).
  auto ids = [&](const std::vector<std::string>& from, std::vector<int>& to, const char* key) {
    for (const auto& m : from) {
      size_t used = 0;
      int v = -1;
      try {
        v = std::stoi(m, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      ZEROTH_CHECK(used == m.size() && v >= 0, "{}: {}: \"{}\" is not a member id (0, 1, ...)", source, key, m);
      to.push_back(v);
    }
  };
  {
    auto r = top.child("run");
    r.get("dir", c.run.dir); r.get("seed", c.run.seed); r.get("steps", c.run.steps); r.get("members", c.run.members);
    r.get("threads", c.run.threads); r.get("log_every", c.run.log_every); r.get("eval_every", c.run.eval_every);
    r.get("snapshot_every", c.run.snapshot_every); r.get("hash_every", c.run.hash_every);
    r.get("durable", c.run.durable); r.get("resume", c.run.resume);
    r.finish();
  }
  {
    auto r = top.child("model");
    r.get("path", c.model.path); r.get("tokenizer", c.model.tokenizer); r.get("quantize", c.model.quantize);
    r.get("quantize_embeddings", c.model.quantize_embeddings);
    std::vector<std::string> cuda_members;
    r.get("device", c.model.device); r.get("cuda_members", cuda_members);
    ids(cuda_members, c.model.cuda_members, "model.cuda_members");
    r.get("cuda_precision", c.model.cuda_precision);
    r.finish();
  }
  {
    auto r = top.child("lora");
    std::vector<std::string> targets;
    r.get("rank", c.lora.rank); r.get("alpha", c.lora.alpha); r.get("targets", targets);
    if (!targets.empty()) {
      c.lora.targets.clear();
      for (const auto& t : targets) {
        const auto p = parse_proj(t);
        ZEROTH_CHECK(p.has_value(), "{}: lora.targets: \"{}\" is not a projection (q, k, v, o, gate, up, down)",
                     source, t);
        c.lora.targets.push_back(*p);
      }
    }
    r.finish();
  }
  {
    auto r = top.child("trainable");
    r.get("norms", c.trainable.norms); r.get("full", c.trainable.full);
    r.get("sparse_density", c.trainable.sparse_density);
    r.finish();
  }
  {
    auto r = top.child("zo");
    std::string dist = "rademacher";
    r.get("q", c.zo.q); r.get("eps", c.zo.eps); r.get("central", c.zo.central); r.get("samples", c.zo.samples);
    r.get("share_samples", c.zo.share_samples); r.get("distribution", dist);
    r.get("exact_gradients", c.zo.exact_gradients); r.get("redundancy", c.zo.redundancy);
    r.get("lisa_layers", c.zo.lisa_layers);
    r.get("eps_final", c.zo.eps_final); r.get("eps_steps", c.zo.eps_steps);
    r.get("lozo_rank", c.zo.directions.lozo_rank); r.get("lozo_period", c.zo.directions.lozo_period);
    r.get("orthogonal_slots", c.zo.directions.orthogonal_slots);
    c.zo.distribution = parse_distribution(dist, "zo.distribution");
    r.finish();
  }
  {
    auto r = top.child("optimizer");
    std::string rule = "sgd", schedule = "constant";
    r.get("rule", rule); r.get("lr", c.optimizer.lr); r.get("weight_decay", c.optimizer.weight_decay);
    r.get("momentum", c.optimizer.momentum); r.get("schedule", schedule);
    r.get("warmup_steps", c.optimizer.warmup_steps);
    r.get("beta1", c.optimizer.beta1); r.get("beta2", c.optimizer.beta2); r.get("adam_eps", c.optimizer.adam_eps);
    r.get("horizon", c.optimizer.horizon); r.get("muon_steps", c.optimizer.muon_steps);
    r.get("allora_eta", c.optimizer.allora_eta); r.get("grad_weight", c.optimizer.grad_weight);
    r.get("hessian_smooth", c.optimizer.hessian_smooth);
    c.optimizer.rule = parse_update_rule(rule);
    c.optimizer.schedule = parse_schedule(schedule);
    r.finish();
  }
  {
    auto r = top.child("codec");
    r.get("init_scale", c.codec.init_scale); r.get("range_rms", c.codec.range_rms); r.get("ema", c.codec.ema);
    r.get("min_scale", c.codec.min_scale);
    r.finish();
  }
  {
    auto r = top.child("task");
    auto& t = c.task;
    r.get("type", t.type); r.get("train", t.train_path); r.get("dev", t.dev_path); r.get("test", t.test_path);
    r.get("separator", t.separator); r.get("text_field", t.text_field); r.get("prompt_field", t.prompt_field);
    r.get("completion_field", t.completion_field); r.get("template", t.template_text);
    r.get("label_field", t.label_field); r.get("label_words", t.label_words); r.get("k_shot", t.k_shot);
    r.get("train_size", t.train_size); r.get("dev_size", t.dev_size); r.get("test_size", t.test_size);
    r.get("data_seed", t.data_seed); r.get("max_length", t.max_length); r.get("skip_bad_rows", t.skip_bad_rows);
    r.finish();
  }
  {
    auto r = top.child("robust");
    r.get("rule", c.robust.rule); r.get("clip_k", c.robust.clip_k); r.get("min_clip", c.robust.min_clip);
    r.get("trim", c.robust.trim); r.get("screen", c.robust.screen); r.get("window", c.robust.window);
    r.get("horizon", c.robust.horizon); r.get("bias_z", c.robust.bias_z); r.get("magnitude_k", c.robust.magnitude_k);
    r.finish();
  }
  {
    auto r = top.child("elastic");
    auto& e = c.elastic;
    r.get("min_workers", e.min_workers); r.get("max_workers", e.max_workers); r.get("heartbeat_s", e.heartbeat_s);
    r.get("missed_heartbeats", e.missed_heartbeats); r.get("step_deadline_s", e.step_deadline_s);
    r.get("wait_s", e.wait_s); r.get("data", e.data); r.get("max_per_identity", e.max_per_identity);
    r.get("joins_per_minute", e.joins_per_minute); r.get("spot_p", e.spot_p);
    r.get("spot_tolerance", e.spot_tolerance); r.get("spot_partners", e.spot_partners);
    std::map<std::string, std::string> tolerances;
    r.get("spot_tolerances", tolerances);
    for (const auto& [pair, value] : tolerances) e.spot_tolerances[spot_pair_key(pair, c.source)] =
        parse_tolerance(value, pair, c.source);
    r.finish();
  }
  top.get("mode", c.mode);
  {
    auto r = top.child("fo");
    r.get("beta1", c.fo.beta1); r.get("beta2", c.fo.beta2); r.get("eps", c.fo.eps);
    r.get("weight_decay", c.fo.weight_decay);
    r.finish();
  }
  {
    auto r = top.child("roles");
    std::vector<std::string> grad, jvp;
    r.get("grad", grad);
    r.get("jvp", jvp);
    r.get("checkpoint", c.roles.checkpoint);
    r.get("jvp_directions", c.roles.jvp_directions);
    r.get("auto", c.roles.auto_roles);
    r.get("memory", c.roles.memory);
    r.get("grad_slots", c.roles.grad_slots);
    r.get("short_tokens", c.zo.short_tokens);
    ids(grad, c.roles.grad, "roles.grad");
    ids(jvp, c.roles.jvp, "roles.jvp");
    r.finish();
  }
  {
    auto r = top.child("eval");
    r.get("batch_tokens", c.eval.batch_tokens);
    r.finish();
  }
  top.finish();

  c.model.path = expand_path(c.model.path);
  c.model.tokenizer = expand_path(c.model.tokenizer);
  for (auto* p : {&c.task.train_path, &c.task.dev_path, &c.task.test_path}) *p = expand_path(*p);
  c.run.dir = expand_path(c.run.dir);
  c.optimizer.total_steps = c.run.steps;
  c.optimizer.run_seed = c.run.seed;
  c.optimizer.distribution = c.zo.distribution;
  c.optimizer.key_group = c.zo.redundancy;
  c.optimizer.lisa_layers = c.zo.lisa_layers;
  c.zo.curvature = c.optimizer.rule == UpdateRule::HiZoo;
  c.optimizer.directions = c.zo.directions;
  c.robust.group = c.zo.redundancy;
  c.validate();
  return c;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  check_input_file(path, "the config file");
  std::ifstream in(path);
  ZEROTH_CHECK(bool(in), "{}: cannot open the config file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_train_config(ss.str(), path, overrides);
}

void TrainConfig::validate() const {
  auto where = [&](const char* key) { return source + ": " + key; };
  ZEROTH_CHECK(run.steps >= 0, "{} must be >= 0", where("run.steps"));
  ZEROTH_CHECK(run.members >= 1 && run.members <= 256, "{} must be in 1..256", where("run.members"));
  ZEROTH_CHECK(run.threads >= 0, "{} must be >= 0", where("run.threads"));
  ZEROTH_CHECK(run.log_every >= 1 && run.hash_every >= 1 && run.snapshot_every >= 0 && run.eval_every >= 0,
               "{}: log_every and hash_every must be >= 1; snapshot_every and eval_every >= 0", source);
  ZEROTH_CHECK(!run.dir.empty(), "{} is empty", where("run.dir"));
  ZEROTH_CHECK(!model.path.empty(), "{} is not set (a GGUF file, HF directory or llama2.c .bin)", where("model.path"));
  ZEROTH_CHECK(model.quantize.empty() || parse_dtype(model.quantize).has_value(),
               "{}: unknown dtype \"{}\" (try nf4, i8_b64, i4_b32, q8_0)", where("model.quantize"), model.quantize);
  ZEROTH_CHECK(eval.batch_tokens >= 1, "{} must be >= 1", where("eval.batch_tokens"));
  ZEROTH_CHECK(elastic.min_workers >= 1 && elastic.min_workers <= elastic.max_workers && elastic.max_workers <= 4096,
               "{}: elastic.min_workers must be in 1..elastic.max_workers, and max_workers <= 4096", source);
  ZEROTH_CHECK(elastic.heartbeat_s > 0 && elastic.missed_heartbeats >= 1 && elastic.step_deadline_s > 0 &&
                   elastic.wait_s >= 0,
               "{}: elastic.heartbeat_s and step_deadline_s must be > 0, missed_heartbeats >= 1, wait_s >= 0", source);
  ZEROTH_CHECK(elastic.spot_p >= 0 && elastic.spot_p <= 1 && elastic.spot_tolerance >= 0 && elastic.spot_partners >= 1,
               "{}: elastic.spot_p must be in [0, 1], spot_tolerance >= 0, spot_partners >= 1", source);
  ZEROTH_CHECK(elastic.max_per_identity >= 0 && elastic.joins_per_minute >= 1,
               "{}: elastic.max_per_identity must be >= 0 and elastic.joins_per_minute >= 1", source);
  ZEROTH_CHECK(elastic.data == "assigned" || elastic.data == "private",
               "{}: elastic.data is \"{}\"; use assigned or private", where("elastic.data"), elastic.data);
  ZEROTH_CHECK(zo.redundancy == 0 || run.members % int(zo.redundancy) == 0,  // 0: zo.validate() names it
               "{}: run.members ({}) must be a multiple of zo.redundancy ({}): the members of a group share their "
               "directions",
               source, run.members, zo.redundancy);
  ZEROTH_CHECK(std::isfinite(trainable.sparse_density) && trainable.sparse_density >= 0 &&
                   trainable.sparse_density <= 1,
               "{}: trainable.sparse_density must be in [0, 1] (got {}; 0 = no mask, every element moves)", source,
               trainable.sparse_density);
  ZEROTH_CHECK(trainable.sparse_density == 0 || trainable.full,
               "{}: trainable.sparse_density ({}) masks full weights by their magnitude; it needs trainable.full: "
               "true (LoRA's B starts at zero, so its magnitudes rank nothing)", source, trainable.sparse_density);
  ZEROTH_CHECK(!trainable.full || model.quantize.empty(),
               "{}: trainable.full trains every weight in f32: it cannot run on a quantized base (model.quantize)",
               source);
  ZEROTH_CHECK(model.device == "cpu" || model.device == "cuda", "{} is \"{}\"; use cpu or cuda",
               where("model.device"), model.device);
  parse_gemm_precision(model.cuda_precision, (source + ": model.cuda_precision").c_str());
  for (size_t i = 0; i < model.cuda_members.size(); ++i) {
    const int m = model.cuda_members[i];
    ZEROTH_CHECK(m >= 0 && m < run.members, "{} names member {}, but the run has members 0..{} (run.members = {})",
                 where("model.cuda_members"), m, run.members - 1, run.members);
    for (size_t j = 0; j < i; ++j)
      ZEROTH_CHECK(model.cuda_members[j] != m, "{} names member {} twice", where("model.cuda_members"), m);
  }
  if (model.any_cuda()) {
    // What the CUDA backend does not run yet: say which key to change.
    ZEROTH_CHECK(mode == "zo", "{}: mode fo backpropagates, and CUDA members have no backward pass yet: drop "
                 "model.device/model.cuda_members or use mode zo", source);
    ZEROTH_CHECK(!trainable.full, "{}: trainable.full is not on CUDA members (LoRA adapters and norms are): drop "
                 "model.device/model.cuda_members or trainable.full", source);
    ZEROTH_CHECK(!roles.auto_roles || model.device != "cuda", "{}: roles.auto picks gradient or JVP members, which "
                 "CUDA members are not yet: with model.device cuda drop roles.auto", source);
    for (const auto* list : {&roles.grad, &roles.jvp})
      for (int m : *list)
        ZEROTH_CHECK(!model.on_cuda(uint32_t(m)), "{}: member {} is a {} member, which runs on the CPU (the CUDA "
                     "backend has no backward or JVP pass yet): take it out of model.cuda_members (or model.device "
                     "cuda)", source, m, list == &roles.grad ? "roles.grad" : "roles.jvp");
  }
  std::vector<std::pair<int, const char*>> named;  // every member a role list names
  for (int m : roles.grad) named.emplace_back(m, "roles.grad");
  for (int m : roles.jvp) named.emplace_back(m, "roles.jvp");
  for (size_t i = 0; i < named.size(); ++i) {
    ZEROTH_CHECK(named[i].first >= 0 && named[i].first < run.members, "{}: {} names member {}, but the run has "
                 "members 0..{} (run.members = {})", source, named[i].second, named[i].first, run.members - 1,
                 run.members);
    for (size_t j = i + 1; j < named.size(); ++j)
      ZEROTH_CHECK(named[i].first != named[j].first, "{}: {} names member {} twice", source,
                   named[i].second == named[j].second ? named[i].second : "roles.grad and roles.jvp",
                   named[i].first);
  }
  ZEROTH_CHECK(roles.jvp_directions >= 0 && roles.jvp_directions <= 4096, "{}: roles.jvp_directions is {}; use 0 "
               "(all slots in one pass) or 1..4096", source, roles.jvp_directions);
  ZEROTH_CHECK(mode == "zo" || mode == "fo", "{}: mode is \"{}\"; use zo (one-byte records, the ledger) or fo "
               "(data-parallel backprop with AdamW)", source, mode);
  ZEROTH_CHECK(mode == "zo" || (!trainable.full && roles.grad.empty() && roles.jvp.empty() && !roles.auto_roles),
               "{}: mode fo backpropagates on every member: it takes no roles.grad, roles.jvp, roles.auto or "
               "trainable.full", source);
  ZEROTH_CHECK(roles.grad_slots >= 0 && roles.grad_slots <= 4096, "{}: roles.grad_slots is {}; use 0 (zo.q) or "
               "1..4096 slots per gradient member", source, roles.grad_slots);
  ZEROTH_CHECK(roles.slots_of_grad(zo.q) == zo.q || zo.redundancy <= 1,
               "{}: roles.grad_slots ({}) differs from zo.q ({}), but zo.redundancy {} needs every member of a "
               "group on the same slots", source, roles.grad_slots, zo.q, zo.redundancy);
  if (!roles.memory.empty()) parse_byte_size(roles.memory, source + ": roles.memory");
  ZEROTH_CHECK(zo.short_tokens == 0 || ((!roles.grad.empty() || !roles.jvp.empty() || roles.auto_roles) && mode == "zo"),
               "{}: roles.short_tokens ({}) sends the short examples to gradient members and the long ones to ZO "
               "members (Addax), but the run has no gradient members: set roles.grad, roles.jvp or roles.auto, or "
               "drop roles.short_tokens", source, zo.short_tokens);
  ZEROTH_CHECK(optimizer.grad_weight < 0 || !roles.grad.empty() || !roles.jvp.empty() || roles.auto_roles,
               "{}: optimizer.grad_weight ({}) weighs gradient members' records against ZO members', but the run has "
               "no gradient members: set roles.grad, roles.jvp or roles.auto, or drop optimizer.grad_weight", source,
               optimizer.grad_weight);
  if (optimizer.rule == UpdateRule::HiZoo) {
    ZEROTH_CHECK(roles.grad.empty() && roles.jvp.empty() && !roles.auto_roles && mode == "zo",
                 "{}: optimizer.rule hizoo estimates curvature from zeroth-order evaluations; the gradient path "
                 "(roles.grad, roles.jvp, roles.auto) and mode fo send none: drop one or the other", source);
    ZEROTH_CHECK(robust.rule == "none" && !robust.screen,
                 "{}: optimizer.rule hizoo with robust.rule {} / robust.screen {}: the robust filters read one "
                 "gradient code per slot and know nothing of curvature codes; use robust.rule none and screen false",
                 source, robust.rule, robust.screen);
    ZEROTH_CHECK(trainable.sparse_density == 0, "{}: optimizer.rule hizoo with trainable.sparse_density: the "
                 "curvature estimate does not follow the mask; drop one", source);
  }
  ZEROTH_CHECK(zo.directions.plain() || (roles.grad.empty() && roles.jvp.empty() && !roles.auto_roles && mode == "zo"),
               "{}: zo.lozo_rank ({}) / zo.orthogonal_slots ({}) shape the perturbation directions; the gradient path "
               "(roles.grad, roles.jvp, roles.auto) projects onto ordinary z and mode fo onto none: drop one or the "
               "other", source, zo.directions.lozo_rank, zo.directions.orthogonal_slots);
  ZEROTH_CHECK(zo.lisa_layers == 0 || (roles.grad.empty() && roles.jvp.empty() && !roles.auto_roles && mode == "zo"),
               "{}: zo.lisa_layers ({}) samples the layers of zeroth-order steps; the gradient path (roles.grad, "
               "roles.jvp, roles.auto) and mode fo project onto every layer: drop one or the other", source,
               zo.lisa_layers);
  ZEROTH_CHECK((roles.grad.empty() && roles.jvp.empty() && !roles.auto_roles) || !trainable.full,
               "{}: roles.grad/roles.jvp/roles.auto: the gradient path trains LoRA adapters and norms; trainable.full "
               "has no backward or JVP (drop the roles or trainable.full)", source);
  try {
    if (!trainable.full) lora.validate();
    zo.validate();
    optimizer.validate();
    codec.validate();
    task.validate();
    robust.validate();
    fo.validate();
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
}

std::string TrainConfig::to_yaml() const {
  YAML::Emitter y;
  y.SetFloatPrecision(9);
  y.SetDoublePrecision(17);
  y << YAML::BeginMap;
  y << YAML::Key << "run" << YAML::Value << YAML::BeginMap << YAML::Key << "dir" << YAML::Value << run.dir
    << YAML::Key << "seed" << YAML::Value << run.seed << YAML::Key << "steps" << YAML::Value << run.steps
    << YAML::Key << "members" << YAML::Value << run.members << YAML::Key << "threads" << YAML::Value << run.threads
    << YAML::Key << "log_every" << YAML::Value << run.log_every << YAML::Key << "eval_every" << YAML::Value
    << run.eval_every << YAML::Key << "snapshot_every" << YAML::Value << run.snapshot_every << YAML::Key
    << "hash_every" << YAML::Value << run.hash_every << YAML::Key << "durable" << YAML::Value << run.durable
    << YAML::EndMap;
  y << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "path" << YAML::Value << model.path
    << YAML::Key << "tokenizer" << YAML::Value << model.tokenizer << YAML::Key << "quantize" << YAML::Value
    << model.quantize << YAML::Key << "quantize_embeddings" << YAML::Value << model.quantize_embeddings
    << YAML::Key << "device" << YAML::Value << model.device << YAML::Key << "cuda_members" << YAML::Value
    << YAML::Flow << YAML::BeginSeq;
  for (int m : model.cuda_members) y << m;
  y << YAML::EndSeq << YAML::Key << "cuda_precision" << YAML::Value << model.cuda_precision << YAML::EndMap;
  y << YAML::Key << "lora" << YAML::Value << YAML::BeginMap << YAML::Key << "rank" << YAML::Value << lora.rank
    << YAML::Key << "alpha" << YAML::Value << lora.alpha << YAML::Key << "targets" << YAML::Value << YAML::Flow
    << YAML::BeginSeq;
  for (Proj p : lora.targets) y << std::string(proj_name(p));
  y << YAML::EndSeq << YAML::EndMap;
  y << YAML::Key << "trainable" << YAML::Value << YAML::BeginMap << YAML::Key << "norms" << YAML::Value
    << trainable.norms << YAML::Key << "full" << YAML::Value << trainable.full;
  if (trainable.sparse_density > 0) y << YAML::Key << "sparse_density" << YAML::Value << trainable.sparse_density;
  y << YAML::EndMap;
  y << YAML::Key << "zo" << YAML::Value << YAML::BeginMap << YAML::Key << "q" << YAML::Value << zo.q << YAML::Key
    << "eps" << YAML::Value << zo.eps << YAML::Key << "central" << YAML::Value << zo.central << YAML::Key
    << "samples" << YAML::Value << zo.samples << YAML::Key << "share_samples" << YAML::Value << zo.share_samples
    << YAML::Key << "distribution" << YAML::Value << distribution_name(zo.distribution) << YAML::Key
    << "exact_gradients" << YAML::Value << zo.exact_gradients << YAML::Key << "redundancy" << YAML::Value
    << zo.redundancy;
  if (zo.lisa_layers > 0) y << YAML::Key << "lisa_layers" << YAML::Value << zo.lisa_layers;
  if (zo.directions.low_rank())
    y << YAML::Key << "lozo_rank" << YAML::Value << zo.directions.lozo_rank << YAML::Key << "lozo_period" << YAML::Value
      << zo.directions.lozo_period;
  if (zo.directions.orthogonal_slots) y << YAML::Key << "orthogonal_slots" << YAML::Value << true;
  if (zo.eps_final > 0)
    y << YAML::Key << "eps_final" << YAML::Value << zo.eps_final << YAML::Key << "eps_steps" << YAML::Value
      << zo.eps_steps;
  y << YAML::EndMap;
  y << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap << YAML::Key << "rule" << YAML::Value
    << update_rule_name(optimizer.rule) << YAML::Key << "lr" << YAML::Value << optimizer.lr << YAML::Key
    << "weight_decay" << YAML::Value << optimizer.weight_decay << YAML::Key << "momentum" << YAML::Value
    << optimizer.momentum << YAML::Key << "schedule" << YAML::Value << schedule_name(optimizer.schedule)
    << YAML::Key << "warmup_steps" << YAML::Value << optimizer.warmup_steps;
  // A rule's own keys only where it reads them: an sgd, momentum or sign config lists none of them.
  if (optimizer.rule == UpdateRule::Adam || optimizer.rule == UpdateRule::AdaMezo)
    y << YAML::Key << "beta1" << YAML::Value << optimizer.beta1 << YAML::Key << "beta2" << YAML::Value
      << optimizer.beta2 << YAML::Key << "adam_eps" << YAML::Value << optimizer.adam_eps;
  if (optimizer.rule == UpdateRule::AdaMezo) y << YAML::Key << "horizon" << YAML::Value << optimizer.horizon;
  if (optimizer.rule == UpdateRule::Muon) y << YAML::Key << "muon_steps" << YAML::Value << optimizer.muon_steps;
  if (optimizer.allora_eta > 0) y << YAML::Key << "allora_eta" << YAML::Value << optimizer.allora_eta;
  if (optimizer.grad_weight >= 0) y << YAML::Key << "grad_weight" << YAML::Value << optimizer.grad_weight;
  if (optimizer.rule == UpdateRule::HiZoo)
    y << YAML::Key << "hessian_smooth" << YAML::Value << optimizer.hessian_smooth;
  y << YAML::EndMap;
  y << YAML::Key << "codec" << YAML::Value << YAML::BeginMap << YAML::Key << "init_scale" << YAML::Value
    << codec.init_scale << YAML::Key << "range_rms" << YAML::Value << codec.range_rms << YAML::Key << "ema"
    << YAML::Value << codec.ema << YAML::Key << "min_scale" << YAML::Value << codec.min_scale << YAML::EndMap;
  y << YAML::Key << "task" << YAML::Value << YAML::BeginMap << YAML::Key << "type" << YAML::Value << task.type
    << YAML::Key << "train" << YAML::Value << task.train_path << YAML::Key << "dev" << YAML::Value << task.dev_path
    << YAML::Key << "test" << YAML::Value << task.test_path << YAML::Key << "separator" << YAML::Value
    << task.separator << YAML::Key << "text_field" << YAML::Value << task.text_field << YAML::Key << "prompt_field"
    << YAML::Value << task.prompt_field << YAML::Key << "completion_field" << YAML::Value << task.completion_field
    << YAML::Key << "template" << YAML::Value << task.template_text << YAML::Key << "label_field" << YAML::Value
    << task.label_field << YAML::Key << "label_words" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : task.label_words) y << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  y << YAML::EndMap << YAML::Key << "k_shot" << YAML::Value << task.k_shot << YAML::Key << "train_size"
    << YAML::Value << task.train_size << YAML::Key << "dev_size" << YAML::Value << task.dev_size << YAML::Key
    << "test_size" << YAML::Value << task.test_size << YAML::Key << "data_seed" << YAML::Value << task.data_seed
    << YAML::Key << "max_length" << YAML::Value << task.max_length << YAML::Key << "skip_bad_rows" << YAML::Value
    << task.skip_bad_rows << YAML::EndMap;
  y << YAML::Key << "mode" << YAML::Value << mode;
  y << YAML::Key << "fo" << YAML::Value << YAML::BeginMap << YAML::Key << "beta1" << YAML::Value << fo.beta1
    << YAML::Key << "beta2" << YAML::Value << fo.beta2 << YAML::Key << "eps" << YAML::Value << fo.eps << YAML::Key
    << "weight_decay" << YAML::Value << fo.weight_decay << YAML::EndMap;
  y << YAML::Key << "roles" << YAML::Value << YAML::BeginMap << YAML::Key << "grad" << YAML::Value << YAML::Flow
    << YAML::BeginSeq;
  for (int m : roles.grad) y << m;
  y << YAML::EndSeq << YAML::Key << "jvp" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (int m : roles.jvp) y << m;
  y << YAML::EndSeq << YAML::Key << "checkpoint" << YAML::Value << roles.checkpoint << YAML::Key << "jvp_directions"
    << YAML::Value << roles.jvp_directions << YAML::Key << "auto"
    << YAML::Value << roles.auto_roles << YAML::Key << "memory" << YAML::Value << roles.memory << YAML::Key
    << "grad_slots" << YAML::Value << roles.grad_slots;
  if (zo.short_tokens > 0) y << YAML::Key << "short_tokens" << YAML::Value << zo.short_tokens;
  y << YAML::EndMap;
  y << YAML::Key << "eval" << YAML::Value << YAML::BeginMap << YAML::Key << "batch_tokens" << YAML::Value
    << eval.batch_tokens << YAML::EndMap;
  y << YAML::Key << "robust" << YAML::Value << YAML::BeginMap << YAML::Key << "rule" << YAML::Value << robust.rule
    << YAML::Key << "clip_k" << YAML::Value << robust.clip_k << YAML::Key << "min_clip" << YAML::Value
    << robust.min_clip << YAML::Key << "trim" << YAML::Value << robust.trim << YAML::Key << "screen" << YAML::Value
    << robust.screen << YAML::Key << "window" << YAML::Value << robust.window << YAML::Key << "horizon" << YAML::Value
    << robust.horizon << YAML::Key << "bias_z" << YAML::Value << robust.bias_z << YAML::Key << "magnitude_k"
    << YAML::Value << robust.magnitude_k << YAML::EndMap;
  y << YAML::Key << "elastic" << YAML::Value << YAML::BeginMap << YAML::Key << "min_workers" << YAML::Value
    << elastic.min_workers << YAML::Key << "max_workers" << YAML::Value << elastic.max_workers << YAML::Key
    << "heartbeat_s" << YAML::Value << elastic.heartbeat_s << YAML::Key << "missed_heartbeats" << YAML::Value
    << elastic.missed_heartbeats << YAML::Key << "step_deadline_s" << YAML::Value << elastic.step_deadline_s
    << YAML::Key << "wait_s" << YAML::Value << elastic.wait_s << YAML::Key << "data" << YAML::Value << elastic.data
    << YAML::Key << "max_per_identity" << YAML::Value << elastic.max_per_identity << YAML::Key << "joins_per_minute"
    << YAML::Value << elastic.joins_per_minute << YAML::Key << "spot_p" << YAML::Value << elastic.spot_p << YAML::Key
    << "spot_tolerance" << YAML::Value << elastic.spot_tolerance << YAML::Key << "spot_partners" << YAML::Value
    << elastic.spot_partners;
  if (!elastic.spot_tolerances.empty()) {
    y << YAML::Key << "spot_tolerances" << YAML::Value << YAML::BeginMap;
    for (const auto& [pair, v] : elastic.spot_tolerances) y << YAML::Key << pair << YAML::Value << v;
    y << YAML::EndMap;
  }
  y << YAML::EndMap;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace zeroth::cli
