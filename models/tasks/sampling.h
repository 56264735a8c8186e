// Drawing train/dev/test splits the way MeZO does, reproducibly.
//
// Randomness comes from std::mt19937_64 (whose output the C++ standard fixes)
// through our own bounded draw and Fisher–Yates shuffle, because
// std::uniform_int_distribution and std::shuffle differ between standard
// libraries: the same data_seed must give the same examples everywhere.
//
// The protocol (draw_splits), with T the rows of train_path:
//  1. Where each split comes from:
//       test = test_path rows; else dev_path rows (GLUE's convention: the
//              labelled dev set is the test set, as in MeZO); else carved from T.
//       dev  = dev_path rows when test_path is also given; else carved from T.
//  2. T is shuffled once with data_seed; carving walks that order and never
//     takes a row twice, in the order train, dev, test, except that a train
//     split of "all" (k_shot = 0, train_size = 0) takes what is left at the end.
//       train: k_shot > 0 -> the first k_shot rows of each class;
//              train_size > 0 -> the first train_size rows; else all the rest.
//       carved dev:  dev_size rows; with k_shot, class-balanced and by default
//                    k_shot per class (MeZO's k-shot dev); otherwise default none.
//       carved test: test_size rows (class-balanced with k_shot); default none.
//  3. Splits read from a file keep file order, or with a size cap take the first
//     dev_size/test_size rows of a shuffle seeded by data_seed and the split.
// Class-balanced: size / classes rows per class, the first size % classes
// classes (in label order) taking one more.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace zeroth {

class DataRng {
 public:
  explicit DataRng(uint64_t seed) : gen_(seed) {}
  uint64_t next() { return gen_(); }
  // Uniform in [0, n), n > 0: rejection of the top partial block, so unbiased.
  uint64_t below(uint64_t n);
  // Fisher–Yates from the back: i = n-1..1 swaps with below(i + 1).
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 gen_;
};

// 0..n-1 shuffled with DataRng(seed).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed);

struct SamplingPlan {
  int64_t k_shot = 0, train_size = 0, dev_size = 0, test_size = 0;
  uint64_t data_seed = 0;
  int32_t classes = 0;  // > 0 with k_shot: labels are 0..classes-1
};

// The rows of one pool (a file) that a split takes.
struct SplitSource {
  int pool = 0;                 // 0 = train_path, 1 = dev_path, 2 = test_path
  std::vector<int64_t> rows;    // indices into that pool, in the split's order
};

struct DrawnSplits {
  SplitSource train, dev, test;
};

// `labels[i]`: class of train row i (only read with k_shot). dev_rows/test_rows:
// rows in dev_path/test_path, or -1 when the file is not given. Errors name the
// task.* key that asks for more rows than there are.
DrawnSplits draw_splits(const SamplingPlan& plan, const std::vector<int32_t>& labels, int64_t train_rows,
                        int64_t dev_rows, int64_t test_rows);

}  // namespace zeroth
