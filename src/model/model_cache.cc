#include "model/model_cache.h"

#include <algorithm>
#include <condition_variable>
#include <list>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/strings.h"
#include "sink/value_format.h"

namespace sluice {

namespace {

// Serializes the calls of a model that is not safe for concurrent use. It is
// itself safe for concurrent use, and its info says so.
class SerializedModel final : public Model {
 public:
  explicit SerializedModel(std::unique_ptr<Model> model) : model_(std::move(model)), info_(model_->info()) {
    info_.concurrent_predict = true;
  }

  const ModelInfo& info() const override { return info_; }

  Status Predict(const float* features, size_t rows, size_t cols, std::vector<OutputTensor>* outputs) override {
    std::lock_guard<std::mutex> lock(mu_);
    return model_->Predict(features, rows, cols, outputs);
  }

  Status PredictWithText(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
                         std::vector<OutputTensor>* outputs) override {
    std::lock_guard<std::mutex> lock(mu_);
    return model_->PredictWithText(features, rows, cols, text, outputs);
  }

 private:
  std::mutex mu_;  // held for the whole of each call into model_
  const std::unique_ptr<Model> model_;
  ModelInfo info_;
};

std::string OutputNames(const ModelInfo& info) {
  std::vector<std::string> names;
  names.reserve(info.outputs.size());
  for (const ModelOutputInfo& output : info.outputs) names.push_back(output.name);
  return JoinNames(names);
}

}  // namespace

std::unique_ptr<Model> ThreadSafeModel(std::unique_ptr<Model> model) {
  if (model == nullptr || model->info().concurrent_predict) return model;
  return std::make_unique<SerializedModel>(std::move(model));
}

// ---- ModelCache ----

struct ModelCache::State {
  // One load in flight; the workers that wait for it share its result.
  struct Pending {
    bool done = false;  // guarded by mu
    Status status;      // guarded by mu; the load's error
    std::shared_ptr<Model> model;  // guarded by mu; set when the load succeeded
  };
  using Lru = std::list<std::pair<std::string, std::shared_ptr<Model>>>;

  Loader loader;
  size_t capacity = 1;
  std::mutex mu;
  std::condition_variable load_done;                                // signalled when any load ends
  Lru lru;                                                          // guarded by mu; most recent first
  std::unordered_map<std::string, Lru::iterator> cached;            // guarded by mu
  std::unordered_map<std::string, std::shared_ptr<Pending>> loading;  // guarded by mu
  int64_t loads = 0;                                                // guarded by mu
  int64_t evictions = 0;                                            // guarded by mu
};

ModelCache::ModelCache(Loader loader, size_t capacity) : state_(std::make_unique<State>()) {
  state_->loader = std::move(loader);
  state_->capacity = std::max<size_t>(capacity, 1);
}

ModelCache::~ModelCache() = default;

Result<std::shared_ptr<Model>> ModelCache::Get(const std::string& path) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  if (auto hit = s.cached.find(path); hit != s.cached.end()) {
    s.lru.splice(s.lru.begin(), s.lru, hit->second);
    return hit->second->second;
  }
  if (auto in_flight = s.loading.find(path); in_flight != s.loading.end()) {
    const std::shared_ptr<State::Pending> pending = in_flight->second;
    s.load_done.wait(lock, [&] { return pending->done; });
    if (!pending->status.ok()) return pending->status;
    return pending->model;
  }
  auto pending = std::make_shared<State::Pending>();
  s.loading.emplace(path, pending);
  ++s.loads;
  lock.unlock();

  // Outside the lock, so that other paths load (and cached ones are served) meanwhile.
  Result<std::unique_ptr<Model>> loaded = s.loader(path);
  std::shared_ptr<Model> model;
  Status status;
  if (!loaded.ok()) {
    status = loaded.status();
  } else if (*loaded == nullptr) {
    status = Status::Internal("model cache: the loader returned no model for '" + path + "'");
  } else {
    model = ThreadSafeModel(std::move(loaded).value());
  }

  // Evicted models are released after the lock: destroying one may take a while.
  std::vector<std::shared_ptr<Model>> evicted;
  lock.lock();
  s.loading.erase(path);
  pending->done = true;
  pending->status = status;
  pending->model = model;
  if (model != nullptr) {
    s.lru.emplace_front(path, model);
    s.cached[path] = s.lru.begin();
    while (s.lru.size() > s.capacity) {
      evicted.push_back(std::move(s.lru.back().second));
      s.cached.erase(s.lru.back().first);
      s.lru.pop_back();
      ++s.evictions;
    }
  }
  s.load_done.notify_all();
  lock.unlock();
  if (!status.ok()) return status;
  return model;
}

