// JobSession against RunJob on real files: units run by sessions sharing one
// output directory (several calls, concurrent attempts of one unit, a crash
// between a part's rename and its marker) give the bytes of one whole run,
// and FinalizeOutput completes the directory only when every unit is there.
#include "sluice/session.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <sstream>
#include <thread>

#include "env/fault_injection_env.h"
#include "exec/output_dir.h"
#include "exec/test_util.h"
#include "observe/metrics.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

// Every file under `dir` but job.json (it records output.path), the locks, and
// RunJob's metrics textfile and run report (timings differ in every run).
std::map<std::string, std::string> Tree(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), dir).string();
    if (rel == "_sluice/job.json" || rel.rfind("_sluice/lock", 0) == 0 || rel == "_sluice/metrics.prom" ||
        rel.rfind("_sluice/report.", 0) == 0) {
      continue;
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    files[rel] = bytes.str();
  }
  return files;
}

class JobSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sluice_session_test_");
    ASSERT_FALSE(dir_.empty());
    WriteLinearJobFiles(dir_, 3000);  // with rejected rows (errors.max_rejected allows them)
    std::ofstream(dir_ + "/job.yaml") << R"(
input: {path: data.csv, schema: {x2: float64}}
partition: {target_bytes: 3KiB}
features: [{name: x1}, {name: x2}]
model: {path: model.json, outputs: {score: probability}}
errors: {max_rejected: 10%}
execution: {workers: 2, retries: {max_attempts: 2, initial_backoff: 1ms}}
output: {path: out, keys: [id]}
)";
    registry_ = std::make_unique<ModelRegistry>();
    RegisterBuiltinModels(registry_.get());
  }

  void TearDown() override { fs::remove_all(dir_); }

  JobSpec Spec(const std::string& out) {
    Result<JobSpec> spec = LoadJobSpec(Env::Default(), dir_ + "/job.yaml", {"output.path=" + out});
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return *spec;
  }

  RunOptions Options(bool shared) {
    RunOptions options;
    options.models = registry_.get();
    options.shared_output = shared;
    return options;
  }

  std::unique_ptr<JobSession> Open(const std::string& out, Env* env = Env::Default()) {
    Result<std::unique_ptr<JobSession>> session = JobSession::Open(Spec(out), env, Options(/*shared=*/true));
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    return session.ok() ? std::move(*session) : nullptr;
  }

  // The output of one whole run, in `out`.
  std::map<std::string, std::string> Reference(const std::string& out) {
    Result<JobReport> report = RunJob(Spec(out), Env::Default(), Options(/*shared=*/false));
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->exit_code, ExitCode::kSuccess) << report->error;
    EXPECT_TRUE(fs::exists(out + "/_SUCCESS"));
    return Tree(out);
  }

  std::string dir_;
  std::unique_ptr<ModelRegistry> registry_;
};

TEST_F(JobSessionTest, UnitsRunInSeveralCallsThenFinalizeEqualOneRun) {
  const auto reference = Reference(dir_ + "/ref");
  std::unique_ptr<JobSession> session = Open(dir_ + "/out");
  ASSERT_NE(session, nullptr);
  Result<PlanSummary> plan = session->Plan();
  ASSERT_TRUE(plan.ok());
  const size_t n = plan->units.size();
  ASSERT_GE(n, 8u);
  EXPECT_EQ(plan->fingerprint, session->fingerprint());
  std::vector<std::string> odd, even;
  for (size_t i = 0; i < n; ++i) (i % 2 ? odd : even).push_back(plan->units[i].id);

  Result<JobReport> first = session->RunUnits(odd);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->exit_code, ExitCode::kSuccess) << first->error;
  EXPECT_EQ(first->units_done, static_cast<int64_t>(odd.size()));
  EXPECT_EQ(first->units_skipped, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/out/_SUCCESS"));  // RunUnits never completes the job

  // Not complete yet: finalize names the missing units and writes nothing.
  Result<FinalizeReport> early = FinalizeOutput(Env::Default(), dir_ + "/out");
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  EXPECT_EQ(early->exit_code, ExitCode::kUnitsFailed);
  ASSERT_EQ(early->missing.size(), even.size());
  EXPECT_EQ(early->missing[0], even[0] + ": pending");
  EXPECT_FALSE(fs::exists(dir_ + "/out/_SUCCESS"));

  Result<JobReport> second = session->RunUnits(even);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->units_done, static_cast<int64_t>(even.size()));
  EXPECT_EQ(session->model_loads(), 1);  // one load for both calls
  EXPECT_EQ(second->model_loads, 1);
  session.reset();  // releases the directory, as a worker leaving

  Result<FinalizeReport> done = FinalizeOutput(Env::Default(), dir_ + "/out");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->exit_code, ExitCode::kSuccess) << done->error;
  EXPECT_EQ(done->units_done, static_cast<int64_t>(n));
  EXPECT_EQ(done->rows_in, 3000);
  EXPECT_EQ(done->rows_rejected, 97);  // ids 0, 31, …, 2976
  EXPECT_EQ(Tree(dir_ + "/out"), reference);
  // Idempotent.
  Result<FinalizeReport> again = FinalizeOutput(Env::Default(), dir_ + "/out");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, ExitCode::kSuccess);
  EXPECT_EQ(Tree(dir_ + "/out"), reference);
}

