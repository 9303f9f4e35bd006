#include "env/fault_spec.h"

#include <string>

#include <gtest/gtest.h>

#include "sluice/env.h"

namespace sluice {
namespace {

FaultRule Rule(std::string_view spec) {
  Result<FaultSpec> parsed = ParseFaultSpec(spec);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (!parsed.ok() || !std::holds_alternative<FaultRule>(*parsed)) {
    ADD_FAILURE() << "'" << spec << "' is not a rule";
    return FaultRule();
  }
  return std::get<FaultRule>(*parsed);
}

RandomFaults Random(std::string_view spec) {
  Result<FaultSpec> parsed = ParseFaultSpec(spec);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (!parsed.ok() || !std::holds_alternative<RandomFaults>(*parsed)) {
    ADD_FAILURE() << "'" << spec << "' is not a random spec";
    return RandomFaults();
  }
  return std::get<RandomFaults>(*parsed);
}

std::string Error(std::string_view spec) {
  Result<FaultSpec> parsed = ParseFaultSpec(spec);
  EXPECT_FALSE(parsed.ok()) << "'" << spec << "' parsed";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().message();
}

TEST(FaultSpecTest, RuleWithCode) {
  FaultRule rule = Rule("rename:.part-:2:io_error");
  EXPECT_EQ(rule.op, FaultOp::kRename);
  EXPECT_EQ(rule.path_substring, ".part-");
  EXPECT_EQ(rule.nth, 2);
  EXPECT_FALSE(rule.forever);
  EXPECT_EQ(rule.code, StatusCode::kIOError);
  EXPECT_FALSE(rule.performed);
  EXPECT_FALSE(rule.crash);
}

TEST(FaultSpecTest, EmptyPathAndForever) {
  FaultRule rule = Rule("write::1+:resource_exhausted");
  EXPECT_EQ(rule.op, FaultOp::kWrite);
  EXPECT_EQ(rule.path_substring, "");
  EXPECT_EQ(rule.nth, 1);
  EXPECT_TRUE(rule.forever);
  EXPECT_EQ(rule.code, StatusCode::kResourceExhausted);
}

TEST(FaultSpecTest, DefaultsToOnceWithIoError) {
  FaultRule rule = Rule("sync_dir:out:12");
  EXPECT_EQ(rule.op, FaultOp::kSyncDir);
  EXPECT_EQ(rule.path_substring, "out");
  EXPECT_EQ(rule.nth, 12);
  EXPECT_FALSE(rule.forever);
  EXPECT_EQ(rule.code, StatusCode::kIOError);
  EXPECT_FALSE(rule.performed);
  EXPECT_FALSE(rule.crash);
}

TEST(FaultSpecTest, PerformedAndCrashInAnyOrder) {
  FaultRule performed = Rule("rename:part-:1:io_error:performed");
  EXPECT_TRUE(performed.performed);
  EXPECT_FALSE(performed.crash);

  FaultRule crash = Rule("sync:.part-:3:crash");
  EXPECT_EQ(crash.op, FaultOp::kSync);
  EXPECT_EQ(crash.nth, 3);
  EXPECT_TRUE(crash.crash);
  EXPECT_FALSE(crash.performed);

  FaultRule both = Rule("rename:units/:1:crash:performed");
  EXPECT_EQ(both.path_substring, "units/");
  EXPECT_TRUE(both.crash);
  EXPECT_TRUE(both.performed);
  EXPECT_EQ(both.code, StatusCode::kIOError);

  FaultRule all = Rule("remove:tmp:4+:performed:unavailable:crash");
  EXPECT_EQ(all.op, FaultOp::kRemove);
  EXPECT_TRUE(all.forever);
  EXPECT_EQ(all.code, StatusCode::kUnavailable);
  EXPECT_TRUE(all.performed);
  EXPECT_TRUE(all.crash);
}

TEST(FaultSpecTest, EveryOpAndCodeNameParses) {
  for (size_t op_idx = 0; op_idx < kNumFaultOps; ++op_idx) {
    FaultOp op = static_cast<FaultOp>(op_idx);
    EXPECT_EQ(Rule(std::string(FaultOpName(op)) + "::1").op, op);
  }
  for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kAlreadyExists,
                          StatusCode::kCorruption, StatusCode::kNotSupported, StatusCode::kFailedPrecondition,
                          StatusCode::kInternal, StatusCode::kCancelled, StatusCode::kResourceExhausted,
                          StatusCode::kIOError, StatusCode::kUnavailable, StatusCode::kTimeout}) {
    EXPECT_EQ(Rule("write::1:" + std::string(StatusCodeName(code))).code, code);
  }
}

