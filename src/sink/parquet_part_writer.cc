// Parquet part writer, on PartWriterBase (part_writer_base.h: temporaries,
// grouping by partition, rename, directory syncs, abort).
//
// Rows are copied into DuckDB data chunks (up to 2048 rows each), one list of
// chunks per file of the part, held by the writer. Finish has DuckDB write each
// file with COPY (SELECT * FROM sluice_chunks(list)) TO the file's temporary
// (FORMAT parquet, the configured compression), then reads it back for its size
// and SHA-256 through Env; at Commit the base syncs it and renames it into
// place. Row groups hold 122880 rows, fewer for wide rows: about a quarter of
// the memory limit each (DuckDB buffers one while writing).
//
// A part whose held rows outgrow a quarter of the memory limit is staged instead: each
// file's rows go into a table of the writer's own in-memory DuckDB database
// (duckdb_append_data_chunk), which spills, and Finish copies the table. Held
// rows skip that table's insert work (statistics, its storage): about 5 % of a
// Parquet → Parquet job's CPU.
//
// Column types kept: int64 BIGINT, float32 FLOAT, float64 DOUBLE, bool BOOLEAN,
// string VARCHAR, timestamp TIMESTAMP WITH TIME ZONE (Parquet
// TIMESTAMP(isAdjustedToUTC=true, MICROS)), date DATE.
//
// Databases (from options.duckdb_pool when set): a part holding its rows
// copies them through a connection of its own to one of the Parquet readers'
// databases (DuckDbPool::Share with ParquetReadDbOptions; a new one if there
// is none), so a Parquet → Parquet job opens no database for its writers. A
// staged part takes a database of its own, with threads = 1 and memory_limit
// ParquetPartMemoryLimit (part_writer_base.h), points its temp_directory at
// the part's own spill directory, and gives it back when destroyed with its
// tables dropped. A database that has spilled cannot switch directories (and
// must close to remove its own), so it is closed instead.
//
// Memory: held rows take at most a quarter of ParquetPartMemoryLimit, and the
// copy buffers one row group (another quarter). Once staged, the appender is
// flushed into its table every ~4 MiB of rows, and a part larger than the
// limit spills to <out>/_sluice/spill/part-NNNNN/ (DuckDB makes the directory
// when it first spills and removes it when the database closes; files a killed
// run left there are removed when the part is opened again).
// DuckDB writes the files itself, so the Env must be the real file system.
#include <duckdb.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/sha256.h"
#include "sink/part_writer_base.h"
#include "source/duckdb_util.h"

