// PlanSqliteUnits: units of a SQLite table or query (see planner.h).
//
// Every row of the input belongs to exactly one unit whatever the data holds:
// range units are open at both ends ("c < b1", "c >= b1 AND c < b2", …,
// "c >= bn"), NULLs have a unit of their own ("c IS NULL"), and SQLite's
// comparison order (NULL < numbers < text < BLOB, the column's collation) is
// total, so a value of an unexpected storage class still lands in one unit.
#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "batch/value_parse.h"
#include "db/sqlite_db.h"
#include "core/strings.h"
#include "plan/planner.h"
#include "plan/time_window.h"
#include "sink/partition_layout.h"
#include "sink/value_format.h"
#include "source/source_common.h"
#include "source/sqlite_source.h"

namespace sluice {
namespace {

// More units than this is a misconfigured partition (a column with a distinct
// value per row, hourly windows over centuries).
constexpr size_t kMaxUnits = 100000;
// Rows sampled to estimate the bytes of a row when dbstat cannot say.
constexpr int kSampleRows = 1000;
// Rowids kept when a table is cut into rowid ranges (8 MiB).
constexpr size_t kMaxRowidSamples = size_t{1} << 20;

// A timestamp text as the source reads it (UTC micros), or nullopt for NULL,
// other storage classes and text that is no timestamp.
std::optional<int64_t> TimestampArg(sqlite3_value* value) {
  if (sqlite3_value_type(value) != SQLITE_TEXT) return std::nullopt;
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
  return ParseTimestamp(std::string_view(text, static_cast<size_t>(sqlite3_value_bytes(value))));
}

// sluice_micros(value): TimestampArg, NULL when there is none.
void MicrosFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const std::optional<int64_t> micros = TimestampArg(argv[0]);
  if (micros) {
    sqlite3_result_int64(context, *micros);
  } else {
    sqlite3_result_null(context);
  }
}

// sluice_window(value, window): the start of the window holding the
// timestamp; `window` is static_cast<int>(TimeWindow).
void WindowFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const std::optional<int64_t> micros = TimestampArg(argv[0]);
  if (micros) {
    sqlite3_result_int64(context, WindowStart(*micros, static_cast<TimeWindow>(sqlite3_value_int(argv[1]))));
  } else {
    sqlite3_result_null(context);
  }
}

// A bound of a range unit: its value and its text for labels.
struct Bound {
  SqlParam value;
  std::string text;
};

class SqlitePlanner {
 public:
  SqlitePlanner(const InputSpec& input, const PartitionSpec& partition) : input_(input), partition_(partition) {}

  Result<Plan> Run() {
    ASSIGN_OR_RETURN(in_, OpenSqliteInput(input_.database, input_.table, input_.query));
    plan_.format = InputFormat::kSqlite;
    using Function = void (*)(sqlite3_context*, int, sqlite3_value**);
    for (const auto& [name, args, fn] : {std::tuple<const char*, int, Function>{"sluice_micros", 1, MicrosFunction},
                                         std::tuple<const char*, int, Function>{"sluice_window", 2, WindowFunction}}) {
      const int rc = sqlite3_create_function_v2(in_.db->handle(), name, args, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                                nullptr, fn, nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) return in_.db->Error(rc).WithContext(in_.key);
    }
    if (!partition_.column.empty()) RETURN_IF_ERROR(FindColumn());
    switch (partition_.by) {
      case PartitionBy::kFiles: RETURN_IF_ERROR(WholeInput()); break;
      case PartitionBy::kSize:
        if (!in_.rowid.empty()) {
          RETURN_IF_ERROR(RowidRanges());
        } else if (!partition_.column.empty()) {
          RETURN_IF_ERROR(ColumnRanges());
        } else {
          RETURN_IF_ERROR(WholeInput());
        }
        break;
      case PartitionBy::kTime: RETURN_IF_ERROR(TimeWindows()); break;
      case PartitionBy::kColumn: RETURN_IF_ERROR(DistinctValues()); break;
      case PartitionBy::kHash: RETURN_IF_ERROR(HashBuckets()); break;
    }
    ASSIGN_OR_RETURN(const uint64_t bytes, InputBytes());
    for (WorkUnit& unit : plan_.units) {
      unit.est_bytes = total_rows_ > 0 ? static_cast<uint64_t>(static_cast<double>(bytes) * static_cast<double>(unit.est_rows) /
                                                               static_cast<double>(total_rows_))
                                       : 0;
    }
    return std::move(plan_);
  }

