// CPU fused apply (core/apply.h). θ is cut into work items of at most kApplyChunk
// elements at global multiples of kApplyChunk; each item sums all K terms into an
// L1-resident accumulator and then writes θ once. Every element's result depends
// only on its global index and the term order, never on the item split or the
// thread that ran it.
#include "core/apply.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu/rng_simd.h"
#include "core/error.h"
#include "core/parallel.h"

namespace zeroth {
namespace {

void check_apply(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset, int64_t n,
                 const float* theta, const char* who) {
  ZEROTH_CHECK(n >= 0 && offset >= 0, "{}: negative size {} or offset {}", who, n, offset);
  ZEROTH_CHECK(n == 0 || theta != nullptr, "{}: θ is null for {} elements", who, n);
  ZEROTH_CHECK(n == 0 || terms.empty() || offset + n <= max_stream_elements(d),
               "{}: global range [{}, {}) exceeds the {} stream's index space of {} elements", who, offset,
               offset + n, distribution_name(d), max_stream_elements(d));
}

// acc[0, len) += c * z[g, g+len) of a Rademacher stream, 32-element words at a time.
void accumulate_rademacher(const PerturbationKey& key, float c, int64_t g, int64_t len, float* acc) {
  alignas(32) uint32_t words[32];
  const int64_t end = g + len;
  const uint32_t cb = exact::bits(c);
  for (int64_t i = g; i < end;) {
    const int64_t g0 = i / 1024 * 1024;  // 8 blocks of 128 signs
    const int64_t stop = std::min(end, g0 + 1024);
    cpu::philox_blocks8(key, uint32_t(g0 / 128), words);
    // Scalar up to the next whole word, whole words by SIMD, scalar tail.
    const int64_t body = std::min(stop, (i + 31) / 32 * 32);
    for (; i < body; ++i) {
      const int64_t t = i - g0;
      acc[i - g] = acc[i - g] + exact::from_bits(cb ^ (((words[t >> 5] >> (t & 31)) & 1u) << 31));
    }
    const int64_t nwords = (stop - i) / 32;
    if (nwords > 0) {
      cpu::rademacher_accumulate(words + (i - g0) / 32, nwords, c, acc + (i - g));
      i += 32 * nwords;
    }
    for (; i < stop; ++i) {
      const int64_t t = i - g0;
      acc[i - g] = acc[i - g] + exact::from_bits(cb ^ (((words[t >> 5] >> (t & 31)) & 1u) << 31));
    }
  }
}

// θ[0, len) at global indices [g, g+len), len <= kApplyChunk.
void apply_chunk(std::span<const ScaledPerturbation> terms, Distribution d, int64_t g, int64_t len, float* theta,
                 float decay) {
  alignas(32) float acc[kApplyChunk];
  alignas(32) float z[kApplyChunk];
  std::fill_n(acc, len, 0.0f);
  for (const ScaledPerturbation& t : terms) {
    if (d == Distribution::Rademacher) {
      accumulate_rademacher(t.key, t.coeff, g, len, acc);
    } else {
      generate_z(t.key, d, g, g + len, z);
      cpu::accumulate_scaled(z, len, t.coeff, acc);
    }
  }
  cpu::decay_subtract(theta, acc, len, decay);
}

struct WorkItem {
  float* theta;
  int64_t global_begin, len;
};

// Cuts each span at global multiples of kApplyChunk.
void append_items(const TrainableSpan& s, std::vector<WorkItem>& items) {
  for (int64_t i = s.offset; i < s.offset + s.n;) {
    const int64_t stop = std::min(s.offset + s.n, (i / kApplyChunk + 1) * kApplyChunk);
    items.push_back({s.data + (i - s.offset), i, stop - i});
    i = stop;
  }
}

}  // namespace

void apply_perturbations(std::span<const ScaledPerturbation> terms, Distribution d,
                         std::span<const TrainableSpan> tensors, float decay, int threads) {
  std::vector<WorkItem> items;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const std::string who = "apply_perturbations (tensor " + std::to_string(t) + ")";
    check_apply(terms, d, tensors[t].offset, tensors[t].n, tensors[t].data, who.c_str());
    append_items(tensors[t], items);
  }
  // A few items per grain so threads share the work without tiny tasks.
  parallel_for(int64_t(items.size()), 4, threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) apply_chunk(terms, d, items[i].global_begin, items[i].len, items[i].theta, decay);
  });
}

void apply_perturbations(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset, int64_t n,
                         float* theta, float decay, int threads) {
  const TrainableSpan one{theta, n, offset};
  apply_perturbations(terms, d, std::span<const TrainableSpan>(&one, 1), decay, threads);
}

void apply_perturbations_reference(std::span<const ScaledPerturbation> terms, Distribution d, int64_t offset,
                                   int64_t n, float* theta, float decay) {
  check_apply(terms, d, offset, n, theta, "apply_perturbations_reference");
  std::vector<float> acc(static_cast<size_t>(n), 0.0f), z(static_cast<size_t>(n));
  for (const ScaledPerturbation& t : terms) {
    generate_z_reference(t.key, d, offset, offset + n, z.data());
    for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] + t.coeff * z[i];
  }
  for (int64_t i = 0; i < n; ++i) theta[i] = theta[i] * decay - acc[i];
}

}  // namespace zeroth
