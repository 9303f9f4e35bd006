#include "model/model_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sink/value_format.h"
#include "sluice/env.h"

namespace sluice {
namespace {

// A test model whose every output value depends on its tag, the row's features
// and text, the output and the element, in every output type. It can flag calls
// that overlap (for a model declared not concurrent) and counts live instances.
struct ProbeOptions {
  double tag = 0;
  size_t num_features = 2;
  std::vector<ModelOutputInfo> outputs{{.name = "score", .type = DataType::kFloat32, .width = 1}};
  std::vector<ModelInputInfo> inputs{};  // kString entries take text features
  bool concurrent = true;
  std::atomic<int>* live = nullptr;      // incremented while the model exists
};

class ProbeModel final : public Model {
 public:
  explicit ProbeModel(ProbeOptions options) : options_(std::move(options)) {
    info_.backend = "probe";
    info_.num_features = options_.num_features;
    info_.outputs = options_.outputs;
    info_.inputs = options_.inputs;
    info_.concurrent_predict = options_.concurrent;
    if (options_.live != nullptr) ++*options_.live;
  }
  ~ProbeModel() override {
    if (options_.live != nullptr) --*options_.live;
  }

  const ModelInfo& info() const override { return info_; }
  int overlaps() const { return overlaps_; }
  int calls() const { return calls_; }

  Status Predict(const float* features, size_t rows, size_t cols, std::vector<OutputTensor>* outputs) override {
    return PredictWithText(features, rows, cols, {}, outputs);
  }

  Status PredictWithText(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
                         std::vector<OutputTensor>* outputs) override {
    if (in_flight_.fetch_add(1) != 0) ++overlaps_;
    if (!options_.concurrent) std::this_thread::sleep_for(std::chrono::microseconds(200));
    const Status status = Score(features, rows, cols, text, outputs);
    ++calls_;
    in_flight_.fetch_sub(1);
    return status;
  }

 private:
  Status Score(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
               std::vector<OutputTensor>* outputs) const {
    if (cols != options_.num_features) return Status::InvalidArgument("probe: wrong width");
    outputs->assign(options_.outputs.size(), OutputTensor{});
    for (size_t o = 0; o < options_.outputs.size(); ++o) {
      const ModelOutputInfo& spec = options_.outputs[o];
      OutputTensor& out = (*outputs)[o];
      out.width = spec.width;
      out.values = Column(spec.type);
      for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
        double v = options_.tag * 1000 + 10.0 * static_cast<double>(o);
        std::string words;
        for (size_t f = 0; f < cols; ++f) {
          if (f < text.size() && text[f] != nullptr) {
            words += text[f]->StringAt(row_idx);
            v += static_cast<double>(text[f]->StringAt(row_idx).size());
          } else {
            v += features[row_idx * cols + f] * static_cast<double>(f + 1);
          }
        }
        for (size_t k = 0; k < spec.width; ++k) {
          const double x = v + static_cast<double>(k) * 0.5;
          switch (spec.type) {
            case DataType::kFloat32: out.values.AppendFloat32(static_cast<float>(x)); break;
            case DataType::kFloat64: out.values.AppendFloat64(x + 0.125); break;
            case DataType::kInt64: out.values.AppendInt64(std::llround(x * 4)); break;
            default: out.values.AppendString(std::to_string(options_.tag) + "|" + words + "|" + std::to_string(x));
          }
        }
      }
    }
    return Status::OK();
  }

  const ProbeOptions options_;
  ModelInfo info_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> overlaps_{0};
  std::atomic<int> calls_{0};
};

std::unique_ptr<Model> Probe(ProbeOptions options) { return std::make_unique<ProbeModel>(std::move(options)); }

// A loader of probe models whose tag is the number in the path ("/3" -> 3), counting loads per path.
class ProbeLoader {
 public:
  explicit ProbeLoader(ProbeOptions base = {}) : base_(std::move(base)) {}

  ModelCache::Loader loader() {
    return [this](const std::string& path) -> Result<std::unique_ptr<Model>> {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++loads_[path];
      }
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      ProbeOptions options = base_;
      options.tag = std::stod(path.substr(1));
      options.live = &live;
      return Probe(options);
    };
  }
  int loads(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return loads_[path];
  }

