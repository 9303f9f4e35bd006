// FaultInjectionEnv: an Env that forwards to a target Env and makes chosen calls
// fail, for crash and retry tests (as LevelDB's fault-injection env).
//
// Faults come from rules ("fail the 3rd Append to a path containing '.part-'
// once with kIOError"), from a random rate with a seed, and from a switch that
// makes every mutating call fail (a crashed process writes nothing more). A
// rule may also end the process at a chosen step (FaultRule::crash), for tests
// that run a whole job in a child process (tests/crash). Every call is counted
// per operation whether or not it fails. Rules and random faults can be given
// as text: env/fault_spec.h.
//
// Injected errors carry "injected fault" in the message plus the operation and
// path: "injected fault: rename 'out/.part-00001.csv.tmp-7' to 'out/part-00001.csv'".
//
// Files returned by New*File are wrapped so that their Append / Sync / Read /
// ReadAt calls go through the same rules.
//
// Thread-safety: safe for concurrent use (one mutex guards rules, counters and
// the random generator). Wrapped files follow the Env contract (one thread each,
// except RandomAccessFile::ReadAt). The target is borrowed and must outlive this
// Env and every file it returned.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/env.h"
#include "sluice/status.h"

namespace sluice {

// The operations a fault can target.
enum class FaultOp {
  kWrite,    // WritableFile::Append
  kSync,     // WritableFile::Sync
  kRename,   // Env::RenameFile (the path filter matches `from` or `to`)
  kCreate,   // Env::NewWritableFile, NewAppendableFile, NewSequentialFile, NewRandomAccessFile
  kRead,     // SequentialFile::Read, RandomAccessFile::ReadAt
  kRemove,   // Env::RemoveFile
  kSyncDir,  // Env::SyncDir
};
inline constexpr size_t kNumFaultOps = 7;

// "write", "sync", "rename", "create", "read", "remove", "sync_dir".
std::string_view FaultOpName(FaultOp op);

struct FaultRule {
  FaultOp op = FaultOp::kWrite;
  // The call matches if its path contains this; empty matches every path.
  std::string path_substring;
  // Fail the nth matching call (1-based), counted per rule from when it was added.
  int64_t nth = 1;
  // false: fail the nth matching call only; true: fail it and every later one.
  bool forever = false;
  // Code of the injected error: transient (kIOError, kUnavailable, kTimeout)
  // or permanent (kResourceExhausted for a full disk, kFailedPrecondition, …).
  StatusCode code = StatusCode::kIOError;
  // true: perform the operation on the target, then report the failure anyway
  // (e.g. a rename that happened but returned an error, a write that reached
  // the file but was reported lost). If the operation itself fails on the
  // target, that error is reported instead.
  bool performed = false;
  // true: instead of reporting an error, end the process at once with
  // _exit(kFaultCrashExitCode), after performing the operation when
  // `performed`, before it otherwise: a crash at exactly that step. Like a real
  // crash, _exit drops user-space buffers: a write performed into the target
  // file's buffer is lost, while a performed sync leaves the bytes on disk.
  bool crash = false;
};

inline constexpr int kFaultCrashExitCode = 86;

// Random faults: every call of an op in `ops` fails with probability `rate`.
struct RandomFaults {
  double rate = 0.0;
  // 0 picks a seed from std::random_device; SetRandomFaults returns the seed used.
  uint64_t seed = 0;
  std::vector<FaultOp> ops;
  StatusCode code = StatusCode::kIOError;
};

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target);

  // Adds a rule and returns its id (for RuleHits). Rules are checked in the
  // order added; every matching rule counts the call, the first that fires wins.
  int AddRule(FaultRule rule);
  // Shorthands: fail the nth matching call once / from the nth on.
  int FailOnce(FaultOp op, std::string path_substring, int64_t nth = 1,
               StatusCode code = StatusCode::kIOError);
  int FailFrom(FaultOp op, std::string path_substring, int64_t nth = 1,
               StatusCode code = StatusCode::kIOError);
  void ClearRules();
  // Times rule `id` has injected a fault.
  int64_t RuleHits(int id) const;

  // Enables random faults; returns the seed in use (print it so a failing run
  // can be replayed with the same seed).
  uint64_t SetRandomFaults(RandomFaults config);
  void ClearRandomFaults();
  // The seed of the current (or last) random fault configuration; 0 if none.
  uint64_t random_seed() const;

  // false: every mutating call (NewWritableFile, Append, Sync, RenameFile,
  // RemoveFile, SyncDir) fails with kIOError, as if the process had died.
  // Opening for reading and reading still work. Default true.
  void SetFilesystemActive(bool active);

  // Calls seen per operation (failed ones included), and faults injected.
  int64_t Calls(FaultOp op) const;
  int64_t Injected(FaultOp op) const;
  int64_t TotalInjected() const;
  void ResetCounters();

  // true once SetRandomFaults was called and until ClearRandomFaults.
  bool has_random_faults() const;

  // What Check decided for one call.
  struct Decision {
    Status fault;            // OK: carry the call out as usual
    bool performed = false;  // carry it out on the target anyway, then report `fault`
    bool crash = false;      // after carrying it out, _exit(kFaultCrashExitCode)
  };
  // Counts a call of `op` on `path` (and `to_path`, for kRename only) and
  // decides its fate. A crash rule without `performed` ends the process here,
  // before the call; with it, the caller carries the call out and then ends the
  // process (Decision::crash). Used by the wrapped files; tests call the Env
  // methods instead.
  Decision Check(FaultOp op, std::string_view path, std::string_view to_path);

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;

 private:
  // Check, where `mutates` says whether an inactive filesystem refuses the call
  // (opening a file for reading does not mutate).
  Decision CheckCall(FaultOp op, std::string_view path, std::string_view to_path, bool mutates);

  struct RuleState {
    FaultRule rule;
    int id = 0;
    int64_t matches = 0;
    int64_t hits = 0;
  };

  mutable std::mutex mu_;
  std::vector<RuleState> rules_;  // guarded by mu_
  int next_rule_id_ = 1;          // guarded by mu_
  std::optional<RandomFaults> random_;                // guarded by mu_
  std::array<bool, kNumFaultOps> random_ops_{};       // guarded by mu_
  uint64_t seed_ = 0;                                 // guarded by mu_
  std::mt19937_64 rng_;                               // guarded by mu_
  bool active_ = true;                                // guarded by mu_
  std::array<int64_t, kNumFaultOps> calls_{};         // guarded by mu_
  std::array<int64_t, kNumFaultOps> injected_{};      // guarded by mu_
};

}  // namespace sluice
