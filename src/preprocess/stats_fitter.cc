#include "preprocess/stats_fitter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <unordered_map>

#include "preprocess/feature_binding.h"
#include "preprocess/transform_step.h"

namespace sluice {
namespace {

// Count, mean and sum of squared deviations (m2) of a set of values; merged
// with Chan et al.'s pairwise formula, so batches combine without the
// cancellation of a running sum of squares.
struct Moments {
  int64_t n = 0;
  double mean = 0;
  double m2 = 0;

  void Merge(int64_t n_b, double mean_b, double m2_b) {
    if (n_b == 0) return;
    if (n == 0) {
      n = n_b;
      mean = mean_b;
      m2 = m2_b;
      return;
    }
    const double total = static_cast<double>(n) + static_cast<double>(n_b);
    const double delta = mean_b - mean;
    mean += delta * (static_cast<double>(n_b) / total);
    m2 += m2_b + delta * delta * (static_cast<double>(n) * static_cast<double>(n_b) / total);
    n += n_b;
  }

  // Adds a batch of values, whose own moments come from a corrected two-pass sum.
  void AddValues(std::span<const double> values) {
    if (values.empty()) return;
    const double count = static_cast<double>(values.size());
    double sum = 0;
    for (double v : values) sum += v;
    double mean_b = sum / count;
    double dev_sum = 0;
    double dev_sq = 0;
    for (double v : values) {
      const double d = v - mean_b;
      dev_sum += d;
      dev_sq += d * d;
    }
    mean_b += dev_sum / count;
    const double m2_b = std::max(0.0, dev_sq - dev_sum * dev_sum / count);
    Merge(static_cast<int64_t>(values.size()), mean_b, m2_b);
  }

  double PopulationStd() const { return n > 0 ? std::sqrt(std::max(0.0, m2) / static_cast<double>(n)) : 0; }
};

// Heterogeneous lookup: find by string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// splitmix64: a small, fixed-seed generator so reservoir samples repeat run to run.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, bound), by the high half of a 128-bit product.
uint64_t RandomBelow(uint64_t* state, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(NextRandom(state)) * bound) >> 64);
}

constexpr uint64_t kReservoirSeed = 0x5eed5eed5eed5eedULL;

bool IsParameterized(TransformKind kind) {
  return kind == TransformKind::kStandardize || kind == TransformKind::kMinMax;
}

std::string TransformList(const std::vector<TransformSpec>& transforms) {
  std::string out = "[";
  for (size_t idx = 0; idx < transforms.size(); ++idx) {
    if (idx > 0) out += ", ";
    out += TransformKindName(transforms[idx].kind);
  }
  return out + "]";
}

// numpy.median of `values` (reordered in place). Precondition: not empty.
double Median(std::vector<double>* values) {
  const size_t mid = values->size() / 2;
  std::nth_element(values->begin(), values->begin() + static_cast<ptrdiff_t>(mid), values->end());
  const double upper = (*values)[mid];
  if (values->size() % 2 == 1) return upper;
  const double lower = *std::max_element(values->begin(), values->begin() + static_cast<ptrdiff_t>(mid));
  const double sum = lower + upper;
  return std::isfinite(sum) ? sum / 2 : lower / 2 + upper / 2;
}

}  // namespace

struct StatsFitter::Accumulator {
  BoundFeature bound;
  std::vector<TransformStep> prefix;  // parameter-free steps before the first parameterized one
  int first_param = -1;               // index in spec.transforms, -1 when none
  int second_param = -1;
  bool counts_strings = false;        // most_frequent over strings (one-hot on a string column)

  int64_t count = 0;
  int64_t nulls = 0;
  Moments raw;                       // impute mean
  std::vector<double> sample;        // impute median: all values, or a reservoir
  uint64_t sample_seen = 0;
  uint64_t rng = kReservoirSeed;
  std::unordered_map<double, int64_t> number_counts;  // impute most_frequent
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> string_counts;
  Moments step;                      // f(x) entering the first parameterized step
  double step_min = std::numeric_limits<double>::infinity();
  double step_max = -std::numeric_limits<double>::infinity();
};

StatsFitter::StatsFitter() = default;
StatsFitter::~StatsFitter() = default;