  int delay_ms = 0;
  std::atomic<int> live{0};

 private:
  const ProbeOptions base_;
  std::mutex mu_;
  std::map<std::string, int> loads_;
};

double TagOf(const std::shared_ptr<Model>& model) {
  std::vector<OutputTensor> out;
  const std::vector<float> zeros(model->info().num_features, 0.0f);
  EXPECT_TRUE(model->Predict(zeros.data(), 1, zeros.size(), &out).ok());
  return out[0].values.float32s()[0] / 1000.0;
}

std::shared_ptr<Model> MustGet(ModelCache* cache, const std::string& path) {
  Result<std::shared_ptr<Model>> model = cache->Get(path);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : nullptr;
}

// Each value of a column as text (JSON form), so that comparisons are exact and readable.
std::vector<std::string> Texts(const Column& column) {
  std::vector<std::string> out;
  for (size_t i = 0; i < column.size(); ++i) {
    std::string text;
    AppendColumnValue(column, i, TextFormat::kJson, &text);
    out.push_back(std::move(text));
  }
  return out;
}

void ExpectSameOutputs(const std::vector<OutputTensor>& got, const std::vector<OutputTensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    EXPECT_EQ(got[o].width, want[o].width) << "output " << o;
    EXPECT_EQ(got[o].values.type(), want[o].values.type()) << "output " << o;
    EXPECT_EQ(Texts(got[o].values), Texts(want[o].values)) << "output " << o;
  }
}

// ---- SameSignature ----

TEST(SameSignatureTest, ComparesFeaturesAndOutputs) {
  ModelInfo base;
  base.num_features = 3;
  base.outputs = {{.name = "score", .type = DataType::kFloat32, .width = 2},
                  {.name = "label", .type = DataType::kInt64, .width = 1}};
  ModelInfo same = base;
  same.backend = "other";
  same.metadata["x"] = "y";
  std::string why = "untouched";
  EXPECT_TRUE(SameSignature(same, base, &why));
  EXPECT_EQ(why, "untouched");
  EXPECT_TRUE(SameSignature(same, base, nullptr));

  ModelInfo features = base;
  features.num_features = 4;
  EXPECT_FALSE(SameSignature(features, base, &why));
  EXPECT_EQ(why, "it takes 4 features, expected 3");

  ModelInfo fewer = base;
  fewer.outputs.pop_back();
  EXPECT_FALSE(SameSignature(fewer, base, &why));
  EXPECT_EQ(why, "its outputs are score, expected score, label");

  ModelInfo renamed = base;
  renamed.outputs[1].name = "class";
  EXPECT_FALSE(SameSignature(renamed, base, &why));
  EXPECT_EQ(why, "output 2 is 'class', expected 'label'");

  ModelInfo retyped = base;
  retyped.outputs[0].type = DataType::kFloat64;
  EXPECT_FALSE(SameSignature(retyped, base, &why));
  EXPECT_EQ(why, "output 'score' is float64, expected float32");

  ModelInfo wider = base;
  wider.outputs[0].width = 3;
  EXPECT_FALSE(SameSignature(wider, base, &why));
  EXPECT_EQ(why, "output 'score' has width 3, expected 2");
}

// ---- ThreadSafeModel ----

TEST(ThreadSafeModelTest, ConcurrentModelIsReturnedAsIs) {
  std::unique_ptr<Model> model = Probe({});
  Model* raw = model.get();
  EXPECT_EQ(ThreadSafeModel(std::move(model)).get(), raw);
  EXPECT_EQ(ThreadSafeModel(nullptr), nullptr);
}

