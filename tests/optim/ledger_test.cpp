// The ledger: entry encoding, CRC-32C, and the file's crash and corruption
// behaviour (torn tails are cut, damage before the tail is an error).
#include <cstdint>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "optim/ledger.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

namespace fs = std::filesystem;

StepEntry make_entry(uint64_t step, int records) {
  StepEntry e;
  e.step = step;
  e.epoch = uint32_t(step / 7);
  e.scale = 0.25f + float(step);
  e.lr = 1e-3f;
  for (int k = 0; k < records; ++k)
    e.records.push_back({uint32_t(k / 3), uint32_t(k % 3), uint8_t(int8_t(int((step * 31 + uint64_t(k) * 7) % 255) - 127)),
                         k % 5 == 4 ? RecordKind::Gradient : RecordKind::ZerothOrder});
  return e;
}

LedgerHeader make_header() { return {0x1234567890abcdefull, "base-hash-hex", "theta0-hash-hex", "run:\n  seed: 7\n"}; }

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A ledger with `n` entries; returns the file offsets where each entry frame starts (and the end).
std::vector<uint64_t> write_ledger(const fs::path& p, int n) {
  LedgerFile f = LedgerFile::create(p.string(), make_header());
  std::vector<uint64_t> starts{fs::file_size(p)};
  for (int i = 0; i < n; ++i) {
    f.append(make_entry(uint64_t(i), 1 + i % 6), i % 2 == 0);
    starts.push_back(fs::file_size(p));
  }
  return starts;
}

TEST(Crc32c, StandardCheckValueAndChaining) {
  const std::string s = "123456789";
  const auto* d = reinterpret_cast<const uint8_t*>(s.data());
  EXPECT_EQ(crc32c(d, 9), 0xE3069283u);
  EXPECT_EQ(crc32c(d + 4, 5, crc32c(d, 4)), 0xE3069283u);
  EXPECT_EQ(crc32c(d, 0), 0u);
}

TEST(StepEntry, SerializeRoundTripAndLayout) {
  const StepEntry e = make_entry(123456789012ull, 10);
  const std::vector<uint8_t> b = e.serialize();
  ASSERT_EQ(b.size(), 28u + 10u * 10u);
  EXPECT_EQ(b[0], 1);  // version 1, little-endian
  EXPECT_EQ(b[4], uint8_t(123456789012ull & 0xFF));
  EXPECT_EQ(StepEntry::deserialize(b.data(), b.size()), e);
  const StepEntry empty = make_entry(5, 0);
  const auto eb = empty.serialize();
  EXPECT_EQ(StepEntry::deserialize(eb.data(), eb.size()), empty);
}

