// PlanParquetUnits: row-group units of Parquet files (see planner.h), from the
// footers DuckDB reads (parquet_metadata: rows, compressed bytes and min/max
// statistics per row group) and, for partition.by column and hash, one
// aggregate query over the partition column per file.
#include "plan/planner.h"

#if SLUICE_WITH_DUCKDB

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "core/hash.h"
#include "core/strings.h"
#include "plan/time_window.h"
#include "sink/value_format.h"
#include "source/parquet_source.h"

namespace sluice {
namespace {

// Units of one file per time window, distinct value or hash bucket at most.
constexpr size_t kMaxUnitsPerFile = 100000;
// A Parquet reader's own DuckDB database (catalog, buffers), beyond the row group it reads.
constexpr uint64_t kReaderDatabaseBytes = uint64_t{8} << 20;

struct RowGroup {
  uint64_t first_row = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;  // compressed, all columns
  // partition.by time: the column's statistics (microseconds), when the footer has them.
  std::optional<int64_t> min;
  std::optional<int64_t> max;
  std::optional<uint64_t> nulls;  // null values of the column, when the footer says
};

struct ParquetFile {
  InputFile file;
  std::vector<ParquetColumn> columns;
  std::vector<std::pair<std::string, std::string>> hive;
  std::vector<RowGroup> groups;
  uint64_t rows = 0;
};

// The partition column of time / column / hash in one file.
struct PartitionColumn {
  DataType type = DataType::kString;
  std::string expr;                      // SQL reading it (file columns)
  std::optional<std::string> hive_raw;   // a hive column: its directory value
};

std::string RowsLabel(uint64_t begin, uint64_t end) {
  return begin < end ? fmt::format("rows {}-{}", begin, end - 1) : "no rows";
}

// A (non-null) value of the partition column as its label shows it.
std::string ValueText(const Cell& cell, DataType type) {
  std::string out;
  switch (type) {
    case DataType::kInt64: AppendInt64Text(cell.int_value, &out); break;
    case DataType::kFloat32: AppendFloat32Text(static_cast<float>(cell.float_value), TextFormat::kCsv, &out); break;
    case DataType::kFloat64: AppendFloat64Text(cell.float_value, TextFormat::kCsv, &out); break;
    case DataType::kBool: AppendBoolText(cell.bool_value, &out); break;
    case DataType::kString: out = "'" + MessageValue(cell.text) + "'"; break;
    case DataType::kTimestamp: AppendTimestampText(cell.int_value, &out); break;
    case DataType::kDate: AppendDateValueText(cell.int_value, &out); break;
  }
  return out;
}

// The SQL parameter equal to a value of the partition column as the source reads it.
SqlParam ValueParam(const Cell& cell, DataType type) {
  switch (type) {
    case DataType::kFloat32:
    case DataType::kFloat64: return cell.float_value;
    case DataType::kBool: return int64_t{cell.bool_value ? 1 : 0};
    case DataType::kString: return std::string(cell.text);
    default: return cell.int_value;
  }
}

class ParquetPlanner {
 public:
  ParquetPlanner(Env* env, const InputSpec& input, const PartitionSpec& partition, DuckDbPool* duckdb_pool)
      : env_(env), input_(input), partition_(partition), duckdb_pool_(duckdb_pool) {
    plan_.format = InputFormat::kParquet;
    plan_.reader_memory = kReaderDatabaseBytes;
  }

  Result<Plan> Run() {
    ASSIGN_OR_RETURN(db_, TakeParquetSourceDb(duckdb_pool_));
    ASSIGN_OR_RETURN(const std::vector<std::string> paths, ListParquetInput(env_, input_.path));
    std::optional<ParquetFile> first;
    for (const std::string& path : paths) {
      Result<FileInfo> info = env_->Stat(path);
      if (!info.ok()) return info.status().WithContext("input.path");
      ParquetFile file;
      file.file = {path, info->size, info->mtime_ns};
      RETURN_IF_ERROR(ReadFooter(&file));
      if (first) {
        RETURN_IF_ERROR(CheckSameSchema(*first, file));
      } else {
        first = file;
      }
      plan_.files.push_back(file.file);
      RETURN_IF_ERROR(PlanFile(file));
    }
    return std::move(plan_);
  }

