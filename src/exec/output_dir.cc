#include "exec/output_dir.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/sha256.h"
#include "plan/planner.h"

namespace sluice {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Files Sluice writes at the top of an output directory.
bool IsSluiceTopLevelName(std::string_view name) {
  return name == "_sluice" || StartsWith(name, "_SUCCESS") || StartsWith(name, "part-") || StartsWith(name, ".part-") ||
         name.find('=') != std::string_view::npos;  // a partition directory: out/<column>=<value>/
}

nlohmann::json FingerprintJson(const JobFingerprint& fp) {
  nlohmann::json j;
  j["spec"] = nlohmann::json::parse(fp.spec_json);
  j["spec_sha256"] = fp.spec_sha256;
  j["model_sha256"] = fp.model_sha256;
  j["inputs"] = nlohmann::json::array();
  for (const auto& in : fp.inputs) {
    j["inputs"].push_back({{"path", in.path}, {"size", in.size}, {"mtime_ns", in.mtime_ns}});
  }
  j["fingerprint"] = fp.Digest();
  j["units"] = nlohmann::json::array();
  for (const PlannedRange& u : fp.units) {
    j["units"].push_back({{"id", u.id}, {"path", u.path}, {"begin", u.begin}, {"end", u.end}, {"label", u.label}});
  }
  return j;
}

// What differs between the recorded job and this one, for the refusal message.
std::string DescribeChange(const nlohmann::json& old_job, const JobFingerprint& fp) {
  if (old_job.value("spec_sha256", "") != fp.spec_sha256) return "the job spec changed";
  if (old_job.value("model_sha256", "") != fp.model_sha256) return "the model file changed";
  return "the input changed (its files, or the units of a database input)";
}

}  // namespace

std::string JobFingerprint::Digest() const {
  Sha256 h;
  h.Update(spec_sha256);
  h.Update("\n");
  h.Update(model_sha256);
  for (const Input& in : inputs) h.Update(fmt::format("\n{}\t{}\t{}", in.path, in.size, in.mtime_ns));
  return h.HexDigest();
}

std::string SluiceDir(const std::string& out) { return JoinPath(out, "_sluice"); }
std::string UnitsDir(const std::string& out) { return JoinPath(SluiceDir(out), "units"); }
std::string RejectsDir(const std::string& out) { return JoinPath(SluiceDir(out), "rejects"); }
std::string RejectsPath(const std::string& out, int unit_index) {
  return JoinPath(RejectsDir(out), fmt::format("part-{:05d}.jsonl", unit_index));
}
std::string UnitMarkerPath(const std::string& out, const std::string& unit_id) {
  return JoinPath(UnitsDir(out), unit_id + ".json");
}

namespace {

std::string LockPath(const std::string& out) { return JoinPath(SluiceDir(out), "lock"); }
std::string LocksDir(const std::string& out) { return JoinPath(SluiceDir(out), "locks"); }

enum class DirState { kFresh, kSameJob, kReplace };

// The refusals of DESIGN.md §4, shared by CheckOutputDir and PrepareOutputDir.
Result<DirState> InspectOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart) {
  if (!env->FileExists(out)) return DirState::kFresh;
  ASSIGN_OR_RETURN(FileInfo info, env->Stat(out));
  if (!info.is_dir) return Status::FailedPrecondition("output.path '" + out + "' is a file, not a directory");
  ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(out));
  bool has_output = false;
  for (const std::string& c : children) {
    if (!IsSluiceTopLevelName(c)) {
      return Status::FailedPrecondition("output.path '" + out + "' holds '" + c +
                                        "', which Sluice did not write; choose an empty or new directory");
    }
    has_output = has_output || c != "_sluice";
  }
  const std::string job_json_path = JoinPath(SluiceDir(out), "job.json");
  if (env->FileExists(job_json_path)) {
    Result<std::string> text = ReadFileToString(env, job_json_path);
    nlohmann::json old_job;
    if (text.ok()) old_job = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    const bool same =
        !old_job.is_discarded() && old_job.is_object() && old_job.value("fingerprint", "") == fp.Digest();
    if (same) return DirState::kSameJob;
    if (!restart) {
      const std::string why = old_job.is_discarded() || !old_job.is_object() ? "its _sluice/job.json is unreadable"
                                                                               : DescribeChange(old_job, fp);
      return Status::FailedPrecondition("output.path '" + out + "' holds the output of a different job (" + why +
                                        "); use --restart to replace it, or another output.path");
    }
    return DirState::kReplace;
  }
  if (!has_output) return DirState::kFresh;
  if (!restart) {
    return Status::FailedPrecondition("output.path '" + out +
                                      "' holds parts without a _sluice/job.json; use --restart to replace them");
  }
  return DirState::kReplace;
}

