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

// A committed step. Records are sorted by (member, slot); scale is the codec
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

  void sort_records();                 // into (member, slot) order
  std::vector<uint8_t> serialize() const;  // body bytes (little-endian), without framing
  // Throws zeroth::Error describing what is malformed.
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

// The append-only file: a header frame, then one frame per entry:
//   u32 magic "ZLE1" | u32 body length | body | u32 CRC-32C of (length, body)
// A crash mid-append leaves a torn last frame; open() stops at the last whole
// frame, reports what it dropped, and truncates the file there before appending.
class LedgerFile {
 public:
  // Creates a new ledger (fails if the file exists).
  static LedgerFile create(const std::string& path, const LedgerHeader& header);
  // Opens an existing ledger, reading every whole entry. Torn tail bytes are cut
  // off (count in dropped_bytes()); a corrupt frame before the tail is an error
  // naming the file and the entry index.
  static LedgerFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const LedgerHeader& header() const { return header_; }
  const std::vector<StepEntry>& entries() const { return entries_; }
  uint64_t dropped_bytes() const { return dropped_bytes_; }
  // Appends and flushes (fsync when durable). Entry steps must be consecutive.
  void append(const StepEntry& e, bool durable = false);

  LedgerFile(LedgerFile&&) noexcept;
  LedgerFile& operator=(LedgerFile&&) noexcept;
  ~LedgerFile();

 private:
  LedgerFile() = default;
  std::string path_;
  int fd_ = -1;
  LedgerHeader header_;
  std::vector<StepEntry> entries_;
  uint64_t dropped_bytes_ = 0;
};

uint32_t crc32c(const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace zeroth
