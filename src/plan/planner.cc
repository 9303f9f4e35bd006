#include "plan/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "source/record_split.h"

namespace sluice {
namespace {

constexpr size_t kEstimateSampleBytes = size_t{64} << 10;

// Records in a file that is not scanned: its size over the bytes per newline of
// its first 64 KiB (less the CSV header).
Result<int64_t> EstimateRows(Env* env, const InputFile& file, InputFormat format, const CsvOptions& csv) {
  if (file.size == 0) return int64_t{0};
  ASSIGN_OR_RETURN(const std::unique_ptr<RandomAccessFile> reader, env->NewRandomAccessFile(file.path));
  const size_t want = static_cast<size_t>(std::min<uint64_t>(file.size, kEstimateSampleBytes));
  std::string sample(want, '\0');
  Result<size_t> got = reader->ReadAt(0, want, sample.data());
  if (!got.ok()) return got.status().WithContext("reading '" + file.path + "' at byte 0");
  sample.resize(*got);
  const auto newlines = static_cast<int64_t>(std::count(sample.begin(), sample.end(), '\n'));
  int64_t lines = 0;
  if (sample.size() >= file.size) {
    lines = newlines + (!sample.empty() && sample.back() != '\n' ? 1 : 0);
  } else if (newlines > 0) {
    lines = static_cast<int64_t>(static_cast<double>(file.size) * static_cast<double>(newlines) /
                                 static_cast<double>(sample.size()));
  } else {
    lines = 1;
  }
  if (format == InputFormat::kCsv && csv.header) --lines;
  return std::max<int64_t>(lines, 0);
}

void AddUnit(const InputFile& file, uint64_t begin, uint64_t end, int64_t first_line, Plan* plan) {
  WorkUnit unit;
  unit.index = static_cast<int>(plan->units.size());
  unit.id = UnitId(unit.index);
  unit.range.path = file.path;
  unit.range.begin = begin;
  unit.range.end = end;
  unit.range.first_line = first_line;
  unit.file_size = file.size;
  unit.mtime_ns = file.mtime_ns;
  unit.est_bytes = end - begin;
  plan->units.push_back(std::move(unit));
}

Status AppendHiveFiles(Env* env, const std::string& dir, std::vector<std::string>* files) {
  ASSIGN_OR_RETURN(const std::vector<std::string> children, env->GetChildren(dir));
  for (const std::string& name : children) {
    if (name.starts_with('.') || name.starts_with('_')) continue;
    const std::string path = JoinPath(dir, name);
    ASSIGN_OR_RETURN(const FileInfo info, env->Stat(path));
    if (!info.is_dir) {
      files->push_back(path);
    } else if (name.find('=') != std::string::npos) {
      RETURN_IF_ERROR(AppendHiveFiles(env, path, files));
    }
  }
  return Status::OK();
}

}  // namespace

std::string UnitId(int index) { return fmt::format("{:05d}", index); }

Result<std::vector<std::string>> ListParquetInput(Env* env, const std::string& path) {
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok() || !info->is_dir) {
    Result<std::vector<std::string>> paths = ExpandInputPaths(env, path);
    if (!paths.ok()) return paths.status().WithContext("input.path");
    return paths;
  }
  std::vector<std::string> files;
  RETURN_IF_ERROR(AppendHiveFiles(env, path, &files).WithContext("input.path"));
  if (files.empty()) return Status::NotFound("input.path: no file in directory '" + path + "'");
  std::sort(files.begin(), files.end());
  return files;
}

Result<Plan> PlanUnits(Env* env, const InputSpec& input, const PartitionSpec& partition, DuckDbPool* duckdb_pool) {
  if (!input.database.empty()) return PlanDatabaseUnits(input, partition);
  if (input.format == InputFormat::kParquet) return PlanParquetUnits(env, input, partition, duckdb_pool);
  if (!input.format) {
    // A directory of hive partitions holds its files in key=value subdirectories.
    Result<FileInfo> info = env->Stat(input.path);
    if (info.ok() && info->is_dir) {
      Result<std::vector<std::string>> files = ListParquetInput(env, input.path);
      if (files.ok() && InputFormatFromPath(files->front()) == InputFormat::kParquet) {
        return PlanParquetUnits(env, input, partition, duckdb_pool);
      }
    }
  }
  Result<std::vector<std::string>> paths = ExpandInputPaths(env, input.path);
  if (!paths.ok()) return paths.status().WithContext("input.path");
  Plan plan;
  for (const std::string& path : *paths) {
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) return info.status().WithContext("input.path");
    if (info->is_dir) continue;
    plan.files.push_back({path, info->size, info->mtime_ns});
  }
  if (plan.files.empty()) return Status::NotFound("input.path: no file matches '" + input.path + "'");
  if (input.format) {
    plan.format = *input.format;
  } else {
    const std::string& first = plan.files.front().path;
    std::optional<InputFormat> format = InputFormatFromPath(first);
    if (!format) {
      return Status::InvalidArgument("input.format: cannot tell the format of '" + first +
                                     "' from its name; set it (csv, jsonl, parquet)");
    }
    if (*format == InputFormat::kParquet) return PlanParquetUnits(env, input, partition, duckdb_pool);
    plan.format = *format;
  }

  for (const InputFile& file : plan.files) {
    if (partition.by == PartitionBy::kFiles || file.size <= partition.target_bytes) {
      AddUnit(file, 0, file.size, 1, &plan);
      ASSIGN_OR_RETURN(plan.units.back().est_rows, EstimateRows(env, file, plan.format, input.csv));
      continue;
    }
    ASSIGN_OR_RETURN(const std::vector<RecordRange> ranges,
                     SplitAtRecords(env, file.path, plan.format, input.csv, partition.target_bytes));
    // The plan covers the size Stat saw: a file that grew since gets no range past it.
    size_t num_ranges = 1;
    while (num_ranges < ranges.size() && ranges[num_ranges].begin < file.size) ++num_ranges;
    for (size_t range_idx = 0; range_idx < num_ranges; ++range_idx) {
      const uint64_t end = range_idx + 1 < num_ranges ? ranges[range_idx + 1].begin : file.size;
      AddUnit(file, ranges[range_idx].begin, end, ranges[range_idx].first_line, &plan);
      plan.units.back().est_rows = ranges[range_idx].records;
      plan.units.back().rows_exact = true;
    }
  }
  return plan;
}

}  // namespace sluice
