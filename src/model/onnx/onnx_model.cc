#include "model/onnx/onnx_model.h"

#include <onnxruntime_cxx_api.h>
#include <onnxruntime_session_options_config_keys.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "model/json_model_file.h"
#include "model/onnx/onnx_proto.h"

#if defined(__SANITIZE_ADDRESS__)
// ONNX Runtime 1.29 leaks 14 bytes inside the library each time an OrtEnv is made (seen
// with a bare Ort::Env under LeakSanitizer). Suppressed here, where the library is used,
// so sanitizer builds of every binary that links the engine stay clean.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }
#endif

namespace sluice {

namespace {

// ---- errors -------------------------------------------------------------------

// ORT's message as one line. Some messages start with the throwing site,
// "/src/onnxruntime/core/x.h:46 void onnxruntime::Fn(args) Text": that prefix goes.
std::string OneLine(std::string_view message) {
  message = message.substr(0, message.find('\n'));
  while (!message.empty() && (message.back() == ' ' || message.back() == '\r')) message.remove_suffix(1);
  constexpr std::string_view kFatal = "Fatal error: ";  // says nothing the Status code does not
  if (message.substr(0, kFatal.size()) == kFatal) message.remove_prefix(kFatal.size());
  if (!message.empty() && message.front() == '/') {
    const size_t colon = message.find(':');
    const size_t open = message.find('(');
    if (colon != std::string_view::npos && open != std::string_view::npos && colon < open) {
      int depth = 0;
      for (size_t i = open; i < message.size(); ++i) {
        if (message[i] == '(') ++depth;
        if (message[i] == ')' && --depth == 0) {
          std::string_view rest = message.substr(i + 1);
          while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
          if (!rest.empty()) message = rest;
          break;
        }
      }
    }
  }
  return std::string(message);
}

bool Contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

// Messages of ORT that mean "a valid model using something this runtime lacks".
// At load ORT reports unknown operators and future opsets as a plain ORT_FAIL, so
// its text is all there is to tell kNotSupported from kCorruption; both codes are
// permanent, so retries do not depend on this.
bool SaysNotSupported(std::string_view message) {
  return Contains(message, "is not a registered function/op") || Contains(message, "opset") ||
         Contains(message, "Opset") || Contains(message, "nsupported") || Contains(message, "not supported") ||
         Contains(message, "not implemented") || Contains(message, "NOT_IMPLEMENTED");
}

std::string PathKey(const std::string& path) { return "model.path '" + path + "'"; }

Status LoadError(const std::string& path, OrtErrorCode code, std::string_view what) {
  const std::string message = OneLine(what);
  if (code == ORT_NOT_IMPLEMENTED || SaysNotSupported(message)) {
    return Status::NotSupported(PathKey(path) + ": not supported by ONNX Runtime " + Ort::GetVersionString() +
                                ": " + message);
  }
  return Status::Corruption(PathKey(path) + ": not a valid ONNX model (" + message + ")");
}

// Errors while scoring carry no path; Predict adds "onnx model 'x.onnx': " once.
Status RunError(OrtErrorCode code, std::string_view what) {
  const std::string message = "run failed: " + OneLine(what);
  if (code == ORT_NOT_IMPLEMENTED) return Status::NotSupported(message);
  return Status::InvalidArgument(message);
}

// ---- the process-wide environment -------------------------------------------

void ORT_API_CALL ForwardOrtLog(void* /*param*/, OrtLoggingLevel severity, const char* /*category*/,
                                const char* /*logid*/, const char* /*code_location*/, const char* message) {
  // Errors also come back to the caller as exceptions (and then as Status): debug only.
  if (severity == ORT_LOGGING_LEVEL_WARNING) {
    spdlog::info("onnxruntime: {}", message);
  } else {
    spdlog::debug("onnxruntime: {}", message);
  }
}

struct OrtGlobal {
  Status status;
  std::unique_ptr<Ort::Env> env;
};

// ONNX Runtime wants one OrtEnv per process; it is made on first use and lives until exit
// (after every session, which models own).
const OrtGlobal& Global() {
  static const OrtGlobal global = [] {
    OrtGlobal g;
    const OrtApiBase* base = OrtGetApiBase();
    if (base->GetApi(ORT_API_VERSION) == nullptr) {
      g.status = Status::NotSupported(std::string("the ONNX Runtime library is version ") + base->GetVersionString() +
                                      ", older than this build needs (C API version " +
                                      std::to_string(ORT_API_VERSION) + ")");
      return g;
    }
    // Telemetry is read from the environment when the OrtEnv is made; the runtime
    // switch (DisableTelemetryEvents) comes too late for what it does at creation.
    // Not overwritten: a user may opt in. This runs once, before any session, on
    // the thread that warms or loads first (beside the job's planning, or on a
    // worker with model.load: lazy); glibc's first setenv of a variable leaves the
    // old environment array in place, so a concurrent getenv still reads a valid one.
    setenv("ORT_DISABLE_TELEMETRY", "1", /*overwrite=*/0);
    try {
      g.env = std::make_unique<Ort::Env>(ORT_LOGGING_LEVEL_WARNING, "sluice", ForwardOrtLog, nullptr);
    } catch (const Ort::Exception& e) {
      g.status = Status::Internal("cannot create the ONNX Runtime environment: " + OneLine(e.what()));
    }
    return g;
  }();
  return global;
}

// ---- types --------------------------------------------------------------------

const char* OrtTypeName(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "double";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return "uint32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return "uint64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    default: return "an unusual element type";
  }
}

const char* OnnxTypeName(ONNXType type) {
  switch (type) {
    case ONNX_TYPE_TENSOR: return "a tensor";
    case ONNX_TYPE_SEQUENCE: return "a sequence";
    case ONNX_TYPE_MAP: return "a map";
    case ONNX_TYPE_SPARSETENSOR: return "a sparse tensor";
    case ONNX_TYPE_OPTIONAL: return "an optional";
    default: return "of an unknown kind";
  }
}

// The column type an output tensor element becomes; false when unsupported.
bool OutputColumnType(ONNXTensorElementDataType type, DataType* out) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: *out = DataType::kFloat32; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: *out = DataType::kFloat64; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: *out = DataType::kString; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: *out = DataType::kInt64; return true;
    default: return false;
  }
}