TEST(ThreadSafeModelTest, SerializesANonConcurrentModel) {
  ProbeOptions options;
  options.concurrent = false;
  options.inputs = {{.name = "x", .type = DataType::kFloat32}, {.name = "word", .type = DataType::kString}};
  auto probe = std::make_unique<ProbeModel>(options);
  const ProbeModel* raw = probe.get();
  std::unique_ptr<Model> model = ThreadSafeModel(std::move(probe));
  EXPECT_NE(model.get(), raw);
  EXPECT_TRUE(model->info().concurrent_predict);
  EXPECT_EQ(model->info().backend, "probe");

  constexpr int kThreads = 8;
  constexpr int kCalls = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<float> features = {static_cast<float>(t), 0.5f};
      Column words(DataType::kString);
      words.AppendString("abc");
      const std::vector<const Column*> text = {nullptr, &words};
      std::vector<OutputTensor> out;
      for (int call = 0; call < kCalls; ++call) {
        // Both entry points take the same lock. Scores: t + 0.5 * 2, or t + len("abc").
        const bool with_text = call % 2 == 1;
        const Status status = with_text ? model->PredictWithText(features.data(), 1, 2, text, &out)
                                        : model->Predict(features.data(), 1, 2, &out);
        if (!status.ok() || out[0].values.float32s()[0] != static_cast<float>(t) + (with_text ? 3.0f : 1.0f)) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(raw->calls(), kThreads * kCalls);
  EXPECT_EQ(raw->overlaps(), 0);
}

// Model files in an in-memory Env, loaded through the registry of built-in backends.
class ModelFiles {
 public:
  ModelFiles() : env_(NewMemEnv()) { RegisterBuiltinModels(&registry_); }

  void WriteText(const std::string& path, const std::string& json) {
    ASSERT_TRUE(WriteFileAtomic(env_.get(), path, json).ok());
  }

  ModelCache::Loader loader() {
    return [this](const std::string& path) {
      ModelOptions options;
      options.path = path;
      return registry_.Load(env_.get(), "auto", options);
    };
  }

 private:
  std::unique_ptr<Env> env_;
  ModelRegistry registry_;
};

// ---- ModelCache ----

TEST(ModelCacheTest, LruOrderAndCounters) {
  ProbeLoader probes;
  ModelCache cache(probes.loader(), 2);
  // Three segment models /1 /2 /3 and the default /9.
  EXPECT_EQ(TagOf(MustGet(&cache, "/1")), 1);
  EXPECT_EQ(TagOf(MustGet(&cache, "/2")), 2);
  EXPECT_EQ(cache.loads(), 2);
  EXPECT_EQ(cache.evictions(), 0);

  MustGet(&cache, "/1");  // a hit: /1 is now the most recent
  EXPECT_EQ(cache.loads(), 2);
  MustGet(&cache, "/3");  // evicts /2, the least recently used
  EXPECT_EQ(cache.loads(), 3);
  EXPECT_EQ(cache.evictions(), 1);
  MustGet(&cache, "/1");
  EXPECT_EQ(cache.loads(), 3);
  MustGet(&cache, "/9");  // evicts /3
  EXPECT_EQ(cache.evictions(), 2);
  MustGet(&cache, "/1");
  EXPECT_EQ(cache.loads(), 4);
  EXPECT_EQ(TagOf(MustGet(&cache, "/3")), 3);  // reloaded, evicts /9
  EXPECT_EQ(cache.loads(), 5);
  EXPECT_EQ(cache.evictions(), 3);
  EXPECT_EQ(probes.loads("/1"), 1);
  EXPECT_EQ(probes.loads("/2"), 1);
  EXPECT_EQ(probes.loads("/3"), 2);
  EXPECT_EQ(probes.loads("/9"), 1);
  EXPECT_EQ(probes.live, 2);  // nobody holds the evicted ones
}

TEST(ModelCacheTest, ConcurrentGetsLoadEachPathOnce) {
  ProbeLoader probes;
  probes.delay_ms = 30;
  ModelCache cache(probes.loader(), 4);
  const std::vector<std::string> paths = {"/1", "/2", "/3"};
  constexpr int kThreads = 8;
  std::vector<std::vector<Model*>> seen(kThreads, std::vector<Model*>(paths.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < paths.size(); ++i) {
        const size_t p = (i + static_cast<size_t>(t)) % paths.size();
        Result<std::shared_ptr<Model>> model = cache.Get(paths[p]);
        seen[t][p] = model.ok() ? model->get() : nullptr;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(cache.loads(), 3);
  for (const std::string& path : paths) EXPECT_EQ(probes.loads(path), 1) << path;
  for (size_t p = 0; p < paths.size(); ++p) {
    ASSERT_NE(seen[0][p], nullptr);
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t][p], seen[0][p]) << "thread " << t << " " << paths[p];
  }
}

TEST(ModelCacheTest, DifferentPathsLoadInParallel) {
  // Each load waits until the other has started: loads run one at a time only if this times out.
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool timed_out = false;
  ModelCache cache(
      [&](const std::string&) -> Result<std::unique_ptr<Model>> {
        std::unique_lock<std::mutex> lock(mu);
        ++started;
        cv.notify_all();
        if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return started == 2; })) timed_out = true;
        return Probe({});
      },
      2);
  std::thread other([&] { EXPECT_TRUE(cache.Get("/a").ok()); });
  EXPECT_TRUE(cache.Get("/b").ok());
  other.join();
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(cache.loads(), 2);
}

