// parallel_for: fixed chunks whatever the thread count, and ThreadsOverride
// lending a caller more (or fewer) threads than it asked for.
#include <cstdint>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "core/parallel.h"

namespace zeroth {
namespace {

std::set<int> team_sizes(int64_t chunks, int threads) {
  std::mutex mu;
  std::set<int> sizes;
  parallel_for(chunks, 1, threads, [&](int64_t, int64_t) {
    std::lock_guard lock(mu);
    sizes.insert(omp_get_num_threads());
  });
  return sizes;
}

TEST(Parallel, ChunksCoverTheRangeOnceWhateverTheThreads) {
  for (int threads : {1, 2, 3}) {
    std::vector<std::atomic<int>> hits(1000);
    std::vector<std::pair<int64_t, int64_t>> chunks;
    std::mutex mu;
    parallel_for(1000, 64, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      std::lock_guard lock(mu);
      chunks.push_back({b, e});
    });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    for (const auto& [b, e] : chunks) EXPECT_EQ(b % 64, 0);  // chunk boundaries never depend on threads
    EXPECT_EQ(chunks.size(), 16u);
  }
}

TEST(Parallel, ThreadsOverrideWinsWhileAliveAndRestores) {
  EXPECT_EQ(team_sizes(8, 1), std::set<int>{1});
  {
    const ThreadsOverride two(2);
    EXPECT_EQ(team_sizes(8, 1), std::set<int>{2});  // asked for 1, lent 2
    {
      const ThreadsOverride one(1);
      EXPECT_EQ(team_sizes(8, 2), std::set<int>{1});
    }
    EXPECT_EQ(team_sizes(8, 1), std::set<int>{2});
  }
  EXPECT_EQ(team_sizes(8, 1), std::set<int>{1});
}

}  // namespace
}  // namespace zeroth
