#include "batch/value_parse.h"

#include <fast_float/fast_float.h>

#include <charconv>
#include <chrono>
#include <system_error>

namespace sluice {
namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `count` digits at text[*pos] into *out and advances *pos.
bool ReadDigits(std::string_view text, size_t* pos, int count, int* out) {
  if (*pos + static_cast<size_t>(count) > text.size()) return false;
  int value = 0;
  for (int digit_idx = 0; digit_idx < count; ++digit_idx) {
    const char c = text[*pos + static_cast<size_t>(digit_idx)];
    if (!IsDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  *pos += static_cast<size_t>(count);
  *out = value;
  return true;
}

// Parses "Z", "+hh:mm", "-hh:mm", "+hhmm", "-hhmm" at text[pos..] up to the end;
// stores the offset east of UTC in seconds.
bool ParseUtcOffset(std::string_view text, size_t pos, int64_t* offset_seconds) {
  if (pos == text.size()) {
    *offset_seconds = 0;
    return true;
  }
  if (text[pos] == 'Z' || text[pos] == 'z') {
    *offset_seconds = 0;
    return pos + 1 == text.size();
  }
  if (text[pos] != '+' && text[pos] != '-') return false;
  const int sign = text[pos] == '-' ? -1 : 1;
  ++pos;
  int hours = 0;
  int minutes = 0;
  if (!ReadDigits(text, &pos, 2, &hours)) return false;
  if (pos < text.size() && text[pos] == ':') ++pos;
  if (!ReadDigits(text, &pos, 2, &minutes)) return false;
  if (pos != text.size() || hours > 23 || minutes > 59) return false;
  *offset_seconds = sign * (static_cast<int64_t>(hours) * 3600 + minutes * 60);
  return true;
}

}  // namespace

namespace value_parse_internal {

const char* ParseFloat64PrefixSlow(const char* first, const char* last, double* value) {
  const auto [ptr, ec] = fast_float::from_chars(first, last, *value);
  // fast_float reports overflow as result_out_of_range with +-inf stored.
  if (ec != std::errc() && ec != std::errc::result_out_of_range) return first;
  return ptr;
}

}  // namespace value_parse_internal

std::string_view TrimSpaces(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(begin, end - begin);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t char_idx = 0; char_idx < a.size(); ++char_idx) {
    if (LowerAscii(a[char_idx]) != LowerAscii(b[char_idx])) return false;
  }
  return true;
}

std::optional<int64_t> ParseInt64(std::string_view text) {
  text = TrimSpaces(text);
  if (!text.empty() && text[0] == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text[0] == '-') return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  const char* last = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), last, value);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  return value;
}

std::optional<double> ParseFloat64(std::string_view text) {
  text = TrimSpaces(text);
  if (!text.empty() && text[0] == '+') {
    text.remove_prefix(1);
    if (!text.empty() && (text[0] == '-' || text[0] == '+')) return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  double value = 0;
  const char* last = text.data() + text.size();
  if (ParseFloat64Prefix(text.data(), last, &value) != last) return std::nullopt;
  return value;
}

std::optional<bool> ParseBool(std::string_view text) {
  text = TrimSpaces(text);
  if (EqualsIgnoreCase(text, "true") || EqualsIgnoreCase(text, "yes") || text == "1") return true;
  if (EqualsIgnoreCase(text, "false") || EqualsIgnoreCase(text, "no") || text == "0") return false;
  return std::nullopt;
}

std::optional<int64_t> ParseTimestamp(std::string_view text) {
  text = TrimSpaces(text);
  size_t pos = 0;
  int year_value = 0;
  int month_value = 0;
  int day_value = 0;
  if (!ReadDigits(text, &pos, 4, &year_value)) return std::nullopt;
  if (pos >= text.size() || text[pos++] != '-') return std::nullopt;
  if (!ReadDigits(text, &pos, 2, &month_value)) return std::nullopt;
  if (pos >= text.size() || text[pos++] != '-') return std::nullopt;
  if (!ReadDigits(text, &pos, 2, &day_value)) return std::nullopt;

  const std::chrono::year_month_day date{std::chrono::year{year_value},
                                         std::chrono::month{static_cast<unsigned>(month_value)},
                                         std::chrono::day{static_cast<unsigned>(day_value)}};
  if (!date.ok()) return std::nullopt;
  const int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  constexpr int64_t kMicrosPerSecond = 1'000'000;
  constexpr int64_t kSecondsPerDay = 86'400;

  if (pos == text.size()) return days * kSecondsPerDay * kMicrosPerSecond;
  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return std::nullopt;
  ++pos;

  int hours = 0;
  int minutes = 0;
  int seconds = 0;
  if (!ReadDigits(text, &pos, 2, &hours)) return std::nullopt;
  if (pos >= text.size() || text[pos++] != ':') return std::nullopt;
  if (!ReadDigits(text, &pos, 2, &minutes)) return std::nullopt;
  if (pos >= text.size() || text[pos++] != ':') return std::nullopt;
  if (!ReadDigits(text, &pos, 2, &seconds)) return std::nullopt;
  if (hours > 23 || minutes > 59 || seconds > 59) return std::nullopt;

  int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digit_count = 0;
    int64_t fraction = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (++digit_count > 9) return std::nullopt;
      fraction = fraction * 10 + (text[pos] - '0');
      ++pos;
    }
    if (digit_count == 0) return std::nullopt;
    // Scale to nanoseconds, then truncate to microseconds.
    for (int scale_idx = digit_count; scale_idx < 9; ++scale_idx) fraction *= 10;
    micros = fraction / 1000;
  }

  int64_t offset_seconds = 0;
  if (!ParseUtcOffset(text, pos, &offset_seconds)) return std::nullopt;

  const int64_t local_seconds = days * kSecondsPerDay + hours * 3600 + minutes * 60 + seconds;
  return (local_seconds - offset_seconds) * kMicrosPerSecond + micros;
}

std::optional<int64_t> ParseDate(std::string_view text) {
  constexpr int64_t kMicrosPerDay = int64_t{86'400} * 1'000'000;
  const std::optional<int64_t> micros = ParseTimestamp(text);
  if (!micros || *micros % kMicrosPerDay != 0) return std::nullopt;
  return micros;
}

}  // namespace sluice