TEST_F(JobSessionTest, ConcurrentAttemptsOfOneUnitCommitOnce) {
  const auto reference = Reference(dir_ + "/ref");
  const std::string out = dir_ + "/out";
  // Two processes' sessions opening a fresh directory at once, then both
  // running unit 00002 at once: one commits, the other finds the commit.
  constexpr int kAttempts = 4;
  std::latch open_together(kAttempts), run_together(kAttempts);
  std::vector<std::unique_ptr<JobSession>> sessions(kAttempts);
  std::vector<Result<JobReport>> reports(kAttempts, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (int a = 0; a < kAttempts; ++a) {
    threads.emplace_back([&, a] {
      open_together.arrive_and_wait();
      sessions[a] = Open(out);
      run_together.arrive_and_wait();
      if (sessions[a]) reports[a] = sessions[a]->RunUnits({"00002"});
    });
  }
  for (std::thread& t : threads) t.join();
  int committed_here = 0;
  for (const Result<JobReport>& r : reports) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, ExitCode::kSuccess) << r->error;
    EXPECT_EQ(r->units_done, 1);
    EXPECT_EQ(r->rows_in, reports[0]->rows_in);
    EXPECT_EQ(r->parts, std::vector<std::string>{"part-00002.csv"});
    committed_here += r->units_skipped == 0 ? 1 : 0;
  }
  EXPECT_EQ(committed_here, 1);
  std::map<std::string, std::string> unit_files;  // the reference's files of unit 00002
  for (const auto& [path, bytes] : reference) {
    if (path.find("00002") != std::string::npos) unit_files[path] = bytes;
  }
  ASSERT_TRUE(unit_files.count("_sluice/rejects/part-00002.jsonl"));  // rejects are committed once too
  EXPECT_EQ(Tree(out), unit_files);

  // A later attempt (a retried task) reports the commit and writes nothing.
  struct stat before {};
  ASSERT_EQ(::stat((out + "/part-00002.csv").c_str(), &before), 0);
  Result<JobReport> late = sessions[0]->RunUnits({"00002"});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->units_skipped, 1);
  struct stat after {};
  ASSERT_EQ(::stat((out + "/part-00002.csv").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
}

// The crash comes first in this process (ctest runs each test alone), so the
// death test's fork happens before any thread pool exists.
TEST_F(JobSessionTest, CrashBetweenPartRenameAndMarkerIsRedoneOnce) {
  const std::string out = dir_ + "/out";
  EXPECT_EXIT(
      {
        FaultInjectionEnv env(Env::Default());
        FaultRule crash;
        crash.op = FaultOp::kCreate;  // the marker's temporary: the part is renamed already
        crash.path_substring = "_sluice/units/00001.json";
        crash.crash = true;
        env.AddRule(crash);
        std::unique_ptr<JobSession> session = Open(out, &env);
        if (session) (void)session->RunUnits({"00001"});
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(kFaultCrashExitCode), "");
  EXPECT_TRUE(fs::exists(out + "/part-00001.csv"));  // renamed into place
  EXPECT_FALSE(fs::exists(out + "/_sluice/units/00001.json"));

  const auto reference = Reference(dir_ + "/ref");
  Result<FinalizeReport> missing = FinalizeOutput(Env::Default(), out);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->exit_code, ExitCode::kUnitsFailed);
  std::unique_ptr<JobSession> session = Open(out);
  ASSERT_NE(session, nullptr);
  Result<JobReport> redo = session->RunUnits(session->ShardUnitIds());
  ASSERT_TRUE(redo.ok());
  EXPECT_EQ(redo->exit_code, ExitCode::kSuccess) << redo->error;
  EXPECT_EQ(redo->units_skipped, 0);  // a part without a marker does not exist
  session.reset();
  Result<FinalizeReport> done = FinalizeOutput(Env::Default(), out);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code, ExitCode::kSuccess) << done->error;
  EXPECT_EQ(Tree(out), reference);
}

