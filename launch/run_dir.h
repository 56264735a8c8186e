// A run directory on disk:
//   config.yaml          the resolved config
//   ledger.zl            the append-only ledger (optim/ledger.h)
//   snapshots/step-N.safetensors   the trainable set at step N (metadata: step, hash)
//   metrics.jsonl        one JSON line per step (and per evaluation)
//   summary.json         before/after evaluation, bytes per member, final hash
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/formats/named_tensor.h"
#include "core/hash.h"

namespace zeroth::cli {

struct RunDir {
  std::string root;
  std::string config() const { return root + "/config.yaml"; }
  std::string ledger() const { return root + "/ledger.zl"; }
  std::string snapshots() const { return root + "/snapshots"; }
  std::string metrics() const { return root + "/metrics.jsonl"; }
  std::string summary() const { return root + "/summary.json"; }
  std::string snapshot(uint64_t step) const;
};

struct Snapshot {
  uint64_t step = 0;
  std::string hash;
  TensorList tensors;
};

void write_snapshot(const RunDir& dir, uint64_t step, const std::string& hash, const TensorList& tensors);
// The newest snapshot at or before `max_step`, if any (unreadable ones are skipped with a warning).
std::optional<Snapshot> latest_snapshot(const RunDir& dir, uint64_t max_step);

// A snapshot received as its file's bytes (from a coordinator, or from rank 0
// of an MPI job), read as latest_snapshot reads the file; `who` names the
// sender in the error when the bytes are not a snapshot of `step`.
Snapshot snapshot_from_bytes(std::span<const uint8_t> bytes, uint64_t step, const std::string& who);

// A hash of the base model's file(s): every byte, in a fixed order.
std::string base_model_hash(const std::string& model_path);

}  // namespace zeroth::cli