// Removes Sluice's files under `path`, except the run locks (held by this run).
Status RemoveOutputTree(Env* env, const std::string& out, const std::string& path) {
  if (path == LockPath(out) || path == LocksDir(out)) return Status::OK();
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok()) return info.status().code() == StatusCode::kNotFound ? Status::OK() : info.status();
  if (!info->is_dir) return env->RemoveFile(path);
  ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(path));
  for (const std::string& c : children) RETURN_IF_ERROR(RemoveOutputTree(env, out, JoinPath(path, c)));
  return Status::OK();  // empty directories are left; they are harmless
}

// The unit id a temporary belongs to: ".part-00007.csv.tmp-…" (parts, rejects)
// or "00007.json.tmp-…" (markers, failure records); empty if none.
std::string TemporaryUnitId(std::string_view name) {
  if (name.find(".tmp-") == std::string_view::npos) return "";
  size_t pos = name.find("part-");
  pos = pos == std::string_view::npos ? 0 : pos + 5;
  size_t end = pos;
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  return end - pos >= 5 ? std::string(name.substr(pos, end - pos)) : "";
}

// Whether `name` is the temporary of a job-wide file ("<file>.tmp-…", as
// WriteFileAtomic names them): _SUCCESS, job.json, the metrics textfiles
// (metrics*.prom) and the run reports (report*.json, report*.html).
bool IsJobWideTemporary(std::string_view name) {
  const size_t tmp = name.find(".tmp-");
  if (tmp == std::string_view::npos) return false;
  const std::string_view file = name.substr(0, tmp);
  return file == "_SUCCESS" || file == "job.json" || (file.starts_with("metrics") && file.ends_with(".prom")) ||
         (file.starts_with("report") && (file.ends_with(".json") || file.ends_with(".html")));
}

// Other runs (shards, Dask workers) write and rename their own temporaries in
// the same directories meanwhile: a file or directory gone between listing and
// looking is theirs, finished, and skipped.
Status RemoveTemporaries(Env* env, const std::string& dir, const std::set<std::string>& unit_ids) {
  Result<std::vector<std::string>> listed = env->GetChildren(dir);
  if (!listed.ok() && listed.status().code() == StatusCode::kNotFound) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<std::string> children, std::move(listed));
  for (const std::string& c : children) {
    const std::string path = JoinPath(dir, c);
    Result<FileInfo> stat = env->Stat(path);
    if (!stat.ok() && stat.status().code() == StatusCode::kNotFound) continue;
    ASSIGN_OR_RETURN(FileInfo info, std::move(stat));
    if (info.is_dir) {
      RETURN_IF_ERROR(RemoveTemporaries(env, path, unit_ids));
    } else if (unit_ids.count(TemporaryUnitId(c))) {
      spdlog::info("unit {}: removing '{}' left by an interrupted run", TemporaryUnitId(c), path);
      RETURN_IF_ERROR(env->RemoveFile(path));
    }
  }
  return Status::OK();
}

}  // namespace

std::string FailedUnitPath(const std::string& out, const std::string& unit_id) {
  return JoinPath(JoinPath(SluiceDir(out), "failed"), unit_id + ".json");
}

Status CheckOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart) {
  return InspectOutputDir(env, out, fp, restart).status();
}

namespace {

// LockFile, tried for about a second: `sluice status` takes the lock shared
// for an instant to tell whether a run is in progress.
Result<std::unique_ptr<FileLock>> LockPatiently(Env* env, const std::string& path, bool exclusive) {
  for (int attempt = 0;; ++attempt) {
    Result<std::unique_ptr<FileLock>> lock = env->LockFile(path, exclusive);
    if (lock.ok() || lock.status().code() != StatusCode::kUnavailable || attempt == 20) return lock;
    env->SleepForMicros(50000);
  }
}

}  // namespace

bool SharesOutputDir(const RunOptions& options) { return options.shard_count > 1 || options.shared_output; }

