#include "postprocess/postprocessor.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

#include "core/strings.h"

namespace sluice {

namespace {

bool IsNumeric(DataType type) { return type != DataType::kString; }

std::string FormatNumber(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

std::string DescribeOutputs(const std::vector<ModelOutputInfo>& outputs) {
  std::vector<std::string> items;
  for (const ModelOutputInfo& o : outputs) {
    items.push_back(o.name + " (width " + std::to_string(o.width) + ")");
  }
  return JoinNames(items);
}

// "out" -> {out, nullopt}; "out[3]" -> {out, 3}; anything else -> nullopt.
std::optional<std::pair<std::string, std::optional<size_t>>> ParseOutputRef(std::string_view ref) {
  const size_t open = ref.find('[');
  if (open == std::string_view::npos) {
    if (ref.empty() || ref.find(']') != std::string_view::npos) return std::nullopt;
    return std::make_pair(std::string(ref), std::optional<size_t>());
  }
  if (open == 0 || ref.back() != ']') return std::nullopt;
  std::string_view digits = ref.substr(open + 1, ref.size() - open - 2);
  size_t index = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return std::make_pair(std::string(ref.substr(0, open)), std::optional<size_t>(index));
}

template <typename T>
bool Compare(FilterOp op, const T& a, const T& b) {
  switch (op) {
    case FilterOp::kEq: return a == b;
    case FilterOp::kNe: return a != b;
    case FilterOp::kLt: return a < b;
    case FilterOp::kLe: return a <= b;
    case FilterOp::kGt: return a > b;
    case FilterOp::kGe: return a >= b;
  }
  return false;
}

}  // namespace

struct Postprocessor::RowLabels {
  int threshold = -1;       // -1 null, 0 negative, 1 positive
  int64_t class_index = -1;  // -1 null
};

Result<std::unique_ptr<Postprocessor>> Postprocessor::Make(const OutputSpec& output, const ModelSpec& model,
                                                           const ModelInfo& model_info,
                                                           const Schema& input_schema) {
  std::unique_ptr<Postprocessor> p(new Postprocessor());
  p->input_schema_ = input_schema;
  p->model_outputs_ = model_info.outputs;
  p->input_needed_.assign(input_schema.num_fields(), false);

  // Every column a job may output or filter on, in one name space.
  struct Named {
    std::string name;
    ColumnRef ref;
  };
  std::vector<Named> names;
  auto find = [&names](std::string_view name) -> const Named* {
    for (const Named& n : names) {
      if (n.name == name) return &n;
    }
    return nullptr;
  };
  auto describe_source = [](Source source) -> std::string {
    switch (source) {
      case Source::kInput: return "an input column";
      case Source::kPrediction: return "a prediction column";
      case Source::kThresholdLabel: return "the threshold label";
      case Source::kClassLabel: return "the class label";
    }
    return "a column";
  };
  auto list_columns = [&names]() {
    std::vector<std::string> input, predictions, labels;
    for (const Named& n : names) {
      switch (n.ref.source) {
        case Source::kInput: input.push_back(n.name); break;
        case Source::kPrediction: predictions.push_back(n.name); break;
        default: labels.push_back(n.name); break;
      }
    }
    std::string out = "(input: " + JoinNames(input) + "; predictions: " + JoinNames(predictions);
    if (!labels.empty()) out += "; labels: " + JoinNames(labels);
    return out + ")";
  };
  for (size_t i = 0; i < input_schema.num_fields(); ++i) {
    const Field& field = input_schema.field(i);
    if (!find(field.name)) names.push_back({field.name, {Source::kInput, i, field.type}});
  }

  // ---- prediction columns ----
  auto add_prediction = [&](const std::string& key, std::string name, size_t out_idx, size_t element) -> Status {
    if (name.empty()) return Status::InvalidArgument(key + ": empty prediction column name");
    if (const Named* existing = find(name)) {
      return Status::InvalidArgument(key + ": prediction column '" + name + "' is already " +
                                     describe_source(existing->ref.source) + "; name it differently in model.outputs");
    }
    names.push_back({name, {Source::kPrediction, p->predictions_.size(), model_info.outputs[out_idx].type}});
    p->predictions_.push_back({std::move(name), out_idx, element});
    return Status::OK();
  };
  auto add_whole_output = [&](const std::string& key, const std::string& name, size_t out_idx) -> Status {
    const size_t width = model_info.outputs[out_idx].width;
    if (width == 1) return add_prediction(key, name, out_idx, 0);
    for (size_t e = 0; e < width; ++e) {
      RETURN_IF_ERROR(add_prediction(key, name + "_" + std::to_string(e), out_idx, e));
    }
    return Status::OK();
  };
  if (model.outputs.empty()) {
    for (size_t o = 0; o < model_info.outputs.size(); ++o) {
      RETURN_IF_ERROR(add_whole_output("model.outputs", model_info.outputs[o].name, o));
    }
  } else {
    for (const auto& [column, ref] : model.outputs) {
      const std::string key = "model.outputs." + column;
      auto parsed = ParseOutputRef(ref);
      if (!parsed) {
        return Status::InvalidArgument(key + ": bad output reference '" + ref + "' (expected 'name' or 'name[i]')");
      }
      const auto& [out_name, element] = *parsed;
      std::optional<size_t> out_idx;
      for (size_t o = 0; o < model_info.outputs.size(); ++o) {
        if (model_info.outputs[o].name == out_name) out_idx = o;
      }
      if (!out_idx) {
        return Status::InvalidArgument(key + ": model has no output '" + out_name + "' (outputs: " +
                                       DescribeOutputs(model_info.outputs) + ")");
      }
      if (!element) {
        RETURN_IF_ERROR(add_whole_output(key, column, *out_idx));
        continue;
      }
      const size_t width = model_info.outputs[*out_idx].width;
      if (*element >= width) {
        return Status::InvalidArgument(key + ": index " + std::to_string(*element) + " is out of range for output '" +
                                       out_name + "' of width " + std::to_string(width));
      }
      RETURN_IF_ERROR(add_prediction(key, column, *out_idx, *element));
    }
  }
  auto prediction_names = [&p]() {
    std::vector<std::string> out;
    for (const Prediction& pred : p->predictions_) out.push_back(pred.name);
    return JoinNames(out);
  };
  auto add_label = [&](const std::string& key, const std::string& name, Source source, DataType type) -> Status {
    if (name.empty()) return Status::InvalidArgument(key + ": empty column name");
    if (const Named* existing = find(name)) {
      return Status::InvalidArgument(key + ": column '" + name + "' is already " +
                                     describe_source(existing->ref.source) + "; choose another name");
    }
    names.push_back({name, {source, 0, type}});
    return Status::OK();
  };

  // ---- threshold label ----
  if (output.threshold) {
    const ThresholdSpec& threshold = *output.threshold;
    const Named* column = find(threshold.column);
    if (!column || column->ref.source != Source::kPrediction) {
      return Status::InvalidArgument("output.threshold.column: '" + threshold.column +
                                     "' is not a prediction column (predictions: " + prediction_names() + ")");
    }
    if (!IsNumeric(column->ref.type)) {
      return Status::InvalidArgument("output.threshold.column: prediction column '" + threshold.column + "' is " +
                                     std::string(DataTypeName(column->ref.type)) + ", not a number");
    }
    if (!threshold.labels.empty() && threshold.labels.size() != 2) {
      return Status::InvalidArgument("output.threshold.labels: expected 2 names (negative, positive), got " +
                                     std::to_string(threshold.labels.size()));
    }
    p->has_threshold_ = true;
    p->threshold_prediction_ = column->ref.index;
    p->threshold_at_ = threshold.at;
    p->threshold_labels_ = threshold.labels;
    RETURN_IF_ERROR(add_label("output.threshold.label", threshold.label, Source::kThresholdLabel,
                              threshold.labels.empty() ? DataType::kInt64 : DataType::kString));
  }

  // ---- argmax class label ----
  if (!output.labels.empty()) {
    const size_t num_classes = output.labels.size();
    if (num_classes < 2) {
      return Status::InvalidArgument("output.labels: need at least 2 class names, got 1 (for one score use "
                                     "output.threshold)");
    }
    std::vector<size_t> candidates;
    for (size_t o = 0; o < model_info.outputs.size(); ++o) {
      if (model_info.outputs[o].width == num_classes && IsNumeric(model_info.outputs[o].type)) {
        candidates.push_back(o);
      }
    }
    if (candidates.size() > 1) {
      std::vector<size_t> mapped;
      for (size_t o : candidates) {
        for (const Prediction& pred : p->predictions_) {
          if (pred.output == o) {
            mapped.push_back(o);
            break;
          }
        }
      }
      if (!mapped.empty()) candidates = std::move(mapped);
    }
    if (candidates.empty()) {
      return Status::InvalidArgument("output.labels: no numeric model output has " + std::to_string(num_classes) +
                                     " values per row to match " + std::to_string(num_classes) +
                                     " class names (outputs: " + DescribeOutputs(model_info.outputs) + ")");
    }
    if (candidates.size() > 1) {
      std::vector<std::string> ambiguous;
      for (size_t o : candidates) ambiguous.push_back(model_info.outputs[o].name);
      return Status::InvalidArgument("output.labels: ambiguous, model outputs " + JoinNames(ambiguous) + " all have " +
                                     std::to_string(num_classes) + " values per row; map only one in model.outputs");
    }
    p->class_labels_ = output.labels;
    p->class_output_ = candidates[0];
    RETURN_IF_ERROR(add_label("output.label_column", output.label_column, Source::kClassLabel, DataType::kString));
  }

  // ---- keys and output columns ----
  for (size_t k = 0; k < output.keys.size(); ++k) {
    const std::string& key = output.keys[k];
    const Named* column = find(key);
    if (!column || column->ref.source != Source::kInput) {
      return Status::InvalidArgument("output.keys: no input column '" + key + "'");
    }
    for (size_t j = 0; j < k; ++j) {
      if (output.keys[j] == key) return Status::InvalidArgument("output.keys: column '" + key + "' listed twice");
    }
  }
  std::vector<std::string> column_names;
  if (!output.columns.empty()) {
    column_names = output.columns;
    for (const std::string& key : output.keys) {
      if (std::find(column_names.begin(), column_names.end(), key) == column_names.end()) {
        return Status::InvalidArgument("output.keys: key '" + key + "' is not in output.columns");
      }
    }
  } else {
    column_names = output.keys;
    for (const Named& n : names) {
      if (n.ref.source != Source::kInput) column_names.push_back(n.name);
    }
  }
  for (size_t c = 0; c < column_names.size(); ++c) {
    const std::string& name = column_names[c];
    const Named* column = find(name);
    if (!column) return Status::InvalidArgument("output.columns: unknown column '" + name + "' " + list_columns());
    for (size_t j = 0; j < c; ++j) {
      if (column_names[j] == name) {
        return Status::InvalidArgument("output.columns: column '" + name + "' listed twice");
      }
    }
    if (column->ref.source == Source::kInput) p->input_needed_[column->ref.index] = true;
    p->output_columns_.push_back(column->ref);
    p->output_schema_.AddField(Field{name, column->ref.type});
  }

  // ---- filters ----
  for (size_t i = 0; i < output.filter.size(); ++i) {
    const FilterSpec& spec = output.filter[i];
    const std::string key = "output.filter[" + std::to_string(i) + "]";
    const Named* column = find(spec.column);
    if (!column) {
      return Status::InvalidArgument(key + ": unknown column '" + spec.column + "' " + list_columns());
    }
    Filter filter;
    filter.ref = column->ref;
    filter.op = spec.op;
    filter.numeric = spec.number.has_value();
    if (filter.numeric) {
      filter.number = *spec.number;
      if (!IsNumeric(column->ref.type)) {
        return Status::InvalidArgument(key + ": column '" + spec.column +
                                       "' is string; compare it with text, not the number " +
                                       FormatNumber(filter.number));
      }
    } else {
      filter.text = spec.text;
      if (IsNumeric(column->ref.type)) {
        return Status::InvalidArgument(key + ": column '" + spec.column + "' is " +
                                       std::string(DataTypeName(column->ref.type)) +
                                       "; compare it with a number, not the text '" + spec.text + "'");
      }
    }
    if (column->ref.source == Source::kInput) p->input_needed_[column->ref.index] = true;
    p->filters_.push_back(std::move(filter));
  }
  return p;
}

std::vector<std::string> Postprocessor::input_columns() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < input_needed_.size(); ++i) {
    if (input_needed_[i]) out.push_back(input_schema_.field(i).name);
  }
  return out;
}

