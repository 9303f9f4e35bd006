#include "exec/batch_sizer.h"

#include <gtest/gtest.h>

#include <functional>

namespace sluice {
namespace {

// Feeds the sizer batches, one after the other, whose cost per row follows
// `us_per_row(size)` and whose rows are min(size, cap), until it decides;
// returns the sizes it asked for.
std::vector<size_t> Drive(BatchSizer* sizer, const std::function<double(size_t)>& us_per_row, size_t cap = SIZE_MAX) {
  std::vector<size_t> asked;
  double now_us = 1e6;
  for (int batch = 0; batch < 1000 && !sizer->decided(); ++batch) {
    const size_t target = sizer->Next();
    if (asked.empty() || asked.back() != target) asked.push_back(target);
    const size_t rows = std::min(target, cap);
    now_us += us_per_row(target) * static_cast<double>(rows);
    sizer->Record(target, rows, static_cast<uint64_t>(now_us));
  }
  return asked;
}

BatchSizer::Options Small() {
  BatchSizer::Options o;
  o.min_batches = 3;
  o.min_window_us = 10;
  return o;
}

TEST(BatchSizerTest, ClimbsWhileThroughputImproves) {
  BatchSizer sizer(Small());
  // Per-batch overhead makes larger batches faster until cache misses win at 65536.
  auto cost = [](size_t size) { return 1.0 + 2000.0 / static_cast<double>(size) + (size >= 65536 ? 1.0 : 0.0); };
  EXPECT_EQ(Drive(&sizer, cost), (std::vector<size_t>{4096, 16384, 65536}));
  EXPECT_TRUE(sizer.decided());
  EXPECT_EQ(sizer.best(), 16384u);
  EXPECT_EQ(sizer.Next(), 16384u);
  EXPECT_EQ(sizer.Describe(), "16384 rows (rows/s: 4096 672k, 16384 891k, 65536 492k)");
}

TEST(BatchSizerTest, GoesDownWhenLargerIsSlower) {
  BatchSizer sizer(Small());
  auto cost = [](size_t size) { return size <= 1024 ? 1.0 : 1.0 + static_cast<double>(size) / 4096.0; };
  EXPECT_EQ(Drive(&sizer, cost), (std::vector<size_t>{4096, 16384, 1024, 256}));
  EXPECT_EQ(sizer.best(), 1024u);  // 256 is no better than 1024: the first best stays
}

TEST(BatchSizerTest, StopsClimbingWhenBatchesAreCutShort) {
  BatchSizer sizer(Small());
  // The memory share caps batches at 10000 rows: 16384 gets short batches, so 65536 is not tried.
  auto cost = [](size_t size) { return 1.0 + 2000.0 / static_cast<double>(size); };
  EXPECT_EQ(Drive(&sizer, cost, 10000), (std::vector<size_t>{4096, 16384}));
  EXPECT_EQ(sizer.best(), 16384u);
}

TEST(BatchSizerTest, MeasuresFromTheFirstBatchOfASizeOn) {
  BatchSizer::Options o = Small();
  o.start = 5000;  // the nearest candidate
  o.min_window_us = 10000;
  BatchSizer sizer(o);
  EXPECT_EQ(sizer.Next(), 4096u);
  sizer.Record(4096, 4096, 5000000);  // the first: the window starts when it is written
  for (int i = 1; i <= 2; ++i) sizer.Record(4096, 4096, 5000000 + 4096 * i);
  EXPECT_EQ(sizer.Next(), 4096u);  // 3 batches, but only 8 ms: not yet
  sizer.Record(4096, 4096, 5000000 + 4096 * 3);
  EXPECT_EQ(sizer.Next(), 16384u);  // 1M rows/s over 12 ms; now the next size
  EXPECT_FALSE(sizer.decided());
  EXPECT_EQ(sizer.best(), 4096u);
  sizer.Record(4096, 4096, 6000000);  // still in flight from the last size: ignored
  sizer.Record(12345, 10, 6000000);   // not a candidate: ignored
  sizer.Record(16384, 16384, 6000000);
  sizer.Record(16384, 100, 6000100);
  EXPECT_EQ(sizer.Describe(), "4096 rows (rows/s: 4096 1.00M, 16384 1.00M?)");
}

TEST(BatchSizerTest, MaxSizeBoundsTheCandidates) {
  BatchSizer::Options o = Small();
  o.max_size = 20000;
  BatchSizer sizer(o);
  auto cost = [](size_t size) { return 1.0 + 2000.0 / static_cast<double>(size); };
  EXPECT_EQ(Drive(&sizer, cost), (std::vector<size_t>{4096, 16384}));
  EXPECT_EQ(sizer.best(), 16384u);
  o.max_size = 100;  // below every candidate: the smallest
  BatchSizer tiny(o);
  EXPECT_EQ(tiny.Next(), 256u);
}

TEST(BatchSizerTest, UndecidedReportsTheStart) {
  BatchSizer sizer(BatchSizer::Options{});
  EXPECT_EQ(sizer.best(), 4096u);
  EXPECT_FALSE(sizer.decided());
  EXPECT_EQ(sizer.Describe(), "4096 rows (nothing measured)");
}

}  // namespace
}  // namespace sluice