Result<std::unique_ptr<StatsFitter>> StatsFitter::Make(const std::vector<FeatureSpec>& features,
                                                       const Schema& input_schema,
                                                       const StatsFitterOptions& options) {
  ASSIGN_OR_RETURN(std::vector<BoundFeature> bound, BindFeatures(features, input_schema));
  std::unique_ptr<StatsFitter> fitter(new StatsFitter());
  fitter->options_ = options;
  fitter->features_.resize(bound.size());
  for (size_t feature_idx = 0; feature_idx < bound.size(); ++feature_idx) {
    Accumulator& acc = fitter->features_[feature_idx];
    acc.bound = std::move(bound[feature_idx]);
    const FeatureSpec& spec = acc.bound.spec;
    acc.counts_strings = acc.bound.one_hot() && acc.bound.column_type == DataType::kString;
    const std::vector<TransformSpec>& t = spec.transforms;
    for (size_t idx = 0; idx < t.size(); ++idx) {
      if (!IsParameterized(t[idx].kind)) continue;
      if (acc.first_param < 0) {
        acc.first_param = static_cast<int>(idx);
      } else {
        acc.second_param = static_cast<int>(idx);
      }
    }
    if (acc.second_param > acc.first_param + 1) {
      const TransformSpec& between = t[static_cast<size_t>(acc.first_param) + 1];
      return Status::NotSupported(
          acc.bound.label + ": transforms " + TransformList(t) + " cannot be fitted in one pass (" +
          std::string(TransformKindName(between.kind)) + " between " +
          std::string(TransformKindName(t[static_cast<size_t>(acc.first_param)].kind)) + " and " +
          std::string(TransformKindName(t[static_cast<size_t>(acc.second_param)].kind)) +
          "); give the stats inline or in a stats file");
    }
    for (int idx = 0; idx < acc.first_param; ++idx) {
      const TransformSpec& s = t[static_cast<size_t>(idx)];
      acc.prefix.push_back(s.kind == TransformKind::kLog1p ? TransformStep::Log1p() : TransformStep::Clip(s));
    }
  }
  return fitter;
}

void StatsFitter::Add(const Batch& batch) {
  if (!error_.ok()) return;
  for (Accumulator& acc : features_) {
    Status st = AddFeature(acc, batch);
    if (!st.ok()) {
      error_ = std::move(st);
      return;
    }
  }
}

Status StatsFitter::AddFeature(Accumulator& acc, const Batch& batch) {
  const BoundFeature& b = acc.bound;
  const Column* col = FindBatchColumn(batch, b.column_index, b.spec.column);
  if (col == nullptr) {
    return Status::InvalidArgument(b.label + ": no input column '" + b.spec.column + "' in batch of unit '" +
                                   batch.unit_id + "'");
  }
  const bool most_frequent = b.spec.impute == ImputeKind::kMostFrequent;
  const auto too_many = [&]() {
    return Status::ResourceExhausted(b.label + ": more than " + std::to_string(options_.max_distinct) +
                                     " distinct values to count for impute: most_frequent");
  };

  if (acc.counts_strings) {
    for (size_t row_idx = 0; row_idx < col->size(); ++row_idx) {
      if (col->IsNull(row_idx)) {
        ++acc.nulls;
        continue;
      }
      ++acc.count;
      if (!most_frequent) continue;
      const std::string_view text = col->StringAt(row_idx);
      auto it = acc.string_counts.find(text);
      if (it != acc.string_counts.end()) {
        ++it->second;
        continue;
      }
      if (acc.string_counts.size() >= options_.max_distinct) return too_many();
      acc.string_counts.emplace(std::string(text), 1);
    }
    return Status::OK();
  }

  scratch_.clear();
  ForEachNumericValue(*col, b.spec.datetime, 0, col->size(), [&](size_t, ValueState state, double x) {
    if (state == ValueState::kNull) {
      ++acc.nulls;
    } else if (state == ValueState::kValue && std::isfinite(x)) {
      scratch_.push_back(x);
    } else {
      ++skipped_;
    }
  });
  acc.count += static_cast<int64_t>(scratch_.size());

  switch (b.spec.impute) {
    case ImputeKind::kMean: acc.raw.AddValues(scratch_); break;
    case ImputeKind::kMedian:
      for (double x : scratch_) {
        if (acc.sample.size() < options_.median_exact_limit) {
          acc.sample.push_back(x);
        } else {
          // Reservoir sampling: value number `sample_seen` replaces a kept one
          // with probability limit / (sample_seen + 1).
          const uint64_t slot = RandomBelow(&acc.rng, acc.sample_seen + 1);
          if (slot < acc.sample.size()) acc.sample[slot] = x;
        }
        ++acc.sample_seen;
      }
      break;
    case ImputeKind::kMostFrequent:
      for (double x : scratch_) {
        const double key = x == 0 ? 0.0 : x;  // -0.0 and 0.0 are one value
        auto it = acc.number_counts.find(key);
        if (it != acc.number_counts.end()) {
          ++it->second;
          continue;
        }
        if (acc.number_counts.size() >= options_.max_distinct) return too_many();
        acc.number_counts.emplace(key, 1);
      }
      break;
    default: break;
  }

  if (acc.first_param >= 0) {
    size_t kept = 0;
    for (double x : scratch_) {
      double y = x;
      if (RunSteps(acc.prefix, &y) >= 0 || !std::isfinite(y)) {
        ++skipped_;
        continue;
      }
      scratch_[kept++] = y;
      acc.step_min = std::min(acc.step_min, y);
      acc.step_max = std::max(acc.step_max, y);
    }
    acc.step.AddValues(std::span<const double>(scratch_.data(), kept));
  }
  return Status::OK();
}