Status Postprocessor::CheckOutputs(const std::vector<OutputTensor>& outputs, size_t ok_rows) const {
  if (outputs.size() != model_outputs_.size()) {
    return Status::InvalidArgument("postprocess: got " + std::to_string(outputs.size()) + " model outputs, expected " +
                                   std::to_string(model_outputs_.size()));
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    const ModelOutputInfo& info = model_outputs_[o];
    const OutputTensor& tensor = outputs[o];
    if (tensor.width != info.width || tensor.values.type() != info.type ||
        tensor.values.size() != ok_rows * info.width) {
      return Status::InvalidArgument(
          "postprocess: model output '" + info.name + "' has " + std::to_string(tensor.values.size()) + " " +
          std::string(DataTypeName(tensor.values.type())) + " values of width " + std::to_string(tensor.width) +
          ", expected " + std::to_string(ok_rows) + " scored rows of " + std::string(DataTypeName(info.type)) +
          " width " + std::to_string(info.width));
    }
  }
  return Status::OK();
}

Postprocessor::RowLabels Postprocessor::ComputeLabels(const std::vector<OutputTensor>& outputs,
                                                      size_t ok_row) const {
  RowLabels labels;
  if (has_threshold_) {
    const Prediction& pred = predictions_[threshold_prediction_];
    const OutputTensor& tensor = outputs[pred.output];
    const size_t idx = ok_row * tensor.width + pred.element;
    if (tensor.values.IsValid(idx)) {
      const double v = tensor.values.NumericAt(idx);
      if (!std::isnan(v)) labels.threshold = v >= threshold_at_ ? 1 : 0;
    }
  }
  if (!class_labels_.empty()) {
    const OutputTensor& tensor = outputs[class_output_];
    const size_t base = ok_row * tensor.width;
    double best = 0;
    for (size_t c = 0; c < tensor.width; ++c) {
      if (tensor.values.IsNull(base + c)) return {labels.threshold, -1};
      const double v = tensor.values.NumericAt(base + c);
      if (std::isnan(v)) return {labels.threshold, -1};
      // Strictly greater: ties keep the first index, as numpy.argmax.
      if (c == 0 || v > best) {
        best = v;
        labels.class_index = static_cast<int64_t>(c);
      }
    }
  }
  return labels;
}