// Bytes per element of a region in Scratch::inputs; 0 for strings (ORT owns those).
size_t InputElementSize(ONNXTensorElementDataType type) {
  if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) return 0;
  return type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? sizeof(float) : sizeof(double);  // double, int64: 8
}

std::string DescribeShape(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return out + "]";
}

// ---- per-thread buffers -------------------------------------------------------

// Reused by every Predict on this thread (a thread runs one Predict at a time).
struct Scratch {
  std::vector<std::byte> inputs;  // converted / padded input tensors
  std::string chars;              // string tensor contents
  std::vector<size_t> offsets;    // string tensor element offsets
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

constexpr size_t kRegionAlign = 64;

size_t AlignUp(size_t n) { return (n + kRegionAlign - 1) / kRegionAlign * kRegionAlign; }

// Copies `count` floats read `stride` apart into `out` as T, then zero-fills `out` up to
// `total`. For int64: std::llround; returns false (and the index in *bad) for NaN or a
// value outside int64.
template <typename T>
bool ConvertValues(const float* src, size_t stride, size_t count, size_t total, T* out, size_t* bad) {
  for (size_t i = 0; i < count; ++i) {
    const float v = src[i * stride];
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!(std::fabs(v) < 0x1p63f)) {
        *bad = i;
        return false;
      }
      out[i] = static_cast<int64_t>(std::llround(v));
    } else {
      out[i] = static_cast<T>(v);
    }
  }
  std::fill(out + count, out + total, T{0});
  return true;
}

// ---- the batch timeout --------------------------------------------------------

// Stops calls that run past execution.batch_timeout: one thread per model that has a
// timeout, asleep on a condition variable until the nearest armed deadline, when it sets
// the terminate flag of that call's RunOptions. A call costs an insertion into a map and a
// removal under a mutex, and wakes the thread only when its deadline is nearer than the
// one the thread sleeps until (in practice: when no other call is armed). Thread-safe.
class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  // One call's deadline: armed by the constructor, disarmed by Disarm or the destructor,
  // which must both come before `options` is destroyed.
  class Deadline {
   public:
    Deadline(Watchdog* watchdog, OrtRunOptions* options) : watchdog_(watchdog), options_(options) {
      watchdog_->Arm(this);
    }
    ~Deadline() { (void)Disarm(); }
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    // Takes the deadline back (once); true when it had passed and the run was told to stop.
    bool Disarm() { return watchdog_->Disarm(this); }

   private:
    friend class Watchdog;
    Watchdog* const watchdog_;
    OrtRunOptions* const options_;
    std::multimap<Clock::time_point, Deadline*>::iterator at_;  // guarded by mu_ while armed_
    bool armed_ = false;                                        // guarded by mu_
    bool fired_ = false;                                        // guarded by mu_
  };

  explicit Watchdog(std::chrono::milliseconds timeout) : timeout_(timeout), thread_([this] { Watch(); }) {}

  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Arm(Deadline* deadline) {
    const Clock::time_point at = Clock::now() + timeout_;
    bool nearer = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      deadline->at_ = armed_.emplace(at, deadline);
      deadline->armed_ = true;
      nearer = at < sleeping_until_;
      if (nearer) sleeping_until_ = at;
    }
    if (nearer) wake_.notify_one();
  }

  bool Disarm(Deadline* deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    if (deadline->armed_) {
      armed_.erase(deadline->at_);
      deadline->armed_ = false;
    }
    return deadline->fired_;
  }

  void Watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      const Clock::time_point now = Clock::now();
      while (!armed_.empty() && armed_.begin()->first <= now) {
        Deadline* deadline = armed_.begin()->second;
        // Cannot fail for a valid RunOptions; a status would only be released.
        if (OrtStatus* status = Ort::GetApi().RunOptionsSetTerminate(deadline->options_)) {
          Ort::GetApi().ReleaseStatus(status);
        }
        deadline->fired_ = true;
        deadline->armed_ = false;
        armed_.erase(armed_.begin());
      }
      // A deadline disarmed early still wakes the thread once, at its time: cheaper than
      // a wake-up for every call that ends in time.
      sleeping_until_ = armed_.empty() ? Clock::time_point::max() : armed_.begin()->first;
      if (armed_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, sleeping_until_);
      }
    }
  }

  const Clock::duration timeout_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, Deadline*> armed_;     // guarded by mu_
  Clock::time_point sleeping_until_ = Clock::time_point::max();  // guarded by mu_
  bool stop_ = false;                                             // guarded by mu_
  std::thread thread_;  // last: starts once the fields above exist
};

// ---- the model ----------------------------------------------------------------

struct InputSlot {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  bool rank1 = false;  // [N] rather than [N, width]
};

