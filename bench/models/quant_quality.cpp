// Quality of each quantized weight format on real models: how far the model's
// next-token distributions move from the f32 model's, and what that costs in
// language-model loss. Prints markdown tables.
//
//   quant_quality [--shared DIR] [--smollm2 GGUF] [--threads N]
//
// stories260K (../shared): each format quantized on load from the f32 file,
// first the projections only, then the embedding (tied output) too; top-1
// agreement and KL(f32 || quantized) over the 64 golden positions, and mean NLL
// on data/tinystories/sample.txt. SmolLM2-135M (scripts/get-models) is already
// Q4_1 in its file, so re-quantizing it says nothing: it gets its NLL only.
#include <cstdint>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/quant/quant.h"
#include "models/loaders/llama_loader.h"
#include "models/loaders/tokenizer_loader.h"
#include "models/tasks/language_model.h"
#include "models/tasks/logit_agreement.h"
#include "models/tasks/text_data.h"

namespace zeroth {
namespace {

namespace fs = std::filesystem;

// The golden token list is data of ../shared: the first backquoted run of
// integers after "The 65 tokens" in its README.
std::vector<int32_t> golden_tokens(const std::string& shared) {
  std::ifstream in(shared + "/golden/stories260K/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  size_t at = s.find("The 65 tokens");
  ZEROTH_CHECK(at != std::string::npos, "{}/golden/stories260K/README.md: no token list", shared);
  at = s.find('`', at);
  const size_t end = s.find('`', at + 1);
  std::istringstream list(s.substr(at + 1, end - at - 1));
  std::vector<int32_t> ids;
  for (int32_t v; list >> v;) ids.push_back(v);
  ZEROTH_CHECK(ids.size() == 65, "golden README: expected 65 tokens, read {}", ids.size());
  return ids;
}

std::vector<float> logits_at_all(const LlamaModel& m, const std::vector<int32_t>& seq) {
  TokenBatch b;
  b.add(seq);
  std::vector<int64_t> rows(seq.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  return m.logits(m.forward_hidden(b), rows);
}

std::vector<std::vector<int32_t>> tokenize_docs(const Tokenizer& tok, const std::string& path) {
  std::vector<std::vector<int32_t>> docs;
  for (const auto& d : read_text_documents(path).documents) docs.push_back(tok.encode(d, tok.bos_id() >= 0, false));
  return docs;
}

// Share of the parameters stored in `target` after loading: a projection whose
// row length is no multiple of the format's block stays f32 (stories260K's
// w_down has rows of 172; no matrix of it has rows that are a multiple of 128).
double share_in(const LlamaWeights& w, DType target) {
  int64_t q = 0;
  auto add = [&](const Tensor& t) { q += t.dtype() == target ? t.numel() : 0; };
  add(w.tok_embeddings);
  for (const auto& L : w.layers)
    for (const Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*t);
  if (!w.config.tie_embeddings) add(w.output);
  return double(q) / double(w.parameter_count());
}

void stories(const std::string& shared, int threads) {
  const std::string bin = shared + "/models/stories260K/stories260K.bin";
  const auto tok = load_llama2c_tokenizer(shared + "/models/stories260K/tok512.bin", 512);
  const auto docs = tokenize_docs(*tok, shared + "/data/tinystories/sample.txt");
  const auto golden = golden_tokens(shared);
  const std::vector<int32_t> seq(golden.begin(), golden.begin() + 64);

  LoadOptions base;
  base.threads = threads;
  const LlamaModel ref(load_llama_weights(bin, base), threads);
  const auto ref_logits = logits_at_all(ref, seq);
  const NllResult ref_eval = evaluate_nll(ref, docs);
  const double ref_nll = ref_eval.mean();
  const size_t ref_bytes = ref.weights().weight_bytes();

  fmt::print("## stories260K: quantized on load vs f32 (64 golden positions; NLL on tinystories/sample.txt, "
             "{} documents)\n\n", docs.size());
  fmt::print("| format | embeddings | params in format | weight bytes vs f32 | top-1 agree | mean KL | max KL | NLL | "
             "ΔNLL |\n|---|---|---|---|---|---|---|---|---|\n");
  const char* formats[] = {"f32", "f16", "bf16", "q8_0", "i8_b32", "i8_b64", "i8_b128",
                           "q4_0", "q4_1", "i4_b32", "i4m_b32", "nf4"};
  for (bool emb : {false, true}) {
    for (const char* name : formats) {
      LoadOptions o = base;
      o.quantize = parse_dtype(name);
      o.quantize_embeddings = emb;
      std::string err;
      try {
        const LlamaModel m(load_llama_weights(bin, o), threads);
        const auto a = compare_logits(ref_logits, logits_at_all(m, seq), 512);
        const double nll = evaluate_nll(m, docs).mean();
        fmt::print("| {} | {} | {:.0f} % | {:.3f} | {:.3f} | {:.2e} | {:.2e} | {:.4f} | {:+.4f} |\n", name,
                   emb ? "quantized" : "f32", 100 * share_in(m.weights(), *o.quantize),
                   double(m.weights().weight_bytes()) / double(ref_bytes), a.top1, a.mean_kl, a.max_kl, nll,
                   nll - ref_nll);
      } catch (const std::exception& e) {
        fmt::print("| {} | {} | — | — | — | — | — | — | error: {} |\n", name, emb ? "quantized" : "f32", e.what());
      }
    }
  }
  fmt::print("\nf32 reference NLL {:.4f} over {} predicted tokens.\n\n", ref_nll, ref_eval.tokens);
}

void smollm2(const std::string& path, const std::string& shared, int threads) {
  fmt::print("## SmolLM2-135M-Instruct as shipped (NLL on tinystories/sample.txt)\n\n");
  if (path.empty()) {
    fmt::print("SmolLM2 GGUF not found in the model cache: run scripts/get-models.\n\n");
    return;
  }
  LoadOptions o;
  o.threads = threads;
  LlamaWeights w = load_llama_weights(path, o);
  const auto tok = load_tokenizer(path, "", w.config.vocab_size);
  const auto docs = tokenize_docs(*tok, shared + "/data/tinystories/sample.txt");
  fmt::print("| weights | bytes (MiB) | tokens | NLL | perplexity |\n|---|---|---|---|---|\n");
  auto row = [&](const std::string& label, LlamaWeights weights) {
    const double mib = double(weights.weight_bytes()) / (1 << 20);
    const LlamaModel m(std::move(weights), threads);
    const NllResult r = evaluate_nll(m, docs);
    fmt::print("| {} | {:.1f} | {} | {:.4f} | {:.3f} |\n", label, mib, r.tokens, r.mean(), std::exp(r.mean()));
  };
  const std::string file_types = fmt::format("{} projections, {} embedding (tied)", dtype_name(w.layers[0].wq.dtype()),
                                             dtype_name(w.tok_embeddings.dtype()));
  // The embedding is already Q8_0 in the file, so --quantize-embeddings changes
  // nothing; the informative contrast is decoding it to f32.
  LlamaWeights deq = w;
  deq.tok_embeddings = dequantize(w.tok_embeddings, threads);
  if (deq.config.tie_embeddings) deq.output = deq.tok_embeddings;
  row("file: " + file_types, std::move(w));
  row("same, embedding decoded to f32 (same values: checks the q8_0 path)", std::move(deq));
  fmt::print("\n");
}

std::string default_smollm2() {
  fs::path dir;
  if (const char* c = std::getenv("ZEROTH_CACHE"); c && *c) dir = fs::path(c) / "models";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = fs::path(h) / ".cache/zeroth/models";
  const fs::path p = dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  return !dir.empty() && fs::is_regular_file(p) ? p.string() : std::string();
}

}  // namespace
}  // namespace zeroth

int main(int argc, char** argv) {
  using namespace zeroth;
  std::string shared = ZEROTH_SHARED_DIR;
  if (const char* s = std::getenv("ZEROTH_SHARED")) shared = s;
  std::string smol = default_smollm2();
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shared" && i + 1 < argc) shared = argv[++i];
    else if (a == "--smollm2" && i + 1 < argc) smol = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      fmt::print(stderr, "usage: {} [--shared DIR] [--smollm2 GGUF] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    if (fs::is_directory(shared)) stories(shared, threads);
    else fmt::print("{} is absent: no stories260K table (set ZEROTH_SHARED or --shared).\n\n", shared);
    if (fs::is_directory(shared)) smollm2(smol, shared, threads);
    fmt::print(stderr, "quant_quality: {:.1f} s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    fmt::print(stderr, "quant_quality: {}\n", e.what());
    return 1;
  }
  return 0;
}
