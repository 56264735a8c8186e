// Fuzz target: the safetensors readers (core/formats/safetensors.h) on a file
// holding the input: a downloaded model.safetensors or its sharded index.
//
// Byte 0 picks what the rest is: even, a model.safetensors (SafetensorsFile::open);
// odd, a model.safetensors.index.json (read_safetensors_index), alone in its
// directory so no shard it names exists. Either way `zeroth inspect` reads it too.
// Contract: open, or throw zeroth::Error (FormatError for a malformed file);
// every tensor of an opened file lies inside the file.
#include <cstdint>

#include "core/formats/safetensors.h"
#include "tests/fuzz/model_file_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using zeroth::fuzz::Scratch;
  if (size == 0) return 0;
  const bool index = data[0] & 1;
  const auto dir = Scratch::fresh("safetensors");
  const std::string path = (dir / (index ? "model.safetensors.index.json" : "model.safetensors")).string();
  Scratch::write(path, data + 1, size - 1);
  try {
    if (index) {
      const auto idx = zeroth::read_safetensors_index(path);
      for (const auto& shard : idx.shards())
        ZEROTH_FUZZ_REQUIRE(idx.shard_path(shard).rfind(dir.string() + "/", 0) == 0,
                            "an index names a shard outside its directory");
    } else {
      const auto f = zeroth::SafetensorsFile::open(path);
      zeroth::fuzz::read_every_byte(f.tensors());
    }
  } catch (const zeroth::Error& e) {
    zeroth::fuzz::rejected(e);
  }
  zeroth::fuzz::inspect_and_render(path);
  return 0;
}
