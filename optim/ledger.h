// The ledger: a finetuned model is its base plus this append-only list of
// committed steps. Every replica applies the same entries with the same float
// operations in the same order, so all replicas stay bit-identical and anyone
// holding the base and the ledger can rebuild the model.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zeroth {

// How a record's projected gradient was obtained.
enum class RecordKind : uint8_t {
  ZerothOrder = 0,  // SPSA finite difference (L(θ+εz) − L(θ−εz)) / 2ε
  Gradient = 1,     // exact projection ⟨∇L, z⟩ from a member that backpropagates
  // HiZOO's curvature along the slot's perturbation, |L(θ+εu) + L(θ−εu) − 2L(θ)| / 2ε²,
  // beside the slot's ZerothOrder record (optim/codec.h encode_curvature: a
  // fixed logarithmic code, no scale). Records sort by (member, slot, kind).
  Curvature = 2,
};

// One member's one-byte report for one perturbation slot.
struct Record {
  uint32_t member = 0;
  uint32_t slot = 0;
  uint8_t code = 0;  // the one-byte codec's code (optim/codec.h)
  RecordKind kind = RecordKind::ZerothOrder;
  float value = 0;     // exact runs only (StepEntry::exact): the fp32 projected gradient
  bool exact = false;
  bool operator==(const Record&) const = default;
};

// A committed step. Records are sorted by (member, slot, kind); scale is the codec
// scale of this step (a deterministic function of the earlier entries, stored so
// a reader can check it), lr the learning rate applied.
struct StepEntry {
  uint64_t step = 0;
  uint32_t epoch = 0;    // membership epoch the step ran under
  float scale = 0;       // codec scale s_t
  float lr = 0;          // learning rate of this step (after the schedule)
  bool exact = false;    // records carry fp32 values instead of codes (comparison runs)
  std::vector<Record> records;
  bool operator==(const StepEntry&) const = default;

  void sort_records();                 // into (member, slot, kind) order
  // Body bytes (little-endian, versioned), without framing:
  //   u32 version=1 | u64 step | u32 epoch | f32 scale | f32 lr | u32 count |
  //   count × (u32 member | u32 slot | u8 code | u8 kind)
  // Throws zeroth::Error when records are unsorted or duplicated, a code is the
  // unused −128, or scale/lr are not finite (such an entry must never be written).
  std::vector<uint8_t> serialize() const;
  // Throws zeroth::Error describing what is malformed (the same checks, plus
  // version, lengths and record kinds).
  static StepEntry deserialize(const uint8_t* data, size_t n);
};

// What a ledger file is about; written once at its start and checked on reopen.
struct LedgerHeader {
  uint64_t run_seed = 0;
  std::string base_hash;       // hex hash of the frozen base model
  std::string trainable_hash;  // hex hash of the trainable set at step 0 (θ_0)
  std::string config;          // the run's resolved config (YAML), for replay and audit
  bool operator==(const LedgerHeader&) const = default;
};

// ReadWrite holds an exclusive flock (one writer per ledger) and cuts a torn
// tail; ReadOnly (an auditor, a replayer beside a live run) changes nothing and
// cannot append.
enum class LedgerAccess : uint8_t { ReadWrite, ReadOnly };

// The append-only file: a header frame, then one frame per entry:
//   u32 magic | u32 body length | body | u32 CRC-32C of (length, body)
// magic is "ZLH1" for the header frame and "ZLE1" for entries (bytes in file
// order); integers are little-endian. Entry steps are 0, 1, 2, ... in order.
//
// A crash mid-append leaves a torn last frame; open() stops at the last whole
// frame, reports what it dropped, and truncates the file there before appending.
// A damaged frame (bad magic, length past the end, CRC mismatch) counts as torn
// only when no whole frame follows it: a bit flip in the final entry therefore
// drops that entry (reported in dropped_bytes(); the replica re-fetches it),
// while a damaged frame with whole frames after it is an error, never skipped.
class LedgerFile {
 public:
  // Creates a new ledger and fsyncs it and its directory (fails if the file
  // exists: nothing is overwritten).
  static LedgerFile create(const std::string& path, const LedgerHeader& header);
  // Opens an existing ledger, reading every whole entry. Torn tail bytes are cut
  // off (count in dropped_bytes(); ReadOnly only counts them); a corrupt frame
  // before the tail is an error naming the file and the entry index.
  static LedgerFile open(const std::string& path, LedgerAccess access = LedgerAccess::ReadWrite);

  const std::string& path() const { return path_; }
  const LedgerHeader& header() const { return header_; }
  const std::vector<StepEntry>& entries() const { return entries_; }
  uint64_t dropped_bytes() const { return dropped_bytes_; }
  // Appends the frame with one write (to the OS; fsync when durable). Entry steps
  // must be consecutive and records sorted and unique.
  void append(const StepEntry& e, bool durable = false);
  uint64_t next_step() const { return entries_.empty() ? 0 : entries_.back().step + 1; }

  LedgerFile(LedgerFile&&) noexcept;
  LedgerFile& operator=(LedgerFile&&) noexcept;
  ~LedgerFile();

 private:
  LedgerFile() = default;
  std::string path_;
  int fd_ = -1;
  bool writable_ = false;
  uint64_t end_ = 0;  // file offset after the last whole frame
  LedgerHeader header_;
  std::vector<StepEntry> entries_;
  uint64_t dropped_bytes_ = 0;
};

// CRC-32C (Castagnoli, reflected 0x82F63B78). Chains: crc32c(b, m, crc32c(a, n))
// is the CRC of a then b. crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace zeroth
