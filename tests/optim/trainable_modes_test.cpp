// Norm and full-weight training: the perturbed views a ZO step runs must equal
// a model whose weights were actually set to θ ± εz, and θ itself (σε = 0)
// must reproduce the base model exactly at the start. Full mode trains the
// token embedding and the output layer too (tied: the embedding is the output).
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/perturb.h"
#include "models/llama.h"
#include "models/tasks/task.h"
#include "optim/lora_trainable.h"
#include "optim/update.h"
#include "optim/zo_step.h"

namespace zeroth {
namespace {

LlamaConfig tiny(bool tied = true) {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 40;
  c.max_seq_len = 16;
  c.tie_embeddings = tied;
  return c;
}

// The base weights with every tensor of the trainable set replaced by
// θ + σε·z (z at the tensor's global indices, computed as PerturbedLora does).
// With a sparse mask on θ only the masked elements move.
LlamaWeights moved_weights(const LlamaWeights& w, const LoraTrainable& t, const PerturbationKey& key, float se) {
  LlamaWeights moved = w;
  for (const auto& tt : t.set().tensors()) {
    std::vector<float> z(static_cast<size_t>(tt.n));
    generate_z(key, Distribution::Rademacher, tt.offset, tt.offset + tt.n, z.data());
    Tensor* dst = nullptr;
    for (int l = 0; l < int(w.layers.size()) && !dst; ++l) {
      const std::string pre = "layers." + std::to_string(l) + ".";
      if (tt.name == pre + "attn_norm") dst = &moved.layers[size_t(l)].attn_norm;
      if (tt.name == pre + "ffn_norm") dst = &moved.layers[size_t(l)].ffn_norm;
      for (int p = 0; p < kProjCount && !dst; ++p)
        if (tt.name == pre + std::string(proj_name(Proj(p))) + ".weight") dst = &moved.layers[size_t(l)].proj(Proj(p));
    }
    if (tt.name == "final_norm") dst = &moved.final_norm;
    if (tt.name == "tok_embeddings") dst = &moved.tok_embeddings;
    if (tt.name == "output") dst = &moved.output;
    EXPECT_NE(dst, nullptr) << tt.name;
    if (!dst) continue;
    Tensor copy = Tensor::empty(DType::F32, dst->shape());
    const std::vector<uint8_t>& mask = t.set().mask();
    for (int64_t i = 0; i < tt.n; ++i)
      copy.data<float>()[i] = mask.empty() || mask[size_t(tt.offset + i)] ? tt.data[i] + se * z[size_t(i)] : tt.data[i];
    *dst = copy;
  }
  if (w.config.tie_embeddings) moved.output = moved.tok_embeddings;
  return moved;
}

const std::vector<int32_t> kSeq = {1, 5, 9, 3, 22, 17, 8};
std::vector<int64_t> all_rows(int64_t n, int64_t from = 0) {
  std::vector<int64_t> r;
  for (int64_t i = 0; i < n; ++i) r.push_back(from + i);
  return r;
}

std::vector<float> hidden(const LlamaModel& m, const AdapterSet* a, int variant = 0) {
  TokenBatch b;
  b.add({1, 5, 9, 3, 22, 17, 8}, variant);
  return m.forward_hidden(b, a);
}

TEST(TrainableModes, ThetaStartsAsTheBase) {
  const LlamaWeights w = make_random_llama(tiny(), 3);
  LlamaModel model(w, 1);
  LoraConfig lc;
  for (TrainableOptions opt : {TrainableOptions{true, false}, TrainableOptions{false, true}, TrainableOptions{true, true}}) {
    LoraTrainable t(lc, model, opt);
    t.initialize(7);
    const PerturbedLora theta(t, Distribution::Rademacher, {Variant{}});
    EXPECT_EQ(hidden(model, &theta), hidden(model, nullptr)) << opt.norms << opt.full;
  }
  LoraTrainable full(lc, model, {false, true});
  // The embedding (tied: it is the output too) and every projection, no LoRA.
  EXPECT_EQ(full.set().size(), 40 * 32 + 2 * (32 * 32 + 16 * 32 * 2 + 32 * 32 + 3 * 64 * 32));
  EXPECT_EQ(full.set().tensors().front().name, "tok_embeddings");
  EXPECT_EQ(full.set().find("output"), nullptr);
  EXPECT_FALSE(full.separate_output());
  EXPECT_EQ(full.offset_output(), full.offset_embedding());
  LoraTrainable norms(lc, model, {true, false});
  EXPECT_EQ(norms.set().tensors().back().name, "final_norm");
  EXPECT_EQ(norms.set().find("tok_embeddings"), nullptr);

  // An untied model: "output" comes last, and θ's logits are the base's, bit for bit.
  const LlamaWeights wu = make_random_llama(tiny(false), 3);
  LlamaModel untied(wu, 1);
  LoraTrainable fu(lc, untied, {true, true});
  fu.initialize(7);
  EXPECT_EQ(fu.set().tensors().front().name, "tok_embeddings");
  EXPECT_EQ(fu.set().tensors().back().name, "output");
  EXPECT_EQ(fu.set().size(), 2 * 40 * 32 + 5 * 32 + 2 * (32 * 32 + 16 * 32 * 2 + 32 * 32 + 3 * 64 * 32));
  EXPECT_EQ(fu.set().tensors().back().offset, fu.offset_output());
  const PerturbedLora theta(fu, Distribution::Rademacher, {Variant{}});
  TokenBatch b;
  b.add(kSeq, 0);
  const auto h = untied.forward_hidden(b, &theta);
  EXPECT_EQ(h, untied.forward_hidden(b, nullptr));
  EXPECT_EQ(untied.logits(h, all_rows(b.rows()), &b, &theta), untied.logits(h, all_rows(b.rows())));
}

// Variant v of the batched forward equals the base model rebuilt with the
// weights θ + σε·z written into it: norms, projections, the token embedding
// and the output layer (tied and untied), for the hidden states and the
// logits. Bit for bit: each variant's rows see the same f32 values through the
// same kernels over the same rows (its own matmul per projection and per output
// matrix, the rest row- or sequence-wise), alone or among other variants.
TEST(TrainableModes, VariantsEqualAModelWithPerturbedWeights) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const LlamaWeights w = make_random_llama(tiny(tied), 4);
    LlamaModel model(w, 1);
    LoraConfig lc;
    LoraTrainable t(lc, model, {true, true});
    t.initialize(9);
    const PerturbationKey key{42, 3, 1, 0};
    const float se = 0.01f;
    const PerturbedLora variants(t, Distribution::Rademacher, {Variant{key, se}, Variant{key, -se}});
    // Both variants in one batch (as a ZO step runs them), one sequence each.
    TokenBatch both;
    both.add(kSeq, 0);
    both.add(kSeq, 1);
    const int64_t n = int64_t(kSeq.size());
    const auto h_both = model.forward_hidden(both, &variants);
    const auto lg_both = model.logits(h_both, all_rows(2 * n), &both, &variants);
    std::vector<int32_t> targets(kSeq.begin() + 1, kSeq.end());
    targets.push_back(0);
    std::vector<int32_t> targets2 = targets;
    targets2.insert(targets2.end(), targets.begin(), targets.end());
    const auto lp_both = model.token_logprobs(h_both, all_rows(2 * n), targets2, &both, &variants);
    const auto col_both = model.column_logprobs(h_both, {n - 1, 2 * n - 1}, {3, 7, 11}, &both, &variants);
    const int64_t V = model.vocab_size();

