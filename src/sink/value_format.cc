#include "sink/value_format.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <utility>

namespace sluice {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

// Appends v (0 <= v) with at least `width` digits, zero-padded.
void AppendPadded(int64_t v, int width, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out->push_back('0');
  out->append(buf, static_cast<size_t>(end - buf));
}

template <typename Float>
void AppendFloatText(Float v, TextFormat format, std::string* out) {
  if (!std::isfinite(v)) {
    if (format == TextFormat::kJson) {
      out->append("null");
    } else if (std::isnan(v)) {
      out->append("NaN");
    } else {
      out->append(v < 0 ? "-inf" : "inf");
    }
    return;
  }
  // Without a format argument to_chars gives the shortest text that parses
  // back to the same value (fixed or scientific, whichever is shorter).
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out->append(buf, static_cast<size_t>(end - buf));
}

// Whole days since the epoch and microseconds into that day, by floor
// division, so that instants before 1970 land on the right day.
std::pair<int64_t, int64_t> SplitDays(int64_t micros) {
  int64_t days = micros / kMicrosPerDay;
  int64_t in_day = micros % kMicrosPerDay;
  if (in_day < 0) {
    in_day += kMicrosPerDay;
    --days;
  }
  return {days, in_day};
}

// "2024-01-05" for a count of days since 1970-01-01.
void AppendDateText(int64_t days, std::string* out) {
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<std::chrono::days::rep>(days)}}};
  const int year = static_cast<int>(ymd.year());
  if (year < 0) out->push_back('-');
  AppendPadded(year < 0 ? -static_cast<int64_t>(year) : year, 4, out);
  out->push_back('-');
  AppendPadded(static_cast<unsigned>(ymd.month()), 2, out);
  out->push_back('-');
  AppendPadded(static_cast<unsigned>(ymd.day()), 2, out);
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0
// if it is not valid (overlong forms, surrogates and code points past U+10FFFF
// are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = at(i);
  const size_t left = s.size() - i;
  if (lead >= 0xC2 && lead <= 0xDF) {
    return left >= 2 && IsContinuation(at(i + 1)) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char b1 = at(i + 1);
    const unsigned char lo = lead == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = lead == 0xED ? 0x9F : 0xBF;
    return b1 >= lo && b1 <= hi && IsContinuation(at(i + 2)) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char b1 = at(i + 1);
    const unsigned char lo = lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = lead == 0xF4 ? 0x8F : 0xBF;
    return b1 >= lo && b1 <= hi && IsContinuation(at(i + 2)) && IsContinuation(at(i + 3)) ? 4 : 0;
  }
  return 0;
}

}  // namespace

void AppendInt64Text(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendFloat32Text(float v, TextFormat format, std::string* out) {
  AppendFloatText(v, format, out);
}

void AppendFloat64Text(double v, TextFormat format, std::string* out) {
  AppendFloatText(v, format, out);
}

void AppendBoolText(bool v, std::string* out) { out->append(v ? "true" : "false"); }

namespace {

// `fixed`: always six fraction digits; otherwise none, three or six.
void AppendIsoTimestamp(int64_t micros, bool fixed, std::string* out) {
  const auto [days, in_day] = SplitDays(micros);
  AppendDateText(days, out);
  out->push_back('T');
  const int64_t seconds = in_day / kMicrosPerSecond;
  const int64_t fraction = in_day % kMicrosPerSecond;
  AppendPadded(seconds / 3600, 2, out);
  out->push_back(':');
  AppendPadded(seconds / 60 % 60, 2, out);
  out->push_back(':');
  AppendPadded(seconds % 60, 2, out);
  if (fixed || fraction != 0) {
    out->push_back('.');
    if (!fixed && fraction % 1000 == 0) {
      AppendPadded(fraction / 1000, 3, out);
    } else {
      AppendPadded(fraction, 6, out);
    }
  }
  out->push_back('Z');
}

}  // namespace

void AppendTimestampText(int64_t micros, std::string* out) { AppendIsoTimestamp(micros, false, out); }

void AppendFixedTimestampText(int64_t micros, std::string* out) { AppendIsoTimestamp(micros, true, out); }

void AppendDateValueText(int64_t micros, std::string* out) { AppendDateText(SplitDays(micros).first, out); }

void AppendTimeBucketText(int64_t micros, TimeWindow window, std::string* out) {
  const auto [days, in_day] = SplitDays(micros);
  switch (window) {
    case TimeWindow::kHour:
      AppendDateText(days, out);
      out->push_back('T');
      AppendPadded(in_day / (3600 * kMicrosPerSecond), 2, out);
      return;
    case TimeWindow::kDay:
      AppendDateText(days, out);
      return;
    case TimeWindow::kWeek: {
      // Day 0 (1970-01-01) was a Thursday: (days + 3) mod 7 counts days since Monday.
      const int64_t since_monday = ((days + 3) % 7 + 7) % 7;
      AppendDateText(days - since_monday, out);
      return;
    }
    case TimeWindow::kMonth:
      AppendDateText(days, out);
      out->resize(out->size() - 3);  // drop "-DD"
      return;
  }
}

bool CsvNeedsQuotes(std::string_view s, char delimiter) {
  if (s.empty()) return true;
  const auto is_blank = [](char c) { return c == ' ' || c == '\t'; };
  if (is_blank(s.front()) || is_blank(s.back())) return true;
  for (char c : s) {
    if (c == delimiter || c == '"' || c == '\n' || c == '\r') return true;
  }
  return false;
}

void AppendCsvString(std::string_view s, char delimiter, std::string* out) {
  if (!CsvNeedsQuotes(s, delimiter)) {
    out->append(s);
    return;
  }
  out->push_back('"');
  size_t start = 0;
  while (true) {
    size_t quote = s.find('"', start);
    if (quote == std::string_view::npos) break;
    out->append(s.substr(start, quote + 1 - start));
    out->push_back('"');
    start = quote + 1;
  }
  out->append(s.substr(start));
  out->push_back('"');
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run_start = 0;  // bytes [run_start, i) are copied as they are
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s, i);
      if (len > 0) {
        i += len;
        continue;
      }
    }
    out->append(s.substr(run_start, i - run_start));
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c >= 0x80) {
          out->append("\\ufffd");
        } else {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        }
    }
    ++i;
    run_start = i;
  }
  out->append(s.substr(run_start));
  out->push_back('"');
}

void AppendColumnValue(const Column& column, size_t row, TextFormat format, std::string* out) {
  const bool json = format == TextFormat::kJson;
  if (column.IsNull(row)) {
    if (json) out->append("null");
    return;
  }
  switch (column.type()) {
    case DataType::kInt64:
      AppendInt64Text(column.int64s()[row], out);
      return;
    case DataType::kFloat32:
      AppendFloat32Text(column.float32s()[row], format, out);
      return;
    case DataType::kFloat64:
      AppendFloat64Text(column.float64s()[row], format, out);
      return;
    case DataType::kBool:
      AppendBoolText(column.bools()[row] != 0, out);
      return;
    case DataType::kTimestamp:
      // Never needs CSV quoting: digits, '-', ':', '.', 'T', 'Z'.
      if (json) out->push_back('"');
      AppendTimestampText(column.int64s()[row], out);
      if (json) out->push_back('"');
      return;
    case DataType::kDate:
      if (json) out->push_back('"');
      AppendDateValueText(column.int64s()[row], out);
      if (json) out->push_back('"');
      return;
    case DataType::kString:
      if (json) {
        AppendJsonString(column.StringAt(row), out);
      } else {
        AppendCsvString(column.StringAt(row), ',', out);
      }
      return;
  }
}

}  // namespace sluice
