// The commit protocol and partition grouping shared by the part writers
// (part_writer.cc: CSV and JSON Lines; parquet_part_writer.cc: Parquet).
//
// A part is one file per partition directory its rows fall in (one file when
// unpartitioned, made at open), each written under ".<name>.tmp-<pid>" in its
// directory. Write checks the batch's schema, groups its rows by file (stably:
// every file receives its rows in input order, once per batch) and hands each
// group to AppendRows. Finish has every file finished (FinishFile: complete
// under its temporary name); Commit syncs each (reopened by path), renames it
// into place and syncs the output directory and every partition directory. A
// failed create, write, finish or rename drops the whole part (Abort):
// temporaries are removed, and so are files a failed Commit had already renamed.
//
// Subclasses keep per-file state in their own containers, indexed by file
// index (AddFile announces each new one), and must call Abort() in their
// destructor: the base cannot call back into a destroyed subclass.
//
// Thread-safety: one thread at a time, as PartWriter.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sink/partition_layout.h"
#include "sluice/sink.h"

namespace sluice {

class PartWriterBase : public PartWriter {
 public:
  Status Write(const Batch& batch) final;
  Status Finish() final;
  Status Commit() final;
  void Abort() final;
  int64_t rows_written() const final { return rows_written_; }
  const std::vector<PartFile>& files() const final { return committed_; }

 protected:
  PartWriterBase(Env* env, const PartOptions& options, PartitionLayout layout);

  // One file of the part.
  struct FilePaths {
    std::string rel_path;    // relative to the output directory
    std::string dir;         // directory holding it
    std::string tmp_path;
    std::string final_path;
  };

  // Makes the single file of an unpartitioned part (call once, at open).
  Status OpenSingleFile() { return FailOnError(OpenFile(FileFor(""))); }
  // From now on Abort removes the temporary of file `file_idx` (call before creating it).
  void MarkCreated(size_t file_idx) { on_disk_[file_idx] = OnDisk::kTemporary; }
  bool created(size_t file_idx) const { return on_disk_[file_idx] != OnDisk::kNone; }

  Env* env() const { return env_; }
  const std::string& dir() const { return dir_; }
  const std::string& name() const { return name_; }
  const Schema& schema() const { return schema_; }
  const PartitionLayout& layout() const { return layout_; }
  const FilePaths& paths(size_t file_idx) const { return paths_[file_idx]; }

  // ---- hooks ----
  // A new file (index = the number of files before it): set up its state.
  virtual void AddFile(size_t file_idx) = 0;
  // Unpartitioned parts only: the file exists from the start (so a part with no
  // rows is a file still, and a failing create shows at open).
  virtual Status OpenFile(size_t file_idx) = 0;
  // Writes `rows` of `batch` (indices, in order) into file `file_idx`.
  virtual Status AppendRows(const Batch& batch, size_t file_idx, std::span<const size_t> rows) = 0;
  // Completes and closes file `file_idx` under its temporary name (the base
  // syncs it at Commit), and returns its size and the hex SHA-256 of its bytes.
  virtual Status FinishFile(size_t file_idx, uint64_t* bytes, std::string* sha256) = 0;
  // Releases what file `file_idx` holds (after Commit, and on Abort before the
  // base removes its files). Must not fail.
  virtual void ReleaseFile(size_t file_idx) = 0;

 private:
  enum class State { kOpen, kFinished, kCommitted, kAborted };
  enum class OnDisk { kNone, kTemporary, kRenamed };  // what may exist and must go on Abort

  Status NotOpen(std::string_view op) const;
  Status FailOnError(Status s);
  // The file for partition directory `rel_dir` ("" or "k=v/…/"), made on first use.
  size_t FileFor(const std::string& rel_dir);
  Status WriteGrouped(const Batch& batch);

  Env* const env_;
  const std::string dir_;
  const std::string name_;      // "part-00007.csv"
  const std::string tmp_name_;  // ".part-00007.csv.tmp-<pid>"
  const Schema schema_;
  PartitionLayout layout_;

  std::vector<FilePaths> paths_;   // in order of first use
  std::vector<OnDisk> on_disk_;
  std::vector<int64_t> file_rows_;
  std::unordered_map<std::string, size_t> index_;  // partition directory -> file index
  std::vector<PartFile> finished_;   // by file index, from Finish to Commit
  std::vector<PartFile> committed_;  // sorted by path

  // Per-batch scratch, kept for its capacity.
  std::string row_dir_;
  std::vector<size_t> row_files_;  // each row's file
  std::vector<size_t> rows_;       // row indices, grouped by file, in order within each

  State state_ = State::kOpen;
  int64_t rows_written_ = 0;
};

// A Parquet part writer's DuckDB memory_limit: appending to a table pins a
// block or two per column, so it grows with the columns; it also bounds the
// row groups written.
inline uint64_t ParquetPartMemoryLimit(size_t num_columns) {
  return (uint64_t{16} << 20) + (uint64_t{1} << 20) * num_columns;
}

// Parquet parts (sink/parquet_part_writer.cc; DuckDB builds only).
Result<std::unique_ptr<PartWriter>> OpenParquetPartWriter(Env* env, const PartOptions& options, PartitionLayout layout);

}  // namespace sluice
