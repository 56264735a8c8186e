// llama.cpp as the outside oracle (scripts/build-llama-cpp builds this against
// its static libllama): for each prompt of a text file, llama.cpp's own token
// ids (with the special tokens its model metadata asks for, e.g. BOS), the
// top-k logits at every position, and the mean next-token NLL over the prompt,
// with an f32 KV cache (llama.cpp's default is f16).
// zeroth's tests compare its tokenizer and forward against these numbers
// (tests/oracle/ref/*.json, written by scripts/oracle-refs).
//
//   llama_ref MODEL.gguf PROMPTS.txt [TOP_K] > out.json
//
// PROMPTS.txt: one prompt per line; "\n" in a line stands for a newline. The
// output is JSON: {"model", "add_bos", "prompts": [{"text", "tokens": [...],
// "top": [[[id, logit], ...] per position], "nll"}]}, logits as the float's
// shortest round-trip decimal (%.9g).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

void quiet(ggml_log_level, const char*, void*) {}

std::string unescape(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += line[i];
    }
  }
  return out;
}

void put_json_string(const std::string& s) {
  std::putchar('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') std::printf("\\%c", c);
    else if (c == '\n') std::printf("\\n");
    else if (c < 0x20) std::printf("\\u%04x", c);
    else std::putchar(c);
  }
  std::putchar('"');
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: llama_ref MODEL.gguf PROMPTS.txt [TOP_K] > out.json\n");
    return 2;
  }
  const int top_k = argc > 3 ? std::atoi(argv[3]) : 5;
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "llama_ref: cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  std::ifstream in(argv[2]);
  if (!in) {
    std::fprintf(stderr, "llama_ref: cannot read %s\n", argv[2]);
    return 1;
  }
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) prompts.push_back(unescape(line));

  std::printf("{\"model\": ");
  const char* slash = std::strrchr(argv[1], '/');
  put_json_string(slash ? slash + 1 : argv[1]);
  std::printf(", \"add_bos\": %s, \"prompts\": [", llama_vocab_get_add_bos(vocab) ? "true" : "false");
  for (size_t p = 0; p < prompts.size(); ++p) {
    const std::string& text = prompts[p];
    std::vector<llama_token> tokens(text.size() + 8);
    const int n = llama_tokenize(vocab, text.c_str(), int32_t(text.size()), tokens.data(), int32_t(tokens.size()),
                                 /*add_special=*/true, /*parse_special=*/false);
    if (n <= 0) {
      std::fprintf(stderr, "llama_ref: cannot tokenize prompt %zu\n", p);
      return 1;
    }
    tokens.resize(size_t(n));
    // A fresh context per prompt: positions start at 0, nothing carried over.
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = uint32_t(std::max(64, n + 8));
    cp.n_batch = cp.n_ubatch = uint32_t(std::max(64, n));
    cp.n_threads = cp.n_threads_batch = 2;
    // The cache in f32 and attention without flash kernels: the reference rounds
    // only where the model's weights and llama.cpp's matrix products do.
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) {
      std::fprintf(stderr, "llama_ref: cannot create a context\n");
      return 1;
    }
    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
      batch.token[i] = tokens[size_t(i)];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
      std::fprintf(stderr, "llama_ref: decode failed on prompt %zu\n", p);
      return 1;
    }
    std::printf("%s\n  {\"text\": ", p ? "," : "");
    put_json_string(text);
    std::printf(", \"tokens\": [");
    for (int i = 0; i < n; ++i) std::printf("%s%d", i ? ", " : "", tokens[size_t(i)]);
    std::printf("], \"top\": [");
    double nll = 0;
    for (int i = 0; i < n; ++i) {
      const float* l = llama_get_logits_ith(ctx, i);
      std::vector<int> idx;
      for (int k = 0; k < top_k; ++k) {
        int best = -1;
        for (int v = 0; v < n_vocab; ++v) {
          bool taken = false;
          for (int t : idx) taken = taken || t == v;
          if (!taken && (best < 0 || l[v] > l[best])) best = v;
        }
        idx.push_back(best);
      }
      std::printf("%s[", i ? ", " : "");
      for (int k = 0; k < top_k; ++k) std::printf("%s[%d, %.9g]", k ? ", " : "", idx[size_t(k)], double(l[idx[size_t(k)]]));
      std::printf("]");
      if (i + 1 < n) {  // -log softmax(l)[next], in double
        double mx = l[0];
        for (int v = 1; v < n_vocab; ++v) mx = std::max(mx, double(l[v]));
        double z = 0;
        for (int v = 0; v < n_vocab; ++v) z += std::exp(double(l[v]) - mx);
        nll += (mx + std::log(z)) - double(l[tokens[size_t(i + 1)]]);
      }
    }
    std::printf("], \"nll\": %.9g}", n > 1 ? nll / double(n - 1) : 0.0);
    llama_batch_free(batch);
    llama_free(ctx);
  }
  std::printf("\n]}\n");
  llama_model_free(model);
  return 0;
}
