// Env: every access Sluice makes to the operating system — files, directories,
// rename, fsync, clock, sleep — goes through this interface, so tests can swap in
// an in-memory Env or wrap the real one to inject faults (as in LevelDB).
//
// Thread-safety: Env implementations are safe for concurrent use. File objects
// are not: each is used by one thread at a time.
//
// Errors: a missing path is kNotFound, other OS failures kIOError (transient) —
// except ENOSPC/EDQUOT (kResourceExhausted) and EACCES/EPERM (kFailedPrecondition),
// which retrying does not fix. Messages name the path and the OS error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

// Reads a file front to back.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into scratch; returns the number read, 0 at end of file.
  virtual Result<size_t> Read(size_t n, char* scratch) = 0;
  // Skips n bytes forward.
  virtual Status Skip(uint64_t n) = 0;
};

// Reads any range of a file; safe for concurrent ReadAt calls.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset; fewer only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const = 0;
};

// Writes a file from the start. Close() is called by the destructor if needed,
// ignoring errors: call Close() to see them.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Flush() = 0;
  // Flushes and makes the contents durable (fsync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

struct FileInfo {
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
  bool is_dir = false;
};

// A held advisory lock on a file (see Env::LockFile); released on destruction
// and by the operating system when the process dies.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never deleted. Pass it down; do not call this
  // from library code below the CLI.
  static Env* Default();

  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) = 0;
  // Creates or truncates.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens for appending at the end; creates the file if missing.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  // Creates dir and its missing parents; OK if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Removes an empty directory.
  virtual Status RemoveDir(const std::string& dir) = 0;
  // Atomically replaces `to` with `from`.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Makes the directory's entries (creations, renames) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Takes an advisory lock on `path` (created if missing) without waiting:
  // `exclusive`, or shared with other shared holders. kUnavailable when another
  // holder (this process or another) prevents it; a lock of a dead process
  // never does (POSIX: flock). Locks are per call: two calls in one process
  // exclude each other like two processes.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path, bool exclusive) = 0;

  // Monotonic clock, microseconds.
  virtual uint64_t NowMicros() = 0;
  virtual void SleepForMicros(uint64_t micros) = 0;
};

// Forwards every call to a target Env; subclass it to change a few calls.
// The target is borrowed and must outlive the wrapper.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& p) override { return target_->NewSequentialFile(p); }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& p) override { return target_->NewRandomAccessFile(p); }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p) override { return target_->NewWritableFile(p); }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& p) override { return target_->NewAppendableFile(p); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& p, bool exclusive) override { return target_->LockFile(p, exclusive); }
  bool FileExists(const std::string& p) override { return target_->FileExists(p); }
  Result<FileInfo> Stat(const std::string& p) override { return target_->Stat(p); }
  Result<std::vector<std::string>> GetChildren(const std::string& d) override { return target_->GetChildren(d); }
  Status CreateDirs(const std::string& d) override { return target_->CreateDirs(d); }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status RemoveDir(const std::string& d) override { return target_->RemoveDir(d); }
  Status RenameFile(const std::string& f, const std::string& t) override { return target_->RenameFile(f, t); }
  Status SyncDir(const std::string& d) override { return target_->SyncDir(d); }
  uint64_t NowMicros() override { return target_->NowMicros(); }
  void SleepForMicros(uint64_t us) override { target_->SleepForMicros(us); }

 private:
  Env* target_;
};

// An Env that keeps files in memory (paths are plain strings, "/" separated;
// directories exist implicitly). Clock is real; for tests.
std::unique_ptr<Env> NewMemEnv();

// ---- Helpers built on Env -------------------------------------------------

// Reads a whole file.
Result<std::string> ReadFileToString(Env* env, const std::string& path);

// Writes data to path durably and atomically: writes path + ".tmp-<unique>",
// syncs it, renames it over path, syncs the directory. Readers see the old
// content or the new, never a part.
Status WriteFileAtomic(Env* env, const std::string& path, std::string_view data);

// Expands a file, a directory (its regular files, sorted, hidden ones skipped) or
// a glob pattern (*, ?, [..] in any component) into a sorted list of files.
// kNotFound when nothing matches.
Result<std::vector<std::string>> ExpandInputPaths(Env* env, const std::string& pattern);

// Removes `dir` and everything below it; OK if it does not exist.
Status RemoveTree(Env* env, const std::string& dir);

// "a/b" + "c" -> "a/b/c". Directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string JoinPath(std::string_view dir, std::string_view name);
std::string DirName(std::string_view path);

}  // namespace sluice
