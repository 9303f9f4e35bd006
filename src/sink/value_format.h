// Text formatting of column values for the CSV and JSON Lines writers (parts
// and rejects). Every function appends to a caller-owned std::string; none
// allocates per value beyond the string's own growth, so a writer that reuses
// one buffer formats rows without heap traffic.
//
// Formats:
//   int64      decimal                                   42, -7
//   float32/64 shortest text that reads back to the same value
//              (0.1f -> "0.1", 1e-7 -> "1e-07", -0.0 -> "-0")
//              non-finite: CSV "NaN", "inf", "-inf"; JSON null (JSON has no NaN)
//   bool       true / false
//   timestamp  ISO 8601 UTC, int64 microseconds since the epoch:
//              "2024-01-05T10:00:00Z", "…:00.123Z" (whole milliseconds),
//              "…:00.123456Z" (otherwise); JSON wraps it in quotes
//   date       "2024-01-05" (the UTC day of its microseconds); JSON quoted
//   string     CSV: RFC 4180 — quoted when it holds the delimiter, a quote,
//              CR or LF, starts or ends with a space or tab, or is empty (so an
//              empty string differs from null); quotes doubled.
//              JSON: quoted, with \" \\ \n \r \t \b \f, other control bytes as
//              \u00XX; valid UTF-8 passes through, an invalid byte becomes \ufffd.
//   null       CSV: empty field; JSON: null
//
// Thread-safety: stateless functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/batch.h"
#include "sluice/job.h"

namespace sluice {

enum class TextFormat { kCsv, kJson };

void AppendInt64Text(int64_t v, std::string* out);
void AppendFloat32Text(float v, TextFormat format, std::string* out);
void AppendFloat64Text(double v, TextFormat format, std::string* out);
void AppendBoolText(bool v, std::string* out);
// Without quotes, for both formats.
void AppendTimestampText(int64_t micros, std::string* out);
// The UTC day of `micros`, "2024-01-05", without quotes.
void AppendDateValueText(int64_t micros, std::string* out);

// "2024-01-05T10:00:00.000000Z": always six fraction digits, so that the text
// order of values from years 0000-9999 is their time order (SQLite columns).
void AppendFixedTimestampText(int64_t micros, std::string* out);
// The time bucket of a timestamp (UTC) as an output directory names it: hour
// "2024-01-05T13", day "2024-01-05", week the Monday of its ISO week
// "2024-01-01", month "2024-01". Before 1970 too ("1969-12-31T23").
void AppendTimeBucketText(int64_t micros, TimeWindow window, std::string* out);

// True if `s` must be quoted as a CSV field (see above).
bool CsvNeedsQuotes(std::string_view s, char delimiter);
// Appends `s` as one CSV field, quoted only when needed.
void AppendCsvString(std::string_view s, char delimiter, std::string* out);
// Appends `s` as a JSON string literal, with the quotes.
void AppendJsonString(std::string_view s, std::string* out);

// Appends value `row` of `column` as a CSV field (delimiter ',') or a JSON value.
// Precondition: row < column.size().
void AppendColumnValue(const Column& column, size_t row, TextFormat format, std::string* out);

}  // namespace sluice