struct OutputSlot {
  std::string name;
  bool zipmap = false;
  // Tensor element type, or the ZipMap key type (int64 or string).
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  std::vector<int64_t> declared_shape;  // tensors: as the model declares it (-1 = dynamic)
  // ZipMap, learned from the test run: the keys of a row's map in map order, and where
  // map entry j goes among the width elements (class order).
  std::vector<std::string> string_keys;
  std::vector<int64_t> int_keys;
  std::vector<size_t> position;
};

class OnnxModel final : public Model {
 public:
  OnnxModel(std::string path, Ort::Session session, ModelInfo info, std::vector<InputSlot> inputs,
            std::vector<OutputSlot> outputs, size_t fixed_batch, size_t rows_per_run, int64_t batch_timeout_ms)
      : path_(std::move(path)),
        session_(std::move(session)),
        info_(std::move(info)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        fixed_batch_(fixed_batch),
        rows_per_run_(fixed_batch ? fixed_batch : rows_per_run),
        batch_timeout_ms_(batch_timeout_ms),
        memory_info_(Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeCPU)) {
    for (const InputSlot& slot : inputs_) input_names_.push_back(slot.name.c_str());
    for (const OutputSlot& slot : outputs_) output_names_.push_back(slot.name.c_str());
  }

  // Starts the watchdog (after the test run at load, which has no deadline).
  Status StartWatchdog() {
    if (batch_timeout_ms_ == 0) return Status::OK();
    // Deadlines are steady-clock nanoseconds: a century keeps now + timeout from overflowing
    // and is never reached.
    constexpr int64_t kCenturyMs = int64_t{100} * 365 * 24 * 3600 * 1000;
    try {
      watchdog_ = std::make_unique<Watchdog>(std::chrono::milliseconds(std::min(batch_timeout_ms_, kCenturyMs)));
    } catch (const std::system_error& e) {
      return Status::ResourceExhausted(PathKey(path_) + ": cannot start the thread that enforces "
                                       "execution.batch_timeout: " + e.what());
    }
    return Status::OK();
  }

  const ModelInfo& info() const override { return info_; }

  Status Predict(const float* features, size_t rows, size_t cols, std::vector<OutputTensor>* outputs) override {
    return PredictWithText(features, rows, cols, {}, outputs);
  }

  Status PredictWithText(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
                         std::vector<OutputTensor>* outputs) override {
    if (cols != info_.num_features) {
      return Status::InvalidArgument("onnx model '" + path_ + "': input has " + std::to_string(cols) +
                                     " features per row, expected " + std::to_string(info_.num_features));
    }
    RETURN_IF_ERROR(CheckText(text, rows));
    PrepareOutputs(rows, outputs);
    if (!watchdog_) return Score(features, rows, cols, text, Ort::RunOptions{nullptr}, outputs);
    // Each call its own RunOptions: terminating one call's run leaves the others running.
    Ort::RunOptions run_options{nullptr};
    try {
      run_options = Ort::RunOptions();
    } catch (const Ort::Exception& e) {
      return RunError(e.GetOrtErrorCode(), e.what()).WithContext("onnx model '" + path_ + "'");
    }
    Watchdog::Deadline deadline(watchdog_.get(), run_options);
    Status status = Score(features, rows, cols, text, run_options, outputs);
    if (deadline.Disarm()) {
      return Status::Timeout("onnx model '" + path_ + "': execution.batch_timeout of " +
                             std::to_string(batch_timeout_ms_) + " ms exceeded scoring " + std::to_string(rows) +
                             " rows; the run was stopped");
    }
    return status;
  }

  // Scores the rows, rows_per_run_ at a time, with `run_options`.
  Status Score(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
               const Ort::RunOptions& run_options, std::vector<OutputTensor>* outputs) {
    for (size_t first = 0; first < rows; first += rows_per_run_) {
      const size_t n = std::min(rows_per_run_, rows - first);
      Result<std::vector<Ort::Value>> values = Run(features + first * cols, n, first, &text, run_options);
      if (!values.ok()) return values.status().WithContext("onnx model '" + path_ + "'");
      for (size_t o = 0; o < outputs_.size(); ++o) {
        Status status = CopyOutput(o, (*values)[o], n, first, &(*outputs)[o]);
        if (!status.ok()) return status.WithContext("onnx model '" + path_ + "'");
      }
    }
    return Status::OK();
  }

  // The test run at load: scores rows of zeros (two, or one fixed batch) and learns the
  // output widths and ZipMap keys.
  Status Probe(const OnnxProtoFacts& facts) {
    const size_t rows = fixed_batch_ ? fixed_batch_ : 2;
    const std::vector<float> zeros(rows * info_.num_features, 0.0f);
    Result<std::vector<Ort::Value>> values = Run(zeros.data(), rows, 0, nullptr, Ort::RunOptions{nullptr});
    if (!values.ok()) {
      const Status& st = values.status();
      return Status(st.code() == StatusCode::kNotSupported ? st.code() : StatusCode::kCorruption,
                    PathKey(path_) + ": a test run on " + std::to_string(rows) + " rows of zeros: " + st.message());
    }
    try {
      for (size_t o = 0; o < outputs_.size(); ++o) {
        RETURN_IF_ERROR(LearnOutput(facts, (*values)[o], rows, &outputs_[o], &info_.outputs[o]));
      }
    } catch (const Ort::Exception& e) {
      return Status::Corruption(PathKey(path_) + ": reading the outputs of a test run failed: " + OneLine(e.what()));
    }
    return Status::OK();
  }

