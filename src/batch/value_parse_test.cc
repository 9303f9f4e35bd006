#include "batch/value_parse.h"

#include <gtest/gtest.h>

#include <fast_float/fast_float.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <system_error>

namespace sluice {
namespace {

TEST(ValueParseTest, Int64) {
  EXPECT_EQ(ParseInt64("42"), 42);
  EXPECT_EQ(ParseInt64("+7"), 7);
  EXPECT_EQ(ParseInt64("-0"), 0);
  EXPECT_EQ(ParseInt64("  -12\t"), -12);
  EXPECT_EQ(ParseInt64("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ParseInt64("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ParseInt64("9223372036854775808"), std::nullopt);
  EXPECT_EQ(ParseInt64(""), std::nullopt);
  EXPECT_EQ(ParseInt64("   "), std::nullopt);
  EXPECT_EQ(ParseInt64("+"), std::nullopt);
  EXPECT_EQ(ParseInt64("+-3"), std::nullopt);
  EXPECT_EQ(ParseInt64("1.0"), std::nullopt);
  EXPECT_EQ(ParseInt64("12a"), std::nullopt);
  EXPECT_EQ(ParseInt64("1 2"), std::nullopt);
  EXPECT_EQ(ParseInt64("0x10"), std::nullopt);
}

TEST(ValueParseTest, Float64) {
  EXPECT_EQ(ParseFloat64("3.5"), 3.5);
  EXPECT_EQ(ParseFloat64("+3.5"), 3.5);
  EXPECT_EQ(ParseFloat64("-1e-3"), -1e-3);
  EXPECT_EQ(ParseFloat64(" 2E10 "), 2e10);
  EXPECT_EQ(ParseFloat64(".5"), 0.5);
  EXPECT_EQ(ParseFloat64("7"), 7.0);
  EXPECT_EQ(ParseFloat64("0.1"), 0.1);  // correctly rounded
  EXPECT_TRUE(std::isnan(*ParseFloat64("nan")));
  EXPECT_TRUE(std::isnan(*ParseFloat64("NaN")));
  EXPECT_EQ(ParseFloat64("inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(ParseFloat64("-inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(ParseFloat64("+INF"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(ParseFloat64("Infinity"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(ParseFloat64("-infinity"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(ParseFloat64(""), std::nullopt);
  EXPECT_EQ(ParseFloat64("+"), std::nullopt);
  EXPECT_EQ(ParseFloat64("+-1"), std::nullopt);
  EXPECT_EQ(ParseFloat64("++1"), std::nullopt);
  EXPECT_EQ(ParseFloat64("abc"), std::nullopt);
  EXPECT_EQ(ParseFloat64("1.5x"), std::nullopt);
  EXPECT_EQ(ParseFloat64("1e"), std::nullopt);
  EXPECT_EQ(ParseFloat64("infin"), std::nullopt);
  EXPECT_EQ(ParseFloat64("1,5"), std::nullopt);
}

// What ParseFloat64Prefix must give: fast_float's parse, the library itself.
struct PrefixResult {
  size_t length = 0;  // bytes of the number; 0 = none
  uint64_t bits = 0;  // the double's bits, when length > 0
  bool operator==(const PrefixResult&) const = default;
};

PrefixResult FastFloatPrefix(const std::string& text, size_t size) {
  double value = 0;
  const auto [ptr, ec] = fast_float::from_chars(text.data(), text.data() + size, value);
  if (ec != std::errc() && ec != std::errc::result_out_of_range) return {};
  return {static_cast<size_t>(ptr - text.data()), std::bit_cast<uint64_t>(value)};
}

PrefixResult SluicePrefix(const std::string& text, size_t size) {
  double value = 0;
  const char* end = ParseFloat64Prefix(text.data(), text.data() + size, &value);
  if (end == text.data()) return {};
  return {static_cast<size_t>(end - text.data()), std::bit_cast<uint64_t>(value)};
}

// Numbers of every shape around the short-decimal path's limits (sign, 0 to 9
// digits on either side of the point, exponents, leading zeros), followed by the
// bytes a field may end with, read with 24+ bytes available (the eight-digit
// path) and with the buffer ending right after the text (fast_float alone).
TEST(ValueParseTest, Float64PrefixIsFastFloatBitForBit) {
  std::mt19937_64 rng(20261124);
  const std::string tails[] = {"", ",", "\n", "\r\n", ";x", ".5", "e", "e5", "E-3", "x", "1", " ", "\"", "\0"};
  const auto digits = [&](int count) {
    std::string out;
    for (int digit_idx = 0; digit_idx < count; ++digit_idx) out += static_cast<char>('0' + rng() % 10);
    return out;
  };
  int checked = 0;
  for (int round = 0; round < 200000; ++round) {
    std::string number;
    const char* signs[] = {"", "-", "+"};
    number += signs[rng() % 3];
    number += digits(static_cast<int>(rng() % 10));
    if (rng() % 4 != 0) number += '.' + digits(static_cast<int>(rng() % 10));
    if (rng() % 8 == 0) number += (rng() % 2 ? "e" : "E-") + digits(static_cast<int>(rng() % 3));
    for (const std::string& tail : tails) {
      std::string padded = number + tail;
      const size_t exact = padded.size();
      padded += std::string(32, rng() % 2 ? '7' : ',');
      SCOPED_TRACE("'" + number + tail + "'");
      ASSERT_EQ(SluicePrefix(padded, padded.size()), FastFloatPrefix(padded, padded.size()));
      ASSERT_EQ(SluicePrefix(padded, exact), FastFloatPrefix(padded, exact));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 200000 * 14);
}

TEST(ValueParseTest, Float64PrefixEdges) {
  const std::string pad(32, ',');
  for (const std::string text : {"0", "-0", "-0.0", "0.0000000", "9999999.9999999", "1234567", "12345678",
                                 "0.12345678", "1.", ".5", "-.5", "--1", "-", "1e5", "1.5E+3", "inf", "-nan",
                                 "00000012.5", "1e400", "-1e400", "1e-400"}) {
    SCOPED_TRACE(text);
    const std::string padded = text + pad;
    EXPECT_EQ(SluicePrefix(padded, padded.size()), FastFloatPrefix(padded, padded.size()));
  }
  double value = 0;
  const std::string short_decimal = "-3.141592" + pad;
  EXPECT_EQ(ParseFloat64Prefix(short_decimal.data(), short_decimal.data() + short_decimal.size(), &value),
            short_decimal.data() + 9);
  EXPECT_EQ(value, -3.141592);
}

TEST(ValueParseTest, Bool) {
  EXPECT_EQ(ParseBool("true"), true);
  EXPECT_EQ(ParseBool("TRUE"), true);
  EXPECT_EQ(ParseBool(" Yes "), true);
  EXPECT_EQ(ParseBool("1"), true);
  EXPECT_EQ(ParseBool("False"), false);
  EXPECT_EQ(ParseBool("no"), false);
  EXPECT_EQ(ParseBool("0"), false);
  EXPECT_EQ(ParseBool("2"), std::nullopt);
  EXPECT_EQ(ParseBool("t"), std::nullopt);
  EXPECT_EQ(ParseBool(""), std::nullopt);
  EXPECT_EQ(ParseBool("truee"), std::nullopt);
}

constexpr int64_t kMicrosPerSecond = 1'000'000;
// 2024-01-05T00:00:00Z: 19727 days after the epoch.
constexpr int64_t kJan5Micros = 19727LL * 86400 * kMicrosPerSecond;

TEST(ValueParseTest, TimestampDatesAndTimes) {
  EXPECT_EQ(ParseTimestamp("1970-01-01"), 0);
  EXPECT_EQ(ParseTimestamp("2024-01-05"), kJan5Micros);
  const int64_t at_10_11_12 = kJan5Micros + (10 * 3600 + 11 * 60 + 12) * kMicrosPerSecond;
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12"), at_10_11_12);
  EXPECT_EQ(ParseTimestamp("2024-01-05 10:11:12"), at_10_11_12);
  EXPECT_EQ(ParseTimestamp("  2024-01-05 10:11:12Z "), at_10_11_12);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12.5"), at_10_11_12 + 500000);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12.123456"), at_10_11_12 + 123456);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12.123456789Z"), at_10_11_12 + 123456);
  EXPECT_EQ(ParseTimestamp("1969-12-31T23:59:59.5"), -500000);
  EXPECT_EQ(ParseTimestamp("2000-02-29"), 11016LL * 86400 * kMicrosPerSecond);
}

TEST(ValueParseTest, Dates) {
  EXPECT_EQ(ParseDate("2024-01-05"), kJan5Micros);
  EXPECT_EQ(ParseDate(" 2024-01-05T00:00:00Z "), kJan5Micros);
  EXPECT_EQ(ParseDate("1969-12-31"), -86400 * kMicrosPerSecond);
  EXPECT_EQ(ParseDate("2024-01-05T00:00:01"), std::nullopt);
  EXPECT_EQ(ParseDate("2024-01-05T00:00:00+01:00"), std::nullopt);  // 23:00 UTC the day before
  EXPECT_EQ(ParseDate("2024-02-30"), std::nullopt);
  EXPECT_EQ(ParseDate("yesterday"), std::nullopt);
}

TEST(ValueParseTest, TimestampOffsets) {
  const int64_t at_10_11_12 = kJan5Micros + (10 * 3600 + 11 * 60 + 12) * kMicrosPerSecond;
  // 10:11:12 at +02:00 is 08:11:12 UTC.
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12+02:00"), at_10_11_12 - 2 * 3600 * kMicrosPerSecond);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12+0200"), at_10_11_12 - 2 * 3600 * kMicrosPerSecond);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12-05:30"),
            at_10_11_12 + (5 * 3600 + 30 * 60) * kMicrosPerSecond);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12.25-0530"),
            at_10_11_12 + (5 * 3600 + 30 * 60) * kMicrosPerSecond + 250000);
  // Crossing midnight backwards: 00:30 at +01:00 is 23:30 the previous day.
  EXPECT_EQ(ParseTimestamp("2024-01-05T00:30:00+01:00"), kJan5Micros - 30 * 60 * kMicrosPerSecond);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12+00:00"), at_10_11_12);
}

TEST(ValueParseTest, TimestampRejects) {
  EXPECT_EQ(ParseTimestamp(""), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-1-05"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-13-01"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2023-02-29"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-04-31"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T24:00:00"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:60:00"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12."), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12.1234567890"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12+2"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12+24:00"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T10:11:12Zx"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05x"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("2024-01-05T"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("abc"), std::nullopt);
}

TEST(ValueParseTest, Helpers) {
  EXPECT_EQ(TrimSpaces("  a b\t"), "a b");
  EXPECT_EQ(TrimSpaces("   "), "");
  EXPECT_TRUE(EqualsIgnoreCase("TrUe", "true"));
  EXPECT_FALSE(EqualsIgnoreCase("true", "tru"));
}

}  // namespace
}  // namespace sluice
