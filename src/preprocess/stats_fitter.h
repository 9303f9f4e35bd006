// StatsFitter: computes a Stats (the stats file of `sluice fit-stats`) in ONE
// streaming pass over the batches of a training dataset.
//
// Per feature (values are read exactly as Preprocessor reads them: strings parsed,
// datetime parts of timestamps; a NaN is null):
//   impute value, from the non-null values:
//     mean          arithmetic mean.
//     median        exact (numpy.median: the middle value, or the mean of the two
//                   middle values) while the feature has at most
//                   StatsFitterOptions::median_exact_limit (default 4,194,304)
//                   non-null values. Beyond that it is the median of a uniform
//                   reservoir sample of that many values (fixed seed, so runs
//                   repeat): its rank is off by about 0.5/sqrt(4,194,304) ≈ 0.025%
//                   of the count (one standard deviation), e.g. ±25,000 ranks out
//                   of 100 million.
//     most_frequent the most frequent value; ties -> the smallest value (numbers
//                   by value, strings byte-wise), like scikit-learn's
//                   SimpleImputer. One-hot features on a string column count the
//                   strings; otherwise numbers are counted and, for a one-hot
//                   feature, written as category text. More than
//                   StatsFitterOptions::max_distinct (default 1,000,000) distinct
//                   values -> kResourceExhausted naming the feature.
//     constant      the spec's value (written for completeness).
//     none, nan     no impute value.
//   standardize / minmax: the mean and population std (ddof=0), or min and max,
//     of the values ENTERING that step, where a null counts as the impute value
//     (as scikit-learn fits a scaler after the imputer); with impute none / nan,
//     nulls are left out.
//   count / nulls: non-null and null values.
//
// One pass is exact for a transform chain of the form
//   [log1p / clip ...] -> first of standardize/minmax -> [the other one]
//   -> [anything after the last standardize/minmax]
// i.e. no log1p or clip between standardize and minmax: the first parameterized
// step's input is f(x) for a fixed f (moments are merged per batch with Chan's
// formula from two-pass batch moments; the nulls' f(impute) is added at Finish,
// when the impute value is known), and the second one's input statistics follow
// from the first's, which is affine. Other chains make Make return kNotSupported.
//
// Values that the preprocessor would reject are left out of every statistic and
// counted in skipped_values(): strings that are not numbers, infinities, and
// values outside a transform's domain (log1p of x <= -1).
//
// Thread-safety: none; one thread feeds a fitter.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "preprocess/stats.h"
#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/schema.h"
#include "sluice/status.h"

namespace sluice {

struct StatsFitterOptions {
  // Non-null values kept per median feature; beyond it, a reservoir sample.
  size_t median_exact_limit = size_t{1} << 22;  // 4,194,304
  // Distinct values counted per most_frequent feature.
  size_t max_distinct = 1'000'000;
};

class StatsFitter {
 public:
  // Binds features to `input_schema` (same checks and messages as
  // Preprocessor::Make, minus those needing stats) and checks that each chain
  // can be fitted in one pass: otherwise kNotSupported, e.g.
  //   "features[1] (amount): transforms [standardize, log1p, minmax] cannot be fitted in
  //    one pass (log1p between standardize and minmax); give the stats inline or in a stats file"
  static Result<std::unique_ptr<StatsFitter>> Make(const std::vector<FeatureSpec>& features,
                                                   const Schema& input_schema,
                                                   const StatsFitterOptions& options = {});

  ~StatsFitter();
  StatsFitter(const StatsFitter&) = delete;
  StatsFitter& operator=(const StatsFitter&) = delete;

  // Accumulates one batch. Columns are found by name; a batch without a needed
  // column, or with too many distinct values, latches an error that Finish
  // returns (later batches are then ignored).
  void Add(const Batch& batch);

  // The stats of every feature, in features order. Errors: a latched Add error; a
  // feature with no usable values where an impute value or step statistics are
  // needed ("features[0] (amount): no non-null values to compute impute: mean").
  // Call once.
  Result<Stats> Finish();

  // Values left out (see above), over all features.
  int64_t skipped_values() const { return skipped_; }

 private:
  struct Accumulator;

  StatsFitter();
  Status AddFeature(Accumulator& acc, const Batch& batch);

  std::vector<Accumulator> features_;
  StatsFitterOptions options_;
  Status error_;
  int64_t skipped_ = 0;
  std::vector<double> scratch_;  // one batch of one feature's values
};

}  // namespace sluice