TEST(ModelCacheTest, FailedLoadIsNotCached) {
  ModelFiles files;
  ModelCache cache(files.loader(), 2);
  Result<std::shared_ptr<Model>> missing = cache.Get("/m/a.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "model.path: no such file '/m/a.json'");

  files.WriteText("/m/a.json", R"({"sluice_fake": 1, "num_features": 2})");
  Result<std::shared_ptr<Model>> loaded = cache.Get("/m/a.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->info().backend, "fake");
  EXPECT_EQ(cache.loads(), 2);
  EXPECT_EQ(cache.evictions(), 0);
  EXPECT_EQ(MustGet(&cache, "/m/a.json"), *loaded);
  EXPECT_EQ(cache.loads(), 2);
}

TEST(ModelCacheTest, EvictedModelStaysAliveWhileHeld) {
  ProbeLoader probes;
  ModelCache cache(probes.loader(), 1);
  std::shared_ptr<Model> held = MustGet(&cache, "/1");
  MustGet(&cache, "/2");
  EXPECT_EQ(cache.evictions(), 1);
  EXPECT_EQ(probes.live, 2);    // /1 evicted but held, /2 cached
  EXPECT_EQ(TagOf(held), 1);    // still usable
  std::shared_ptr<Model> again = MustGet(&cache, "/1");  // a new load, which evicts /2
  EXPECT_NE(again, held);
  EXPECT_EQ(cache.loads(), 3);
  EXPECT_EQ(cache.evictions(), 2);
  EXPECT_EQ(probes.live, 2);  // the held /1 and the cached one
  held.reset();
  EXPECT_EQ(probes.live, 1);
}

// ---- ModelRouter ----

TEST(ModelRouterTest, KeyTextForms) {
  Column strings(DataType::kString);
  strings.AppendString("east");
  strings.AppendNull();
  strings.AppendString("");
  EXPECT_EQ(ModelRouter::KeyText(strings, 0), "east");
  EXPECT_EQ(ModelRouter::KeyText(strings, 1), std::nullopt);
  EXPECT_EQ(ModelRouter::KeyText(strings, 2), "");

  Column ints(DataType::kInt64);
  ints.AppendInt64(-42);
  EXPECT_EQ(ModelRouter::KeyText(ints, 0), "-42");
  Column floats(DataType::kFloat32);
  floats.AppendFloat32(0.1f);
  floats.AppendFloat32(3.0f);
  EXPECT_EQ(ModelRouter::KeyText(floats, 0), "0.1");
  EXPECT_EQ(ModelRouter::KeyText(floats, 1), "3");
  Column doubles(DataType::kFloat64);
  doubles.AppendFloat64(2.5);
  EXPECT_EQ(ModelRouter::KeyText(doubles, 0), "2.5");
  Column bools(DataType::kBool);
  bools.AppendBool(true);
  bools.AppendBool(false);
  EXPECT_EQ(ModelRouter::KeyText(bools, 0), "true");
  EXPECT_EQ(ModelRouter::KeyText(bools, 1), "false");
  Column times(DataType::kTimestamp);
  times.AppendInt64(1704448800000000);  // 2024-01-05T10:00:00Z
  EXPECT_EQ(ModelRouter::KeyText(times, 0), "2024-01-05T10:00:00Z");
}

TEST(ModelRouterTest, PathFor) {
  ProbeLoader probes;
  ModelCache cache(probes.loader(), 2);
  RouteSpec route;
  route.column = "region";
  route.models = {{"east", "/1"}, {"west", "/2"}, {"7", "/1"}};
  route.default_path = "/9";
  ModelRouter router(route, ModelInfo{}, &cache);
  ASSERT_NE(router.PathFor("east"), nullptr);
  EXPECT_EQ(*router.PathFor("east"), "/1");
  EXPECT_EQ(*router.PathFor("7"), "/1");
  EXPECT_EQ(*router.PathFor("west"), "/2");
  EXPECT_EQ(*router.PathFor("north"), "/9");
  EXPECT_EQ(*router.PathFor(std::nullopt), "/9");

  route.default_path.clear();
  ModelRouter strict(route, ModelInfo{}, &cache);
  EXPECT_EQ(*strict.PathFor("west"), "/2");
  EXPECT_EQ(strict.PathFor("north"), nullptr);
  EXPECT_EQ(strict.PathFor(std::nullopt), nullptr);
}

// One batch for the router: the route column over all input rows, which rows
// are OK, and the compacted features (and text) of the OK rows.
struct RouteBatch {
  Column route{DataType::kString};
  std::vector<uint8_t> row_ok;
  std::vector<float> features;
  Column words{DataType::kString};  // text feature 1 of the OK rows, when used
};

constexpr size_t kCols = 2;

// Rows cycle through `keys` (nullopt = null); every 7th row (from `skew`) is not OK.
RouteBatch MakeBatch(const std::vector<std::optional<std::string>>& keys, size_t rows, size_t skew) {
  RouteBatch batch;
  for (size_t row = 0; row < rows; ++row) {
    const std::optional<std::string>& key = keys[(row * 5 + skew) % keys.size()];
    if (key) {
      batch.route.AppendString(*key);
    } else {
      batch.route.AppendNull();
    }
    const bool ok = (row + skew) % 7 != 3;
    batch.row_ok.push_back(ok ? 1 : 0);
    if (!ok) continue;
    batch.features.push_back(static_cast<float>(row) + 0.25f);
    batch.features.push_back(static_cast<float>(row % 3) * -1.5f);
    batch.words.AppendString(std::string(row % 4, 'w') + std::to_string(row));
  }
  return batch;
}

// The reference: every routed OK row scored alone by its own model (loaded
// afresh through `loader`), outputs appended in row order.
std::vector<OutputTensor> ScoreEachRowAlone(const ModelRouter& router, const ModelCache::Loader& loader,
                                            const RouteBatch& batch, bool with_text) {
  std::map<std::string, std::unique_ptr<Model>> models;
  std::vector<OutputTensor> want;
  size_t ok_idx = 0;
  for (size_t row = 0; row < batch.row_ok.size(); ++row) {
    if (batch.row_ok[row] == 0) continue;
    const size_t feature_row = ok_idx++;
    const std::string* path = router.PathFor(ModelRouter::KeyText(batch.route, row));
    if (path == nullptr) continue;
    std::unique_ptr<Model>& model = models[*path];
    if (model == nullptr) {
      Result<std::unique_ptr<Model>> loaded = loader(*path);
      EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
      if (!loaded.ok()) return {};
      model = std::move(loaded).value();
    }
    Column word(DataType::kString);
    word.AppendFrom(batch.words, feature_row);
    std::vector<const Column*> text;
    if (with_text) text = {nullptr, &word};
    std::vector<OutputTensor> one;
    const Status status = model->PredictWithText(batch.features.data() + feature_row * kCols, 1, kCols, text, &one);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (want.empty()) {
      for (const OutputTensor& tensor : one) want.push_back(OutputTensor{tensor.width, Column(tensor.values.type())});
    }
    for (size_t o = 0; o < one.size(); ++o) {
      for (size_t i = 0; i < one[o].values.size(); ++i) want[o].values.AppendFrom(one[o].values, i);
    }
  }
  return want;
}

// Linear models with two outputs, different per segment, and a default.
class LinearSegments : public ModelFiles {
 public:
  LinearSegments() {
    Write("/m/east.json", 1, 2, 10);
    Write("/m/west.json", 3, -1, 20);
    Write("/m/north.json", 0.5, 0.25, 30);
    Write("/m/default.json", 1, 1, 0);
  }

  void Write(const std::string& path, double a, double b, double intercept) {
    WriteText(path, "{\"sluice_linear\": 1, \"feature_names\": [\"a\", \"b\"], \"coefficients\": [[" +
                        std::to_string(a) + ", " + std::to_string(b) + "], [" + std::to_string(b) + ", " +
                        std::to_string(a) + "]], \"intercepts\": [" + std::to_string(intercept) + ", " +
                        std::to_string(-intercept) + "], \"link\": \"identity\"}");
  }

  ModelInfo signature() {
    Result<std::unique_ptr<Model>> model = loader()("/m/default.json");
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? (*model)->info() : ModelInfo{};
  }

  static RouteSpec Route(bool with_default) {
    RouteSpec route;
    route.column = "region";
    route.models = {{"east", "/m/east.json"}, {"west", "/m/west.json"}, {"north", "/m/north.json"}};
    if (with_default) route.default_path = "/m/default.json";
    route.cache_size = 2;
    return route;
  }
};

const std::vector<std::optional<std::string>> kMixedKeys = {"east", "west", std::nullopt, "north", "east",
                                                            "south", "west", "", "north"};

Status RoutePredict(ModelRouter* router, RouteBatch* batch, std::vector<OutputTensor>* outputs,
                    std::vector<size_t>* unrouted, bool with_text = false) {
  std::vector<const Column*> text;
  if (with_text) text = {nullptr, &batch->words};
  return router->Predict(batch->route, batch->row_ok, batch->features.data(), kCols, text, outputs,
                         [&](size_t row) { unrouted->push_back(row); });
}

TEST(ModelRouterTest, ScoresEachRowWithItsSegmentModel) {
  LinearSegments files;
  const RouteSpec route = LinearSegments::Route(true);
  ModelCache cache(files.loader(), static_cast<size_t>(route.cache_size));
  ModelRouter router(route, files.signature(), &cache);
  std::vector<OutputTensor> outputs;
  // Interleaved segments, nulls and unknown values; then batches of one segment
  // (scored without gathering) and of unknown values only.
  const std::vector<std::vector<std::optional<std::string>>> key_sets = {
      kMixedKeys, kMixedKeys, {"west"}, {"south", std::nullopt}, kMixedKeys};
  for (size_t b = 0; b < key_sets.size(); ++b) {
    RouteBatch batch = MakeBatch(key_sets[b], 40 + b, b);
    const std::vector<uint8_t> row_ok_before = batch.row_ok;
    std::vector<size_t> unrouted;
    ASSERT_TRUE(RoutePredict(&router, &batch, &outputs, &unrouted).ok()) << "batch " << b;
    EXPECT_TRUE(unrouted.empty());
    EXPECT_EQ(batch.row_ok, row_ok_before);
    const std::vector<OutputTensor> want = ScoreEachRowAlone(router, files.loader(), batch, false);
    ASSERT_EQ(want[0].values.size(), 2 * static_cast<size_t>(std::count(row_ok_before.begin(), row_ok_before.end(), 1)));
    SCOPED_TRACE("batch " + std::to_string(b));
    ExpectSameOutputs(outputs, want);
  }
  // Four models through a cache of two.
  EXPECT_GT(cache.evictions(), 0);
  EXPECT_GT(cache.loads(), 4);
}

TEST(ModelRouterTest, RowsWithoutAModelAreUnrouted) {
  LinearSegments files;
  const RouteSpec route = LinearSegments::Route(false);
  ModelCache cache(files.loader(), 2);
  ModelRouter router(route, files.signature(), &cache);
  RouteBatch batch = MakeBatch(kMixedKeys, 30, 1);
  const RouteBatch before = batch;
  std::vector<OutputTensor> outputs;
  std::vector<size_t> unrouted;
  ASSERT_TRUE(RoutePredict(&router, &batch, &outputs, &unrouted).ok());

  std::vector<size_t> want_unrouted;
  for (size_t row = 0; row < before.row_ok.size(); ++row) {
    const std::optional<std::string> key = ModelRouter::KeyText(before.route, row);
    const bool known = key && route.models.count(*key) > 0;
    if (before.row_ok[row] == 1 && !known) want_unrouted.push_back(row);
    EXPECT_EQ(batch.row_ok[row], before.row_ok[row] == 1 && known ? 1 : 0) << "row " << row;
  }
  EXPECT_FALSE(want_unrouted.empty());
  EXPECT_EQ(unrouted, want_unrouted);
  // Outputs hold the routed rows only, each scored by its own model.
  ExpectSameOutputs(outputs, ScoreEachRowAlone(router, files.loader(), before, false));
  EXPECT_EQ(outputs[0].values.size(), 2 * (before.features.size() / kCols - unrouted.size()));

  // A batch with no routed row gives empty outputs of the declared types.
  RouteBatch lost = MakeBatch({"south", std::nullopt}, 5, 0);
  unrouted.clear();
  ASSERT_TRUE(RoutePredict(&router, &lost, &outputs, &unrouted).ok());
  EXPECT_EQ(unrouted.size(), lost.features.size() / kCols);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].width, 2u);
  EXPECT_EQ(outputs[0].values.type(), DataType::kFloat32);
  EXPECT_EQ(outputs[0].values.size(), 0u);
}

