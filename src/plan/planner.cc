#include "plan/planner.h"

#include <fmt/format.h>

namespace sluice {

std::string UnitId(int index) { return fmt::format("{:05d}", index); }

Result<std::vector<WorkUnit>> PlanUnits(Env* env, const InputSpec& input) {
  Result<std::vector<std::string>> paths = ExpandInputPaths(env, input.path);
  if (!paths.ok()) return paths.status().WithContext("input.path");
  std::vector<WorkUnit> units;
  for (const std::string& path : *paths) {
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) return info.status().WithContext("input.path");
    if (info->is_dir) continue;
    WorkUnit u;
    u.index = static_cast<int>(units.size());
    u.id = UnitId(u.index);
    u.range.path = path;
    u.size = info->size;
    u.mtime_ns = info->mtime_ns;
    units.push_back(std::move(u));
  }
  if (units.empty()) return Status::NotFound("input.path: no file matches '" + input.path + "'");
  return units;
}

}  // namespace sluice