TEST(FaultSpecTest, RandomWithAllFields) {
  RandomFaults random = Random("random:0.2:write,sync:io_error:42");
  EXPECT_DOUBLE_EQ(random.rate, 0.2);
  EXPECT_EQ(random.ops, (std::vector<FaultOp>{FaultOp::kWrite, FaultOp::kSync}));
  EXPECT_EQ(random.code, StatusCode::kIOError);
  EXPECT_EQ(random.seed, 42u);
}

TEST(FaultSpecTest, RandomDefaults) {
  RandomFaults random = Random("random:1:rename");
  EXPECT_DOUBLE_EQ(random.rate, 1.0);
  EXPECT_EQ(random.ops, std::vector<FaultOp>{FaultOp::kRename});
  EXPECT_EQ(random.code, StatusCode::kIOError);
  EXPECT_EQ(random.seed, 0u);

  RandomFaults timeout = Random("random:0:read:timeout");
  EXPECT_DOUBLE_EQ(timeout.rate, 0.0);
  EXPECT_EQ(timeout.code, StatusCode::kTimeout);
  EXPECT_EQ(timeout.seed, 0u);
}

TEST(FaultSpecTest, ErrorsNameTheSpecAndTheBadPart) {
  EXPECT_EQ(Error("renam:x:1"),
            "fault spec 'renam:x:1': unknown operation 'renam' "
            "(write, sync, rename, create, read, remove, sync_dir)");
  EXPECT_EQ(Error("write"),
            "fault spec 'write': expected OP:PATH_SUBSTRING:NTH[+][:CODE][:performed][:crash] "
            "or random:RATE:OPS[:CODE][:SEED]");
  EXPECT_NE(Error("").find("fault spec '': expected OP:"), std::string::npos);
  EXPECT_NE(Error("random:0.5").find("fault spec 'random:0.5': expected OP:"), std::string::npos);
  EXPECT_EQ(Error("write:x:0"),
            "fault spec 'write:x:0': nth '0' is not a positive integer (optionally followed by '+')");
  EXPECT_EQ(Error("write:x:"), "fault spec 'write:x:': nth '' is not a positive integer (optionally followed by '+')");
  EXPECT_EQ(Error("write:x:+"), "fault spec 'write:x:+': nth '+' is not a positive integer (optionally followed by '+')");
  EXPECT_EQ(Error("write:x:2x"), "fault spec 'write:x:2x': nth '2x' is not a positive integer (optionally followed by '+')");
  EXPECT_EQ(Error("write:x:-1"), "fault spec 'write:x:-1': nth '-1' is not a positive integer (optionally followed by '+')");
  EXPECT_EQ(Error("write:x:1:disk_full"),
            "fault spec 'write:x:1:disk_full': unknown option 'disk_full' (performed, crash, or a code: "
            "invalid_argument, not_found, already_exists, corruption, not_supported, failed_precondition, "
            "internal, cancelled, resource_exhausted, io_error, unavailable, timeout)");
  EXPECT_NE(Error("write:x:1:ok").find("unknown option 'ok'"), std::string::npos);
  EXPECT_EQ(Error("write:x:1:crash:crash"), "fault spec 'write:x:1:crash:crash': 'crash' given twice");
  EXPECT_EQ(Error("write:x:1:io_error:timeout"), "fault spec 'write:x:1:io_error:timeout': a second code 'timeout'");
  // A ':' in the path substring splits it.
  EXPECT_NE(Error("read:C:\\data:1").find("nth '\\data'"), std::string::npos);

  EXPECT_EQ(Error("random:1.5:write"), "fault spec 'random:1.5:write': rate '1.5' is not a number in [0, 1]");
  EXPECT_EQ(Error("random:-0.1:write"), "fault spec 'random:-0.1:write': rate '-0.1' is not a number in [0, 1]");
  EXPECT_EQ(Error("random:nan:write"), "fault spec 'random:nan:write': rate 'nan' is not a number in [0, 1]");
  EXPECT_EQ(Error("random:0.2x:write"), "fault spec 'random:0.2x:write': rate '0.2x' is not a number in [0, 1]");
  EXPECT_NE(Error("random:0.2:write,,sync").find("unknown operation ''"), std::string::npos);
  EXPECT_NE(Error("random:0.2:write,syn").find("unknown operation 'syn'"), std::string::npos);
  EXPECT_NE(Error("random:0.2:write:eio").find("unknown code 'eio'"), std::string::npos);
  EXPECT_EQ(Error("random:0.2:write:io_error:-3"),
            "fault spec 'random:0.2:write:io_error:-3': seed '-3' is not a non-negative integer");
  EXPECT_EQ(Error("random:0.2:write:io_error:1:2"),
            "fault spec 'random:0.2:write:io_error:1:2': too many fields; expected random:RATE:OPS[:CODE][:SEED]");
}

