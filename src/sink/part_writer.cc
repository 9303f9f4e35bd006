// The part writers' shared commit protocol and grouping (PartWriterBase, see
// part_writer_base.h), and the CSV and JSON Lines writer on top of it.
//
// Text files format rows into a small buffer that goes to their temporary every
// ~64 KiB; the SHA-256 is updated with exactly the bytes handed to the file, so
// it matches the committed file across closes and reopenings. Partitioned
// writes keep at most max_open_files files open: the least recently used one is
// flushed, closed and its buffer freed, and it is reopened for append when rows
// for it come again; as the base groups a batch's rows by file, a file is opened
// at most once per batch however its rows interleave with others'.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <list>
#include <numeric>
#include <set>
#include <span>
#include <unordered_map>

#include "core/sha256.h"
#include "sink/part_writer_base.h"
#include "sink/partition_layout.h"
#include "sink/value_format.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

constexpr size_t kFlushBytes = 64 << 10;

std::string_view Extension(OutputFormat format) {
  switch (format) {
    case OutputFormat::kCsv: return "csv";
    case OutputFormat::kJsonl: return "jsonl";
    case OutputFormat::kParquet: return "parquet";
    case OutputFormat::kSqlite:
    case OutputFormat::kPostgres: break;
  }
  return "out";
}

std::string DescribeSchema(const Schema& schema) {
  std::string out = "(";
  for (size_t i = 0; i < schema.num_fields(); ++i) {
    if (i > 0) out.append(", ");
    out.append(schema.field(i).name).append(" ").append(DataTypeName(schema.field(i).type));
  }
  out.append(")");
  return out;
}

// A CSV / JSON Lines file's own state (the base keeps its paths).
struct TextFile {
  std::unique_ptr<WritableFile> file;  // null while closed
  std::list<size_t>::iterator lru;     // its place in the open list, while open
  std::string buf;                     // formatted rows not yet handed to the file
  Sha256 hasher;
  uint64_t bytes = 0;  // handed to the file
};

class TextPartWriter final : public PartWriterBase {
 public:
  TextPartWriter(Env* env, const PartOptions& options, PartitionLayout layout)
      : PartWriterBase(env, options, std::move(layout)),
        format_(options.format),
        text_format_(format_ == OutputFormat::kJsonl ? TextFormat::kJson : TextFormat::kCsv),
        max_open_files_(options.max_open_files) {
    const Schema& file_schema = this->layout().file_schema();
    if (format_ == OutputFormat::kCsv) {
      for (size_t col = 0; col < file_schema.num_fields(); ++col) {
        if (col > 0) header_.push_back(',');
        AppendCsvString(file_schema.field(col).name, ',', &header_);
      }
      header_.push_back('\n');
    } else {
      // `{"id":` then `,"score":` …: the keys are escaped once, not per row.
      for (size_t col = 0; col < file_schema.num_fields(); ++col) {
        std::string key = col == 0 ? "{" : ",";
        AppendJsonString(file_schema.field(col).name, &key);
        key.push_back(':');
        json_keys_.push_back(std::move(key));
      }
    }
  }

  ~TextPartWriter() override { Abort(); }

  Status Open() { return layout().partitioned() ? Status::OK() : OpenSingleFile(); }

  uint64_t bytes_written() const override { return bytes_formatted_; }

 private:
  void AddFile(size_t) override { files_.push_back(std::make_unique<TextFile>()); }

  Status OpenFile(size_t file_idx) override { return Open(file_idx); }

  Status AppendRows(const Batch& batch, size_t file_idx, std::span<const size_t> rows) override {
    RETURN_IF_ERROR(Open(file_idx));
    TextFile& f = *files_[file_idx];
    const std::vector<size_t>& cols = layout().file_columns();
    for (const size_t row : rows) {
      const size_t start = f.buf.size();
      if (format_ == OutputFormat::kCsv) {
        for (size_t col = 0; col < cols.size(); ++col) {
          if (col > 0) f.buf.push_back(',');
          AppendColumnValue(batch.columns[cols[col]], row, text_format_, &f.buf);
        }
        f.buf.push_back('\n');
      } else {
        for (size_t col = 0; col < cols.size(); ++col) {
          f.buf.append(json_keys_[col]);
          AppendColumnValue(batch.columns[cols[col]], row, text_format_, &f.buf);
        }
        f.buf.append(cols.empty() ? "{}\n" : "}\n");
      }
      bytes_formatted_ += f.buf.size() - start;
      if (f.buf.size() >= kFlushBytes) RETURN_IF_ERROR(FlushBuffer(f));
    }
    return Status::OK();
  }