 private:
  // Each string input needs its text column, and only string inputs may have one.
  Status CheckText(const std::vector<const Column*>& text, size_t rows) const {
    if (!text.empty() && text.size() != inputs_.size()) {
      return Status::InvalidArgument("onnx model '" + path_ + "': " + std::to_string(text.size()) +
                                     " text entries for " + std::to_string(inputs_.size()) + " inputs");
    }
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Column* column = text.empty() ? nullptr : text[i];
      const bool is_string = inputs_[i].type == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
      const std::string what = "onnx model '" + path_ + "': input '" + inputs_[i].name + "' (feature " +
                               std::to_string(i) + ")";
      if (is_string && column == nullptr) return Status::InvalidArgument(what + " is a string tensor and needs text");
      if (!is_string && column != nullptr) {
        return Status::InvalidArgument(what + " is not a string tensor but was given text");
      }
      if (column != nullptr && (column->type() != DataType::kString || column->size() < rows)) {
        return Status::InvalidArgument(what + ": the text column is not a string column of " +
                                       std::to_string(rows) + " values");
      }
    }
    return Status::OK();
  }

  // Builds the input tensors for rows [first, first + n) and runs the session; with a
  // fixed batch the rows are padded with zeros (empty strings) to fixed_batch_. `text`
  // (checked by CheckText) gives the string inputs; null for the test run, whose string
  // inputs are empty strings.
  Result<std::vector<Ort::Value>> Run(const float* x, size_t n, size_t first, const std::vector<const Column*>* text,
                                      const Ort::RunOptions& run_options) {
    const size_t cols = info_.num_features;
    const size_t run_rows = fixed_batch_ ? fixed_batch_ : n;
    const bool matrix = inputs_.size() == 1 && !inputs_[0].rank1;
    Scratch& scratch = ThreadScratch();
    std::vector<Ort::Value> values;  // one small allocation per call
    values.reserve(inputs_.size());
    try {
      if (matrix && inputs_[0].type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && run_rows == n) {
        // The features are already the tensor: no copy (ORT does not write inputs).
        const int64_t shape[2] = {static_cast<int64_t>(run_rows), static_cast<int64_t>(cols)};
        values.push_back(Ort::Value::CreateTensor(memory_info_, const_cast<float*>(x), run_rows * cols * sizeof(float),
                                                  shape, 2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT));
      } else {
        // Matrix: one region of run_rows * cols values; columns: one region of run_rows per input.
        const size_t per_region = matrix ? run_rows * cols : run_rows;
        std::vector<size_t> offsets(inputs_.size());
        size_t total = 0;
        for (size_t i = 0; i < inputs_.size(); ++i) {
          offsets[i] = total;
          total += AlignUp(per_region * InputElementSize(inputs_[i].type));
        }
        if (scratch.inputs.size() < total) scratch.inputs.resize(total);
        for (size_t i = 0; i < inputs_.size(); ++i) {
          const InputSlot& slot = inputs_[i];
          if (slot.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
            const Column* column = text == nullptr || text->empty() ? nullptr : (*text)[i];
            values.push_back(StringTensor(slot, column, n, first, run_rows));
            continue;
          }
          std::byte* region = scratch.inputs.data() + offsets[i];
          const float* src = matrix ? x : x + i;
          const size_t stride = matrix ? 1 : cols;
          const size_t count = matrix ? n * cols : n;
          size_t bad = 0;
          bool ok = true;
          switch (slot.type) {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
              ok = ConvertValues(src, stride, count, per_region, reinterpret_cast<float*>(region), &bad);
              break;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
              ok = ConvertValues(src, stride, count, per_region, reinterpret_cast<double*>(region), &bad);
              break;
            default:
              ok = ConvertValues(src, stride, count, per_region, reinterpret_cast<int64_t*>(region), &bad);
              break;
          }
          if (!ok) {
            const size_t row = first + (matrix ? bad / cols : bad);
            const size_t col = matrix ? bad % cols : i;
            const float v = x[(row - first) * cols + col];
            return Status::InvalidArgument("input '" + slot.name + "' (feature " +
                                           std::to_string(col) + ") is int64 but row " + std::to_string(row) +
                                           " of the batch holds " + (std::isnan(v) ? "NaN" : "a value out of range"));
          }
          int64_t shape[2] = {static_cast<int64_t>(run_rows), static_cast<int64_t>(matrix ? cols : 1)};
          values.push_back(Ort::Value::CreateTensor(memory_info_, region, per_region * InputElementSize(slot.type),
                                                    shape, slot.rank1 ? 1 : 2, slot.type));
        }
      }
      return session_.Run(run_options, input_names_.data(), values.data(), values.size(),
                          output_names_.data(), output_names_.size());
    } catch (const Ort::Exception& e) {
      return RunError(e.GetOrtErrorCode(), e.what());
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory scoring " + std::to_string(n) + " rows");
    }
  }

  // A string tensor [run_rows] or [run_rows, 1] of rows [first, first + n) of `column`
  // (empty strings when null, and for the padding rows). ORT owns the strings.
  Ort::Value StringTensor(const InputSlot& slot, const Column* column, size_t n, size_t first, size_t run_rows) {
    Ort::AllocatorWithDefaultOptions allocator;
    const int64_t shape[2] = {static_cast<int64_t>(run_rows), 1};
    Ort::Value value = Ort::Value::CreateTensor(allocator, shape, slot.rank1 ? 1 : 2,
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    for (size_t row = 0; row < run_rows; ++row) {
      const std::string_view s = column != nullptr && row < n ? column->StringAt(first + row) : std::string_view();
      char* buffer = value.GetResizedStringTensorElementBuffer(row, s.size());
      if (!s.empty()) std::memcpy(buffer, s.data(), s.size());
    }
    return value;
  }

  void PrepareOutputs(size_t rows, std::vector<OutputTensor>* outputs) const {
    outputs->resize(outputs_.size());
    for (size_t o = 0; o < outputs_.size(); ++o) {
      const ModelOutputInfo& out_info = info_.outputs[o];
      OutputTensor& tensor = (*outputs)[o];
      tensor.width = out_info.width;
      if (tensor.values.type() != out_info.type) tensor.values = Column(out_info.type);
      if (out_info.type == DataType::kString) {
        tensor.values.Clear();  // filled by appending
      } else {
        tensor.values.Resize(rows * out_info.width);
      }
    }
  }

  static Status ShapeError(const OutputSlot& slot, const std::vector<int64_t>& shape, size_t run_rows,
                           size_t width) {
    return Status::NotSupported("output '" + slot.name + "' has shape " + DescribeShape(shape) + " for a run of " +
                                std::to_string(run_rows) + " rows, expected " + std::to_string(run_rows) +
                                " rows of " + std::to_string(width) + " values (learned at load)");
  }

  // Copies rows [0, n) of output `o` of a run into rows [first, first + n) of `tensor`.
  Status CopyOutput(size_t o, const Ort::Value& value, size_t n, size_t first, OutputTensor* tensor) const {
    const OutputSlot& slot = outputs_[o];
    const size_t width = info_.outputs[o].width;
    const size_t run_rows = fixed_batch_ ? fixed_batch_ : n;
    try {
      if (slot.zipmap) return CopyZipMap(slot, value, n, first, width, tensor);
      if (!value.IsTensor()) return Status::Internal("output '" + slot.name + "' is not a tensor");
      const Ort::TensorTypeAndShapeInfo shape_info = value.GetTensorTypeAndShapeInfo();
      const std::vector<int64_t> shape = shape_info.GetShape();
      size_t per_row = 1;
      for (size_t d = 1; d < shape.size(); ++d) per_row *= static_cast<size_t>(shape[d]);
      if (shape.empty() || shape[0] != static_cast<int64_t>(run_rows) || per_row != width ||
          shape_info.GetElementType() != slot.element) {
        return ShapeError(slot, shape, run_rows, width);
      }
      const size_t count = n * width;
      const size_t at = first * width;
      switch (slot.element) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
          std::memcpy(tensor->values.mutable_float32s().data() + at, value.GetTensorData<float>(), count * sizeof(float));
          break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
          std::memcpy(tensor->values.mutable_float64s().data() + at, value.GetTensorData<double>(),
                      count * sizeof(double));
          break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
          std::memcpy(tensor->values.mutable_int64s().data() + at, value.GetTensorData<int64_t>(),
                      count * sizeof(int64_t));
          break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: Widen<int32_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: Widen<int16_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: Widen<int8_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: Widen<uint32_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: Widen<uint16_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: Widen<uint8_t>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: Widen<bool>(value, count, at, tensor); break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: {
          Scratch& scratch = ThreadScratch();
          const size_t elements = shape_info.GetElementCount();
          const size_t length = value.GetStringTensorDataLength();
          scratch.chars.resize(length);
          scratch.offsets.resize(elements);
          value.GetStringTensorContent(scratch.chars.data(), length, scratch.offsets.data(), elements);
          for (size_t i = 0; i < count; ++i) {
            const size_t begin = scratch.offsets[i];
            const size_t end = i + 1 < elements ? scratch.offsets[i + 1] : length;
            tensor->values.AppendString(std::string_view(scratch.chars).substr(begin, end - begin));
          }
          break;
        }
        default:
          return Status::Internal("output '" + slot.name + "' has element type " + OrtTypeName(slot.element));
      }
      return Status::OK();
    } catch (const Ort::Exception& e) {
      return RunError(e.GetOrtErrorCode(), e.what());
    }
  }

  template <typename T>
  static void Widen(const Ort::Value& value, size_t count, size_t at, OutputTensor* tensor) {
    const T* src = value.GetTensorData<T>();
    int64_t* dst = tensor->values.mutable_int64s().data() + at;
    for (size_t i = 0; i < count; ++i) dst[i] = static_cast<int64_t>(src[i]);
  }

  // Copies a ZipMap's rows, each map's values put in class order.
  Status CopyZipMap(const OutputSlot& slot, const Ort::Value& value, size_t n, size_t first, size_t width,
                    OutputTensor* tensor) const {
    const size_t run_rows = fixed_batch_ ? fixed_batch_ : n;
    if (value.GetCount() != run_rows) {
      return Status::NotSupported("output '" + slot.name + "' has " +
                                  std::to_string(value.GetCount()) + " maps for a run of " +
                                  std::to_string(run_rows) + " rows");
    }
    Ort::AllocatorWithDefaultOptions allocator;
    float* out = tensor->values.mutable_float32s().data() + first * width;
    for (size_t row = 0; row < n; ++row) {
      const Ort::Value map = value.GetValue(static_cast<int>(row), allocator);
      const Ort::Value keys = map.GetValue(0, allocator);
      const Ort::Value vals = map.GetValue(1, allocator);
      if (!KeysMatch(slot, keys)) {
        return Status::Internal("output '" + slot.name + "': row " + std::to_string(first + row) +
                                " of the batch has other map keys than the test run at load");
      }
      const Ort::TensorTypeAndShapeInfo vals_info = vals.GetTensorTypeAndShapeInfo();
      float* y = out + row * width;
      if (vals_info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE) {
        const double* v = vals.GetTensorData<double>();
        for (size_t j = 0; j < width; ++j) y[slot.position[j]] = static_cast<float>(v[j]);
      } else {
        const float* v = vals.GetTensorData<float>();
        for (size_t j = 0; j < width; ++j) y[slot.position[j]] = v[j];
      }
    }
    return Status::OK();
  }

  bool KeysMatch(const OutputSlot& slot, const Ort::Value& keys) const {
    const size_t count = keys.GetTensorTypeAndShapeInfo().GetElementCount();
    if (slot.element == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      if (count != slot.int_keys.size()) return false;
      return std::equal(slot.int_keys.begin(), slot.int_keys.end(), keys.GetTensorData<int64_t>());
    }
    if (count != slot.string_keys.size()) return false;
    Scratch& scratch = ThreadScratch();
    const size_t length = keys.GetStringTensorDataLength();
    scratch.chars.resize(length);
    scratch.offsets.resize(count);
    keys.GetStringTensorContent(scratch.chars.data(), length, scratch.offsets.data(), count);
    for (size_t j = 0; j < count; ++j) {
      const size_t end = j + 1 < count ? scratch.offsets[j + 1] : length;
      if (std::string_view(scratch.chars).substr(scratch.offsets[j], end - scratch.offsets[j]) != slot.string_keys[j]) {
        return false;
      }
    }
    return true;
  }

  // From the test run: width (and for ZipMap the keys and their class order).
  Status LearnOutput(const OnnxProtoFacts& facts, const Ort::Value& value, size_t run_rows, OutputSlot* slot,
                     ModelOutputInfo* out_info) {
    if (!slot->zipmap) {
      const Ort::TensorTypeAndShapeInfo shape_info = value.GetTensorTypeAndShapeInfo();
      const std::vector<int64_t> shape = shape_info.GetShape();
      if (shape.empty() || shape[0] != static_cast<int64_t>(run_rows)) {
        return Status::NotSupported(PathKey(path_) + ": output '" + slot->name + "' has shape " +
                                    DescribeShape(shape) + " for " + std::to_string(run_rows) +
                                    " rows; Sluice needs the rows as its first dimension");
      }
      size_t width = 1;
      for (size_t d = 1; d < shape.size(); ++d) width *= static_cast<size_t>(shape[d]);
      const std::vector<int64_t>& declared = slot->declared_shape;
      bool matches = declared.empty() || declared.size() == shape.size();
      for (size_t d = 1; matches && d < declared.size(); ++d) matches = declared[d] < 0 || declared[d] == shape[d];
      if (!matches || width == 0) {
        return Status::NotSupported(PathKey(path_) + ": output '" + slot->name + "' is declared " +
                                    DescribeShape(declared) + " but a test run gave " + DescribeShape(shape));
      }
      out_info->width = width;
      return Status::OK();
    }
    if (value.GetCount() != run_rows || run_rows == 0) {
      return Status::NotSupported(PathKey(path_) + ": output '" + slot->name + "' has " +
                                  std::to_string(value.GetCount()) + " maps for " + std::to_string(run_rows) +
                                  " rows; Sluice needs one map per row");
    }
    Ort::AllocatorWithDefaultOptions allocator;
    const Ort::Value map = value.GetValue(0, allocator);
    const Ort::Value keys = map.GetValue(0, allocator);
    const Ort::Value vals = map.GetValue(1, allocator);
    const size_t count = keys.GetTensorTypeAndShapeInfo().GetElementCount();
    const ONNXTensorElementDataType value_type = vals.GetTensorTypeAndShapeInfo().GetElementType();
    if (count == 0 || (value_type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
                       value_type != ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE)) {
      return Status::NotSupported(PathKey(path_) + ": output '" + slot->name +
                                  "' is a sequence of maps without float values");
    }
    std::vector<std::string> names(count);
    if (slot->element == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      const int64_t* k = keys.GetTensorData<int64_t>();
      slot->int_keys.assign(k, k + count);
      for (size_t j = 0; j < count; ++j) names[j] = std::to_string(k[j]);
    } else {
      for (size_t j = 0; j < count; ++j) names[j] = keys.GetStringTensorElement(j);
      slot->string_keys = names;
    }
    // Class order from the ZipMap node when its labels are exactly this map's keys.
    slot->position.resize(count);
    for (size_t j = 0; j < count; ++j) slot->position[j] = j;
    out_info->element_names = names;
    if (auto labels = facts.zipmap_labels.find(slot->name); labels != facts.zipmap_labels.end()) {
      std::vector<size_t> position(count);
      bool all_found = labels->second.size() == count;
      for (size_t j = 0; all_found && j < count; ++j) {
        auto it = std::find(labels->second.begin(), labels->second.end(), names[j]);
        all_found = it != labels->second.end();
        if (all_found) position[j] = static_cast<size_t>(it - labels->second.begin());
      }
      if (all_found) {
        slot->position = std::move(position);
        out_info->element_names = labels->second;
      }
    }
    out_info->width = count;
    return Status::OK();
  }

  const std::string path_;
  Ort::Session session_;
  ModelInfo info_;
  std::vector<InputSlot> inputs_;
  std::vector<OutputSlot> outputs_;
  const size_t fixed_batch_;  // 0 = dynamic batch dimension
  const size_t rows_per_run_;  // the fixed batch, or kOnnxRowsPerThread x intra-op threads
  const int64_t batch_timeout_ms_;  // 0 = none
  Ort::MemoryInfo memory_info_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  std::unique_ptr<Watchdog> watchdog_;  // set when batch_timeout_ms_ > 0
};

