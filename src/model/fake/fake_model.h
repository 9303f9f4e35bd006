// A deterministic fake model for tests: cheap, sensitive to every feature and to
// row content, with injectable failures and delay.
//
// Output "score" (float32, width k): for row x of F features,
//   score[j] = frac(sum_i x_i * (i + 1) * 0.001 + j * 0.1),   frac(v) = v - floor(v),
// computed in double, so every score is in [0, 1). Non-finite features (NaN,
// +-inf) count as 0, so a row with NaN scores like the same row with 0 there.
//
// File form (kind "fake"; detected as a ".json" file containing "sluice_fake",
// put that key first):
//   {"sluice_fake": 1,
//    "num_features": F,            // required, >= 1
//    "outputs": k,                 // default 1
//    "fail_calls": n,              // default 0: the first n Predict calls fail
//    "fail_code": "unavailable",   // their code, a StatusCodeName (default unavailable)
//    "delay_ms": d}                // default 0: each Predict sleeps d ms through the Env
//
// Thread-safety: Predict is safe for concurrent use (info().concurrent_predict is
// true); the failure counter is atomic, so exactly n calls fail however many
// threads call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

struct FakeModelOptions {
  size_t num_features = 1;  // F, >= 1
  size_t outputs = 1;       // k, width of "score", >= 1
  // The first `fail_calls` Predict calls (with a valid input width) return
  // Status(fail_code, "fake model: injected failure"); later calls succeed.
  int64_t fail_calls = 0;
  StatusCode fail_code = StatusCode::kUnavailable;  // not kOk
  int64_t delay_ms = 0;     // slept through env at the start of every Predict
  Env* env = nullptr;       // borrowed, must outlive the model; required when delay_ms > 0
};

// kInvalidArgument "fake model: ..." for options out of range.
Result<std::unique_ptr<Model>> MakeFakeModel(const FakeModelOptions& options);

// Registry detection: a ".json" path whose first bytes contain "sluice_fake".
bool DetectFakeModel(std::string_view path, std::string_view head);

// Reads options.path through env (env is also the one slept on; it must outlive
// the model). Errors name the file and key, e.g. "f.json: missing key 'num_features'".
Result<std::unique_ptr<Model>> LoadFakeModel(Env* env, const ModelOptions& options);

}  // namespace sluice
