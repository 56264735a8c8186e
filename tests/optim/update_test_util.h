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

}  // namespace zeroth::test
