#include "observe/metrics.h"

#include <algorithm>
#include <cmath>

namespace sluice {

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kRead: return "read";
    case Stage::kPreprocess: return "preprocess";
    case Stage::kPredict: return "predict";
    case Stage::kPostprocess: return "postprocess";
    case Stage::kWrite: return "write";
    case Stage::kCommit: return "commit";
  }
  return "?";
}

double HistogramData::Quantile(double q) const {
  if (count <= 0 || counts.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  int64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0 || static_cast<double>(below + counts[i]) < rank) {
      below += counts[i];
      continue;
    }
    // The last bucket is open above: answer its lower bound, as Prometheus does.
    if (i == bounds.size()) return bounds.empty() ? 0 : bounds.back();
    const double lo = i == 0 ? std::min(0.0, bounds[0]) : bounds[i - 1];
    const double hi = bounds[i];
    return lo + (hi - lo) * (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
  }
  return bounds.empty() ? 0 : bounds.back();
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

HistogramData Histogram::Read() const {
  HistogramData d;
  d.bounds = bounds_;
  d.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) d.counts[i] = counts_[i].load(std::memory_order_relaxed);
  d.count = 0;
  for (int64_t c : d.counts) d.count += c;
  d.sum = sum_.load(std::memory_order_relaxed);
  return d;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

}  // namespace sluice
