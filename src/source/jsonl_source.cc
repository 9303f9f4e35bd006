#include "source/jsonl_source.h"

#include <fast_float/fast_float.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batch/value_parse.h"
#include "source/source_common.h"

namespace sluice {
namespace {

// Splits a file into non-blank lines, from a start offset. The current line
// stays valid (with simdjson padding after it) until the next call to Next.
class LineReader {
 public:
  LineReader(const RandomAccessFile* file, std::string path, uint64_t start, int64_t start_line,
             const TextReadTuning& tuning)
      : reader_(file, path, start, tuning.chunk_bytes, simdjson::SIMDJSON_PADDING),
        path_(std::move(path)),
        max_line_bytes_(tuning.max_record_bytes),
        at_file_start_(start == 0),
        next_line_(start_line) {}

  // Reads the next non-blank line that starts before file offset `limit`;
  // false at the end.
  Result<bool> Next(uint64_t limit) {
    if (at_file_start_) {
      at_file_start_ = false;
      ASSIGN_OR_RETURN(pos_, reader_.Utf8BomLength());
    }
    while (true) {
      if (pos_ >= reader_.size()) {
        if (reader_.eof()) return false;
        RETURN_IF_ERROR(FillKeeping(pos_));
        continue;
      }
      const uint64_t line_offset = reader_.offset() + pos_;
      if (line_offset >= limit) return false;
      const char* begin = reader_.data() + pos_;
      const size_t available = reader_.size() - pos_;
      const auto* newline = static_cast<const char*>(std::memchr(begin, '\n', available));
      if (newline == nullptr && !reader_.eof()) {
        if (available >= max_line_bytes_) {
          return Status::Corruption(InputLine(path_, next_line_) + ": line larger than " +
                                    std::to_string(max_line_bytes_) + " bytes");
        }
        RETURN_IF_ERROR(FillKeeping(pos_));
        continue;
      }
      size_t length = newline != nullptr ? static_cast<size_t>(newline - begin) : available;
      line_pos_ = pos_;
      line_offset_ = line_offset;
      line_ = next_line_;
      pos_ += newline != nullptr ? length + 1 : length;
      if (newline != nullptr) ++next_line_;
      if (length > 0 && begin[length - 1] == '\r') --length;
      line_length_ = length;
      if (!IsBlank(text())) return true;
    }
  }

  // The current line without its line end; readable (padding) for
  // SIMDJSON_PADDING bytes past its end.
  std::string_view text() const { return {reader_.data() + line_pos_, line_length_}; }
  int64_t line() const { return line_; }
  uint64_t offset() const { return line_offset_; }
  uint64_t next_offset() const { return reader_.offset() + pos_; }

 private:
  static bool IsBlank(std::string_view text) {
    for (const char c : text) {
      if (c != ' ' && c != '\t' && c != '\r') return false;
    }
    return true;
  }

  Status FillKeeping(size_t keep) {
    Result<size_t> got = reader_.Fill(keep);
    if (!got.ok()) return got.status();
    pos_ -= std::min(pos_, keep);
    return Status::OK();
  }

