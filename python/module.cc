// sluice._sluice: the engine for Python (pybind11). The package around it
// (python/sluice/__init__.py) adds the per-process session cache and the Dask
// runner; this file only converts: jobs and options in, reports out as dicts,
// Status errors raised as sluice.Error(message, exit_code, code).
//
// Every call into the engine releases the GIL, so Python threads (and a Dask
// worker's other threads) run meanwhile. A Session may be used from several
// threads at once (JobSession is thread-safe); close() while a call is running
// takes effect when the call returns.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli.h"
#include "observe/log.h"
#include "sluice/job.h"
#include "sluice/model.h"
#include "sluice/session.h"

namespace py = pybind11;

namespace sluice {
namespace {

using Overrides = std::optional<std::vector<std::string>>;

// The built-in model backends, registered once for the process.
const ModelRegistry& Models() {
  static const ModelRegistry* registry = [] {
    auto* r = new ModelRegistry();
    RegisterBuiltinModels(r);
    return r;
  }();
  return *registry;
}

// Raises sluice.Error for a failed Status. Needs the GIL.
[[noreturn]] void Raise(const Status& st, ExitCode exit_code = ExitCode::kInvalid) {
  py::object error = py::module_::import("sluice").attr("Error");
  py::object exc = error(st.message(), static_cast<int>(exit_code), std::string(StatusCodeName(st.code())));
  PyErr_SetObject(error.ptr(), exc.ptr());
  throw py::error_already_set();
}

template <typename T>
T ValueOrRaise(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(r).value();
}

// Runs `f` without the GIL; its result must not touch Python objects.
template <typename F>
auto WithoutGil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

Result<JobSpec> LoadJob(const std::string& job, const Overrides& overrides) {
  return LoadJobFile(Env::Default(), job, overrides.value_or(std::vector<std::string>{}));
}

RunOptions Options(const std::optional<std::string>& shard) {
  RunOptions options;
  options.models = &Models();
  if (shard) {
    if (Status st = ParseShard(*shard, &options); !st.ok()) Raise(st);
  }
  return options;
}

// The row accounting of a JobReport or a FinalizeReport.
template <typename Report>
void AddRows(const Report& r, py::dict* d) {
  (*d)["rows_in"] = r.rows_in;
  (*d)["rows_out"] = r.rows_out;
  (*d)["rows_rejected"] = r.rows_rejected;
  (*d)["rows_filtered"] = r.rows_filtered;
}

py::dict ReportDict(const JobReport& r) {
  py::dict d;
  AddRows(r, &d);
  d["rows_sampled_out"] = r.rows_sampled_out;
  d["units_total"] = r.units_total;
  d["units_done"] = r.units_done;
  d["units_failed"] = r.units_failed;
  d["units_skipped"] = r.units_skipped;
  d["retries"] = r.retries;
  d["rejects_by_reason"] = r.rejects_by_reason;
  d["parts"] = r.parts;
  d["workers"] = r.workers;
  d["model_threads"] = r.model_threads;
  d["batch_size"] = r.batch_size;
  d["batch_size_auto"] = r.batch_size_auto;
  d["model_loads"] = r.model_loads;
  d["model_evictions"] = r.model_evictions;
  d["peak_rss_bytes"] = r.peak_rss_bytes;
  d["seconds"] = r.seconds;
  d["exit_code"] = static_cast<int>(r.exit_code);
  d["error"] = r.error;
  return d;
}

py::dict PlanDict(const PlanSummary& plan, const std::string& output) {
  py::list units;
  for (const PlannedUnit& u : plan.units) {
    py::dict d;
    d["id"] = u.id;
    d["path"] = u.path;
    d["begin"] = u.begin;
    d["end"] = u.end;
    d["label"] = u.label;
    d["est_bytes"] = u.est_bytes;
    d["est_rows"] = u.est_rows;
    d["rows_exact"] = u.rows_exact;
    d["in_shard"] = u.in_shard;
    d["done"] = u.done;
    units.append(std::move(d));
  }
  py::dict d;
  d["format"] = plan.format;
  d["fingerprint"] = plan.fingerprint;
  d["output"] = output;
  d["output_is_this_job"] = plan.output_is_this_job;
  d["units"] = std::move(units);
  return d;
}

// A JobSession owned by Python. The session is shared with calls in flight, so
// that close() never destroys it under them.
class PySession {
 public:
  PySession(const std::string& job, const Overrides& overrides, const std::optional<std::string>& shard,
            bool shared) {
    RunOptions options = Options(shard);
    options.shared_output = shared;
    Result<std::unique_ptr<JobSession>> session = WithoutGil([&]() -> Result<std::unique_ptr<JobSession>> {
      ASSIGN_OR_RETURN(JobSpec spec, LoadJob(job, overrides));
      return JobSession::Open(spec, Env::Default(), options);
    });
    session_ = std::shared_ptr<JobSession>(ValueOrRaise(std::move(session)));
  }

