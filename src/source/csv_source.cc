#include "source/csv_source.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "batch/value_parse.h"
#include "core/strings.h"
#include "source/source_common.h"

namespace sluice {
namespace {

Status CheckCsvOptions(const CsvOptions& csv) {
  if (csv.delimiter == '\n' || csv.delimiter == '\r') {
    return Status::InvalidArgument("input.csv.delimiter: must not be a newline character");
  }
  if (csv.quote == '\n' || csv.quote == '\r') {
    return Status::InvalidArgument("input.csv.quote: must not be a newline character");
  }
  if (csv.quote != '\0' && csv.quote == csv.delimiter) {
    return Status::InvalidArgument("input.csv.quote: must differ from input.csv.delimiter");
  }
  return Status::OK();
}

// Splits a CSV file into records and fields, from a start offset, reading
// through a ChunkReader. Field positions are relative to the record start and
// stay valid until the next call to Next.
class CsvParser {
 public:
  enum class Outcome { kRecord, kUnterminatedQuote, kEnd };

  CsvParser(const RandomAccessFile* file, std::string path, const CsvOptions& csv, uint64_t start,
            int64_t start_line, const TextReadTuning& tuning)
      : reader_(file, path, start, tuning.chunk_bytes),
        path_(std::move(path)),
        delimiter_(csv.delimiter),
        quote_(csv.quote),
        quoting_(csv.quote != '\0'),
        max_record_bytes_(tuning.max_record_bytes),
        at_file_start_(start == 0),
        line_(start_line) {
    special_.fill(false);
    special_[static_cast<unsigned char>(delimiter_)] = true;
    special_['\n'] = true;
    special_['\r'] = true;
  }

  // Reads the next non-blank record that starts before file offset `limit`.
  // An unterminated quote consumes the rest of the file.
  Result<Outcome> Next(uint64_t limit) {
    if (at_file_start_) {
      at_file_start_ = false;
      ASSIGN_OR_RETURN(pos_, reader_.Utf8BomLength());
    }
    while (true) {
      if (pos_ >= reader_.size()) {
        if (reader_.eof()) return Outcome::kEnd;
        RETURN_IF_ERROR(FillKeeping(pos_));
        continue;
      }
      const uint64_t record_offset = reader_.offset() + pos_;
      if (record_offset >= limit) return Outcome::kEnd;
      const Scan scan = ScanRecord(reader_.data() + pos_, reader_.data() + reader_.size(), reader_.eof());
      if (scan == Scan::kNeedMore) {
        if (reader_.size() - pos_ >= max_record_bytes_) {
          return Status::Corruption(InputLine(path_, line_) + ": record larger than " +
                                    std::to_string(max_record_bytes_) +
                                    " bytes (is a quote never closed?)");
        }
        RETURN_IF_ERROR(FillKeeping(pos_));
        continue;
      }
      record_pos_ = pos_;
      record_offset_ = record_offset;
      record_line_ = line_;
      pos_ += record_bytes_;
      line_ += record_newlines_;
      if (scan == Scan::kUnterminatedQuote) return Outcome::kUnterminatedQuote;
      const bool blank = fields_.size() == 1 && !fields_[0].quoted && fields_[0].end == 0;
      if (!blank) return Outcome::kRecord;
    }
  }

  // How TryNextPlain reads each field of a record.
  enum class FieldKind : uint8_t { kText, kInt64, kFloat64 };
  // A field that TryNextPlain parsed as a number in the same pass.
  struct Number {
    bool parsed = false;  // the whole field is one number of its kind
    int64_t int_value = 0;
    double float_value = 0;
  };

