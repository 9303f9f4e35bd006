// The run report (DESIGN.md §6): <out>/_sluice/report.json, and report.html
// rendered from it, written at the end of every `sluice run` (also a failed,
// interrupted or alert-stopped one). A --shard I/N run writes
// report-shard-I-of-N.json/.html instead, so shards do not overwrite each
// other. `sluice report OUT_DIR` renders report.html again from report.json.
//
// report.json (keys in this order; "sluice_report": 1 first):
//   job          {name, spec (canonical JSON object), monitoring (alert rules
//                 with webhook URLs cut to scheme://host:port/…), fingerprint,
//                 model_sha256, started, finished (ISO 8601 UTC), seconds,
//                 exit_code, error}
//   totals       {rows_in, rows_out, rows_rejected, rows_filtered, rows_sampled_out,
//                 units_total, units_done, units_failed, units_skipped, parts} —
//                 the rows are the sums of the committed units' markers
//   units        [{id, input, rows_in, rows_out, rows_rejected, rows_filtered,
//                  files, seconds (null when committed by an earlier run)}]
//   stages       {read|preprocess|predict|postprocess|write|commit:
//                 {seconds, count, p50, p90, p99}}
//   latency      {batch: {p50, p90, p99, bounds, counts}}
//   throughput   [{seconds, rows_in, rows_out, rows_per_sec, rss_bytes}]
//   predictions  {column, bounds, counts, mean, count, reference (fractions
//                 or null), psi (or null)}
//   rejects      {by_reason: {reason: count}}
//   alerts       [AlertEvent JSON]
//   resources    {peak_rss_bytes, cpu_seconds, workers, model_threads,
//                 model_loads, model_evictions, retries: {code: count}}
//
// report.html is one self-contained file (inline CSS and SVG charts, no
// script, no network): summary, throughput over time, time per stage, batch
// latency histogram, prediction histogram (with the reference when there is
// one), rejects by reason, alerts, and the unit table.
//
// Thread-safety: functions only; no shared state.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "exec/output_dir.h"
#include "observe/alerts.h"
#include "observe/metrics.h"
#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

struct ReportInput {
  // job.name; empty: the base name of output.path.
  std::string job_name;
  const JobSpec* spec = nullptr;
  const JobFingerprint* fingerprint = nullptr;
  const JobReport* report = nullptr;
  std::vector<UnitMarker> markers;  // every committed unit of the job (or shard), in plan order
  std::map<std::string, double> unit_seconds;  // RunMetrics::UnitSeconds
  MetricsSnapshot metrics;                    // at the end of the run
  std::vector<TimelinePoint> timeline;
  std::vector<AlertEvent> alerts;
  const ScoreReference* score_reference = nullptr;  // null: none
  uint64_t started_unix_micros = 0;
  uint64_t finished_unix_micros = 0;
};

nlohmann::ordered_json BuildReportJson(const ReportInput& input);

// The HTML page for a report.json document. kCorruption naming the key when
// the document is not a Sluice report.
Result<std::string> RenderReportHtml(const nlohmann::ordered_json& report);

// The job's name in the report, webhook bodies and the metrics' job_info:
// the base name of output.path ("out/scoring/" -> "scoring").
std::string JobName(const JobSpec& spec);

// "report" or "report-shard-I-of-N" (RunOptions' shard).
std::string ReportBaseName(int shard_index, int shard_count);

// Writes <out>/_sluice/<base>.json and .html, each atomically (temporary,
// fsync, rename).
Status WriteReport(Env* env, const std::string& out, const std::string& base, const nlohmann::ordered_json& report);

// `sluice report OUT_DIR`: renders <out>/_sluice/report*.html again from each
// report*.json there; returns the HTML paths written. kNotFound when there is none.
Result<std::vector<std::string>> RerenderReports(Env* env, const std::string& out);

}  // namespace sluice
