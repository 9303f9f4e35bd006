#include "preprocess/datetime_part.h"

#include <chrono>

namespace sluice {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerHour = 3600 * kMicrosPerSecond;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

// Division rounding toward minus infinity (C++ `/` rounds toward zero).
constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

double DatetimePartOf(int64_t micros, DatetimePart part) {
  const int64_t days = FloorDiv(micros, kMicrosPerDay);
  switch (part) {
    case DatetimePart::kHour:
      return static_cast<double>((micros - days * kMicrosPerDay) / kMicrosPerHour);
    case DatetimePart::kDayOfWeek: {
      // 1970-01-01 was a Thursday (3 with Monday = 0).
      const int64_t dow = (days + 3) % 7;
      return static_cast<double>(dow < 0 ? dow + 7 : dow);
    }
    case DatetimePart::kEpoch:
      return static_cast<double>(FloorDiv(micros, kMicrosPerSecond));
    case DatetimePart::kDay:
    case DatetimePart::kMonth:
    case DatetimePart::kYear: {
      const std::chrono::year_month_day ymd{
          std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
      if (part == DatetimePart::kDay) return static_cast<double>(static_cast<unsigned>(ymd.day()));
      if (part == DatetimePart::kMonth) return static_cast<double>(static_cast<unsigned>(ymd.month()));
      return static_cast<double>(static_cast<int>(ymd.year()));
    }
  }
  return 0;
}

}  // namespace sluice