Result<OutputLock> LockOutputDir(Env* env, const std::string& out, const RunOptions& options) {
  RETURN_IF_ERROR(env->CreateDirs(SluiceDir(out)));
  OutputLock lock;
  const bool shared = SharesOutputDir(options);
  Result<std::unique_ptr<FileLock>> dir = LockPatiently(env, LockPath(out), /*exclusive=*/!shared);
  if (!dir.ok()) {
    if (dir.status().code() != StatusCode::kUnavailable) return dir.status();
    return Status::FailedPrecondition(fmt::format(
        "output.path '{}' is in use by another run{} (lock '{}'); wait for it to finish or choose another output.path",
        out, shared ? " of the whole job" : "", LockPath(out)));
  }
  lock.dir = std::move(*dir);
  if (options.shard_count > 1) {
    RETURN_IF_ERROR(env->CreateDirs(LocksDir(out)));
    const std::string path =
        JoinPath(LocksDir(out), fmt::format("shard-{}-of-{}", options.shard_index, options.shard_count));
    Result<std::unique_ptr<FileLock>> shard = LockPatiently(env, path, /*exclusive=*/true);
    if (!shard.ok()) {
      if (shard.status().code() != StatusCode::kUnavailable) return shard.status();
      return Status::FailedPrecondition(fmt::format("shard {}/{} of output.path '{}' is being run already (lock '{}')",
                                                    options.shard_index, options.shard_count, out, path));
    }
    lock.shard = std::move(*shard);
  }
  return lock;
}

Result<std::unique_ptr<FileLock>> LockUnit(Env* env, const std::string& out, const std::string& unit_id,
                                           const std::atomic<bool>* interrupt) {
  RETURN_IF_ERROR(env->CreateDirs(LocksDir(out)));
  const std::string path = JoinPath(LocksDir(out), "unit-" + unit_id);
  uint64_t wait_us = 10000;
  for (bool logged = false;;) {
    Result<std::unique_ptr<FileLock>> lock = env->LockFile(path, /*exclusive=*/true);
    if (lock.ok() || lock.status().code() != StatusCode::kUnavailable) return lock;
    if (interrupt != nullptr && interrupt->load()) {
      return Status::Cancelled("unit " + unit_id + ": interrupted while waiting for lock '" + path + "'");
    }
    if (!logged) {
      spdlog::info("unit {}: another attempt holds '{}'; waiting for it", unit_id, path);
      logged = true;
    }
    env->SleepForMicros(wait_us);
    wait_us = std::min<uint64_t>(wait_us * 2, 1000000);
  }
}

Status PrepareOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart) {
  ASSIGN_OR_RETURN(const DirState state, InspectOutputDir(env, out, fp, restart));
  if (state == DirState::kReplace) {
    ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(out));
    for (const std::string& c : children) RETURN_IF_ERROR(RemoveOutputTree(env, out, JoinPath(out, c)));
  }
  RETURN_IF_ERROR(env->CreateDirs(UnitsDir(out)));
  RETURN_IF_ERROR(env->CreateDirs(RejectsDir(out)));
  RETURN_IF_ERROR(env->CreateDirs(DirName(FailedUnitPath(out, "x"))));
  const std::string job_json_path = JoinPath(SluiceDir(out), "job.json");
  if (state == DirState::kSameJob) return Status::OK();  // shards of one job share it; never rewritten
  return WriteFileAtomic(env, job_json_path, FingerprintJson(fp).dump(2) + "\n");
}

Status RemoveOrphanTemporaries(Env* env, const std::string& out, const std::set<std::string>& unit_ids,
                               bool whole_job) {
  if (!env->FileExists(out)) return Status::OK();
  if (whole_job) {
    // Temporaries of the job-wide files (job.json, _SUCCESS, the metrics
    // textfiles, the run reports, shards' included): only a run of the whole
    // job may remove them, as no shard can be writing them meanwhile.
    for (const std::string& dir : {out, SluiceDir(out)}) {
      ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(dir));
      for (const std::string& c : children) {
        if (IsJobWideTemporary(c)) RETURN_IF_ERROR(env->RemoveFile(JoinPath(dir, c)));
      }
    }
  }
  if (unit_ids.empty()) return Status::OK();
  return RemoveTemporaries(env, out, unit_ids);
}