 private:
  Status ReadFooter(ParquetFile* f) {
    const std::string& path = f->file.path;
    ASSIGN_OR_RETURN(f->columns, ReadParquetColumns(db_.get(), path));
    ASSIGN_OR_RETURN(f->hive, HivePartitions(path));
    const bool time = partition_.by == PartitionBy::kTime;
    ASSIGN_OR_RETURN(DuckStatement stmt,
                     db_->Prepare("SELECT row_group_id, max(row_group_num_rows), sum(total_compressed_size)::BIGINT,"
                                  " sum(total_uncompressed_size)::BIGINT,"
                                  " epoch_us(TRY_CAST(max(coalesce(stats_min_value, stats_min))"
                                  "   FILTER (WHERE path_in_schema = ?) AS TIMESTAMPTZ)),"
                                  " epoch_us(TRY_CAST(max(coalesce(stats_max_value, stats_max))"
                                  "   FILTER (WHERE path_in_schema = ?) AS TIMESTAMPTZ)),"
                                  " max(stats_null_count) FILTER (WHERE path_in_schema = ?)"
                                  " FROM parquet_metadata(?) GROUP BY row_group_id ORDER BY row_group_id"));
    const std::string stats_column = time ? partition_.column : std::string();
    RETURN_IF_ERROR(stmt.BindAll({stats_column, stats_column, stats_column, path}));
    Result<DuckResult> result = stmt.Query();
    if (!result.ok()) return result.status().WithContext("input '" + path + "': reading row groups");
    while (true) {
      ASSIGN_OR_RETURN(DuckChunk chunk, result->Next());
      if (!chunk) break;
      for (size_t row = 0; row < chunk.size(); ++row) {
        RowGroup g;
        g.first_row = f->rows;
        g.rows = static_cast<uint64_t>(chunk.Int64At(1, row));
        g.bytes = chunk.IsNull(2, row) ? 0 : static_cast<uint64_t>(chunk.Int64At(2, row));
        const uint64_t decoded = chunk.IsNull(3, row) ? 0 : static_cast<uint64_t>(chunk.Int64At(3, row));
        if (!chunk.IsNull(4, row)) g.min = chunk.Int64At(4, row);
        if (!chunk.IsNull(5, row)) g.max = chunk.Int64At(5, row);
        if (!chunk.IsNull(6, row)) g.nulls = static_cast<uint64_t>(chunk.Int64At(6, row));
        plan_.reader_memory = std::max(plan_.reader_memory, kReaderDatabaseBytes + g.bytes + decoded);
        f->rows += g.rows;
        if (g.rows > 0) f->groups.push_back(g);
      }
    }
    return Status::OK();
  }

  // Every file must have the first file's columns (by name, as the same Sluice
  // type) and the same hive keys.
  Status CheckSameSchema(const ParquetFile& first, const ParquetFile& other) {
    auto describe = [](const ParquetColumn& c) {
      return c.type ? std::string(DataTypeName(*c.type)) + " (" + c.duck_type + ")" : c.duck_type;
    };
    auto drift = [&](const std::string& column, const std::string& in_first, const std::string& in_other) {
      return Status::InvalidArgument(fmt::format("input: the files' schemas differ: column '{}' is {} in '{}' but {} in '{}'",
                                                 column, in_first, first.file.path, in_other, other.file.path));
    };
    for (const ParquetColumn& c : first.columns) {
      const auto it = std::find_if(other.columns.begin(), other.columns.end(),
                                   [&](const ParquetColumn& o) { return o.name == c.name; });
      if (it == other.columns.end()) return drift(c.name, describe(c), "missing");
      if (it->type != c.type) return drift(c.name, describe(c), describe(*it));
    }
    for (const ParquetColumn& o : other.columns) {
      const bool known = std::any_of(first.columns.begin(), first.columns.end(),
                                     [&](const ParquetColumn& c) { return c.name == o.name; });
      if (!known) return drift(o.name, "missing", describe(o));
    }
    std::vector<std::string> first_keys;
    std::vector<std::string> other_keys;
    for (const auto& kv : first.hive) first_keys.push_back(kv.first);
    for (const auto& kv : other.hive) other_keys.push_back(kv.first);
    if (first_keys != other_keys) {
      return Status::InvalidArgument(fmt::format(
          "input: the files' partition directories differ: '{}' has {} but '{}' has {}", first.file.path,
          JoinNames(first_keys), other.file.path, JoinNames(other_keys)));
    }
    return Status::OK();
  }