  // The common record in one pass: the whole record is in the window, it has
  // exactly kinds.size() fields, no field starts with a quote, and it ends in LF
  // or CRLF with no other CR. Fields of a number kind are parsed while they are
  // scanned (number(i) says whether field i is exactly one number; the same
  // values ParseInt64 / ParseFloat64 give for text without spaces or '+').
  // False when the record is anything else; then nothing was consumed and Next
  // reads it. A record read here has fields like one read by Next.
  bool TryNextPlain(uint64_t limit, std::span<const FieldKind> kinds) {
    if (at_file_start_ || pos_ >= reader_.size() || reader_.offset() + pos_ >= limit) return false;
    const char* begin = reader_.data() + pos_;
    const char* end = reader_.data() + reader_.size();
    if (*begin == '\n' || *begin == '\r') return false;  // blank line: Next skips it
    const size_t n = kinds.size();
    fields_.resize(n);
    numbers_.resize(n);
    all_numbers_ = true;
    const char* p = begin;
    for (size_t field_idx = 0; field_idx < n; ++field_idx) {
      const char* field_begin = p;
      if (p == end || (quoting_ && *p == quote_)) return false;
      Number& number = numbers_[field_idx];
      number.parsed = false;
      if (kinds[field_idx] == FieldKind::kFloat64) {
        const char* number_end = ParseFloat64Prefix(p, end, &number.float_value);
        number.parsed = number_end != p;
        p = number_end;
      } else if (kinds[field_idx] == FieldKind::kInt64) {
        const auto [ptr, ec] = std::from_chars(p, end, number.int_value);
        number.parsed = ptr != p && ec == std::errc();
        if (number.parsed) p = ptr;
      }
      if (number.parsed && p != end && *p != delimiter_ && *p != '\n' && *p != '\r') number.parsed = false;
      if (!number.parsed) {
        all_numbers_ = false;
        p = FindSpecial(field_begin, end);
      }
      if (p == end) return false;
      fields_[field_idx] = Field{static_cast<size_t>(field_begin - begin), static_cast<size_t>(p - begin)};
      const bool last = field_idx + 1 == n;
      if (*p == delimiter_) {
        if (last) return false;  // more fields than expected
        ++p;
        continue;
      }
      if (!last) return false;  // fewer fields than expected
      if (*p == '\r') {
        if (p + 1 == end || p[1] != '\n') return false;  // a lone CR is data: Next handles it
        ++p;
      }
      ++p;
    }
    record_pos_ = pos_;
    record_offset_ = reader_.offset() + pos_;
    record_line_ = line_;
    record_bytes_ = static_cast<size_t>(p - begin);
    pos_ += record_bytes_;
    ++line_;
    return true;
  }
  // After TryNextPlain: field_idx's number, and whether every field was one.
  const Number& number(size_t field_idx) const { return numbers_[field_idx]; }
  bool all_numbers() const { return all_numbers_; }

  int64_t line() const { return record_line_; }
  uint64_t offset() const { return record_offset_; }
  // File offset and line just after the current record.
  uint64_t next_offset() const { return reader_.offset() + pos_; }
  int64_t next_line() const { return line_; }
  size_t num_fields() const { return fields_.size(); }
  bool quoted(size_t field_idx) const { return fields_[field_idx].quoted; }

  std::string_view RawRecord() const { return {reader_.data() + record_pos_, record_bytes_}; }
  // The record without its line end, for reject values.
  std::string_view RecordText() const {
    std::string_view text = RawRecord();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    return text;
  }
  std::string_view RawField(size_t field_idx) const {
    const Field& f = fields_[field_idx];
    return {reader_.data() + record_pos_ + f.begin, f.end - f.begin};
  }

  // The field's value: unquoted text as is; quoted text without the quotes and
  // with doubled quotes undone (copied into *scratch only when needed).
  std::string_view FieldText(size_t field_idx, std::string* scratch) const {
    const Field& f = fields_[field_idx];
    const char* record = reader_.data() + record_pos_;
    if (!f.quoted) return {record + f.begin, f.end - f.begin};
    if (!f.closed) return {record + f.begin + 1, f.end - f.begin - 1};
    if (!f.doubled_quote && f.quote_end + 1 == f.end) {
      return {record + f.begin + 1, f.quote_end - f.begin - 1};
    }
    scratch->clear();
    for (size_t pos = f.begin + 1; pos < f.quote_end; ++pos) {
      scratch->push_back(record[pos]);
      if (record[pos] == quote_) ++pos;  // the second of a doubled quote
    }
    scratch->append(record + f.quote_end + 1, f.end - f.quote_end - 1);
    return *scratch;
  }

