// StepEntry's body encoding (optim/ledger.h): fixed little-endian layout so a
// ledger written on one machine reads the same on every other.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "optim/ledger.h"

namespace zeroth {
namespace {

constexpr uint32_t kEntryVersion = 1;       // records carry one-byte codes
constexpr uint32_t kExactEntryVersion = 2;  // records carry fp32 values (StepEntry::exact comparison runs)
constexpr size_t kEntryFixedBytes = 28;  // version, step, epoch, scale, lr, count
constexpr size_t kRecordBytes = 10;      // member, slot, code, kind
constexpr size_t kExactRecordBytes = 13; // member, slot, kind, value
constexpr uint8_t kUnusedCode = 0x80;    // int8 −128: the codec never emits it

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t get_u64(const uint8_t* p) { return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32; }
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool record_less(const Record& a, const Record& b) {
  if (a.member != b.member) return a.member < b.member;
  return a.slot != b.slot ? a.slot < b.slot : a.kind < b.kind;
}

// The checks shared by serialize and deserialize; `who` prefixes the message.
void check_entry(const StepEntry& e, const char* who) {
  ZEROTH_CHECK(std::isfinite(e.scale) && e.scale >= 0, "{} step {}: codec scale {} is not a finite value >= 0",
               who, e.step, e.scale);
  ZEROTH_CHECK(std::isfinite(e.lr) && e.lr >= 0, "{} step {}: learning rate {} is not a finite value >= 0", who,
               e.step, e.lr);
  for (size_t i = 0; i < e.records.size(); ++i) {
    const Record& r = e.records[i];
    if (e.exact)
      ZEROTH_CHECK(std::isfinite(r.value), "{} step {}: record {} (member {}, slot {}) has a non-finite value", who,
                   e.step, i, r.member, r.slot);
    else
      ZEROTH_CHECK(r.code != kUnusedCode, "{} step {}: record {} (member {}, slot {}) has the unused code -128", who,
                   e.step, i, r.member, r.slot);
    ZEROTH_CHECK(r.kind == RecordKind::ZerothOrder || r.kind == RecordKind::Gradient || r.kind == RecordKind::Curvature,
                 "{} step {}: record {} (member {}, slot {}) has unknown kind {}", who, e.step, i, r.member, r.slot,
                 int(r.kind));
    ZEROTH_CHECK(i == 0 || record_less(e.records[i - 1], r),
                 "{} step {}: record {} (member {}, slot {}) is out of (member, slot, kind) order or duplicated{}", who,
                 e.step, i, r.member, r.slot, " (call sort_records() before committing)");
  }
}

}  // namespace

void StepEntry::sort_records() { std::sort(records.begin(), records.end(), record_less); }

std::vector<uint8_t> StepEntry::serialize() const {
  check_entry(*this, "StepEntry::serialize");
  const size_t per = exact ? kExactRecordBytes : kRecordBytes;
  ZEROTH_CHECK(records.size() <= (UINT32_MAX - kEntryFixedBytes) / per,
               "StepEntry::serialize step {}: {} records do not fit one frame", step, records.size());
  std::vector<uint8_t> out;
  out.reserve(kEntryFixedBytes + per * records.size());
  put_u32(out, exact ? kExactEntryVersion : kEntryVersion);
  put_u64(out, step);
  put_u32(out, epoch);
  put_u32(out, float_bits(scale));
  put_u32(out, float_bits(lr));
  put_u32(out, uint32_t(records.size()));
  for (const Record& r : records) {
    put_u32(out, r.member);
    put_u32(out, r.slot);
    if (exact) {
      out.push_back(uint8_t(r.kind));
      put_u32(out, float_bits(r.value));
    } else {
      out.push_back(r.code);
      out.push_back(uint8_t(r.kind));
    }
  }
  return out;
}

StepEntry StepEntry::deserialize(const uint8_t* data, size_t n) {
  ZEROTH_CHECK(n >= kEntryFixedBytes, "StepEntry: body of {} bytes is shorter than the {}-byte fixed part", n,
               kEntryFixedBytes);
  const uint32_t version = get_u32(data);
  ZEROTH_CHECK(version == kEntryVersion || version == kExactEntryVersion,
               "StepEntry: unknown version {} (this build reads versions {} and {})", version, kEntryVersion,
               kExactEntryVersion);
  StepEntry e;
  e.exact = version == kExactEntryVersion;
  const size_t per = e.exact ? kExactRecordBytes : kRecordBytes;
  e.step = get_u64(data + 4);
  e.epoch = get_u32(data + 12);
  e.scale = bits_float(get_u32(data + 16));
  e.lr = bits_float(get_u32(data + 20));
  const uint64_t count = get_u32(data + 24);
  // The count is checked against the body length before anything is allocated.
  ZEROTH_CHECK(count * per == n - kEntryFixedBytes,
               "StepEntry step {}: record count {} needs {} body bytes but the body has {}", e.step, count,
               kEntryFixedBytes + count * per, n);
  e.records.resize(size_t(count));
  const uint8_t* p = data + kEntryFixedBytes;
  for (Record& r : e.records) {
    r.member = get_u32(p);
    r.slot = get_u32(p + 4);
    if (e.exact) {
      r.exact = true;
      r.kind = RecordKind(p[8]);
      r.value = bits_float(get_u32(p + 9));
    } else {
      r.code = p[8];
      r.kind = RecordKind(p[9]);
    }
    p += per;
  }
  check_entry(e, "StepEntry");
  return e;
}

}  // namespace zeroth
