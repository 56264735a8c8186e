// The replica (optim/replica.h): θ, the optimizer state, the codec scale and
// the screen as one function of the ledger. Applying entries one by one,
// replaying them fused, and restoring a snapshot then replaying must all end
// on the same bits and the same next-step scale; the commit filter of a
// replica rebuilt from the ledger must decide as the live one did.
#include <cstdint>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/error.h"
#include "models/llama.h"
#include "optim/layer_sampling.h"
#include "optim/replica.h"

namespace zeroth {
namespace {

LlamaConfig tiny() {
  LlamaConfig c;
  c.dim = 32; c.hidden_dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.vocab_size = 40;
  c.max_seq_len = 16;
  return c;
}

ReplicaConfig config(UpdateRule rule) {
  ReplicaConfig c;
  c.lora.rank = 4;
  c.optimizer.rule = rule;
  c.optimizer.run_seed = 11;
  c.optimizer.weight_decay = 0.01f;
  c.seed = 11;
  return c;
}

// Entries of `members` members with one record each; member 3 (when present)
// sends a constant large code, which the screen learns to flag.
std::vector<StepEntry> entries(int count, uint32_t members, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-40, 40);
  std::vector<StepEntry> out;
  for (int i = 0; i < count; ++i) {
    StepEntry e;
    e.step = uint64_t(i);
    e.scale = 1e-3f;
    e.lr = 1e-2f;
    for (uint32_t m = 0; m < members; ++m)
      e.records.push_back({m, 0, uint8_t(int8_t(m == 3 ? 100 : code(rng))), RecordKind::ZerothOrder});
    out.push_back(e);
  }
  return out;
}

struct ReplicaTest : ::testing::Test {
  LlamaModel model{make_random_llama(tiny(), 3), 1};
};

TEST_F(ReplicaTest, ApplyOneByOneEqualsFusedReplayForEveryRule) {
  for (const UpdateRule rule : {UpdateRule::Sgd, UpdateRule::Momentum, UpdateRule::Sign}) {
    const auto es = entries(40, 3, 1);
    Replica live(config(rule), model), replayed(config(rule), model);
    for (const auto& e : es) live.apply(e);
    replayed.replay(es);
    EXPECT_EQ(live.steps(), 40u);
    EXPECT_EQ(replayed.steps(), 40u);
    EXPECT_EQ(live.hash(), replayed.hash()) << update_rule_name(rule);
    EXPECT_EQ(live.scale(), replayed.scale()) << update_rule_name(rule);
    Replica fresh(config(rule), model);
    EXPECT_NE(live.hash(), fresh.hash()) << "the entries must move θ";
    live.reset();
    EXPECT_EQ(live.hash(), fresh.hash());
    EXPECT_EQ(live.steps(), 0u);
  }
}

// hizoo's curvature estimate D is lent to θ for the members; a reset builds a
// new optimizer, whose D (not nothing, and not the old one's) θ must then hold.
TEST_F(ReplicaTest, ResetKeepsHizoosCurvatureLent) {
  ReplicaConfig c = config(UpdateRule::HiZoo);
  c.optimizer.hessian_smooth = 0.1f;
  Replica r(c, model);
  const auto lent = [&] { return r.lora().set().curvature(); };
  ASSERT_EQ(int64_t(lent().size()), r.lora().set().size());
  auto es = entries(5, 2, 4);
  for (StepEntry& e : es) {  // a curvature record beside each gradient record: D moves off 1
    std::vector<Record> recs;
    for (const Record& g : e.records) {
      recs.push_back(g);
      recs.push_back({g.member, g.slot, uint8_t(int8_t(20)), RecordKind::Curvature});
    }
    e.records = recs;
  }
  r.replay(es);
  EXPECT_NE(lent()[0], 1.0f);
  r.reset();
  ASSERT_EQ(int64_t(lent().size()), r.lora().set().size()) << "the reset left θ without a curvature estimate";
  for (float d : lent()) ASSERT_EQ(d, 1.0f);  // the new optimizer's D_0
  Replica again(c, model);
  again.replay(es);
  r.replay(es);
  EXPECT_EQ(r.hash(), again.hash());
  EXPECT_EQ(lent()[0], again.lora().set().curvature()[0]);
}

TEST_F(ReplicaTest, SnapshotThenReplayOfAllEntriesEqualsFullReplay) {
  const auto es = entries(30, 3, 2);
  Replica full(config(UpdateRule::Sgd), model);
  full.replay(std::span(es).first(12));
  const TensorList snap = full.theta().snapshot();
  const std::string snap_hash = full.hash();
  full.replay(std::span(es).subspan(12));

  Replica restored(config(UpdateRule::Sgd), model);
  ASSERT_TRUE(restored.snapshot_restores());
  restored.restore(snap, 12, snap_hash, "test snapshot");
  // Entries before the snapshot fold into the codec only; in two batches, one
  // straddling the snapshot's step.
  restored.replay(std::span(es).first(7));
  EXPECT_EQ(restored.hash(), snap_hash) << "entries before the snapshot must not move θ";
  restored.replay(std::span(es).subspan(7));
  EXPECT_EQ(restored.steps(), 30u);
  EXPECT_EQ(restored.hash(), full.hash());
  EXPECT_EQ(restored.scale(), full.scale());
}

TEST_F(ReplicaTest, RestoreChecksTheHashAndTheRule) {
  const auto es = entries(5, 2, 3);
  Replica r(config(UpdateRule::Sgd), model);
  const std::string theta0 = r.hash();
  Replica moved(config(UpdateRule::Sgd), model);
  moved.replay(es);
  EXPECT_THROW(r.restore(moved.theta().snapshot(), 5, theta0, "bad snapshot"), Error);
  EXPECT_EQ(r.hash(), theta0) << "a failed restore leaves θ as it was";

  Replica momentum(config(UpdateRule::Momentum), model);
  EXPECT_FALSE(momentum.snapshot_restores());
  try {
    momentum.restore(moved.theta().snapshot(), 5, moved.hash(), "snap.safetensors");
    FAIL() << "momentum keeps state beside θ";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("momentum"), std::string::npos) << e.what();
  }
}

