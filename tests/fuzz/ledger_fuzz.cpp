// Fuzz target: LedgerFile::open (optim/ledger.h) on a file holding the input:
// an auditor's or replayer's ledger, a run directory being resumed.
//
// Contract: open read-only, or throw zeroth::Error (FormatError for a damaged
// file). Beyond it, for a file that opens read-only, nothing after may throw:
//   - every entry passes serialize()'s checks and steps count 0, 1, 2, ...;
//   - read-write open (which cuts a torn tail) reads the same header and entries;
//   - after that cut a read-only open finds nothing to drop, and an append of
//     the next step reads back.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "optim/ledger.h"
#include "tests/fuzz/fuzz_support.h"

using zeroth::LedgerAccess;
using zeroth::LedgerFile;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = (zeroth::fuzz::Scratch::dir() / "ledger.zl").string();
  zeroth::fuzz::Scratch::write(path, data, size);
  std::optional<LedgerFile> ro;
  try {
    ro.emplace(LedgerFile::open(path, LedgerAccess::ReadOnly));
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
    return 0;
  }
  // From here on a zeroth::Error escapes too: libFuzzer reports it.
  for (size_t i = 0; i < ro->entries().size(); ++i) {
    ZEROTH_FUZZ_REQUIRE(ro->entries()[i].step == i, "ledger entries are not steps 0, 1, 2, ...");
    (void)ro->entries()[i].serialize();
  }
  ZEROTH_FUZZ_REQUIRE(ro->dropped_bytes() <= size, "more bytes dropped than the file holds");

  LedgerFile rw = LedgerFile::open(path, LedgerAccess::ReadWrite);
  ZEROTH_FUZZ_REQUIRE(rw.header() == ro->header() && rw.entries() == ro->entries() &&
                          rw.dropped_bytes() == ro->dropped_bytes(),
                      "read-write open reads another ledger than read-only open");
  zeroth::StepEntry next;
  next.step = rw.next_step();
  rw.append(next);

  const LedgerFile after = LedgerFile::open(path, LedgerAccess::ReadOnly);
  ZEROTH_FUZZ_REQUIRE(after.dropped_bytes() == 0, "a torn tail survived read-write open");
  ZEROTH_FUZZ_REQUIRE(after.entries().size() == ro->entries().size() + 1 && after.entries().back() == next &&
                          std::equal(ro->entries().begin(), ro->entries().end(), after.entries().begin()),
                      "an append after read-write open does not read back");
  return 0;
}
