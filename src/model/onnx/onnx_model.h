// The ONNX Runtime backend ("onnx"): scores an .onnx model with the ONNX Runtime C++ API.
//
// Inputs: the preprocessed features are a row-major float32 matrix [rows x F]. The model
// takes them either as
//   - ONE tensor [N, F] with a fixed F (float, double or int64); F = num_features and
//     feature_names is empty; a dynamic F is kNotSupported at load (the feature count
//     must be known at preflight), or
//   - SEVERAL inputs (or one) of shape [N, 1] or [N], one feature each, as converters of
//     scikit-learn pipelines write them; feature_names = the input names in model order.
// Element types float, double and int64. Values convert from float32: double exactly;
// int64 with std::llround (nearest, halves away from zero; the integers a float32 column
// holds are exact), and a NaN or out-of-range value for an int64 input makes Predict
// return kInvalidArgument naming the input and row. String inputs are kNotSupported at
// load ("model input 'x' is a string tensor; string inputs are not supported yet").
// The batch dimension N may be dynamic or fixed: a model exported with a fixed batch b
// is run b rows at a time (the last run padded with zero rows, whose outputs are dropped).
// A dynamic batch is run kOnnxRowsPerThread x intra-op threads rows at a time: enough to
// amortize a run's overhead, few enough that its intermediate tensors stay in the cores'
// caches (the bench MLP 20-64-64-1 costs about 9% less CPU in runs of 1024 rows than of
// 4096). Each row's scores do not depend on the rows run with it.
//
// Outputs (ModelInfo::outputs, in model order; only the ones named in
// ModelOptions::requested_outputs when that is non-empty):
//   - tensors [N], [N, k] or [N, d1, d2, ...] (width = product of the non-batch
//     dimensions) of float, double, int64, string (as is), int8/16/32, uint8/16/32 and
//     bool (as int64);
//   - sequences of maps, as ONNX-ML's ZipMap writes classifier probabilities
//     (seq(map(int64|string, float))): a float32 output of width k = number of classes
//     whose element_names are the class labels in the classifier's class order (the ZipMap
//     node's classlabels attribute; the map's own key order, which ORT sorts, when the
//     labels cannot be read). Every row must carry the same keys (else kInternal).
//     Reading a ZipMap costs a small ORT allocation per row: export classifiers without
//     ZipMap (a probabilities tensor) for the fastest path.
// Widths that the model leaves dynamic (and all ZipMap widths) are learned at load from a
// test run on one row of zeros. That run is always made: a model that loads but cannot
// run fails at preflight, not on the first batch.
//
// Session: one Ort::Env for the whole process (a function-local static in the adapter:
// ONNX Runtime wants a single environment, created on first load and kept until exit; its
// log goes to spdlog, warnings at info level, the rest at debug: errors come back as
// Status). ONNX Runtime's telemetry (on by default in its Linux builds since 1.29: a device id
// and an event cache under ~/.cache, a debug log in /tmp, uploads to Microsoft) stays off:
// ORT_DISABLE_TELEMETRY=1 is set before the environment is made, unless the user set the
// variable. Per model: intra-op threads = ModelOptions::threads (>= 1), inter-op 1,
// spinning off for both pools, ORT_ENABLE_ALL graph optimizations, sequential execution.
//
// Batch timeout (ModelOptions::batch_timeout_ms > 0; 0 = none, negative = kInvalidArgument
// "execution.batch_timeout: must not be negative, got -5 ms"): a Predict / PredictWithText
// call still running batch_timeout_ms after it started is stopped through ONNX Runtime's
// RunOptions::SetTerminate and returns kTimeout (transient), one line naming the model:
//   "onnx model 'x.onnx': execution.batch_timeout of 50 ms exceeded scoring 8192 rows; the
//    run was stopped"
// Its outputs are then unspecified. ORT checks the flag before each node of the graph, so a
// run stops within one node's time of its deadline (a single node that runs long is not
// interrupted). Every call with a timeout has its own Ort::RunOptions, so stopping one call
// leaves concurrent ones running, and the session stays usable: the next call runs as usual.
// One watchdog thread per model with a timeout (started at load, joined by the destructor)
// sleeps on a condition variable until the nearest deadline; a call that ends in time costs
// a map insertion and removal under a mutex and no thread of its own. Deadlines are on the
// steady clock, not Env's: a timer that interrupts a running call needs real time. The test
// run at load has no deadline.
//
// Thread-safety: one session is shared by all callers (OrtSession::Run is thread-safe);
// per-call buffers are thread_local. info().concurrent_predict = true.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

// Rows per run and intra-op thread of a model with a dynamic batch dimension (above).
inline constexpr size_t kOnnxRowsPerThread = 1024;

// Registry detection: a ".onnx" path, or a head that looks like an ONNX ModelProto
// (LooksLikeOnnxModel in onnx_proto.h).
bool DetectOnnxModel(std::string_view path, std::string_view head);

// Reads options.path through env and opens a session on its bytes.
// Errors, one line each, starting with the key:
//   kNotFound     "model.path: no such file 'x.onnx'"
//   kCorruption   "model.path 'x.onnx': not a valid ONNX model (<ORT's first line>)"
//                 for a truncated file, a non-model (e.g. a CSV renamed .onnx), a
//                 malformed graph
//   kNotSupported "model.path 'x.onnx': not supported by ONNX Runtime 1.29.0: <ORT>"
//                 for an unknown operator or opset, and for inputs/outputs outside the
//                 contract above ("model.path 'x.onnx': model input 'x' ...")
//   kInvalidArgument for options.threads < 1, options.batch_timeout_ms < 0, or a requested
//                 output the model lacks
//                 ("model.outputs: the model 'x.onnx' has no output 'y' (outputs: a, b)")
//   kNotSupported when the ONNX Runtime library found at run time is too old for the
//                 API version this build was compiled against.
Result<std::unique_ptr<Model>> LoadOnnxModel(Env* env, const ModelOptions& options);

// Makes the process's ONNX Runtime environment (about 10 ms: the runtime registers its
// operator schemas) if no load has yet; a load made meanwhile waits for it.
void WarmOnnxRuntime();

// As LoadOnnxModel, from the file's bytes already read (options.path names it in messages).
Result<std::unique_ptr<Model>> LoadOnnxModelFromBytes(std::string_view bytes, const ModelOptions& options);

}  // namespace sluice
