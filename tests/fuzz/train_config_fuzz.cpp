// Fuzz target: the YAML config loader (launch/train_config.h): recipes users
// share, and the resolved config a coordinator sends every worker (Welcome).
//
// Contract: parse_train_config returns a validated config, or throws
// zeroth::Error (YAML errors are converted to it, naming the key). Beyond it:
// the resolved config it stores in the run directory and ledger (to_yaml)
// parses again to the same config.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "launch/train_config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(zeroth::fuzz::as_text(data, size));
  zeroth::cli::TrainConfig c;
  try {
    c = zeroth::cli::parse_train_config(text, "fuzz.yaml", {});
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
    return 0;
  }
  // From here on a zeroth::Error escapes too: libFuzzer reports it.
  const std::string resolved = c.to_yaml();
  const auto again = zeroth::cli::parse_train_config(resolved, "resolved.yaml", {});
  ZEROTH_FUZZ_REQUIRE(again.to_yaml() == resolved, "the resolved config does not parse back to itself");
  return 0;
}
