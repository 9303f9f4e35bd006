// Rejected rows: a bad row is not a bad job. Stages that find a bad row report
// it here with reason and location and go on; errors.max_rejected decides when
// the job stops.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Stable reason codes (written to the rejects file and counted per reason).
namespace reject_reason {
inline constexpr std::string_view kRaggedRow = "ragged_row";                  // field count differs from header
inline constexpr std::string_view kUnterminatedQuote = "unterminated_quote";  // CSV quote never closed
inline constexpr std::string_view kInvalidUtf8 = "invalid_utf8";
inline constexpr std::string_view kBadValue = "bad_value";          // value does not parse as the column's type
inline constexpr std::string_view kInvalidJson = "invalid_json";    // JSONL line is not a JSON object
inline constexpr std::string_view kNestedValue = "nested_value";    // object/array where a scalar is needed
inline constexpr std::string_view kMissingValue = "missing_value";  // null feature without imputation
inline constexpr std::string_view kUnknownCategory = "unknown_category";
inline constexpr std::string_view kInvalidFeature = "invalid_feature";  // e.g. log1p of a value <= -1
inline constexpr std::string_view kModelError = "model_error";
inline constexpr std::string_view kNoModel = "no_model";  // model.route: no model for the segment and no default
}  // namespace reject_reason

struct Reject {
  std::string file;         // input file (or table)
  int64_t line = 0;         // 1-based line (CSV/JSONL) or row number; 0 if unknown
  int64_t byte_offset = -1; // offset of the record in the file, -1 if unknown
  std::string column;       // offending column, empty for whole-row problems
  std::string value;        // offending value (truncated to 256 bytes)
  std::string reason;       // one of reject_reason
  std::string message;      // one line for people
};

// Receives rejected rows. Implementations document their thread-safety.
class RejectSink {
 public:
  virtual ~RejectSink() = default;
  virtual void Add(Reject reject) = 0;
};

}  // namespace sluice