  py::dict Plan() {
    std::shared_ptr<JobSession> s = Get();
    return PlanDict(ValueOrRaise(WithoutGil([&] { return s->Plan(); })), s->spec().output.path);
  }

  py::dict RunUnits(const std::vector<std::string>& unit_ids) {
    std::shared_ptr<JobSession> s = Get();
    return ReportDict(ValueOrRaise(WithoutGil([&] { return s->RunUnits(unit_ids); })));
  }

  std::vector<std::string> UnitIds() { return Get()->ShardUnitIds(); }
  std::string Fingerprint() { return Get()->fingerprint(); }
  std::string Output() { return Get()->spec().output.path; }
  int64_t ModelLoads() { return Get()->model_loads(); }
  bool Closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return session_ == nullptr;
  }

  // Releases the output directory's locks and the models (once calls in flight return).
  void Close() {
    std::shared_ptr<JobSession> s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s = std::move(session_);
    }
    WithoutGil([&] {
      s.reset();
      return 0;
    });
  }

 private:
  std::shared_ptr<JobSession> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    if (session_ == nullptr) Raise(Status::FailedPrecondition("the session is closed"));
    return session_;
  }

  std::mutex mu_;
  std::shared_ptr<JobSession> session_;  // guarded by mu_; null once closed
};

py::dict Plan(const std::string& job, const Overrides& overrides, const std::optional<std::string>& shard) {
  const RunOptions options = Options(shard);
  std::string output;
  Result<PlanSummary> plan = WithoutGil([&]() -> Result<PlanSummary> {
    ASSIGN_OR_RETURN(JobSpec spec, LoadJob(job, overrides));
    output = spec.output.path;
    return PlanJob(spec, Env::Default(), options);
  });
  return PlanDict(ValueOrRaise(std::move(plan)), output);
}

py::dict Finalize(const std::string& out) {
  const FinalizeReport r = ValueOrRaise(WithoutGil([&] { return FinalizeOutput(Env::Default(), out); }));
  py::dict d;
  d["output"] = out;
  d["units_total"] = r.units_total;
  d["units_done"] = r.units_done;
  d["missing"] = r.missing;
  AddRows(r, &d);
  d["exit_code"] = static_cast<int>(r.exit_code);
  d["error"] = r.error;
  return d;
}

void SetLogLevel(const std::string& level) {
  if (Status st = InitLogging(level, LogFormat::kText); !st.ok()) Raise(st);
}

}  // namespace
}  // namespace sluice

PYBIND11_MODULE(_sluice, m) {
  using sluice::Overrides;
  m.doc() = "The Sluice engine; use the package `sluice`, which wraps this module.";
  // Engine logs go to stderr; warnings and errors only unless asked.
  sluice::SetLogLevel("warn");

  py::class_<sluice::PySession>(m, "Session")
      .def(py::init<const std::string&, const Overrides&, const std::optional<std::string>&, bool>(), py::arg("job"),
           py::arg("set") = py::none(), py::arg("shard") = py::none(), py::arg("shared") = true)
      .def("plan", &sluice::PySession::Plan)
      .def("run_units", &sluice::PySession::RunUnits, py::arg("unit_ids"))
      .def("unit_ids", &sluice::PySession::UnitIds)
      .def("close", &sluice::PySession::Close)
      .def_property_readonly("fingerprint", &sluice::PySession::Fingerprint)
      .def_property_readonly("output", &sluice::PySession::Output)
      .def_property_readonly("model_loads", &sluice::PySession::ModelLoads)
      .def_property_readonly("closed", &sluice::PySession::Closed);
  m.def("plan", &sluice::Plan, py::arg("job"), py::arg("set") = py::none(), py::arg("shard") = py::none());
  m.def("finalize", &sluice::Finalize, py::arg("out_dir"));
  m.def("set_log_level", &sluice::SetLogLevel, py::arg("level"));
}
