#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/env.h"
#include "sluice/model.h"

namespace sluice {
namespace {

constexpr char kLinearJson[] =
    R"({"sluice_linear": 1, "feature_names": ["a", "b"], "coefficients": [1, 2],
        "intercepts": 0.5, "link": "identity"})";
constexpr char kFakeJson[] = R"({"sluice_fake": 1, "num_features": 3, "outputs": 2})";

// The builtin table of this build: the optional backends join behind their build options.
std::vector<std::string> BuiltinNames() {
  std::vector<std::string> names = {"linear", "fake"};
#if SLUICE_WITH_ONNX
  names.push_back("onnx");
#endif
#if SLUICE_WITH_XGBOOST
  names.push_back("xgboost");
#endif
  return names;
}

std::string BuiltinList() {
  std::string out;
  for (const std::string& name : BuiltinNames()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { RegisterBuiltinModels(&registry_); }

  void Write(const std::string& path, std::string_view data) {
    ASSERT_TRUE(WriteFileAtomic(env_.get(), path, data).ok());
  }

  std::unique_ptr<Env> env_ = NewMemEnv();
  ModelRegistry registry_;
};

TEST_F(RegistryTest, BuiltinsInTableOrder) {
  EXPECT_EQ(registry_.names(), BuiltinNames());
}

TEST_F(RegistryTest, AutoDetectsLinearAndFakeByContent) {
  Write("/m/linear.json", kLinearJson);
  Write("/m/fake.json", kFakeJson);

  Result<std::string> kind = registry_.Detect(env_.get(), "/m/linear.json");
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, "linear");
  kind = registry_.Detect(env_.get(), "/m/fake.json");
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, "fake");

  Result<std::unique_ptr<Model>> linear = registry_.Load(env_.get(), "auto", {"/m/linear.json"});
  ASSERT_TRUE(linear.ok()) << linear.status().ToString();
  EXPECT_EQ((*linear)->info().backend, "linear");
  EXPECT_EQ((*linear)->info().num_features, 2u);

  Result<std::unique_ptr<Model>> fake = registry_.Load(env_.get(), "auto", {"/m/fake.json"});
  ASSERT_TRUE(fake.ok()) << fake.status().ToString();
  EXPECT_EQ((*fake)->info().backend, "fake");
  EXPECT_EQ((*fake)->info().num_features, 3u);
}