DataType InputColumnType(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType::kFloat64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType::kString;
    default: return DataType::kFloat32;
  }
}

// Reads the inputs; sets the layout facts in `info` and the batch size in *fixed_batch.
Status ReadInputs(const std::string& path, const Ort::Session& session, ModelInfo* info,
                  std::vector<InputSlot>* slots, size_t* fixed_batch) {
  Ort::AllocatorWithDefaultOptions allocator;
  const size_t count = session.GetInputCount();
  if (count == 0) return Status::NotSupported(PathKey(path) + ": the model has no inputs");
  int64_t batch = -1;
  for (size_t i = 0; i < count; ++i) {
    InputSlot slot;
    slot.name = session.GetInputNameAllocated(i, allocator).get();
    const std::string what = PathKey(path) + ": model input '" + slot.name + "'";
    const Ort::TypeInfo type_info = session.GetInputTypeInfo(i);
    if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) {
      return Status::NotSupported(what + " is " + OnnxTypeName(type_info.GetONNXType()) +
                                  "; Sluice feeds tensors");
    }
    const auto tensor_info = type_info.GetTensorTypeAndShapeInfo();
    slot.type = tensor_info.GetElementType();
    if (slot.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && slot.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE &&
        slot.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 && slot.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
      return Status::NotSupported(what + " has element type " + OrtTypeName(slot.type) +
                                  "; Sluice feeds float, double, int64 or string inputs");
    }
    const std::vector<int64_t> shape = tensor_info.GetShape();
    const std::string shape_text = " has shape " + DescribeShape(shape);
    if (slot.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING && shape.size() == 2 && shape[1] != 1) {
      return Status::NotSupported(what + " is a string tensor of shape " + DescribeShape(shape) +
                                  "; Sluice feeds a string input one feature at a time ([N] or [N, 1])");
    }
    if (count == 1 && shape.size() == 2) {
      if (shape[1] < 1) {
        return Status::NotSupported(what + shape_text +
                                    ": the feature dimension is dynamic; Sluice needs a fixed number of "
                                    "features (export the model with a fixed second dimension)");
      }
      info->num_features = static_cast<size_t>(shape[1]);
    } else if (shape.size() == 1 || (shape.size() == 2 && shape[1] == 1)) {
      slot.rank1 = shape.size() == 1;
      info->num_features += 1;
      if (count > 1) info->feature_names.push_back(slot.name);
    } else {
      return Status::NotSupported(what + shape_text + "; Sluice feeds one [N, F] tensor, or one column per "
                                  "input ([N] or [N, 1])");
    }
    if (shape[0] == 0 || (shape[0] > 0 && batch > 0 && shape[0] != batch)) {
      return Status::NotSupported(what + shape_text + ": its batch dimension disagrees with the other inputs");
    }
    if (shape[0] > 0) batch = shape[0];
    info->inputs.push_back(ModelInputInfo{slot.name, InputColumnType(slot.type), shape});
    slots->push_back(std::move(slot));
  }
  *fixed_batch = batch > 0 ? static_cast<size_t>(batch) : 0;
  return Status::OK();
}

