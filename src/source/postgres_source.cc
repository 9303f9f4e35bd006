#include "source/postgres_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

#include "core/strings.h"
#include "db/postgres_conn.h"
#include "source/source_common.h"

namespace sluice {
namespace {

// Rows asked of the first fetch of a batch limited by bytes, before any row width is known.
constexpr size_t kFirstFetchRows = 16;

template <typename T>
T LoadBigEndian(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(T) == 8) {
      v = std::bit_cast<T>(__builtin_bswap64(std::bit_cast<uint64_t>(v)));
    } else {
      v = std::bit_cast<T>(__builtin_bswap32(std::bit_cast<uint32_t>(v)));
    }
  }
  return v;
}

// The cast that makes the server send a column of `type` in the binary layout read below.
std::string_view WireCast(DataType type) {
  switch (type) {
    case DataType::kInt64: return "int8";
    case DataType::kFloat32: return "float4";
    case DataType::kFloat64: return "float8";
    case DataType::kBool: return "bool";
    case DataType::kString: return "text";
    case DataType::kTimestamp:
    case DataType::kDate: return "timestamptz";  // a date arrives as its midnight, UTC
  }
  return "text";
}

size_t WireSize(DataType type) {
  switch (type) {
    case DataType::kInt64:
    case DataType::kFloat64:
    case DataType::kTimestamp:
    case DataType::kDate: return 8;
    case DataType::kFloat32: return 4;
    case DataType::kBool: return 1;
    case DataType::kString: return 0;
  }
  return 0;
}

class PostgresSource final : public ReaderBase {
 public:
  PostgresSource(const InputRange& range, const SourceOptions& options, RejectSink* rejects)
      : options_(options),
        rejects_(rejects),
        name_(RedactConnection(range.path) + " " + PgRelationName(options.table)),
        what_(PgRelationName(options.table) + (range.label.empty() ? "" : " " + range.label)),
        label_(range.label) {}

  Status Open(const InputRange& range, const Schema& file_schema) {
    ASSIGN_OR_RETURN(schema_, SelectColumns(name_, file_schema, options_, /*allow_declared_only=*/false));
    RETURN_IF_ERROR(sampler_.Init(name_, schema_, options_));
    limits_.Set(options_.batch_rows, options_.max_batch_bytes);
    cells_.resize(schema_.num_fields());
    std::string select = "SELECT ";
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      const Field& f = schema_.field(col_idx);
      if (col_idx > 0) select += ", ";
      select += fmt::format("q.{}::{}", PgQuoteIdentifier(f.name), WireCast(f.type));
    }
    select += " FROM " + PgRelation(options_.table, options_.query) + " q";
    if (!range.filter.empty()) select += " WHERE " + PgNumberPlaceholders(range.filter);