 private:
  // Prepares `sql` (with "{from}" standing for the input's FROM clause) and binds `params`.
  Result<SqliteStmt> Query(const std::string& sql, const std::vector<SqlParam>& params = {}) {
    std::string text = sql;
    const size_t at = text.find("{from}");
    if (at != std::string::npos) text.replace(at, 6, in_.from);
    Result<SqliteStmt> stmt = in_.db->Prepare(text);
    if (!stmt.ok()) return stmt.status().WithContext(in_.key);
    RETURN_IF_ERROR(stmt->BindAll(params));
    return stmt;
  }

  Status Step(SqliteStmt* stmt, bool* row) {
    Result<bool> r = stmt->Step();
    if (!r.ok()) return r.status().WithContext(in_.key);
    *row = *r;
    return Status::OK();
  }

  // The partition column: quoted for SQL, and its Sluice type (input.schema,
  // else as the source infers it).
  Status FindColumn() {
    const auto found = std::find(in_.columns.begin(), in_.columns.end(), partition_.column);
    if (found == in_.columns.end()) {
      return Status::InvalidArgument("partition.column: no column '" + partition_.column + "' in '" + in_.name +
                                     "' (columns: " + JoinNames(in_.columns) + ")");
    }
    column_sql_ = QuoteSqliteIdentifier(partition_.column);
    SourceOptions options;
    options.format = InputFormat::kSqlite;
    options.table = input_.table;
    options.query = input_.query;
    options.declared_types = input_.schema;
    ASSIGN_OR_RETURN(const Schema schema, InferSqliteSchema(input_.database, options));
    column_type_ = schema.field(static_cast<size_t>(found - in_.columns.begin())).type;
    return Status::OK();
  }

  Status CheckColumnType(std::initializer_list<DataType> types, std::string_view what) const {
    if (std::find(types.begin(), types.end(), column_type_) != types.end()) return Status::OK();
    return Status::InvalidArgument("partition.column: '" + partition_.column + "' in '" + in_.name + "' is " +
                                   std::string(DataTypeName(column_type_)) + "; " + std::string(what) +
                                   " (declare its type under input.schema if it is read wrongly)");
  }

  Result<int64_t> CountRows() {
    ASSIGN_OR_RETURN(SqliteStmt stmt, Query("SELECT count(*) FROM {from}"));
    bool row = false;
    RETURN_IF_ERROR(Step(&stmt, &row));
    return stmt.ColumnInt64(0);
  }

  // Bytes of the input (total_rows_ set): the table's pages (dbstat), else
  // rows times the mean size of the first rows' values (text and BLOB bytes, 8
  // per number).
  Result<uint64_t> InputBytes() {
    if (!bytes_) {
      ASSIGN_OR_RETURN(bytes_, MeasureBytes());
    }
    return *bytes_;
  }

  Result<uint64_t> MeasureBytes() {
    if (!input_.table.empty()) {
      Result<SqliteStmt> pages = in_.db->Prepare("SELECT sum(pgsize) FROM dbstat WHERE name = ? AND aggregate = TRUE");
      bool row = false;
      if (pages.ok() && pages->BindText(1, input_.table).ok() && Step(&*pages, &row).ok() && row &&
          pages->ColumnType(0) != SQLITE_NULL) {
        return static_cast<uint64_t>(pages->ColumnInt64(0));
      }
    }
    ASSIGN_OR_RETURN(SqliteStmt sample, Query("SELECT * FROM {from} LIMIT ?", {int64_t{kSampleRows}}));
    uint64_t bytes = 0;
    int64_t sampled = 0;
    for (bool row = true;;) {
      RETURN_IF_ERROR(Step(&sample, &row));
      if (!row) break;
      ++sampled;
      for (int col = 0; col < sample.column_count(); ++col) {
        const int type = sample.ColumnType(col);
        bytes += type == SQLITE_TEXT || type == SQLITE_BLOB
                     ? static_cast<uint64_t>(sqlite3_column_bytes(sample.get(), col))
                     : 8;
      }
    }
    if (sampled == 0) return uint64_t{0};
    return static_cast<uint64_t>(static_cast<double>(bytes) / static_cast<double>(sampled) * static_cast<double>(total_rows_));
  }