int64_t ModelCache::loads() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->loads;
}

int64_t ModelCache::evictions() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->evictions;
}

// ---- SameSignature ----

bool SameSignature(const ModelInfo& a, const ModelInfo& b, std::string* why) {
  std::string reason;
  if (a.num_features != b.num_features) {
    reason = "it takes " + std::to_string(a.num_features) + " features, expected " + std::to_string(b.num_features);
  } else if (a.outputs.size() != b.outputs.size()) {
    reason = "its outputs are " + OutputNames(a) + ", expected " + OutputNames(b);
  } else {
    for (size_t i = 0; i < a.outputs.size() && reason.empty(); ++i) {
      const ModelOutputInfo& x = a.outputs[i];
      const ModelOutputInfo& y = b.outputs[i];
      if (x.name != y.name) {
        reason = "output " + std::to_string(i + 1) + " is '" + x.name + "', expected '" + y.name + "'";
      } else if (x.type != y.type) {
        reason = "output '" + x.name + "' is " + std::string(DataTypeName(x.type)) + ", expected " +
                 std::string(DataTypeName(y.type));
      } else if (x.width != y.width) {
        reason = "output '" + x.name + "' has width " + std::to_string(x.width) + ", expected " +
                 std::to_string(y.width);
      }
    }
  }
  if (reason.empty()) return true;
  if (why != nullptr) *why = std::move(reason);
  return false;
}

// ---- ModelRouter ----

namespace {

// Per-thread buffers of ModelRouter::Predict: grown by the first batches, then
// reused, so routing a batch allocates nothing per row.
struct RouteScratch {
  struct RowSlot {
    uint32_t group;
    size_t pos;          // index among the rows of its group
    size_t feature_row;  // its row of `features`
  };
  std::string key;                                 // a non-string key as text
  std::vector<RowSlot> slots;                      // per routed row, in order
  std::vector<size_t> group_rows;                  // rows per group
  std::vector<size_t> group_start;                 // first gathered row of each group
  std::vector<size_t> gathered_from;               // gathered row -> row of `features`
  std::vector<float> matrix;                       // routed rows, grouped
  std::vector<Column> text;                        // one group's text features
  std::vector<const Column*> group_text;           // pointers into `text`
  std::vector<std::vector<OutputTensor>> outputs;  // per group
};

RouteScratch& ThreadRouteScratch() {
  thread_local RouteScratch scratch;
  return scratch;
}

// Row `row` of `column` as key text; `buf` holds it for non-string columns.
// Precondition: the value is not null.
std::string_view KeyView(const Column& column, size_t row, std::string* buf) {
  if (column.type() == DataType::kString) return column.StringAt(row);
  buf->clear();
  // The CSV text of every non-string type is the key form: shortest round-trip
  // floats, decimal integers, true/false, ISO 8601 timestamps, never quoted.
  AppendColumnValue(column, row, TextFormat::kCsv, buf);
  return *buf;
}

// An empty tensor of the declared type and width.
void ResetOutput(const ModelOutputInfo& spec, OutputTensor* out) {
  out->width = spec.width;
  if (out->values.type() == spec.type) {
    out->values.Clear();
  } else {
    out->values = Column(spec.type);
  }
}

template <typename T>
std::span<const T> ValuesOf(const Column& column) {
  if constexpr (std::is_same_v<T, float>) return column.float32s();
  else if constexpr (std::is_same_v<T, double>) return column.float64s();
  else return column.int64s();
}

template <typename T>
std::span<T> MutableValuesOf(Column* column) {
  if constexpr (std::is_same_v<T, float>) return column->mutable_float32s();
  else if constexpr (std::is_same_v<T, double>) return column->mutable_float64s();
  else return column->mutable_int64s();
}

// Output `o` of every routed row, copied from its group's tensor, in row order.
template <typename T>
void ScatterValues(const RouteScratch& s, size_t o, size_t width, Column* out) {
  out->Resize(s.slots.size() * width);
  std::span<T> values = MutableValuesOf<T>(out);
  std::span<uint8_t> validity = out->mutable_validity();
  for (size_t row_idx = 0; row_idx < s.slots.size(); ++row_idx) {
    const RouteScratch::RowSlot& slot = s.slots[row_idx];
    const Column& from = s.outputs[slot.group][o].values;
    const size_t first = slot.pos * width;
    std::copy_n(ValuesOf<T>(from).data() + first, width, values.data() + row_idx * width);
    std::copy_n(from.validity().data() + first, width, validity.data() + row_idx * width);
  }
}

// As ScatterValues, for types without in-place storage (strings).
void ScatterAppend(const RouteScratch& s, size_t o, size_t width, Column* out) {
  out->Reserve(s.slots.size() * width);
  for (const RouteScratch::RowSlot& slot : s.slots) {
    const Column& from = s.outputs[slot.group][o].values;
    for (size_t k = 0; k < width; ++k) out->AppendFrom(from, slot.pos * width + k);
  }
}

}  // namespace

