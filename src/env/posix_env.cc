// The POSIX Env: thin wrappers over open/read/pread/write/fsync/rename/opendir.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "sluice/env.h"

namespace sluice {
namespace {

// Maps errno to a code as env.h promises: "open 'x/y.csv': No such file or directory".
Status PosixError(std::string_view op, std::string_view path, int err) {
  std::string msg;
  msg.reserve(op.size() + path.size() + 48);
  msg.append(op).append(" '").append(path).append("': ");
  msg.append(std::generic_category().message(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Status::NotFound(std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return Status::ResourceExhausted(std::move(msg));
    case EACCES:
    case EPERM:
    case EROFS:
      return Status::FailedPrecondition(std::move(msg));
    default:
      return Status::IOError(std::move(msg));
  }
}

constexpr size_t kWriteBufferSize = 64 * 1024;

// close(2) that keeps errno-derived status; EINTR on close must not be retried
// on Linux (the descriptor is already released).
Status CloseFd(int fd, const std::string& path) {
  if (::close(fd) != 0 && errno != EINTR) return PosixError("close", path, errno);
  return Status::OK();
}

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  Result<size_t> Read(size_t n, char* scratch) override {
    while (true) {
      ssize_t got = ::read(fd_, scratch, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return PosixError("read", path_, errno);
    }
  }

  Status Skip(uint64_t n) override {
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) == static_cast<off_t>(-1)) {
      return PosixError("seek", path_, errno);
    }
    return Status::OK();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    // pread may return short counts before end of file (signals, pipes); the
    // contract promises a short read only at end of file, so loop.
    size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return PosixError("read", path_, errno);
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {
    buf_.reserve(kWriteBufferSize);
  }
  ~PosixWritableFile() override {
    if (fd_ >= 0) (void)Close();
  }

  Status Append(std::string_view data) override {
    RETURN_IF_ERROR(CheckOpen("append"));
    if (buf_.size() + data.size() <= kWriteBufferSize) {
      buf_.append(data);
      return Status::OK();
    }
    RETURN_IF_ERROR(FlushBuffer());
    if (data.size() < kWriteBufferSize) {
      buf_.append(data);
      return Status::OK();
    }
    return WriteRaw(data);
  }

  Status Flush() override {
    RETURN_IF_ERROR(CheckOpen("flush"));
    return FlushBuffer();
  }

  Status Sync() override {
    RETURN_IF_ERROR(CheckOpen("sync"));
    RETURN_IF_ERROR(FlushBuffer());
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return PosixError("fsync", path_, errno);
    }
    return Status::OK();
  }

  Status Close() override {
    if (fd_ < 0) return Status::OK();
    Status flushed = FlushBuffer();
    Status closed = CloseFd(fd_, path_);
    fd_ = -1;
    if (!flushed.ok()) return flushed;
    return closed;
  }

 private:
  Status CheckOpen(const char* op) const {
    if (fd_ < 0) {
      return Status::FailedPrecondition(std::string(op) + " '" + path_ + "': file is closed");
    }
    return Status::OK();
  }

  Status FlushBuffer() {
    if (buf_.empty()) return Status::OK();
    Status s = WriteRaw(buf_);
    buf_.clear();
    return s;
  }

  Status WriteRaw(std::string_view data) {
    while (!data.empty()) {
      ssize_t put = ::write(fd_, data.data(), data.size());
      if (put < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(put));
    }
    return Status::OK();
  }

  const std::string path_;
  int fd_;
  std::string buf_;
};

int OpenRetryingEintr(const std::string& path, int flags, mode_t mode = 0) {
  while (true) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

// The descriptor holds the flock; closing it releases the lock.
class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = OpenRetryingEintr(path, O_RDONLY);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    int fd = OpenRetryingEintr(path, O_RDONLY);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = OpenRetryingEintr(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path, bool exclusive) override {
    int fd = OpenRetryingEintr(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError("open", path, errno);
    int rc;
    do {
      rc = ::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::Unavailable("'" + path + "' is locked by another run");
      return PosixError("flock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    int fd = OpenRetryingEintr(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    FileInfo info;
    info.size = static_cast<uint64_t>(st.st_size);
    info.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    info.is_dir = S_ISDIR(st.st_mode);
    return info;
  }

  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("opendir", dir, errno);
    std::vector<std::string> names;
    while (true) {
      errno = 0;
      struct dirent* entry = ::readdir(d);
      if (entry == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) return PosixError("readdir", dir, err);
        break;
      }
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDirs(const std::string& dir) override {
    std::string path = dir;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty() || path == "/" || path == ".") return Status::OK();
    if (::mkdir(path.c_str(), 0755) == 0) return Status::OK();
    int err = errno;
    if (err == EEXIST) return CheckIsDir(path);
    if (err != ENOENT) return PosixError("mkdir", path, err);
    // A parent is missing: create it, then retry (another process may win the race).
    std::string parent = DirName(path);
    if (parent != path) RETURN_IF_ERROR(CreateDirs(parent));
    if (::mkdir(path.c_str(), 0755) == 0) return Status::OK();
    err = errno;
    if (err == EEXIST) return CheckIsDir(path);
    return PosixError("mkdir", path, err);
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("remove", path, errno);
    return Status::OK();
  }

  Status RemoveDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) return PosixError("remove directory", dir, errno);
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename", from + "' to '" + to, errno);
    }
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    const std::string& path = dir.empty() ? kDot : dir;
    int fd = OpenRetryingEintr(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PosixError("open", path, errno);
    Status s;
    while (::fsync(fd) != 0) {
      if (errno == EINTR) continue;
      // Some file systems do not support fsync on directories; nothing to make durable there.
      if (errno != EINVAL) s = PosixError("fsync", path, errno);
      break;
    }
    Status closed = CloseFd(fd, path);
    if (!s.ok()) return s;
    return closed;
  }

  uint64_t NowMicros() override {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  }

  void SleepForMicros(uint64_t micros) override {
    std::this_thread::sleep_for(std::chrono::microseconds(micros));
  }

 private:
  inline static const std::string kDot = ".";

  Status CheckIsDir(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    if (!S_ISDIR(st.st_mode)) {
      return Status::FailedPrecondition("mkdir '" + path + "': exists and is not a directory");
    }
    return Status::OK();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace sluice
