#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "env/fault_injection_env.h"
#include "sluice/env.h"

namespace sluice {
namespace {

::testing::AssertionResult HasText(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// ---- Env under test: one POSIX, one in memory ------------------------------

// A fresh directory under /tmp, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sluice_env_test_XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct PosixEnvFactory {
  Env* env() { return Env::Default(); }
  std::string root() { return dir.path(); }
  TempDir dir;
};

struct MemEnvFactory {
  MemEnvFactory() : mem(NewMemEnv()) { EXPECT_TRUE(mem->CreateDirs("/mem/root").ok()); }
  Env* env() { return mem.get(); }
  std::string root() { return "/mem/root"; }
  std::unique_ptr<Env> mem;
};

template <typename Factory>
class EnvConformanceTest : public ::testing::Test {
 protected:
  Env* env() { return factory_.env(); }
  std::string P(std::string_view name) { return JoinPath(factory_.root(), name); }

  void Write(const std::string& path, std::string_view data) {
    ASSERT_TRUE(env()->CreateDirs(DirName(path)).ok());
    auto file = env()->NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Append(data).ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  std::string Read(const std::string& path) {
    auto data = ReadFileToString(env(), path);
    EXPECT_TRUE(data.ok()) << data.status().ToString();
    return data.ok() ? *data : std::string();
  }

  Factory factory_;
};

using EnvFactories = ::testing::Types<PosixEnvFactory, MemEnvFactory>;
class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, PosixEnvFactory> ? "Posix" : "Mem";
  }
};
TYPED_TEST_SUITE(EnvConformanceTest, EnvFactories, EnvNames);

TYPED_TEST(EnvConformanceTest, WriteAppendsAndReadReturnsSameBytes) {
  std::string path = this->P("a.txt");
  auto file = this->env()->NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("hello, ").ok());
  ASSERT_TRUE((*file)->Append("world\n").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(this->Read(path), "hello, world\n");
  auto info = this->env()->Stat(path);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 13u);
  EXPECT_FALSE(info->is_dir);
  EXPECT_GT(info->mtime_ns, 0);
}

TYPED_TEST(EnvConformanceTest, LargeWritesCrossTheBufferAndReadBackExactly) {
  std::string data;
  for (int i = 0; i < 50000; ++i) data += std::to_string(i) + ",";
  ASSERT_GT(data.size(), 200000u);
  std::string path = this->P("big.txt");
  auto file = this->env()->NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  // Pieces of mixed sizes: small ones buffer, one larger than the buffer goes straight through.
  size_t pos = 0;
  for (size_t piece : {size_t{10}, size_t{70000}, size_t{1}, size_t{65536}, size_t{100}}) {
    ASSERT_TRUE((*file)->Append(std::string_view(data).substr(pos, piece)).ok());
    pos += piece;
  }
  ASSERT_TRUE((*file)->Append(std::string_view(data).substr(pos)).ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(this->Read(path), data);

  auto ra = this->env()->NewRandomAccessFile(path);
  ASSERT_TRUE(ra.ok());
  char buf[32];
  auto got = (*ra)->ReadAt(100000, 20, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), data.substr(100000, 20));
  got = (*ra)->ReadAt(data.size() - 5, 20, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), data.substr(data.size() - 5));
  got = (*ra)->ReadAt(data.size() + 10, 20, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 0u);
}

