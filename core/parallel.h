// Data-parallel loops over index ranges (OpenMP underneath). Work is split into
// fixed chunks of `grain` indices, so what each index computes never depends on
// the thread count: only which thread computes it does.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace zeroth {

// Threads used when a caller passes threads <= 0: OMP_NUM_THREADS or the cores.
inline int default_threads() { return omp_get_max_threads(); }

// While alive, every parallel_for on this thread uses `threads` threads,
// whatever its caller asked: e.g. a member that evaluates alone while the other
// members wait lends itself their cores.
class ThreadsOverride {
 public:
  explicit ThreadsOverride(int threads) : saved_(current()) { current() = threads; }
  ~ThreadsOverride() { current() = saved_; }
  ThreadsOverride(const ThreadsOverride&) = delete;
  ThreadsOverride& operator=(const ThreadsOverride&) = delete;
  static int& current() {
    thread_local int value = 0;  // 0 = no override
    return value;
  }

 private:
  int saved_;
};

// Calls f(begin, end) for consecutive chunks [i*grain, min(n, (i+1)*grain)).
// f must not throw: an exception cannot leave an OpenMP region. Validate first.
template <typename F>
void parallel_for(int64_t n, int64_t grain, int threads, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  if (ThreadsOverride::current() > 0) threads = ThreadsOverride::current();
  if (threads <= 0) threads = default_threads();
  if (threads == 1 || chunks == 1) {
    for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  const int t = int(std::min<int64_t>(threads, chunks));
#pragma omp parallel for num_threads(t) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

}  // namespace zeroth
