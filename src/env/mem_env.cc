// An in-memory Env for tests: files are strings in a map, directories are
// implicit (a path is a directory if it was created with CreateDirs or any file
// lies below it). Paths are normalized lexically ("a//b/./c" -> "a/b/c").
//
// File creation does not require the parent directory to exist, unlike POSIX:
// directories are implicit. A path whose ancestor is a file is rejected.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "sluice/env.h"

namespace sluice {
namespace {

// One file's bytes. Guarded by its own mutex so a reader and a writer of the
// same file may run on different threads.
struct MemFile {
  std::mutex mu;
  std::string data;  // guarded by mu
  int64_t mtime_ns = 0;  // guarded by mu
};

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Lexical normalization: drops empty and "." components, resolves ".." where
// possible. "" and "." become "."; a leading "/" is kept.
std::string Normalize(std::string_view path) {
  bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == ".." && !parts.empty() && parts.back() != "..") {
      parts.pop_back();
      continue;
    }
    if (part == ".." && absolute) continue;  // "/.." is "/"
    parts.push_back(part);
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(parts[i]);
  }
  if (out.empty()) out = ".";
  return out;
}

// The prefix every path strictly inside `dir` starts with ("" for ".": every
// relative path).
std::string ChildPrefix(const std::string& dir) {
  if (dir == ".") return "";
  if (dir == "/") return "/";
  return dir + "/";
}

bool IsRoot(const std::string& dir) { return dir == "." || dir == "/"; }

Status MemError(std::string_view op, std::string_view path, std::string_view what,
                StatusCode code) {
  std::string msg;
  msg.append(op).append(" '").append(path).append("': ").append(what);
  return Status(code, std::move(msg));
}

Status NoSuchFile(std::string_view op, std::string_view path) {
  return MemError(op, path, "No such file or directory", StatusCode::kNotFound);
}

class MemSequentialFile final : public SequentialFile {
 public:
  explicit MemSequentialFile(std::shared_ptr<MemFile> file) : file_(std::move(file)) {}

  Result<size_t> Read(size_t n, char* scratch) override {
    std::lock_guard<std::mutex> lock(file_->mu);
    const std::string& data = file_->data;
    if (pos_ >= data.size()) return size_t{0};
    size_t take = std::min<uint64_t>(n, data.size() - pos_);
    std::memcpy(scratch, data.data() + pos_, take);
    pos_ += take;
    return take;
  }

  Status Skip(uint64_t n) override {
    pos_ += n;
    return Status::OK();
  }

 private:
  std::shared_ptr<MemFile> file_;
  uint64_t pos_ = 0;
};

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  explicit MemRandomAccessFile(std::shared_ptr<MemFile> file) : file_(std::move(file)) {}

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    std::lock_guard<std::mutex> lock(file_->mu);
    const std::string& data = file_->data;
    if (offset >= data.size()) return size_t{0};
    size_t take = std::min<uint64_t>(n, data.size() - offset);
    std::memcpy(scratch, data.data() + offset, take);
    return take;
  }

 private:
  std::shared_ptr<MemFile> file_;
};

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(std::string path, std::shared_ptr<MemFile> file)
      : path_(std::move(path)), file_(std::move(file)) {}

  Status Append(std::string_view data) override {
    if (closed_) return Closed("append");
    std::lock_guard<std::mutex> lock(file_->mu);
    file_->data.append(data);
    file_->mtime_ns = WallNanos();
    return Status::OK();
  }
  Status Flush() override { return closed_ ? Closed("flush") : Status::OK(); }
  Status Sync() override { return closed_ ? Closed("sync") : Status::OK(); }
  Status Close() override {
    closed_ = true;
    return Status::OK();
  }

 private:
  Status Closed(std::string_view op) const {
    return MemError(op, path_, "file is closed", StatusCode::kFailedPrecondition);
  }

  const std::string path_;
  std::shared_ptr<MemFile> file_;
  bool closed_ = false;
};