TYPED_TEST(EnvConformanceTest, ConcurrentReadAtSeesConsistentBytes) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  std::string path = this->P("ra.txt");
  this->Write(path, data);
  auto ra = this->env()->NewRandomAccessFile(path);
  ASSERT_TRUE(ra.ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      char buf[100];
      for (uint64_t off = t; off + 100 <= data.size(); off += 997) {
        auto got = (*ra)->ReadAt(off, 100, buf);
        if (!got.ok() || std::string_view(buf, *got) != std::string_view(data).substr(off, 100)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TYPED_TEST(EnvConformanceTest, SequentialReadAndSkip) {
  std::string path = this->P("seq.txt");
  this->Write(path, "0123456789");
  auto file = this->env()->NewSequentialFile(path);
  ASSERT_TRUE(file.ok());
  char buf[4];
  auto got = (*file)->Read(3, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "012");
  ASSERT_TRUE((*file)->Skip(4).ok());
  got = (*file)->Read(4, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "789");
  got = (*file)->Read(4, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 0u);
}

TYPED_TEST(EnvConformanceTest, MissingPathsAreNotFoundAndNameThePath) {
  std::string path = this->P("nope/x.csv");
  auto seq = this->env()->NewSequentialFile(path);
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(seq.status().message(), "open '" + path + "': No such file or directory");
  EXPECT_EQ(this->env()->NewRandomAccessFile(path).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->env()->Stat(path).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->env()->RemoveFile(path).code(), StatusCode::kNotFound);
  EXPECT_EQ(this->env()->GetChildren(this->P("nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->env()->SyncDir(this->P("nope")).code(), StatusCode::kNotFound);
  Status rename = this->env()->RenameFile(path, this->P("y.csv"));
  EXPECT_EQ(rename.code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasText(rename.message(), path));
  EXPECT_FALSE(this->env()->FileExists(path));
  auto read = ReadFileToString(this->env(), path);
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
}

TYPED_TEST(EnvConformanceTest, CreateDirsIsRecursiveAndIdempotent) {
  std::string dir = this->P("a/b/c");
  ASSERT_TRUE(this->env()->CreateDirs(dir).ok());
  ASSERT_TRUE(this->env()->CreateDirs(dir).ok());
  ASSERT_TRUE(this->env()->CreateDirs(dir + "/").ok());
  EXPECT_TRUE(this->env()->FileExists(dir));
  auto info = this->env()->Stat(this->P("a/b"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->is_dir);
  auto children = this->env()->GetChildren(this->P("a"));
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"b"});
  EXPECT_TRUE(this->env()->SyncDir(dir).ok());

  this->Write(this->P("f"), "x");
  Status over_file = this->env()->CreateDirs(this->P("f/g"));
  EXPECT_FALSE(over_file.ok());
  EXPECT_FALSE(this->env()->CreateDirs(this->P("f")).ok());
}

TYPED_TEST(EnvConformanceTest, RemoveDirOnlyWhenEmptyAndRemoveTreeRemovesAll) {
  Env* env = this->env();
  for (const char* name : {"t/a.csv", "t/sub/b.csv", "t/sub/deeper/c.csv"}) this->Write(this->P(name), "1");
  ASSERT_TRUE(env->CreateDirs(this->P("t/empty")).ok());
  EXPECT_FALSE(env->RemoveDir(this->P("t/sub")).ok());  // not empty
  EXPECT_TRUE(env->RemoveDir(this->P("t/empty")).ok());
  EXPECT_FALSE(env->FileExists(this->P("t/empty")));
  EXPECT_FALSE(env->RemoveDir(this->P("t/empty")).ok());  // gone
  ASSERT_TRUE(RemoveTree(env, this->P("t")).ok());
  EXPECT_FALSE(env->FileExists(this->P("t")));
  EXPECT_FALSE(env->FileExists(this->P("t/sub/deeper/c.csv")));
  EXPECT_TRUE(RemoveTree(env, this->P("t")).ok());  // nothing there: fine
}

TYPED_TEST(EnvConformanceTest, GetChildrenIsSortedNamesWithoutDots) {
  for (const char* name : {"b.csv", "a.csv", ".hidden", "c/x.csv", "B.csv"}) this->Write(this->P(name), "1");
  auto children = this->env()->GetChildren(this->P(""));
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, (std::vector<std::string>{".hidden", "B.csv", "a.csv", "b.csv", "c"}));
}

TYPED_TEST(EnvConformanceTest, NewWritableFileTruncates) {
  std::string path = this->P("t.txt");
  this->Write(path, "long old content");
  this->Write(path, "new");
  EXPECT_EQ(this->Read(path), "new");
}

TYPED_TEST(EnvConformanceTest, AppendableFileCreatesThenAppendsAfterEveryReopen) {
  std::string path = this->P("app.txt");
  ASSERT_FALSE(this->env()->FileExists(path));
  for (std::string_view piece : {"first\n", "second\n", "third\n"}) {
    auto file = this->env()->NewAppendableFile(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Append(piece.substr(0, 2)).ok());
    ASSERT_TRUE((*file)->Append(piece.substr(2)).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  EXPECT_EQ(this->Read(path), "first\nsecond\nthird\n");
  EXPECT_EQ(this->env()->Stat(path)->size, 19u);

  // Appending to a file NewWritableFile wrote; NewWritableFile truncates again.
  this->Write(path, "new");
  auto file = this->env()->NewAppendableFile(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("+more").ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(this->Read(path), "new+more");
  Status closed = (*file)->Append("x");
  EXPECT_EQ(closed.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasText(closed.message(), "app.txt"));
}

// Appends larger than the write buffer, over several reopenings, read back exactly.
TYPED_TEST(EnvConformanceTest, AppendableFileLargeAppendsAcrossReopenings) {
  std::string path = this->P("big_app.txt");
  std::string expected;
  for (int round = 0; round < 4; ++round) {
    auto file = this->env()->NewAppendableFile(path);
    ASSERT_TRUE(file.ok());
    for (size_t piece : {size_t{3}, size_t{70000}, size_t{65536}, size_t{1}}) {
      std::string data(piece, static_cast<char>('a' + round));
      data.back() = '\n';
      ASSERT_TRUE((*file)->Append(data).ok());
      expected += data;
    }
    ASSERT_TRUE((*file)->Close().ok());
  }
  EXPECT_EQ(this->Read(path), expected);
}

TYPED_TEST(EnvConformanceTest, AppendableFileOnADirectoryIsAnError) {
  ASSERT_TRUE(this->env()->CreateDirs(this->P("d")).ok());
  auto file = this->env()->NewAppendableFile(this->P("d"));
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(HasText(file.status().message(), this->P("d")));
}

TYPED_TEST(EnvConformanceTest, RenameReplacesTarget) {
  std::string from = this->P("from.txt");
  std::string to = this->P("to.txt");
  this->Write(from, "fresh");
  this->Write(to, "stale");
  ASSERT_TRUE(this->env()->RenameFile(from, to).ok());
  EXPECT_FALSE(this->env()->FileExists(from));
  EXPECT_EQ(this->Read(to), "fresh");
  ASSERT_TRUE(this->env()->RemoveFile(to).ok());
  EXPECT_FALSE(this->env()->FileExists(to));
}

TYPED_TEST(EnvConformanceTest, UseAfterCloseIsAnError) {
  auto file = this->env()->NewWritableFile(this->P("c.txt"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE((*file)->Close().ok());
  Status s = (*file)->Append("x");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasText(s.message(), "c.txt"));
}

TYPED_TEST(EnvConformanceTest, WriteFileAtomicReplacesAndLeavesNoTemporary) {
  std::string path = this->P("out/state.json");
  ASSERT_TRUE(this->env()->CreateDirs(this->P("out")).ok());
  ASSERT_TRUE(WriteFileAtomic(this->env(), path, "{\"v\":1}").ok());
  ASSERT_TRUE(WriteFileAtomic(this->env(), path, "{\"v\":2}").ok());
  EXPECT_EQ(this->Read(path), "{\"v\":2}");
  auto children = this->env()->GetChildren(this->P("out"));
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"state.json"});
}

TYPED_TEST(EnvConformanceTest, ExpandInputPathsFileDirectoryAndGlobs) {
  for (const char* name : {"data/b.csv", "data/a.csv", "data/.hidden.csv", "data/notes.txt",
                           "data/sub/c.csv", "data/2024-01-01/x.csv", "data/2024-01-02/x.csv",
                           "data/2024-01-02/y.jsonl", "data/2023-12-31/x.csv"}) {
    this->Write(this->P(name), "1\n");
  }
  Env* env = this->env();
  auto rel = [&](std::vector<std::string> names) {
    for (auto& n : names) n = this->P(n);
    return names;
  };

  auto one = ExpandInputPaths(env, this->P("data/a.csv"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, rel({"data/a.csv"}));

  auto dir = ExpandInputPaths(env, this->P("data"));
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*dir, rel({"data/a.csv", "data/b.csv", "data/notes.txt"}));
  auto dir_slash = ExpandInputPaths(env, this->P("data/"));
  ASSERT_TRUE(dir_slash.ok());
  EXPECT_EQ(*dir_slash, *dir);

  auto star = ExpandInputPaths(env, this->P("data/*.csv"));
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(*star, rel({"data/a.csv", "data/b.csv"}));

  auto hidden = ExpandInputPaths(env, this->P("data/.*.csv"));
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(*hidden, rel({"data/.hidden.csv"}));

  auto middle = ExpandInputPaths(env, this->P("data/2024-*/x.csv"));
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(*middle, rel({"data/2024-01-01/x.csv", "data/2024-01-02/x.csv"}));

  auto question = ExpandInputPaths(env, this->P("data/?.csv"));
  ASSERT_TRUE(question.ok());
  EXPECT_EQ(*question, rel({"data/a.csv", "data/b.csv"}));

  auto bracket = ExpandInputPaths(env, this->P("data/202[3]-*/*"));
  ASSERT_TRUE(bracket.ok());
  EXPECT_EQ(*bracket, rel({"data/2023-12-31/x.csv"}));

  // A glob that matches directories stands for their files.
  auto dirs = ExpandInputPaths(env, this->P("data/2024-01-0[12]"));
  ASSERT_TRUE(dirs.ok());
  EXPECT_EQ(*dirs, rel({"data/2024-01-01/x.csv", "data/2024-01-02/x.csv", "data/2024-01-02/y.jsonl"}));

  auto none = ExpandInputPaths(env, this->P("data/*.parquet"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(none.status().message(), "no file matches '" + this->P("data/*.parquet") + "'");

  auto missing_dir = ExpandInputPaths(env, this->P("nodir/*/x.csv"));
  EXPECT_EQ(missing_dir.status().code(), StatusCode::kNotFound);

  auto missing = ExpandInputPaths(env, this->P("data/z.csv"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasText(missing.status().message(), "data/z.csv"));

  ASSERT_TRUE(env->CreateDirs(this->P("empty")).ok());
  auto empty = ExpandInputPaths(env, this->P("empty"));
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasText(empty.status().message(), "empty"));
}

// ---- LockFile ------------------------------------------------------------------

TYPED_TEST(EnvConformanceTest, ExclusiveLockRefusesEveryOtherLock) {
  std::string path = this->P("job.lock");
  auto held = this->env()->LockFile(path, /*exclusive=*/true);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  for (bool exclusive : {true, false}) {
    auto refused = this->env()->LockFile(path, exclusive);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(refused.status().message(), "'" + path + "' is locked by another run");
  }
  // Another path is another lock.
  EXPECT_TRUE(this->env()->LockFile(this->P("other.lock"), true).ok());
  held->reset();
  EXPECT_TRUE(this->env()->LockFile(path, true).ok());
}

TYPED_TEST(EnvConformanceTest, SharedLocksShareAndRefuseExclusive) {
  std::string path = this->P("job.lock");
  auto first = this->env()->LockFile(path, /*exclusive=*/false);
  auto second = this->env()->LockFile(path, /*exclusive=*/false);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(this->env()->LockFile(path, true).status().code(), StatusCode::kUnavailable);
  first->reset();
  EXPECT_EQ(this->env()->LockFile(path, true).status().code(), StatusCode::kUnavailable);
  second->reset();
  auto exclusive = this->env()->LockFile(path, true);
  ASSERT_TRUE(exclusive.ok());
  EXPECT_EQ(this->env()->LockFile(path, false).status().code(), StatusCode::kUnavailable);
}

TYPED_TEST(EnvConformanceTest, LockFileCreatesAMissingFileAndKeepsAnExistingOne) {
  std::string path = this->P("new.lock");
  ASSERT_FALSE(this->env()->FileExists(path));
  {
    auto lock = this->env()->LockFile(path, true);
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
    EXPECT_TRUE(this->env()->FileExists(path));
  }
  // Released, the file stays; locking an existing file leaves its contents alone.
  EXPECT_TRUE(this->env()->FileExists(path));
  this->Write(path, "pid 7");
  auto again = this->env()->LockFile(path, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(this->Read(path), "pid 7");
}

TYPED_TEST(EnvConformanceTest, LockFileUnderAFileOrOnADirectoryIsAnError) {
  this->Write(this->P("f"), "x");
  std::string under = this->P("f/job.lock");
  auto not_dir = this->env()->LockFile(under, true);
  ASSERT_FALSE(not_dir.ok());
  EXPECT_EQ(not_dir.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(not_dir.status().message(), "open '" + under + "': Not a directory");

  ASSERT_TRUE(this->env()->CreateDirs(this->P("d")).ok());
  auto dir = this->env()->LockFile(this->P("d"), true);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().message(), "open '" + this->P("d") + "': Is a directory");
  EXPECT_TRUE(this->env()->Stat(this->P("d"))->is_dir);
}

TYPED_TEST(EnvConformanceTest, ClockIsMonotonic) {
  uint64_t a = this->env()->NowMicros();
  this->env()->SleepForMicros(2000);
  uint64_t b = this->env()->NowMicros();
  EXPECT_GE(b - a, 2000u);
}

// ---- POSIX specifics --------------------------------------------------------

TEST(PosixEnvTest, DefaultIsOneInstance) { EXPECT_EQ(Env::Default(), Env::Default()); }

TEST(PosixEnvTest, DiskFullIsResourceExhausted) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto file = Env::Default()->NewWritableFile("/dev/full");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("some bytes").ok());  // buffered
  Status s = (*file)->Flush();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "write '/dev/full': No space left on device");
  (void)(*file)->Close();
}

TEST(PosixEnvTest, PermissionDeniedIsFailedPrecondition) {
  if (::geteuid() == 0) {
    // Root ignores file modes, but sysfs refuses to create files even for root.
    if (!std::filesystem::exists("/sys/kernel")) GTEST_SKIP() << "root and no sysfs";
    auto file = Env::Default()->NewWritableFile("/sys/sluice_env_test");
    EXPECT_EQ(file.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(file.status().message(), "open '/sys/sluice_env_test': Permission denied");
    return;
  }
  TempDir dir;
  std::string path = dir.path() + "/locked.txt";
  ASSERT_TRUE(WriteFileAtomic(Env::Default(), path, "x").ok());
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  auto file = Env::Default()->NewSequentialFile(path);
  EXPECT_EQ(file.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(file.status().message(), "open '" + path + "': Permission denied");
}

TEST(PosixEnvTest, LockFileInAMissingDirectoryIsNotFound) {
  TempDir dir;
  std::string path = dir.path() + "/no/such/dir/job.lock";
  auto lock = Env::Default()->LockFile(path, true);
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(lock.status().message(), "open '" + path + "': No such file or directory");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/no"));
}

// A child process that takes a lock on `path`, reports on a pipe, and waits to be killed.
class LockHolder {
 public:
  LockHolder(const std::string& path, bool exclusive) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      auto lock = Env::Default()->LockFile(path, exclusive);
      char taken = lock.ok() ? 'y' : 'n';
      if (::write(fds[1], &taken, 1) != 1) ::_exit(2);
      while (true) ::pause();
    }
    ::close(fds[1]);
    char taken = 0;
    EXPECT_EQ(::read(fds[0], &taken, 1), 1);
    ::close(fds[0]);
    taken_ = taken == 'y';
  }
  ~LockHolder() { Kill(); }

  bool taken() const { return taken_; }
  // SIGKILL: the child releases nothing itself.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    EXPECT_EQ(::waitpid(pid_, &status, 0), pid_);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  bool taken_ = false;
};

TEST(PosixEnvTest, LockOfAKilledProcessIsFreed) {
  TempDir dir;
  std::string path = dir.path() + "/job.lock";
  LockHolder child(path, /*exclusive=*/true);
  ASSERT_TRUE(child.taken());
  for (bool exclusive : {true, false}) {
    auto refused = Env::Default()->LockFile(path, exclusive);
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  }
  child.Kill();
  auto lock = Env::Default()->LockFile(path, true);
  EXPECT_TRUE(lock.ok()) << lock.status().ToString();
}

TEST(PosixEnvTest, SharedLockAcrossProcesses) {
  TempDir dir;
  std::string path = dir.path() + "/job.lock";
  LockHolder child(path, /*exclusive=*/false);
  ASSERT_TRUE(child.taken());
  auto shared = Env::Default()->LockFile(path, false);
  EXPECT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_EQ(Env::Default()->LockFile(path, true).status().code(), StatusCode::kUnavailable);
  shared->reset();
  EXPECT_EQ(Env::Default()->LockFile(path, true).status().code(), StatusCode::kUnavailable);
  child.Kill();
  EXPECT_TRUE(Env::Default()->LockFile(path, true).ok());

  // And the other way round: this process holds it exclusively, the child is refused.
  auto exclusive = Env::Default()->LockFile(path, true);
  ASSERT_TRUE(exclusive.ok());
  LockHolder refused(path, /*exclusive=*/false);
  EXPECT_FALSE(refused.taken());
}

TEST(PosixEnvTest, FileUnderAFileIsNotFound) {
  TempDir dir;
  std::string file = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(Env::Default(), file, "x").ok());
  EXPECT_EQ(Env::Default()->Stat(file + "/g").status().code(), StatusCode::kNotFound);
}

// ---- MemEnv specifics -------------------------------------------------------

TEST(MemEnvTest, DirectoriesAreImplicitAndPathsNormalized) {
  auto env = NewMemEnv();
  auto file = env->NewWritableFile("x/y/z.txt");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("z").ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_TRUE(env->FileExists("x"));
  EXPECT_TRUE(env->Stat("x/y")->is_dir);
  EXPECT_EQ(*env->GetChildren("x"), std::vector<std::string>{"y"});
  EXPECT_EQ(*env->GetChildren("."), std::vector<std::string>{"x"});
  EXPECT_EQ(*ReadFileToString(env.get(), "./x//y/../y/z.txt"), "z");
  EXPECT_FALSE(env->NewWritableFile("x/y/z.txt/w").ok());
  EXPECT_FALSE(env->NewWritableFile("x/y").ok());
}

TEST(MemEnvTest, RenameMovesADirectory) {
  auto env = NewMemEnv();
  ASSERT_TRUE(WriteFileAtomic(env.get(), "a/one", "1").ok());
  ASSERT_TRUE(env->CreateDirs("a/empty").ok());
  ASSERT_TRUE(WriteFileAtomic(env.get(), "a-b/other", "2").ok());
  ASSERT_TRUE(env->RenameFile("a", "c").ok());
  EXPECT_FALSE(env->FileExists("a"));
  EXPECT_EQ(*ReadFileToString(env.get(), "c/one"), "1");
  EXPECT_TRUE(env->Stat("c/empty")->is_dir);
  EXPECT_EQ(*ReadFileToString(env.get(), "a-b/other"), "2");
}

TEST(MemEnvTest, ReaderOfReplacedFileKeepsOldBytes) {
  auto env = NewMemEnv();
  ASSERT_TRUE(WriteFileAtomic(env.get(), "f", "old").ok());
  auto reader = env->NewRandomAccessFile("f");
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(WriteFileAtomic(env.get(), "f", "newer").ok());
  char buf[8];
  auto got = (*reader)->ReadAt(0, 8, buf);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "old");
  EXPECT_EQ(*ReadFileToString(env.get(), "f"), "newer");
}

// ---- Path helpers -------------------------------------------------------------

TEST(PathTest, JoinPath) {
  EXPECT_EQ(JoinPath("a/b", "c"), "a/b/c");
  EXPECT_EQ(JoinPath("a/b/", "c"), "a/b/c");
  EXPECT_EQ(JoinPath("", "c"), "c");
  EXPECT_EQ(JoinPath("/", "c"), "/c");
}

TEST(PathTest, DirName) {
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(DirName("/"), "/");
  EXPECT_EQ(DirName("a/b/"), "a");
  EXPECT_EQ(DirName("a//b"), "a");
}

// ---- Fault injection ------------------------------------------------------------

class FaultInjectionTest : public ::testing::Test {
 protected:
  FaultInjectionTest() : mem_(NewMemEnv()), env_(mem_.get()) {}

  Status AppendTo(const std::string& path, int times) {
    ASSIGN_OR_RETURN(auto file, env_.NewWritableFile(path));
    for (int i = 0; i < times; ++i) RETURN_IF_ERROR(file->Append("x"));
    return file->Close();
  }

  std::unique_ptr<Env> mem_;
  FaultInjectionEnv env_;
};

TEST_F(FaultInjectionTest, FailsTheNthMatchingCallOnce) {
  int id = env_.FailOnce(FaultOp::kWrite, ".part-", 2);
  auto file = env_.NewWritableFile("out/.part-00001.csv.tmp");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(AppendTo("out/other.csv", 3).ok());  // not matched by the filter
  EXPECT_TRUE((*file)->Append("a").ok());
  Status second = (*file)->Append("b");
  EXPECT_EQ(second.code(), StatusCode::kIOError);
  EXPECT_EQ(second.message(), "injected fault: write 'out/.part-00001.csv.tmp'");
  EXPECT_TRUE((*file)->Append("c").ok());
  ASSERT_TRUE((*file)->Close().ok());
  // The failed write did not reach the file.
  EXPECT_EQ(*ReadFileToString(&env_, "out/.part-00001.csv.tmp"), "ac");
  EXPECT_EQ(env_.RuleHits(id), 1);
  EXPECT_EQ(env_.Calls(FaultOp::kWrite), 6);
  EXPECT_EQ(env_.Injected(FaultOp::kWrite), 1);
  EXPECT_EQ(env_.TotalInjected(), 1);
}

TEST_F(FaultInjectionTest, FailsFromTheNthCallForeverWithTheGivenCode) {
  env_.FailFrom(FaultOp::kSync, "", 2, StatusCode::kResourceExhausted);
  auto file = env_.NewWritableFile("f");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Sync().ok());
  for (int i = 0; i < 3; ++i) {
    Status s = (*file)->Sync();
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
    EXPECT_FALSE(s.IsTransient());
  }
  env_.ClearRules();
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(env_.Calls(FaultOp::kSync), 5);
}

TEST_F(FaultInjectionTest, RenameCanSucceedButReportFailure) {
  ASSERT_TRUE(WriteFileAtomic(mem_.get(), "tmp", "data").ok());
  FaultRule rule;
  rule.op = FaultOp::kRename;
  rule.path_substring = "final";  // matches the destination
  rule.performed = true;
  env_.AddRule(rule);
  Status s = env_.RenameFile("tmp", "final");
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_EQ(s.message(), "injected fault: rename 'tmp' to 'final'");
  EXPECT_FALSE(env_.FileExists("tmp"));
  EXPECT_EQ(*ReadFileToString(&env_, "final"), "data");
}

TEST_F(FaultInjectionTest, CreateReadRemoveAndSyncDirFaults) {
  ASSERT_TRUE(WriteFileAtomic(mem_.get(), "d/in.csv", "abc").ok());
  env_.FailOnce(FaultOp::kCreate, "out");
  EXPECT_EQ(env_.NewWritableFile("out/p").status().code(), StatusCode::kIOError);
  EXPECT_FALSE(env_.FileExists("out/p"));
  EXPECT_TRUE(env_.NewWritableFile("out/p").ok());

  env_.FailOnce(FaultOp::kRead, "in.csv", 1, StatusCode::kUnavailable);
  auto ra = env_.NewRandomAccessFile("d/in.csv");
  ASSERT_TRUE(ra.ok());
  char buf[4];
  auto first = (*ra)->ReadAt(0, 3, buf);
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(HasText(first.status().message(), "injected fault: read 'd/in.csv'"));
  auto second = (*ra)->ReadAt(0, 3, buf);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(std::string(buf, *second), "abc");

  env_.FailFrom(FaultOp::kRead, "in.csv", 1);
  auto seq = env_.NewSequentialFile("d/in.csv");
  ASSERT_TRUE(seq.ok());
  EXPECT_FALSE((*seq)->Read(3, buf).ok());
  EXPECT_FALSE(ReadFileToString(&env_, "d/in.csv").ok());

  env_.FailOnce(FaultOp::kRemove, "");
  EXPECT_FALSE(env_.RemoveFile("d/in.csv").ok());
  EXPECT_TRUE(mem_->FileExists("d/in.csv"));
  EXPECT_TRUE(env_.RemoveFile("d/in.csv").ok());

  env_.FailOnce(FaultOp::kSyncDir, "out");
  EXPECT_FALSE(env_.SyncDir("out").ok());
  EXPECT_TRUE(env_.SyncDir("out").ok());
}

TEST_F(FaultInjectionTest, AppendableFilesFollowCreateWriteAndSyncRules) {
  ASSERT_TRUE(WriteFileAtomic(mem_.get(), "out/p", "kept;").ok());
  env_.FailOnce(FaultOp::kCreate, "out/p");
  auto refused = env_.NewAppendableFile("out/p");
  EXPECT_EQ(refused.status().code(), StatusCode::kIOError);
  EXPECT_EQ(refused.status().message(), "injected fault: create 'out/p'");

  env_.FailOnce(FaultOp::kWrite, "out/p", 2);
  env_.FailOnce(FaultOp::kSync, "out/p");
  auto file = env_.NewAppendableFile("out/p");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Append("a").ok());
  EXPECT_EQ((*file)->Append("b").message(), "injected fault: write 'out/p'");
  EXPECT_TRUE((*file)->Append("c").ok());
  EXPECT_FALSE((*file)->Sync().ok());
  EXPECT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(env_.Calls(FaultOp::kCreate), 2);
  EXPECT_EQ(*ReadFileToString(&env_, "out/p"), "kept;ac");

  env_.SetFilesystemActive(false);
  EXPECT_EQ(env_.NewAppendableFile("out/p").status().code(), StatusCode::kIOError);
  EXPECT_EQ(*ReadFileToString(&env_, "out/p"), "kept;ac");
}

TEST_F(FaultInjectionTest, AtomicWriteWithFailedRenameKeepsOldContentAndNoTemporary) {
  ASSERT_TRUE(WriteFileAtomic(&env_, "dir/f.json", "old").ok());
  env_.FailOnce(FaultOp::kRename, "f.json");
  Status s = WriteFileAtomic(&env_, "dir/f.json", "new");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsTransient());
  EXPECT_EQ(*ReadFileToString(&env_, "dir/f.json"), "old");
  EXPECT_EQ(*env_.GetChildren("dir"), std::vector<std::string>{"f.json"});
}

TEST_F(FaultInjectionTest, RandomFaultsAreReproducibleFromTheSeed) {
  auto pattern = [](uint64_t seed, uint64_t* used) {
    auto mem = NewMemEnv();
    FaultInjectionEnv env(mem.get());
    RandomFaults config;
    config.rate = 0.3;
    config.seed = seed;
    config.ops = {FaultOp::kWrite};
    *used = env.SetRandomFaults(config);
    auto file = env.NewWritableFile("f");  // kCreate is not in ops
    EXPECT_TRUE(file.ok());
    std::string bits;
    for (int i = 0; i < 200; ++i) bits.push_back((*file)->Append("x").ok() ? '.' : 'F');
    EXPECT_EQ(env.random_seed(), *used);
    EXPECT_EQ(env.Injected(FaultOp::kWrite), static_cast<int64_t>(std::count(bits.begin(), bits.end(), 'F')));
    return bits;
  };
  uint64_t seed_a = 0;
  uint64_t seed_b = 0;
  std::string a = pattern(42, &seed_a);
  std::string b = pattern(42, &seed_b);
  EXPECT_EQ(seed_a, 42u);
  EXPECT_EQ(a, b);
  int64_t failures = std::count(a.begin(), a.end(), 'F');
  EXPECT_GT(failures, 20);
  EXPECT_LT(failures, 110);

  uint64_t picked = 0;
  std::string c = pattern(0, &picked);
  EXPECT_NE(picked, 0u);
  uint64_t replay_seed = 0;
  EXPECT_EQ(pattern(picked, &replay_seed), c) << "seed " << picked;
}

TEST_F(FaultInjectionTest, InactiveFilesystemFailsWritesButNotReads) {
  ASSERT_TRUE(WriteFileAtomic(&env_, "f", "abc").ok());
  env_.SetFilesystemActive(false);
  EXPECT_FALSE(WriteFileAtomic(&env_, "g", "x").ok());
  EXPECT_FALSE(env_.RemoveFile("f").ok());
  EXPECT_FALSE(env_.RenameFile("f", "h").ok());
  EXPECT_EQ(*ReadFileToString(&env_, "f"), "abc");
  env_.SetFilesystemActive(true);
  EXPECT_TRUE(WriteFileAtomic(&env_, "g", "x").ok());
}

TEST_F(FaultInjectionTest, CountsAreExactUnderConcurrency) {
  RandomFaults config;
  config.rate = 0.5;
  config.seed = 7;
  config.ops = {FaultOp::kWrite};
  env_.SetRandomFaults(config);
  std::atomic<int64_t> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto file = env_.NewWritableFile("f" + std::to_string(t));
      ASSERT_TRUE(file.ok());
      for (int i = 0; i < 1000; ++i) {
        if (!(*file)->Append("x").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(env_.Calls(FaultOp::kWrite), 4000);
  EXPECT_EQ(env_.Injected(FaultOp::kWrite), failures.load());
  EXPECT_EQ(env_.Calls(FaultOp::kCreate), 4);
  env_.ResetCounters();
  EXPECT_EQ(env_.Calls(FaultOp::kWrite), 0);
}

// ---- Crash faults -------------------------------------------------------------------
// A crash rule ends the process with kFaultCrashExitCode; gtest's death tests fork,
// the child runs the call, and the parent checks the exit code and what is on disk.

class FaultCrashDeathTest : public ::testing::Test {
 protected:
  FaultCrashDeathTest() : env_(Env::Default()) {}

  std::string P(std::string_view name) { return JoinPath(dir_.path(), name); }
  void AddCrash(FaultOp op, std::string path_substring, bool performed, int64_t nth = 1) {
    FaultRule rule;
    rule.op = op;
    rule.path_substring = std::move(path_substring);
    rule.nth = nth;
    rule.performed = performed;
    rule.crash = true;
    env_.AddRule(std::move(rule));
  }
  std::string OnDisk(const std::string& path) {
    auto data = ReadFileToString(Env::Default(), path);
    return data.ok() ? *data : "<" + data.status().ToString() + ">";
  }

  TempDir dir_;
  FaultInjectionEnv env_;
};

const auto kCrashed = ::testing::ExitedWithCode(kFaultCrashExitCode);

TEST_F(FaultCrashDeathTest, CrashBeforeRenameLeavesTheSource) {
  ASSERT_TRUE(WriteFileAtomic(Env::Default(), P(".part-0.tmp"), "rows").ok());
  AddCrash(FaultOp::kRename, ".part-", /*performed=*/false);
  EXPECT_EXIT((void)env_.RenameFile(P(".part-0.tmp"), P("part-0")), kCrashed, "");
  EXPECT_EQ(OnDisk(P(".part-0.tmp")), "rows");
  EXPECT_FALSE(Env::Default()->FileExists(P("part-0")));
}

TEST_F(FaultCrashDeathTest, CrashAfterRenameLeavesTheRenamedFile) {
  ASSERT_TRUE(WriteFileAtomic(Env::Default(), P(".part-0.tmp"), "rows").ok());
  AddCrash(FaultOp::kRename, "part-0", /*performed=*/true);
  EXPECT_EXIT((void)env_.RenameFile(P(".part-0.tmp"), P("part-0")), kCrashed, "");
  EXPECT_FALSE(Env::Default()->FileExists(P(".part-0.tmp")));
  EXPECT_EQ(OnDisk(P("part-0")), "rows");
}

TEST_F(FaultCrashDeathTest, CrashAtTheNthMatchingCallOnly) {
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(WriteFileAtomic(Env::Default(), P(name), name).ok());
  AddCrash(FaultOp::kRemove, "", /*performed=*/false, /*nth=*/2);
  // Runs in the child: the first remove happens, the second crashes before removing.
  EXPECT_EXIT(
      {
        (void)env_.RemoveFile(P("a"));
        (void)env_.RemoveFile(P("b"));
        (void)env_.RemoveFile(P("c"));
      },
      kCrashed, "");
  EXPECT_FALSE(Env::Default()->FileExists(P("a")));
  EXPECT_EQ(OnDisk(P("b")), "b");
  EXPECT_EQ(OnDisk(P("c")), "c");
}

// The POSIX writable file buffers small appends: a crash loses them unless a sync
// reached the disk first, as it would for a real process.
TEST_F(FaultCrashDeathTest, CrashBeforeSyncLosesBufferedBytes) {
  AddCrash(FaultOp::kSync, ".part-", /*performed=*/false);
  EXPECT_EXIT(
      {
        auto file = env_.NewWritableFile(P(".part-0"));
        (void)(*file)->Append("rows");
        (void)(*file)->Sync();
      },
      kCrashed, "");
  EXPECT_EQ(OnDisk(P(".part-0")), "");
}

TEST_F(FaultCrashDeathTest, CrashAfterSyncKeepsTheBytes) {
  AddCrash(FaultOp::kSync, ".part-", /*performed=*/true);
  EXPECT_EXIT(
      {
        auto file = env_.NewWritableFile(P(".part-0"));
        (void)(*file)->Append("rows");
        (void)(*file)->Sync();
      },
      kCrashed, "");
  EXPECT_EQ(OnDisk(P(".part-0")), "rows");
}

// An append larger than the write buffer goes straight to the file, so a write
// performed before the crash is on disk; one crashed before is not.
TEST_F(FaultCrashDeathTest, CrashBeforeOrAfterALargeWrite) {
  const std::string big(100000, 'x');
  for (bool performed : {false, true}) {
    SCOPED_TRACE(performed ? "performed" : "before");
    env_.ClearRules();
    AddCrash(FaultOp::kWrite, "data", performed, /*nth=*/2);
    EXPECT_EXIT(
        {
          auto file = env_.NewWritableFile(P("data"));
          (void)(*file)->Append("head;");
          (void)(*file)->Sync();
          (void)(*file)->Append(big);
        },
        kCrashed, "");
    EXPECT_EQ(OnDisk(P("data")), performed ? "head;" + big : "head;");
  }
}

TEST_F(FaultCrashDeathTest, CrashBeforeOrAfterCreate) {
  AddCrash(FaultOp::kCreate, "new", /*performed=*/false);
  EXPECT_EXIT((void)env_.NewWritableFile(P("new")), kCrashed, "");
  EXPECT_FALSE(Env::Default()->FileExists(P("new")));
  env_.ClearRules();
  AddCrash(FaultOp::kCreate, "new", /*performed=*/true);
  EXPECT_EXIT((void)env_.NewAppendableFile(P("new")), kCrashed, "");
  EXPECT_EQ(OnDisk(P("new")), "");
}

TEST_F(FaultCrashDeathTest, RuleThatDoesNotFireLetsCallsThrough) {
  AddCrash(FaultOp::kRename, "part-", /*performed=*/false, /*nth=*/2);
  ASSERT_TRUE(WriteFileAtomic(&env_, P("state.json"), "{}").ok());  // its rename does not match
  ASSERT_TRUE(WriteFileAtomic(Env::Default(), P(".part-0.tmp"), "rows").ok());
  EXPECT_TRUE(env_.RenameFile(P(".part-0.tmp"), P("part-0")).ok());  // the 1st match
  EXPECT_EQ(OnDisk(P("part-0")), "rows");
  EXPECT_EQ(env_.Injected(FaultOp::kRename), 0);
}

}  // namespace
}  // namespace sluice