    for (int v : {0, 1}) {
      SCOPED_TRACE(v);
      LlamaModel moved_model(moved_weights(w, t, key, v == 0 ? se : -se), 1);
      TokenBatch one;
      one.add(kSeq, 0);
      const auto h_ref = moved_model.forward_hidden(one, nullptr);
      EXPECT_EQ(hidden(model, &variants, v), h_ref);
      EXPECT_EQ(std::vector<float>(h_both.begin() + v * n * 32, h_both.begin() + (v + 1) * n * 32), h_ref);
      const auto lg_ref = moved_model.logits(h_ref, all_rows(n));
      EXPECT_EQ(std::vector<float>(lg_both.begin() + v * n * V, lg_both.begin() + (v + 1) * n * V), lg_ref);
      const auto lp_ref = moved_model.token_logprobs(h_ref, all_rows(n), targets);
      EXPECT_EQ(std::vector<float>(lp_both.begin() + v * n, lp_both.begin() + (v + 1) * n), lp_ref);
      const auto col_ref = moved_model.column_logprobs(h_ref, {n - 1}, {3, 7, 11});
      EXPECT_EQ(std::vector<float>(col_both.begin() + v * 3, col_both.begin() + (v + 1) * 3), col_ref);
      // Decoding (no batch: variant 0) runs the variant's embedding and output too.
      if (v == 0) {
        KVCache c1 = model.new_cache(), c2 = moved_model.new_cache();
        EXPECT_EQ(model.decode(c1, kSeq, &variants), moved_model.decode(c2, kSeq));
      }
    }
    // The perturbation reaches the logits through the output layer itself: the
    // unperturbed hidden states read through variant 0's output differ from θ's.
    const PerturbedLora theta(t, Distribution::Rademacher, {Variant{}});
    TokenBatch one;
    one.add(kSeq, 0);
    const auto h0 = model.forward_hidden(one, &theta);
    EXPECT_NE(model.logits(h0, all_rows(n), &one, &variants), model.logits(h0, all_rows(n), &one, &theta));
  }
}