class MemEnv final : public Env {
 public:
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    ASSIGN_OR_RETURN(std::shared_ptr<MemFile> file, OpenExisting(path));
    return std::unique_ptr<SequentialFile>(new MemSequentialFile(std::move(file)));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    ASSIGN_OR_RETURN(std::shared_ptr<MemFile> file, OpenExisting(path));
    return std::unique_ptr<RandomAccessFile>(new MemRandomAccessFile(std::move(file)));
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    if (IsDirLocked(p)) return MemError("open", path, "Is a directory", StatusCode::kIOError);
    RETURN_IF_ERROR(CheckAncestorsLocked(p, path));
    // A fresh object: readers that opened the old contents keep them.
    auto file = std::make_shared<MemFile>();
    file->mtime_ns = WallNanos();
    files_[p] = file;
    return std::unique_ptr<WritableFile>(new MemWritableFile(path, std::move(file)));
  }

  // The file at normalized path `p` (named `path` in errors), created empty if missing.
  Result<std::shared_ptr<MemFile>> OpenOrCreateLocked(const std::string& p, const std::string& path) {
    if (IsDirLocked(p)) return MemError("open", path, "Is a directory", StatusCode::kIOError);
    RETURN_IF_ERROR(CheckAncestorsLocked(p, path));
    std::shared_ptr<MemFile>& file = files_[p];
    if (!file) {
      file = std::make_shared<MemFile>();
      file->mtime_ns = WallNanos();
    }
    return file;
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(std::shared_ptr<MemFile> file, OpenOrCreateLocked(p, path));
    return std::unique_ptr<WritableFile>(new MemWritableFile(path, std::move(file)));
  }

  bool FileExists(const std::string& path) override {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    return files_.count(p) > 0 || IsDirLocked(p);
  }

  Result<FileInfo> Stat(const std::string& path) override {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(p);
    FileInfo info;
    if (it != files_.end()) {
      std::lock_guard<std::mutex> file_lock(it->second->mu);
      info.size = it->second->data.size();
      info.mtime_ns = it->second->mtime_ns;
      return info;
    }
    if (IsDirLocked(p)) {
      info.is_dir = true;
      return info;
    }
    return NoSuchFile("stat", path);
  }

  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    std::string p = Normalize(dir);
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.count(p) > 0) return MemError("opendir", dir, "Not a directory", StatusCode::kNotFound);
    if (!IsDirLocked(p)) return NoSuchFile("opendir", dir);
    std::string prefix = ChildPrefix(p);
    std::set<std::string> names;
    auto collect = [&](const std::string& key) {
      if (prefix.empty() && !key.empty() && key.front() == '/') return;  // "." lists relative paths
      std::string_view rest = std::string_view(key).substr(prefix.size());
      size_t slash = rest.find('/');
      names.emplace(rest.substr(0, slash));
    };
    for (auto it = files_.lower_bound(prefix); it != files_.end() && it->first.starts_with(prefix); ++it) {
      if (it->first != p) collect(it->first);
    }
    for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && it->starts_with(prefix); ++it) {
      if (*it != p) collect(*it);
    }
    return std::vector<std::string>(names.begin(), names.end());
  }

  Status CreateDirs(const std::string& dir) override {
    std::string p = Normalize(dir);
    std::lock_guard<std::mutex> lock(mu_);
    if (IsRoot(p)) return Status::OK();
    if (files_.count(p) > 0) {
      return MemError("mkdir", dir, "exists and is not a directory", StatusCode::kFailedPrecondition);
    }
    RETURN_IF_ERROR(CheckAncestorsLocked(p, dir));
    // Record every level so empty parents list their child directory.
    std::string cur = p;
    while (!IsRoot(cur) && dirs_.insert(cur).second) cur = DirName(cur);
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.erase(p) == 0) {
      if (IsDirLocked(p)) return MemError("remove", path, "Is a directory", StatusCode::kIOError);
      return NoSuchFile("remove", path);
    }
    return Status::OK();
  }

  Status RemoveDir(const std::string& dir) override {
    std::string p = Normalize(dir);
    std::lock_guard<std::mutex> lock(mu_);
    if (!IsDirLocked(p)) return NoSuchFile("remove directory", dir);
    const std::string prefix = p + "/";
    auto file = files_.lower_bound(prefix);
    auto sub = dirs_.lower_bound(prefix);
    if ((file != files_.end() && file->first.starts_with(prefix)) || (sub != dirs_.end() && sub->starts_with(prefix))) {
      return MemError("remove directory", dir, "Directory not empty", StatusCode::kIOError);
    }
    dirs_.erase(p);
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    std::string f = Normalize(from);
    std::string t = Normalize(to);
    std::string what = from + "' to '" + to;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(f);
    if (it == files_.end()) {
      if (IsDirLocked(f)) return RenameDirLocked(f, t, what);
      return NoSuchFile("rename", what);
    }
    if (f == t) return Status::OK();
    if (IsDirLocked(t)) return MemError("rename", what, "Is a directory", StatusCode::kIOError);
    RETURN_IF_ERROR(CheckAncestorsLocked(t, to));
    std::shared_ptr<MemFile> file = it->second;
    files_.erase(it);
    files_[t] = std::move(file);
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    std::string p = Normalize(dir);
    std::lock_guard<std::mutex> lock(mu_);
    if (!IsDirLocked(p)) return NoSuchFile("open", dir);
    return Status::OK();
  }

  uint64_t NowMicros() override {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  }

  void SleepForMicros(uint64_t micros) override {
    std::this_thread::sleep_for(std::chrono::microseconds(micros));
  }

 private:
  Result<std::shared_ptr<MemFile>> OpenExisting(const std::string& path) {
    std::string p = Normalize(path);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(p);
    if (it != files_.end()) return it->second;
    if (IsDirLocked(p)) return MemError("read", path, "Is a directory", StatusCode::kIOError);
    return NoSuchFile("open", path);
  }

  bool IsDirLocked(const std::string& p) const {
    if (IsRoot(p)) return true;
    if (dirs_.count(p) > 0) return true;
    std::string prefix = p + "/";
    auto it = files_.lower_bound(prefix);
    return it != files_.end() && it->first.starts_with(prefix);
  }

  // Fails if an ancestor of `p` is a file ("a.txt/b").
  Status CheckAncestorsLocked(const std::string& p, std::string_view shown) const {
    std::string cur = DirName(p);
    while (!IsRoot(cur)) {
      if (files_.count(cur) > 0) return MemError("open", shown, "Not a directory", StatusCode::kNotFound);
      std::string parent = DirName(cur);
      if (parent == cur) break;
      cur = std::move(parent);
    }
    return Status::OK();
  }

  Status RenameDirLocked(const std::string& f, const std::string& t, std::string_view what) {
    if (f == t) return Status::OK();
    if (files_.count(t) > 0) return MemError("rename", what, "Not a directory", StatusCode::kIOError);
    if (t.starts_with(f + "/")) return MemError("rename", what, "Invalid argument", StatusCode::kIOError);
    std::string to_prefix = t + "/";
    auto non_empty = files_.lower_bound(to_prefix);
    if ((non_empty != files_.end() && non_empty->first.starts_with(to_prefix))) {
      return MemError("rename", what, "Directory not empty", StatusCode::kIOError);
    }
    std::string from_prefix = f + "/";
    std::vector<std::pair<std::string, std::shared_ptr<MemFile>>> moved;
    for (auto it = files_.lower_bound(from_prefix);
         it != files_.end() && it->first.starts_with(from_prefix);) {
      moved.emplace_back(to_prefix + it->first.substr(from_prefix.size()), std::move(it->second));
      it = files_.erase(it);
    }
    for (auto& [path, file] : moved) files_[path] = std::move(file);
    dirs_.erase(f);
    std::vector<std::string> moved_dirs;
    for (auto it = dirs_.lower_bound(from_prefix); it != dirs_.end() && it->starts_with(from_prefix);) {
      moved_dirs.push_back(to_prefix + it->substr(from_prefix.size()));
      it = dirs_.erase(it);
    }
    for (auto& d : moved_dirs) dirs_.insert(std::move(d));
    dirs_.insert(t);
    return Status::OK();
  }

  // Holders per locked path: -1 exclusive, n > 0 shared. Shared with the locks
  // handed out, which may outlive the Env.
  struct LockTable {
    std::mutex mu;
    std::map<std::string, int> holders;
  };

  class MemFileLock final : public FileLock {
   public:
    MemFileLock(std::shared_ptr<LockTable> table, std::string path) : table_(std::move(table)), path_(std::move(path)) {}
    ~MemFileLock() override {
      std::lock_guard<std::mutex> lock(table_->mu);
      int& n = table_->holders[path_];
      n = n < 0 ? 0 : n - 1;
      if (n == 0) table_->holders.erase(path_);
    }

   private:
    std::shared_ptr<LockTable> table_;
    std::string path_;
  };

 public:
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path, bool exclusive) override {
    const std::string p = Normalize(path);
    {
      std::lock_guard<std::mutex> lock(mu_);
      RETURN_IF_ERROR(OpenOrCreateLocked(p, path).status());
    }
    std::lock_guard<std::mutex> lock(locks_->mu);
    int& n = locks_->holders[p];
    if (n < 0 || (exclusive && n > 0)) return Status::Unavailable("'" + path + "' is locked by another run");
    n = exclusive ? -1 : n + 1;
    return std::unique_ptr<FileLock>(new MemFileLock(locks_, p));
  }

 private:
  std::shared_ptr<LockTable> locks_ = std::make_shared<LockTable>();
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<MemFile>> files_;  // guarded by mu_
  std::set<std::string> dirs_;                             // guarded by mu_
};

}  // namespace

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

}  // namespace sluice
