#include "core/formats/llama2c.h"

#include <cstdint>
#include <fmt/format.h>

#include "core/formats/byte_reader.h"

namespace zeroth {
namespace {

// One weight of the layout: name, stacked shape. The byte size follows from the shape.
struct Slot {
  std::string name;
  Shape shape;
};

std::vector<Slot> layout(const Llama2cConfig& c) {
  const int64_t L = c.n_layers, d = c.dim, h = c.hidden_dim, kv = c.kv_dim(), v = c.vocab_size;
  const Slot emb{"token_embedding_table", {v, d}}, att{"rms_att_weight", {L, d}}, ffn{"rms_ffn_weight", {L, d}},
      fin{"rms_final_weight", {d}}, wq{"wq", {L, d, d}}, wk{"wk", {L, kv, d}}, wv{"wv", {L, kv, d}},
      wo{"wo", {L, d, d}}, w1{"w1", {L, h, d}}, w2{"w2", {L, d, h}}, w3{"w3", {L, h, d}};
  std::vector<Slot> s;
  if (c.version == 0) {
    // freq_cis_real, freq_cis_imag: [seq_len, head_size/2] each, unnamed (skipped).
    s = {emb, att, wq, wk, wv, wo, ffn, w1, w2, w3, fin, {"", {c.seq_len, c.head_size()}}};
  } else {
    s = {att, ffn, fin, emb, wq, wk, wv, wo, w1, w2, w3};
  }
  if (!c.shared_classifier) s.push_back({"wcls", {v, d}});
  return s;
}

}  // namespace

void validate_llama2c_config(const Llama2cConfig& c, const std::string& path) {
  auto bad = [&](const std::string& what) { throw FormatError(path, "llama2.c header: " + what); };
  const std::pair<const char*, int64_t> fields[] = {{"dim", c.dim},         {"hidden_dim", c.hidden_dim},
                                                    {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                                                    {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                                                    {"seq_len", c.seq_len}};
  for (const auto& [name, value] : fields)
    if (value <= 0) bad(fmt::format("{} = {} must be positive", name, value));
  if (c.dim % c.n_heads != 0) bad(fmt::format("dim {} is not a multiple of n_heads {}", c.dim, c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0)
    bad(fmt::format("n_heads {} is not a multiple of n_kv_heads {}", c.n_heads, c.n_kv_heads));
  if (c.head_size() % 2 != 0) bad(fmt::format("head size {} is odd (RoPE rotates pairs)", c.head_size()));
}

Llama2cCheckpoint Llama2cCheckpoint::open(const std::string& path) {
  Llama2cCheckpoint ck;
  ck.file_ = MappedFile::open(path);
  ByteReader in(ck.file_->bytes(), path);
  Llama2cConfig& c = ck.config_;
  size_t header_bytes = kLlama2cLegacyHeaderBytes;
  if (in.size() >= 4 && in.read<uint32_t>("magic") == kLlama2cMagic) {
    const int32_t version = in.read<int32_t>("version");
    if (version != 1)
      in.fail(fmt::format("llama2.c checkpoint version {} is not supported (zeroth reads the legacy format and "
                          "version 1, fp32)", version));
    c.version = 1;
    header_bytes = kLlama2cV1HeaderBytes;
  } else {
    in.seek(0, "header");
  }
  int32_t h[7];
  for (auto& x : h) x = in.read<int32_t>("7 x int32 header");
  c.dim = h[0], c.hidden_dim = h[1], c.n_layers = h[2], c.n_heads = h[3], c.n_kv_heads = h[4], c.seq_len = h[6];
  if (c.version == 0) {
    c.shared_classifier = h[5] > 0;
    c.vocab_size = h[5] < 0 ? -int64_t(h[5]) : h[5];
  } else {
    c.vocab_size = h[5];
    const uint8_t shared = in.read<uint8_t>("shared_classifier flag");
    if (shared > 1) in.fail(fmt::format("shared_classifier flag is {}, expected 0 or 1", shared));
    c.shared_classifier = shared == 1;
    in.need(kLlama2cV1HeaderBytes - in.pos(), "header padding");
  }
  validate_llama2c_config(c, path);

  // Sum the layout in 64-bit with overflow checks: header values up to 2^31
  // cannot wrap, and the total must equal the file size exactly.
  const auto slots = layout(c);
  uint64_t expected = header_bytes;
  std::vector<uint64_t> offsets;
  for (const auto& s : slots) {
    uint64_t n = 4;
    for (auto d : s.shape)
      if (!checked_mul(n, uint64_t(d), &n)) in.fail("header sizes overflow");
    offsets.push_back(expected);
    if (!checked_add(expected, n, &expected)) in.fail("header sizes overflow");
  }
  if (expected != in.size())
    in.fail(fmt::format("file holds {} bytes but its header ({} v{}: dim {}, hidden {}, layers {}, heads {}/{}, vocab "
                        "{}{}, seq_len {}) implies {} bytes",
                        in.size(), c.version == 0 ? "legacy" : "ak42", c.version, c.dim, c.hidden_dim, c.n_layers,
                        c.n_heads, c.n_kv_heads, c.vocab_size, c.shared_classifier ? " shared" : " unshared", c.seq_len,
                        expected));
  for (size_t k = 0; k < slots.size(); ++k) {
    if (slots[k].name.empty()) continue;
    auto storage = Storage::mapped(ck.file_, size_t(offsets[k]), size_t(shape_numel(slots[k].shape)) * 4);
    ck.tensors_.push_back({slots[k].name, Tensor::over(std::move(storage), 0, DType::F32, slots[k].shape)});
  }
  return ck;
}

const Tensor& Llama2cCheckpoint::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return t.tensor;
  fail("{}: llama2.c checkpoint has no tensor \"{}\"", path(), name);
}

size_t Llama2cCheckpoint::skipped_bytes() const {
  size_t weights = 0;
  for (const auto& t : tensors_) weights += t.tensor.nbytes();
  return file_->size() - weights;
}

Llama2cTokenizer read_llama2c_tokenizer(const std::string& path, int64_t expected_vocab) {
  auto file = MappedFile::open(path);
  ByteReader in(file->bytes(), path);
  Llama2cTokenizer tok;
  tok.max_token_length = in.read<int32_t>("max_token_length");
  if (tok.max_token_length <= 0 || uint64_t(tok.max_token_length) > in.size())
    in.fail(fmt::format("max_token_length {} is impossible for a file of {} bytes", tok.max_token_length, in.size()));
  // Each token takes at least 8 bytes, so the vectors grow at most size/8 entries.
  while (!in.at_end()) {
    const auto what = fmt::format("token {}", tok.vocab.size());
    const float score = in.read<float>(what);
    const int32_t len = in.read<int32_t>(what);
    if (len < 0 || len > tok.max_token_length)
      in.fail(fmt::format("{} has length {}, outside [0, max_token_length {}]", what, len, tok.max_token_length));
    tok.vocab.emplace_back(in.read_bytes(uint64_t(len), what));
    tok.scores.push_back(score);
  }
  if (expected_vocab >= 0 && int64_t(tok.vocab.size()) != expected_vocab)
    in.fail(fmt::format("holds {} tokens but the model's vocab_size is {}", tok.vocab.size(), expected_vocab));
  return tok;
}

}  // namespace zeroth