  Status PlanFile(const ParquetFile& f) {
    switch (partition_.by) {
      case PartitionBy::kFiles:
        AddUnit(f, 0, f.rows, static_cast<int64_t>(f.rows), true, "", {}, "");
        return Status::OK();
      case PartitionBy::kSize: PlanBySize(f); return Status::OK();
      case PartitionBy::kTime:
      case PartitionBy::kColumn:
      case PartitionBy::kHash: break;
    }
    ASSIGN_OR_RETURN(const PartitionColumn column, FindPartitionColumn(f));
    if (column.hive_raw) return PlanHiveValue(f, column);
    if (partition_.by == PartitionBy::kTime) return PlanByTime(f, column);
    return PlanByValue(f, column);
  }

  // Runs of consecutive row groups of about target_bytes each.
  void PlanBySize(const ParquetFile& f) {
    if (f.groups.empty()) {
      AddUnit(f, 0, 0, 0, true, "", {}, "");
      return;
    }
    for (size_t begin = 0; begin < f.groups.size();) {
      uint64_t bytes = 0;
      size_t end = begin;
      while (end < f.groups.size() && (end == begin || bytes < partition_.target_bytes)) bytes += f.groups[end++].bytes;
      const uint64_t first_row = f.groups[begin].first_row;
      const uint64_t end_row = f.groups[end - 1].first_row + f.groups[end - 1].rows;
      AddUnit(f, first_row, end_row, static_cast<int64_t>(end_row - first_row), true, "", {}, "");
      begin = end;
    }
  }

  Result<PartitionColumn> FindPartitionColumn(const ParquetFile& f) {
    const std::string& name = partition_.column;
    const auto declared = input_.schema.find(name);
    PartitionColumn column;
    const auto hive = std::find_if(f.hive.begin(), f.hive.end(), [&](const auto& kv) { return kv.first == name; });
    if (hive != f.hive.end()) {
      column.type = declared != input_.schema.end() ? declared->second : DataType::kString;
      column.hive_raw = hive->second;
    } else {
      const auto it = std::find_if(f.columns.begin(), f.columns.end(), [&](const ParquetColumn& c) { return c.name == name; });
      if (it == f.columns.end()) {
        std::vector<std::string> names;
        for (const ParquetColumn& c : f.columns) names.push_back(c.name);
        for (const auto& kv : f.hive) names.push_back(kv.first);
        return Status::InvalidArgument(fmt::format("partition.column: no column '{}' in '{}' (columns: {})", name,
                                                   f.file.path, JoinNames(names)));
      }
      if (!it->type) {
        return Status::InvalidArgument(fmt::format("partition.column: column '{}' of '{}' is {}, which Sluice cannot read",
                                                   name, f.file.path, it->duck_type));
      }
      column.type = declared != input_.schema.end() ? declared->second : *it->type;
      ASSIGN_OR_RETURN(const ParquetRead read, ParquetReadExpression(f.file.path, *it, column.type));
      column.expr = read.expr;
    }
    if (partition_.by == PartitionBy::kTime && !IsTemporal(column.type)) {
      return Status::InvalidArgument(fmt::format("partition.column: by: time needs a timestamp or date column; '{}' is {}",
                                                 name, DataTypeName(column.type)));
    }
    return column;
  }