Result<Stats> StatsFitter::Finish() {
  if (!error_.ok()) return error_;
  Stats stats;
  for (Accumulator& acc : features_) {
    const BoundFeature& b = acc.bound;
    const FeatureSpec& spec = b.spec;
    const std::string impute_name = "impute: " + std::string(ImputeKindName(spec.impute));
    const auto no_values = [&](std::string_view what) {
      return Status::InvalidArgument(b.label + ": no non-null values to compute " + std::string(what));
    };
    FeatureStats fs;
    fs.count = acc.count;
    fs.nulls = acc.nulls;
    std::optional<double> impute_number;
    switch (spec.impute) {
      case ImputeKind::kNone:
      case ImputeKind::kNan: break;
      case ImputeKind::kConstant:
        if (b.one_hot() || !spec.impute_number_ok) {  // not a number: a text feature's constant
          fs.impute_string = spec.impute_string;
        } else {
          impute_number = spec.impute_number;
        }
        break;
      case ImputeKind::kMean:
        if (acc.raw.n == 0) return no_values(impute_name);
        impute_number = acc.raw.mean;
        break;
      case ImputeKind::kMedian:
        if (acc.sample.empty()) return no_values(impute_name);
        impute_number = Median(&acc.sample);
        break;
      case ImputeKind::kMostFrequent:
        if (acc.counts_strings) {
          const std::string* best = nullptr;
          int64_t best_count = 0;
          for (const auto& [text, n] : acc.string_counts) {
            if (n > best_count || (n == best_count && text < *best)) {
              best = &text;
              best_count = n;
            }
          }
          if (best == nullptr) return no_values(impute_name);
          fs.impute_string = *best;
        } else {
          std::optional<double> best;
          int64_t best_count = 0;
          for (const auto& [value, n] : acc.number_counts) {
            if (n > best_count || (n == best_count && value < *best)) {
              best = value;
              best_count = n;
            }
          }
          if (!best) return no_values(impute_name);
          if (b.one_hot()) {
            char buf[kNumberTextSize];
            fs.impute_string = std::string(NumberCategoryText(b.column_type, *best, buf));
          } else {
            impute_number = best;
          }
        }
        break;
    }
    fs.impute_number = impute_number;

    if (acc.first_param >= 0) {
      Moments m = acc.step;
      double lo = acc.step_min;
      double hi = acc.step_max;
      if (impute_number && acc.nulls > 0) {
        // The imputer runs first, so each null enters the chain as the impute value.
        double y = *impute_number;
        if (RunSteps(acc.prefix, &y) < 0 && std::isfinite(y)) {
          m.Merge(acc.nulls, y, 0);
          lo = std::min(lo, y);
          hi = std::max(hi, y);
        }
      }
      const TransformKind first = spec.transforms[static_cast<size_t>(acc.first_param)].kind;
      if (m.n == 0) return no_values("the statistics of transform " + std::string(TransformKindName(first)));
      const double sd = m.PopulationStd();
      if (first == TransformKind::kStandardize) {
        fs.mean = m.mean;
        fs.std = sd;
        if (acc.second_param >= 0) {
          // minmax follows: its input is the standardized value, monotone in x.
          const TransformStep s = TransformStep::Standardize(m.mean, sd);
          fs.min = (lo - s.a) / s.b;
          fs.max = (hi - s.a) / s.b;
        }
      } else {
        fs.min = lo;
        fs.max = hi;
        if (acc.second_param >= 0) {
          // standardize follows: its input is (x - min) / range.
          const TransformStep s = TransformStep::MinMax(lo, hi);
          fs.mean = (m.mean - s.a) / s.b;
          fs.std = sd / s.b;
        }
      }
    }
    stats.Set(spec.name, std::move(fs));
  }
  return stats;
}

}  // namespace sluice
