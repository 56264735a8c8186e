// core/sysmem.h: sizes as users write them, and this process's memory.
#include <cstdint>
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "core/sysmem.h"

namespace zeroth {
namespace {

TEST(Sysmem, ByteSizesInPowersOf1024) {
  EXPECT_EQ(parse_byte_size("4096", "x"), 4096);
  EXPECT_EQ(parse_byte_size("512MiB", "x"), 512LL << 20);
  EXPECT_EQ(parse_byte_size("2G", "x"), 2LL << 30);
  EXPECT_EQ(parse_byte_size("1.5 GiB", "x"), 3LL << 29);
  EXPECT_EQ(parse_byte_size("3kB", "x"), 3072);
  EXPECT_EQ(parse_byte_size("1TiB", "x"), 1LL << 40);
  for (const char* bad : {"", "lots", "12 parsecs", "-1GiB", "1e30", "GiB", "1GiBs"}) {
    try {
      parse_byte_size(bad, "roles.memory");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("roles.memory"), std::string::npos) << e.what();
    }
  }
}

TEST(Sysmem, PeakFollowsAnAllocationAndResets) {
  const ProcessMemory before = process_memory();
  ASSERT_GT(before.rss, 0);
  ASSERT_GE(before.peak, before.rss);
  {
    std::vector<char> big(size_t(64) << 20, 1);  // touched: 64 MiB resident
    volatile char sink = big[big.size() / 2];
    (void)sink;
    EXPECT_GE(process_memory().peak, before.rss + (int64_t(60) << 20));
  }
  if (!reset_peak_rss()) GTEST_SKIP() << "this kernel does not let a process reset VmHWM (/proc/self/clear_refs)";
  // Freed and reset: the peak is back near the current RSS.
  const ProcessMemory after = process_memory();
  EXPECT_LT(after.peak, after.rss + (int64_t(16) << 20));
}

TEST(Sysmem, AvailableMemoryIsPositive) { EXPECT_GT(available_memory(), 0); }

}  // namespace
}  // namespace zeroth
