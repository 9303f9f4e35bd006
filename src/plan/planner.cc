#include "plan/planner.h"

#include <fmt/format.h>

namespace sluice {

std::string UnitId(int index) { return fmt::format("{:05d}", index); }

Result<Plan> PlanUnits(Env* env, const InputSpec& input, const PartitionSpec& /*partition*/) {
  Result<std::vector<std::string>> paths = ExpandInputPaths(env, input.path);
  if (!paths.ok()) return paths.status().WithContext("input.path");
  Plan plan;
  for (const std::string& path : *paths) {
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) return info.status().WithContext("input.path");
    if (info->is_dir) continue;
    plan.files.push_back({path, info->size, info->mtime_ns});
    WorkUnit u;
    u.index = static_cast<int>(plan.units.size());
    u.id = UnitId(u.index);
    u.range.path = path;
    u.file_size = info->size;
    u.mtime_ns = info->mtime_ns;
    u.est_bytes = info->size;
    plan.units.push_back(std::move(u));
  }
  if (plan.units.empty()) return Status::NotFound("input.path: no file matches '" + input.path + "'");
  if (input.format) {
    plan.format = *input.format;
  } else {
    const std::string& first = plan.units.front().range.path;
    std::optional<InputFormat> format = InputFormatFromPath(first);
    if (!format) {
      return Status::InvalidArgument("input.format: cannot tell the format of '" + first +
                                     "' from its name; set it (csv, jsonl)");
    }
    plan.format = *format;
  }
  return plan;
}

}  // namespace sluice