bool Postprocessor::PassesFilters(const std::vector<const Column*>& inputs, const std::vector<OutputTensor>& outputs,
                                  size_t row, size_t ok_row, const RowLabels& labels) const {
  for (const Filter& filter : filters_) {
    const Column* column = nullptr;
    size_t idx = 0;
    switch (filter.ref.source) {
      case Source::kInput:
        column = inputs[filter.ref.index];
        idx = row;
        break;
      case Source::kPrediction: {
        const Prediction& pred = predictions_[filter.ref.index];
        column = &outputs[pred.output].values;
        idx = ok_row * outputs[pred.output].width + pred.element;
        break;
      }
      case Source::kThresholdLabel:
        if (labels.threshold < 0) return false;
        if (filter.numeric) {
          if (!Compare(filter.op, static_cast<double>(labels.threshold), filter.number)) return false;
        } else if (!Compare(filter.op, std::string_view(threshold_labels_[labels.threshold]),
                            std::string_view(filter.text))) {
          return false;
        }
        continue;
      case Source::kClassLabel:
        if (labels.class_index < 0) return false;
        if (!Compare(filter.op, std::string_view(class_labels_[labels.class_index]), std::string_view(filter.text))) {
          return false;
        }
        continue;
    }
    if (column->IsNull(idx)) return false;
    if (filter.numeric) {
      const double v = column->NumericAt(idx);
      if (std::isnan(v) || !Compare(filter.op, v, filter.number)) return false;
    } else if (!Compare(filter.op, column->StringAt(idx), std::string_view(filter.text))) {
      return false;
    }
  }
  return true;
}

