// Preprocessor: turns an input Batch into the model's feature matrix (row-major
// float32), following the job's `features` list and the training-side Stats.
//
// Per numeric feature, in order:
//   1. value: int64 / float32 / float64 / bool (0/1) as a number; a string column
//      is parsed as a number (unparseable -> reject bad_value); a timestamp column
//      through its datetime part (hour, dow Monday=0, day, month, year, epoch
//      seconds; UTC). A NaN value counts as null.
//   2. null: impute none -> reject missing_value; nan -> the output is NaN (no
//      transforms); mean / median / most_frequent -> Stats "impute" value;
//      constant -> FeatureSpec::impute_number.
//   3. transforms in order, in double: log1p (x <= -1 -> reject invalid_feature),
//      standardize (x - mean) / std, minmax (x - min) / (max - min), clip.
//      A zero std or a zero range (max == min) scales by 1, as scikit-learn's
//      StandardScaler and MinMaxScaler do; so a constant training feature maps to 0.
//   4. stored as float32; a result that is not a finite float32 (inf, overflow)
//      rejects the row with invalid_feature.
// Per one-hot feature (FeatureSpec::one_hot non-empty), k outputs 0/1:
//   the value's text (strings as they are; int64 in decimal; floats in their
//   shortest round-trip form, "2.5", "3"; bool "true"/"false"; a datetime part in
//   decimal) is compared with the categories. Unknown -> all zeros, or reject
//   unknown_category when FeatureSpec::unknown_category_is_error. Null: impute
//   most_frequent (Stats "impute") or constant (FeatureSpec::impute_string) ->
//   that category; impute none -> all zeros (like scikit-learn's OneHotEncoder
//   with handle_unknown='ignore'); impute nan -> all k outputs NaN.
// Per text feature (its index is in the text_features given to Make; the model
//   takes it as a string): the value of a kString column as it is; null ->
//   impute constant (FeatureSpec::impute_string) or most_frequent (Stats
//   "impute" string), impute none -> reject missing_value. Its matrix column
//   holds NaN; the text goes to the feature's compacted text column (see Apply).
//
// Thread-safety: immutable after Make; Apply is const and safe to call
// concurrently from several threads (each with its own output vectors).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "preprocess/stats.h"
#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/status.h"

namespace sluice {

enum class ValueState : uint8_t;  // preprocess/feature_binding.h

class Preprocessor {
 public:
  // Binds each feature to its input column (FeatureSpec::column, default the
  // name) and checks everything that can be checked before reading data; `stats`
  // is read here and not kept. Errors (kInvalidArgument; kNotSupported for a
  // parameterized transform listed twice) are one line and name the feature:
  //   "features[2] (amount): stats have no 'impute' value for impute: median"
  //   "features[0] (amount): no input column 'amount' (columns: id, x, y)"
  //   "features[3] (hour): datetime needs a timestamp or date column, 'ts' is string"
  // Also: standardize without stats mean/std, minmax without min/max, an impute
  // value that the transforms reject (log1p of -5), a one-hot impute value that
  // is not a category when unknown categories are errors, a numeric constant that
  // is not a number. `text_features` holds the indices (in `features`) of the
  // features the model takes as text: each must read a string column and have no
  // transforms, one_hot or datetime, and impute none, constant or most_frequent.
  static Result<std::unique_ptr<Preprocessor>> Make(const std::vector<FeatureSpec>& features,
                                                    const Stats& stats, const Schema& input_schema,
                                                    const std::set<size_t>& text_features = {});

  ~Preprocessor();
  Preprocessor(const Preprocessor&) = delete;
  Preprocessor& operator=(const Preprocessor&) = delete;

  // Width of a matrix row: one per numeric feature, k per one-hot feature.
  size_t num_outputs() const { return output_names_.size(); }
  // Name of each output: the feature name, or "name=category" for one-hot.
  const std::vector<std::string>& output_names() const { return output_names_; }
  // Distinct input columns read, in order of first use.
  std::vector<std::string> input_columns() const;

  // Featurizes every row of `batch`. Rows that featurize are written COMPACTED
  // (in input order) into *matrix, resized to n_ok * num_outputs() (row-major);
  // *row_ok is resized to batch.num_rows() and gets 1 for those rows, 0 for the
  // others. Each rejected row is reported once, for the first feature (in
  // features order) that fails, to `rejects` (may be null) with file = `file`,
  // line = batch.row_lines[i] (0 when row_lines is empty), the input column, the
  // value text and a reason (reject_reason::): missing_value, bad_value,
  // unknown_category, invalid_feature. Returns n_ok. Reports come block by block
  // (256 rows), and within a block feature by feature.
  //
  // Columns are found by name in batch.schema (fast when it equals the schema
  // given to Make); a column missing from the batch rejects every row
  // (missing_value). No heap allocation per row except for reject records.
  //
  // With text features, `text` must be non-null: it is resized to num_outputs();
  // entry i is, for a text feature at output i, a kString column of n_ok values
  // (the feature's text of the OK rows, compacted like the matrix), and an empty
  // column otherwise. Capacity is reused across calls. May be null otherwise.
  size_t Apply(const Batch& batch, const std::string& file, std::vector<float>* matrix,
               std::vector<uint8_t>* row_ok, RejectSink* rejects,
               std::vector<Column>* text = nullptr) const;

  // True when some feature is taken as text.
  bool has_text_features() const { return has_text_; }

 private:
  struct Feature;
  struct RowContext;

  Preprocessor();
  // Each of these reads rows [begin, end) of `col` for feature `f`.
  void ApplyNumeric(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const;
  // One value of ApplyNumeric that is not a plain number (nulls, rejects); kept
  // out of line so that ApplyNumeric's loop stays small.
  [[gnu::noinline]] void ApplyNumericValue(const Feature& f, const Column& col, RowContext& ctx, size_t row_idx,
                                           ValueState state, double x) const;
  void ApplyOneHot(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const;
  void CheckText(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const;

  std::vector<Feature> features_;
  std::vector<std::string> output_names_;
  bool has_text_ = false;
};

}  // namespace sluice