TEST_F(JobSessionTest, FailedCommitLeavesThePartForTheNextAttempt) {
  // The same disk state as a crash, reached by a permanent fault: the part is
  // renamed, the marker cannot be written; the unit fails and is recorded.
  const std::string out = dir_ + "/out";
  FaultInjectionEnv env(Env::Default());
  env.FailOnce(FaultOp::kCreate, "_sluice/units/00003.json", 1, StatusCode::kFailedPrecondition);
  std::unique_ptr<JobSession> faulty = Open(out, &env);
  ASSERT_NE(faulty, nullptr);
  Result<JobReport> failed = faulty->RunUnits({"00003"});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->exit_code, ExitCode::kUnitsFailed);
  EXPECT_NE(failed->error.find("injected fault"), std::string::npos) << failed->error;
  faulty.reset();
  Result<FinalizeReport> missing = FinalizeOutput(Env::Default(), out);
  ASSERT_TRUE(missing.ok());
  ASSERT_FALSE(missing->missing.empty());
  EXPECT_EQ(missing->missing[0].rfind("00000: pending", 0), 0u) << missing->missing[0];
  bool listed = false;
  for (const std::string& m : missing->missing) listed = listed || m.rfind("00003: failed after 1 attempt(s)", 0) == 0;
  EXPECT_TRUE(listed);

  const auto reference = Reference(dir_ + "/ref");
  std::unique_ptr<JobSession> session = Open(out);
  Result<JobReport> rest = session->RunUnits(session->ShardUnitIds());
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->exit_code, ExitCode::kSuccess) << rest->error;
  session.reset();
  ASSERT_EQ(FinalizeOutput(Env::Default(), out)->exit_code, ExitCode::kSuccess);
  EXPECT_EQ(Tree(out), reference);
}

// A run stopped at once (a second signal) may leave the temporary of a
// job-wide file behind; the next run of the whole job removes it.
TEST_F(JobSessionTest, WholeRunRemovesTemporariesOfJobWideFiles) {
  const std::string out = dir_ + "/out";
  const std::map<std::string, std::string> ref = Reference(out);
  const std::vector<std::string> leftovers = {
      "_SUCCESS.tmp-41-7-1",          "_sluice/job.json.tmp-41-7-2",
      "_sluice/metrics.prom.tmp-41-7-3", "_sluice/metrics-shard-1-of-2.prom.tmp-41-7-4",
      "_sluice/report.json.tmp-41-7-5", "_sluice/report.html.tmp-41-7-6",
      "_sluice/report-shard-2-of-2.json.tmp-41-7-7"};
  for (const std::string& rel : leftovers) std::ofstream(out + "/" + rel) << "partial";
  std::ofstream(out + "/_sluice/reports-of-mine.txt") << "kept";  // not a temporary of Sluice's
  Result<JobReport> again = RunJob(Spec(out), Env::Default(), Options(/*shared=*/false));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->exit_code, ExitCode::kSuccess) << again->error;
  for (const std::string& rel : leftovers) EXPECT_FALSE(fs::exists(out + "/" + rel)) << rel;
  EXPECT_TRUE(fs::exists(out + "/_sluice/report.json"));
  std::map<std::string, std::string> tree = Tree(out);
  EXPECT_EQ(tree.erase("_sluice/reports-of-mine.txt"), 1u);
  EXPECT_EQ(tree, ref);
}

