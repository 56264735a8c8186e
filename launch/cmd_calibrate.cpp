// `zeroth calibrate`: measures how far two backends' one-byte codes lie apart
// on the same (samples, key) pairs, to set the spot-check tolerance per backend
// class (elastic.spot_tolerances).
//
//   zeroth calibrate CONFIG --out A.json [--steps N] [--members M] [--threads T]
//                    [--device cuda [--cuda-precision P]]
//     computes the records of members 0..M−1 at steps 0..N−1 at θ_0 (the
//     config's initialization, the codec's first scale) on this machine (on
//     its GPU with --device cuda) and writes them with the backend class;
//   zeroth calibrate --compare A.json B.json
//     checks both files describe the same work (config, base, keys) and prints
//     the distribution of |code_A − code_B| and the tolerance line to use.
// Run the first on each kind of machine (or build, or thread count), the second
// anywhere.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/file_check.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/parallel.h"
#include "launch/commands.h"
#include "launch/train_config.h"
#include "launch/trainer.h"
#include "models/llama_cuda.h"
#include "optim/zo_step.h"

namespace zeroth::cli {
namespace {

using json = nlohmann::json;
constexpr int kFormat = 1;

json measure(const std::string& config_path, const std::vector<std::string>& sets, int steps, int members,
             int threads, const std::string& device, const std::string& precision) {
  TrainConfig c = load_train_config(config_path, sets);
  if (members > 0) c.run.members = members;
  ZEROTH_CHECK(c.run.members % int(std::max(1u, c.zo.redundancy)) == 0, "--members {} must be a multiple of zo.redundancy {}",
               c.run.members, c.zo.redundancy);
  const TrainContext ctx = make_train_context(c);
  // --device cuda: the same work through the GPU model (the config, and so its
  // hash, unchanged: a CPU and a GPU file of one config compare).
  std::unique_ptr<LlamaCuda> gpu;
  if (device == "cuda") {
    ZEROTH_CHECK(cuda_available(), "--device cuda: no usable GPU here ({})", cuda_describe());
    LlamaCudaOptions o;
    o.precision = parse_gemm_precision(precision, "--cuda-precision");
    gpu = std::make_unique<LlamaCuda>(dynamic_cast<const LlamaModel&>(*ctx.model), o);
  }
  const CausalLM& model = gpu ? static_cast<const CausalLM&>(*gpu) : *ctx.model;
  Replica replica(c.replica(), *ctx.model, 1);  // θ_0 and s_0
  const LoraTrainable& lora = replica.lora();
  const float scale = replica.scale();
  const ThreadsOverride use(threads > 0 ? threads : default_threads());
  json codes = json::array(), losses = json::array();
  const auto t0 = std::chrono::steady_clock::now();
  ZoConfig gradient_only = c.zo;  // the codes of the gradient codec alone (hizoo's curvature codes are fixed)
  gradient_only.curvature = false;
  for (int t = 0; t < steps; ++t)
    for (int m = 0; m < c.run.members; ++m) {
      const MemberStepResult r = zo_member_step(model, ctx.task_of(uint32_t(m)), lora, gradient_only, c.run.seed,
                                                c.task.data_seed, uint64_t(t), uint32_t(m), uint32_t(c.run.members),
                                                scale);
      json row = json::array();
      size_t next = 0;
      for (int k = 0; k < c.zo.q; ++k) {
        // A slot dropped as non-finite is null.
        if (next < r.records.size() && r.records[next].slot == uint32_t(k)) row.push_back(int(int8_t(r.records[next++].code)));
        else row.push_back(nullptr);
      }
      codes.push_back(row);
      losses.push_back(r.loss);
    }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json j;
  j["format"] = kFormat;
  // The class zeroth worker reports for the same machine and device.
  j["backend"] = gpu ? cuda_backend_class() + "-" + precision : cpu_backend_class();
  j["threads"] = threads > 0 ? threads : default_threads();
  j["base_hash"] = ctx.base_hash;
  const std::string yaml = c.to_yaml();
  j["config_hash"] = hash_bytes(yaml.data(), yaml.size()).hex();
  j["steps"] = steps;
  j["members"] = c.run.members;
  j["slots"] = c.zo.q;
  j["scale"] = scale;
  j["seconds"] = seconds;
  j["codes"] = std::move(codes);  // [step · members + member][slot]
  j["losses"] = std::move(losses);
  return j;
}

json read_measurement(const std::string& path) {
  check_input_file(path, "the calibration file");
  std::ifstream in(path);
  ZEROTH_CHECK(bool(in), "{}: cannot open (write it with zeroth calibrate CONFIG --out {})", path, path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: not a calibration file: {}", path, e.what());
  }
  ZEROTH_CHECK(j.is_object() && j.value("format", 0) == kFormat && j.contains("codes") && j["codes"].is_array() &&
                   j.contains("backend") && j["backend"].is_string(),
               "{}: not a calibration file of format {} (write it with zeroth calibrate CONFIG --out)", path, kFormat);
  return j;
}

int compare(const std::string& a_path, const std::string& b_path) {
  const json a = read_measurement(a_path), b = read_measurement(b_path);
  for (const char* key : {"base_hash", "config_hash", "steps", "members", "slots", "scale"})
    ZEROTH_CHECK(a.value(key, json()) == b.value(key, json()),
                 "{} and {} measured different work: their {} differ ({} vs {}); run both with the same config, "
                 "--steps and --members",
                 a_path, b_path, key, a.value(key, json()).dump(), b.value(key, json()).dump());
  const auto& ca = a["codes"];
  const auto& cb = b["codes"];
  ZEROTH_CHECK(ca.size() == cb.size(), "{} and {} hold {} and {} rows", a_path, b_path, ca.size(), cb.size());
  std::map<int, int64_t> histogram;
  int64_t pairs = 0, one_dropped = 0;
  int worst = 0;
  for (size_t i = 0; i < ca.size(); ++i) {
    ZEROTH_CHECK(ca[i].is_array() && cb[i].is_array() && ca[i].size() == cb[i].size(), "row {} differs in shape", i);
    for (size_t k = 0; k < ca[i].size(); ++k) {
      if (ca[i][k].is_null() != cb[i][k].is_null()) {
        ++one_dropped;
        continue;
      }
      if (ca[i][k].is_null()) continue;
      const int d = std::abs(ca[i][k].get<int>() - cb[i][k].get<int>());
      ++histogram[d];
      ++pairs;
      worst = std::max(worst, d);
    }
  }
  const std::string ba = a["backend"], bb = b["backend"];
  const std::string pair = ba == bb ? ba : ba < bb ? ba + "|" + bb : bb + "|" + ba;
  fmt::print("{} ({}, {} threads) vs {} ({}, {} threads): {} codes compared\n", a_path, ba, a.value("threads", 0),
             b_path, bb, b.value("threads", 0), pairs);
  for (const auto& [d, n] : histogram)
    fmt::print("  |difference| {:3d}: {:8d} ({:.4f}%)\n", d, n, 100.0 * double(n) / double(std::max<int64_t>(pairs, 1)));
  if (one_dropped) fmt::print("  dropped (non-finite) by one side only: {}\n", one_dropped);
  fmt::print("largest difference: {}\n", worst);
  fmt::print("config:\n  elastic:\n    spot_tolerances:\n      \"{}\": {}\n", pair, worst);
  return 0;
}

}  // namespace

Runner add_calibrate(CLI::App& app) {
  struct Options {
    std::string config, out;
    std::vector<std::string> sets, compare;
    int steps = 20, members = 0, threads = 0;
    std::string device = "cpu", precision = "f32";
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand(
      "calibrate",
      "Measure how far this machine's one-byte codes lie from another's on the same work (spot-check tolerances)");
  sub->add_option("config", opt->config, "Run config (YAML): the work to measure");
  sub->add_option("--set", opt->sets, "Override a config key (repeatable)");
  sub->add_option("--out", opt->out, "Write this machine's codes here (JSON)");
  sub->add_option("--steps", opt->steps, "Steps of keys to measure (at θ_0)")->check(CLI::Range(1, 100000));
  sub->add_option("--members", opt->members, "Members per step (default: the config's run.members)")
      ->check(CLI::Range(0, 256));
  sub->add_option("-t,--threads", opt->threads, "Compute threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_option("--device", opt->device, "cpu, or cuda: measure the codes a GPU worker (--device cuda) sends")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_option("--cuda-precision", opt->precision, "With --device cuda: f32, tf32 or bf16 GEMMs")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}))
      ->capture_default_str();
  sub->add_option("--compare", opt->compare, "Compare two files written by --out: A.json B.json")->expected(2);
  sub->footer(
      "Example: on each machine class,\n"
      "  zeroth calibrate configs/stories260k-tinystories.yaml --out $(hostname).json\n"
      "then\n  zeroth calibrate --compare a.json b.json\n"
      "prints the distribution of code differences and the elastic.spot_tolerances line for the pair.\n"
      "On a GPU machine, --device cuda measures what its GPU workers send (class cuda-smXY-PRECISION).");
  return [opt] {
    if (!opt->compare.empty()) {
      ZEROTH_CHECK(opt->config.empty() && opt->out.empty(), "--compare takes two files and no CONFIG or --out");
      return compare(opt->compare[0], opt->compare[1]);
    }
    ZEROTH_CHECK(!opt->config.empty() && !opt->out.empty(),
                 "give a CONFIG and --out FILE to measure, or --compare A.json B.json");
    ZEROTH_CHECK(!std::filesystem::exists(opt->out), "{} exists; choose another --out (nothing was written)",
                 opt->out);
    const json j = measure(opt->config, opt->sets, opt->steps, opt->members, opt->threads, opt->device,
                           opt->precision);
    const std::string tmp = opt->out + ".partial";
    {
      std::ofstream f(tmp);
      ZEROTH_CHECK(bool(f), "{}: cannot write", tmp);
      f << j.dump() << "\n";
      ZEROTH_CHECK(bool(f.flush()), "{}: write failed", tmp);
    }
    std::filesystem::rename(tmp, opt->out);
    fmt::print("{}: {} codes of {} members × {} steps × {} slots on {} ({} threads) in {:.2f} s\n", opt->out,
               int64_t(j["members"]) * int64_t(j["steps"]) * int64_t(j["slots"]), int(j["members"]),
               int(j["steps"]), int(j["slots"]), std::string(j["backend"]), int(j["threads"]), double(j["seconds"]));
    return 0;
  };
}

}  // namespace zeroth::cli
