// Fuzz target: StepEntry::deserialize (optim/ledger.h), the body of every ledger
// entry, Commit frame and catch-up entry a worker receives.
//
// Contract: deserialize, or throw zeroth::Error. Beyond it: an entry that
// deserializes passes serialize()'s checks and serializes back to exactly the
// input bytes (the encoding is canonical).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "optim/ledger.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zeroth::StepEntry e;
  try {
    e = zeroth::StepEntry::deserialize(data, size);
  } catch (const zeroth::Error& err) {
    zeroth::fuzz::rejected(err);
    return 0;
  }
  std::vector<uint8_t> again;
  try {
    again = e.serialize();
  } catch (const zeroth::Error&) {
    ZEROTH_FUZZ_REQUIRE(false, "an entry that deserializes does not serialize");
  }
  ZEROTH_FUZZ_REQUIRE(std::equal(again.begin(), again.end(), data, data + size),
                      "a deserialized entry does not serialize back to its bytes");
  return 0;
}