TEST_F(ReplicaTest, EntriesOutOfOrderAreRefusedBeforeAnythingMoves) {
  const auto es = entries(4, 2, 4);
  Replica r(config(UpdateRule::Sgd), model);
  const std::string h = r.hash();
  EXPECT_THROW(r.apply(es[1]), Error);
  std::vector<StepEntry> gap = {es[0], es[2]};
  EXPECT_THROW(r.replay(gap), Error);
  EXPECT_EQ(r.hash(), h);
  EXPECT_EQ(r.steps(), 0u);
  StepEntry next = es[1];
  EXPECT_THROW(r.commit_filter(next), Error) << "the filter judges the next step only";
}

TEST_F(ReplicaTest, CommitFilterOfAReplicaRebuiltFromTheLedgerDecidesAsTheLiveOne) {
  ReplicaConfig c = config(UpdateRule::Sgd);
  c.robust.screen = true;
  c.robust.window = 8;
  const auto gathered = entries(24, 5, 5);
  Replica live(c, model);
  std::vector<StepEntry> ledger;
  int64_t screened = 0;
  for (StepEntry e : gathered) {
    screened += live.commit_filter(e).screened;
    live.apply(e);
    ledger.push_back(e);
  }
  EXPECT_GT(screened, 0) << "member 3's constant code must be flagged";
  Replica rebuilt(c, model);
  rebuilt.replay(ledger);
  EXPECT_EQ(rebuilt.hash(), live.hash());
  StepEntry a = entries(25, 5, 6).back(), b = a;
  const auto fa = live.commit_filter(a), fb = rebuilt.commit_filter(b);
  EXPECT_EQ(fa.screened, 1);
  EXPECT_EQ(fa.screened, fb.screened);
  EXPECT_EQ(a, b);
}

// LISA: a variant perturbs exactly the layers its step samples, the same ones
// apply() moves, and leaves the others at θ.
TEST_F(ReplicaTest, LisaPerturbsOnlyTheStepsLayers) {
  ReplicaConfig c = config(UpdateRule::Sgd);
  c.trainable.norms = true;
  Replica r(c, model);
  const LoraTrainable& lora = r.lora();
  for (uint32_t step = 0; step < 6; ++step) {
    const PerturbationKey key{11, step, 0, 0};
    const PerturbedLora plain(lora, Distribution::Rademacher, {Variant{key, 0.01f}});
    const PerturbedLora lisa(lora, Distribution::Rademacher, {Variant{key, 0.01f}}, 1);
    const auto act = sampled_layers(11, step, 2, 1);
    for (int l = 0; l < 2; ++l) {
      std::vector<float> s1(plain.scratch_floats(l, Proj::Q)), s2(s1.size());
      const LoraFactors p = plain.get(l, Proj::Q, 0, s1.data()), q = lisa.get(l, Proj::Q, 0, s2.data());
      const LoraFactors theta = lora.adapters().get(l, Proj::Q, 0, nullptr);
      const int64_t na = int64_t(lora.adapters().A(l, Proj::Q).size());
      if (act[size_t(l)]) {
        EXPECT_TRUE(std::equal(p.A, p.A + na, q.A)) << "a sampled layer is perturbed as without LISA";
      } else {
        EXPECT_EQ(q.A, theta.A) << "layer " << l << " sits out step " << step;
        std::vector<float> ns(lora.norm_size());
        EXPECT_EQ(lisa.norm(l, NormSlot::Attention, 0, ns.data()), lora.norm(l, NormSlot::Attention));
      }
      PerturbedFactors pf;
      ASSERT_TRUE(lisa.perturbed_factors(l, Proj::Q, 0, pf));
      EXPECT_EQ(pf.sigma_eps, act[size_t(l)] ? 0.01f : 0.0f);
    }
    std::vector<float> fs(lora.norm_size());
    EXPECT_NE(lisa.norm(2, NormSlot::Final, 0, fs.data()), lora.norm(2, NormSlot::Final)) << "the final norm always";
  }
}

}  // namespace
}  // namespace zeroth