TEST(StepEntry, MalformedBodiesAreNamed) {
  const std::vector<uint8_t> good = make_entry(3, 4).serialize();
  auto expect_error = [](std::vector<uint8_t> b, const std::string& what) {
    try {
      StepEntry::deserialize(b.data(), b.size());
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error({good.begin(), good.begin() + 10}, "shorter than");
  auto b = good;
  b[0] = 9;
  expect_error(b, "unknown version 9");
  b = good;
  b[24] = 0xFF, b[25] = 0xFF, b[26] = 0xFF, b[27] = 0xFF;  // 4 billion records claimed: no allocation
  expect_error(b, "record count 4294967295");
  expect_error({good.begin(), good.end() - 1}, "record count 4");
  b = good;
  b[28 + 10 + 9] = 7;
  expect_error(b, "unknown kind 7");
  b = good;
  b[28 + 8] = 0x80;
  expect_error(b, "unused code -128");
  StepEntry unsorted = make_entry(3, 4);
  std::swap(unsorted.records[0], unsorted.records[1]);
  EXPECT_THROW(unsorted.serialize(), Error);
  unsorted.sort_records();
  EXPECT_EQ(unsorted, make_entry(3, 4));
  StepEntry dup = make_entry(3, 2);
  dup.records[1] = dup.records[0];
  EXPECT_THROW(dup.serialize(), Error);
  StepEntry nan = make_entry(3, 1);
  nan.scale = std::nanf("");
  EXPECT_THROW(nan.serialize(), Error);
}

// HiZOO's curvature record shares its slot with the slot's gradient record:
// entries sort by (member, slot, kind), and only the same kind twice is a duplicate.
TEST(StepEntry, CurvatureRecordsShareTheirSlot) {
  StepEntry e = make_entry(4, 2);
  Record c = e.records[0];
  c.kind = RecordKind::Curvature;
  c.code = 0x10;
  e.records.insert(e.records.begin(), c);  // before its gradient record: out of order
  EXPECT_THROW(e.serialize(), Error);
  e.sort_records();
  ASSERT_EQ(e.records[1].kind, RecordKind::Curvature);
  const auto b = e.serialize();
  EXPECT_EQ(StepEntry::deserialize(b.data(), b.size()), e);
  e.records.insert(e.records.begin() + 2, c);  // the same curvature record twice
  EXPECT_THROW(e.serialize(), Error);
}

TEST(LedgerFile, RoundTripAndAppendAfterReopen) {
  const auto dir = test::temp_dir("ledger-roundtrip");
  const fs::path p = dir / "ledger.zl";
  write_ledger(p, 20);
  {
    LedgerFile f = LedgerFile::open(p.string());
    EXPECT_EQ(f.header(), make_header());
    ASSERT_EQ(f.entries().size(), 20u);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(f.entries()[i], make_entry(uint64_t(i), 1 + i % 6));
    EXPECT_EQ(f.dropped_bytes(), 0u);
    f.append(make_entry(20, 3), true);
  }
  LedgerFile f = LedgerFile::open(p.string(), LedgerAccess::ReadOnly);
  ASSERT_EQ(f.entries().size(), 21u);
  EXPECT_EQ(f.entries().back(), make_entry(20, 3));
  EXPECT_THROW(f.append(make_entry(21, 1)), Error);  // read-only
}

// A crash at any byte of the last append reopens at the last whole entry; the
// file is cut there, and appending and reopening then work.
TEST(LedgerFile, TornLastEntryAtEveryByte) {
  const auto dir = test::temp_dir("ledger-torn");
  const fs::path full = dir / "full.zl";
  const auto starts = write_ledger(full, 5);
  const std::vector<uint8_t> bytes = read_bytes(full);
  const uint64_t last = starts[4], end = starts[5];
  ASSERT_EQ(end, bytes.size());
  for (uint64_t cut = last; cut < end; ++cut) {
    const fs::path p = dir / "cut.zl";
    write_bytes(p, {bytes.begin(), bytes.begin() + int64_t(cut)});
    {
      LedgerFile f = LedgerFile::open(p.string());
      ASSERT_EQ(f.entries().size(), 4u) << "cut at byte " << cut;
      EXPECT_EQ(f.dropped_bytes(), cut - last);
      EXPECT_EQ(fs::file_size(p), last);
      f.append(make_entry(4, 2));
      f.append(make_entry(5, 1), true);
    }
    LedgerFile g = LedgerFile::open(p.string());
    ASSERT_EQ(g.entries().size(), 6u) << "cut at byte " << cut;
    EXPECT_EQ(g.entries()[4], make_entry(4, 2));
    EXPECT_EQ(g.dropped_bytes(), 0u);
    fs::remove(p);
  }
}

TEST(LedgerFile, ReadOnlyCountsButKeepsTornTail) {
  const auto dir = test::temp_dir("ledger-ro");
  const fs::path p = dir / "l.zl";
  const auto starts = write_ledger(p, 3);
  fs::resize_file(p, starts[3] - 2);
  LedgerFile f = LedgerFile::open(p.string(), LedgerAccess::ReadOnly);
  EXPECT_EQ(f.entries().size(), 2u);
  EXPECT_EQ(f.dropped_bytes(), starts[3] - 2 - starts[2]);
  EXPECT_EQ(fs::file_size(p), starts[3] - 2);
}

TEST(LedgerFile, BitFlipInMiddleEntryIsAnErrorNamingIt) {
  const auto dir = test::temp_dir("ledger-flip");
  const fs::path p = dir / "l.zl";
  const auto starts = write_ledger(p, 6);
  const auto good = read_bytes(p);
  // Flip one bit in each byte of entry 2's frame in turn: magic, length, body and CRC.
  for (uint64_t at = starts[2]; at < starts[3]; ++at) {
    auto b = good;
    b[at] ^= 0x10;
    write_bytes(p, b);
    try {
      LedgerFile::open(p.string());
      ADD_FAILURE() << "no error for a flip at byte " << at;
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(p.string()), std::string::npos) << m;
      EXPECT_NE(m.find("entry 2 "), std::string::npos) << m;
    }
    EXPECT_EQ(read_bytes(p), b) << "a failed open must not modify the file";
  }
}

TEST(LedgerFile, BitFlipInLastEntryIsTreatedAsTorn) {
  const auto dir = test::temp_dir("ledger-flip-last");
  const fs::path p = dir / "l.zl";
  const auto starts = write_ledger(p, 4);
  auto b = read_bytes(p);
  b[starts[3] + 20] ^= 0x01;
  write_bytes(p, b);
  LedgerFile f = LedgerFile::open(p.string());
  EXPECT_EQ(f.entries().size(), 3u);
  EXPECT_EQ(f.dropped_bytes(), starts[4] - starts[3]);
}

TEST(LedgerFile, NotALedgerOrDamagedHeader) {
  const auto dir = test::temp_dir("ledger-magic");
  const fs::path p = dir / "x.zl";
  write_bytes(p, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!'});
  EXPECT_THROW(LedgerFile::open(p.string()), FormatError);
  write_bytes(p, {});
  EXPECT_THROW(LedgerFile::open(p.string()), FormatError);
  fs::remove(p);
  write_ledger(p, 1);
  auto b = read_bytes(p);
  b[10] ^= 0x40;  // inside the header body
  write_bytes(p, b);
  try {
    LedgerFile::open(p.string());
    ADD_FAILURE() << "damaged header accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("header"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LedgerFile::open((dir / "missing.zl").string()), Error);
}

TEST(LedgerFile, StepsMustBeConsecutive) {
  const auto dir = test::temp_dir("ledger-steps");
  const fs::path p = dir / "l.zl";
  LedgerFile f = LedgerFile::create(p.string(), make_header());
  EXPECT_THROW(f.append(make_entry(1, 1)), Error);  // must start at 0
  f.append(make_entry(0, 1));
  EXPECT_THROW(f.append(make_entry(2, 1)), Error);
  EXPECT_THROW(f.append(make_entry(0, 1)), Error);
  f.append(make_entry(1, 1));
  EXPECT_EQ(f.next_step(), 2u);

  // A file whose frames are whole but skip a step (written by a buggy writer).
  const fs::path q = dir / "skip.zl";
  const auto starts = write_ledger(q, 3);
  auto b = read_bytes(q);
  // Splice: entries 0, 1, 2, then entry 2 again (steps 0, 1, 2, 2).
  std::vector<uint8_t> spliced(b.begin(), b.end());
  spliced.insert(spliced.end(), b.begin() + int64_t(starts[2]), b.begin() + int64_t(starts[3]));
  write_bytes(q, spliced);
  try {
    LedgerFile::open(q.string());
    ADD_FAILURE() << "duplicate step accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("entry 3"), std::string::npos) << e.what();
  }
}

TEST(LedgerFile, CreateNeverOverwritesAndOneWriter) {
  const auto dir = test::temp_dir("ledger-create");
  const fs::path p = dir / "l.zl";
  write_ledger(p, 2);
  const auto before = read_bytes(p);
  EXPECT_THROW(LedgerFile::create(p.string(), make_header()), Error);
  EXPECT_EQ(read_bytes(p), before);
  LedgerFile w = LedgerFile::open(p.string());
  EXPECT_THROW(LedgerFile::open(p.string()), Error);  // second writer refused (flock)
  EXPECT_NO_THROW(LedgerFile::open(p.string(), LedgerAccess::ReadOnly));
  LedgerFile moved = std::move(w);
  moved.append(make_entry(2, 1));
  EXPECT_EQ(moved.entries().size(), 3u);
}

}  // namespace
}  // namespace zeroth