// The embedding lookup builds only the rows it needs: a row of variant v is
// θ's row + σε·z at that row's global indices, for both distributions.
TEST(TrainableModes, EmbeddingRowsAreThetaPlusSigmaEpsZ) {
  const LlamaWeights w = make_random_llama(tiny(false), 6);
  LlamaModel model(w, 1);
  LoraTrainable t(LoraConfig{}, model, {false, true});
  const PerturbationKey key{5, 1, 2, 3};
  for (Distribution d : {Distribution::Rademacher, Distribution::Gaussian}) {
    const PerturbedLora pl(t, d, {Variant{}, Variant{key, 0.25f}});
    std::vector<float> row(32), full_z(size_t(40 * 32)), out_z(full_z.size()), scratch;
    generate_z(key, d, t.offset_embedding(), t.offset_embedding() + 40 * 32, full_z.data());
    generate_z(key, d, t.offset_output(), t.offset_output() + 40 * 32, out_z.data());
    for (int32_t tok : {0, 7, 39}) {
      EXPECT_EQ(pl.embedding_row(tok, 0, row.data()), t.embedding() + tok * 32);
      const float* r = pl.embedding_row(tok, 1, row.data());
      for (int64_t i = 0; i < 32; ++i)
        ASSERT_EQ(r[i], t.embedding()[tok * 32 + i] + 0.25f * full_z[size_t(tok * 32 + i)]) << tok << " " << i;
    }
    EXPECT_EQ(pl.output(0, scratch), t.output());
    EXPECT_TRUE(scratch.empty());  // θ's own matrix: nothing built
    const float* o = pl.output(1, scratch);
    for (size_t i = 0; i < out_z.size(); ++i) ASSERT_EQ(o[i], t.output()[i] + 0.25f * out_z[i]) << i;
    EXPECT_THROW(pl.embedding_row(40, 1, row.data()), Error);
    EXPECT_THROW(pl.output(2, scratch), Error);
  }
}

// The losses a ZO step reads (BatchScorer, as zo_member_step runs it, every
// variant in one batch) see each variant's embedding and output layer: for the
// lm loss and both classification paths (single-token label words read label
// columns, multi-token words read token log-probabilities).
TEST(TrainableModes, BatchScorerLossesSeeThePerturbedOutput) {
  const LlamaWeights w = make_random_llama(tiny(false), 8);
  LlamaModel model(w, 1);
  LoraTrainable t(LoraConfig{}, model, {false, true});
  const PerturbationKey key{11, 0, 0, 0};
  const float se = 0.02f;
  const PerturbedLora variants(t, Distribution::Rademacher, {Variant{key, se}, Variant{key, -se}});
  std::vector<Example> ex;
  for (int i = 0; i < 3; ++i) {
    Example e;
    e.tokens = {1, int32_t(5 + i), int32_t(9 + 2 * i), 3, int32_t(20 + i)};
    e.label = i % 2;
    ex.push_back(e);
  }
  TaskConfig lm;
  TaskConfig cls;
  cls.type = "classification";
  cls.label_words = {{"0", " a"}, {"1", " b"}};
  const auto lm_task = make_task_from_examples(lm, ex, {}, {});
  const auto single = make_task_from_examples(cls, ex, {}, {}, {{30}, {31}});
  const auto multi = make_task_from_examples(cls, ex, {}, {}, {{30, 32}, {31}});
  for (const Task* task : {lm_task.get(), single.get(), multi.get()}) {
    BatchScorer both(*task);
    for (int v : {0, 1})
      for (const Example& e : ex) both.add(e, v);
    const auto r = both.run(model, &variants);
    ASSERT_EQ(r.loss.size(), 2u);
    for (int v : {0, 1}) {
      LlamaModel moved_model(moved_weights(w, t, key, v == 0 ? se : -se), 1);
      BatchScorer one(*task);
      for (const Example& e : ex) one.add(e, 0);
      EXPECT_EQ(r.loss[size_t(v)], one.run(moved_model, nullptr).loss[0]) << task->config().type << " " << v;
    }
    EXPECT_NE(r.loss[0], r.loss[1]);
  }
}