TEST(ModelRouterTest, SignatureMismatchNamesTheKeyAndPath) {
  LinearSegments files;
  // A one-output model among the two-output ones.
  files.WriteText("/m/narrow.json", R"({"sluice_linear": 1, "feature_names": ["a", "b"], "coefficients": [1, 2],
                                       "intercepts": 0, "link": "identity"})");
  RouteSpec route = LinearSegments::Route(true);
  route.models["west"] = "/m/narrow.json";
  ModelCache cache(files.loader(), 2);
  ModelRouter router(route, files.signature(), &cache);
  RouteBatch batch = MakeBatch(kMixedKeys, 20, 0);
  std::vector<OutputTensor> outputs;
  std::vector<size_t> unrouted;
  Status status = RoutePredict(&router, &batch, &outputs, &unrouted);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "model.route.models.west: model '/m/narrow.json' cannot stand in for the job's model: "
            "output 'value' has width 1, expected 2");

  route = LinearSegments::Route(true);
  route.default_path = "/m/narrow.json";
  ModelRouter by_default(route, files.signature(), &cache);
  batch = MakeBatch({std::nullopt}, 3, 0);
  status = RoutePredict(&by_default, &batch, &outputs, &unrouted);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "model.route.default: model '/m/narrow.json' cannot stand in for the job's model: "
            "output 'value' has width 1, expected 2");
}

