#include "plan/time_window.h"

#include <gtest/gtest.h>

#include <string>

#include "sink/value_format.h"

namespace sluice {
namespace {

constexpr int64_t kHour = int64_t{3600} * 1000000;
constexpr int64_t kDay = 24 * kHour;

std::string Bucket(int64_t micros, TimeWindow w) {
  std::string s;
  AppendTimeBucketText(micros, w, &s);
  return s;
}

TEST(TimeWindowTest, StartsMatchTheOutputLayoutBuckets) {
  // Every window start is in the same layout bucket as the instants it covers,
  // and the instant just before it is in another one.
  for (TimeWindow w : {TimeWindow::kHour, TimeWindow::kDay, TimeWindow::kWeek, TimeWindow::kMonth}) {
    for (int64_t t = -400 * kDay + 12345; t < 400 * kDay; t += 7 * kHour + 999) {
      const int64_t start = WindowStart(t, w);
      ASSERT_LE(start, t);
      ASSERT_GT(NextWindowStart(start, w), t);
      EXPECT_EQ(Bucket(start, w), Bucket(t, w)) << t;
      EXPECT_NE(Bucket(start - 1, w), Bucket(t, w)) << t;
    }
  }
}

TEST(TimeWindowTest, CalendarEdges) {
  // 2024-02-29 13:00 UTC = 19782 days + 13 h.
  const int64_t t = 19782 * kDay + 13 * kHour;
  EXPECT_EQ(Bucket(WindowStart(t, TimeWindow::kMonth), TimeWindow::kDay), "2024-02-01");
  EXPECT_EQ(Bucket(NextWindowStart(WindowStart(t, TimeWindow::kMonth), TimeWindow::kMonth), TimeWindow::kDay),
            "2024-03-01");
  EXPECT_EQ(Bucket(WindowStart(t, TimeWindow::kWeek), TimeWindow::kDay), "2024-02-26");  // a Monday
  EXPECT_EQ(WindowStart(-1, TimeWindow::kDay), -kDay);
}

TEST(TimeWindowTest, WindowsBetweenCoversTheSpanAndIsBounded) {
  Result<std::vector<int64_t>> days = WindowsBetween(kDay + 5, 3 * kDay, TimeWindow::kDay);
  ASSERT_TRUE(days.ok());
  EXPECT_EQ(*days, (std::vector<int64_t>{kDay, 2 * kDay, 3 * kDay}));
  EXPECT_TRUE(WindowsBetween(5, 4, TimeWindow::kDay)->empty());
  Result<std::vector<int64_t>> many = WindowsBetween(0, 1000 * kDay, TimeWindow::kHour, 100);
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().message(),
            "partition.window: more than 100 hour windows between the column's minimum and maximum; use a longer window");
}

}  // namespace
}  // namespace sluice
