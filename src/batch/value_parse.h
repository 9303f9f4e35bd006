// Text -> value parsing shared by the sources (CSV fields, JSON strings) and the
// config (literal values in the job spec).
//
// Every function trims surrounding ASCII spaces and tabs first, returns nullopt
// when the whole (trimmed) text is not one value of the type, never throws and
// never allocates. No locale is involved. Safe for concurrent use (pure).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace sluice {

// Removes leading and trailing spaces and tabs.
std::string_view TrimSpaces(std::string_view text);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Decimal integer with an optional leading '+' or '-': "42", "+7", "-0".
// Out of int64 range -> nullopt.
std::optional<int64_t> ParseInt64(std::string_view text);

// Decimal or scientific floating-point number with an optional leading '+' or
// '-' ("3.5", "-1e-3", ".5", "5."); also "nan", "inf", "infinity" with an
// optional sign, case-insensitive. Values beyond double range round to +-inf.
std::optional<double> ParseFloat64(std::string_view text);

// The powers of ten that doubles hold exactly (10^0 to 10^22): a mantissa below
// 2^53 times or over one of them rounds correctly (Clinger's fast path).
inline constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// The longest prefix of [first, last) that is a number in ParseFloat64's
// grammar without spaces or a leading '+' (fast_float::from_chars, general
// format), into *value; returns the end of that prefix, or `first` if there is
// none. Values beyond double range give +-inf. Short plain decimals
// ("-3.141592": up to 7 digits on each side of the point) take a branch-light
// path of eight digits at a time when at least 24 bytes are readable from
// `first`; its results are fast_float's, bit for bit (value_parse_test.cc).
// Inline: the CSV reader calls it once per number field.
inline const char* ParseFloat64Prefix(const char* first, const char* last, double* value);

namespace value_parse_internal {

inline uint64_t Load8(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// The number of leading ASCII digits among the eight bytes of `word` (the
// first byte in memory is the lowest on a little-endian machine). A byte is a
// digit when its high nibble is 3 and its low nibble plus 6 does not reach 16;
// no step carries from one byte into the next.
inline int LeadingDigits(uint64_t word) {
  const uint64_t high_not_3 = (word & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL;
  const uint64_t low_over_9 = ((word & 0x0F0F0F0F0F0F0F0FULL) + 0x0606060606060606ULL) & 0x1010101010101010ULL;
  const uint64_t not_digit = high_not_3 | low_over_9;
  return not_digit == 0 ? 8 : std::countr_zero(not_digit) / 8;
}

// The value of the first `count` (1 to 8) digit bytes of `word`: shifted so
// that they end at the top byte (the bytes shifted in are leading zeros), then
// combined pairwise as 2-, 4- and 8-digit numbers. A borrow of the subtraction
// only runs from a byte after the digits into later bytes, which the shift drops.
inline uint64_t DigitsValue(uint64_t word, int count) {
  uint64_t v = (word - 0x3030303030303030ULL) << (8 * (8 - count));
  v = v * 10 + (v >> 8);
  return (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
          (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >>
         32;
}

inline constexpr uint64_t kPow10Int[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

// "-?D{1,7}(.D{1,7})?" not followed by an exponent, with 24 bytes readable;
// nullptr for anything else. At most 14 digits keep the mantissa below 2^53, and
// 10^k (k <= 7) is exact, so one division rounds correctly (Clinger's fast
// path, which fast_float takes for these numbers too).
[[gnu::always_inline]] inline const char* ParseShortDecimal(const char* first, const char* last, double* value) {
  if (last - first < 24) return nullptr;
  const char* p = first;
  const bool negative = *p == '-';
  p += negative ? 1 : 0;
  const uint64_t int_word = Load8(p);
  const int int_digits = LeadingDigits(int_word);
  if (int_digits == 0 || int_digits == 8) return nullptr;
  uint64_t mantissa = DigitsValue(int_word, int_digits);
  p += int_digits;
  int frac_digits = 0;
  if (*p == '.') {
    const uint64_t frac_word = Load8(p + 1);
    frac_digits = LeadingDigits(frac_word);
    if (frac_digits == 0 || frac_digits == 8) return nullptr;
    mantissa = mantissa * kPow10Int[frac_digits] + DigitsValue(frac_word, frac_digits);
    p += 1 + frac_digits;
  }
  if (*p == 'e' || *p == 'E') return nullptr;
  const double magnitude = static_cast<double>(mantissa) / kExactPowersOfTen[frac_digits];
  *value = negative ? -magnitude : magnitude;
  return p;
}

// fast_float::from_chars with ParseFloat64Prefix's result.
const char* ParseFloat64PrefixSlow(const char* first, const char* last, double* value);

}  // namespace value_parse_internal

[[gnu::always_inline]] inline const char* ParseFloat64Prefix(const char* first, const char* last, double* value) {
  if constexpr (std::endian::native == std::endian::little) {
    if (const char* end = value_parse_internal::ParseShortDecimal(first, last, value)) return end;
  }
  return value_parse_internal::ParseFloat64PrefixSlow(first, last, value);
}

// true/false, yes/no, 1/0 (case-insensitive).
std::optional<bool> ParseBool(std::string_view text);

// A date or date-time as microseconds since the Unix epoch, UTC:
//   "2024-01-05"                       midnight UTC
//   "2024-01-05T10:11:12" or with ' '  UTC unless a suffix says otherwise
//   ".123456789" fractional seconds, 1 to 9 digits (truncated to microseconds)
//   suffix "Z", "+hh:mm", "-hh:mm", "+hhmm" or "-hhmm" (converted to UTC)
// Years are four digits (0000-9999); fields are range-checked (month 1-12, day
// within the month, hour 0-23, minute and second 0-59, offset hour 0-23).
std::optional<int64_t> ParseTimestamp(std::string_view text);

// A day: a ParseTimestamp text that is a UTC midnight ("2024-01-05",
// "2024-01-05T00:00:00Z"), as microseconds since the epoch; any other time of
// day -> nullopt.
std::optional<int64_t> ParseDate(std::string_view text);

}  // namespace sluice