  // Flushes and closes the file (reopened first when an earlier batch's rows
  // closed it).
  Status FinishFile(size_t file_idx, uint64_t* bytes, std::string* sha256) override {
    RETURN_IF_ERROR(Open(file_idx));
    RETURN_IF_ERROR(Close(file_idx));
    TextFile& f = *files_[file_idx];
    *bytes = f.bytes;
    *sha256 = f.hasher.HexDigest();
    return Status::OK();
  }

  void ReleaseFile(size_t file_idx) override {
    TextFile& f = *files_[file_idx];
    if (f.file) lru_.erase(f.lru);
    f.file.reset();  // closes; errors do not matter here
    std::string().swap(f.buf);
  }

  // Makes file `file_idx` open and most recently used, closing the least
  // recently used file if max_open_files are open. The first open creates the
  // temporary (and its directory); later ones append to it.
  Status Open(size_t file_idx) {
    TextFile& f = *files_[file_idx];
    if (f.file) {
      lru_.splice(lru_.begin(), lru_, f.lru);
      return Status::OK();
    }
    if (lru_.size() >= max_open_files_) RETURN_IF_ERROR(Close(lru_.back()));
    if (!created(file_idx)) {
      RETURN_IF_ERROR(env()->CreateDirs(paths(file_idx).dir));
      MarkCreated(file_idx);
      ASSIGN_OR_RETURN(f.file, env()->NewWritableFile(paths(file_idx).tmp_path));
      f.buf.append(header_);
      bytes_formatted_ += header_.size();
    } else {
      ASSIGN_OR_RETURN(f.file, env()->NewAppendableFile(paths(file_idx).tmp_path));
    }
    f.buf.reserve(kFlushBytes + kFlushBytes / 4);
    lru_.push_front(file_idx);
    f.lru = lru_.begin();
    return Status::OK();
  }

  // Flushes and closes file `file_idx`, and frees its buffer.
  Status Close(size_t file_idx) {
    TextFile& f = *files_[file_idx];
    RETURN_IF_ERROR(FlushBuffer(f));
    RETURN_IF_ERROR(f.file->Close());
    f.file.reset();
    lru_.erase(f.lru);
    std::string().swap(f.buf);
    return Status::OK();
  }

  Status FlushBuffer(TextFile& f) {
    if (f.buf.empty()) return Status::OK();
    f.hasher.Update(f.buf);
    f.bytes += f.buf.size();
    Status s = f.file->Append(f.buf);
    f.buf.clear();
    return s;
  }

  const OutputFormat format_;
  const TextFormat text_format_;
  const size_t max_open_files_;
  std::string header_;  // CSV: the header line of every file
  std::vector<std::string> json_keys_;

  std::vector<std::unique_ptr<TextFile>> files_;  // by file index
  std::list<size_t> lru_;                         // open files, most recently used first
  uint64_t bytes_formatted_ = 0;                  // header and rows, handed to files or buffered
};

}  // namespace

// ---- PartWriterBase ----------------------------------------------------------

PartWriterBase::PartWriterBase(Env* env, const PartOptions& options, PartitionLayout layout)
    : env_(env),
      dir_(options.dir),
      name_(PartFileName(options.format, options.part_index)),
      tmp_name_("." + name_ + ".tmp-" + std::to_string(::getpid())),
      schema_(options.schema),
      layout_(std::move(layout)) {}

Status PartWriterBase::NotOpen(std::string_view op) const {
  const char* state = state_ == State::kFinished ? "finished" : state_ == State::kCommitted ? "committed" : "aborted";
  return Status::FailedPrecondition(std::string(op) + " '" + JoinPath(dir_, name_) + "': part is " + state);
}

// A failed create, write, sync or rename leaves the part in an unknown state:
// it is dropped whole and the unit must be written again.
Status PartWriterBase::FailOnError(Status s) {
  if (!s.ok()) Abort();
  return s;
}

