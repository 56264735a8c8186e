// Writes the seed corpus of every fuzz target (tests/fuzz/corpus/<target>/):
// small valid inputs made by the real encoders and writers (frames, records,
// ledger entries and files, safetensors, configs), and for GGUF and llama2.c,
// which zeroth only reads, tiny files laid out here field by field.
//
//   zeroth_fuzz_seeds DIR     (scripts/fuzz --seeds runs it on tests/fuzz/corpus)
//
// Each seed is written in its target's input layout (a selector byte or prefix
// first where the target has one; see the header comment of each target).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "comm/tcp/frame.h"
#include "comm/transport.h"
#include "core/formats/safetensors.h"
#include "launch/train_config.h"
#include "optim/ledger.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

fs::path g_out;

void seed(const std::string& target, const std::string& name, const Bytes& b) {
  fs::create_directories(g_out / target);
  std::ofstream out(g_out / target / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
Bytes cat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}
template <typename T>
void put(Bytes& b, T v) {
  const size_t n = b.size();
  b.resize(n + sizeof(T));
  std::memcpy(b.data() + n, &v, sizeof(T));
}
void put_f32s(Bytes& b, size_t n) {
  for (size_t i = 0; i < n; ++i) put<float>(b, float(i % 7) * 0.25f - 0.5f);
}

const std::string kHash = "0123456789abcdef0123456789abcdef";

zeroth::StepEntry entry(uint64_t step, bool exact, uint32_t members) {
  zeroth::StepEntry e;
  e.step = step;
  e.epoch = 1;
  e.scale = 0.5f;
  e.lr = 1e-3f;
  e.exact = exact;
  for (uint32_t m = 0; m < members; ++m)
    for (uint32_t s = 0; s < 2; ++s) {
      zeroth::Record r;
      r.member = m;
      r.slot = s;
      r.kind = s == 1 ? zeroth::RecordKind::Gradient : zeroth::RecordKind::ZerothOrder;
      if (exact) {
        r.exact = true;
        r.value = 0.125f * float(m + 1) - float(s);
      } else {
        r.code = uint8_t(int8_t(3 * m - 5 * s));
      }
      e.records.push_back(r);
    }
  return e;
}

// ---- wire ------------------------------------------------------------------

void frame_seeds() {
  using namespace zeroth::tcp;
  struct Body {
    const char* name;
    FrameType type;
    uint8_t pick;  // frame_fuzz's selector for the body alone
    Bytes body;
  };
  JoinMsg join{"volunteer-1", kHash, 12, kHash, true, "cpu-x86-64-v4"};
  WelcomeMsg welcome{3, "run:\n  steps: 10\n", kHash, 40, 12, false};
  CatchUpMsg snap;
  snap.part = CatchUpPart::Snapshot;
  snap.snapshot_step = 30;
  snap.offset = 4;
  snap.total = 16;
  snap.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  CatchUpMsg entries;
  entries.part = CatchUpPart::Entries;
  entries.entries = {entry(30, false, 2), entry(31, false, 1)};
  CatchUpMsg end;
  end.part = CatchUpPart::End;
  end.snapshot_step = 32;
  end.hash = kHash;
  ReadyMsg ready{32, kHash};
  StepMsg step{33, 0.5f, 1e-3f, {0, 2, 5}, 8, {{2, 0, 0}}};
  ResultMsg result{2, zeroth::encode_member_records(33, 1, 2, 3, false, {}), 2.5, 512, kHash,
                   {{0, zeroth::encode_member_records(33, 1, 0, 3, false, {})}}};
  ChallengeMsg challenge;
  challenge.nonce.fill(7);
  HelloMsg hello;
  hello.kind = 2;
  hello.name = "alice";
  hello.expiry = 2000000000;
  hello.nonce.fill(9);
  hello.proof.fill(11);
  HelloOkMsg hello_ok;
  hello_ok.proof.fill(13);
  CommitMsg commit{entry(33, false, 3)};
  CommitMsg commit_exact{entry(34, true, 2)};
  const std::vector<Body> bodies = {
      {"join", FrameType::Join, 1, encode(join)},
      {"welcome", FrameType::Welcome, 2, encode(welcome)},
      {"catch_up_snapshot", FrameType::CatchUp, 3, encode(snap)},
      {"catch_up_entries", FrameType::CatchUp, 3, encode(entries)},
      {"catch_up_end", FrameType::CatchUp, 3, encode(end)},
      {"ready", FrameType::Ready, 4, encode(ready)},
      {"step", FrameType::Step, 5, encode(step)},
      {"result", FrameType::Result, 6, encode(result)},
      {"commit", FrameType::Commit, 7, encode(commit)},
      {"commit_exact", FrameType::Commit, 7, encode(commit_exact)},
      {"challenge", FrameType::Challenge, 9, encode(challenge)},
      {"hello", FrameType::Hello, 10, encode(hello)},
      {"hello_ok", FrameType::HelloOk, 11, encode(hello_ok)},
      {"evicted", FrameType::Evicted, 8, encode(TextMsg{"missed 5 heartbeats"})},
      {"status", FrameType::Status, 8, encode(TextMsg{"{\"members\": 3}"})},
      {"heartbeat", FrameType::Heartbeat, 0, {}},
  };
  uint64_t sequence = 1;
  for (const auto& b : bodies) {
    const FrameHeader h{b.type, uint32_t(b.body.size()), 1, 33, sequence++};
    seed("frame", std::string("frame_") + b.name, cat({0}, encode_frame(h, b.body)));
    if (b.pick != 0) seed("frame", std::string("body_") + b.name, cat({b.pick}, b.body));
  }
}

void records_seeds() {
  using zeroth::Record;
  std::vector<Record> codes, exact;
  for (uint32_t s = 0; s < 5; s += 2) {
    Record r;
    r.member = 3;
    r.slot = s;
    r.code = uint8_t(s * 7);
    codes.push_back(r);
    r.exact = true;
    r.value = 0.5f * float(s) - 1;
    exact.push_back(r);
  }
  seed("records", "member", cat({0, 0, 0, 0}, zeroth::encode_member_records(7, 1, 3, 5, false, codes)));
  seed("records", "member_exact", cat({0, 0, 0, 0}, zeroth::encode_member_records(7, 1, 3, 5, true, exact)));
  // Prefix {participant, p1 = 1 + 4: 2 participants x 2 members, rank 1, 5 slots}: hosts members 1 and 3.
  zeroth::RecordLayout layout{4, 5, false};
  seed("records", "participant",
       cat({1, 5, 1, 4}, zeroth::encode_participant_records(7, 1, {1, 3}, layout, codes)));
  layout.exact = true;
  seed("records", "participant_exact",
       cat({3, 5, 1, 4}, zeroth::encode_participant_records(7, 1, {1, 3}, layout, exact)));
}

void step_entry_seeds() {
  seed("step_entry", "codes", entry(5, false, 3).serialize());
  seed("step_entry", "exact", entry(6, true, 2).serialize());
  seed("step_entry", "empty", entry(0, false, 0).serialize());
}

void ledger_seeds(const fs::path& tmp) {
  zeroth::LedgerHeader header{1234, kHash, kHash, "run:\n  steps: 3\n"};
  const fs::path p = tmp / "seed.zl";
  fs::remove(p);
  {
    auto f = zeroth::LedgerFile::create(p.string(), header);
    for (uint64_t s = 0; s < 3; ++s) f.append(entry(s, false, 2));
  }
  const Bytes whole = read_file(p);
  seed("ledger", "three_entries", whole);
  seed("ledger", "torn_tail", Bytes(whole.begin(), whole.end() - 5));
  fs::remove(p);
  {
    auto f = zeroth::LedgerFile::create(p.string(), header);
    f.append(entry(0, true, 1));
  }
  seed("ledger", "exact_entry", read_file(p));
  fs::remove(p);
}

// ---- model files ---------------------------------------------------------------

void safetensors_seeds(const fs::path& tmp) {
  const fs::path p = tmp / "seed.safetensors";
  zeroth::TensorList tensors;
  tensors.push_back({"embed.weight", zeroth::Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2})});
  tensors.push_back({"norm.weight", zeroth::Tensor::empty(zeroth::DType::F16, {4})});
  tensors.push_back({"scale", zeroth::Tensor::empty(zeroth::DType::I8, {2, 1, 2})});
  zeroth::write_safetensors(p.string(), tensors, {{"format", "pt"}});
  seed("safetensors", "model", cat({0}, read_file(p)));
  zeroth::write_safetensors(p.string(), {}, {});
  seed("safetensors", "empty", cat({0}, read_file(p)));
  fs::remove(p);
  seed("safetensors", "index",
       cat({1}, text(R"({"metadata": {"total_size": 40}, "weight_map": {)"
                     R"("embed.weight": "model-00001-of-00002.safetensors", )"
                     R"("norm.weight": "model-00002-of-00002.safetensors"}})")));
}

