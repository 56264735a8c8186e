// Shared by the update-rule tests: random ledger entries of one-byte records.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "optim/ledger.h"

namespace zeroth::test {

// `count` entries from `first_step`: scale 1e-3·(1 + i % 4), lr 1e-2 / (1 + i % 3),
// every 7th (i % 7 == 3) empty, the others with min_records..max_records records
// of random codes, record k from member k / slots, slot k % slots.
inline std::vector<StepEntry> random_entries(int count, uint64_t first_step, unsigned seed, int min_records,
                                             int max_records, uint32_t slots) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127), nrec(min_records, max_records);
  std::vector<StepEntry> out;
  for (int i = 0; i < count; ++i) {
    StepEntry e;
    e.step = first_step + uint64_t(i);
    e.scale = 1e-3f * float(1 + i % 4);
    e.lr = 1e-2f / float(1 + i % 3);
    const int n = i % 7 == 3 ? 0 : nrec(rng);
    for (int k = 0; k < n; ++k)
      e.records.push_back({uint32_t(k) / slots, uint32_t(k) % slots, uint8_t(int8_t(code(rng))), RecordKind::ZerothOrder});
    out.push_back(e);
  }
  return out;
}

// HiZOO's entries: beside each record (but one in five, as if dropped), a
// RecordKind::Curvature record of a random code in −40..40 (h ≈ 1e-3..1e3), in
// (member, slot, kind) order.
inline std::vector<StepEntry> with_curvature(std::vector<StepEntry> entries, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-40, 40), drop(0, 4);
  for (StepEntry& e : entries) {
    std::vector<Record> recs;
    for (const Record& r : e.records) {
      recs.push_back(r);
      if (drop(rng) == 0) continue;
      Record c = r;
      c.kind = RecordKind::Curvature;
      c.code = uint8_t(int8_t(code(rng)));
      recs.push_back(c);
    }
    e.records = std::move(recs);
  }
  return entries;
}

}  // namespace zeroth::test