  // Units toward partition.target_bytes for an input of `bytes` and `rows`.
  size_t UnitsFor(uint64_t bytes, int64_t rows) const {
    const uint64_t target = std::max<uint64_t>(partition_.target_bytes, 1);
    const uint64_t n = (bytes + target - 1) / target;
    return static_cast<size_t>(std::clamp<uint64_t>(n, 1, std::min<uint64_t>(static_cast<uint64_t>(rows), kMaxUnits)));
  }

  void AddUnit(std::string filter, std::vector<SqlParam> params, std::string label, int64_t est_rows, bool exact) {
    // est_bytes: at the end of Run
    AddDatabaseUnit(&plan_, input_.database, std::move(filter), std::move(params), std::move(label), est_rows, exact);
  }

  Status WholeInput() {
    ASSIGN_OR_RETURN(total_rows_, CountRows());
    AddUnit("", {}, "", total_rows_, true);
    return Status::OK();
  }

  // Ranges of about equal row counts, from one pass over the rowids in order
  // that keeps every step-th rowid (step doubling to bound the memory), so
  // units hold exactly counted rows whatever the gaps in the rowids.
  Status RowidRanges() {
    const std::string& r = in_.rowid;
    ASSIGN_OR_RETURN(SqliteStmt scan, Query("SELECT " + r + " FROM {from} ORDER BY " + r));
    std::vector<int64_t> samples;  // the rowid at position k * step, k = 0, 1, …
    int64_t step = 1;
    int64_t max = 0;
    for (bool row = true;;) {
      RETURN_IF_ERROR(Step(&scan, &row));
      if (!row) break;
      max = scan.ColumnInt64(0);
      if (total_rows_ % step == 0) {
        samples.push_back(max);
        if (samples.size() > kMaxRowidSamples) {
          for (size_t k = 0; 2 * k < samples.size(); ++k) samples[k] = samples[2 * k];
          samples.resize((samples.size() + 1) / 2);
          step *= 2;
        }
      }
      ++total_rows_;
    }
    if (total_rows_ == 0) return WholeInput();
    ASSIGN_OR_RETURN(const uint64_t bytes, InputBytes());
    const auto n = static_cast<int64_t>(UnitsFor(bytes, total_rows_));
    const int64_t stride = ((total_rows_ + n - 1) / n + step - 1) / step * step;
    const std::string filter = r + " >= ? AND " + r + " <= ?";
    for (int64_t begin = 0; begin < total_rows_; begin += stride) {
      const int64_t first = samples[static_cast<size_t>(begin / step)];
      const bool last_unit = begin + stride >= total_rows_;
      const int64_t last = last_unit ? max : samples[static_cast<size_t>((begin + stride) / step)] - 1;
      AddUnit(filter, {first, last}, "rowid " + std::to_string(first) + "-" + std::to_string(last),
              last_unit ? total_rows_ - begin : stride, true);
    }
    return Status::OK();
  }

  // The unit of NULLs, when there are some.
  void AddNullUnit(int64_t nulls) {
    if (nulls > 0) AddUnit(column_sql_ + " IS NULL", {}, partition_.column + " is null", nulls, true);
  }

