// Stats: the training-side statistics that preprocessing needs (impute values,
// standardize mean/std, min-max bounds), and their file format.
//
// The stats file (written by `sluice fit-stats`, or given inline in the job):
//
//   {"sluice_stats": 1,
//    "features": {
//      "amount":   {"impute": 12.5, "standardize": {"mean": 2.1, "std": 0.7},
//                   "count": 9000, "nulls": 1000},
//      "merchant": {"impute": "grocery"},
//      "age":      {"minmax": {"min": 18, "max": 90}}
//    }}
//
// Keys of "features" are FEATURE names (FeatureSpec::name), not column names.
//   impute       the value that replaces a null: a number for numeric features, a
//                string (category) for one-hot features. For impute mean / median /
//                most_frequent the file stores the resolved value.
//   standardize  {"mean", "std"}: mean and population standard deviation (ddof=0)
//                of the values ENTERING the standardize step, i.e. after imputation
//                and the transforms listed before it. std >= 0.
//   minmax       {"min", "max"}: min and max of the values entering the step. min <= max.
//   count        informational: non-null values seen when fitting.
//   nulls        informational: null values seen when fitting.
// Every key is optional; an absent value means "not fitted". Unknown keys are
// errors (so a typo does not silently drop a statistic).
//
// An optional top-level "scores" holds reference histograms of prediction
// columns, for the score_psi alert and the run report (DESIGN.md §6):
//
//   "scores": {"score": {"edges": [0.12, 0.3, …], "fractions": [0.1, 0.1, …]}}
//
// Keys are prediction columns. edges: ascending finite inner bin edges, bins
// (-inf, e0], (e0, e1], …, (e_last, +inf); fractions: one per bin
// (edges + 1), each in [0, 1], summing to 1 within 1e-3. `sluice fit-stats`
// writes the deciles of the job's scores there (FitScoreReference).
//
// Thread-safety: a value; const methods are safe for concurrent use.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "observe/metrics.h"
#include "sluice/status.h"

namespace sluice {

struct FeatureStats {
  // At most one of the two impute values is set.
  std::optional<double> impute_number;
  std::optional<std::string> impute_string;
  // standardize step input: mean and population std (ddof=0).
  std::optional<double> mean;
  std::optional<double> std;
  // minmax step input.
  std::optional<double> min;
  std::optional<double> max;
  int64_t count = 0;  // non-null values seen when fitting (informational)
  int64_t nulls = 0;  // null values seen when fitting (informational)

  bool operator==(const FeatureStats&) const = default;
};

class Stats {
 public:
  Stats() = default;

  // Parses stats-file JSON. `origin` names the source in messages: the file name,
  // or "stats (inline)". Errors (kInvalidArgument) are one line and name the key
  // path: "stats.json: features.amount.standardize: missing 'std'",
  // "stats.json: invalid JSON: ...line 3, column 7...".
  static Result<Stats> Parse(std::string_view json, const std::string& origin);

  // Pretty JSON (2-space indent) in the format above. Features appear in the
  // order they were Set (or parsed); keys within a feature in a fixed order:
  // impute, standardize, minmax, count, nulls. count/nulls are written when either
  // is non-zero. Parse(ToJson()) gives back an equal Stats (numbers round-trip).
  std::string ToJson() const;

  // The stats of `feature`, or nullptr. The pointer is valid until the next Set.
  const FeatureStats* Find(std::string_view feature) const;

  // Adds or replaces the stats of `feature` (a replaced feature keeps its place).
  void Set(std::string feature, FeatureStats stats);

  // Feature names in order.
  std::vector<std::string> FeatureNames() const;
  size_t size() const { return entries_.size(); }

  // The reference histograms of prediction columns ("scores"), in file order.
  const std::vector<ScoreReference>& scores() const { return scores_; }
  // The reference of `column`, or nullptr. Valid until the next SetScores.
  const ScoreReference* FindScores(std::string_view column) const;
  // Adds or replaces the reference of reference.column. Precondition: it is
  // valid as described above (FitScoreReference's are).
  void SetScores(ScoreReference reference);

  bool operator==(const Stats& other) const;

 private:
  std::vector<std::pair<std::string, FeatureStats>> entries_;
  std::vector<ScoreReference> scores_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
};

// The reference histogram of `scores`: `bins` quantile bins, their inner edges
// the 1/bins … (bins-1)/bins quantiles (linear interpolation, as numpy's
// default), equal edges merged (so a score with few distinct values gets fewer
// bins), fractions the share of scores in each bin. Empty `scores`: nullopt.
std::optional<ScoreReference> FitScoreReference(std::string column, std::vector<double> scores, int bins = 10);

}  // namespace sluice
