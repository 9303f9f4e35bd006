// `sluice tune`: runs a job's real pipeline (read, preprocess, predict,
// postprocess, write) on a sample of its input for several batch sizes and
// worker x model-thread splits, within execution.memory_limit, and finds the
// fastest. Output goes to a scratch directory, never to the job's output.
//
// The sample is the job's first units, planned so that there are at least as
// many units as the most workers tried: a CSV / JSON Lines input cut by size
// (partition.by: size) is planned again with units of about
// sample_rows / units rows; other inputs keep their units, taken in plan order
// until they hold sample_rows rows.
//
// Thread-safety: TuneJob runs one configuration at a time on the calling
// thread (each run uses the job's workers); call it once at a time per process
// (peak RSS readings are process-wide).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

// One configuration: its best run of TuneOptions::repeats.
struct TuneTrial {
  size_t batch_size = 0;
  int workers = 1;
  int model_threads = 1;
  double rows_per_sec = 0;  // rows read / seconds of the units' run (planning and model load excluded)
  int64_t rows = 0;
  double seconds = 0;
  uint64_t peak_rss_bytes = 0;  // process peak during the run (see TuneReport::peak_rss_per_run)
  // Thread seconds in each stage, summed over batches and workers.
  double read_seconds = 0;
  double predict_seconds = 0;
  double write_seconds = 0;
  std::string error;  // not run: why (e.g. execution.memory_limit too small for it)
};

struct TuneOptions {
  const ModelRegistry* models = nullptr;  // borrowed; required
  int64_t sample_rows = 200000;
  std::vector<size_t> batch_sizes;  // empty: kAutoBatchSizes
  // (workers, model threads); empty: every split of the cores, workers x threads == cores.
  std::vector<std::pair<int, int>> splits;
  int repeats = 2;  // runs per configuration; the fastest counts
  // Scratch directory for the runs' output: must not exist; created, and
  // removed with everything in it before TuneJob returns.
  std::string work_dir;
  // Called after each configuration, in order (for progress).
  std::function<void(const TuneTrial&)> on_trial;
};

struct TuneReport {
  int64_t sample_rows = 0;  // rows the sample holds (rows read by a run)
  size_t sample_units = 0;
  std::string sample;       // how it was taken, for people
  int cores = 1;
  std::vector<TuneTrial> trials;  // splits in order, batch sizes ascending within each
  size_t best = 0;                // index into trials of the fastest that ran
  bool peak_rss_per_run = false;  // peak RSS was reset before each run (else it is the process's so far)
};

// kInvalidArgument when nothing could run (every configuration over the
// memory limit: their errors say why); errors of the job itself as RunJob's.
Result<TuneReport> TuneJob(const JobSpec& spec, Env* env, const TuneOptions& options);

// The best configuration as YAML for the job file, with the matching --set
// arguments in a comment:
//   batch:
//     size: 16384
//   execution:
//     workers: 2
//   model:
//     threads: 1
std::string TunedSettingsYaml(const TuneReport& report, const std::string& job_path);

}  // namespace sluice