// A full-mode step moves the embedding and the (untied) output layer: every
// element by exactly −lr·g·z (SGD, one record, no decay), z at its global
// index, and the step lowers the loss on its samples.
TEST(TrainableModes, FullStepChangesEmbeddingAndOutput) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    LlamaModel model(make_random_llama(tiny(tied), 12), 1);
    LoraTrainable t(LoraConfig{}, model, {false, true});
    t.initialize(1);
    std::vector<Example> docs;
    std::mt19937 rng(4);
    std::uniform_int_distribution<int32_t> tok(3, 39);
    for (int i = 0; i < 6; ++i) {
      Example e;
      e.tokens.push_back(1);
      for (int k = 0; k < 10; ++k) e.tokens.push_back(tok(rng));
      docs.push_back(e);
    }
    const auto task = make_task_from_examples(TaskConfig{}, docs, {}, {});
    ZoConfig zc;
    zc.q = 1;
    zc.samples = 6;
    zc.eps = 1e-3f;
    zc.exact_gradients = true;
    const uint64_t run_seed = 3, step = 0;
    const MemberStepResult r = zo_member_step(model, *task, t, zc, run_seed, 9, step, 0, 1, 1.0f);
    ASSERT_EQ(r.records.size(), 1u);
    const float g = r.gradients[0];
    ASSERT_GT(std::abs(g), 1e-3f);
    const std::vector<float> emb0(t.embedding(), t.embedding() + 40 * 32), out0(t.output(), t.output() + 40 * 32);
    const auto idx = sample_indices(6, 6, 9, 0);
    auto loss = [&] {
      const PerturbedLora theta(t, Distribution::Rademacher, {Variant{}});
      BatchScorer s(*task);
      for (int64_t i : idx) s.add(task->examples(Split::Train)[size_t(i)], 0);
      return s.run(model, &theta).loss[0];
    };
    const double before = loss();

    OptimizerConfig oc;
    oc.lr = 1e-4f;
    oc.run_seed = run_seed;
    ZerothOrderOptimizer opt(oc, t.set(), 1);
    StepEntry e;
    e.step = step;
    e.lr = oc.lr;
    e.scale = 1.0f;
    e.exact = true;
    e.records = r.records;
    opt.apply(e);

    const PerturbationKey key{run_seed, uint32_t(step), 0, 0};
    const float c = oc.lr * (g / 1.0f);
    auto expect_moved = [&](const std::vector<float>& before_v, const float* after, int64_t off, const char* what) {
      std::vector<float> z(before_v.size());
      generate_z(key, Distribution::Rademacher, off, off + int64_t(z.size()), z.data());
      int64_t changed = 0;
      for (size_t i = 0; i < z.size(); ++i) {
        ASSERT_EQ(after[i], before_v[i] - c * z[i]) << what << " " << i;
        changed += after[i] != before_v[i];
      }
      EXPECT_EQ(changed, int64_t(z.size())) << what;
    };
    expect_moved(emb0, t.embedding(), t.offset_embedding(), "tok_embeddings");
    if (!tied) expect_moved(out0, t.output(), t.offset_output(), "output");
    EXPECT_LT(loss(), before);
  }
}