TEST(ModelRouterTest, ModelErrorsNameTheSegmentAndKeepTheirCode) {
  ModelFiles files;
  files.WriteText("/m/ok.json", R"({"sluice_fake": 1, "num_features": 2})");
  files.WriteText("/m/flaky.json", R"({"sluice_fake": 1, "num_features": 2, "fail_calls": 1})");
  ModelCache cache(files.loader(), 2);
  RouteSpec route;
  route.column = "region";
  route.models = {{"east", "/m/ok.json"}, {"west", "/m/flaky.json"}, {"north", "/m/missing.json"}};
  ModelRouter router(route, MustGet(&cache, "/m/ok.json")->info(), &cache);

  RouteBatch batch = MakeBatch({"east", "west"}, 6, 0);
  std::vector<OutputTensor> outputs;
  std::vector<size_t> unrouted;
  Status status = RoutePredict(&router, &batch, &outputs, &unrouted);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "model.route.models.west '/m/flaky.json': fake model: injected failure");
  EXPECT_TRUE(RoutePredict(&router, &batch, &outputs, &unrouted).ok());  // the next call succeeds

  batch = MakeBatch({"north"}, 2, 0);
  status = RoutePredict(&router, &batch, &outputs, &unrouted);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "model.route.models.north: model.path: no such file '/m/missing.json'");
}

