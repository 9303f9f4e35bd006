// ModelRegistry: the table of backends and the "auto" detection.
#include <string>
#include <utility>

#include "core/strings.h"
#include "sluice/model.h"

namespace sluice {

namespace {

// Enough for a JSON model's format key wherever a serializer puts it (a key-sorted
// linear model with ~50,000 features still fits), small enough to read at once.
constexpr size_t kDetectHeadBytes = size_t{1} << 20;

Status NoSuchModelFile(const std::string& path) {
  return Status::NotFound("model.path: no such file '" + path + "'");
}

}  // namespace

Status Model::PredictWithText(const float* features, size_t rows, size_t cols,
                              const std::vector<const Column*>& text, std::vector<OutputTensor>* outputs) {
  for (const Column* column : text) {
    if (column != nullptr) {
      return Status::NotSupported("the " + info().backend + " backend does not take text features");
    }
  }
  return Predict(features, rows, cols, outputs);
}

Status ModelRegistry::Register(std::string name, DetectFn detect, LoadFn load, WarmFn warm) {
  if (name.empty() || name == "auto") {
    return Status::InvalidArgument("model registry: '" + name + "' cannot name a backend");
  }
  if (!load) return Status::InvalidArgument("model registry: backend '" + name + "' has no load function");
  for (const Entry& entry : entries_) {
    if (entry.name == name) {
      return Status::AlreadyExists("model registry: backend '" + name + "' is already registered");
    }
  }
  entries_.push_back(Entry{std::move(name), std::move(detect), std::move(load), std::move(warm)});
  return Status::OK();
}

std::vector<std::string> ModelRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const Entry& entry : entries_) out.push_back(entry.name);
  return out;
}

Result<std::string> ModelRegistry::Detect(Env* env, const std::string& path) const {
  Result<std::unique_ptr<SequentialFile>> file = env->NewSequentialFile(path);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound) return NoSuchModelFile(path);
    return file.status().WithContext("model.path");
  }
  std::string head(kDetectHeadBytes, '\0');
  size_t filled = 0;
  while (filled < head.size()) {
    Result<size_t> n = (*file)->Read(head.size() - filled, head.data() + filled);
    if (!n.ok()) return n.status().WithContext("model.path");
    if (*n == 0) break;
    filled += *n;
  }
  head.resize(filled);
  for (const Entry& entry : entries_) {
    if (entry.detect && entry.detect(path, head)) return entry.name;
  }
  return Status::InvalidArgument("model.path '" + path +
                                 "': cannot tell the model kind from its name or content; set model.kind "
                                 "(one of: " + JoinNames(names()) + ")");
}

Result<const ModelRegistry::Entry*> ModelRegistry::Find(Env* env, std::string_view kind,
                                                       const std::string& path) const {
  std::string name(kind);
  if (kind == "auto") {
    ASSIGN_OR_RETURN(name, Detect(env, path));
  }
  for (const Entry& entry : entries_) {
    if (entry.name == name) return &entry;
  }
  return Status::InvalidArgument("model.kind: unknown backend '" + name + "' (registered: " +
                                 JoinNames(names()) + ")");
}

void ModelRegistry::Warm(Env* env, std::string_view kind, const std::string& path) const {
  Result<const Entry*> entry = Find(env, kind, path);
  if (entry.ok() && (*entry)->warm) (*entry)->warm();
}

Result<std::unique_ptr<Model>> ModelRegistry::Load(Env* env, std::string_view kind,
                                                   const ModelOptions& options) const {
  ASSIGN_OR_RETURN(const Entry* entry, Find(env, kind, options.path));
  if (!env->FileExists(options.path)) return NoSuchModelFile(options.path);
  return entry->load(env, options);
}

}  // namespace sluice