namespace sluice {
namespace {

constexpr int64_t kMicrosPerDay = int64_t{86'400} * 1'000'000;
constexpr uint64_t kMaxRowGroupRows = 122880;
constexpr uint64_t kMinRowGroupRows = 2048;
constexpr uint64_t kStringBytesGuess = 32;
constexpr uint64_t kAppenderFlushBytes = uint64_t{4} << 20;

// The DuckDB column type a Sluice type is written as: its id and its SQL name.
struct DuckColumnType {
  duckdb_type id;
  const char* sql;
};

DuckColumnType DuckTypeOf(DataType type) {
  switch (type) {
    case DataType::kInt64: return {DUCKDB_TYPE_BIGINT, "BIGINT"};
    case DataType::kFloat32: return {DUCKDB_TYPE_FLOAT, "FLOAT"};
    case DataType::kFloat64: return {DUCKDB_TYPE_DOUBLE, "DOUBLE"};
    case DataType::kBool: return {DUCKDB_TYPE_BOOLEAN, "BOOLEAN"};
    case DataType::kString: return {DUCKDB_TYPE_VARCHAR, "VARCHAR"};
    case DataType::kTimestamp: return {DUCKDB_TYPE_TIMESTAMP_TZ, "TIMESTAMP WITH TIME ZONE"};
    case DataType::kDate: return {DUCKDB_TYPE_DATE, "DATE"};
  }
  return {DUCKDB_TYPE_VARCHAR, "VARCHAR"};
}

int64_t FloorDays(int64_t micros) { return micros / kMicrosPerDay - (micros % kMicrosPerDay < 0 ? 1 : 0); }

// Marks slot i of `vector` valid (calling set(i, rows[i])) or null, as value
// rows[i] of `column` is.
template <typename Set>
void FillSlots(const Column& column, std::span<const size_t> rows, duckdb_vector vector, Set set) {
  duckdb_vector_ensure_validity_writable(vector);
  uint64_t* validity = duckdb_vector_get_validity(vector);
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (column.IsValid(rows[i])) {
      validity[i >> 6] |= bit;
      set(i, rows[i]);
    } else {
      validity[i >> 6] &= ~bit;
    }
  }
}

// Copies value rows[i] of `column` into slot i of `vector`, for every i.
void FillVector(const Column& column, std::span<const size_t> rows, duckdb_vector vector) {
  void* data = duckdb_vector_get_data(vector);
  switch (column.type()) {
    case DataType::kInt64:
    case DataType::kTimestamp: {
      auto* out = static_cast<int64_t*>(data);
      FillSlots(column, rows, vector, [&](size_t i, size_t row) { out[i] = column.int64s()[row]; });
      return;
    }
    case DataType::kDate: {
      auto* out = static_cast<int32_t*>(data);
      FillSlots(column, rows, vector,
                [&](size_t i, size_t row) { out[i] = static_cast<int32_t>(FloorDays(column.int64s()[row])); });
      return;
    }
    case DataType::kFloat32: {
      auto* out = static_cast<float*>(data);
      FillSlots(column, rows, vector, [&](size_t i, size_t row) { out[i] = column.float32s()[row]; });
      return;
    }
    case DataType::kFloat64: {
      auto* out = static_cast<double*>(data);
      FillSlots(column, rows, vector, [&](size_t i, size_t row) { out[i] = column.float64s()[row]; });
      return;
    }
    case DataType::kBool: {
      auto* out = static_cast<bool*>(data);
      FillSlots(column, rows, vector, [&](size_t i, size_t row) { out[i] = column.bools()[row] != 0; });
      return;
    }
    case DataType::kString:
      FillSlots(column, rows, vector, [&](size_t i, size_t row) {
        const std::string_view s = column.StringAt(row);
        duckdb_vector_assign_string_element_len(vector, i, s.data(), s.size());
      });
      return;
  }
}

class ParquetPartWriter final : public PartWriterBase {
 public:
  ParquetPartWriter(Env* env, const PartOptions& options, PartitionLayout layout)
      : PartWriterBase(env, options, std::move(layout)),
        pool_(options.duckdb_pool),
        compression_(options.compression == ParquetCompression::kSnappy ? "snappy" : "zstd"),
        spill_dir_(JoinPath(JoinPath(JoinPath(options.dir, "_sluice"), "spill"),
                            name().substr(0, name().rfind('.')))) {}

  ~ParquetPartWriter() override {
    Abort();
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
    // Back to the pool only as clean as a new database: no table, nothing spilled.
    const bool clean = appender_ == nullptr && std::find(tables_.begin(), tables_.end(), true) == tables_.end() &&
                       !env()->FileExists(spill_dir_);
    if (db_ != nullptr && !clean) DuckDbPool::Close(std::move(db_));
  }

  Status Open() {
    if (layout().file_schema().num_fields() == 0) {
      return Status::InvalidArgument("output '" + JoinPath(dir(), name()) + "': a Parquet file needs at least one column");
    }
    RETURN_IF_ERROR(RemoveSpillLeftovers());
    const uint64_t memory_limit = ParquetPartMemoryLimit(layout().file_schema().num_fields());
    staged_options_.memory_limit = std::to_string(memory_limit >> 20) + "MiB";
    const Schema& file_schema = layout().file_schema();
    std::vector<duckdb_logical_type> types;
    uint64_t row_width = 1;
    for (const Field& field : file_schema.fields()) {
      const DuckColumnType duck = DuckTypeOf(field.type);
      types.push_back(duckdb_create_logical_type(duck.id));
      column_names_.push_back(field.name);
      column_types_.push_back(duck.id);
      columns_sql_ += (columns_sql_.empty() ? "" : ", ") + QuoteIdentifier(field.name) + " " + duck.sql;
      fixed_bytes_ += field.type == DataType::kString ? 0 : 8;
      row_width += field.type == DataType::kString ? kStringBytesGuess : 8;
    }
    const uint64_t group_rows = std::clamp<uint64_t>(memory_limit / 4 / row_width, kMinRowGroupRows, kMaxRowGroupRows);
    row_group_rows_ = group_rows / kMinRowGroupRows * kMinRowGroupRows;
    flush_rows_ = std::max<uint64_t>(kAppenderFlushBytes / row_width, kMinRowGroupRows);
    hold_limit_ = memory_limit / 4;
    chunk_ = duckdb_create_data_chunk(types.data(), types.size());
    for (duckdb_logical_type& t : types) duckdb_destroy_logical_type(&t);
    return layout().partitioned() ? Status::OK() : OpenSingleFile();
  }

  uint64_t bytes_written() const override { return bytes_staged_; }

 private:
  static std::string TableName(size_t file_idx) { return "f" + std::to_string(file_idx); }

