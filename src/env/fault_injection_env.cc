#include "env/fault_injection_env.h"

#include <unistd.h>

#include <utility>

namespace sluice {

std::string_view FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "sync";
    case FaultOp::kRename: return "rename";
    case FaultOp::kCreate: return "create";
    case FaultOp::kRead: return "read";
    case FaultOp::kRemove: return "remove";
    case FaultOp::kSyncDir: return "sync_dir";
  }
  return "unknown";
}

namespace {

size_t Index(FaultOp op) { return static_cast<size_t>(op); }

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Status InjectedError(StatusCode code, FaultOp op, std::string_view path, std::string_view to_path,
                     std::string_view why) {
  std::string msg = "injected fault";
  if (!why.empty()) msg.append(" (").append(why).append(")");
  msg.append(": ").append(FaultOpName(op)).append(" '").append(path).append("'");
  if (op == FaultOp::kRename) msg.append(" to '").append(to_path).append("'");
  return Status(code, std::move(msg));
}

[[noreturn]] void Crash() { ::_exit(kFaultCrashExitCode); }

// Carries out one call as `decision` says; `perform` makes the call on the
// target. A performed call that fails on the target reports its own error.
template <typename Perform>
auto Carry(FaultInjectionEnv::Decision decision, Perform perform) -> decltype(perform()) {
  if (decision.fault.ok()) return perform();
  if (!decision.performed) return decision.fault;
  auto result = perform();
  if (decision.crash) Crash();
  if (!result.ok()) return result;
  return decision.fault;
}

class FaultSequentialFile final : public SequentialFile {
 public:
  FaultSequentialFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<SequentialFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Result<size_t> Read(size_t n, char* scratch) override {
    return Carry(env_->Check(FaultOp::kRead, path_, {}), [&] { return base_->Read(n, scratch); });
  }
  Status Skip(uint64_t n) override { return base_->Skip(n); }

 private:
  FaultInjectionEnv* env_;
  const std::string path_;
  std::unique_ptr<SequentialFile> base_;
};

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultInjectionEnv* env, std::string path,
                        std::unique_ptr<RandomAccessFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    return Carry(env_->Check(FaultOp::kRead, path_, {}),
                 [&] { return base_->ReadAt(offset, n, scratch); });
  }

 private:
  FaultInjectionEnv* env_;
  const std::string path_;
  std::unique_ptr<RandomAccessFile> base_;
};

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    return Carry(env_->Check(FaultOp::kWrite, path_, {}), [&] { return base_->Append(data); });
  }
  Status Flush() override { return base_->Flush(); }
  Status Sync() override {
    return Carry(env_->Check(FaultOp::kSync, path_, {}), [&] { return base_->Sync(); });
  }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* env_;
  const std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

FaultInjectionEnv::FaultInjectionEnv(Env* target) : EnvWrapper(target) {}

int FaultInjectionEnv::AddRule(FaultRule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  RuleState state;
  state.rule = std::move(rule);
  state.id = next_rule_id_++;
  rules_.push_back(std::move(state));
  return rules_.back().id;
}

int FaultInjectionEnv::FailOnce(FaultOp op, std::string path_substring, int64_t nth,
                                StatusCode code) {
  FaultRule rule;
  rule.op = op;
  rule.path_substring = std::move(path_substring);
  rule.nth = nth;
  rule.code = code;
  return AddRule(std::move(rule));
}

int FaultInjectionEnv::FailFrom(FaultOp op, std::string path_substring, int64_t nth,
                                StatusCode code) {
  FaultRule rule;
  rule.op = op;
  rule.path_substring = std::move(path_substring);
  rule.nth = nth;
  rule.forever = true;
  rule.code = code;
  return AddRule(std::move(rule));
}

void FaultInjectionEnv::ClearRules() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

int64_t FaultInjectionEnv::RuleHits(int id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const RuleState& state : rules_) {
    if (state.id == id) return state.hits;
  }
  return 0;
}

uint64_t FaultInjectionEnv::SetRandomFaults(RandomFaults config) {
  std::lock_guard<std::mutex> lock(mu_);
  if (config.seed == 0) {
    std::random_device device;
    config.seed = (static_cast<uint64_t>(device()) << 32) | device();
    if (config.seed == 0) config.seed = 1;
  }
  seed_ = config.seed;
  rng_.seed(seed_);
  random_ops_.fill(false);
  for (FaultOp op : config.ops) random_ops_[Index(op)] = true;
  random_ = std::move(config);
  return seed_;
}