Result<std::optional<UnitMarker>> ReadValidMarker(Env* env, const std::string& out, const std::string& unit_id,
                                                  bool* stale) {
  *stale = false;
  const std::string path = UnitMarkerPath(out, unit_id);
  if (!env->FileExists(path)) return std::optional<UnitMarker>();
  Result<UnitMarker> marker = ReadUnitMarker(env, path);
  bool whole = marker.ok();
  for (size_t i = 0; whole && i < marker->files.size(); ++i) {
    Result<FileInfo> info = env->Stat(JoinPath(out, marker->files[i].path));
    whole = info.ok() && info->size == marker->files[i].bytes;
  }
  if (!whole) {
    *stale = true;
    return std::optional<UnitMarker>();
  }
  return std::optional<UnitMarker>(std::move(*marker));
}

Result<std::optional<UnitMarker>> CommittedUnit(Env* env, const std::string& out, const std::string& unit_id) {
  bool stale = false;
  ASSIGN_OR_RETURN(std::optional<UnitMarker> marker, ReadValidMarker(env, out, unit_id, &stale));
  if (stale) {
    const std::string path = UnitMarkerPath(out, unit_id);
    spdlog::warn("unit {}: marker '{}' does not match the files on disk; the unit is done again", unit_id, path);
    RETURN_IF_ERROR(env->RemoveFile(path));
  }
  return marker;
}

Status WriteFailedUnit(Env* env, const std::string& out, const FailedUnit& f) {
  nlohmann::ordered_json j = {{"unit", f.unit_id}, {"input", f.input}, {"begin", f.begin},
                              {"end", f.end},      {"error", f.error}, {"attempts", f.attempts}};
  return WriteFileAtomic(env, FailedUnitPath(out, f.unit_id), j.dump(2) + "\n");
}

Result<FailedUnit> ReadFailedUnit(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("'" + path + "' is not a failure record");
  FailedUnit f;
  f.unit_id = j.value("unit", "");
  f.input = j.value("input", "");
  f.begin = j.value("begin", uint64_t{0});
  f.end = j.value("end", uint64_t{0});
  f.error = j.value("error", "");
  f.attempts = j.value("attempts", 0);
  return f;
}

bool OutputDirHoldsJob(Env* env, const std::string& out, const JobFingerprint& fp) {
  Result<std::string> text = ReadFileToString(env, JoinPath(SluiceDir(out), "job.json"));
  if (!text.ok()) return false;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return !j.is_discarded() && j.is_object() && j.value("fingerprint", "") == fp.Digest();
}

std::string UnitMarkerJson(const UnitMarker& m) {
  nlohmann::ordered_json j;
  j["unit"] = m.unit_id;
  j["input"] = m.input;
  j["rows_in"] = m.rows_in;
  j["rows_out"] = m.rows_out;
  j["rows_rejected"] = m.rows_rejected;
  j["rows_filtered"] = m.rows_filtered;
  j["rows_sampled_out"] = m.rows_sampled_out;
  j["files"] = nlohmann::ordered_json::array();
  for (const PartFile& f : m.files) {
    j["files"].push_back({{"path", f.path}, {"rows", f.rows}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  }
  j["rejects"] = m.rejects.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.rejects);
  return j.dump(2) + "\n";
}

Status WriteUnitMarker(Env* env, const std::string& out, const UnitMarker& m) {
  return WriteFileAtomic(env, UnitMarkerPath(out, m.unit_id), UnitMarkerJson(m));
}

Result<UnitMarker> ReadUnitMarker(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  return ParseUnitMarker(text, "unit marker '" + path + "'");
}

Result<UnitMarker> ParseUnitMarker(std::string_view text, const std::string& what) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("unit") || !j.contains("files")) {
    return Status::Corruption(what + " is not a Sluice unit marker");
  }
  try {
    UnitMarker m;
    m.unit_id = j.at("unit").get<std::string>();
    m.input = j.value("input", "");
    m.rows_in = j.value("rows_in", int64_t{0});
    m.rows_out = j.value("rows_out", int64_t{0});
    m.rows_rejected = j.value("rows_rejected", int64_t{0});
    m.rows_filtered = j.value("rows_filtered", int64_t{0});
    m.rows_sampled_out = j.value("rows_sampled_out", int64_t{0});
    for (const auto& f : j.at("files")) {
      m.files.push_back(PartFile{f.at("path").get<std::string>(), f.at("rows").get<int64_t>(),
                                 f.at("bytes").get<uint64_t>(), f.at("sha256").get<std::string>()});
    }
    if (j.contains("rejects") && j["rejects"].is_string()) m.rejects = j["rejects"].get<std::string>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(what + ": " + e.what());
  }
}

