#include "core/hash.h"

#include <cstdint>
#include <xxhash.h>

#include "core/error.h"

namespace zeroth {

std::string ParamHash::hex() const { return fmt::format("{:016x}{:016x}", hi, lo); }

TensorHasher::TensorHasher() : state_(XXH3_createState()) {
  ZEROTH_CHECK(state_ != nullptr, "XXH3_createState failed");
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

TensorHasher::~TensorHasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void TensorHasher::add_bytes(const void* data, size_t n) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}

void TensorHasher::add(const std::string& name, const Tensor& t) {
  // A self-delimiting header: name length, name, dtype, rank, dims (little-endian u64).
  auto put_u64 = [&](uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    add_bytes(b, 8);
  };
  put_u64(name.size());
  add_bytes(name.data(), name.size());
  put_u64(static_cast<uint64_t>(t.dtype()));
  put_u64(uint64_t(t.rank()));
  for (auto d : t.shape()) put_u64(uint64_t(d));
  const Tensor host = t.to(Device::CPU).contiguous();
  add_bytes(host.raw(), host.nbytes());
}

ParamHash TensorHasher::finish() const {
  const XXH128_hash_t h = XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_));
  return {h.high64, h.low64};
}

ParamHash hash_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  TensorHasher h;
  for (const auto& [name, t] : tensors) h.add(name, t);
  return h.finish();
}

ParamHash hash_bytes(const void* data, size_t n) {
  const XXH128_hash_t h = XXH3_128bits(data, n);
  return {h.high64, h.low64};
}

}  // namespace zeroth
