// Checks the model file targets share: every tensor a reader returns lies
// inside its storage (read every byte, so ASan sees a view past a heap buffer
// and a map overrun faults), and `zeroth inspect` of the file renders as text
// and as JSON without any exception but zeroth::Error.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/formats/inspect.h"
#include "core/formats/named_tensor.h"
#include "tests/fuzz/fuzz_support.h"

namespace zeroth::fuzz {

inline void read_every_byte(const Tensor& t) {
  ZEROTH_FUZZ_REQUIRE(t.defined(), "a reader returned an undefined tensor");
  ZEROTH_FUZZ_REQUIRE(t.byte_offset() <= t.storage()->size() && t.nbytes() <= t.storage()->size() - t.byte_offset(),
                      "a tensor's bytes lie outside its storage");
  const auto* p = static_cast<const volatile uint8_t*>(t.raw());
  uint8_t sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum = uint8_t(sum + p[i]);
  (void)sum;
}

inline void read_every_byte(const TensorList& tensors) {
  for (const auto& [name, t] : tensors) read_every_byte(t);
}

// What `zeroth inspect [--json] --metadata PATH` does with the file.
inline void inspect_and_render(const std::string& path) {
  ModelFileReport r;
  try {
    r = inspect_model_file(path);
  } catch (const Error& e) {
    rejected(e);
    return;
  }
  (void)render_report_text(r, true);
  (void)render_report_text(r, false);
  (void)render_report_json(r, true).dump(2);
}

}  // namespace zeroth::fuzz
