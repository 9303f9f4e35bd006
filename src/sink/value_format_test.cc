#include "sink/value_format.h"

#include <time.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice {
namespace {

template <typename F>
std::string Format(F&& append) {
  std::string out;
  append(&out);
  return out;
}

std::string F32(float v, TextFormat f = TextFormat::kCsv) {
  return Format([&](std::string* o) { AppendFloat32Text(v, f, o); });
}
std::string F64(double v, TextFormat f = TextFormat::kCsv) {
  return Format([&](std::string* o) { AppendFloat64Text(v, f, o); });
}
std::string Ts(int64_t micros) {
  return Format([&](std::string* o) { AppendTimestampText(micros, o); });
}
std::string Csv(std::string_view s) {
  return Format([&](std::string* o) { AppendCsvString(s, ',', o); });
}
std::string Json(std::string_view s) {
  return Format([&](std::string* o) { AppendJsonString(s, o); });
}

TEST(ValueFormatTest, Int64) {
  EXPECT_EQ(Format([](std::string* o) { AppendInt64Text(0, o); }), "0");
  EXPECT_EQ(Format([](std::string* o) { AppendInt64Text(-42, o); }), "-42");
  EXPECT_EQ(Format([](std::string* o) { AppendInt64Text(std::numeric_limits<int64_t>::min(), o); }),
            "-9223372036854775808");
  EXPECT_EQ(Format([](std::string* o) { AppendInt64Text(std::numeric_limits<int64_t>::max(), o); }),
            "9223372036854775807");
}

TEST(ValueFormatTest, FloatsAreShortestRoundTrip) {
  EXPECT_EQ(F32(0.1f), "0.1");
  EXPECT_EQ(F32(1e-7f), "1e-07");
  // The float nearest 123456789 is 123456792; in fixed notation "123456792" is
  // as short as "123456790" and exact, so it wins the tie.
  EXPECT_EQ(F32(123456789.0f), "123456792");
  EXPECT_EQ(F32(-0.0f), "-0");
  EXPECT_EQ(F32(0.5f), "0.5");
  EXPECT_EQ(F32(3.0f), "3");
  EXPECT_EQ(F64(0.1), "0.1");
  EXPECT_EQ(F64(1e-7), "1e-07");
  EXPECT_EQ(F64(123456789.0), "123456789");
  EXPECT_EQ(F64(-0.0), "-0");
  EXPECT_EQ(F64(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(F64(1e300), "1e+300");
  EXPECT_EQ(F64(5e-324), "5e-324");
  // A float widened to double shows its true binary value; kept as float it prints short.
  EXPECT_EQ(F64(static_cast<double>(0.1f)), "0.10000000149011612");
}

TEST(ValueFormatTest, NonFiniteDependsOnFormat) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(F64(nan), "NaN");
  EXPECT_EQ(F64(inf), "inf");
  EXPECT_EQ(F64(-inf), "-inf");
  EXPECT_EQ(F32(std::numeric_limits<float>::quiet_NaN()), "NaN");
  EXPECT_EQ(F32(-std::numeric_limits<float>::infinity()), "-inf");
  EXPECT_EQ(F64(nan, TextFormat::kJson), "null");
  EXPECT_EQ(F64(inf, TextFormat::kJson), "null");
  EXPECT_EQ(F32(-std::numeric_limits<float>::infinity(), TextFormat::kJson), "null");
}

TEST(ValueFormatTest, RandomDoublesAndFloatsReadBackBitExact) {
  std::mt19937_64 rng(20240105);
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) continue;
    std::string text = F64(d);
    double back = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), back);
    ASSERT_EQ(ec, std::errc()) << text;
    ASSERT_EQ(ptr, text.data() + text.size());
    ASSERT_EQ(std::memcmp(&back, &d, sizeof(d)), 0) << text;

    uint32_t fbits = static_cast<uint32_t>(bits >> 32);
    float f;
    std::memcpy(&f, &fbits, sizeof(f));
    if (!std::isfinite(f)) continue;
    text = F32(f);
    float fback = 0;
    auto [fptr, fec] = std::from_chars(text.data(), text.data() + text.size(), fback);
    ASSERT_EQ(fec, std::errc()) << text;
    ASSERT_EQ(std::memcmp(&fback, &f, sizeof(f)), 0) << text;
    // And it is valid JSON.
    ASSERT_TRUE(nlohmann::json::accept(text)) << text;
  }
}