// Model::PredictWithText's default: no text -> Predict; any text -> kNotSupported.
TEST_F(RegistryTest, DefaultPredictWithTextTakesNoText) {
  Write("/m/linear.json", kLinearJson);
  Result<std::unique_ptr<Model>> model = registry_.Load(env_.get(), "linear", {"/m/linear.json"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const float x[4] = {1, 2, 3, 4};
  std::vector<OutputTensor> plain;
  std::vector<OutputTensor> with_text;
  ASSERT_TRUE((*model)->Predict(x, 2, 2, &plain).ok());
  Status status = (*model)->PredictWithText(x, 2, 2, {nullptr, nullptr}, &with_text);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(with_text.size(), plain.size());
  EXPECT_EQ(std::vector<float>(with_text[0].values.float32s().begin(), with_text[0].values.float32s().end()),
            std::vector<float>(plain[0].values.float32s().begin(), plain[0].values.float32s().end()));
  EXPECT_TRUE((*model)->PredictWithText(x, 2, 2, {}, &with_text).ok());
  Column text(DataType::kString);
  text.AppendString("a");
  text.AppendString("b");
  status = (*model)->PredictWithText(x, 2, 2, {&text, nullptr}, &with_text);
  EXPECT_EQ(status.code(), StatusCode::kNotSupported) << status.ToString();
}

TEST_F(RegistryTest, ExplicitKindSkipsDetection) {
  Write("/m/model.txt", kLinearJson);  // wrong extension: auto cannot tell, kind can
  Result<std::unique_ptr<Model>> model = registry_.Load(env_.get(), "linear", {"/m/model.txt"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().backend, "linear");
}

TEST_F(RegistryTest, AutoWithoutMatchNamesPathAndBackends) {
  // (.bin would be claimed by the XGBoost backend's legacy binary extensions.)
  Write("x.dat", "\x01\x02 not a model");
  Result<std::unique_ptr<Model>> model = registry_.Load(env_.get(), "auto", {"x.dat"});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model.status().message(),
            "model.path 'x.dat': cannot tell the model kind from its name or content; set model.kind "
            "(one of: " + BuiltinList() + ")");

  // A .json file without a known marker is not guessed either.
  Write("other.json", R"({"weights": [1, 2]})");
  EXPECT_EQ(registry_.Detect(env_.get(), "other.json").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, DetectionSeesTheFirstMiB) {
  // A marker after 100 KiB (a key-sorted dump of a wide model) is seen; one after 1 MiB is not.
  std::string sorted = "{\"metadata\": {\"pad\": \"" + std::string(100000, 'x') + "\"}, \"sluice_fake\": 1}";
  Write("sorted.json", sorted);
  Result<std::string> sorted_kind = registry_.Detect(env_.get(), "sorted.json");
  ASSERT_TRUE(sorted_kind.ok()) << sorted_kind.status().ToString();
  EXPECT_EQ(*sorted_kind, "fake");
  std::string padded = "{\"metadata\": {\"pad\": \"" + std::string(1100000, 'x') + "\"}, \"sluice_fake\": 1}";
  Write("late.json", padded);
  EXPECT_EQ(registry_.Detect(env_.get(), "late.json").status().code(), StatusCode::kInvalidArgument);
  std::string early = "{\"sluice_fake\": 1, \"num_features\": 1, \"pad\": \"" + std::string(5000, 'x') + "\"}";
  Write("early.json", early);
  Result<std::string> kind = registry_.Detect(env_.get(), "early.json");
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, "fake");
}

TEST_F(RegistryTest, UnknownKind) {
  Write("m.json", kLinearJson);
  Result<std::unique_ptr<Model>> model = registry_.Load(env_.get(), "foo", {"m.json"});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model.status().message(), "model.kind: unknown backend 'foo' (registered: " + BuiltinList() + ")");
}

TEST_F(RegistryTest, MissingFile) {
  for (const char* kind : {"auto", "linear", "fake"}) {
    Result<std::unique_ptr<Model>> model = registry_.Load(env_.get(), kind, {"x.onnx"});
    ASSERT_FALSE(model.ok()) << kind;
    EXPECT_EQ(model.status().code(), StatusCode::kNotFound) << kind;
    EXPECT_EQ(model.status().message(), "model.path: no such file 'x.onnx'") << kind;
  }
  EXPECT_EQ(registry_.Detect(env_.get(), "x.onnx").status().message(), "model.path: no such file 'x.onnx'");
}

TEST_F(RegistryTest, DuplicateAndInvalidNames) {
  auto load = [](Env*, const ModelOptions&) -> Result<std::unique_ptr<Model>> {
    return Status::Internal("unused");
  };
  Status dup = registry_.Register("linear", nullptr, load);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "model registry: backend 'linear' is already registered");
  EXPECT_EQ(registry_.Register("auto", nullptr, load).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Register("", nullptr, load).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Register("nothing", nullptr, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.names(), BuiltinNames());
}

TEST_F(RegistryTest, FirstMatchingDetectorWinsAndLoadGetsOptions) {
  ModelRegistry registry;
  std::string seen_path;
  int seen_threads = 0;
  auto by_ext = [](std::string_view ext) {
    return [ext](std::string_view path, std::string_view) { return path.ends_with(ext); };
  };
  auto failing_load = [](std::string name) {
    return [name](Env*, const ModelOptions&) -> Result<std::unique_ptr<Model>> {
      return Status::NotSupported("loaded by " + name);
    };
  };
  ASSERT_TRUE(registry.Register("never", nullptr, failing_load("never")).ok());
  ASSERT_TRUE(registry.Register("bin_a", by_ext(".bin"), failing_load("bin_a")).ok());
  ASSERT_TRUE(registry
                  .Register("bin_b", by_ext(".bin"),
                            [&](Env*, const ModelOptions& options) -> Result<std::unique_ptr<Model>> {
                              seen_path = options.path;
                              seen_threads = options.threads;
                              return Status::NotSupported("loaded by bin_b");
                            })
                  .ok());
  Write("model.bin", "bytes");

  Result<std::string> kind = registry.Detect(env_.get(), "model.bin");
  ASSERT_TRUE(kind.ok());
  EXPECT_EQ(*kind, "bin_a");
  EXPECT_EQ(registry.Load(env_.get(), "auto", {"model.bin"}).status().message(), "loaded by bin_a");

  ModelOptions options{"model.bin", 3};
  EXPECT_EQ(registry.Load(env_.get(), "bin_b", options).status().message(), "loaded by bin_b");
  EXPECT_EQ(seen_path, "model.bin");
  EXPECT_EQ(seen_threads, 3);
}

TEST_F(RegistryTest, WarmRunsTheNamedOrDetectedBackendsWarmFunction) {
  ModelRegistry registry;
  std::vector<std::string> warmed;
  auto load = [](Env*, const ModelOptions&) -> Result<std::unique_ptr<Model>> { return Status::Internal("unused"); };
  auto warm = [&warmed](std::string name) { return [&warmed, name] { warmed.push_back(name); }; };
  auto by_ext = [](std::string_view ext) {
    return [ext](std::string_view path, std::string_view) { return path.ends_with(ext); };
  };
  ASSERT_TRUE(registry.Register("bin", by_ext(".bin"), load, warm("bin")).ok());
  ASSERT_TRUE(registry.Register("txt", by_ext(".txt"), load, warm("txt")).ok());
  ASSERT_TRUE(registry.Register("cold", by_ext(".cold"), load).ok());
  Write("model.txt", "bytes");
  Write("model.cold", "bytes");

  registry.Warm(env_.get(), "bin", "model.txt");     // named: the file is not looked at
  registry.Warm(env_.get(), "auto", "model.txt");    // detected
  registry.Warm(env_.get(), "auto", "model.cold");   // a backend without one
  registry.Warm(env_.get(), "auto", "missing.bin");  // no file: left for Load to report
  registry.Warm(env_.get(), "nothing", "model.txt");  // no such backend
  EXPECT_EQ(warmed, (std::vector<std::string>{"bin", "txt"}));
}

TEST_F(RegistryTest, EmptyRegistry) {
  ModelRegistry registry;
  Write("m.json", kLinearJson);
  EXPECT_EQ(registry.Load(env_.get(), "linear", {"m.json"}).status().message(),
            "model.kind: unknown backend 'linear' (registered: none)");
  EXPECT_EQ(registry.Detect(env_.get(), "m.json").status().message(),
            "model.path 'm.json': cannot tell the model kind from its name or content; set model.kind "
            "(one of: none)");
}

}  // namespace
}  // namespace sluice