 private:
  enum class Scan { kRecord, kUnterminatedQuote, kNeedMore };

  struct Field {
    size_t begin = 0;      // first byte (the opening quote if quoted)
    size_t end = 0;        // one past the last byte, before the delimiter/newline
    size_t quote_end = 0;  // position of the closing quote
    bool quoted = false;
    bool closed = false;   // the quote was closed
    bool doubled_quote = false;
  };

  Status FillKeeping(size_t keep) {
    Result<size_t> got = reader_.Fill(keep);
    if (!got.ok()) return got.status();
    pos_ -= std::min(pos_, keep);
    return Status::OK();
  }

  // The first delimiter, '\n' or '\r' in [p, limit), or limit. Eight bytes at a
  // time where words are little-endian: a byte equal to c is a zero byte of
  // w ^ (c * 0x01..01), and (x - 0x01..01) & ~x & 0x80..80 marks the lowest zero
  // byte of x exactly (a borrow can only mark bytes above it).
  const char* FindSpecial(const char* p, const char* limit) const {
    if constexpr (std::endian::native == std::endian::little) {
      constexpr uint64_t kOnes = 0x0101010101010101ULL;
      constexpr uint64_t kHighs = 0x8080808080808080ULL;
      const auto zero_bytes = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
      const uint64_t delimiters = kOnes * static_cast<unsigned char>(delimiter_);
      for (; limit - p >= 8; p += 8) {
        uint64_t w;
        std::memcpy(&w, p, sizeof w);
        const uint64_t hits = zero_bytes(w ^ delimiters) | zero_bytes(w ^ (kOnes * '\n')) |
                              zero_bytes(w ^ (kOnes * '\r'));
        if (hits != 0) return p + std::countr_zero(hits) / 8;
      }
    }
    while (p < limit && !special_[static_cast<unsigned char>(*p)]) ++p;
    return p;
  }

  // Scans one record at [begin, limit). kNeedMore when the record may continue
  // past `limit` and the file has more bytes.
  Scan ScanRecord(const char* begin, const char* limit, bool eof) {
    fields_.clear();
    int64_t newlines = 0;
    const char* p = begin;
    while (true) {
      Field field;
      field.begin = static_cast<size_t>(p - begin);
      if (quoting_ && p < limit && *p == quote_) {
        field.quoted = true;
        const char* q = p + 1;
        while (true) {
          const auto* close = static_cast<const char*>(std::memchr(q, quote_, static_cast<size_t>(limit - q)));
          if (close == nullptr) {
            if (!eof) return Scan::kNeedMore;
            field.end = static_cast<size_t>(limit - begin);
            fields_.push_back(field);
            record_bytes_ = field.end;
            record_newlines_ = newlines + std::count(q, limit, '\n');
            return Scan::kUnterminatedQuote;
          }
          // Cannot tell a closing quote from the first of a doubled one yet.
          if (close + 1 == limit && !eof) return Scan::kNeedMore;
          newlines += std::count(q, close, '\n');
          if (close + 1 < limit && close[1] == quote_) {
            field.doubled_quote = true;
            q = close + 2;
            continue;
          }
          field.closed = true;
          field.quote_end = static_cast<size_t>(close - begin);
          p = close + 1;
          break;
        }
      }
      // Unquoted text, or text after a closing quote.
      while (true) {
        p = FindSpecial(p, limit);
        if (p == limit) {
          if (!eof) return Scan::kNeedMore;
          field.end = static_cast<size_t>(p - begin);
          fields_.push_back(field);
          record_bytes_ = field.end;
          record_newlines_ = newlines;
          return Scan::kRecord;
        }
        if (*p != '\r') break;
        if (p + 1 == limit) {
          if (!eof) return Scan::kNeedMore;
          // CR at the very end of the file ends the record.
          field.end = static_cast<size_t>(p - begin);
          fields_.push_back(field);
          record_bytes_ = static_cast<size_t>(limit - begin);
          record_newlines_ = newlines;
          return Scan::kRecord;
        }
        if (p[1] == '\n') {
          field.end = static_cast<size_t>(p - begin);
          fields_.push_back(field);
          record_bytes_ = static_cast<size_t>(p + 2 - begin);
          record_newlines_ = newlines + 1;
          return Scan::kRecord;
        }
        ++p;  // a lone CR is data
      }
      field.end = static_cast<size_t>(p - begin);
      fields_.push_back(field);
      if (*p == '\n') {
        record_bytes_ = static_cast<size_t>(p + 1 - begin);
        record_newlines_ = newlines + 1;
        return Scan::kRecord;
      }
      ++p;  // delimiter: another field follows
    }
  }