ModelRouter::ModelRouter(RouteSpec route, ModelInfo signature, ModelCache* cache)
    : signature_(std::move(signature)), cache_(cache) {
  // Segments that share a file share a group, so their rows are scored in one call.
  std::unordered_map<std::string, uint32_t> group_of_path;
  auto group_for = [&](const std::string& path, std::string config_key) {
    auto [it, added] = group_of_path.emplace(path, static_cast<uint32_t>(paths_.size()));
    if (added) {
      paths_.push_back(path);
      path_keys_.push_back(std::move(config_key));
    }
    return it->second;
  };
  for (const auto& [value, path] : route.models) {
    group_of_value_.emplace(value, group_for(path, "model.route.models." + value));
  }
  if (!route.default_path.empty()) default_group_ = group_for(route.default_path, "model.route.default");
}

std::optional<std::string> ModelRouter::KeyText(const Column& column, size_t row) {
  if (column.IsNull(row)) return std::nullopt;
  std::string buf;
  return std::string(KeyView(column, row, &buf));
}

uint32_t ModelRouter::GroupOf(std::optional<std::string_view> key) const {
  if (!key) return default_group_;
  auto it = group_of_value_.find(*key);
  return it == group_of_value_.end() ? default_group_ : it->second;
}

uint32_t ModelRouter::GroupOfRow(const Column& column, size_t row, std::string* text) const {
  if (column.IsNull(row)) return default_group_;
  return GroupOf(KeyView(column, row, text));
}

const std::string* ModelRouter::PathFor(const std::optional<std::string>& key) const {
  const uint32_t group = GroupOf(key ? std::optional<std::string_view>(*key) : std::nullopt);
  return group == kNoGroup ? nullptr : &paths_[group];
}

Status ModelRouter::PredictGroup(uint32_t group, const float* features, size_t rows, size_t cols,
                                 const std::vector<const Column*>& text,
                                 std::vector<OutputTensor>* outputs) const {
  const std::string& path = paths_[group];
  const std::string& config_key = path_keys_[group];
  Result<std::shared_ptr<Model>> loaded = cache_->Get(path);
  if (!loaded.ok()) return loaded.status().WithContext(config_key);
  Model& model = **loaded;
  std::string why;
  if (!SameSignature(model.info(), signature_, &why)) {
    return Status::InvalidArgument(config_key + ": model '" + path + "' cannot stand in for the job's model: " + why);
  }
  const bool has_text = std::any_of(text.begin(), text.end(), [](const Column* c) { return c != nullptr; });
  const Status status = has_text ? model.PredictWithText(features, rows, cols, text, outputs)
                                 : model.Predict(features, rows, cols, outputs);
  if (!status.ok()) return status.WithContext(config_key + " '" + path + "'");
  // The scatter indexes these tensors by row: hold the model to its declared shapes.
  if (outputs->size() != signature_.outputs.size()) {
    return Status::Internal(config_key + " '" + path + "': model returned " + std::to_string(outputs->size()) +
                            " outputs, its info declares " + std::to_string(signature_.outputs.size()));
  }
  for (size_t o = 0; o < outputs->size(); ++o) {
    const ModelOutputInfo& spec = signature_.outputs[o];
    const OutputTensor& tensor = (*outputs)[o];
    if (tensor.width != spec.width || tensor.values.type() != spec.type ||
        tensor.values.size() != rows * spec.width) {
      return Status::Internal(config_key + " '" + path + "': output '" + spec.name + "' has " +
                              std::to_string(tensor.values.size()) + " " +
                              std::string(DataTypeName(tensor.values.type())) + " values of width " +
                              std::to_string(tensor.width) + " for " + std::to_string(rows) + " rows, expected " +
                              std::string(DataTypeName(spec.type)) + " of width " + std::to_string(spec.width));
    }
  }
  return Status::OK();
}

