// Postprocessor: turns model outputs back into output rows — prediction columns
// named, keys and passthrough columns joined back, a threshold label, an argmax
// class label, row filters — and lays the columns out in output order.
//
// Columns a job can output (and filter on) come from three places, with one
// name space:
//   input       columns of the input schema (keys, passthrough)
//   prediction  from ModelSpec::outputs, pairs column -> "out" or "out[i]":
//               "out" of width 1 -> one column; of width k -> col_0 .. col_{k-1};
//               "out[i]" -> element i. Empty mapping: every model output under
//               its own name, expanded the same way. Type: the output's type.
//   label       output.threshold.label: value >= at -> 1 / labels[1], else
//               0 / labels[0] (int64, or string when labels are given); null when
//               the value is NaN or null.
//               output.label_column when output.labels is set: the class name at
//               the argmax of the model output whose width equals labels.size()
//               (when several do, the one the prediction columns come from);
//               ties -> first index, as numpy.argmax; NaN in the row -> null.
// A name defined twice (a prediction named like an input column, a label named
// like a prediction) is an error at Make.
//
// output.filter: every FilterSpec must hold. Numbers compare numeric columns
// (bool as 0/1, timestamps as microseconds), text compares string columns
// (byte-wise). A null or NaN value fails every filter.
// output.columns: the output columns in order; empty -> keys, prediction
// columns, threshold label, argmax label. output.keys must be input columns and,
// when output.columns is given, be listed in it.
//
// Errors at Make name the key path, in one line:
//   "output.columns: unknown column 'foo' (input: a, b; predictions: score)",
//   "output.keys: no input column 'id'", "output.filter[1]: ...", "model.outputs.score: ...".
// Indexes in key paths count from 0.
//
// Thread-safety: immutable after Make; Apply is safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/model.h"
#include "sluice/schema.h"
#include "sluice/status.h"

namespace sluice {

class Postprocessor {
 public:
  // Binds the output spec to a model and an input schema; kInvalidArgument
  // naming the key path when they do not fit together.
  static Result<std::unique_ptr<Postprocessor>> Make(const OutputSpec& output, const ModelSpec& model,
                                                     const ModelInfo& model_info, const Schema& input_schema);

  // The schema of the batches Apply builds.
  const Schema& output_schema() const { return output_schema_; }

  // A prediction column: the model output element it holds.
  struct Prediction {
    std::string name;
    size_t output = 0;   // index into ModelInfo::outputs
    size_t element = 0;  // index within the output's row
  };
  // Every prediction column the mapping defines (also those output.columns
  // leaves out), in model.outputs order.
  const std::vector<Prediction>& predictions() const { return predictions_; }

  // Input columns Apply reads (keys, passthrough, filter references), in input
  // schema order. A Postprocessor made on a schema of just these columns
  // behaves the same.
  std::vector<std::string> input_columns() const;

  // input: the batch as read (its columns are found by name; each needed one
  // must have the type it had in the schema given to Make). row_ok: one entry
  // per input row, 1 for rows that were featurized and scored. outputs: the
  // model outputs for the OK rows, compacted in order (the j-th OK row is row j
  // of each tensor), shaped as ModelInfo::outputs; not read (may be empty or
  // stale) when no row is OK.
  // Builds *out (Reset to output_schema()) from the OK rows that pass the
  // filter, in input order, with their row_lines (when input has them), and the
  // input's unit_id and first_row. Adds the OK rows the filter dropped to
  // *filtered (may be null). kInvalidArgument when the arguments do not match
  // (row_ok size, tensor shapes or types, missing input columns).
  Status Apply(const Batch& input, std::span<const uint8_t> row_ok, const std::vector<OutputTensor>& outputs,
               Batch* out, int64_t* filtered) const;

 private:
  enum class Source { kInput, kPrediction, kThresholdLabel, kClassLabel };

  // Where an output or filter column comes from. index: input field for kInput,
  // prediction column for kPrediction; unused for labels.
  struct ColumnRef {
    Source source = Source::kInput;
    size_t index = 0;
    DataType type = DataType::kFloat64;
  };
  struct Filter {
    ColumnRef ref;
    FilterOp op = FilterOp::kEq;
    bool numeric = true;
    double number = 0;
    std::string text;
  };
  struct RowLabels;

  Postprocessor() = default;

  RowLabels ComputeLabels(const std::vector<OutputTensor>& outputs, size_t ok_row) const;
  bool PassesFilters(const std::vector<const Column*>& inputs, const std::vector<OutputTensor>& outputs,
                     size_t row, size_t ok_row, const RowLabels& labels) const;
  Status CheckOutputs(const std::vector<OutputTensor>& outputs, size_t ok_rows) const;

  Schema input_schema_;
  std::vector<ModelOutputInfo> model_outputs_;
  std::vector<Prediction> predictions_;
  std::vector<bool> input_needed_;  // per input field

  // Threshold label (when has_threshold_).
  bool has_threshold_ = false;
  size_t threshold_prediction_ = 0;
  double threshold_at_ = 0.5;
  std::vector<std::string> threshold_labels_;  // {negative, positive} or empty for int64 0/1

  // Argmax class label (when class_labels_ is not empty).
  std::vector<std::string> class_labels_;
  size_t class_output_ = 0;

  std::vector<Filter> filters_;
  std::vector<ColumnRef> output_columns_;  // parallel to output_schema_
  Schema output_schema_;
};

}  // namespace sluice
