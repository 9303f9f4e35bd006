#include "exec/batch_sizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iterator>

#include "sluice/job.h"

namespace sluice {
namespace {

std::vector<size_t> Candidates(std::vector<size_t> sizes, size_t max_size) {
  if (sizes.empty()) sizes.assign(std::begin(kAutoBatchSizes), std::end(kAutoBatchSizes));
  if (max_size > 0) {
    while (sizes.size() > 1 && sizes.back() > max_size) sizes.pop_back();
  }
  return sizes;
}

size_t NearestIndex(const std::vector<size_t>& sizes, size_t start) {
  size_t best = 0;
  for (size_t i = 1; i < sizes.size(); ++i) {
    const auto dist = [&](size_t k) { return sizes[k] > start ? sizes[k] - start : start - sizes[k]; };
    if (dist(i) < dist(best)) best = i;
  }
  return best;
}

std::string Rate(double rows_per_sec) {
  if (rows_per_sec >= 1e6) return fmt::format("{:.2f}M", rows_per_sec / 1e6);
  if (rows_per_sec >= 1e3) return fmt::format("{:.0f}k", rows_per_sec / 1e3);
  return fmt::format("{:.0f}", rows_per_sec);
}

}  // namespace

BatchSizer::BatchSizer(Options options)
    : options_{Candidates(std::move(options.sizes), options.max_size), options.start, options.max_size,
               options.min_batches, options.min_window_us},
      start_(NearestIndex(options_.sizes, options_.start)),
      trials_(options_.sizes.size()),
      current_(start_),
      best_(start_) {}

size_t BatchSizer::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  return options_.sizes[current_];
}

void BatchSizer::Record(size_t target, size_t rows, uint64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (decided_ || target != options_.sizes[current_]) return;
  Trial& t = trials_[current_];
  if (!t.seen) {
    t.seen = true;
    t.start_us = now_us;
    return;
  }
  ++t.batches;
  // Shorter than asked: cut by the memory share, or the end of a unit.
  if (rows * 10 < target * 9) ++t.short_batches;
  t.rows += static_cast<int64_t>(rows);
  t.end_us = now_us;
  if (t.batches < options_.min_batches || t.window_us() < options_.min_window_us) return;
  t.measured = true;
  Advance();
}

void BatchSizer::Advance() {
  const Trial& t = trials_[current_];
  const bool improved = current_ != best_ && t.RowsPerSec() > trials_[best_].RowsPerSec();
  if (improved) best_ = current_;
  // Batches mostly shorter than asked: a larger size would not make them longer.
  const bool capped = t.short_batches * 2 > t.batches;
  if (going_up_) {
    if ((current_ == start_ || improved) && !capped && current_ + 1 < options_.sizes.size()) {
      ++current_;
      return;
    }
    going_up_ = false;
    if (best_ == start_ && start_ > 0) {  // larger did not help: try smaller
      current_ = start_ - 1;
      return;
    }
  } else if (improved && current_ > 0) {
    --current_;
    return;
  }
  decided_ = true;
  current_ = best_;
  spdlog::info("batch.size auto: chose {}", DescribeLocked());
}

bool BatchSizer::decided() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decided_;
}

size_t BatchSizer::best() const {
  std::lock_guard<std::mutex> lock(mu_);
  return options_.sizes[best_];
}

std::string BatchSizer::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DescribeLocked();
}

std::string BatchSizer::DescribeLocked() const {
  std::string tried;
  for (size_t i = 0; i < trials_.size(); ++i) {
    if (trials_[i].batches == 0) continue;
    tried += fmt::format("{}{} {}{}", tried.empty() ? "" : ", ", options_.sizes[i], Rate(trials_[i].RowsPerSec()),
                         trials_[i].measured ? "" : "?");
  }
  return fmt::format("{} rows{}", options_.sizes[best_],
                     tried.empty() ? std::string(" (nothing measured)") : " (rows/s: " + tried + ")");
}

}  // namespace sluice