TEST(ValueFormatTest, Timestamps) {
  EXPECT_EQ(Ts(0), "1970-01-01T00:00:00Z");
  const int64_t jan5 = int64_t{1704448800} * 1000000;  // 2024-01-05T10:00:00Z
  EXPECT_EQ(Ts(jan5), "2024-01-05T10:00:00Z");
  EXPECT_EQ(Ts(jan5 + 123000), "2024-01-05T10:00:00.123Z");
  EXPECT_EQ(Ts(jan5 + 123456), "2024-01-05T10:00:00.123456Z");
  EXPECT_EQ(Ts(jan5 + 1), "2024-01-05T10:00:00.000001Z");
  EXPECT_EQ(Ts(jan5 + 5000), "2024-01-05T10:00:00.005Z");
  EXPECT_EQ(Ts(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(Ts(-int64_t{86400} * 1000000), "1969-12-31T00:00:00Z");
  EXPECT_EQ(Ts(int64_t{951782400} * 1000000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(Ts(int64_t{253402300799} * 1000000), "9999-12-31T23:59:59Z");
  EXPECT_EQ(Ts(int64_t{-62135596800} * 1000000), "0001-01-01T00:00:00Z");
}

TEST(ValueFormatTest, FixedTimestampsSortAsText) {
  const auto fixed = [](int64_t micros) { return Format([&](std::string* o) { AppendFixedTimestampText(micros, o); }); };
  const int64_t jan5 = int64_t{1704448800} * 1000000;
  EXPECT_EQ(fixed(jan5), "2024-01-05T10:00:00.000000Z");
  EXPECT_EQ(fixed(jan5 + 123000), "2024-01-05T10:00:00.123000Z");
  EXPECT_EQ(fixed(-1), "1969-12-31T23:59:59.999999Z");
  // Whole seconds sort before their fractions (with AppendTimestampText 'Z' > '.' would not).
  EXPECT_LT(fixed(jan5), fixed(jan5 + 1));
  EXPECT_LT(fixed(jan5 + 999999), fixed(jan5 + 1000000));
}

TEST(ValueFormatTest, TimestampsAgreeWithGmtime) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> seconds(-2208988800, 4102444800);  // 1900..2100
  for (int i = 0; i < 5000; ++i) {
    time_t t = static_cast<time_t>(seconds(rng));
    struct tm tm;
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    char expected[32];
    strftime(expected, sizeof(expected), "%Y-%m-%dT%H:%M:%SZ", &tm);
    ASSERT_EQ(Ts(static_cast<int64_t>(t) * 1000000), expected);
  }
}

std::string Bucket(int64_t micros, TimeWindow window) {
  return Format([&](std::string* o) { AppendTimeBucketText(micros, window, o); });
}

// Expected values from Python's datetime; weeks start on the Monday of the ISO
// week, also across year ends (2021-01-01 is in the week of 2020-12-28).
TEST(ValueFormatTest, TimeBuckets) {
  struct Case {
    int64_t micros;
    const char* hour;
    const char* day;
    const char* week;
    const char* month;
  };
  const Case cases[] = {
      {1704462310000000, "2024-01-05T13", "2024-01-05", "2024-01-01", "2024-01"},   // 2024-01-05T13:45:10
      {1704067200000000, "2024-01-01T00", "2024-01-01", "2024-01-01", "2024-01"},   // a Monday
      {1704671999999999, "2024-01-07T23", "2024-01-07", "2024-01-01", "2024-01"},   // the Sunday after, last µs
      {1609459200000000, "2021-01-01T00", "2021-01-01", "2020-12-28", "2021-01"},   // week in the previous year
      {1609675200000000, "2021-01-03T12", "2021-01-03", "2020-12-28", "2021-01"},
      {1609718400000000, "2021-01-04T00", "2021-01-04", "2021-01-04", "2021-01"},
      {1577750400000000, "2019-12-31T00", "2019-12-31", "2019-12-30", "2019-12"},
      {1709193600000000, "2024-02-29T08", "2024-02-29", "2024-02-26", "2024-02"},   // leap day
      {1709424000000000, "2024-03-03T00", "2024-03-03", "2024-02-26", "2024-03"},   // week across Feb 29
      {951782400000000, "2000-02-29T00", "2000-02-29", "2000-02-28", "2000-02"},    // leap century
      {-2203891200000000, "1900-03-01T00", "1900-03-01", "1900-02-26", "1900-03"},  // 1900 is not leap
      {0, "1970-01-01T00", "1970-01-01", "1969-12-29", "1970-01"},
      {-1, "1969-12-31T23", "1969-12-31", "1969-12-29", "1969-12"},
      {-310503600000000, "1960-02-29T05", "1960-02-29", "1960-02-29", "1960-02"},   // pre-1970 leap Monday
      {-315619200000000, "1960-01-01T00", "1960-01-01", "1959-12-28", "1960-01"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Ts(c.micros));
    EXPECT_EQ(Bucket(c.micros, TimeWindow::kHour), c.hour);
    EXPECT_EQ(Bucket(c.micros, TimeWindow::kDay), c.day);
    EXPECT_EQ(Bucket(c.micros, TimeWindow::kWeek), c.week);
    EXPECT_EQ(Bucket(c.micros, TimeWindow::kMonth), c.month);
  }
}

TEST(ValueFormatTest, TimeBucketsAgreeWithGmtime) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> micros(int64_t{-2208988800} * 1000000, int64_t{4102444800} * 1000000);
  auto text = [](time_t t, const char* format) {
    struct tm tm;
    EXPECT_NE(gmtime_r(&t, &tm), nullptr);
    char out[32];
    strftime(out, sizeof(out), format, &tm);
    return std::string(out);
  };
  for (int i = 0; i < 5000; ++i) {
    const int64_t us = micros(rng);
    const time_t t = static_cast<time_t>(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
    struct tm tm;
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    const time_t monday = t - static_cast<time_t>((tm.tm_wday + 6) % 7) * 86400;
    ASSERT_EQ(Bucket(us, TimeWindow::kHour), text(t, "%Y-%m-%dT%H"));
    ASSERT_EQ(Bucket(us, TimeWindow::kDay), text(t, "%Y-%m-%d"));
    ASSERT_EQ(Bucket(us, TimeWindow::kWeek), text(monday, "%Y-%m-%d"));
    ASSERT_EQ(Bucket(us, TimeWindow::kMonth), text(t, "%Y-%m"));
  }
}

TEST(ValueFormatTest, CsvQuoting) {
  EXPECT_EQ(Csv("plain"), "plain");
  EXPECT_EQ(Csv("in side"), "in side");
  EXPECT_EQ(Csv("a,b"), "\"a,b\"");
  EXPECT_EQ(Csv("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Csv("\""), "\"\"\"\"");
  EXPECT_EQ(Csv("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(Csv("cr\r"), "\"cr\r\"");
  EXPECT_EQ(Csv(" lead"), "\" lead\"");
  EXPECT_EQ(Csv("trail "), "\"trail \"");
  EXPECT_EQ(Csv("\ttab"), "\"\ttab\"");
  EXPECT_EQ(Csv(""), "\"\"");
  EXPECT_EQ(Csv("héllo"), "héllo");
  EXPECT_TRUE(CsvNeedsQuotes("a;b", ';'));
  EXPECT_FALSE(CsvNeedsQuotes("a,b", ';'));
}

TEST(ValueFormatTest, JsonEscaping) {
  EXPECT_EQ(Json("plain"), "\"plain\"");
  EXPECT_EQ(Json("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(Json("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(Json(std::string_view("\x01\x1f\0", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(Json("\x7f"), "\"\x7f\"");
  EXPECT_EQ(Json("héllo € 𝄞"), "\"héllo € 𝄞\"");
  EXPECT_EQ(Json("/"), "\"/\"");
}

TEST(ValueFormatTest, JsonReplacesInvalidUtf8) {
  EXPECT_EQ(Json("a\xff" "b"), "\"a\\ufffdb\"");
  EXPECT_EQ(Json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");          // overlong '/'
  EXPECT_EQ(Json("\xe2\x82"), "\"\\ufffd\\ufffd\"");          // truncated '€'
  EXPECT_EQ(Json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate
  EXPECT_EQ(Json("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // past U+10FFFF
  EXPECT_EQ(Json("\x80"), "\"\\ufffd\"");
}

TEST(ValueFormatTest, JsonStringsParseBackToTheSameText) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    int len = static_cast<int>(rng() % 12);
    for (int k = 0; k < len; ++k) {
      // Whole characters, so the string is valid UTF-8.
      static const std::vector<std::string> pieces = {"a", "b", "\"", "\\", "\n", "\r", "\t", "\b", "\f",
                                                       "\x01", "\x1f", "/", " ", "é", "€", "𝄞"};
      s += pieces[rng() % pieces.size()];
    }
    std::string text = Json(s);
    auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    ASSERT_EQ(parsed.get<std::string>(), s);
  }
}

TEST(ValueFormatTest, ColumnValuesAndNulls) {
  Column ints(DataType::kInt64);
  ints.AppendInt64(5);
  ints.AppendNull();
  Column strs(DataType::kString);
  strs.AppendString("x,y");
  strs.AppendNull();
  Column ts(DataType::kTimestamp);
  ts.AppendInt64(0);
  Column days(DataType::kDate);
  days.AppendInt64(19727LL * 86400 * 1000000);  // 2024-01-05
  days.AppendInt64(-86400LL * 1000000);         // 1969-12-31
  Column flags(DataType::kBool);
  flags.AppendBool(true);
  flags.AppendBool(false);
  auto csv = [](const Column& c, size_t i) {
    return Format([&](std::string* o) { AppendColumnValue(c, i, TextFormat::kCsv, o); });
  };
  auto json = [](const Column& c, size_t i) {
    return Format([&](std::string* o) { AppendColumnValue(c, i, TextFormat::kJson, o); });
  };
  EXPECT_EQ(csv(ints, 0), "5");
  EXPECT_EQ(csv(ints, 1), "");
  EXPECT_EQ(json(ints, 1), "null");
  EXPECT_EQ(csv(strs, 0), "\"x,y\"");
  EXPECT_EQ(json(strs, 0), "\"x,y\"");
  EXPECT_EQ(csv(strs, 1), "");
  EXPECT_EQ(json(strs, 1), "null");
  EXPECT_EQ(csv(ts, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(json(ts, 0), "\"1970-01-01T00:00:00Z\"");
  EXPECT_EQ(csv(days, 0), "2024-01-05");
  EXPECT_EQ(json(days, 0), "\"2024-01-05\"");
  EXPECT_EQ(csv(days, 1), "1969-12-31");
  EXPECT_EQ(csv(flags, 0), "true");
  EXPECT_EQ(json(flags, 1), "false");
}

}  // namespace
}  // namespace sluice