  ChunkReader reader_;
  std::string path_;
  size_t max_line_bytes_;
  bool at_file_start_;
  size_t pos_ = 0;
  int64_t next_line_;
  size_t line_pos_ = 0;
  size_t line_length_ = 0;
  uint64_t line_offset_ = 0;
  int64_t line_ = 0;
};

enum class LineError { kNone, kInvalidUtf8, kInvalidJson, kNotObject };

// Parses the reader's current line as a JSON object.
LineError ParseLine(const LineReader& lines, simdjson::dom::parser* parser, simdjson::dom::object* object,
                    simdjson::error_code* error) {
  const std::string_view text = lines.text();
  simdjson::dom::element root;
  *error = parser->parse(text.data(), text.size(), /*realloc_if_needed=*/false).get(root);
  if (*error == simdjson::UTF8_ERROR) return LineError::kInvalidUtf8;
  if (*error != simdjson::SUCCESS) return LineError::kInvalidJson;
  if (root.get_object().get(*object) != simdjson::SUCCESS) return LineError::kNotObject;
  return LineError::kNone;
}

// Shortest text of a JSON number (integers exactly).
std::string_view NumberText(const simdjson::dom::element& value, char* buf, size_t size) {
  std::to_chars_result result{buf, std::errc()};
  switch (value.type()) {
    case simdjson::dom::element_type::INT64:
      result = std::to_chars(buf, buf + size, value.get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      result = std::to_chars(buf, buf + size, value.get_uint64().value_unsafe());
      break;
    default:
      result = std::to_chars(buf, buf + size, value.get_double().value_unsafe());
      break;
  }
  return {buf, static_cast<size_t>(result.ptr - buf)};
}

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

const char* SkipJsonSpace(const char* p, const char* end) {
  while (p != end && IsJsonSpace(*p)) ++p;
  return p;
}

// A byte that stands for itself inside a JSON string: printable ASCII but '"' and '\\'.
bool IsPlainKeyChar(char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A JSON number read by ScanPlainNumber, valued as simdjson values it: an
// integer (no fraction or exponent) as int64, any other as the nearest double.
struct PlainNumber {
  bool is_integer = false;
  int64_t int_value = 0;
  double float_value = 0;
};

// Reads the JSON number that starts at `p` (before `end`) and returns the
// position after it, or nullptr if it is not one by the JSON grammar or is one
// left to simdjson: integers of more than 18 digits or "-0" (which simdjson may
// not type as int64), exponents of more than 3 digits, doubles out of range.
const char* ScanPlainNumber(const char* p, const char* end, PlainNumber* number) {
  const char* const begin = p;
  const bool negative = *p == '-';
  if (negative) ++p;
  if (p == end || !IsDigit(*p)) return nullptr;
  // The digits as one integer (wrapping when there are more than 19) times 10^exponent.
  uint64_t mantissa = 0;
  int64_t exponent = 0;
  const char* const int_begin = p;
  if (*p == '0') {
    ++p;
  } else {
    for (; p != end && IsDigit(*p); ++p) mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
  }
  int64_t digits = p - int_begin;
  number->is_integer = true;
  if (p != end && *p == '.') {
    const char* const fraction_begin = ++p;
    for (; p != end && IsDigit(*p); ++p) mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
    if (p == fraction_begin) return nullptr;
    digits += p - fraction_begin;
    exponent -= p - fraction_begin;
    number->is_integer = false;
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool negative_exponent = p != end && *p == '-';
    if (p != end && (*p == '+' || *p == '-')) ++p;
    const char* const exponent_begin = p;
    int64_t written = 0;
    for (; p != end && IsDigit(*p); ++p) written = written * 10 + (*p - '0');
    if (p == exponent_begin || p - exponent_begin > 3) return nullptr;
    exponent += negative_exponent ? -written : written;
    number->is_integer = false;
  }
  if (number->is_integer) {
    if (digits > 18 || (negative && mantissa == 0)) return nullptr;
    number->int_value = negative ? -static_cast<int64_t>(mantissa) : static_cast<int64_t>(mantissa);
    return p;
  }
  // Both the mantissa and the power of ten are exact doubles, so one division or
  // multiplication rounds correctly (Clinger's fast path, which simdjson takes too).
  if (digits <= 19 && mantissa <= (uint64_t{1} << 53) && exponent >= -22 && exponent <= 22) {
    const double value = exponent < 0 ? static_cast<double>(mantissa) / kExactPowersOfTen[-exponent]
                                      : static_cast<double>(mantissa) * kExactPowersOfTen[exponent];
    number->float_value = negative ? -value : value;
    return p;
  }
  const auto [ptr, ec] = fast_float::from_chars(begin, p, number->float_value);
  if (ptr != p || ec != std::errc() || !std::isfinite(number->float_value)) return nullptr;
  return p;
}

class JsonlSource final : public ReaderBase {
 public:
  JsonlSource(std::string path, const SourceOptions& options, RejectSink* rejects)
      : path_(std::move(path)), options_(options), rejects_(rejects) {}

  Status Open(Env* env, const InputRange& range, const Schema& file_schema, const TextReadTuning& tuning) {
    ASSIGN_OR_RETURN(file_, env->NewRandomAccessFile(path_));
    ASSIGN_OR_RETURN(schema_, SelectColumns(path_, file_schema, options_, /*allow_declared_only=*/true));
    RETURN_IF_ERROR(sampler_.Init(path_, schema_, options_));
    limits_.Set(options_.batch_rows, options_.max_batch_bytes);
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      column_of_key_.emplace(std::string_view(schema_.field(col_idx).name), col_idx);
    }
    ASSIGN_OR_RETURN(const int64_t start_line,
                     LineAt(file_.get(), path_, range.begin, range.first_line, tuning.chunk_bytes));
    lines_ = std::make_unique<LineReader>(file_.get(), path_, range.begin, start_line, tuning);
    range_begin_ = range.begin;
    range_end_ = range.end;
    cells_.resize(schema_.num_fields());
    scratch_.resize(schema_.num_fields());
    return Status::OK();
  }

  uint64_t bytes_read() const override {
    const uint64_t next = lines_->next_offset();
    return next - std::min(range_begin_, next);
  }

  Result<bool> Next(Batch* batch) override {
    if (!status_.ok()) return status_;
    batch->Reset(schema_);
    batch->first_row = rows_emitted_;
    size_t rows = 0;
    const uint64_t batch_begin = lines_->next_offset();
    while (!done_ && !limits_.Full(rows, lines_->next_offset() - batch_begin)) {
      Result<bool> more = lines_->Next(range_end_);
      if (!more.ok()) {
        status_ = more.status();
        return status_;
      }
      if (!*more) {
        done_ = true;
        break;
      }
      if (AddLine(batch)) ++rows;
    }
    rows_emitted_ += rows;
    return rows > 0;
  }

 private:
  bool AddLine(Batch* batch) {
    if (!StagePlainLine(lines_->text()) && !StageParsedLine()) return false;
    if (!sampler_.Keep(cells_, lines_->line())) return false;
    for (size_t col_idx = 0; col_idx < cells_.size(); ++col_idx) {
      AppendCell(cells_[col_idx], &batch->columns[col_idx]);
    }
    batch->row_lines.push_back(lines_->line());
    return true;
  }

  // The common line in one pass, without simdjson: one object whose keys need
  // no unescaping (printable ASCII) and whose values are all numbers or null:
  // any number under a float column or a key that is no column, an integer
  // under an int64 column. Such a line cannot be rejected; its values are
  // staged in cells_ exactly as StageParsedLine stages them. False for any
  // other line (cells_ then unspecified): simdjson reads it.
  bool StagePlainLine(std::string_view text) {
    const char* p = SkipJsonSpace(text.data(), text.data() + text.size());
    const char* const end = text.data() + text.size();
    if (p == end || *p != '{') return false;
    for (Cell& cell : cells_) cell.is_null = true;
    size_t position = 0;
    while (true) {
      p = SkipJsonSpace(p + 1, end);  // after '{' or ','
      if (p == end || *p != '"') return false;
      const char* const key_begin = ++p;
      size_t col_idx = kNotAColumn;
      const KeySlot* slot = position < key_slots_.size() ? &key_slots_[position] : nullptr;
      const size_t slot_key_size = slot != nullptr ? slot->key.size() : 0;
      if (slot != nullptr && slot->plain && static_cast<size_t>(end - p) > slot_key_size &&
          std::memcmp(p, slot->key.data(), slot_key_size) == 0 && p[slot_key_size] == '"') {
        p += slot_key_size;  // the previous lines' key here, without escapes: no scan, no lookup
        col_idx = slot->col_idx;
      } else {
        while (p != end && IsPlainKeyChar(*p)) ++p;
        if (p == end || *p != '"') return false;
        col_idx = ColumnOfKey(position, std::string_view(key_begin, static_cast<size_t>(p - key_begin)));
      }
      ++position;
      p = SkipJsonSpace(p + 1, end);
      if (p == end || *p != ':') return false;
      p = SkipJsonSpace(p + 1, end);
      if (p == end) return false;
      if (*p == 'n') {
        if (end - p < 4 || std::memcmp(p, "null", 4) != 0) return false;
        p += 4;
        if (col_idx != kNotAColumn) cells_[col_idx].is_null = true;
      } else {
        PlainNumber number;
        p = ScanPlainNumber(p, end, &number);
        if (p == nullptr) return false;
        if (col_idx != kNotAColumn && !StagePlainNumber(number, schema_.field(col_idx).type, &cells_[col_idx])) {
          return false;
        }
      }
      p = SkipJsonSpace(p, end);
      if (p == end) return false;
      if (*p == '}') break;
      if (*p != ',') return false;
    }
    return SkipJsonSpace(p + 1, end) == end;
  }

  // The conversions of ConvertNumber that cannot fail; false for the others.
  static bool StagePlainNumber(const PlainNumber& number, DataType type, Cell* cell) {
    switch (type) {
      case DataType::kFloat32:
      case DataType::kFloat64:
        cell->float_value = number.is_integer ? static_cast<double>(number.int_value) : number.float_value;
        break;
      case DataType::kInt64:
        if (!number.is_integer) return false;
        cell->int_value = number.int_value;
        break;
      default: return false;
    }
    cell->is_null = false;
    return true;
  }

  // Parses the current line with simdjson and stages its values in cells_, or
  // rejects it.
  bool StageParsedLine() {
    simdjson::dom::object object;
    simdjson::error_code error;
    switch (ParseLine(*lines_, &parser_, &object, &error)) {
      case LineError::kNone: break;
      case LineError::kInvalidUtf8: {
        const size_t bad = FindInvalidUtf8(lines_->text());
        AddReject(reject_reason::kInvalidUtf8, "", lines_->text(),
                  "invalid UTF-8 at byte " +
                      std::to_string(lines_->offset() + (bad == std::string_view::npos ? 0 : bad)));
        return false;
      }
      case LineError::kInvalidJson:
        AddReject(reject_reason::kInvalidJson, "", lines_->text(),
                  std::string("invalid JSON: ") + simdjson::error_message(error));
        return false;
      case LineError::kNotObject:
        AddReject(reject_reason::kInvalidJson, "", lines_->text(), "the line is not a JSON object");
        return false;
    }
    for (Cell& cell : cells_) cell.is_null = true;
    size_t position = 0;
    for (const simdjson::dom::key_value_pair field : object) {
      const size_t col_idx = ColumnOfKey(position++, field.key);
      if (col_idx == kNotAColumn) continue;
      if (!ConvertValue(col_idx, field.value)) return false;
    }
    return true;
  }

  // The column of `key`, the position-th key of its line, or kNotAColumn. Lines of a
  // file almost always list their keys in one order, so the key the previous lines
  // had at this position is compared first and the hash table is the fallback.
  size_t ColumnOfKey(size_t position, std::string_view key) {
    if (position < key_slots_.size() && key_slots_[position].key == key) return key_slots_[position].col_idx;
    const auto found = column_of_key_.find(key);
    const size_t col_idx = found == column_of_key_.end() ? kNotAColumn : found->second;
    if (position < kMaxKeySlots) {
      if (position >= key_slots_.size()) key_slots_.resize(position + 1);
      key_slots_[position].key.assign(key);
      key_slots_[position].col_idx = col_idx;
      key_slots_[position].plain = std::all_of(key.begin(), key.end(), IsPlainKeyChar);
    }
    return col_idx;
  }

  // Converts one JSON value into cells_[col_idx], or rejects the row.
  bool ConvertValue(size_t col_idx, const simdjson::dom::element& value) {
    using simdjson::dom::element_type;
    const Field& field = schema_.field(col_idx);
    Cell& cell = cells_[col_idx];
    std::string& scratch = scratch_[col_idx];
    cell.is_null = false;
    const element_type json_type = value.type();
    switch (json_type) {
      case element_type::NULL_VALUE:
        cell.is_null = true;
        return true;
      case element_type::OBJECT:
      case element_type::ARRAY:
        if (field.type == DataType::kString) {
          scratch.assign(simdjson::minify(value));
          cell.text = scratch;
          return true;
        }
        AddReject(reject_reason::kNestedValue, field.name, simdjson::minify(value),
                  std::string("a JSON ") + (json_type == element_type::OBJECT ? "object" : "array") +
                      " where a value of type " + std::string(DataTypeName(field.type)) + " is expected");
        return false;
      case element_type::STRING: {
        const std::string_view text = value.get_string().value_unsafe();
        if (ParseTextCell(text, field.type, &cell)) return true;
        return BadValue(field, text);
      }
      case element_type::BOOL: {
        const bool flag = value.get_bool().value_unsafe();
        if (field.type == DataType::kBool) {
          cell.bool_value = flag;
          return true;
        }
        if (field.type == DataType::kString) {
          cell.text = flag ? "true" : "false";
          return true;
        }
        return BadValue(field, flag ? "true" : "false");
      }
      case element_type::INT64:
      case element_type::UINT64:
      case element_type::DOUBLE:
        return ConvertNumber(field, value, &cell, &scratch);
    }
    return BadValue(field, "");
  }

  bool ConvertNumber(const Field& field, const simdjson::dom::element& value, Cell* cell, std::string* scratch) {
    using simdjson::dom::element_type;
    const element_type json_type = value.type();
    char buf[64];
    switch (field.type) {
      case DataType::kString:
        scratch->assign(NumberText(value, buf, sizeof(buf)));
        cell->text = *scratch;
        return true;
      case DataType::kFloat32:
      case DataType::kFloat64:
        cell->float_value = json_type == element_type::INT64    ? static_cast<double>(value.get_int64().value_unsafe())
                            : json_type == element_type::UINT64 ? static_cast<double>(value.get_uint64().value_unsafe())
                                                                : value.get_double().value_unsafe();
        return true;
      case DataType::kInt64:
        if (json_type == element_type::INT64) {
          cell->int_value = value.get_int64().value_unsafe();
          return true;
        }
        if (json_type == element_type::DOUBLE) {
          const double number = value.get_double().value_unsafe();
          // [-2^63, 2^63): the doubles that convert to int64 exactly when integral.
          if (number >= -9223372036854775808.0 && number < 9223372036854775808.0 && std::trunc(number) == number) {
            cell->int_value = static_cast<int64_t>(number);
            return true;
          }
        }
        break;
      case DataType::kBool:
        if (json_type == element_type::INT64) {
          const int64_t number = value.get_int64().value_unsafe();
          if (number == 0 || number == 1) {
            cell->bool_value = number == 1;
            return true;
          }
        }
        break;
      case DataType::kTimestamp:
      case DataType::kDate: break;
    }
    return BadValue(field, NumberText(value, buf, sizeof(buf)));
  }

  bool BadValue(const Field& field, std::string_view text) {
    AddReject(reject_reason::kBadValue, field.name, text, BadValueMessage(text, field, options_));
    return false;
  }

  void AddReject(std::string_view reason, const std::string& column, std::string_view value,
                 const std::string& what) {
    if (rejects_ == nullptr) return;
    rejects_->Add(MakeReject(path_, lines_->line(), lines_->offset(), reason, column, value, what));
  }

  std::string path_;
  SourceOptions options_;
  RejectSink* rejects_;
  std::unique_ptr<RandomAccessFile> file_;
  std::unique_ptr<LineReader> lines_;
  simdjson::dom::parser parser_;
  std::unordered_map<std::string_view, size_t> column_of_key_;  // views into schema_ names
  static constexpr size_t kNotAColumn = SIZE_MAX;
  static constexpr size_t kMaxKeySlots = 1024;
  struct KeySlot {
    std::string key;
    size_t col_idx = kNotAColumn;
    bool plain = false;  // every byte IsPlainKeyChar: a line that has it unescaped has these bytes
  };
  std::vector<KeySlot> key_slots_;  // by key position: the last key seen there and its column
  std::vector<Cell> cells_;
  std::vector<std::string> scratch_;  // per column: text of numbers and nested values
  uint64_t range_begin_ = 0;
  uint64_t range_end_ = UINT64_MAX;
  uint64_t rows_emitted_ = 0;
  bool done_ = false;
  Status status_;
};

}  // namespace

Result<Schema> InferJsonlSchema(Env* env, const std::string& path, const SourceOptions& options,
                                const TextReadTuning& tuning) {
  using simdjson::dom::element_type;
  ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  LineReader lines(file.get(), path, 0, 1, tuning);
  simdjson::dom::parser parser;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index_of_name;
  std::vector<TypeGuess> guesses;
  for (size_t line_idx = 0; line_idx < options.infer_rows; ++line_idx) {
    ASSIGN_OR_RETURN(const bool more, lines.Next(UINT64_MAX));
    if (!more) break;
    simdjson::dom::object object;
    simdjson::error_code error;
    if (ParseLine(lines, &parser, &object, &error) != LineError::kNone) continue;
    for (const simdjson::dom::key_value_pair field : object) {
      auto [it, inserted] = index_of_name.try_emplace(std::string(field.key), names.size());
      if (inserted) {
        names.emplace_back(field.key);
        guesses.emplace_back();
      }
      TypeGuess& guess = guesses[it->second];
      switch (field.value.type()) {
        case element_type::NULL_VALUE: break;
        case element_type::OBJECT:
        case element_type::ARRAY: guess.AddJsonNested(); break;
        case element_type::BOOL: guess.AddJsonBool(); break;
        case element_type::INT64: guess.AddJsonInteger(); break;
        case element_type::UINT64:
        case element_type::DOUBLE: guess.AddJsonFloat(); break;
        case element_type::STRING: {
          const std::string_view text = field.value.get_string().value_unsafe();
          if (!text.empty()) guess.AddText(text, /*json_string=*/true);
          break;
        }
      }
    }
  }
  Schema schema;
  for (size_t col_idx = 0; col_idx < names.size(); ++col_idx) {
    const auto declared = options.declared_types.find(names[col_idx]);
    schema.AddField(Field{names[col_idx],
                          declared != options.declared_types.end() ? declared->second : guesses[col_idx].Type()});
  }
  for (const auto& [name, type] : options.declared_types) {
    if (!index_of_name.count(name)) schema.AddField(Field{name, type});
  }
  if (schema.num_fields() == 0) {
    return Status::InvalidArgument("input '" + path + "': no JSON object with keys in the first " +
                                   std::to_string(options.infer_rows) + " lines to infer the columns from");
  }
  return schema;
}

Result<std::unique_ptr<Source>> OpenJsonlSource(Env* env, const InputRange& range, const Schema& file_schema,
                                                const SourceOptions& options, RejectSink* rejects,
                                                const TextReadTuning& tuning) {
  auto source = std::make_unique<JsonlSource>(range.path, options, rejects);
  RETURN_IF_ERROR(source->Open(env, range, file_schema, tuning));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace sluice
