// Text -> value parsing shared by the sources (CSV fields, JSON strings) and the
// config (literal values in the job spec).
//
// Every function trims surrounding ASCII spaces and tabs first, returns nullopt
// when the whole (trimmed) text is not one value of the type, never throws and
// never allocates. No locale is involved. Safe for concurrent use (pure).
#pragma once

#include <cstdint>
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