  ChunkReader reader_;
  std::string path_;
  char delimiter_;
  char quote_;
  bool quoting_;
  size_t max_record_bytes_;
  bool at_file_start_;
  std::array<bool, 256> special_{};

  size_t pos_ = 0;    // window position of the next record
  int64_t line_ = 1;  // line of the next record
  std::vector<Field> fields_;
  std::vector<Number> numbers_;  // per field, after TryNextPlain
  bool all_numbers_ = false;
  size_t record_pos_ = 0;
  size_t record_bytes_ = 0;
  int64_t record_newlines_ = 0;
  uint64_t record_offset_ = 0;
  int64_t record_line_ = 0;
};

// input.csv.null_values, with the set of their lengths so that most cells are
// ruled out by one bit test.
class NullTokens {
 public:
  explicit NullTokens(const std::vector<std::string>& tokens) : tokens_(tokens) {
    for (const std::string& token : tokens_) {
      if (token.size() < 64) lengths_ |= uint64_t{1} << token.size();
      const char* end = token.data() + token.size();
      double float_value;
      int64_t int_value;
      if (!token.empty() && (ParseFloat64Prefix(token.data(), end, &float_value) == end ||
                             std::from_chars(token.data(), end, int_value).ptr == end)) {
        any_number_ = true;
      }
    }
  }

  // Whether some token is a number as TryNextPlain parses them (a field it
  // parsed can be a null token only then).
  bool any_number() const { return any_number_; }

  bool Contains(std::string_view text) const {
    if (text.size() < 64 && (lengths_ >> text.size() & 1) == 0) return false;
    for (const std::string& token : tokens_) {
      if (text == token) return true;
    }
    return false;
  }

 private:
  std::vector<std::string> tokens_;
  uint64_t lengths_ = 0;  // bit n: a token of n bytes (n < 64)
  bool any_number_ = false;
};

struct Header {
  std::vector<std::string> names;
  uint64_t data_offset = 0;  // first byte after the header
  int64_t data_line = 1;     // line after the header
  bool empty_file = false;   // no header record at all
};

// Reads the header record of `parser` (positioned at the file start).
Result<Header> ReadHeader(CsvParser* parser, const std::string& path) {
  Header header;
  ASSIGN_OR_RETURN(const CsvParser::Outcome outcome, parser->Next(UINT64_MAX));
  if (outcome == CsvParser::Outcome::kEnd) {
    header.empty_file = true;
    header.data_offset = parser->next_offset();
    return header;
  }
  if (outcome == CsvParser::Outcome::kUnterminatedQuote) {
    return Status::Corruption(InputLine(path, parser->line()) + ": unterminated quote in the header");
  }
  const size_t bad = FindInvalidUtf8(parser->RawRecord());
  if (bad != std::string_view::npos) {
    return Status::Corruption(InputLine(path, parser->line()) + ": header is not valid UTF-8 (byte " +
                              std::to_string(parser->offset() + bad) + ")");
  }
  std::string scratch;
  for (size_t field_idx = 0; field_idx < parser->num_fields(); ++field_idx) {
    header.names.emplace_back(parser->FieldText(field_idx, &scratch));
  }
  header.data_offset = parser->next_offset();
  header.data_line = parser->next_line();
  return header;
}

std::vector<std::string> NumberedNames(size_t count) {
  std::vector<std::string> names;
  for (size_t col_idx = 0; col_idx < count; ++col_idx) names.push_back("c" + std::to_string(col_idx));
  return names;
}

class CsvSource final : public ReaderBase {
 public:
  CsvSource(std::string path, const SourceOptions& options, RejectSink* rejects)
      : path_(std::move(path)), options_(options), rejects_(rejects), null_tokens_(options.csv.null_values) {}