// GGUF v3, laid out as in core/formats/gguf.h.
struct Gguf {
  Bytes kv, infos, data;
  uint64_t n_kv = 0, n_tensors = 0;
  static void str(Bytes& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void key(const std::string& k, uint32_t type) {
    ++n_kv;
    str(kv, k);
    put<uint32_t>(kv, type);
  }
  void tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, size_t bytes) {
    ++n_tensors;
    data.resize((data.size() + 31) / 32 * 32, 0);
    str(infos, name);
    put<uint32_t>(infos, uint32_t(ne.size()));
    for (auto d : ne) put<uint64_t>(infos, d);
    put<uint32_t>(infos, type);
    put<uint64_t>(infos, data.size());
    for (size_t i = 0; i < bytes; ++i) data.push_back(uint8_t(i * 37));
  }
  Bytes build() const {
    Bytes b;
    put<uint32_t>(b, 0x46554747);
    put<uint32_t>(b, 3);
    put<uint64_t>(b, n_tensors);
    put<uint64_t>(b, n_kv);
    b.insert(b.end(), kv.begin(), kv.end());
    b.insert(b.end(), infos.begin(), infos.end());
    b.resize((b.size() + 31) / 32 * 32, 0);
    b.insert(b.end(), data.begin(), data.end());
    return b;
  }
};

