#include "plan/time_window.h"

#include <chrono>
#include <string>

namespace sluice {
namespace {

constexpr int64_t kMicrosPerHour = int64_t{3600} * 1000000;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

std::chrono::year_month_day Civil(int64_t days) {
  return std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{static_cast<std::chrono::days::rep>(days)}}};
}

int64_t Days(std::chrono::year_month_day ymd) {
  return std::chrono::sys_days{ymd}.time_since_epoch().count();
}

}  // namespace

int64_t WindowStart(int64_t micros, TimeWindow window) {
  const int64_t days = FloorDiv(micros, kMicrosPerDay);
  switch (window) {
    case TimeWindow::kHour: return FloorDiv(micros, kMicrosPerHour) * kMicrosPerHour;
    case TimeWindow::kDay: return days * kMicrosPerDay;
    case TimeWindow::kWeek: {
      // Day 0 (1970-01-01) was a Thursday: (days + 3) mod 7 counts days since Monday.
      const int64_t since_monday = ((days + 3) % 7 + 7) % 7;
      return (days - since_monday) * kMicrosPerDay;
    }
    case TimeWindow::kMonth: {
      const std::chrono::year_month_day ymd = Civil(days);
      return Days(ymd.year() / ymd.month() / std::chrono::day{1}) * kMicrosPerDay;
    }
  }
  return micros;
}

int64_t NextWindowStart(int64_t start, TimeWindow window) {
  switch (window) {
    case TimeWindow::kHour: return start + kMicrosPerHour;
    case TimeWindow::kDay: return start + kMicrosPerDay;
    case TimeWindow::kWeek: return start + 7 * kMicrosPerDay;
    case TimeWindow::kMonth: {
      const std::chrono::year_month_day ymd = Civil(FloorDiv(start, kMicrosPerDay));
      const std::chrono::year_month next = ymd.year() / ymd.month() + std::chrono::months{1};
      return Days(next / std::chrono::day{1}) * kMicrosPerDay;
    }
  }
  return start;
}

Result<std::vector<int64_t>> WindowsBetween(int64_t min_micros, int64_t max_micros, TimeWindow window, size_t limit) {
  std::vector<int64_t> starts;
  if (min_micros > max_micros) return starts;
  for (int64_t s = WindowStart(min_micros, window); s <= max_micros; s = NextWindowStart(s, window)) {
    if (starts.size() == limit) {
      return Status::InvalidArgument("partition.window: more than " + std::to_string(limit) + " " +
                                     std::string(TimeWindowName(window)) +
                                     " windows between the column's minimum and maximum; use a longer window");
    }
    starts.push_back(s);
  }
  return starts;
}

}  // namespace sluice
