// The `sluice` command: parses arguments, sets up logging, and calls the engine.
// Exit codes (DESIGN.md §5): 0 success, 1 units failed, 2 invalid usage/spec/
// preflight, 3 reject limit exceeded, 4 alert, 130 interrupted.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli.h"

#include "core/strings.h"
#include "exec/job_context.h"
#include "observe/log.h"
#include "observe/report.h"
#include "sluice/job.h"
#include "sluice/model.h"
#include "sluice/session.h"
#include "sluice/tune.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

namespace sluice {
namespace {

constexpr int kExitInvalid = static_cast<int>(ExitCode::kInvalid);

int Fail(const Status& st, int code = kExitInvalid) {
  std::fprintf(stderr, "sluice: error: %s\n", st.message().c_str());
  return code;
}

struct CommonArgs {
  std::string job_path;
  std::vector<std::string> overrides;
  std::string shard;  // "I/N"
};

Result<JobSpec> LoadSpec(Env* env, const CommonArgs& args) { return LoadJobFile(env, args.job_path, args.overrides); }

// SIGINT / SIGTERM: the first asks the run to stop (no new units, units in
// flight stop at their next batch, exit 130, resumable); a second ends the
// process at once (still resumable: nothing half-written is ever visible).
std::atomic<bool> g_interrupt{false};

extern "C" void OnStopSignal(int) {
  if (g_interrupt.exchange(true)) _exit(static_cast<int>(ExitCode::kInterrupted));
  static const char kMsg[] = "sluice: stopping: finishing no more units (again to stop at once)\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
}

void InstallStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int CmdRun(Env* env, const ModelRegistry& models, const CommonArgs& args, bool restart, bool quiet) {
  Result<JobSpec> spec = LoadSpec(env, args);
  if (!spec.ok()) return Fail(spec.status());
  RunOptions options;
  options.models = &models;
  options.restart = restart;
  options.quiet = quiet;
  options.stderr_tty = isatty(STDERR_FILENO) == 1;
  options.exits_after_run = true;
  if (Status st = ParseShard(args.shard, &options); !st.ok()) return Fail(st);
  options.interrupt = &g_interrupt;
  InstallStopSignals();
  Result<JobReport> report = RunJob(*spec, env, options);
  if (!report.ok()) return Fail(report.status());
  const JobReport& r = *report;
  // Rows of a unit stopped by the reject limit are not committed, so not counted here.
  std::printf("rows%s: in %lld = out %lld + rejected %lld + filtered %lld\n",
              r.exit_code == ExitCode::kSuccess ? "" : " (committed units)", static_cast<long long>(r.rows_in),
              static_cast<long long>(r.rows_out), static_cast<long long>(r.rows_rejected),
              static_cast<long long>(r.rows_filtered));
  for (const auto& [reason, count] : r.rejects_by_reason) {
    std::printf("  rejected %-18s %lld\n", reason.c_str(), static_cast<long long>(count));
  }
  if (r.rows_sampled_out > 0) {
    std::printf("  sampled out (partition.sample) %lld\n", static_cast<long long>(r.rows_sampled_out));
  }
  std::printf("units: %lld done%s, %lld failed of %lld; %.2f s\n", static_cast<long long>(r.units_done),
              r.units_skipped > 0 ? fmt::format(" ({} already committed)", r.units_skipped).c_str() : "",
              static_cast<long long>(r.units_failed), static_cast<long long>(r.units_total), r.seconds);
  if (!r.retries.empty()) {
    std::string retries;
    for (const auto& [code, count] : r.retries) retries += fmt::format("{}{} {}", retries.empty() ? "" : ", ", code, count);
    std::printf("retries: %s\n", retries.c_str());
  }
  std::printf("workers: %d x %d model thread(s); batch %zu rows%s; model loads %lld, evictions %lld; peak RSS %.0f MiB\n",
              r.workers, r.model_threads, r.batch_size, r.batch_size_auto ? " (auto)" : "",
              static_cast<long long>(r.model_loads), static_cast<long long>(r.model_evictions),
              static_cast<double>(r.peak_rss_bytes) / (1 << 20));
  if (IsDatabase(spec->output.format)) {
    std::printf("output: table %s in %s (run files in %s)\n", spec->output.table.c_str(),
                RedactConnection(spec->output.database).c_str(), spec->output.path.c_str());
  } else {
    std::printf("output: %s\n", spec->output.path.c_str());
  }
  if (r.exit_code != ExitCode::kSuccess) std::fprintf(stderr, "sluice: error: %s\n", r.error.c_str());
  return static_cast<int>(r.exit_code);
}

struct TuneArgs {
  int64_t sample_rows = 200000;
  int repeats = 2;
  std::string out = "tuned.yaml";
};

// Where tune's runs write: $TMPDIR (or /tmp)/sluice-tune-<pid>-<time>, removed after.
std::string TuneScratchDir(Env* env) {
  const char* tmp = std::getenv("TMPDIR");
  return JoinPath(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                  fmt::format("sluice-tune-{}-{}", static_cast<long>(getpid()), env->NowMicros()));
}

int CmdTune(Env* env, const ModelRegistry& models, const CommonArgs& args, const TuneArgs& tune) {
  Result<JobSpec> spec = LoadSpec(env, args);
  if (!spec.ok()) return Fail(spec.status());
  TuneOptions options;
  options.models = &models;
  options.sample_rows = tune.sample_rows;
  options.repeats = tune.repeats;
  options.work_dir = TuneScratchDir(env);
  const auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  std::printf("%8s  %-17s %12s %10s %9s %10s %9s\n", "batch", "workers x threads", "rows/s", "peak RSS", "read ms",
              "predict ms", "write ms");
  options.on_trial = [&](const TuneTrial& t) {
    const std::string split = fmt::format("{} x {}", t.workers, t.model_threads);
    if (!t.error.empty()) {
      std::printf("%8zu  %-17s %12s  (not run: %s)\n", t.batch_size, split.c_str(), "-", t.error.c_str());
    } else {
      std::printf("%8zu  %-17s %12.0f %6.0f MiB %9.0f %10.0f %9.0f\n", t.batch_size, split.c_str(), t.rows_per_sec,
                  mib(t.peak_rss_bytes), t.read_seconds * 1e3, t.predict_seconds * 1e3, t.write_seconds * 1e3);
    }
    std::fflush(stdout);
  };
  Result<TuneReport> report = TuneJob(*spec, env, options);
  if (!report.ok()) return Fail(report.status());
  const TuneReport& r = *report;
  const TuneTrial& best = r.trials[r.best];
  std::printf("sample: %lld rows, %s; %d core(s); best of %d run(s) each; stage times are thread time%s\n",
              static_cast<long long>(r.sample_rows), r.sample.c_str(), r.cores, tune.repeats,
              r.peak_rss_per_run ? "" : "; peak RSS is the process's so far");
  std::printf("best: batch.size %zu, %d worker(s) x %d model thread(s): %.0f rows/s\n", best.batch_size, best.workers,
              best.model_threads, best.rows_per_sec);
  if (Status st = WriteFileAtomic(env, tune.out, TunedSettingsYaml(r, args.job_path)); !st.ok()) return Fail(st);
  std::printf("wrote %s\n", tune.out.c_str());
  return 0;
}

int CmdValidate(Env* env, const ModelRegistry& models, const CommonArgs& args) {
  Result<JobSpec> spec = LoadSpec(env, args);
  if (!spec.ok()) return Fail(spec.status());
  RunOptions options;
  options.models = &models;
  Result<std::unique_ptr<JobContext>> ctx = PrepareJob(*spec, env, options);
  if (!ctx.ok()) return Fail(ctx.status());
  if (Status st = BindModels(*spec, ctx->get()); !st.ok()) return Fail(st);  // also for load: lazy
  const JobContext& c = **ctx;
  std::string columns;
  for (const Field& f : c.postprocessor->output_schema().fields()) {
    columns += (columns.empty() ? "" : ", ") + f.name;
  }
  std::printf("%s: ok — %zu unit(s), model %s with %zu inputs, output columns: %s\n", args.job_path.c_str(),
              c.plan.units.size(), c.model_kind.c_str(), c.model_info.num_features, columns.c_str());
  return 0;
}

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1 << 30));
  if (n >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  if (n >= (uint64_t{1} << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(n) / (1 << 10));
  return fmt::format("{} B", n);
}

int CmdPlan(Env* env, const ModelRegistry& models, const CommonArgs& args, bool json) {
  Result<JobSpec> spec = LoadSpec(env, args);
  if (!spec.ok()) return Fail(spec.status());
  RunOptions options;
  options.models = &models;
  if (Status st = ParseShard(args.shard, &options); !st.ok()) return Fail(st);
  Result<PlanSummary> plan = PlanJob(*spec, env, options);
  if (!plan.ok()) return Fail(plan.status());
  if (json) {
    nlohmann::ordered_json j;
    j["format"] = plan->format;
    j["fingerprint"] = plan->fingerprint;
    j["output"] = spec->output.path;
    j["output_is_this_job"] = plan->output_is_this_job;
    j["units"] = nlohmann::ordered_json::array();
    for (const PlannedUnit& u : plan->units) {
      j["units"].push_back({{"id", u.id}, {"path", u.path}, {"begin", u.begin}, {"end", u.end}, {"label", u.label},
                            {"est_bytes", u.est_bytes}, {"est_rows", u.est_rows}, {"rows_exact", u.rows_exact},
                            {"in_shard", u.in_shard}, {"done", u.done}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  int64_t rows = 0;
  uint64_t bytes = 0;
  size_t done = 0;
  size_t taken = 0;
  bool exact = true;
  std::printf("%-7s %-8s %-10s %12s  %-27s %s\n", "unit", "status", "bytes", "rows", "range", "input");
  for (const PlannedUnit& u : plan->units) {
    if (!u.in_shard) continue;
    ++taken;
    rows += u.est_rows;
    bytes += u.est_bytes;
    done += u.done ? 1 : 0;
    exact = exact && u.rows_exact;
    std::printf("%-7s %-8s %-10s %12s  %-27s %s\n", u.id.c_str(), u.done ? "done" : "pending", Bytes(u.est_bytes).c_str(),
                ((u.rows_exact ? "" : "~") + std::to_string(u.est_rows)).c_str(),
                (u.label.empty() ? fmt::format("[{}, {})", u.begin, u.end) : u.label).c_str(), u.path.c_str());
  }
  std::printf("%zu unit(s)%s, %s, %s%lld rows (%s input); %zu done, %zu pending; output %s\n", taken,
              args.shard.empty() ? "" : (" in shard " + args.shard + " of " + std::to_string(plan->units.size())).c_str(),
              Bytes(bytes).c_str(), exact ? "" : "~", static_cast<long long>(rows), plan->format.c_str(), done, taken - done,
              spec->output.path.c_str());
  return 0;
}

int CmdStatus(Env* env, const std::string& out, bool json) {
  Result<OutputStatus> status = ReadOutputStatus(env, out);
  if (!status.ok()) return Fail(status.status());
  static constexpr const char* kStates[] = {"done", "failed", "pending"};
  size_t counts[3] = {0, 0, 0};
  int64_t rows_in = 0, rows_out = 0, rows_rejected = 0;
  for (const UnitState& u : status->units) {
    ++counts[static_cast<int>(u.state)];
    rows_in += u.rows_in;
    rows_out += u.rows_out;
    rows_rejected += u.rows_rejected;
  }
  if (json) {
    nlohmann::ordered_json j;
    j["output"] = out;
    j["success"] = status->success;
    j["running"] = status->running;
    j["units"] = nlohmann::ordered_json::array();
    for (const UnitState& u : status->units) {
      j["units"].push_back({{"id", u.id}, {"state", kStates[static_cast<int>(u.state)]}, {"path", u.path},
                            {"begin", u.begin}, {"end", u.end}, {"label", u.label}, {"rows_in", u.rows_in}, {"rows_out", u.rows_out},
                            {"rows_rejected", u.rows_rejected}, {"error", u.error}, {"attempts", u.attempts}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (const UnitState& u : status->units) {
    if (u.state == UnitState::State::kDone) continue;
    std::printf("%-7s %-8s %s %s%s\n", u.id.c_str(), kStates[static_cast<int>(u.state)], u.path.c_str(),
                (u.label.empty() ? fmt::format("bytes [{}, {})", u.begin, u.end) : u.label).c_str(),
                u.error.empty() ? "" : fmt::format(": {} (after {} attempt(s))", u.error, u.attempts).c_str());
  }
  std::printf("%s: %zu unit(s): %zu done, %zu failed, %zu pending; rows in %lld, out %lld, rejected %lld%s%s\n",
              out.c_str(), status->units.size(), counts[0], counts[1], counts[2], static_cast<long long>(rows_in),
              static_cast<long long>(rows_out), static_cast<long long>(rows_rejected),
              status->success ? "; complete (_SUCCESS)" : "", status->running ? "; a run is in progress" : "");
  return 0;
}

// Units listed when finalize finds some missing; the rest are counted.
constexpr size_t kMaxMissingListed = 20;

int CmdFinalize(Env* env, const std::string& out) {
  Result<FinalizeReport> report = FinalizeOutput(env, out);
  if (!report.ok()) return Fail(report.status());
  const FinalizeReport& r = *report;
  if (r.exit_code == ExitCode::kUnitsFailed) {
    std::fprintf(stderr, "sluice: error: %s\n", r.error.c_str());
    for (size_t i = 0; i < r.missing.size() && i < kMaxMissingListed; ++i) {
      std::fprintf(stderr, "  %s\n", r.missing[i].c_str());
    }
    if (r.missing.size() > kMaxMissingListed) {
      std::fprintf(stderr, "  … and %zu more (sluice status %s)\n", r.missing.size() - kMaxMissingListed, out.c_str());
    }
    return static_cast<int>(r.exit_code);
  }
  std::printf("rows: in %lld = out %lld + rejected %lld + filtered %lld\n", static_cast<long long>(r.rows_in),
              static_cast<long long>(r.rows_out), static_cast<long long>(r.rows_rejected),
              static_cast<long long>(r.rows_filtered));
  if (r.exit_code != ExitCode::kSuccess) {
    std::fprintf(stderr, "sluice: error: %s\n", r.error.c_str());
    return static_cast<int>(r.exit_code);
  }
  std::printf("%s: %lld unit(s) committed; wrote _SUCCESS\n", out.c_str(), static_cast<long long>(r.units_done));
  return 0;
}

int CmdFitStats(Env* env, const ModelRegistry& models, const CommonArgs& args, const std::string& out_path,
                bool scores) {
  Result<JobSpec> spec = LoadSpec(env, args);
  if (!spec.ok()) return Fail(spec.status());
  FitStatsOptions options;
  options.scores = scores;
  options.models = &models;
  Result<FitStatsReport> report = FitStats(*spec, env, out_path, options);
  if (!report.ok()) return Fail(report.status());
  std::printf("fit-stats: %lld rows (%lld unreadable, skipped) -> %s\n", static_cast<long long>(report->rows),
              static_cast<long long>(report->rows_rejected), out_path.c_str());
  if (!report->score_column.empty()) {
    std::printf("fit-stats: reference histogram of '%s' from %lld scores\n", report->score_column.c_str(),
                static_cast<long long>(report->scores));
  }
  return 0;
}

int CmdReport(Env* env, const std::string& out) {
  Result<std::vector<std::string>> paths = RerenderReports(env, out);
  if (!paths.ok()) return Fail(paths.status());
  for (const std::string& path : *paths) std::printf("%s\n", path.c_str());
  return 0;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + (shape[i] < 0 ? "N" : std::to_string(shape[i]));
  return out + "]";
}

nlohmann::ordered_json InfoJson(const std::string& path, const ModelInfo& info) {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["backend"] = info.backend;
  j["num_features"] = info.num_features;
  j["feature_names"] = info.feature_names;
  j["inputs"] = nlohmann::ordered_json::array();
  for (const ModelInputInfo& in : info.inputs) {
    j["inputs"].push_back({{"name", in.name}, {"type", DataTypeName(in.type)}, {"shape", in.shape}});
  }
  j["outputs"] = nlohmann::ordered_json::array();
  for (const ModelOutputInfo& out : info.outputs) {
    j["outputs"].push_back({{"name", out.name}, {"type", DataTypeName(out.type)}, {"width", out.width},
                            {"element_names", out.element_names}});
  }
  j["metadata"] = info.metadata;
  j["concurrent_predict"] = info.concurrent_predict;
  return j;
}

int CmdInspect(Env* env, const ModelRegistry& models, const std::string& path, const std::string& kind, bool json) {
  ModelOptions options;
  options.path = path;
  Result<std::unique_ptr<Model>> model = models.Load(env, kind, options);
  if (!model.ok()) return Fail(model.status());
  const ModelInfo& info = (*model)->info();
  if (json) {
    std::printf("%s\n", InfoJson(path, info).dump(2).c_str());
    return 0;
  }
  std::printf("model:    %s\nbackend:  %s\n", path.c_str(), info.backend.c_str());
  for (const char* key : {"objective", "num_trees", "num_classes"}) {
    if (auto it = info.metadata.find(key); it != info.metadata.end()) {
      std::printf("%-9s %s\n", (std::string(key) + ":").c_str(), it->second.c_str());
    }
  }
  std::printf("features: %zu", info.num_features);
  if (!info.feature_names.empty()) {
    std::string names;
    for (const std::string& n : info.feature_names) names += (names.empty() ? "" : ", ") + n;
    std::printf(" (%s)", names.c_str());
  }
  std::printf("\ninputs:\n");
  if (info.inputs.empty()) std::printf("  (the feature vector, float32 [N, %zu])\n", info.num_features);
  for (const ModelInputInfo& in : info.inputs) {
    std::printf("  %-24s %-9s %s\n", in.name.c_str(), std::string(DataTypeName(in.type)).c_str(),
                ShapeText(in.shape).c_str());
  }
  std::printf("outputs:\n");
  for (const ModelOutputInfo& out : info.outputs) {
    std::string elements;
    for (const std::string& e : out.element_names) elements += (elements.empty() ? " (" : ", ") + e;
    if (!elements.empty()) elements += ")";
    std::printf("  %-24s %-9s width %zu%s\n", out.name.c_str(), std::string(DataTypeName(out.type)).c_str(),
                out.width, elements.c_str());
  }
  if (!info.metadata.empty()) {
    std::printf("metadata:\n");
    for (const auto& [key, value] : info.metadata) std::printf("  %s: %s\n", key.c_str(), value.c_str());
  }
  std::printf("concurrent predict: %s\n", info.concurrent_predict ? "yes" : "no");
  return 0;
}

}  // namespace

Status ParseShard(const std::string& text, RunOptions* options) {
  if (text.empty()) return Status::OK();
  const size_t slash = text.find('/');
  int index = -1;
  int count = 0;
  if (slash != std::string::npos) {
    const char* end = text.data() + text.size();
    auto r1 = std::from_chars(text.data(), text.data() + slash, index);
    auto r2 = std::from_chars(text.data() + slash + 1, end, count);
    if (r1.ec != std::errc() || r1.ptr != text.data() + slash || r2.ec != std::errc() || r2.ptr != end) count = 0;
  }
  if (count < 1 || index < 0 || index >= count) {
    return Status::InvalidArgument("--shard '" + text + "': expected I/N with 0 <= I < N, e.g. --shard 0/4");
  }
  options->shard_index = index;
  options->shard_count = count;
  return Status::OK();
}

Result<JobSpec> LoadJobFile(Env* env, const std::string& job_path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(job_path, ec);
  return LoadJobSpec(env, ec ? job_path : abs.lexically_normal().string(), overrides);
}

int RunCli(int argc, char** argv, Env* env) {
  CLI::App app{"Sluice: offline batch predictions — score every row of a dataset with a trained model."};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--log-level) may follow the subcommand
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")->capture_default_str();

  CommonArgs args;
  bool restart = false;
  bool quiet = false;
  std::string stats_out;

  CLI::App* run = app.add_subcommand("run", "Score a job: read, preprocess, predict, write.");
  CLI::App* validate = app.add_subcommand("validate", "Preflight a job (input, spec, stats, model); writes nothing.");
  CLI::App* plan = app.add_subcommand("plan", "List a job's work units (file, byte range, size, rows) and which are done.");
  CLI::App* fit = app.add_subcommand("fit-stats", "Compute the statistics the job's features need from its input.");
  CLI::App* inspect = app.add_subcommand("inspect", "Show a model's backend, inputs, outputs and metadata.");
  CLI::App* status = app.add_subcommand("status", "Show the done, failed and pending units of an output directory.");
  CLI::App* finalize = app.add_subcommand(
      "finalize", "Check that every unit of an output directory is committed (after --shard runs) and write _SUCCESS.");
  CLI::App* tune = app.add_subcommand(
      "tune", "Measure batch sizes and worker x thread splits on a sample of the input; write the best settings.");
  CLI::App* report = app.add_subcommand("report", "Render an output directory's run report (report.html) again from report.json.");
  CLI::App* version = app.add_subcommand("version", "Print the version.");
  std::string report_dir;
  report->add_option("out_dir", report_dir, "output directory of a run")->required();
  std::string status_dir;
  bool status_json = false;
  status->add_option("out_dir", status_dir, "output directory of a run")->required();
  status->add_flag("--json", status_json, "print JSON");
  std::string finalize_dir;
  finalize->add_option("out_dir", finalize_dir, "output directory of the job's runs")->required();
  std::string model_path;
  std::string model_kind = "auto";
  bool inspect_json = false;
  inspect->add_option("model", model_path, "model file")->required();
  inspect->add_option("--kind", model_kind, "backend, when auto-detection is not wanted")->capture_default_str();
  inspect->add_flag("--json", inspect_json, "print JSON");
  for (CLI::App* cmd : {run, validate, plan, fit, tune}) {
    cmd->add_option("job", args.job_path, "job spec (YAML)")->required();
    cmd->add_option("--set", args.overrides, "override a spec key: --set batch.size=1024 (repeatable)");
  }
  for (CLI::App* cmd : {run, plan}) {
    cmd->add_option("--shard", args.shard, "I/N: only the units whose index is I modulo N (array jobs)");
  }
  bool plan_json = false;
  plan->add_flag("--json", plan_json, "print JSON");
  run->add_flag("--restart", restart, "replace the output of a different job in output.path");
  run->add_flag("--quiet", quiet, "no progress bar or progress lines on stderr (monitoring.progress: off)");
  fit->add_option("--out", stats_out, "where to write the statistics (JSON)")->required();
  TuneArgs tune_args;
  tune->add_option("--sample", tune_args.sample_rows, "rows of the input to measure on (the first units)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  tune->add_option("--repeats", tune_args.repeats, "runs per configuration; the fastest counts")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  tune->add_option("--out", tune_args.out, "where to write the best settings (YAML)")->capture_default_str();
  bool fit_scores = false;
  fit->add_flag("--scores", fit_scores,
                "also score the input and write the score column's reference histogram (always with score alerts)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitInvalid;
  }
  if (version->parsed()) {
    std::printf("sluice %s\n", SLUICE_VERSION);
    return 0;
  }

  // The job's own log format applies when the spec parses; errors before that are plain.
  LogFormat format = LogFormat::kText;
  if (!args.job_path.empty()) {
    Result<JobSpec> spec = LoadSpec(env, args);
    if (spec.ok()) format = spec->monitoring.log_format;
  }
  // tune's many runs would each log their plan and units: warnings only, unless asked.
  if (tune->parsed() && app.count("--log-level") == 0) log_level = "warn";
  if (Status st = InitLogging(log_level, format); !st.ok()) return Fail(st);

  ModelRegistry models;
  RegisterBuiltinModels(&models);
  if (run->parsed()) return CmdRun(env, models, args, restart, quiet);
  if (validate->parsed()) return CmdValidate(env, models, args);
  if (plan->parsed()) return CmdPlan(env, models, args, plan_json);
  if (status->parsed()) return CmdStatus(env, status_dir, status_json);
  if (finalize->parsed()) return CmdFinalize(env, finalize_dir);
  if (tune->parsed()) return CmdTune(env, models, args, tune_args);
  if (fit->parsed()) return CmdFitStats(env, models, args, stats_out, fit_scores);
  if (report->parsed()) return CmdReport(env, report_dir);
  if (inspect->parsed()) return CmdInspect(env, models, model_path, model_kind, inspect_json);
  return kExitInvalid;
}

}  // namespace sluice