Status ReadOutputs(const std::string& path, const Ort::Session& session, const std::vector<std::string>& requested,
                   ModelInfo* info, std::vector<OutputSlot>* slots) {
  Ort::AllocatorWithDefaultOptions allocator;
  const size_t count = session.GetOutputCount();
  std::vector<std::string> names(count);
  for (size_t o = 0; o < count; ++o) names[o] = session.GetOutputNameAllocated(o, allocator).get();
  for (const std::string& name : requested) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return Status::InvalidArgument("model.outputs: the model '" + path + "' has no output '" + name +
                                     "' (outputs: " + JoinNames(names) + ")");
    }
  }
  for (size_t o = 0; o < count; ++o) {
    if (!requested.empty() && std::find(requested.begin(), requested.end(), names[o]) == requested.end()) continue;
    OutputSlot slot;
    slot.name = names[o];
    const std::string what = PathKey(path) + ": model output '" + slot.name + "'";
    const Ort::TypeInfo type_info = session.GetOutputTypeInfo(o);
    ModelOutputInfo out_info;
    out_info.name = slot.name;
    if (type_info.GetONNXType() == ONNX_TYPE_TENSOR) {
      const auto tensor_info = type_info.GetTensorTypeAndShapeInfo();
      slot.element = tensor_info.GetElementType();
      slot.declared_shape = tensor_info.GetShape();
      if (!OutputColumnType(slot.element, &out_info.type)) {
        return Status::NotSupported(what + " has element type " + OrtTypeName(slot.element) +
                                    "; Sluice reads float, double, integer, bool and string outputs");
      }
    } else if (type_info.GetONNXType() == ONNX_TYPE_SEQUENCE &&
               type_info.GetSequenceTypeInfo().GetSequenceElementType().GetONNXType() == ONNX_TYPE_MAP) {
      const Ort::TypeInfo element = type_info.GetSequenceTypeInfo().GetSequenceElementType();
      const auto map_info = element.GetMapTypeInfo();
      slot.zipmap = true;
      slot.element = map_info.GetMapKeyType();
      out_info.type = DataType::kFloat32;
      if (slot.element != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 && slot.element != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
        return Status::NotSupported(what + " is a sequence of maps with " + OrtTypeName(slot.element) +
                                    " keys; Sluice reads int64 or string keys (ZipMap)");
      }
    } else {
      return Status::NotSupported(what + " is " + OnnxTypeName(type_info.GetONNXType()) +
                                  "; Sluice reads tensors and sequences of maps (ZipMap)");
    }
    info->outputs.push_back(std::move(out_info));
    slots->push_back(std::move(slot));
  }
  return Status::OK();
}