    ASSIGN_OR_RETURN(conn_, PgConnection::Connect(range.path, "input.path"));
    RETURN_IF_ERROR(conn_->Exec("BEGIN READ ONLY", what_).status());
    std::vector<std::string> cast;
    for (const Field& f : schema_.fields()) {
      if (options_.declared_types.count(f.name)) cast.push_back(f.name);
    }
    if (!cast.empty()) cast_hint_ = " (columns read as their input.schema types: " + JoinNames(cast) + ")";
    return WithCastHint(conn_->ExecParams("DECLARE sluice_cursor BINARY NO SCROLL CURSOR FOR " + select, range.params,
                                          what_)
                            .status());
  }

  uint64_t bytes_read() const override { return bytes_read_; }

  Result<bool> Next(Batch* batch) override {
    if (!status_.ok()) return status_;
    batch->Reset(schema_);
    batch->first_row = rows_emitted_;
    size_t rows = 0;
    uint64_t bytes = 0;
    while (!limits_.Full(rows, bytes)) {
      if (res_row_ == res_rows_) {
        if (done_) break;
        const Status fetched = Fetch(rows, bytes);
        if (!fetched.ok()) {
          status_ = fetched;
          return status_;
        }
        if (res_rows_ == 0) {
          done_ = true;
          result_.reset();
          conn_.reset();  // the read-only transaction ends with the connection
          break;
        }
      }
      const uint64_t row_bytes = RowBytes(res_row_);
      bytes += row_bytes;
      bytes_read_ += row_bytes;
      ++ordinal_;
      const Result<bool> kept = AddRow(res_row_++, batch);
      if (!kept.ok()) {
        status_ = kept.status();
        return status_;
      }
      if (*kept) ++rows;
    }
    rows_emitted_ += rows;
    return rows > 0;
  }

 private:
  // Fetches the next rows for a batch holding `rows` rows of `bytes` so far.
  Status Fetch(size_t rows, uint64_t bytes) {
    size_t want = limits_.rows() - std::min(rows, limits_.rows() - 1);
    if (limits_.bytes() > 0) {
      if (rows_fetched_ == 0) {
        want = std::min(want, kFirstFetchRows);
      } else {
        const uint64_t avg = std::max<uint64_t>(1, bytes_read_ / rows_fetched_);
        const uint64_t room = limits_.bytes() > bytes ? limits_.bytes() - bytes : 0;
        want = std::min<size_t>(want, std::max<uint64_t>(1, room / avg + 1));
      }
    }
    result_.reset();
    Result<PgResult> fetched = conn_->Exec(fmt::format("FETCH FORWARD {} FROM sluice_cursor", want), what_);
    if (!fetched.ok()) return WithCastHint(fetched.status());
    result_ = std::move(*fetched);
    res_rows_ = static_cast<size_t>(PQntuples(result_.get()));
    res_row_ = 0;
    rows_fetched_ += res_rows_;
    if (res_rows_ > 0 && static_cast<size_t>(PQnfields(result_.get())) != schema_.num_fields()) {
      return Status::Internal(fmt::format("{}: the cursor returned {} columns, expected {}", what_,
                                          PQnfields(result_.get()), schema_.num_fields()));
    }
    return Status::OK();
  }

  // A value the server could not cast may be one of a declared type: say which columns are.
  Status WithCastHint(const Status& st) const {
    if (st.ok() || cast_hint_.empty() || st.code() != StatusCode::kInvalidArgument) return st;
    return Status(st.code(), st.message() + cast_hint_);
  }

  uint64_t RowBytes(size_t row) const {
    uint64_t bytes = 0;
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      bytes += 4 + static_cast<uint64_t>(PQgetlength(result_.get(), static_cast<int>(row), static_cast<int>(col_idx)));
    }
    return bytes;
  }

  // Stages row `row` of the fetched result and appends it unless it is
  // rejected or sampled out. Returns whether it was appended.
  Result<bool> AddRow(size_t row, Batch* batch) {
    const PGresult* res = result_.get();
    const int r = static_cast<int>(row);
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      const int c = static_cast<int>(col_idx);
      Cell& cell = cells_[col_idx];
      cell.is_null = PQgetisnull(res, r, c) != 0;
      if (cell.is_null) continue;
      const char* v = PQgetvalue(res, r, c);
      const size_t len = static_cast<size_t>(PQgetlength(res, r, c));
      const DataType type = schema_.field(col_idx).type;
      if (type != DataType::kString && len != WireSize(type)) {
        return Status::Corruption(fmt::format("{}: column '{}' value of {} bytes, expected {} ({})", what_,
                                              schema_.field(col_idx).name, len, WireSize(type), DataTypeName(type)));
      }
      switch (type) {
        case DataType::kInt64: cell.int_value = LoadBigEndian<int64_t>(v); break;
        case DataType::kFloat32: cell.float_value = LoadBigEndian<float>(v); break;
        case DataType::kFloat64: cell.float_value = LoadBigEndian<double>(v); break;
        case DataType::kBool: cell.bool_value = v[0] != 0; break;
        case DataType::kString: cell.text = std::string_view(v, len); break;
        case DataType::kTimestamp:
        case DataType::kDate: {
          const int64_t pg = LoadBigEndian<int64_t>(v);
          if (pg == std::numeric_limits<int64_t>::max() || pg == std::numeric_limits<int64_t>::min()) {
            Reject(col_idx, reject_reason::kBadValue, pg > 0 ? "infinity" : "-infinity",
                   "an infinite timestamp has no timestamp value");
            return false;
          }
          if ((pg > 0 && kPgEpochMicros > std::numeric_limits<int64_t>::max() - pg)) {
            Reject(col_idx, reject_reason::kBadValue, "", "timestamp out of range");
            return false;
          }
          cell.int_value = pg + kPgEpochMicros;
          break;
        }
      }
    }
    if (!sampler_.Keep(cells_, ordinal_)) return false;
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) AppendCell(cells_[col_idx], &batch->columns[col_idx]);
    batch->row_lines.push_back(ordinal_);
    return true;
  }

  void Reject(size_t col_idx, std::string_view reason, std::string_view value, const std::string& what) {
    sluice::Reject r;
    r.file = name_;
    r.line = ordinal_;
    r.column = schema_.field(col_idx).name;
    r.value = RejectValue(value);
    r.reason = std::string(reason);
    r.message = fmt::format("input '{}'{} row {}, column '{}': {}", name_, label_.empty() ? "" : " " + label_, ordinal_,
                            r.column, what);
    rejects_->Add(std::move(r));
  }

  const SourceOptions options_;
  RejectSink* rejects_;
  const std::string name_;   // "<redacted database> table t" for rejects
  const std::string what_;   // "table t <label>" for errors (the runner adds the database)
  const std::string label_;
  std::string cast_hint_;  // names the columns cast to declared types, for cast errors
  std::unique_ptr<PgConnection> conn_;
  PgResult result_;  // the last fetch
  size_t res_rows_ = 0;
  size_t res_row_ = 0;  // next row of result_ to read
  std::vector<Cell> cells_;
  Status status_;
  bool done_ = false;
  int64_t ordinal_ = 0;  // rows read from the cursor, 1-based number of the current one
  uint64_t rows_fetched_ = 0;
  uint64_t rows_emitted_ = 0;
  uint64_t bytes_read_ = 0;
};

}  // namespace

Result<Schema> InferPostgresSchema(const std::string& database, const SourceOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(database, "input.path"));
  const std::string what = (options.table.empty() ? "input.query" : "input.table '" + options.table + "'") + " in " +
                           conn->redacted();
  ASSIGN_OR_RETURN(PgResult res,
                   conn->Exec("SELECT * FROM " + PgRelation(options.table, options.query) + " q LIMIT 0", what));
  Schema schema;
  std::set<std::string> seen;
  for (int col_idx = 0; col_idx < PQnfields(res.get()); ++col_idx) {
    std::string name = PQfname(res.get(), col_idx);
    if (!seen.insert(name).second) {
      return Status::InvalidArgument(
          fmt::format("{}: column '{}' appears twice in the result; give the columns distinct names (AS)", what, name));
    }
    const auto declared = options.declared_types.find(name);
    const DataType type =
        declared != options.declared_types.end() ? declared->second : PgColumnType(PQftype(res.get(), col_idx));
    schema.AddField(Field{std::move(name), type});
  }
  return schema;
}

Result<std::unique_ptr<Source>> OpenPostgresSource(const InputRange& range, const Schema& file_schema,
                                                   const SourceOptions& options, RejectSink* rejects) {
  auto source = std::make_unique<PostgresSource>(range, options, rejects);
  RETURN_IF_ERROR(source->Open(range, file_schema));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace sluice
