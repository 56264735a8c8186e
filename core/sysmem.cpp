#include "core/sysmem.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace zeroth {
namespace {

// The value of "Key:  123 kB" lines in a /proc file, in bytes; -1 if absent.
int64_t proc_kib(const char* path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  return -1;
}

// A cgroup file holding one number ("max": unlimited, -1; absent: -1).
int64_t cgroup_number(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return -1;
  try {
    const unsigned long long v = std::stoull(word);
    // v1 writes "no limit" as a page-rounded LLONG_MAX.
    return v >= (1ULL << 62) ? -1 : int64_t(v);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

ProcessMemory process_memory() {
  ProcessMemory m;
  m.rss = std::max<int64_t>(0, proc_kib("/proc/self/status", "VmRSS"));
  m.peak = std::max<int64_t>(0, proc_kib("/proc/self/status", "VmHWM"));
  return m;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

int64_t available_memory() {
  const int64_t avail = proc_kib("/proc/meminfo", "MemAvailable");
  ZEROTH_CHECK(avail >= 0, "cannot read MemAvailable from /proc/meminfo (set roles.memory to say how much memory "
               "this process may use)");
  int64_t out = avail;
  const auto cap = [&](int64_t limit, int64_t usage) {
    if (limit >= 0 && usage >= 0) out = std::min(out, std::max<int64_t>(0, limit - usage));
  };
  cap(cgroup_number("/sys/fs/cgroup/memory.max"), cgroup_number("/sys/fs/cgroup/memory.current"));
  cap(cgroup_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
      cgroup_number("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
  return out;
}

int64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(0, 1);
  double mult = -1;
  if (unit.empty() || unit == "B") mult = 1;
  else {
    const std::string pre = "KMGT";
    const auto p = pre.find(char(std::toupper(static_cast<unsigned char>(unit[0]))));
    const std::string rest = unit.substr(1);
    if (p != std::string::npos && (rest.empty() || rest == "B" || rest == "iB")) mult = std::pow(1024.0, double(p + 1));
  }
  ZEROTH_CHECK(used > 0 && mult > 0 && std::isfinite(v) && v >= 0 && v * mult < 9.2e18,
               "{}: \"{}\" is not a size (write bytes, or a number with KiB, MiB, GiB or TiB: 512MiB, 2GiB)", what,
               text);
  return int64_t(std::llround(v * mult));
}

}  // namespace zeroth
