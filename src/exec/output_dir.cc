#include "exec/output_dir.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "plan/planner.h"

namespace sluice {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Files Sluice writes at the top of an output directory.
bool IsSluiceTopLevelName(std::string_view name) {
  return name == "_sluice" || name == "_SUCCESS" || StartsWith(name, "part-") || StartsWith(name, ".part-") ||
         name.find('=') != std::string_view::npos;  // a partition directory: out/<column>=<value>/
}

Status RemoveTree(Env* env, const std::string& path) {
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok()) return info.status().code() == StatusCode::kNotFound ? Status::OK() : info.status();
  if (!info->is_dir) return env->RemoveFile(path);
  ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(path));
  for (const std::string& c : children) RETURN_IF_ERROR(RemoveTree(env, JoinPath(path, c)));
  return Status::OK();  // empty directories are left; they are harmless
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
  return j;
}

// What differs between the recorded job and this one, for the refusal message.
std::string DescribeChange(const nlohmann::json& old_job, const JobFingerprint& fp) {
  if (old_job.value("spec_sha256", "") != fp.spec_sha256) return "the job spec changed";
  if (old_job.value("model_sha256", "") != fp.model_sha256) return "the model file changed";
  return "the input files changed";
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

Status PrepareOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart) {
  const std::string job_json_path = JoinPath(SluiceDir(out), "job.json");
  if (env->FileExists(out)) {
    ASSIGN_OR_RETURN(FileInfo info, env->Stat(out));
    if (!info.is_dir) return Status::FailedPrecondition("output.path '" + out + "' is a file, not a directory");
    ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(out));
    for (const std::string& c : children) {
      if (!IsSluiceTopLevelName(c)) {
        return Status::FailedPrecondition("output.path '" + out + "' holds '" + c +
                                          "', which Sluice did not write; choose an empty or new directory");
      }
    }
    if (env->FileExists(job_json_path)) {
      Result<std::string> text = ReadFileToString(env, job_json_path);
      nlohmann::json old_job;
      if (text.ok()) old_job = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      const bool same = !old_job.is_discarded() && old_job.is_object() &&
                        old_job.value("fingerprint", "") == fp.Digest();
      if (!same && !restart) {
        const std::string why = old_job.is_discarded() || !old_job.is_object()
                                    ? "its _sluice/job.json is unreadable"
                                    : DescribeChange(old_job, fp);
        return Status::FailedPrecondition("output.path '" + out + "' holds the output of a different job (" + why +
                                          "); use --restart to replace it, or another output.path");
      }
      if (!same) {
        for (const std::string& c : children) RETURN_IF_ERROR(RemoveTree(env, JoinPath(out, c)));
      }
    } else if (!children.empty()) {
      if (!restart) {
        return Status::FailedPrecondition("output.path '" + out +
                                          "' holds parts without a _sluice/job.json; use --restart to replace them");
      }
      for (const std::string& c : children) RETURN_IF_ERROR(RemoveTree(env, JoinPath(out, c)));
    }
  }
  RETURN_IF_ERROR(env->CreateDirs(UnitsDir(out)));
  RETURN_IF_ERROR(env->CreateDirs(RejectsDir(out)));
  return WriteFileAtomic(env, job_json_path, FingerprintJson(fp).dump(2) + "\n");
}

bool OutputDirHoldsJob(Env* env, const std::string& out, const JobFingerprint& fp) {
  Result<std::string> text = ReadFileToString(env, JoinPath(SluiceDir(out), "job.json"));
  if (!text.ok()) return false;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return !j.is_discarded() && j.is_object() && j.value("fingerprint", "") == fp.Digest();
}

Status WriteUnitMarker(Env* env, const std::string& out, const UnitMarker& m) {
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
  return WriteFileAtomic(env, UnitMarkerPath(out, m.unit_id), j.dump(2) + "\n");
}

Result<UnitMarker> ReadUnitMarker(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("unit") || !j.contains("files")) {
    return Status::Corruption("unit marker '" + path + "' is not a Sluice unit marker");
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
    return Status::Corruption("unit marker '" + path + "': " + e.what());
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

}  // namespace sluice