size_t PartWriterBase::FileFor(const std::string& rel_dir) {
  auto [it, inserted] = index_.try_emplace(rel_dir, paths_.size());
  if (!inserted) return it->second;
  FilePaths p;
  p.rel_path = rel_dir + name_;
  p.dir = rel_dir.empty() ? dir_ : JoinPath(dir_, std::string_view(rel_dir).substr(0, rel_dir.size() - 1));
  p.tmp_path = JoinPath(p.dir, tmp_name_);
  p.final_path = JoinPath(dir_, p.rel_path);
  paths_.push_back(std::move(p));
  on_disk_.push_back(OnDisk::kNone);
  file_rows_.push_back(0);
  AddFile(it->second);
  return it->second;
}

Status PartWriterBase::Write(const Batch& batch) {
  if (state_ != State::kOpen) return NotOpen("write");
  if (!(batch.schema == schema_) || batch.columns.size() != schema_.num_fields()) {
    return Status::InvalidArgument(JoinPath(dir_, name_) + ": batch schema " + DescribeSchema(batch.schema) +
                                   " differs from the part's schema " + DescribeSchema(schema_));
  }
  const size_t num_rows = batch.num_rows();
  if (num_rows == 0) return Status::OK();
  if (!layout_.partitioned()) {
    rows_.resize(num_rows);
    std::iota(rows_.begin(), rows_.end(), size_t{0});
    const size_t file_idx = FileFor("");
    RETURN_IF_ERROR(FailOnError(AppendRows(batch, file_idx, rows_)));
    file_rows_[file_idx] += static_cast<int64_t>(num_rows);
  } else {
    RETURN_IF_ERROR(FailOnError(WriteGrouped(batch)));
  }
  rows_written_ += static_cast<int64_t>(num_rows);
  return Status::OK();
}

// Assigns each row of `batch` to its file, then writes each file's rows in one
// go, in input order.
Status PartWriterBase::WriteGrouped(const Batch& batch) {
  const size_t num_rows = batch.num_rows();
  row_files_.resize(num_rows);
  for (size_t row = 0; row < num_rows; ++row) {
    row_dir_.clear();
    layout_.AppendRowDir(batch, row, &row_dir_);
    row_files_[row] = FileFor(row_dir_);
  }
  rows_.resize(num_rows);
  std::iota(rows_.begin(), rows_.end(), size_t{0});
  std::stable_sort(rows_.begin(), rows_.end(), [&](size_t a, size_t b) { return row_files_[a] < row_files_[b]; });
  for (size_t begin = 0; begin < num_rows;) {
    const size_t file_idx = row_files_[rows_[begin]];
    size_t end = begin + 1;
    while (end < num_rows && row_files_[rows_[end]] == file_idx) ++end;
    RETURN_IF_ERROR(AppendRows(batch, file_idx, std::span<const size_t>(rows_).subspan(begin, end - begin)));
    file_rows_[file_idx] += static_cast<int64_t>(end - begin);
    begin = end;
  }
  return Status::OK();
}

Status PartWriterBase::Finish() {
  if (state_ != State::kOpen) return NotOpen("finish");
  std::vector<PartFile> done(paths_.size());
  for (size_t file_idx = 0; file_idx < paths_.size(); ++file_idx) {
    PartFile& d = done[file_idx];
    d.path = paths_[file_idx].rel_path;
    d.rows = file_rows_[file_idx];
    RETURN_IF_ERROR(FailOnError(FinishFile(file_idx, &d.bytes, &d.sha256)));
  }
  finished_ = std::move(done);
  state_ = State::kFinished;
  return Status::OK();
}

