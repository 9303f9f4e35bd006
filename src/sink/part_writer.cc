// CSV and JSON Lines part writers, one file or one file per partition
// directory. Each file formats rows into a small buffer that goes to its
// temporary every ~64 KiB; the SHA-256 is updated with exactly the bytes handed
// to the file, so it matches the committed file across closes and reopenings.
//
// Partitioned writes keep at most max_open_files files open: the least
// recently used one is flushed, closed and its buffer freed, and it is reopened
// for append when rows for it come again. A batch's rows are grouped by file
// first (stably, so they keep their order), so a file is opened at most once
// per batch however its rows interleave with others'.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <list>
#include <numeric>
#include <set>
#include <span>
#include <unordered_map>

#include "core/sha256.h"
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

// One file of a part, under its temporary name until Commit renames it.
struct OutputFile {
  enum class OnDisk { kNone, kTemporary, kRenamed };

  size_t index = 0;        // in the writer's list of files
  std::string rel_path;    // relative to the output directory
  std::string dir;         // directory holding it
  std::string tmp_path;
  std::string final_path;
  std::unique_ptr<WritableFile> file;  // null while closed
  std::list<size_t>::iterator lru;     // its place in the open list, while open
  std::string buf;                     // formatted rows not yet handed to the file
  Sha256 hasher;
  int64_t rows = 0;
  uint64_t bytes = 0;  // handed to the file
  OnDisk on_disk = OnDisk::kNone;  // what may exist and must go on Abort
  bool synced = false;
};

class TextPartWriter final : public PartWriter {
 public:
  TextPartWriter(Env* env, const PartOptions& options, PartitionLayout layout)
      : env_(env),
        format_(options.format),
        text_format_(format_ == OutputFormat::kJsonl ? TextFormat::kJson : TextFormat::kCsv),
        dir_(options.dir),
        name_(PartFileName(format_, options.part_index)),
        tmp_name_("." + name_ + ".tmp-" + std::to_string(::getpid())),
        schema_(options.schema),
        max_open_files_(options.max_open_files),
        layout_(std::move(layout)) {
    const Schema& file_schema = layout_.file_schema();
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

  ~TextPartWriter() override {
    if (state_ != State::kCommitted) Abort();
  }

  // Unpartitioned, the one file exists from the start, so that a part with no
  // rows is still a (header-only) file and a failing create shows at open.
  Status OpenSingleFile() { return Open(*files_[FileFor("")]); }

  Status Write(const Batch& batch) override {
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
      RETURN_IF_ERROR(FailOnError(AppendRows(batch, 0, rows_)));
    } else {
      RETURN_IF_ERROR(FailOnError(WriteGrouped(batch)));
    }
    rows_written_ += static_cast<int64_t>(num_rows);
    return Status::OK();
  }

  Status Commit() override {
    if (state_ != State::kOpen) return NotOpen("commit");
    // Flush, sync and close every file: the open ones, then those closed
    // earlier, reopened one at a time.
    while (!lru_.empty()) RETURN_IF_ERROR(FailOnError(Close(*files_[lru_.front()], /*sync=*/true)));
    for (auto& f : files_) {
      if (f->synced) continue;
      Status s = Open(*f);
      if (s.ok()) s = Close(*f, /*sync=*/true);
      RETURN_IF_ERROR(FailOnError(s));
    }
    for (auto& f : files_) {
      // Marked first: a rename that fails may still have happened.
      f->on_disk = OutputFile::OnDisk::kRenamed;
      RETURN_IF_ERROR(FailOnError(env_->RenameFile(f->tmp_path, f->final_path)));
    }
    // The files are in place; what is left is making the renames (and new
    // partition directories) durable. If that fails the caller retries the
    // unit and the part is written again.
    state_ = State::kCommitted;
    std::set<std::string> dirs{dir_};
    for (auto& f : files_) {
      committed_.push_back(PartFile{f->rel_path, f->rows, f->bytes, f->hasher.HexDigest()});
      for (std::string d = f->dir; d.size() > dir_.size() && dirs.insert(d).second;) d = DirName(d);
    }
    std::sort(committed_.begin(), committed_.end(),
              [](const PartFile& a, const PartFile& b) { return a.path < b.path; });
    files_.clear();
    index_.clear();
    Status synced = Status::OK();
    for (const std::string& d : dirs) {
      Status s = env_->SyncDir(d);
      if (synced.ok()) synced = s;
    }
    return synced;
  }

  void Abort() override {
    if (state_ == State::kCommitted || state_ == State::kAborted) return;
    state_ = State::kAborted;
    lru_.clear();
    // NotFound is fine (never created, or already removed); other errors leave
    // an orphan temporary that the next run's cleanup removes. A file renamed
    // into place by a failed Commit goes too: the part is all or nothing.
    for (auto& f : files_) {
      f->file.reset();  // closes; errors do not matter, the file goes away
      if (f->on_disk != OutputFile::OnDisk::kNone) (void)env_->RemoveFile(f->tmp_path);
      if (f->on_disk == OutputFile::OnDisk::kRenamed) (void)env_->RemoveFile(f->final_path);
    }
    files_.clear();
    index_.clear();
  }

  int64_t rows_written() const override { return rows_written_; }
  uint64_t bytes_written() const override { return bytes_formatted_; }
  const std::vector<PartFile>& files() const override { return committed_; }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  Status NotOpen(std::string_view op) const {
    return Status::FailedPrecondition(std::string(op) + " '" + JoinPath(dir_, name_) + "': part is " +
                                      (state_ == State::kCommitted ? "committed" : "aborted"));
  }