  Status Open(Env* env, const InputRange& range, const Schema& file_schema, const TextReadTuning& tuning) {
    RETURN_IF_ERROR(CheckCsvOptions(options_.csv));
    ASSIGN_OR_RETURN(file_, env->NewRandomAccessFile(path_));
    range_end_ = range.end;
    ASSIGN_OR_RETURN(schema_, SelectColumns(path_, file_schema, options_, /*allow_declared_only=*/false));
    RETURN_IF_ERROR(sampler_.Init(path_, schema_, options_));
    limits_.Set(options_.batch_rows, options_.max_batch_bytes);

    uint64_t start = range.begin;
    int64_t start_line = 1;
    if (options_.csv.header) {
      // A range that starts past the file start needs only the header's names:
      // read them in a small chunk (the window grows if the header is longer).
      TextReadTuning header_tuning = tuning;
      if (range.begin > 0) header_tuning.chunk_bytes = std::min<size_t>(tuning.chunk_bytes, 16 << 10);
      auto header_parser = std::make_unique<CsvParser>(file_.get(), path_, options_.csv, 0, 1, header_tuning);
      ASSIGN_OR_RETURN(Header header, ReadHeader(header_parser.get(), path_));
      if (header.empty_file) {
        done_ = true;
        return Status::OK();
      }
      names_ = std::move(header.names);
      if (start <= header.data_offset) {
        start = header.data_offset;
        start_line = header.data_line;
        parser_ = std::move(header_parser);  // continue right after the header
      }
    } else {
      for (const Field& field : file_schema.fields()) names_.push_back(field.name);
    }
    if (!parser_) {
      ASSIGN_OR_RETURN(start_line, LineAt(file_.get(), path_, start, range.first_line, tuning.chunk_bytes));
      parser_ = std::make_unique<CsvParser>(file_.get(), path_, options_.csv, start, start_line, tuning);
    }
    range_begin_ = range.begin;

    for (const Field& field : schema_.fields()) {
      const auto found = std::find(names_.begin(), names_.end(), field.name);
      if (found == names_.end()) {
        return Status::NotFound("input '" + path_ + "': no column '" + field.name +
                                "' (columns: " + JoinNames(names_) + ")");
      }
      field_of_column_.push_back(static_cast<size_t>(found - names_.begin()));
    }
    // Fields of number columns are parsed while the record is scanned.
    field_kinds_.assign(names_.size(), CsvParser::FieldKind::kText);
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      const DataType type = schema_.field(col_idx).type;
      CsvParser::FieldKind& kind = field_kinds_[field_of_column_[col_idx]];
      if (type == DataType::kInt64) kind = CsvParser::FieldKind::kInt64;
      if (type == DataType::kFloat64 || type == DataType::kFloat32) kind = CsvParser::FieldKind::kFloat64;
    }
    cells_.resize(schema_.num_fields());
    scratch_.resize(schema_.num_fields());
    return Status::OK();
  }

  uint64_t bytes_read() const override {
    return parser_ ? parser_->next_offset() - std::min(range_begin_, parser_->next_offset()) : 0;
  }

  Result<bool> Next(Batch* batch) override {
    if (!status_.ok()) return status_;
    batch->Reset(schema_);
    batch->first_row = rows_emitted_;
    size_t rows = 0;
    const uint64_t batch_begin = parser_ ? parser_->next_offset() : 0;
    while (!done_ && !limits_.Full(rows, parser_->next_offset() - batch_begin)) {
      if (parser_->TryNextPlain(range_end_, field_kinds_)) {
        if (AddRecord(batch, /*plain=*/true)) ++rows;
        continue;
      }
      Result<CsvParser::Outcome> outcome = parser_->Next(range_end_);
      if (!outcome.ok()) {
        status_ = outcome.status();
        return status_;
      }
      switch (*outcome) {
        case CsvParser::Outcome::kEnd: done_ = true; break;
        case CsvParser::Outcome::kUnterminatedQuote:
          AddReject(reject_reason::kUnterminatedQuote, "", parser_->RecordText(),
                 "unterminated quote; the record runs to the end of the file");
          break;
        case CsvParser::Outcome::kRecord:
          if (AddRecord(batch, /*plain=*/false)) ++rows;
          break;
      }
    }
    rows_emitted_ += rows;
    return rows > 0;
  }