  Status Error(size_t file_idx, const Status& st) const {
    return st.WithContext("output '" + paths(file_idx).final_path + "'");
  }

  void AddFile(size_t) override {
    tables_.push_back(false);
    held_.push_back(std::make_unique<DuckChunkList>(column_names_, column_types_));
  }

  // Staged parts: the file's table (created on first use).
  Status OpenFile(size_t file_idx) override {
    if (!staged_ || tables_[file_idx]) return Status::OK();
    RETURN_IF_ERROR(db_->Execute("CREATE TABLE " + TableName(file_idx) + " (" + columns_sql_ + ")"));
    tables_[file_idx] = true;
    return Status::OK();
  }

  Status AppendRows(const Batch& batch, size_t file_idx, std::span<const size_t> rows) override {
    const size_t chunk_rows = duckdb_vector_size();
    for (size_t start = 0; start < rows.size(); start += chunk_rows) {
      const std::span<const size_t> slice = rows.subspan(start, std::min(chunk_rows, rows.size() - start));
      if (staged_) {
        duckdb_data_chunk_reset(chunk_);
        FillChunk(batch, slice, chunk_);
        RETURN_IF_ERROR(AppendChunk(file_idx, chunk_));
      } else {
        held_bytes_ += FillChunk(batch, slice, held_[file_idx]->Add());
        if (held_bytes_ > hold_limit_) RETURN_IF_ERROR(Stage());
      }
    }
    return Status::OK();
  }

  // Copies rows `slice` of `batch` into the empty `chunk`; returns their bytes.
  uint64_t FillChunk(const Batch& batch, std::span<const size_t> slice, duckdb_data_chunk chunk) {
    const std::vector<size_t>& cols = layout().file_columns();
    uint64_t bytes = fixed_bytes_ * slice.size();
    for (size_t col = 0; col < cols.size(); ++col) {
      const Column& column = batch.columns[cols[col]];
      FillVector(column, slice, duckdb_data_chunk_get_vector(chunk, col));
      if (column.type() == DataType::kString) {
        for (const size_t row : slice) bytes += column.StringAt(row).size();
      }
    }
    duckdb_data_chunk_set_size(chunk, slice.size());
    bytes_staged_ += bytes;
    return bytes;
  }

  // From now on every file of the part goes through its table: the rows held
  // so far move there.
  Status Stage() {
    ASSIGN_OR_RETURN(db_, DuckDbPool::Take(pool_.get(), staged_options_));
    RETURN_IF_ERROR(db_->Execute("SET temp_directory = " + QuoteLiteral(spill_dir_)));
    staged_ = true;
    for (size_t file_idx = 0; file_idx < held_.size(); ++file_idx) {
      for (duckdb_data_chunk chunk : held_[file_idx]->chunks()) RETURN_IF_ERROR(AppendChunk(file_idx, chunk));
      held_[file_idx]->Clear();
    }
    held_bytes_ = 0;
    return Status::OK();
  }

  // Appends `chunk` to the table of file `file_idx`.
  Status AppendChunk(size_t file_idx, duckdb_data_chunk chunk) {
    RETURN_IF_ERROR(OpenFile(file_idx));
    if (appender_file_ != file_idx) {
      RETURN_IF_ERROR(CloseAppender());
      if (duckdb_appender_create(db_->connection(), nullptr, TableName(file_idx).c_str(), &appender_) != DuckDBSuccess) {
        Status st = AppenderError();
        duckdb_appender_destroy(&appender_);
        return Error(file_idx, st);
      }
      appender_file_ = file_idx;
    }
    if (duckdb_append_data_chunk(appender_, chunk) != DuckDBSuccess) return Error(file_idx, AppenderError());
    // The appender keeps its rows outside DuckDB's memory_limit until a flush moves them into the table.
    appended_ += duckdb_data_chunk_get_size(chunk);
    if (appended_ >= flush_rows_) {
      appended_ = 0;
      if (duckdb_appender_flush(appender_) != DuckDBSuccess) return Error(file_idx, AppenderError());
    }
    return Status::OK();
  }

