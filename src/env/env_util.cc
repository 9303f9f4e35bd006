// Helpers built on Env: whole-file read, atomic write, input path expansion,
// path joining. They use only the Env interface, so they work on every Env.
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <random>

#include "sluice/env.h"

namespace sluice {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

bool HasGlobChars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

bool IsHidden(std::string_view name) { return !name.empty() && name.front() == '.'; }

std::string ListingDir(const std::string& base) { return base.empty() ? "." : base; }

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out->append(buf, end);
}

// Appends the regular, non-hidden files of `dir` (one level) to `out`.
Status AppendFilesOfDir(Env* env, const std::string& dir, std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->GetChildren(ListingDir(dir)));
  for (const std::string& name : names) {
    if (IsHidden(name)) continue;
    std::string path = JoinPath(dir, name);
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) {
      // Removed between listing and stat: it is simply not there.
      if (info.status().code() == StatusCode::kNotFound) continue;
      return info.status();
    }
    if (!info->is_dir) out->push_back(std::move(path));
  }
  return Status::OK();
}

// Splits "a/b/*.csv" into {"a", "b", "*.csv"}; a leading "/" is reported in *absolute.
std::vector<std::string> SplitComponents(std::string_view path, bool* absolute) {
  *absolute = !path.empty() && path.front() == '/';
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) parts.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return parts;
}

Result<std::vector<std::string>> ExpandGlob(Env* env, const std::string& pattern) {
  bool absolute = false;
  std::vector<std::string> parts = SplitComponents(pattern, &absolute);
  std::vector<std::string> candidates{absolute ? "/" : ""};
  for (const std::string& part : parts) {
    std::vector<std::string> next;
    if (!HasGlobChars(part)) {
      for (const std::string& base : candidates) next.push_back(JoinPath(base, part));
    } else {
      for (const std::string& base : candidates) {
        Result<std::vector<std::string>> names = env->GetChildren(ListingDir(base));
        if (!names.ok()) {
          // A literal component that does not exist, or is a file: no match below it.
          if (names.status().code() == StatusCode::kNotFound) continue;
          return names.status();
        }
        for (const std::string& name : *names) {
          // FNM_PERIOD: a leading '.' must be matched literally, so "*" skips hidden files.
          if (::fnmatch(part.c_str(), name.c_str(), FNM_PERIOD) == 0) {
            next.push_back(JoinPath(base, name));
          }
        }
      }
    }
    candidates = std::move(next);
    if (candidates.empty()) break;
  }

  std::vector<std::string> files;
  for (const std::string& path : candidates) {
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) {
      if (info.status().code() == StatusCode::kNotFound) continue;
      return info.status();
    }
    // A matched directory stands for its files, as a directory path does.
    if (info->is_dir) {
      RETURN_IF_ERROR(AppendFilesOfDir(env, path, &files));
    } else {
      files.push_back(path);
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  if (files.empty()) return Status::NotFound("no file matches '" + pattern + "'");
  return files;
}

}  // namespace

Result<std::string> ReadFileToString(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file, env->NewSequentialFile(path));
  std::string out;
  Result<FileInfo> info = env->Stat(path);
  if (info.ok()) out.reserve(info->size + 1);
  while (true) {
    size_t old_size = out.size();
    // Fill the reserved capacity first (one read for a file of known size, and
    // one more byte to see the end), then grow in chunks.
    size_t want = out.capacity() > old_size ? out.capacity() - old_size : kReadChunk;
    out.resize(old_size + want);
    Result<size_t> got = file->Read(want, out.data() + old_size);
    if (!got.ok()) return got.status();
    out.resize(old_size + *got);
    if (*got == 0) break;
  }
  return out;
}

Status WriteFileAtomic(Env* env, const std::string& path, std::string_view data) {
  // "<path>.tmp-<pid>-<nonce>-<n>": unique per call in this process, and
  // across hosts sharing a directory, whose processes may have equal pids
  // (containers: often all 1) and all write job.json at once.
  static const uint64_t nonce = std::random_device{}();
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path;
  tmp.append(".tmp-");
  AppendUint(&tmp, static_cast<uint64_t>(::getpid()));
  tmp.push_back('-');
  AppendUint(&tmp, nonce);
  tmp.push_back('-');
  AppendUint(&tmp, counter.fetch_add(1, std::memory_order_relaxed));

  auto write_tmp = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env->NewWritableFile(tmp));
    RETURN_IF_ERROR(file->Append(data));
    RETURN_IF_ERROR(file->Sync());
    RETURN_IF_ERROR(file->Close());
    return env->RenameFile(tmp, path);
  };
  Status s = write_tmp();
  if (!s.ok()) {
    // Best effort: the temporary may not exist, or the rename may have happened.
    if (env->FileExists(tmp)) (void)env->RemoveFile(tmp);
    return s;
  }
  return env->SyncDir(DirName(path));
}

Status RemoveTree(Env* env, const std::string& dir) {
  if (!env->FileExists(dir)) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<std::string> children, env->GetChildren(dir));
  for (const std::string& name : children) {
    const std::string path = JoinPath(dir, name);
    ASSIGN_OR_RETURN(FileInfo info, env->Stat(path));
    RETURN_IF_ERROR(info.is_dir ? RemoveTree(env, path) : env->RemoveFile(path));
  }
  return env->RemoveDir(dir);
}

Result<std::vector<std::string>> ExpandInputPaths(Env* env, const std::string& pattern) {
  if (HasGlobChars(pattern)) return ExpandGlob(env, pattern);
  Result<FileInfo> info = env->Stat(pattern);
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("no such file or directory '" + pattern + "'");
    }
    return info.status();
  }
  if (!info->is_dir) return std::vector<std::string>{pattern};
  std::string dir = pattern;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::vector<std::string> files;
  RETURN_IF_ERROR(AppendFilesOfDir(env, dir, &files));
  if (files.empty()) return Status::NotFound("no file in directory '" + pattern + "'");
  std::sort(files.begin(), files.end());
  return files;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir);
  if (out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  std::string_view dir = path.substr(0, slash);
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

}  // namespace sluice