TEST(TrainableModes, FullTrainingNeedsAFullPrecisionBase) {
  LlamaConfig c = tiny();
  LlamaModel model(make_random_llama(c, 5, DType::Q8_0), 1);
  EXPECT_THROW(LoraTrainable(LoraConfig{}, model, {false, true}), Error);
  // Projections in f32 but the embedding quantized (model.quantize_embeddings): still refused, naming it.
  LlamaWeights w = make_random_llama(c, 5);
  w.tok_embeddings = make_random_llama(c, 5, DType::Q8_0).tok_embeddings;
  w.output = w.tok_embeddings;
  LlamaModel qe(w, 1);
  try {
    LoraTrainable(LoraConfig{}, qe, {false, true});
    ADD_FAILURE() << "a quantized embedding was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token embedding"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(LoraTrainable(LoraConfig{}, qe, {true, false}));  // norms alone do not need it
}

// trainable.sparse_density (SparseMeZO): the perturbed views equal a model
// whose masked elements alone were set to θ ± εz, and a committed step moves
// only those; the rest keep their bits, weight decay included.
TEST(TrainableModes, SparseMaskPerturbsAndStepsOnlyItsElements) {
  const LlamaWeights w = make_random_llama(tiny(false), 21);
  LlamaModel model(w, 1);
  TrainableOptions opt{true, true};
  opt.sparse_density = 0.2f;
  LoraTrainable t(LoraConfig{}, model, opt);
  t.initialize(1);
  ASSERT_TRUE(t.set().masked());
  EXPECT_EQ(t.set().mask(), magnitude_mask(t.set(), 0.2));
  std::vector<Example> docs;
  std::mt19937 rng(6);
  std::uniform_int_distribution<int32_t> tok(3, 39);
  for (int i = 0; i < 4; ++i) {
    Example e;
    e.tokens.push_back(1);
    for (int k = 0; k < 9; ++k) e.tokens.push_back(tok(rng));
    docs.push_back(e);
  }
  const auto task = make_task_from_examples(TaskConfig{}, docs, {}, {});
  const PerturbationKey key{7, 0, 0, 0};
  const float se = 0.05f;
  const PerturbedLora variants(t, Distribution::Rademacher, {Variant{key, se}, Variant{key, -se}});
  BatchScorer both(*task);
  for (int v : {0, 1})
    for (const Example& e : docs) both.add(e, v);
  const auto r = both.run(model, &variants);
  for (int v : {0, 1}) {
    LlamaModel moved(moved_weights(w, t, key, v == 0 ? se : -se), 1);
    BatchScorer one(*task);
    for (const Example& e : docs) one.add(e, 0);
    EXPECT_EQ(r.loss[size_t(v)], one.run(moved, nullptr).loss[0]) << v;
  }

  ZoConfig zc;
  zc.samples = 4;
  zc.eps = 1e-2f;
  const MemberStepResult step = zo_member_step(model, *task, t, zc, 7, 3, 0, 0, 1, 0.05f);
  ASSERT_EQ(step.records.size(), 1u);
  const std::vector<float> before = [&] {
    std::vector<float> all;
    for (const auto& tt : t.set().tensors()) all.insert(all.end(), tt.data, tt.data + tt.n);
    return all;
  }();
  for (UpdateRule rule : {UpdateRule::Sgd, UpdateRule::Adam}) {
    OptimizerConfig oc;
    oc.rule = rule;
    oc.lr = 1e-3f;
    oc.weight_decay = 0.5f;
    oc.run_seed = 7;
    ZerothOrderOptimizer o(oc, t.set(), 1);
    StepEntry e;
    e.lr = oc.lr;
    e.scale = 0.05f;
    e.records = step.records;
    o.apply(e);
    int64_t on = 0, moved = 0;
    size_t k = 0;
    for (const auto& tt : t.set().tensors())
      for (int64_t i = 0; i < tt.n; ++i, ++k) {
        if (!t.set().mask()[k]) {
          ASSERT_EQ(tt.data[i], before[k]) << update_rule_name(rule) << " " << tt.name << "[" << i << "] is off the mask";
        } else {
          ++on;
          moved += tt.data[i] != before[k];
        }
      }
    EXPECT_GT(moved, on * 9 / 10) << update_rule_name(rule);
    for (const auto& tt : t.set().tensors()) {  // back to θ_0 for the next rule
      const size_t off = size_t(tt.offset);
      std::copy(before.begin() + off, before.begin() + off + size_t(tt.n), tt.data);
    }
  }
  TrainableOptions lora_only;
  lora_only.sparse_density = 0.2f;
  EXPECT_THROW(LoraTrainable(LoraConfig{}, model, lora_only), Error);  // needs trainable.full
}

}  // namespace
}  // namespace zeroth
