// This process's memory and the machine's free memory, from /proc and the
// cgroup (Linux): what `roles.auto` weighs a gradient member's backward
// against, and what the benchmarks report as peak RSS.
#pragma once
#include <cstdint>
#include <string>

namespace zeroth {

struct ProcessMemory {
  int64_t rss = 0;   // VmRSS, bytes
  int64_t peak = 0;  // VmHWM, bytes: the high-water mark since start (or the last reset_peak_rss)
};
ProcessMemory process_memory();

// Restarts VmHWM at the current RSS (/proc/self/clear_refs "5"), so a later
// process_memory().peak is the peak of what ran in between. False where the
// kernel does not allow it (then peak keeps counting from the start).
bool reset_peak_rss();

// Bytes this process may still allocate: MemAvailable, capped by the cgroup's
// limit less its usage (cgroup v2 memory.max/memory.current, or v1's
// memory.limit_in_bytes/usage_in_bytes) where one is set. Throws where
// /proc/meminfo cannot be read.
int64_t available_memory();

// "512MiB", "2GiB", "1.5G", "4096": bytes (K/M/G/T with or without "iB" are
// powers of 1024). Throws zeroth::Error naming `what` on anything else.
int64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace zeroth