void gguf_seeds() {
  Gguf g;
  g.key("general.architecture", 8), Gguf::str(g.kv, "llama");
  g.key("general.name", 8), Gguf::str(g.kv, "tiny");
  g.key("general.alignment", 4), put<uint32_t>(g.kv, 32);
  g.key("llama.context_length", 4), put<uint32_t>(g.kv, 64);
  g.key("llama.embedding_length", 10), put<uint64_t>(g.kv, 8);
  g.key("llama.rope.freq_base", 6), put<float>(g.kv, 10000.f);
  g.key("llama.attention.layer_norm_rms_epsilon", 12), put<double>(g.kv, 1e-5);
  g.key("llama.block_count", 5), put<int32_t>(g.kv, 1);
  g.key("llama.vocab_offset", 11), put<int64_t>(g.kv, -3);
  g.key("tokenizer.ggml.add_bos_token", 7), put<uint8_t>(g.kv, 1);
  g.key("tokenizer.ggml.bos_token_id", 0), put<uint8_t>(g.kv, 1);
  g.key("tokenizer.ggml.eos_token_id", 1), put<int8_t>(g.kv, 2);
  g.key("tokenizer.ggml.padding_token_id", 2), put<uint16_t>(g.kv, 0);
  g.key("tokenizer.ggml.unknown_token_id", 3), put<int16_t>(g.kv, 0);
  g.key("tokenizer.ggml.tokens", 9), put<uint32_t>(g.kv, 8), put<uint64_t>(g.kv, 4);
  for (const char* t : {"<unk>", "<s>", "</s>", "a"}) Gguf::str(g.kv, t);
  g.key("tokenizer.ggml.scores", 9), put<uint32_t>(g.kv, 6), put<uint64_t>(g.kv, 4);
  for (int i = 0; i < 4; ++i) put<float>(g.kv, -float(i));
  g.key("tokenizer.ggml.token_type", 9), put<uint32_t>(g.kv, 5), put<uint64_t>(g.kv, 4);
  for (int i = 0; i < 4; ++i) put<int32_t>(g.kv, i == 0 ? 2 : 1);
  g.key("tokenizer.ggml.merges.nested", 9), put<uint32_t>(g.kv, 9), put<uint64_t>(g.kv, 1);
  put<uint32_t>(g.kv, 4), put<uint64_t>(g.kv, 2), put<uint32_t>(g.kv, 7), put<uint32_t>(g.kv, 9);
  g.tensor("token_embd.weight", {8, 4}, 0, 8 * 4 * 4);       // f32 [4, 8]
  g.tensor("output_norm.weight", {8}, 1, 8 * 2);             // f16
  g.tensor("blk.0.attn_q.weight", {32, 2}, 8, 2 * 34);       // q8_0: 2 rows of one block
  g.tensor("blk.0.ffn_down.weight", {256}, 12, 144);         // q4_K: one super-block
  g.tensor("blk.0.ffn_up.weight", {32}, 6, 22);              // q5_0: one block
  g.tensor("blk.0.ffn_gate.weight", {32}, 7, 24);            // q5_1: a type zeroth cannot use
  g.tensor("rope_freqs", {4}, 30, 4 * 2);                    // bf16
  seed("gguf", "tiny_llama", g.build());
  Gguf empty;
  seed("gguf", "empty", empty.build());
}