 private:
  // Converts the current record into the batch, or rejects it, or leaves it
  // out of the sample. True if added. `plain`: the record was read by
  // TryNextPlain (field count checked, numbers parsed).
  bool AddRecord(Batch* batch, bool plain) {
    if (!(plain && parser_->all_numbers()) && !IsValidUtf8(parser_->RawRecord())) {
      for (size_t field_idx = 0; field_idx < parser_->num_fields(); ++field_idx) {
        const std::string_view raw = parser_->RawField(field_idx);
        const size_t bad = FindInvalidUtf8(raw);
        if (bad == std::string_view::npos) continue;
        const std::string column = field_idx < names_.size() ? names_[field_idx] : "c" + std::to_string(field_idx);
        const uint64_t bad_offset =
            parser_->offset() + static_cast<uint64_t>(raw.data() - parser_->RawRecord().data()) + bad;
        AddReject(reject_reason::kInvalidUtf8, column, raw,
               "invalid UTF-8 at byte " + std::to_string(bad_offset) + ": " + MessageValue(raw));
        return false;
      }
    }
    if (!plain && parser_->num_fields() != names_.size()) {
      AddReject(reject_reason::kRaggedRow, "", parser_->RecordText(),
             "expected " + std::to_string(names_.size()) + " fields, found " +
                 std::to_string(parser_->num_fields()));
      return false;
    }
    if (plain && !sampler_.active() && AppendNumbers(batch)) return true;
    for (size_t col_idx = 0; col_idx < cells_.size(); ++col_idx) {
      const size_t field_idx = field_of_column_[col_idx];
      const std::string_view text = parser_->FieldText(field_idx, &scratch_[col_idx]);
      Cell& cell = cells_[col_idx];
      if (!parser_->quoted(field_idx) && null_tokens_.Contains(text)) {
        cell.is_null = true;
        continue;
      }
      if (plain && parser_->number(field_idx).parsed) {
        cell.is_null = false;
        cell.int_value = parser_->number(field_idx).int_value;
        cell.float_value = parser_->number(field_idx).float_value;
        continue;
      }
      const Field& field = schema_.field(col_idx);
      if (!ParseTextCell(text, field.type, &cell)) {
        AddReject(reject_reason::kBadValue, field.name, text, BadValueMessage(text, field, options_));
        return false;
      }
    }
    if (!sampler_.Keep(cells_, parser_->line())) return false;
    for (size_t col_idx = 0; col_idx < cells_.size(); ++col_idx) {
      AppendCell(cells_[col_idx], &batch->columns[col_idx]);
    }
    batch->row_lines.push_back(parser_->line());
    return true;
  }

  // A record read by TryNextPlain whose selected fields all parsed as numbers
  // cannot be rejected: its values go straight into the batch. False, with
  // nothing appended, for any other record.
  bool AppendNumbers(Batch* batch) {
    for (const size_t field_idx : field_of_column_) {
      if (!parser_->number(field_idx).parsed) return false;
    }
    for (size_t col_idx = 0; col_idx < field_of_column_.size(); ++col_idx) {
      const size_t field_idx = field_of_column_[col_idx];
      const CsvParser::Number& number = parser_->number(field_idx);
      Column& column = batch->columns[col_idx];
      if (null_tokens_.any_number() && null_tokens_.Contains(parser_->RawField(field_idx))) {
        column.AppendNull();
      } else if (column.type() == DataType::kInt64) {
        column.AppendInt64(number.int_value);
      } else if (column.type() == DataType::kFloat64) {
        column.AppendFloat64(number.float_value);
      } else {
        column.AppendFloat32(static_cast<float>(number.float_value));
      }
    }
    batch->row_lines.push_back(parser_->line());
    return true;
  }