TEST_F(JobSessionTest, BadRequestsAreRefused) {
  std::unique_ptr<JobSession> session = Open(dir_ + "/out");
  ASSERT_NE(session, nullptr);
  Result<JobReport> unknown = session->RunUnits({"00001", "99999"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unit '99999' is not a unit of this job"), std::string::npos);
  Result<JobReport> twice = session->RunUnits({"00001", "00001"});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "unit '00001' is listed twice");
  EXPECT_FALSE(fs::exists(dir_ + "/out/part-00001.csv"));

  RunOptions restart = Options(/*shared=*/true);
  restart.restart = true;
  Result<std::unique_ptr<JobSession>> refused = JobSession::Open(Spec(dir_ + "/other"), Env::Default(), restart);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);

  // A run of the whole job cannot start while a session shares the directory.
  Result<JobReport> whole = RunJob(Spec(dir_ + "/out"), Env::Default(), Options(/*shared=*/false));
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.status().message().find("is in use by another run"), std::string::npos);

  Result<FinalizeReport> none = FinalizeOutput(Env::Default(), dir_ + "/nothing");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
}

// RequestStop (an alert's `fail`): units stop without committing, RunUnits
// answers the code and reason, and a new session resumes to the bytes of one
// run. The session's metrics count what it ran.
TEST_F(JobSessionTest, RequestStopEndsRunsWithItsCodeAndTheJobResumes) {
  const auto reference = Reference(dir_ + "/ref");
  std::vector<std::string> ids;
  {
    std::unique_ptr<JobSession> session = Open(dir_ + "/out");
    ASSERT_NE(session, nullptr);
    ids = session->ShardUnitIds();
    ASSERT_GE(ids.size(), 4u);
    const std::vector<std::string> first_ids(ids.begin(), ids.begin() + 2);
    Result<JobReport> first = session->RunUnits(first_ids);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_EQ(first->exit_code, ExitCode::kSuccess) << first->error;

    session->RequestStop(ExitCode::kAlert, "alert errors fired: error_rate 0.05 > 0.01");
    session->RequestStop(ExitCode::kInterrupted, "a later request");  // the first stands
    Result<JobReport> stopped = session->RunUnits(ids);
    ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
    EXPECT_EQ(stopped->exit_code, ExitCode::kAlert);
    EXPECT_EQ(stopped->error.rfind("alert errors fired: error_rate 0.05 > 0.01; 2 of ", 0), 0u) << stopped->error;
    EXPECT_EQ(stopped->units_done, 2);  // the first two, committed before
    for (size_t i = 2; i < ids.size(); ++i) EXPECT_FALSE(fs::exists(UnitMarkerPath(dir_ + "/out", ids[i])));

    const MetricsSnapshot m = session->metrics()->Snapshot();
    EXPECT_EQ(m.rows_in, first->rows_in);
    EXPECT_EQ(m.rows_out, first->rows_out);
    EXPECT_EQ(m.rows_rejected, first->rows_rejected);
    EXPECT_EQ(m.units_done, 2);
    EXPECT_EQ(m.units_failed, 0);
    EXPECT_EQ(m.units_running, 0);
    EXPECT_EQ(m.score_column, "score");
    EXPECT_EQ(m.scores.count, first->rows_out + first->rows_filtered);
    EXPECT_EQ(m.stage_seconds[static_cast<size_t>(Stage::kCommit)].count, 2);
    EXPECT_EQ(m.batches_in_flight, 0);
    EXPECT_EQ(session->metrics()->UnitSeconds().size(), 2u);
  }
  std::unique_ptr<JobSession> again = Open(dir_ + "/out");
  ASSERT_NE(again, nullptr);
  Result<JobReport> rest = again->RunUnits(ids);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->exit_code, ExitCode::kSuccess) << rest->error;
  EXPECT_EQ(rest->units_skipped, 2);
  Result<FinalizeReport> fin = FinalizeOutput(Env::Default(), dir_ + "/out");
  ASSERT_TRUE(fin.ok());
  EXPECT_EQ(fin->exit_code, ExitCode::kSuccess);
  EXPECT_EQ(Tree(dir_ + "/out"), reference);
}

}  // namespace
}  // namespace sluice