// llama2.c: the 7 x int32 header, then f32 weights (core/formats/llama2c.h).
// dim 8, hidden 16, 1 layer, 2 heads, 1 kv head (kv_dim 4), vocab 6, seq_len 4.
void llama2c_seeds() {
  const int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv_heads = 1, vocab = 6, seq = 4;
  const size_t head = dim / heads, kv_dim = head * kv_heads;
  const size_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden;
  const size_t weights = vocab * dim + layers * per_layer + dim;
  auto header = [&](Bytes& b, int32_t v) {
    for (int32_t x : {dim, hidden, layers, heads, kv_heads, v, seq}) put<int32_t>(b, x);
  };
  Bytes legacy;
  header(legacy, vocab);
  put_f32s(legacy, weights + seq * head);  // + freq_cis_real/imag [seq, head/2] each
  seed("llama2c", "legacy_shared", legacy);
  Bytes unshared;
  header(unshared, -vocab);
  put_f32s(unshared, weights + seq * head + vocab * dim);
  seed("llama2c", "legacy_unshared", unshared);
  Bytes v1;
  put<uint32_t>(v1, 0x616b3432);
  put<int32_t>(v1, 1);
  header(v1, vocab);
  put<uint8_t>(v1, 1);
  v1.resize(256, 0);
  put_f32s(v1, weights);
  seed("llama2c", "v1_shared", v1);
  // tokenizer.bin: max_token_length, then per token score, length, bytes.
  Bytes tok;
  put<int32_t>(tok, 4);
  for (const std::string t : {"<unk>", "\n", " a", "ab", "abcd", "\xe2\x96\x81"}) {
    const std::string s = t.substr(0, 4);
    put<float>(tok, -float(s.size()));
    put<int32_t>(tok, int32_t(s.size()));
    tok.insert(tok.end(), s.begin(), s.end());
  }
  seed("llama2c", "tokenizer", tok);
}

// ---- config --------------------------------------------------------------------

void train_config_seeds() {
  using zeroth::cli::parse_train_config;
  for (const char* name : {"default.yaml", "mezo-sst2.yaml", "stories260k-tinystories.yaml"}) {
    const fs::path p = fs::path(ZEROTH_SOURCE_DIR) / "configs" / name;
    if (fs::exists(p)) seed("train_config", name, read_file(p));
  }
  // Resolved configs, as to_yaml writes them into run directories and Welcome frames.
  auto lm = parse_train_config("model: {path: model.gguf}\ntask: {type: lm, train: train.txt}\n", "seed", {});
  seed("train_config", "resolved_lm.yaml", text(lm.to_yaml()));
  auto cls = parse_train_config(
      "model: {path: model.gguf, quantize: nf4}\n"
      "lora: {rank: 4, alpha: 8, targets: [q, v]}\n"
      "zo: {q: 2, eps: 0.001, distribution: gaussian}\n"
      "optimizer: {rule: momentum, lr: 0.0001, schedule: cosine, warmup_steps: 5}\n"
      "task: {type: classification, train: train.tsv, template: '{text} It was', label_field: label,\n"
      "       label_words: {'0': ' bad', '1': ' good'}, k_shot: 16}\n"
      "elastic: {min_workers: 2, max_workers: 4, data: private}\n",
      "seed", {});
  seed("train_config", "resolved_classification.yaml", text(cls.to_yaml()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR   (writes DIR/<target>/<seed>)\n", argv[0]);
    return 2;
  }
  g_out = argv[1];
  const fs::path tmp = fs::temp_directory_path() / ("zeroth-seeds-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  try {
    frame_seeds();
    records_seeds();
    step_entry_seeds();
    ledger_seeds(tmp);
    safetensors_seeds(tmp);
    gguf_seeds();
    llama2c_seeds();
    train_config_seeds();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zeroth_fuzz_seeds: %s\n", e.what());
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  return 0;
}
