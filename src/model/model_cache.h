// Models shared by the workers of a run.
//
// ThreadSafeModel: wraps a model whose Predict may not be called concurrently
// (info().concurrent_predict == false) behind a mutex, so callers never need to
// know; a concurrent model is returned as is.
//
// ModelCache: models by path, loaded on first use, at most `capacity` kept
// (least recently used evicted). A model handed out stays alive while its
// holder uses it, even if evicted meanwhile, so memory can briefly hold more
// than `capacity` models (at most capacity + workers). Two workers asking for
// the same absent path wait for one load; different paths load in parallel.
// A failed load is not cached (the next Get retries it).
//
// ModelRouter (model.route): scores each row with the model of its segment.
//
// Thread-safety: ModelCache and ModelRouter are safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

std::unique_ptr<Model> ThreadSafeModel(std::unique_ptr<Model> model);

class ModelCache {
 public:
  // The loader gets the model path; its models are wrapped with ThreadSafeModel.
  using Loader = std::function<Result<std::unique_ptr<Model>>(const std::string& path)>;
  // A capacity below 1 is taken as 1.
  ModelCache(Loader loader, size_t capacity);
  ~ModelCache();

  // The model at `path`, loading it if absent. Workers that ask for a path
  // while it loads wait for that load and share its result, error included.
  Result<std::shared_ptr<Model>> Get(const std::string& path);
  // Loader calls so far, failed ones included.
  int64_t loads() const;
  // Models dropped to keep at most `capacity`.
  int64_t evictions() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// True when two models can stand in for each other: same num_features and the
// same outputs (name, type, width), in order. Otherwise *why (if not null) says
// how `a` differs from `b`, e.g. "output 'score' has width 3, expected 2".
bool SameSignature(const ModelInfo& a, const ModelInfo& b, std::string* why);

class ModelRouter {
 public:
  // `signature`: the ModelInfo every segment model must match (SameSignature);
  // a model that does not is an error naming model.route.models.<value> and its path.
  // `cache` is borrowed and must outlive the router.
  ModelRouter(RouteSpec route, ModelInfo signature, ModelCache* cache);

  // The route key of row `row` of `column` as text: strings as is, integers in
  // decimal, floats in shortest round-trip form, booleans true/false,
  // timestamps in ISO 8601; null -> nullopt (routed to the default).
  static std::optional<std::string> KeyText(const Column& column, size_t row);

  // The model path for a key (the default for unknown/null keys), or nullptr
  // when there is none.
  const std::string* PathFor(const std::optional<std::string>& key) const;

  // Scores the OK rows of a batch. `route_column`: the route column of the
  // batch (all input rows). `row_ok`: per input row, 1 for rows featurized into
  // `features` (compacted, `cols` wide, in order) and `text` as for
  // Model::PredictWithText. Rows are grouped by model, each group gathered into
  // a contiguous matrix and scored by its model, and the results scattered back
  // so *outputs is exactly what one model scoring all OK rows in order would
  // give. OK rows whose key has no model (no default): cleared in row_ok, left
  // out of *outputs, and passed to `unrouted(row)` (to be rejected).
  Status Predict(const Column& route_column, std::span<uint8_t> row_ok, const float* features, size_t cols,
                 const std::vector<const Column*>& text, std::vector<OutputTensor>* outputs,
                 const std::function<void(size_t row)>& unrouted);

 private:
  static constexpr uint32_t kNoGroup = UINT32_MAX;
  // The group (index into paths_) of a key; kNoGroup when it has no model.
  uint32_t GroupOf(std::optional<std::string_view> key) const;
  uint32_t GroupOfRow(const Column& column, size_t row, std::string* text) const;
  // Scores `rows` rows of one group; errors name the group's config key and path.
  Status PredictGroup(uint32_t group, const float* features, size_t rows, size_t cols,
                      const std::vector<const Column*>& text, std::vector<OutputTensor>* outputs) const;

  ModelInfo signature_;
  ModelCache* cache_;                             // borrowed; outlives the router
  std::vector<std::string> paths_;                // distinct model paths, one group each
  std::vector<std::string> path_keys_;            // per group: the config key naming it
  std::map<std::string, uint32_t, std::less<>> group_of_value_;
  uint32_t default_group_ = kNoGroup;
};

}  // namespace sluice