  void AddReject(std::string_view reason, const std::string& column, std::string_view value,
                 const std::string& what) {
    if (rejects_ == nullptr) return;
    rejects_->Add(MakeReject(path_, parser_->line(), parser_->offset(), reason, column, value, what));
  }

  std::string path_;
  SourceOptions options_;
  RejectSink* rejects_;
  NullTokens null_tokens_;  // options_.csv.null_values
  std::unique_ptr<RandomAccessFile> file_;
  std::unique_ptr<CsvParser> parser_;
  std::vector<std::string> names_;          // this file's columns
  std::vector<size_t> field_of_column_;     // schema_ column -> field index
  std::vector<CsvParser::FieldKind> field_kinds_;  // per field of the file
  std::vector<Cell> cells_;
  std::vector<std::string> scratch_;        // per column, for unescaped quoted fields
  uint64_t range_begin_ = 0;
  uint64_t range_end_ = UINT64_MAX;
  uint64_t rows_emitted_ = 0;
  bool done_ = false;
  Status status_;
};

}  // namespace

Result<Schema> InferCsvSchema(Env* env, const std::string& path, const SourceOptions& options,
                              const TextReadTuning& tuning) {
  RETURN_IF_ERROR(CheckCsvOptions(options.csv));
  ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  CsvParser parser(file.get(), path, options.csv, 0, 1, tuning);
  std::vector<std::string> names;
  if (options.csv.header) {
    ASSIGN_OR_RETURN(Header header, ReadHeader(&parser, path));
    if (header.empty_file) return Status::InvalidArgument("input '" + path + "': file is empty (no header row)");
    names = std::move(header.names);
    for (size_t col_idx = 0; col_idx < names.size(); ++col_idx) {
      if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(col_idx), names[col_idx]) !=
          names.begin() + static_cast<std::ptrdiff_t>(col_idx)) {
        return Status::InvalidArgument("input '" + path + "' line 1: column '" + names[col_idx] +
                                       "' appears twice in the header");
      }
    }
  }

  std::vector<TypeGuess> guesses(names.size());
  const NullTokens null_tokens(options.csv.null_values);
  std::string scratch;
  bool have_columns = options.csv.header;
  // Without a header the first good record counts the columns, even if infer_rows is 0.
  for (size_t record_idx = 0; record_idx < options.infer_rows || !have_columns; ++record_idx) {
    ASSIGN_OR_RETURN(const CsvParser::Outcome outcome, parser.Next(UINT64_MAX));
    if (outcome == CsvParser::Outcome::kEnd) break;
    if (outcome != CsvParser::Outcome::kRecord || !IsValidUtf8(parser.RawRecord())) continue;
    if (!have_columns) {
      names = NumberedNames(parser.num_fields());
      guesses.resize(names.size());
      have_columns = true;
    }
    if (parser.num_fields() != names.size() || record_idx >= options.infer_rows) continue;
    for (size_t col_idx = 0; col_idx < names.size(); ++col_idx) {
      const std::string_view text = parser.FieldText(col_idx, &scratch);
      if (text.empty() || (!parser.quoted(col_idx) && null_tokens.Contains(text))) continue;
      guesses[col_idx].AddText(text);
    }
  }
  if (!have_columns) {
    return Status::InvalidArgument("input '" + path +
                                   "': no record to count the columns of (input.csv.header is false)");
  }

  Schema schema;
  for (size_t col_idx = 0; col_idx < names.size(); ++col_idx) {
    const auto declared = options.declared_types.find(names[col_idx]);
    schema.AddField(Field{names[col_idx],
                          declared != options.declared_types.end() ? declared->second : guesses[col_idx].Type()});
  }
  return schema;
}

Result<std::unique_ptr<Source>> OpenCsvSource(Env* env, const InputRange& range, const Schema& file_schema,
                                              const SourceOptions& options, RejectSink* rejects,
                                              const TextReadTuning& tuning) {
  auto source = std::make_unique<CsvSource>(range.path, options, rejects);
  RETURN_IF_ERROR(source->Open(env, range, file_schema, tuning));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace sluice