Status Postprocessor::Apply(const Batch& input, std::span<const uint8_t> row_ok,
                            const std::vector<OutputTensor>& outputs, Batch* out, int64_t* filtered) const {
  const size_t rows = input.num_rows();
  if (row_ok.size() != rows) {
    return Status::InvalidArgument("postprocess: row_ok has " + std::to_string(row_ok.size()) +
                                   " entries for a batch of " + std::to_string(rows) + " rows");
  }
  size_t ok_rows = 0;
  for (uint8_t ok : row_ok) ok_rows += ok ? 1 : 0;
  // With no scored row the caller may skip Predict; outputs are then not read.
  if (ok_rows > 0) RETURN_IF_ERROR(CheckOutputs(outputs, ok_rows));

  std::vector<const Column*> inputs(input_schema_.num_fields(), nullptr);  // per batch, not per row
  for (size_t i = 0; i < input_needed_.size(); ++i) {
    if (!input_needed_[i]) continue;
    const Field& field = input_schema_.field(i);
    std::optional<size_t> idx = input.schema.FieldIndex(field.name);
    if (!idx || *idx >= input.columns.size()) {
      return Status::InvalidArgument("postprocess: input batch has no column '" + field.name + "'");
    }
    if (input.columns[*idx].type() != field.type) {
      return Status::InvalidArgument("postprocess: input column '" + field.name + "' is " +
                                     std::string(DataTypeName(input.columns[*idx].type())) + ", expected " +
                                     std::string(DataTypeName(field.type)));
    }
    inputs[i] = &input.columns[*idx];
  }

  out->Reset(output_schema_);
  out->unit_id = input.unit_id;
  out->first_row = input.first_row;
  const bool copy_lines = input.row_lines.size() == rows;
  int64_t dropped = 0;
  size_t ok_row = 0;
  for (size_t row = 0; row < rows; ++row) {
    if (!row_ok[row]) continue;
    const size_t j = ok_row++;
    const RowLabels labels = ComputeLabels(outputs, j);
    if (!PassesFilters(inputs, outputs, row, j, labels)) {
      ++dropped;
      continue;
    }
    for (size_t c = 0; c < output_columns_.size(); ++c) {
      const ColumnRef& ref = output_columns_[c];
      Column& dst = out->columns[c];
      switch (ref.source) {
        case Source::kInput:
          dst.AppendFrom(*inputs[ref.index], row);
          break;
        case Source::kPrediction: {
          const Prediction& pred = predictions_[ref.index];
          const OutputTensor& tensor = outputs[pred.output];
          dst.AppendFrom(tensor.values, j * tensor.width + pred.element);
          break;
        }
        case Source::kThresholdLabel:
          if (labels.threshold < 0) {
            dst.AppendNull();
          } else if (threshold_labels_.empty()) {
            dst.AppendInt64(labels.threshold);
          } else {
            dst.AppendString(threshold_labels_[labels.threshold]);
          }
          break;
        case Source::kClassLabel:
          if (labels.class_index < 0) {
            dst.AppendNull();
          } else {
            dst.AppendString(class_labels_[labels.class_index]);
          }
          break;
      }
    }
    if (copy_lines) out->row_lines.push_back(input.row_lines[row]);
  }
  if (filtered != nullptr) *filtered += dropped;
  return Status::OK();
}

}  // namespace sluice
