// The one visible table of model backends compiled into this build. A new
// backend adds a row here (optional ones behind their CMake option, e.g.
// `#if SLUICE_WITH_ONNX`) and a case in tests/model_conformance_test.cc.
#include <cassert>

#include "model/fake/fake_model.h"
#include "model/linear/linear_model.h"
#if SLUICE_WITH_ONNX
#include "model/onnx/onnx_model.h"
#endif
#if SLUICE_WITH_XGBOOST
#include "model/xgboost/xgboost_model.h"
#endif
#include "sluice/model.h"

namespace sluice {

void RegisterBuiltinModels(ModelRegistry* registry) {
  struct Backend {
    const char* name;
    ModelRegistry::DetectFn detect;
    ModelRegistry::LoadFn load;
    ModelRegistry::WarmFn warm;
  };
  const Backend backends[] = {
      {"linear", DetectLinearModel, LoadLinearModel, nullptr},
      {"fake", DetectFakeModel, LoadFakeModel, nullptr},
#if SLUICE_WITH_ONNX
      {"onnx", DetectOnnxModel, LoadOnnxModel, WarmOnnxRuntime},
#endif
#if SLUICE_WITH_XGBOOST
      {"xgboost", DetectXgboostModel, LoadXgboostModel, nullptr},
#endif
  };
  for (const Backend& backend : backends) {
    [[maybe_unused]] Status status = registry->Register(backend.name, backend.detect, backend.load, backend.warm);
    assert(status.ok() && "RegisterBuiltinModels called on a registry that already has a builtin");
  }
}

}  // namespace sluice