  // Units cut at ascending `bounds`: "< b1", "[b1, b2)", …, ">= bn" (none: all
  // non-null rows), with their row estimates (bounds.size() + 1 of them).
  void AddRangeUnits(const std::vector<Bound>& bounds, const std::vector<int64_t>& rows, bool exact) {
    const std::string& c = column_sql_;
    const std::string& name = partition_.column;
    if (bounds.empty()) {
      AddUnit(c + " IS NOT NULL", {}, name + " is not null", rows[0], exact);
      return;
    }
    AddUnit(c + " < ?", {bounds[0].value}, name + " < " + bounds[0].text, rows[0], exact);
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      AddUnit(c + " >= ? AND " + c + " < ?", {bounds[i].value, bounds[i + 1].value},
              name + " in [" + bounds[i].text + ", " + bounds[i + 1].text + ")", rows[i + 1], exact);
    }
    AddUnit(c + " >= ?", {bounds.back().value}, name + " >= " + bounds.back().text, rows[bounds.size()], exact);
  }

  // A timestamp bound as text that compares with the column's values: the
  // date and time with the separator its values use (' ' or 'T'), trailing
  // zero parts left out ("2024-01-05", "2024-01-05 13", "2024-01-05 13:30").
  Result<Bound> TimestampBound(int64_t micros) {
    if (separator_ == '\0') {
      ASSIGN_OR_RETURN(SqliteStmt first,
                       Query("SELECT " + column_sql_ + " FROM {from} WHERE typeof(" + column_sql_ + ") = 'text' LIMIT 1"));
      bool row = false;
      RETURN_IF_ERROR(Step(&first, &row));
      const std::string_view text = row ? first.ColumnText(0) : std::string_view();
      separator_ = text.size() > 10 && text[10] == ' ' ? ' ' : 'T';
    }
    std::string text;
    AppendFixedTimestampText(micros, &text);  // 2024-01-05T13:30:00.000000Z
    text.pop_back();
    const size_t date_end = text.find('T');
    text[date_end] = separator_;
    for (const std::string_view zero : {".000000", ":00", ":00"}) {
      if (!text.ends_with(zero)) break;
      text.resize(text.size() - zero.size());
    }
    if (text.size() == date_end + 3 && text.ends_with("00")) text.resize(date_end);
    Bound bound;
    bound.value = text;
    bound.text = text;
    return bound;
  }

  // partition.by size without a rowid: even ranges of an integer or timestamp column.
  Status ColumnRanges() {
    RETURN_IF_ERROR(CheckColumnType({DataType::kInt64, DataType::kTimestamp},
                                    "partition.by size cuts ranges of an int64 or timestamp column"));
    const bool is_time = column_type_ == DataType::kTimestamp;
    // The span of the values of the column's type; others land in the first or last unit.
    const std::string value = is_time ? "sluice_micros(" + column_sql_ + ")"
                                      : "CASE WHEN typeof(" + column_sql_ + ") = 'integer' THEN " + column_sql_ + " END";
    ASSIGN_OR_RETURN(SqliteStmt stats, Query("SELECT min(sluice_v), max(sluice_v), count(*), total(sluice_null) FROM "
                                             "(SELECT " + value + " AS sluice_v, " + column_sql_ +
                                             " IS NULL AS sluice_null FROM {from})"));
    bool row = false;
    RETURN_IF_ERROR(Step(&stats, &row));
    total_rows_ = stats.ColumnInt64(2);
    const auto nulls = static_cast<int64_t>(stats.ColumnDouble(3));
    AddNullUnit(nulls);
    const int64_t rest = total_rows_ - nulls;
    if (stats.ColumnType(0) == SQLITE_NULL) {  // no value of the type: one unit for the others
      if (rest > 0) AddRangeUnits({}, {rest}, true);
      return Status::OK();
    }
    const int64_t min = stats.ColumnInt64(0);
    const int64_t max = stats.ColumnInt64(1);
    ASSIGN_OR_RETURN(const uint64_t bytes, InputBytes());
    const size_t n = UnitsFor(bytes, rest);
    const __int128 span = static_cast<__int128>(max) - min + 1;
    std::vector<Bound> bounds;
    for (size_t k = 1; k < n; ++k) {
      const auto cut = static_cast<int64_t>(min + span * static_cast<__int128>(k) / static_cast<__int128>(n));
      if (is_time) {
        ASSIGN_OR_RETURN(Bound bound, TimestampBound(cut));
        if (!bounds.empty() && bounds.back().text == bound.text) continue;
        bounds.push_back(std::move(bound));
      } else if (bounds.empty() || std::get<int64_t>(bounds.back().value) < cut) {
        bounds.push_back({cut, std::to_string(cut)});
      }
    }
    const int64_t per_unit = std::max<int64_t>(1, rest / static_cast<int64_t>(bounds.size() + 1));
    AddRangeUnits(bounds, std::vector<int64_t>(bounds.size() + 1, per_unit), bounds.empty());
    return Status::OK();
  }

  // partition.by time: one unit per window that holds rows, cut at the starts
  // of those windows (a unit's range runs to the next window holding rows).
  Status TimeWindows() {
    RETURN_IF_ERROR(CheckColumnType({DataType::kTimestamp}, "partition.by time needs a timestamp column"));
    ASSIGN_OR_RETURN(SqliteStmt groups,
                     Query("SELECT sluice_window(" + column_sql_ + ", ?), count(*), count(" + column_sql_ +
                               ") FROM {from} GROUP BY 1 ORDER BY 1",
                           {int64_t{static_cast<int>(partition_.window)}}));
    std::vector<int64_t> starts;
    std::vector<int64_t> rows;
    int64_t nulls = 0;
    int64_t others = 0;  // values that are no timestamp: read by the first or last unit
    for (bool row = true;;) {
      RETURN_IF_ERROR(Step(&groups, &row));
      if (!row) break;
      total_rows_ += groups.ColumnInt64(1);
      if (groups.ColumnType(0) == SQLITE_NULL) {
        nulls = groups.ColumnInt64(1) - groups.ColumnInt64(2);
        others = groups.ColumnInt64(2);
        continue;
      }
      if (starts.size() == kMaxUnits) {
        return Status::InvalidArgument("partition.window: more than " + std::to_string(kMaxUnits) + " " +
                                       std::string(TimeWindowName(partition_.window)) + " windows of '" +
                                       partition_.column + "' hold rows; choose a longer window");
      }
      starts.push_back(groups.ColumnInt64(0));
      rows.push_back(groups.ColumnInt64(1));
    }
    AddNullUnit(nulls);
    if (starts.empty()) {
      if (others > 0) AddRangeUnits({}, {others}, true);
      return Status::OK();
    }
    std::vector<Bound> bounds;
    for (size_t i = 1; i < starts.size(); ++i) {
      ASSIGN_OR_RETURN(Bound bound, TimestampBound(starts[i]));
      bounds.push_back(std::move(bound));
    }
    AddRangeUnits(bounds, rows, false);
    return Status::OK();
  }

  // partition.by column: one unit per distinct value.
  Status DistinctValues() {
    ASSIGN_OR_RETURN(SqliteStmt groups,
                     Query("SELECT " + column_sql_ + ", count(*) FROM {from} GROUP BY 1 ORDER BY 1"));
    for (bool row = true;;) {
      RETURN_IF_ERROR(Step(&groups, &row));
      if (!row) break;
      const int64_t rows = groups.ColumnInt64(1);
      total_rows_ += rows;
      if (plan_.units.size() == kMaxUnits) {
        return Status::InvalidArgument("partition.column: '" + partition_.column + "' has more than " +
                                       std::to_string(kMaxUnits) + " distinct values; use partition.by hash");
      }
      SqlParam value;
      switch (groups.ColumnType(0)) {
        case SQLITE_NULL: AddNullUnit(rows); continue;
        case SQLITE_INTEGER: value = groups.ColumnInt64(0); break;
        case SQLITE_FLOAT: value = groups.ColumnDouble(0); break;
        case SQLITE_TEXT: value = std::string(groups.ColumnText(0)); break;
        default:
          return Status::InvalidArgument("partition.column: '" + partition_.column + "' in '" + in_.name +
                                         "' holds BLOB values; use partition.by hash");
      }
      const std::string label = partition_.column + " = " + MessageValue(groups.ColumnText(0));
      AddUnit(column_sql_ + " = ?", {std::move(value)}, label, rows, true);
    }
    return Status::OK();
  }

  // partition.by hash: one unit per bucket that holds rows.
  Status HashBuckets() {
    const std::string type(DataTypeName(column_type_));
    const std::string bucket = std::string(kSqliteBucketFunction) + "(" + column_sql_ + ", ?, ?)";
    ASSIGN_OR_RETURN(SqliteStmt groups, Query("SELECT " + bucket + ", count(*) FROM {from} GROUP BY 1 ORDER BY 1",
                                              {type, int64_t{partition_.buckets}}));
    std::vector<std::pair<int64_t, int64_t>> buckets;  // bucket, rows
    for (bool row = true;;) {
      RETURN_IF_ERROR(Step(&groups, &row));
      if (!row) break;
      buckets.emplace_back(groups.ColumnInt64(0), groups.ColumnInt64(1));
      total_rows_ += buckets.back().second;
    }
    for (const auto& [b, rows] : buckets) {
      std::string label = partition_.column + " bucket ";
      AppendHashBucketText(static_cast<uint64_t>(b), partition_.buckets, &label);
      label += " of " + std::to_string(partition_.buckets);
      AddUnit(bucket + " = ?", {type, int64_t{partition_.buckets}, b}, std::move(label), rows, true);
    }
    return Status::OK();
  }

  const InputSpec& input_;
  const PartitionSpec& partition_;
  SqliteInput in_;
  Plan plan_;
  std::string column_sql_;  // the partition column, quoted
  DataType column_type_ = DataType::kString;
  char separator_ = '\0';  // between date and time in the column's timestamp texts; '\0' until looked up
  int64_t total_rows_ = 0;  // rows of the input
  std::optional<uint64_t> bytes_;  // InputBytes, once measured
};

}  // namespace

Result<Plan> PlanSqliteUnits(const InputSpec& input, const PartitionSpec& partition) {
  return SqlitePlanner(input, partition).Run();
}

}  // namespace sluice