Status PartWriterBase::Commit() {
  if (state_ == State::kOpen) RETURN_IF_ERROR(Finish());
  if (state_ != State::kFinished) return NotOpen("commit");
  for (const FilePaths& p : paths_) {
    // Closed by FinishFile: synced through a new handle (fsync covers the file, not the handle).
    Result<std::unique_ptr<WritableFile>> file = env_->NewAppendableFile(p.tmp_path);
    Status synced = file.ok() ? (*file)->Sync() : file.status();
    if (synced.ok()) synced = (*file)->Close();
    RETURN_IF_ERROR(FailOnError(synced));
  }
  for (size_t file_idx = 0; file_idx < paths_.size(); ++file_idx) {
    // Marked first: a rename that fails may still have happened.
    on_disk_[file_idx] = OnDisk::kRenamed;
    RETURN_IF_ERROR(FailOnError(env_->RenameFile(paths_[file_idx].tmp_path, paths_[file_idx].final_path)));
  }
  // The files are in place; what is left is making the renames (and new
  // partition directories) durable. If that fails the caller retries the unit
  // and the part is written again.
  state_ = State::kCommitted;
  std::set<std::string> dirs{dir_};
  for (size_t file_idx = 0; file_idx < paths_.size(); ++file_idx) {
    ReleaseFile(file_idx);
    for (std::string d = paths_[file_idx].dir; d.size() > dir_.size() && dirs.insert(d).second;) d = DirName(d);
  }
  committed_ = std::move(finished_);
  std::sort(committed_.begin(), committed_.end(), [](const PartFile& a, const PartFile& b) { return a.path < b.path; });
  paths_.clear();
  index_.clear();
  Status synced = Status::OK();
  for (const std::string& d : dirs) {
    Status s = env_->SyncDir(d);
    if (synced.ok()) synced = s;
  }
  return synced;
}

void PartWriterBase::Abort() {
  if (state_ == State::kCommitted || state_ == State::kAborted) return;
  state_ = State::kAborted;
  // NotFound is fine (never created, or already removed); other errors leave
  // an orphan temporary that the next run's cleanup removes. A file renamed
  // into place by a failed Commit goes too: the part is all or nothing.
  for (size_t file_idx = 0; file_idx < paths_.size(); ++file_idx) {
    ReleaseFile(file_idx);
    if (on_disk_[file_idx] != OnDisk::kNone) (void)env_->RemoveFile(paths_[file_idx].tmp_path);
    if (on_disk_[file_idx] == OnDisk::kRenamed) (void)env_->RemoveFile(paths_[file_idx].final_path);
  }
  paths_.clear();
  index_.clear();
}

uint64_t PartWriterMemory(OutputFormat format, size_t num_columns) {
  // DuckDB holds about 8 MiB outside its limit (the appender's rows, compression buffers). Rows the
  // writer holds (up to a quarter of the limit) sit beside a database holding no table.
  return format == OutputFormat::kParquet ? ParquetPartMemoryLimit(num_columns) + (uint64_t{8} << 20) : 0;
}

std::string PartFileName(OutputFormat format, int part_index) {
  std::string name = "part-";
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), part_index);
  (void)ec;
  for (auto pad = 5 - (end - digits); pad > 0; --pad) name.push_back('0');
  name.append(digits, end);
  name.push_back('.');
  name.append(Extension(format));
  return name;
}

Result<std::unique_ptr<PartWriter>> OpenPartWriter(Env* env, const PartOptions& options) {
  if (options.part_index < 0) {
    return Status::InvalidArgument("part index " + std::to_string(options.part_index) + " is negative");
  }
  if (options.max_open_files == 0) return Status::InvalidArgument("part writer: max_open_files must be at least 1");
  if (options.format != OutputFormat::kCsv && options.format != OutputFormat::kJsonl &&
      options.format != OutputFormat::kParquet) {
    return Status::NotSupported("output.format: '" + std::string(OutputFormatName(options.format)) +
                                "' is written by a table sink, not a part writer");
  }
  ASSIGN_OR_RETURN(PartitionLayout layout, PartitionLayout::Make(options.schema, options.partition_by, options.layout_only_columns));
  RETURN_IF_ERROR(env->CreateDirs(options.dir));
  if (options.format == OutputFormat::kParquet) {
#if SLUICE_WITH_DUCKDB
    return OpenParquetPartWriter(env, options, std::move(layout));
#else
    return Status::NotSupported("output.format: parquet is not supported by this build (built without DuckDB; run scripts/bootstrap)");
#endif
  }
  auto writer = std::make_unique<TextPartWriter>(env, options, std::move(layout));
  RETURN_IF_ERROR(writer->Open());
  return std::unique_ptr<PartWriter>(std::move(writer));
}

}  // namespace sluice