Status ModelRouter::Predict(const Column& route_column, std::span<uint8_t> row_ok, const float* features,
                            size_t cols, const std::vector<const Column*>& text, std::vector<OutputTensor>* outputs,
                            const std::function<void(size_t row)>& unrouted) {
  if (route_column.size() != row_ok.size()) {
    return Status::Internal("model.route: the route column has " + std::to_string(route_column.size()) +
                            " rows, the batch " + std::to_string(row_ok.size()));
  }
  RouteScratch& s = ThreadRouteScratch();
  const size_t num_groups = paths_.size();
  s.group_rows.assign(num_groups, 0);
  s.slots.clear();
  size_t ok_rows = 0;
  for (size_t row = 0; row < row_ok.size(); ++row) {
    if (row_ok[row] == 0) continue;
    const uint32_t group = GroupOfRow(route_column, row, &s.key);
    if (group == kNoGroup) {
      row_ok[row] = 0;
      if (unrouted) unrouted(row);
    } else {
      s.slots.push_back({group, s.group_rows[group]++, ok_rows});
    }
    ++ok_rows;
  }
  const size_t routed = s.slots.size();
  if (routed == 0) {
    outputs->resize(signature_.outputs.size());
    for (size_t o = 0; o < outputs->size(); ++o) ResetOutput(signature_.outputs[o], &(*outputs)[o]);
    return Status::OK();
  }
  // Every row for one model (the usual batch of a segment-sorted input): no copies.
  if (routed == ok_rows && s.group_rows[s.slots[0].group] == routed) {
    return PredictGroup(s.slots[0].group, features, routed, cols, text, outputs);
  }

  // Gather each group's rows into one contiguous block of the matrix.
  s.group_start.resize(num_groups);
  size_t start = 0;
  for (size_t group = 0; group < num_groups; ++group) {
    s.group_start[group] = start;
    start += s.group_rows[group];
  }
  s.matrix.resize(routed * cols);
  s.gathered_from.resize(routed);
  for (const RouteScratch::RowSlot& slot : s.slots) {
    const size_t at = s.group_start[slot.group] + slot.pos;
    std::copy_n(features + slot.feature_row * cols, cols, s.matrix.data() + at * cols);
    s.gathered_from[at] = slot.feature_row;
  }

  if (s.outputs.size() < num_groups) s.outputs.resize(num_groups);
  if (s.text.size() < text.size()) s.text.resize(text.size(), Column(DataType::kString));
  s.group_text.assign(text.size(), nullptr);
  for (uint32_t group = 0; group < num_groups; ++group) {
    const size_t rows = s.group_rows[group];
    if (rows == 0) continue;
    const size_t first = s.group_start[group];
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == nullptr) continue;
      Column& column = s.text[i];
      column.Clear();
      for (size_t at = first; at < first + rows; ++at) column.AppendFrom(*text[i], s.gathered_from[at]);
      s.group_text[i] = &column;
    }
    RETURN_IF_ERROR(PredictGroup(group, s.matrix.data() + first * cols, rows, cols, s.group_text, &s.outputs[group]));
  }

  // Scatter each output back into row order.
  outputs->resize(signature_.outputs.size());
  for (size_t o = 0; o < outputs->size(); ++o) {
    const ModelOutputInfo& spec = signature_.outputs[o];
    OutputTensor& out = (*outputs)[o];
    ResetOutput(spec, &out);
    switch (spec.type) {
      case DataType::kFloat32: ScatterValues<float>(s, o, spec.width, &out.values); break;
      case DataType::kFloat64: ScatterValues<double>(s, o, spec.width, &out.values); break;
      case DataType::kInt64:
      case DataType::kTimestamp:
      case DataType::kDate: ScatterValues<int64_t>(s, o, spec.width, &out.values); break;
      case DataType::kString:
      case DataType::kBool: ScatterAppend(s, o, spec.width, &out.values); break;
    }
  }
  return Status::OK();
}

}  // namespace sluice
