// LedgerFile (optim/ledger.h): framed, CRC-checked, append-only entries with
// torn-tail recovery. The file is small (tens of bytes per step), so open()
// reads it whole and appends go through pwrite at the last whole frame.
#include "optim/ledger.h"

#include <cstdint>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace zeroth {
namespace {

constexpr std::array<uint8_t, 4> kHeaderMagic = {'Z', 'L', 'H', '1'};
constexpr std::array<uint8_t, 4> kEntryMagic = {'Z', 'L', 'E', '1'};
constexpr uint32_t kHeaderVersion = 1;
constexpr size_t kFrameOverhead = 12;  // magic, length, CRC

// The reflected Castagnoli table, built at compile time.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

std::vector<uint8_t> make_frame(const std::array<uint8_t, 4>& magic, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> f(magic.begin(), magic.end());
  put_u32(f, uint32_t(body.size()));
  f.insert(f.end(), body.begin(), body.end());
  put_u32(f, crc32c(f.data() + 4, 4 + body.size()));
  return f;
}

// Why the frame at `pos` is not whole, or "" when it is (magic, length in the
// file, CRC over length and body). *body_len receives the length.
std::string frame_problem(const std::vector<uint8_t>& b, size_t pos, const std::array<uint8_t, 4>& magic,
                          uint32_t* body_len) {
  const size_t left = b.size() - pos;
  if (left < 8) return "frame header cut short (" + std::to_string(left) + " bytes)";
  if (std::memcmp(b.data() + pos, magic.data(), 4) != 0) return "bad frame magic";
  const uint32_t len = get_u32(b.data() + pos + 4);
  if (uint64_t(len) + kFrameOverhead > left)
    return "body length " + std::to_string(len) + " runs past the end of the file";
  const uint32_t stored = get_u32(b.data() + pos + 8 + len);
  if (crc32c(b.data() + pos + 4, 4 + size_t(len)) != stored) return "CRC-32C mismatch";
  *body_len = len;
  return "";
}

LedgerHeader parse_header(const uint8_t* p, size_t n, const std::string& path) {
  size_t at = 0;
  auto need = [&](size_t k, const char* what) {
    if (n - at < k) throw FormatError(path, fmt::format("ledger header is cut short in {}", what));
  };
  need(12, "version and run seed");
  const uint32_t version = get_u32(p);
  if (version != kHeaderVersion)
    throw FormatError(path, fmt::format("unknown ledger header version {} (this build reads {})", version,
                                        kHeaderVersion));
  LedgerHeader h;
  h.run_seed = uint64_t(get_u32(p + 4)) | uint64_t(get_u32(p + 8)) << 32;
  at = 12;
  for (auto [field, name] : {std::pair{&h.base_hash, "base_hash"}, std::pair{&h.trainable_hash, "trainable_hash"},
                             std::pair{&h.config, "config"}}) {
    need(4, name);
    const uint32_t len = get_u32(p + at);
    at += 4;
    need(len, name);
    field->assign(reinterpret_cast<const char*>(p + at), len);
    at += len;
  }
  if (at != n) throw FormatError(path, fmt::format("ledger header has {} unexpected trailing bytes", n - at));
  return h;
}

std::vector<uint8_t> serialize_header(const LedgerHeader& h) {
  std::vector<uint8_t> out;
  put_u32(out, kHeaderVersion);
  put_u32(out, uint32_t(h.run_seed));
  put_u32(out, uint32_t(h.run_seed >> 32));
  for (const std::string* s : {&h.base_hash, &h.trainable_hash, &h.config}) {
    ZEROTH_CHECK(s->size() < (uint32_t(1) << 30), "ledger header field of {} bytes is too large", s->size());
    put_u32(out, uint32_t(s->size()));
    out.insert(out.end(), s->begin(), s->end());
  }
  return out;
}

[[noreturn]] void fail_errno(const std::string& path, const char* what) {
  throw Error(fmt::format("{}: {} failed: {}", path, what, std::strerror(errno)));
}

void write_all(int fd, const std::vector<uint8_t>& bytes, uint64_t at, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::pwrite(fd, bytes.data() + done, bytes.size() - done, off_t(at + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail_errno(path, "write");
    done += size_t(w);
  }
}

void sync_parent_dir(const std::string& path) {
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) fail_errno(dir, "open (to fsync the ledger's directory)");
  const int rc = ::fsync(d);
  ::close(d);
  if (rc != 0) fail_errno(dir, "fsync");
}

void lock_for_writing(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw Error(path + ": another process holds this ledger open for writing (flock); one writer per ledger");
}

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kCrc32cTable[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

LedgerFile LedgerFile::create(const std::string& path, const LedgerHeader& header) {
  LedgerFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f.fd_ < 0) {
    if (errno == EEXIST) throw Error(path + ": ledger file already exists; refusing to overwrite it");
    fail_errno(path, "create");
  }
  std::vector<uint8_t> frame;
  try {
    lock_for_writing(f.fd_, path);
    frame = make_frame(kHeaderMagic, serialize_header(header));
    write_all(f.fd_, frame, 0, path);
    if (::fsync(f.fd_) != 0) fail_errno(path, "fsync");
    sync_parent_dir(path);
  } catch (...) {
    ::unlink(path.c_str());  // ours (O_EXCL): a half-written header would only fail later opens
    throw;
  }
  f.writable_ = true;
  f.end_ = frame.size();
  f.header_ = header;
  return f;
}

LedgerFile LedgerFile::open(const std::string& path, LedgerAccess access) {
  LedgerFile f;
  f.path_ = path;
  f.writable_ = access == LedgerAccess::ReadWrite;
  f.fd_ = ::open(path.c_str(), (f.writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (f.fd_ < 0) fail_errno(path, "open ledger");
  if (f.writable_) lock_for_writing(f.fd_, path);

  struct stat st{};
  if (::fstat(f.fd_, &st) != 0) fail_errno(path, "stat");
  std::vector<uint8_t> b(size_t(st.st_size));
  for (size_t done = 0; done < b.size();) {
    const ssize_t r = ::pread(f.fd_, b.data() + done, b.size() - done, off_t(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_errno(path, "read");
    if (r == 0) b.resize(done);  // shrank while reading: take what is there
    done += size_t(r);
  }

  // The header is fsynced at create, so a damaged header is never a torn tail.
  uint32_t len = 0;
  std::string problem = frame_problem(b, 0, kHeaderMagic, &len);
  if (!problem.empty())
    throw FormatError(path, "not a zeroth ledger or its header frame is damaged: " + problem);
  f.header_ = parse_header(b.data() + 8, len, path);
  size_t pos = kFrameOverhead + len;

  while (pos < b.size()) {
    problem = frame_problem(b, pos, kEntryMagic, &len);
    if (problem.empty()) {
      StepEntry e;
      try {
        e = StepEntry::deserialize(b.data() + pos + 8, len);
      } catch (const Error& err) {  // the CRC matched, so this was written malformed
        throw FormatError(path, fmt::format("entry {} at byte {}: {}", f.entries_.size(), pos, err.what()));
      }
      if (e.step != f.next_step())
        throw FormatError(path, fmt::format("entry {} at byte {} has step {} but step {} was expected (steps must "
                                            "be consecutive from 0)",
                                            f.entries_.size(), pos, e.step, f.next_step()));
      f.entries_.push_back(std::move(e));
      pos += kFrameOverhead + len;
      continue;
    }
    // A damaged frame is a torn tail only if no whole frame follows it.
    for (size_t q = pos + 1; q + kFrameOverhead <= b.size(); ++q) {
      uint32_t l2 = 0;
      if (b[q] == 'Z' && frame_problem(b, q, kEntryMagic, &l2).empty())
        throw FormatError(path, fmt::format("entry {} at byte {} is corrupt ({}) but a whole entry follows at byte "
                                            "{}; the ledger is damaged: restore it from a replica",
                                            f.entries_.size(), pos, problem, q));
    }
    f.dropped_bytes_ = b.size() - pos;
    break;
  }
  f.end_ = pos;
  if (f.writable_ && f.dropped_bytes_ > 0) {
    if (::ftruncate(f.fd_, off_t(pos)) != 0) fail_errno(path, "truncate torn tail");
    if (::fsync(f.fd_) != 0) fail_errno(path, "fsync");
  }
  return f;
}

void LedgerFile::append(const StepEntry& e, bool durable) {
  ZEROTH_CHECK(writable_, "{}: ledger was opened read-only; cannot append step {}", path_, e.step);
  ZEROTH_CHECK(fd_ >= 0, "{}: ledger file is closed", path_);
  ZEROTH_CHECK(e.step == next_step(), "{}: cannot append step {}: the next step is {}", path_, e.step, next_step());
  const std::vector<uint8_t> frame = make_frame(kEntryMagic, e.serialize());
  try {
    write_all(fd_, frame, end_, path_);
    if (durable && ::fsync(fd_) != 0) fail_errno(path_, "fsync");
  } catch (...) {
    // Leave the file at its last whole frame so a retry appends cleanly.
    if (::ftruncate(fd_, off_t(end_)) != 0) { /* open() will cut the torn frame */ }
    throw;
  }
  end_ += frame.size();
  entries_.push_back(e);
}

LedgerFile::LedgerFile(LedgerFile&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), writable_(o.writable_), end_(o.end_), header_(std::move(o.header_)),
      entries_(std::move(o.entries_)), dropped_bytes_(o.dropped_bytes_) {
  o.fd_ = -1;
}

LedgerFile& LedgerFile::operator=(LedgerFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    writable_ = o.writable_;
    end_ = o.end_;
    header_ = std::move(o.header_);
    entries_ = std::move(o.entries_);
    dropped_bytes_ = o.dropped_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

LedgerFile::~LedgerFile() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace zeroth