ProbeOptions EveryOutputType() {
  ProbeOptions options;
  options.outputs = {{.name = "f32", .type = DataType::kFloat32, .width = 1},
                     {.name = "f64", .type = DataType::kFloat64, .width = 2},
                     {.name = "i64", .type = DataType::kInt64, .width = 3},
                     {.name = "text", .type = DataType::kString, .width = 2}};
  return options;
}

RouteSpec ProbeRoute() {
  RouteSpec route;
  route.column = "region";
  route.models = {{"east", "/1"}, {"west", "/2"}, {"north", "/3"}};
  route.default_path = "/9";
  route.cache_size = 2;
  return route;
}

TEST(ModelRouterTest, ScattersEveryOutputType) {
  ProbeLoader probes(EveryOutputType());
  ModelCache cache(probes.loader(), 2);
  ModelRouter router(ProbeRoute(), ProbeModel(EveryOutputType()).info(), &cache);
  std::vector<OutputTensor> outputs;
  for (size_t b = 0; b < 3; ++b) {
    RouteBatch batch = MakeBatch(kMixedKeys, 25 + b, b);
    std::vector<size_t> unrouted;
    ASSERT_TRUE(RoutePredict(&router, &batch, &outputs, &unrouted).ok());
    const std::vector<OutputTensor> want = ScoreEachRowAlone(router, probes.loader(), batch, false);
    ASSERT_EQ(want.size(), 4u);
    EXPECT_EQ(want[3].values.size(), 2 * batch.features.size() / kCols);
    SCOPED_TRACE("batch " + std::to_string(b));
    ExpectSameOutputs(outputs, want);
  }
}

