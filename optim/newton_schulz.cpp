#include "optim/newton_schulz.h"

#include <cmath>
#include <vector>

namespace zeroth {

void newton_schulz(const float* g, int64_t rows, int64_t cols, int steps, float* out) {
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool tr = rows > cols;
  const int64_t r = tr ? cols : rows, n = tr ? rows : cols;  // X is r × n, r <= n
  double norm2 = 0;
  for (int64_t i = 0; i < rows * cols; ++i) norm2 = norm2 + double(g[i]) * double(g[i]);
  if (norm2 == 0) {
    for (int64_t i = 0; i < rows * cols; ++i) out[i] = 0.0f;
    return;
  }
  const double norm = std::sqrt(norm2) + 1e-7;
  std::vector<double> x(size_t(r * n)), y(size_t(r * n)), A(size_t(r * r)), AA(size_t(r * r)), B(size_t(r * r));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < n; ++j) x[size_t(i * n + j)] = double(tr ? g[j * cols + i] : g[i * cols + j]) / norm;
  for (int s = 0; s < steps; ++s) {
    // A = X·Xᵀ: each entry one sum over j in order; the lower half copies the upper.
    for (int64_t i = 0; i < r; ++i)
      for (int64_t k = i; k < r; ++k) {
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum = sum + x[size_t(i * n + j)] * x[size_t(k * n + j)];
        A[size_t(i * r + k)] = A[size_t(k * r + i)] = sum;
      }
    for (int64_t i = 0; i < r; ++i)
      for (int64_t k = 0; k < r; ++k) {
        double sum = 0;
        for (int64_t j = 0; j < r; ++j) sum = sum + A[size_t(i * r + j)] * A[size_t(j * r + k)];
        AA[size_t(i * r + k)] = sum;
      }
    for (int64_t i = 0; i < r * r; ++i) B[size_t(i)] = b * A[size_t(i)] + c * AA[size_t(i)];
    // Y = a·X + B·X: B·X's entries summed over k in order (elementwise over j).
    for (int64_t i = 0; i < r; ++i) {
      double* yi = y.data() + i * n;
      for (int64_t j = 0; j < n; ++j) yi[j] = 0;
      for (int64_t k = 0; k < r; ++k) {
        const double bik = B[size_t(i * r + k)];
        const double* xk = x.data() + k * n;
        for (int64_t j = 0; j < n; ++j) yi[j] = yi[j] + bik * xk[j];
      }
      const double* xi = x.data() + i * n;
      for (int64_t j = 0; j < n; ++j) yi[j] = a * xi[j] + yi[j];
    }
    x.swap(y);
  }
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < n; ++j) (tr ? out[j * cols + i] : out[i * cols + j]) = float(x[size_t(i * n + j)]);
}

}  // namespace zeroth
