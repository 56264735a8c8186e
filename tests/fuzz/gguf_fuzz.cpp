// Fuzz target: the GGUF reader (core/formats/gguf.h) on a file holding the
// input: a downloaded llama.cpp model.
//
// Contract: GgufFile::open, or throw zeroth::Error (FormatError for a malformed
// file). On an opened file every metadata getter returns or throws
// zeroth::Error, every usable tensor lies inside the file, and `zeroth inspect`
// reads and renders it.
#include <cstdint>
#include <string>

#include "core/formats/gguf.h"
#include "tests/fuzz/model_file_checks.h"

namespace {

template <typename F>
void getter(F&& f) {
  try {
    (void)f();
  } catch (const zeroth::Error&) {  // wrong type, out of range
  }
}

void read_metadata(const zeroth::GgufFile& g) {
  for (const auto& kv : g.metadata()) {
    const std::string& key = kv.first;
    const zeroth::GgufValue& v = kv.second;
    ZEROTH_FUZZ_REQUIRE(g.find(key) == &v, "metadata lookup finds another entry than the file's");
    (void)v.type_str();
    (void)v.to_string();
    getter([&] { return g.get_string(key); });
    getter([&] { return g.get_u32(key); });
    getter([&] { return g.get_i64(key); });
    getter([&] { return g.get_f32(key); });
    getter([&] { return g.get_bool(key); });
    getter([&] { return g.get_string_array(key); });
    getter([&] { return g.get_f32_array(key); });
    getter([&] { return g.get_i32_array(key); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using zeroth::fuzz::Scratch;
  const std::string path = (Scratch::dir() / "model.gguf").string();
  Scratch::write(path, data, size);
  try {
    const auto g = zeroth::GgufFile::open(path);
    read_metadata(g);
    for (const auto& info : g.tensor_infos()) {
      ZEROTH_FUZZ_REQUIRE(g.find_tensor(info.name) == &info, "tensor lookup finds another tensor than the file's");
      try {
        zeroth::fuzz::read_every_byte(g.tensor(info.name));
      } catch (const zeroth::Error&) {  // a ggml type zeroth cannot use
        ZEROTH_FUZZ_REQUIRE(!info.dtype, "a tensor of a usable type cannot be read");
      }
    }
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
  }
  zeroth::fuzz::inspect_and_render(path);
  return 0;
}