void PutMetadata(ModelInfo* info, const std::string& key, std::string value) {
  value = OneLine(value);
  if (!value.empty()) info->metadata[key] = std::move(value);
}

void ReadMetadata(const Ort::Session& session, const OnnxProtoFacts& facts, size_t fixed_batch, ModelInfo* info) {
  Ort::AllocatorWithDefaultOptions allocator;
  const Ort::ModelMetadata meta = session.GetModelMetadata();
  PutMetadata(info, "producer_name", meta.GetProducerNameAllocated(allocator).get());
  PutMetadata(info, "producer_version", facts.producer_version);
  PutMetadata(info, "graph_name", meta.GetGraphNameAllocated(allocator).get());
  PutMetadata(info, "domain", meta.GetDomainAllocated(allocator).get());
  PutMetadata(info, "description", meta.GetDescriptionAllocated(allocator).get());
  PutMetadata(info, "graph_description", meta.GetGraphDescriptionAllocated(allocator).get());
  // ONNX Runtime reports an unset model_version as INT64_MAX.
  if (const int64_t version = meta.GetVersion(); version != std::numeric_limits<int64_t>::max()) {
    PutMetadata(info, "model_version", std::to_string(version));
  }
  PutMetadata(info, "ir_version", std::to_string(facts.ir_version));
  PutMetadata(info, "opset", DescribeOpsets(facts.opsets));
  PutMetadata(info, "onnxruntime_version", Ort::GetVersionString());
  PutMetadata(info, "batch_size", fixed_batch ? std::to_string(fixed_batch) : std::string("dynamic"));
  for (const Ort::AllocatedStringPtr& key : meta.GetCustomMetadataMapKeysAllocated(allocator)) {
    PutMetadata(info, std::string("custom.") + key.get(), meta.LookupCustomMetadataMapAllocated(key.get(), allocator).get());
  }
}

