// The model-only ceiling of `make bench`: a backend's Predict on a feature matrix
// already in memory, on every core, through the same Model interface and registry
// as `sluice run` (no parsing, preprocessing or writing).
//
//   sluice_model_ceiling MODEL KIND FEATURES [--rows N] [--batch B] [--threads T] [--seconds S]
//
// Fills N rows x FEATURES float32 values uniform in [-5, 5) (std::mt19937, seed 42: the
// distribution `bench/run_all.py` writes), then T threads (default: all cores) each
// score their share of the rows in batches of B (default 4096), round after round until
// S seconds (default 1) have passed. Each thread loads its own model (one intra-op
// thread) unless the backend declares concurrent_predict, in which case they share one.
// Prints one JSON line: {"rows_per_s": ..., "rows": ..., "seconds": ..., "threads": ...}.
// Exit 1 with one line on stderr when the model fails to load or predict.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {
namespace {

struct Args {
  std::string model_path;
  std::string kind;
  size_t features = 0;
  size_t rows = 1000000;
  size_t batch = 4096;
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  double seconds = 1.0;
};

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !(v > 0)) return false;
  *out = v;
  return true;
}

bool ParseArgs(int argc, char** argv, Args* args) {
  if (argc < 4) return false;
  args->model_path = argv[1];
  args->kind = argv[2];
  if (!ParseNumber(argv[3], &args->features)) return false;
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rows") {
      if (!ParseNumber(argv[i + 1], &args->rows)) return false;
    } else if (flag == "--batch") {
      if (!ParseNumber(argv[i + 1], &args->batch)) return false;
    } else if (flag == "--threads") {
      if (!ParseNumber(argv[i + 1], &args->threads)) return false;
    } else if (flag == "--seconds") {
      if (!ParseNumber(argv[i + 1], &args->seconds)) return false;
    } else {
      return false;
    }
  }
  return argc % 2 == 0;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "sluice_model_ceiling: %s\n", status.message().c_str());
  return 1;
}

int Run(const Args& args) {
  ModelRegistry registry;
  RegisterBuiltinModels(&registry);
  ModelOptions options;
  options.path = args.model_path;
  options.threads = 1;

  std::vector<std::unique_ptr<Model>> models;
  Result<std::unique_ptr<Model>> first = registry.Load(Env::Default(), args.kind, options);
  if (!first.ok()) return Fail(first.status());
  models.push_back(std::move(first).value());
  if (models[0]->info().num_features != args.features) {
    return Fail(Status::InvalidArgument("the model takes " + std::to_string(models[0]->info().num_features) +
                                        " features, not " + std::to_string(args.features)));
  }
  const bool shared = models[0]->info().concurrent_predict;
  while (!shared && models.size() < args.threads) {
    Result<std::unique_ptr<Model>> more = registry.Load(Env::Default(), args.kind, options);
    if (!more.ok()) return Fail(more.status());
    models.push_back(std::move(more).value());
  }

  std::vector<float> matrix(args.rows * args.features);
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-5.0f, 5.0f);
  for (float& v : matrix) v = uniform(rng);

  // Warm-up: one batch per model, so lazy initialization is not timed.
  for (auto& model : models) {
    std::vector<OutputTensor> out;
    Status st = model->Predict(matrix.data(), std::min(args.batch, args.rows), args.features, &out);
    if (!st.ok()) return Fail(st);
  }

  std::atomic<bool> failed{false};
  std::vector<size_t> scored(args.threads, 0);
  std::vector<Status> errors(args.threads);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(args.seconds);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      Model* model = models[shared ? 0 : t].get();
      std::vector<OutputTensor> out;
      const size_t begin = args.rows * t / args.threads;
      const size_t end = args.rows * (t + 1) / args.threads;
      do {
        for (size_t row = begin; row < end && !failed; row += args.batch) {
          const size_t n = std::min(args.batch, end - row);
          Status st = model->Predict(matrix.data() + row * args.features, n, args.features, &out);
          if (!st.ok()) {
            errors[t] = st;
            failed = true;
          }
          scored[t] += n;
        }
      } while (!failed && std::chrono::steady_clock::now() < deadline);
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const Status& st : errors) {
    if (!st.ok()) return Fail(st);
  }
  size_t total = 0;
  for (size_t n : scored) total += n;
  std::printf("{\"rows_per_s\": %.0f, \"rows\": %zu, \"seconds\": %.3f, \"threads\": %zu, \"batch\": %zu}\n",
              static_cast<double>(total) / seconds, total, seconds, args.threads, args.batch);
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  sluice::Args args;
  if (!sluice::ParseArgs(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: sluice_model_ceiling MODEL KIND FEATURES [--rows N] [--batch B] [--threads T] "
                 "[--seconds S]\n");
    return 2;
  }
  return sluice::Run(args);
}