  Status FinishFile(size_t file_idx, uint64_t* bytes, std::string* sha256) override {
    if (appender_file_ == file_idx) RETURN_IF_ERROR(Error(file_idx, CloseAppender()));
    RETURN_IF_ERROR(OpenFile(file_idx));
    const FilePaths& p = paths(file_idx);
    RETURN_IF_ERROR(env()->CreateDirs(p.dir));
    MarkCreated(file_idx);
    // Held rows go through a connection to a readers' database, for this copy only.
    PooledDuckDb shared;
    if (!staged_) {
      ASSIGN_OR_RETURN(shared, DuckDbPool::Share(pool_.get(), ParquetReadDbOptions()));
    }
    DuckDb* const db = staged_ ? db_.get() : shared.get();
    ASSIGN_OR_RETURN(DuckStatement copy,
                     db->Prepare("COPY " + (staged_ ? TableName(file_idx) : "(SELECT * FROM sluice_chunks($2))") +
                                 " TO $1 (FORMAT parquet, COMPRESSION " + compression_ + ", ROW_GROUP_SIZE " +
                                 std::to_string(row_group_rows_) + ", USE_TMP_FILE false)"));
    RETURN_IF_ERROR(copy.Bind(0, p.tmp_path));
    if (!staged_) RETURN_IF_ERROR(copy.Bind(1, held_[file_idx]->Param()));
    Result<DuckResult> written = copy.Query();
    if (!written.ok()) return written.status().WithContext("writing '" + p.tmp_path + "'");
    ReleaseFile(file_idx);  // its rows are in the file now; free them before the next file
    ASSIGN_OR_RETURN(const FileInfo info, env()->Stat(p.tmp_path));
    *bytes = info.size;
    ASSIGN_OR_RETURN(*sha256, Sha256File(env(), p.tmp_path));
    return Status::OK();
  }

  void ReleaseFile(size_t file_idx) override {
    if (appender_file_ == file_idx) (void)CloseAppender();
    DropTable(file_idx);
    held_[file_idx]->Clear();  // held_bytes_ stays: no row is appended after the first file finishes
  }

  void DropTable(size_t file_idx) {
    if (!tables_[file_idx]) return;
    (void)db_->Execute("DROP TABLE " + TableName(file_idx));
    tables_[file_idx] = false;
  }

  // Flushes the appender's rows into its table and destroys it.
  Status CloseAppender() {
    if (appender_ == nullptr) return Status::OK();
    Status st;
    if (duckdb_appender_close(appender_) != DuckDBSuccess) st = AppenderError();
    duckdb_appender_destroy(&appender_);
    appender_ = nullptr;
    appender_file_ = SIZE_MAX;
    appended_ = 0;
    return st;
  }

  Status AppenderError() const {
    duckdb_error_data error = duckdb_appender_error_data(appender_);
    Status st = DuckError(duckdb_error_data_error_type(error), duckdb_error_data_message(error));
    duckdb_destroy_error_data(&error);
    return st;
  }

  // A killed run may have left DuckDB's spill files of this part behind.
  Status RemoveSpillLeftovers() {
    RETURN_IF_ERROR(env()->CreateDirs(DirName(spill_dir_)));
    if (!env()->FileExists(spill_dir_)) return Status::OK();
    ASSIGN_OR_RETURN(const std::vector<std::string> names, env()->GetChildren(spill_dir_));
    for (const std::string& n : names) RETURN_IF_ERROR(env()->RemoveFile(JoinPath(spill_dir_, n)));
    return Status::OK();
  }

  const std::shared_ptr<DuckDbPool> pool_;  // declared before db_, which goes back to it
  const std::string compression_;
  const std::string spill_dir_;
  DuckDbOptions staged_options_;
  PooledDuckDb db_;  // staged parts: the database of the tables
  std::string columns_sql_;  // the staging tables' columns: "\"id\" BIGINT, …"
  std::vector<std::string> column_names_;
  std::vector<duckdb_type> column_types_;
  std::vector<std::unique_ptr<DuckChunkList>> held_;  // by file index: its rows, until staged
  uint64_t held_bytes_ = 0;
  uint64_t hold_limit_ = 0;
  bool staged_ = false;  // the files' rows go through tables
  duckdb_data_chunk chunk_ = nullptr;
  duckdb_appender appender_ = nullptr;
  size_t appender_file_ = SIZE_MAX;  // the file whose table the appender fills
  std::vector<bool> tables_;         // by file index: its staging table exists
  uint64_t fixed_bytes_ = 0;
  uint64_t row_group_rows_ = kMaxRowGroupRows;
  uint64_t flush_rows_ = kMinRowGroupRows;  // rows between appender flushes
  uint64_t appended_ = 0;                   // rows appended since the last flush
  uint64_t bytes_staged_ = 0;
};

}  // namespace

Result<std::unique_ptr<PartWriter>> OpenParquetPartWriter(Env* env, const PartOptions& options, PartitionLayout layout) {
  auto writer = std::make_unique<ParquetPartWriter>(env, options, std::move(layout));
  RETURN_IF_ERROR(writer->Open());
  return std::unique_ptr<PartWriter>(std::move(writer));
}

}  // namespace sluice