Status WriteSuccessManifest(Env* env, const std::string& out, const std::vector<UnitMarker>& markers,
                            const JobReport& report) {
  nlohmann::ordered_json j;
  j["rows_in"] = report.rows_in;
  j["rows_out"] = report.rows_out;
  j["rows_rejected"] = report.rows_rejected;
  j["rows_filtered"] = report.rows_filtered;
  j["parts"] = nlohmann::ordered_json::array();
  for (const UnitMarker& m : markers) {
    for (const PartFile& f : m.files) {
      j["parts"].push_back({{"path", f.path}, {"rows", f.rows}, {"bytes", f.bytes}, {"sha256", f.sha256}});
    }
  }
  return WriteFileAtomic(env, JoinPath(out, "_SUCCESS"), j.dump(2) + "\n");
}

Result<JobRecord> ReadJobRecord(Env* env, const std::string& out) {
  const std::string job_json_path = JoinPath(SluiceDir(out), "job.json");
  Result<std::string> text = ReadFileToString(env, job_json_path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("'" + out + "' holds no Sluice output (no _sluice/job.json)");
    }
    return text.status();
  }
  const nlohmann::json job = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (job.is_discarded() || !job.is_object() || !job.contains("units") || !job["units"].is_array()) {
    return Status::Corruption("'" + job_json_path + "' is not a Sluice job record");
  }
  JobRecord record;
  record.fingerprint = job.value("fingerprint", "");
  for (const nlohmann::json& u : job["units"]) {
    record.units.push_back(PlannedRange{u.value("id", ""), u.value("path", ""), u.value("begin", uint64_t{0}),
                                        u.value("end", uint64_t{0}), u.value("label", "")});
  }
  // As JobSpec::ToCanonicalJson writes errors.max_rejected.
  const nlohmann::json errors = job.contains("spec") && job["spec"].is_object()
                                   ? job["spec"].value("errors", nlohmann::json::object())
                                   : nlohmann::json::object();
  if (!errors.is_object()) return record;
  if (errors.contains("max_rejected_fraction") && errors["max_rejected_fraction"].is_number()) {
    record.max_rejected.count.reset();
    record.max_rejected.fraction = errors["max_rejected_fraction"].get<double>();
  } else if (errors.contains("max_rejected") && errors["max_rejected"].is_number_integer()) {
    record.max_rejected.count = errors["max_rejected"].get<int64_t>();
  }
  return record;
}

Result<OutputStatus> ReadOutputStatus(Env* env, const std::string& out) {
  ASSIGN_OR_RETURN(JobRecord record, ReadJobRecord(env, out));
  OutputStatus status;
  status.fingerprint = record.fingerprint;
  status.success = env->FileExists(JoinPath(out, "_SUCCESS"));
  // A run of the whole job holds the lock exclusively; trying it shared tells (for an instant).
  if (env->FileExists(LockPath(out))) status.running = !env->LockFile(LockPath(out), /*exclusive=*/false).ok();
  for (const PlannedRange& u : record.units) {
    UnitState s;
    s.id = u.id;
    s.path = u.path;
    s.begin = u.begin;
    s.end = u.end;
    s.label = u.label;
    if (env->FileExists(UnitMarkerPath(out, s.id))) {
      ASSIGN_OR_RETURN(UnitMarker m, ReadUnitMarker(env, UnitMarkerPath(out, s.id)));
      s.state = UnitState::State::kDone;
      s.rows_in = m.rows_in;
      s.rows_out = m.rows_out;
      s.rows_rejected = m.rows_rejected;
    } else if (env->FileExists(FailedUnitPath(out, s.id))) {
      ASSIGN_OR_RETURN(FailedUnit f, ReadFailedUnit(env, FailedUnitPath(out, s.id)));
      s.state = UnitState::State::kFailed;
      s.error = f.error;
      s.attempts = f.attempts;
    }
    status.units.push_back(std::move(s));
  }
  return status;
}

}  // namespace sluice