Result<std::unique_ptr<Model>> BuildModel(std::string_view bytes, const ModelOptions& options) {
  const std::string& path = options.path;
  if (options.threads < 1) {
    return Status::InvalidArgument("model.threads: must be at least 1, got " + std::to_string(options.threads));
  }
  if (options.batch_timeout_ms < 0) {
    return Status::InvalidArgument("execution.batch_timeout: must not be negative, got " +
                                   std::to_string(options.batch_timeout_ms) + " ms");
  }
  const OrtGlobal& global = Global();
  if (!global.status.ok()) return global.status.WithContext(PathKey(path));

  Ort::SessionOptions session_options;
  session_options.SetIntraOpNumThreads(options.threads);
  session_options.SetInterOpNumThreads(1);
  session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  session_options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  session_options.AddConfigEntry(kOrtSessionOptionsConfigAllowIntraOpSpinning, "0");
  session_options.AddConfigEntry(kOrtSessionOptionsConfigAllowInterOpSpinning, "0");
  Ort::Session session(nullptr);
  try {
    session = Ort::Session(*global.env, bytes.data(), bytes.size(), session_options);
  } catch (const Ort::Exception& e) {
    return LoadError(path, e.GetOrtErrorCode(), e.what());
  }

  Result<OnnxProtoFacts> facts = ScanOnnxModel(bytes);
  if (!facts.ok()) return Status::Corruption(PathKey(path) + ": not a valid ONNX model (" + facts.status().message() + ")");

  ModelInfo info;
  info.backend = "onnx";
  info.concurrent_predict = true;
  std::vector<InputSlot> inputs;
  std::vector<OutputSlot> outputs;
  size_t fixed_batch = 0;
  RETURN_IF_ERROR(ReadInputs(path, session, &info, &inputs, &fixed_batch));
  RETURN_IF_ERROR(ReadOutputs(path, session, options.requested_outputs, &info, &outputs));
  if (outputs.empty()) return Status::NotSupported(PathKey(path) + ": the model has no outputs");
  ReadMetadata(session, *facts, fixed_batch, &info);

  auto model = std::make_unique<OnnxModel>(path, std::move(session), std::move(info), std::move(inputs),
                                           std::move(outputs), fixed_batch,
                                           kOnnxRowsPerThread * static_cast<size_t>(options.threads),
                                           options.batch_timeout_ms);
  RETURN_IF_ERROR(model->Probe(*facts));
  RETURN_IF_ERROR(model->StartWatchdog());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace

bool DetectOnnxModel(std::string_view path, std::string_view head) {
  return PathHasExtension(path, ".onnx") || LooksLikeOnnxModel(head);
}

Result<std::unique_ptr<Model>> LoadOnnxModelFromBytes(std::string_view bytes, const ModelOptions& options) {
  try {
    return BuildModel(bytes, options);
  } catch (const Ort::Exception& e) {
    return LoadError(options.path, e.GetOrtErrorCode(), e.what());
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted(PathKey(options.path) + ": out of memory loading the model");
  }
}

void WarmOnnxRuntime() { (void)Global(); }

Result<std::unique_ptr<Model>> LoadOnnxModel(Env* env, const ModelOptions& options) {
  Result<std::string> bytes = ReadFileToString(env, options.path);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("model.path: no such file '" + options.path + "'");
    }
    return bytes.status().WithContext("model.path");
  }
  return LoadOnnxModelFromBytes(*bytes, options);
}

}  // namespace sluice