  // A hive column holds one value per file: the whole file is one unit, in its
  // window, value or bucket, and needs no filter.
  Status PlanHiveValue(const ParquetFile& f, const PartitionColumn& column) {
    std::string text;
    Cell cell;
    RETURN_IF_ERROR(ParseHiveCell(f.file.path, partition_.column, *column.hive_raw, column.type, &text, &cell));
    std::string what;
    if (partition_.by == PartitionBy::kHash) {
      what = BucketLabel(MixHash(HashCell(cell, column.type, kHashSeed)) % static_cast<uint64_t>(partition_.buckets));
    } else if (cell.is_null) {
      what = partition_.column + " is null";
    } else if (partition_.by == PartitionBy::kTime) {
      what = WindowLabel(WindowStart(cell.int_value, partition_.window));
    } else {
      what = partition_.column + " = " + ValueText(cell, column.type);
    }
    AddUnit(f, 0, f.rows, static_cast<int64_t>(f.rows), true, what, {}, "");
    return Status::OK();
  }

  std::string WindowLabel(int64_t start) const {
    std::string label = partition_.column + " in [";
    AppendTimeBucketText(start, partition_.window, &label);
    label += ", ";
    AppendTimeBucketText(NextWindowStart(start, partition_.window), partition_.window, &label);
    label += ")";
    return label;
  }

  std::string BucketLabel(uint64_t bucket) const {
    return fmt::format("{} bucket {} of {}", partition_.column, bucket, partition_.buckets);
  }

  // One unit per window that the row groups' statistics say may hold rows,
  // spanning only the row groups that may hold it; then one for null times.
  Status PlanByTime(const ParquetFile& f, const PartitionColumn& column) {
    std::vector<RowGroup> groups = f.groups;
    // A group of only nulls has no min and max, and needs none.
    auto lacks_stats = [](const RowGroup& g) { return (!g.min || !g.max) && !(g.nulls && *g.nulls == g.rows); };
    const bool missing_stats = std::any_of(groups.begin(), groups.end(), lacks_stats);
    if (missing_stats) {
      // A group without statistics may hold any time of the file: the file's range, by a scan.
      ASSIGN_OR_RETURN(DuckStatement stmt, db_->Prepare("SELECT min(" + column.expr + "), max(" + column.expr +
                                                        ") FROM read_parquet(?, hive_partitioning = false)"));
      RETURN_IF_ERROR(stmt.Bind(0, f.file.path));
      Result<DuckResult> result = stmt.Query();
      if (!result.ok()) return result.status().WithContext("input '" + f.file.path + "'");
      ASSIGN_OR_RETURN(DuckChunk chunk, result->Next());
      const bool any_time = chunk && !chunk.IsNull(0, 0);  // else every time is null
      for (RowGroup& g : groups) {
        if (any_time && lacks_stats(g)) {
          g.min = chunk.Int64At(0, 0);
          g.max = chunk.Int64At(1, 0);
        }
      }
    }
    std::vector<int64_t> starts;
    for (const RowGroup& g : groups) {
      if (!g.min || !g.max) continue;
      ASSIGN_OR_RETURN(std::vector<int64_t> s, WindowsBetween(*g.min, *g.max, partition_.window, kMaxUnitsPerFile));
      starts.insert(starts.end(), s.begin(), s.end());
    }
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    if (starts.size() > kMaxUnitsPerFile) {
      return Status::InvalidArgument(fmt::format("partition.window: '{}' spans more than {} {} windows; use a longer window",
                                                 f.file.path, kMaxUnitsPerFile, TimeWindowName(partition_.window)));
    }
    const std::string filter = column.expr + " >= ? AND " + column.expr + " < ?";
    for (const int64_t start : starts) {
      const int64_t next = NextWindowStart(start, partition_.window);
      // The share of a group's rows in the window: of its rows with a time,
      // as if those were spread evenly between its min and max.
      AddGroupsUnit(f, groups, WindowLabel(start), {start, next}, filter, [&](const RowGroup& g) {
        if (!g.min || *g.min >= next || *g.max < start) return 0.0;
        const double timed = 1.0 - static_cast<double>(g.nulls.value_or(0)) / static_cast<double>(g.rows);
        if (*g.max == *g.min) return timed;
        const double overlap = static_cast<double>(std::min(*g.max + 1, next) - std::max(*g.min, start));
        return timed * overlap / static_cast<double>(*g.max + 1 - *g.min);
      });
    }
    AddGroupsUnit(f, groups, partition_.column + " is null", {}, column.expr + " IS NULL", [](const RowGroup& g) {
      if (!g.nulls) return 1.0;
      return static_cast<double>(*g.nulls) / static_cast<double>(g.rows);
    });
    return Status::OK();
  }

