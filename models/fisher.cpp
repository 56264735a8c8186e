// accumulate_fisher: one backward per calibration batch with no adapters; the
// projection hook forms each projection's dW = dyᵀ·x and folds its squares
// into the row/column sums. See fisher.h.
#include "models/fisher.h"

#define EIGEN_DONT_PARALLELIZE 1
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "models/tasks/task_gradient.h"

namespace zeroth {
namespace {

class NoAdapters : public AdapterSet {
 public:
  bool has(int, Proj) const override { return false; }
  LoraFactors get(int, Proj, int, float*) const override { fail("NoAdapters::get: no adapter"); }
  size_t scratch_floats(int, Proj) const override { return 0; }
};

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;

}  // namespace

FisherStats accumulate_fisher(const LlamaModel& model, const std::vector<std::vector<int32_t>>& docs,
                              const FisherOptions& opt) {
  ZEROTH_CHECK(opt.batch_docs >= 1, "Fisher calibration: batch_docs {} must be at least 1", opt.batch_docs);
  const auto& c = model.config();
  const int L = int(c.n_layers);
  const auto dims = model.projection_dims();
  FisherStats st;
  st.n_layers = L;
  st.proj.resize(size_t(L) * kProjCount);
  for (int l = 0; l < L; ++l)
    for (int pi = 0; pi < kProjCount; ++pi) {
      auto& f = st.proj[size_t(l) * kProjCount + size_t(pi)];
      f.row.assign(size_t(dims[size_t(pi)][1]), 0.0);
      f.col.assign(size_t(dims[size_t(pi)][0]), 0.0);
    }

  // Batches: documents cut at the context, batch_docs at a time, in order.
  std::vector<std::vector<std::vector<int32_t>>> batches;
  for (const auto& d : docs) {
    if (d.size() < 2) continue;
    if (batches.empty() || int64_t(batches.back().size()) == opt.batch_docs) batches.emplace_back();
    batches.back().emplace_back(d.begin(), d.begin() + std::min<int64_t>(c.max_seq_len, int64_t(d.size())));
  }
  ZEROTH_CHECK(!batches.empty(), "Fisher calibration: no document has 2 or more tokens; nothing to predict");

  const NoAdapters none;
  RowMat dw;
  BackwardOptions bo;
  bo.checkpoint = opt.checkpoint;
  bo.projection_hook = [&](int l, Proj p, const float* x, const float* dy, int64_t n, int64_t in, int64_t out) {
    auto& f = st.proj[size_t(l) * kProjCount + size_t(p)];
    ZEROTH_CHECK(int64_t(f.row.size()) == out && int64_t(f.col.size()) == in,
                 "Fisher calibration: layer {} {} is {} x {}, expected {} x {}", l, proj_name(p), out, in,
                 f.row.size(), f.col.size());
    dw.noalias() = ConstMap(dy, n, out).transpose() * ConstMap(x, n, in);  // ∂L/∂W (out, in)
    for (int64_t i = 0; i < out; ++i) {
      const float* r = dw.data() + i * in;
      double s = 0;
      for (int64_t j = 0; j < in; ++j) {
        const double g2 = double(r[j]) * double(r[j]);
        s += g2;
        f.col[size_t(j)] += g2;
      }
      f.row[size_t(i)] += s;
    }
  };
  double loss_sum = 0;
  for (const auto& b : batches) {
    TokenBatch batch;
    std::vector<int64_t> rows;
    std::vector<int32_t> targets;
    for (const auto& seq : b) {
      const int64_t start = batch.rows();
      batch.add(seq, 0);
      for (size_t t = 0; t + 1 < seq.size(); ++t) {
        rows.push_back(start + int64_t(t));
        targets.push_back(seq[t + 1]);
      }
    }
    const HiddenLoss loss = mean_nll_loss(model, rows, targets, "fisher: the calibration batch's documents");
    AdapterGradients grads;
    loss_sum += model.backward(batch, none, loss, grads, bo);
    st.tokens += int64_t(rows.size());
  }
  st.batches = int64_t(batches.size());
  st.mean_loss = loss_sum / double(st.batches);
  const double inv = 1.0 / double(st.batches);
  for (auto& f : st.proj) {
    for (double& v : f.row) v *= inv;
    for (double& v : f.col) v *= inv;
  }
  return st;
}

std::pair<std::vector<float>, std::vector<float>> fisher_weights(const ProjectionFisher& f, int layer, Proj p) {
  double S = 0;
  for (double v : f.row) S += v;
  ZEROTH_CHECK(S > 0 && std::isfinite(S),
               "Fisher weights: layer {} {} has {} gradient statistics over the calibration data; calibrate on "
               "more text", layer, proj_name(p), S > 0 ? "non-finite" : "all-zero");
  const double rs = 1.0 / std::sqrt(S);
  auto weights = [rs](const std::vector<double>& v) {
    double mean = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    std::vector<float> w(v.size());
    for (size_t i = 0; i < v.size(); ++i) w[i] = float(std::max(v[i], 1e-6 * mean) * rs);
    return w;
  };
  return {weights(f.row), weights(f.col)};
}

}  // namespace zeroth