TEST(ModelRouterTest, RoutesTextFeatures) {
  ProbeOptions options = EveryOutputType();
  options.inputs = {{.name = "x", .type = DataType::kFloat32}, {.name = "word", .type = DataType::kString}};
  ProbeLoader probes(options);
  ModelCache cache(probes.loader(), 2);
  ModelRouter router(ProbeRoute(), ProbeModel(options).info(), &cache);
  std::vector<OutputTensor> outputs;
  for (size_t b = 0; b < 2; ++b) {
    RouteBatch batch = MakeBatch(b == 0 ? kMixedKeys : std::vector<std::optional<std::string>>{"north"}, 30, b);
    std::vector<size_t> unrouted;
    ASSERT_TRUE(RoutePredict(&router, &batch, &outputs, &unrouted, /*with_text=*/true).ok());
    SCOPED_TRACE("batch " + std::to_string(b));
    ExpectSameOutputs(outputs, ScoreEachRowAlone(router, probes.loader(), batch, true));
    // The words reached the models: the string output carries them.
    EXPECT_NE(outputs[3].values.StringAt(0).find(batch.words.StringAt(0)), std::string_view::npos);
  }
}

TEST(ModelRouterTest, ConcurrentBatchesThroughASmallCache) {
  ProbeOptions options = EveryOutputType();
  options.concurrent = false;  // wrapped by the cache
  ProbeLoader probes(options);
  ModelCache cache(probes.loader(), 2);
  ModelRouter router(ProbeRoute(), ProbeModel(options).info(), &cache);
  constexpr int kThreads = 4;
  constexpr int kBatches = 15;
  std::vector<RouteBatch> batches;
  std::vector<std::vector<OutputTensor>> want;
  for (int b = 0; b < kBatches; ++b) {
    batches.push_back(MakeBatch(kMixedKeys, 20 + static_cast<size_t>(b), static_cast<size_t>(b)));
    want.push_back(ScoreEachRowAlone(router, probes.loader(), batches.back(), false));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<OutputTensor> outputs;
      for (int b = 0; b < kBatches; ++b) {
        RouteBatch batch = batches[static_cast<size_t>((b + t) % kBatches)];
        std::vector<size_t> unrouted;
        const Status status = RoutePredict(&router, &batch, &outputs, &unrouted);
        const std::vector<OutputTensor>& expected = want[static_cast<size_t>((b + t) % kBatches)];
        bool same = status.ok() && outputs.size() == expected.size();
        for (size_t o = 0; same && o < outputs.size(); ++o) {
          same = Texts(outputs[o].values) == Texts(expected[o].values);
        }
        if (!same) ++mismatches;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(cache.evictions(), 0);
  EXPECT_LE(probes.live, 2 + 4);  // the reference models are gone; at most cache + holders remain
}

}  // namespace
}  // namespace sluice