// ---- ApplyFaultSpec on an Env ------------------------------------------------

class ApplyFaultSpecTest : public ::testing::Test {
 protected:
  ApplyFaultSpecTest() : mem_(NewMemEnv()), env_(mem_.get()) {}

  std::unique_ptr<Env> mem_;
  FaultInjectionEnv env_;
};

TEST_F(ApplyFaultSpecTest, RuleFailsTheNthMatchingCallWithItsCode) {
  ASSERT_TRUE(ApplyFaultSpec("write:.part-:2:resource_exhausted", &env_).ok());
  auto other = env_.NewWritableFile("out/other");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE((*other)->Append("x").ok());
  auto file = env_.NewWritableFile("out/.part-00000.csv.tmp-1");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Append("a").ok());
  Status second = (*file)->Append("b");
  EXPECT_EQ(second.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(second.message(), "injected fault: write 'out/.part-00000.csv.tmp-1'");
  EXPECT_TRUE((*file)->Append("c").ok());
  EXPECT_EQ(env_.TotalInjected(), 1);
}

TEST_F(ApplyFaultSpecTest, ForeverAndPerformed) {
  ASSERT_TRUE(WriteFileAtomic(mem_.get(), "a", "1").ok());
  ASSERT_TRUE(ApplyFaultSpec("rename:a:1:performed", &env_).ok());
  EXPECT_EQ(env_.RenameFile("a", "b").code(), StatusCode::kIOError);
  EXPECT_FALSE(env_.FileExists("a"));
  EXPECT_TRUE(env_.FileExists("b"));

  ASSERT_TRUE(ApplyFaultSpec("sync_dir::2+", &env_).ok());
  EXPECT_TRUE(env_.SyncDir(".").ok());
  EXPECT_FALSE(env_.SyncDir(".").ok());
  EXPECT_FALSE(env_.SyncDir(".").ok());
  EXPECT_EQ(env_.Injected(FaultOp::kSyncDir), 2);
}

TEST_F(ApplyFaultSpecTest, RandomSetsTheSeedAndASecondIsRefused) {
  EXPECT_FALSE(env_.has_random_faults());
  ASSERT_TRUE(ApplyFaultSpec("random:1:write:unavailable:42", &env_).ok());
  EXPECT_TRUE(env_.has_random_faults());
  EXPECT_EQ(env_.random_seed(), 42u);
  auto file = env_.NewWritableFile("f");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Append("x").code(), StatusCode::kUnavailable);

  Status second = ApplyFaultSpec("random:0.5:sync", &env_);
  EXPECT_EQ(second.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(second.message(), "fault spec 'random:0.5:sync': random faults are already set (one random spec at most)");
  env_.ClearRandomFaults();
  EXPECT_FALSE(env_.has_random_faults());
  ASSERT_TRUE(ApplyFaultSpec("random:0.5:sync", &env_).ok());
  EXPECT_NE(env_.random_seed(), 0u);
  EXPECT_NE(env_.random_seed(), 42u);
}

TEST_F(ApplyFaultSpecTest, BadSpecChangesNothing) {
  Status st = ApplyFaultSpec("write:x:zero", &env_);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  auto file = env_.NewWritableFile("x");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Append("1").ok());
  EXPECT_EQ(env_.TotalInjected(), 0);
}

}  // namespace
}  // namespace sluice