  // A failed create, write, sync or rename leaves the part in an unknown
  // state: it is dropped whole and the unit must be written again.
  Status FailOnError(Status s) {
    if (!s.ok()) Abort();
    return s;
  }

  // The file for partition directory `rel_dir` ("" or "k=v/…/"), made on
  // first use (in memory only; Open creates it).
  size_t FileFor(const std::string& rel_dir) {
    auto [it, inserted] = index_.try_emplace(rel_dir, files_.size());
    if (!inserted) return it->second;
    auto f = std::make_unique<OutputFile>();
    f->index = files_.size();
    f->rel_path = rel_dir + name_;
    f->dir = rel_dir.empty() ? dir_ : JoinPath(dir_, std::string_view(rel_dir).substr(0, rel_dir.size() - 1));
    f->tmp_path = JoinPath(f->dir, tmp_name_);
    f->final_path = JoinPath(dir_, f->rel_path);
    files_.push_back(std::move(f));
    return it->second;
  }

  // Assigns each row of `batch` to its file, then writes each file's rows in
  // one go, in input order.
  Status WriteGrouped(const Batch& batch) {
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
      begin = end;
    }
    return Status::OK();
  }

  Status AppendRows(const Batch& batch, size_t file_idx, std::span<const size_t> rows) {
    OutputFile& f = *files_[file_idx];
    RETURN_IF_ERROR(Open(f));
    const std::vector<size_t>& cols = layout_.file_columns();
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
    f.rows += static_cast<int64_t>(rows.size());
    return Status::OK();
  }

  // Makes `f` open and most recently used, closing the least recently used
  // file if max_open_files are open. The first open creates the temporary (and
  // its directory); later ones append to it.
  Status Open(OutputFile& f) {
    if (f.file) {
      lru_.splice(lru_.begin(), lru_, f.lru);
      return Status::OK();
    }
    if (lru_.size() >= max_open_files_) RETURN_IF_ERROR(Close(*files_[lru_.back()], /*sync=*/false));
    if (f.on_disk == OutputFile::OnDisk::kNone) {
      RETURN_IF_ERROR(env_->CreateDirs(f.dir));
      f.on_disk = OutputFile::OnDisk::kTemporary;  // from here on, Abort removes it
      ASSIGN_OR_RETURN(f.file, env_->NewWritableFile(f.tmp_path));
      f.buf.append(header_);
      bytes_formatted_ += header_.size();
    } else {
      ASSIGN_OR_RETURN(f.file, env_->NewAppendableFile(f.tmp_path));
    }
    f.buf.reserve(kFlushBytes + kFlushBytes / 4);
    f.synced = false;
    lru_.push_front(f.index);
    f.lru = lru_.begin();
    return Status::OK();
  }

  // Flushes (and with `sync`, syncs) and closes `f`, and frees its buffer.
  Status Close(OutputFile& f, bool sync) {
    RETURN_IF_ERROR(FlushBuffer(f));
    if (sync) RETURN_IF_ERROR(f.file->Sync());
    RETURN_IF_ERROR(f.file->Close());
    f.file.reset();
    f.synced = sync;
    lru_.erase(f.lru);
    std::string().swap(f.buf);
    return Status::OK();
  }

  Status FlushBuffer(OutputFile& f) {
    if (f.buf.empty()) return Status::OK();
    f.hasher.Update(f.buf);
    f.bytes += f.buf.size();
    Status s = f.file->Append(f.buf);
    f.buf.clear();
    return s;
  }

  Env* const env_;
  const OutputFormat format_;
  const TextFormat text_format_;
  const std::string dir_;
  const std::string name_;      // "part-00007.csv"
  const std::string tmp_name_;  // ".part-00007.csv.tmp-<pid>"
  const Schema schema_;
  const size_t max_open_files_;
  PartitionLayout layout_;
  std::string header_;  // CSV: the header line of every file
  std::vector<std::string> json_keys_;

  std::vector<std::unique_ptr<OutputFile>> files_;  // in order of first use
  std::unordered_map<std::string, size_t> index_;   // partition directory -> index in files_
  std::list<size_t> lru_;                           // open files, most recently used first
  std::vector<PartFile> committed_;

  // Per-batch scratch, kept for its capacity.
  std::string row_dir_;
  std::vector<size_t> row_files_;  // each row's file
  std::vector<size_t> rows_;       // row indices, grouped by file, in order within each

  State state_ = State::kOpen;
  int64_t rows_written_ = 0;
  uint64_t bytes_formatted_ = 0;  // header and rows, handed to files or buffered
};

}  // namespace

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
  if (options.format != OutputFormat::kCsv && options.format != OutputFormat::kJsonl) {
    return Status::NotSupported("output.format: '" + std::string(OutputFormatName(options.format)) +
                                "' is not supported yet");
  }
  ASSIGN_OR_RETURN(PartitionLayout layout, PartitionLayout::Make(options.schema, options.partition_by, options.layout_only_columns));
  RETURN_IF_ERROR(env->CreateDirs(options.dir));
  auto writer = std::make_unique<TextPartWriter>(env, options, std::move(layout));
  if (options.partition_by.empty()) RETURN_IF_ERROR(writer->OpenSingleFile());
  return std::unique_ptr<PartWriter>(std::move(writer));
}

}  // namespace sluice