  // A unit over the row groups from the first to the last one that `share`
  // gives rows to (none: no unit); its rows and bytes are the groups' times
  // their shares, an estimate.
  template <typename Share>
  void AddGroupsUnit(const ParquetFile& f, const std::vector<RowGroup>& groups, const std::string& what,
                     std::vector<SqlParam> params, const std::string& filter, Share share) {
    std::optional<size_t> first;
    size_t last = 0;
    double rows = 0;
    double bytes = 0;
    for (size_t i = 0; i < groups.size(); ++i) {
      const double s = share(groups[i]);
      if (s <= 0) continue;
      if (!first) first = i;
      last = i;
      rows += s * static_cast<double>(groups[i].rows);
      bytes += s * static_cast<double>(groups[i].bytes);
    }
    if (!first) return;
    AddUnit(f, groups[*first].first_row, groups[last].first_row + groups[last].rows, std::llround(rows), false, what,
            std::move(params), filter);
    plan_.units.back().est_bytes = static_cast<uint64_t>(std::llround(bytes));
  }

  // partition.by column / hash: one unit per distinct value / bucket, from one
  // aggregate query over the column, which also gives each one's exact row
  // count and its first and last row (the unit spans their row groups).
  Status PlanByValue(const ParquetFile& f, const PartitionColumn& column) {
    const bool hash = partition_.by == PartitionBy::kHash;
    const std::string key = hash ? "sluice_bucket(" + column.expr + ", ?)" : column.expr;
    ASSIGN_OR_RETURN(DuckStatement stmt,
                     db_->Prepare("SELECT " + key + " AS v, count(*), min(file_row_number), max(file_row_number)"
                                  " FROM read_parquet(?, file_row_number = true, hive_partitioning = false)"
                                  " GROUP BY v ORDER BY v NULLS LAST"));
    if (hash) {
      RETURN_IF_ERROR(stmt.BindAll({int64_t{partition_.buckets}, f.file.path}));
    } else {
      RETURN_IF_ERROR(stmt.Bind(0, f.file.path));
    }
    Result<DuckResult> result = stmt.Query();
    if (!result.ok()) return result.status().WithContext("input '" + f.file.path + "': partition.column");
    const DataType value_type = hash ? DataType::kInt64 : column.type;
    size_t units = 0;
    while (true) {
      ASSIGN_OR_RETURN(DuckChunk chunk, result->Next());
      if (!chunk) break;
      const void* values = duckdb_vector_get_data(chunk.vector(0));
      for (size_t row = 0; row < chunk.size(); ++row) {
        if (++units > kMaxUnitsPerFile) {
          return Status::InvalidArgument(fmt::format(
              "partition.column: '{}' has more than {} distinct values in '{}'; partition by hash instead",
              partition_.column, kMaxUnitsPerFile, f.file.path));
        }
        Cell cell;
        cell.is_null = chunk.IsNull(0, row);
        if (!cell.is_null) {
          switch (value_type) {
            case DataType::kFloat32: cell.float_value = static_cast<const float*>(values)[row]; break;
            case DataType::kFloat64: cell.float_value = static_cast<const double*>(values)[row]; break;
            case DataType::kBool: cell.bool_value = static_cast<const bool*>(values)[row]; break;
            case DataType::kString: cell.text = chunk.StringAt(0, row); break;
            default: cell.int_value = static_cast<const int64_t*>(values)[row]; break;
          }
        }
        const auto count = static_cast<uint64_t>(chunk.Int64At(1, row));
        const auto [begin, end] = GroupSpan(f, static_cast<uint64_t>(chunk.Int64At(2, row)),
                                            static_cast<uint64_t>(chunk.Int64At(3, row)));
        std::string what;
        std::vector<SqlParam> params;
        std::string filter;
        if (hash) {
          what = BucketLabel(static_cast<uint64_t>(cell.int_value));
          filter = key + " = ?";
          params = {int64_t{partition_.buckets}, cell.int_value};
        } else if (cell.is_null) {
          what = partition_.column + " is null";
          filter = column.expr + " IS NULL";
        } else {
          what = partition_.column + " = " + ValueText(cell, column.type);
          filter = column.type == DataType::kBool ? column.expr + " = CAST(? AS BOOLEAN)" : column.expr + " = ?";
          params = {ValueParam(cell, column.type)};
        }
        AddUnit(f, begin, end, static_cast<int64_t>(count), true, what, std::move(params), filter);
        plan_.units.back().est_bytes = f.rows == 0 ? 0 : TotalBytes(f) * count / f.rows;
      }
    }
    return Status::OK();
  }