void FaultInjectionEnv::ClearRandomFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  random_.reset();
}

uint64_t FaultInjectionEnv::random_seed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seed_;
}

bool FaultInjectionEnv::has_random_faults() const {
  std::lock_guard<std::mutex> lock(mu_);
  return random_.has_value();
}

void FaultInjectionEnv::SetFilesystemActive(bool active) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = active;
}

int64_t FaultInjectionEnv::Calls(FaultOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[Index(op)];
}

int64_t FaultInjectionEnv::Injected(FaultOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_[Index(op)];
}

int64_t FaultInjectionEnv::TotalInjected() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (int64_t n : injected_) total += n;
  return total;
}

void FaultInjectionEnv::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.fill(0);
  injected_.fill(0);
}

FaultInjectionEnv::Decision FaultInjectionEnv::Check(FaultOp op, std::string_view path,
                                                     std::string_view to_path) {
  return CheckCall(op, path, to_path, op != FaultOp::kRead);
}

FaultInjectionEnv::Decision FaultInjectionEnv::CheckCall(FaultOp op, std::string_view path,
                                                         std::string_view to_path, bool mutates) {
  Decision decision;
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[Index(op)];

  if (!active_ && mutates) {
    ++injected_[Index(op)];
    decision.fault = InjectedError(StatusCode::kIOError, op, path, to_path, "filesystem inactive");
    return decision;
  }

  // Every matching rule counts the call, so each rule's nth is independent of
  // the others; the first rule that fires decides.
  const RuleState* fired = nullptr;
  for (RuleState& state : rules_) {
    const FaultRule& rule = state.rule;
    if (rule.op != op) continue;
    if (!rule.path_substring.empty() && !Contains(path, rule.path_substring) &&
        !(op == FaultOp::kRename && Contains(to_path, rule.path_substring))) {
      continue;
    }
    ++state.matches;
    bool fires = rule.forever ? state.matches >= rule.nth : state.matches == rule.nth;
    if (fires && fired == nullptr) {
      ++state.hits;
      fired = &state;
    }
  }
  if (fired != nullptr) {
    if (fired->rule.crash && !fired->rule.performed) Crash();
    ++injected_[Index(op)];
    decision.fault = InjectedError(fired->rule.code, op, path, to_path, "");
    decision.performed = fired->rule.performed;
    decision.crash = fired->rule.crash;
    return decision;
  }

  if (random_.has_value() && random_ops_[Index(op)] && random_->rate > 0.0) {
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    if (coin(rng_) < random_->rate) {
      ++injected_[Index(op)];
      decision.fault = InjectedError(random_->code, op, path, to_path, "random");
    }
  }
  return decision;
}

Result<std::unique_ptr<SequentialFile>> FaultInjectionEnv::NewSequentialFile(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> base,
                   Carry(CheckCall(FaultOp::kCreate, path, {}, /*mutates=*/false),
                         [&] { return target()->NewSequentialFile(path); }));
  return std::unique_ptr<SequentialFile>(new FaultSequentialFile(this, path, std::move(base)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::NewRandomAccessFile(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> base,
                   Carry(CheckCall(FaultOp::kCreate, path, {}, /*mutates=*/false),
                         [&] { return target()->NewRandomAccessFile(path); }));
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(this, path, std::move(base)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> base,
                   Carry(Check(FaultOp::kCreate, path, {}),
                         [&] { return target()->NewWritableFile(path); }));
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(base)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> base,
                   Carry(Check(FaultOp::kCreate, path, {}),
                         [&] { return target()->NewAppendableFile(path); }));
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(base)));
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  return Carry(Check(FaultOp::kRemove, path, {}), [&] { return target()->RemoveFile(path); });
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  return Carry(Check(FaultOp::kRename, from, to), [&] { return target()->RenameFile(from, to); });
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  return Carry(Check(FaultOp::kSyncDir, dir, {}), [&] { return target()->SyncDir(dir); });
}

}  // namespace sluice