  // [first row of the group holding `first`, end of the group holding `last`).
  static std::pair<uint64_t, uint64_t> GroupSpan(const ParquetFile& f, uint64_t first, uint64_t last) {
    uint64_t begin = 0;
    uint64_t end = f.rows;
    for (const RowGroup& g : f.groups) {
      if (g.first_row <= first) begin = g.first_row;
      if (g.first_row <= last && last < g.first_row + g.rows) end = g.first_row + g.rows;
    }
    return {begin, end};
  }

  static uint64_t TotalBytes(const ParquetFile& f) {
    uint64_t bytes = 0;
    for (const RowGroup& g : f.groups) bytes += g.bytes;
    return bytes;
  }

  // Adds rows [begin, end) of `f`; `what` (a window, value or bucket) goes
  // after the rows in the label.
  void AddUnit(const ParquetFile& f, uint64_t begin, uint64_t end, int64_t rows, bool exact, const std::string& what,
               std::vector<SqlParam> params, std::string filter) {
    WorkUnit unit;
    unit.index = static_cast<int>(plan_.units.size());
    unit.id = UnitId(unit.index);
    unit.range.path = f.file.path;
    unit.range.begin = begin;
    unit.range.end = end;
    unit.range.hive = f.hive;
    unit.range.filter = std::move(filter);
    unit.range.params = std::move(params);
    unit.range.label = RowsLabel(begin, end) + (what.empty() ? "" : ", " + what);
    unit.file_size = f.file.size;
    unit.mtime_ns = f.file.mtime_ns;
    uint64_t bytes = 0;
    for (const RowGroup& g : f.groups) {
      if (g.first_row >= begin && g.first_row < end) bytes += g.bytes;
    }
    unit.est_bytes = bytes;
    unit.est_rows = rows;
    unit.rows_exact = exact;
    plan_.units.push_back(std::move(unit));
  }

  Env* const env_;
  const InputSpec& input_;
  const PartitionSpec& partition_;
  DuckDbPool* const duckdb_pool_;
  PooledDuckDb db_;
  Plan plan_;
};

}  // namespace

Result<Plan> PlanParquetUnits(Env* env, const InputSpec& input, const PartitionSpec& partition,
                              DuckDbPool* duckdb_pool) {
  return ParquetPlanner(env, input, partition, duckdb_pool).Run();
}

}  // namespace sluice

#else  // !SLUICE_WITH_DUCKDB

namespace sluice {

Result<Plan> PlanParquetUnits(Env*, const InputSpec& input, const PartitionSpec&, DuckDbPool*) {
  return Status::NotSupported("input '" + input.path +
                              "': Parquet is not supported by this build (built without DuckDB; run scripts/bootstrap)");
}

}  // namespace sluice

#endif  // SLUICE_WITH_DUCKDB
