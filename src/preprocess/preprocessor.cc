#include "preprocess/preprocessor.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

#include "preprocess/feature_binding.h"
#include "preprocess/transform_step.h"

namespace sluice {

struct Preprocessor::Feature {
  std::string label;   // "features[2] (amount)"
  std::string column;  // input column
  size_t column_index = 0;  // in the schema given to Make
  std::optional<DatetimePart> datetime;
  ImputeKind impute = ImputeKind::kNone;
  size_t offset = 0;  // first output of this feature in a matrix row

  // Numeric features.
  std::vector<TransformStep> steps;
  float imputed_output = 0;  // the impute value after the transforms

  // One-hot features.
  bool one_hot = false;
  std::vector<std::string> categories;  // in output order
  std::vector<uint32_t> by_text;        // category indices sorted by text
  int64_t imputed_category = -1;        // for nulls; -1 -> all zeros
  bool unknown_is_error = false;

  // Text features.
  bool text = false;
  std::optional<std::string> imputed_text;  // for nulls; none -> reject

  size_t width() const { return one_hot ? categories.size() : 1; }

  // Index of the category equal to `text`, or -1.
  int64_t FindCategory(std::string_view text) const {
    auto it = std::lower_bound(by_text.begin(), by_text.end(), text,
                               [this](uint32_t idx, std::string_view t) { return categories[idx] < t; });
    if (it == by_text.end() || categories[*it] != text) return -1;
    return *it;
  }
};

// What the per-feature loops of one Apply call share.
struct Preprocessor::RowContext {
  const Batch& batch;
  const std::string& file;
  RejectSink* rejects;
  uint8_t* row_ok;
  float* matrix;  // n_rows x width, uncompacted
  size_t width;

  float* Row(size_t row_idx, const Feature& f) const { return matrix + row_idx * width + f.offset; }

  void Reject(size_t row_idx, const Feature& f, std::string value, std::string_view reason,
              std::string message) const {
    row_ok[row_idx] = 0;
    if (rejects == nullptr) return;
    sluice::Reject r;
    r.file = file;
    r.line = batch.row_lines.empty() ? 0 : batch.row_lines[row_idx];
    r.column = f.column;
    r.value = std::move(value);
    r.reason = std::string(reason);
    r.message = f.label + ": " + message;
    rejects->Add(std::move(r));
  }
};

namespace {

// Rows per block of Apply: 256 rows of 20 features are 20 KiB of the matrix.
constexpr size_t kBlockRows = 256;

std::string NumberText(double v) {
  char buf[kNumberTextSize];
  return std::string(NumberCategoryText(DataType::kFloat64, v, buf));
}

Status MissingStat(const BoundFeature& b, std::string_view what, std::string_view needed_for) {
  return Status::InvalidArgument(b.label + ": stats have no " + std::string(what) + " for " +
                                 std::string(needed_for));
}

}  // namespace

Preprocessor::Preprocessor() = default;
Preprocessor::~Preprocessor() = default;

Result<std::unique_ptr<Preprocessor>> Preprocessor::Make(const std::vector<FeatureSpec>& features,
                                                         const Stats& stats,
                                                         const Schema& input_schema,
                                                         const std::set<size_t>& text_features) {
  ASSIGN_OR_RETURN(std::vector<BoundFeature> bound, BindFeatures(features, input_schema));
  std::unique_ptr<Preprocessor> p(new Preprocessor());
  p->features_.reserve(bound.size());
  for (const BoundFeature& b : bound) {
    const FeatureSpec& spec = b.spec;
    const FeatureStats* fs = stats.Find(spec.name);
    const std::string impute_name = "impute: " + std::string(ImputeKindName(spec.impute));
    Feature f;
    f.label = b.label;
    f.column = spec.column;
    f.column_index = b.column_index;
    f.datetime = spec.datetime;
    f.impute = spec.impute;
    f.offset = p->output_names_.size();

    if (text_features.count(b.index)) {
      if (b.one_hot() || !spec.transforms.empty() || spec.datetime) {
        return Status::InvalidArgument(b.label +
                                       ": the model takes this feature as text; it cannot have one_hot, "
                                       "transforms or datetime");
      }
      if (b.column_type != DataType::kString) {
        return Status::InvalidArgument(b.label + ": the model takes this feature as text, but column '" +
                                       spec.column + "' is " + std::string(DataTypeName(b.column_type)));
      }
      f.text = true;
      p->has_text_ = true;
      switch (spec.impute) {
        case ImputeKind::kNone: break;
        case ImputeKind::kConstant: f.imputed_text = spec.impute_string; break;
        case ImputeKind::kMostFrequent:
          if (fs == nullptr || !fs->impute_string) return MissingStat(b, "'impute' string", impute_name);
          f.imputed_text = *fs->impute_string;
          break;
        default:
          return Status::InvalidArgument(b.label + ": the model takes this feature as text; " + impute_name +
                                         " does not apply (use none, most_frequent or {constant: …})");
      }
      p->output_names_.push_back(spec.name);
    } else if (b.one_hot()) {
      f.one_hot = true;
      f.categories = spec.one_hot;
      f.unknown_is_error = spec.unknown_category_is_error;
      f.by_text.resize(f.categories.size());
      for (uint32_t cat_idx = 0; cat_idx < f.by_text.size(); ++cat_idx) f.by_text[cat_idx] = cat_idx;
      std::sort(f.by_text.begin(), f.by_text.end(),
                [&f](uint32_t x, uint32_t y) { return f.categories[x] < f.categories[y]; });
      std::optional<std::string> imputed;
      if (spec.impute == ImputeKind::kConstant) {
        imputed = spec.impute_string;
      } else if (spec.impute == ImputeKind::kMostFrequent) {
        if (fs != nullptr && fs->impute_string) {
          imputed = *fs->impute_string;
        } else if (fs != nullptr && fs->impute_number) {
          char buf[kNumberTextSize];
          imputed = std::string(NumberCategoryText(b.column_type, *fs->impute_number, buf));
        } else {
          return MissingStat(b, "'impute' value", impute_name);
        }
      }
      if (imputed) {
        f.imputed_category = f.FindCategory(*imputed);
        if (f.imputed_category < 0 && f.unknown_is_error) {
          return Status::InvalidArgument(b.label + ": " + impute_name + " value '" + *imputed +
                                         "' is not one of the categories, and unknown categories are errors");
        }
      }
      for (const std::string& category : f.categories) {
        p->output_names_.push_back(spec.name + "=" + category);
      }
    } else {
      double impute_value = 0;
      switch (spec.impute) {
        case ImputeKind::kNone:
        case ImputeKind::kNan: break;
        case ImputeKind::kConstant:
          if (!spec.impute_number_ok) {
            return Status::InvalidArgument(b.label + ": impute constant '" + spec.impute_string +
                                           "' is not a number");
          }
          impute_value = spec.impute_number;
          break;
        case ImputeKind::kMean:
        case ImputeKind::kMedian:
        case ImputeKind::kMostFrequent:
          if (fs != nullptr && !fs->impute_number && fs->impute_string) {
            return Status::InvalidArgument(b.label + ": stats 'impute' value is the string '" +
                                           *fs->impute_string + "'; a numeric feature needs a number");
          }
          if (fs == nullptr || !fs->impute_number) return MissingStat(b, "'impute' value", impute_name);
          impute_value = *fs->impute_number;
          break;
      }
      for (const TransformSpec& t : spec.transforms) {
        switch (t.kind) {
          case TransformKind::kLog1p: f.steps.push_back(TransformStep::Log1p()); break;
          case TransformKind::kStandardize:
            if (fs == nullptr || !fs->mean || !fs->std) {
              return MissingStat(b, "'standardize' values (mean, std)", "transform standardize");
            }
            if (!(*fs->std >= 0)) {
              return Status::InvalidArgument(b.label + ": stats standardize std is negative");
            }
            f.steps.push_back(TransformStep::Standardize(*fs->mean, *fs->std));
            break;
          case TransformKind::kMinMax:
            if (fs == nullptr || !fs->min || !fs->max) {
              return MissingStat(b, "'minmax' values (min, max)", "transform minmax");
            }
            if (*fs->min > *fs->max) {
              return Status::InvalidArgument(b.label + ": stats minmax min is greater than max");
            }
            f.steps.push_back(TransformStep::MinMax(*fs->min, *fs->max));
            break;
          case TransformKind::kClip: f.steps.push_back(TransformStep::Clip(t)); break;
        }
      }
      if (spec.impute != ImputeKind::kNone && spec.impute != ImputeKind::kNan) {
        // Every null becomes the same output: compute it once, and refuse an
        // impute value that the transforms cannot take.
        double y = impute_value;
        const int failed = RunSteps(f.steps, &y);
        if (failed >= 0) {
          return Status::InvalidArgument(b.label + ": " + impute_name + " value " +
                                         NumberText(impute_value) + " is outside the domain of transform " +
                                         std::string(TransformKindName(spec.transforms[failed].kind)));
        }
        f.imputed_output = static_cast<float>(y);
        if (!std::isfinite(f.imputed_output)) {
          return Status::InvalidArgument(b.label + ": " + impute_name + " value " +
                                         NumberText(impute_value) +
                                         " does not give a finite float32 after the transforms");
        }
      }
      p->output_names_.push_back(spec.name);
    }
    p->features_.push_back(std::move(f));
  }
  return p;
}

std::vector<std::string> Preprocessor::input_columns() const {
  std::vector<std::string> columns;
  for (const Feature& f : features_) {
    if (std::find(columns.begin(), columns.end(), f.column) == columns.end()) {
      columns.push_back(f.column);
    }
  }
  return columns;
}

namespace {

// The common block of a float64 column, without branches so that it vectorizes:
// the values after `steps` (none of them log1p), as float32, into out[0, n).
// False, with `out` undefined, when some value is null or NaN, or some result
// is not a finite float32: the caller then takes the block value by value. The
// arithmetic is RunSteps' own, in the same order. (Rows already rejected get a
// value too; compaction drops it.)
bool PlainFloat64Block(const double* v, const uint8_t* valid, size_t n, std::span<const TransformStep> steps,
                       float* out) {
  double y[kBlockRows];
  unsigned bad = 0;
  for (size_t i = 0; i < n; ++i) {
    y[i] = v[i];
    bad |= valid[i] ^ 1u;
  }
  for (const TransformStep& s : steps) {
    const double a = s.a;
    const double b = s.b;
    switch (s.kind) {
      case TransformKind::kLog1p: return false;
      case TransformKind::kStandardize:
      case TransformKind::kMinMax:
        for (size_t i = 0; i < n; ++i) y[i] = (y[i] - a) / b;
        break;
      case TransformKind::kClip:
        for (size_t i = 0; i < n; ++i) y[i] = y[i] < a ? a : (y[i] > b ? b : y[i]);
        break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(y[i]);
    // Not finite (NaN included): all exponent bits set.
    bad |= static_cast<unsigned>((std::bit_cast<uint32_t>(out[i]) & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace

void Preprocessor::ApplyNumeric(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const {
  // Copied out of ctx and f: the stores through `out` could alias them (row_ok is
  // a byte pointer), which would make the compiler reload them for every value.
  const uint8_t* const row_ok = ctx.row_ok;
  float* const first_out = ctx.Row(0, f);
  const size_t width = ctx.width;
  const std::span<const TransformStep> steps = f.steps;
  assert(end - begin <= kBlockRows);
  if (col.type() == DataType::kFloat64) {
    float values[kBlockRows];
    if (PlainFloat64Block(col.float64s().data() + begin, col.validity().data() + begin, end - begin, steps,
                          values)) {
      float* out = first_out + begin * width;
      for (size_t i = 0; i < end - begin; ++i, out += width) *out = values[i];
      return;
    }
  }
  ForEachNumericValue(col, f.datetime, begin, end, [&](size_t row_idx, ValueState state, double x) {
    if (!row_ok[row_idx]) return;
    // The common value, inline; anything else (nulls, rejects) out of line.
    if (state == ValueState::kValue) {
      double y = x;
      if (RunSteps(steps, &y) < 0) {
        const float value = static_cast<float>(y);
        if (std::isfinite(value)) {
          first_out[row_idx * width] = value;
          return;
        }
      }
    }
    ApplyNumericValue(f, col, ctx, row_idx, state, x);
  });
}

void Preprocessor::ApplyNumericValue(const Feature& f, const Column& col, RowContext& ctx, size_t row_idx,
                                     ValueState state, double x) const {
  float* out = ctx.Row(row_idx, f);
  if (state == ValueState::kValue) {
    double y = x;
    const int failed = RunSteps(f.steps, &y);
    if (failed >= 0) {
      ctx.Reject(row_idx, f, RejectValueText(col, row_idx), reject_reason::kInvalidFeature,
                 "log1p of " + NumberText(y) + " (needs a value > -1)");
      return;
    }
    const float value = static_cast<float>(y);
    if (!std::isfinite(value)) {
      ctx.Reject(row_idx, f, RejectValueText(col, row_idx), reject_reason::kInvalidFeature,
                 "value " + NumberText(y) + " after transforms is not a finite float32");
      return;
    }
    *out = value;
    return;
  }
  if (state == ValueState::kBad) {
    const std::string text = RejectValueText(col, row_idx);
    std::string message = col.type() == DataType::kString
                              ? "value '" + text + "' in column '" + f.column + "' is not a number"
                              : "column '" + f.column + "' of type " +
                                    std::string(DataTypeName(col.type())) + " cannot give this feature";
    ctx.Reject(row_idx, f, text, reject_reason::kBadValue, std::move(message));
    return;
  }
  switch (f.impute) {
    case ImputeKind::kNone:
      ctx.Reject(row_idx, f, std::string(), reject_reason::kMissingValue,
                 "null in column '" + f.column + "' and impute is none");
      return;
    case ImputeKind::kNan: *out = std::numeric_limits<float>::quiet_NaN(); return;
    default: *out = f.imputed_output; return;
  }
}

void Preprocessor::ApplyOneHot(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const {
  const uint8_t* row_ok = ctx.row_ok;
  const size_t k = f.categories.size();
  ForEachCategoryText(col, f.datetime, begin, end, [&](size_t row_idx, ValueState state, std::string_view text) {
    if (!row_ok[row_idx]) return;
    float* out = ctx.Row(row_idx, f);
    int64_t hot = -1;
    if (state == ValueState::kValue) {
      hot = f.FindCategory(text);
      if (hot < 0 && f.unknown_is_error) {
        ctx.Reject(row_idx, f, RejectValueText(col, row_idx), reject_reason::kUnknownCategory,
                   "unknown category '" + std::string(text.substr(0, 256)) + "' in column '" + f.column + "'");
        return;
      }
    } else if (state == ValueState::kBad) {
      ctx.Reject(row_idx, f, RejectValueText(col, row_idx), reject_reason::kBadValue,
                 "column '" + f.column + "' of type " + std::string(DataTypeName(col.type())) +
                     " cannot give this feature");
      return;
    } else if (f.impute == ImputeKind::kNan) {
      std::fill(out, out + k, std::numeric_limits<float>::quiet_NaN());
      return;
    } else {
      hot = f.imputed_category;
    }
    std::fill(out, out + k, 0.0f);
    if (hot >= 0) out[hot] = 1.0f;
  });
}

void Preprocessor::CheckText(const Feature& f, const Column& col, size_t begin, size_t end, RowContext& ctx) const {
  for (size_t row_idx = begin; row_idx < end; ++row_idx) {
    if (!ctx.row_ok[row_idx]) continue;
    *ctx.Row(row_idx, f) = std::numeric_limits<float>::quiet_NaN();
    if (col.type() != DataType::kString) {
      ctx.Reject(row_idx, f, RejectValueText(col, row_idx), reject_reason::kBadValue,
                 "column '" + f.column + "' of type " + std::string(DataTypeName(col.type())) +
                     " cannot give this text feature");
    } else if (col.IsNull(row_idx) && !f.imputed_text) {
      ctx.Reject(row_idx, f, std::string(), reject_reason::kMissingValue,
                 "null in column '" + f.column + "' and impute is none");
    }
  }
}

size_t Preprocessor::Apply(const Batch& batch, const std::string& file, std::vector<float>* matrix,
                           std::vector<uint8_t>* row_ok, RejectSink* rejects, std::vector<Column>* text) const {
  const size_t n_rows = batch.num_rows();
  const size_t width = num_outputs();
  row_ok->assign(n_rows, 1);
  matrix->resize(n_rows * width);
  RowContext ctx{batch, file, rejects, row_ok->data(), matrix->data(), width};

  std::vector<const Column*> columns(features_.size());
  for (size_t i = 0; i < features_.size(); ++i) {
    columns[i] = FindBatchColumn(batch, features_[i].column_index, features_[i].column);
  }
  // Rows in blocks, every feature over a block before the next: a block's rows
  // of the matrix stay in the L1 cache while each feature writes its column.
  // A row rejected by one feature is skipped by the later ones, as before.
  for (size_t begin = 0; begin < n_rows; begin += kBlockRows) {
    const size_t end = std::min(n_rows, begin + kBlockRows);
    for (size_t i = 0; i < features_.size(); ++i) {
      const Feature& f = features_[i];
      const Column* col = columns[i];
      if (col == nullptr) {
        for (size_t row_idx = begin; row_idx < end; ++row_idx) {
          if (!ctx.row_ok[row_idx]) continue;
          ctx.Reject(row_idx, f, std::string(), reject_reason::kMissingValue,
                     "no input column '" + f.column + "' in this batch");
        }
      } else if (f.text) {
        CheckText(f, *col, begin, end, ctx);
      } else if (f.one_hot) {
        ApplyOneHot(f, *col, begin, end, ctx);
      } else {
        ApplyNumeric(f, *col, begin, end, ctx);
      }
    }
  }

  // Compact: move the rows that featurized to the front, in order.
  size_t n_ok = 0;
  float* data = matrix->data();
  for (size_t row_idx = 0; row_idx < n_rows; ++row_idx) {
    if (!ctx.row_ok[row_idx]) continue;
    if (n_ok != row_idx && width > 0) {
      std::memmove(data + n_ok * width, data + row_idx * width, width * sizeof(float));
    }
    ++n_ok;
  }
  matrix->resize(n_ok * width);

  if (text != nullptr) {
    text->resize(width, Column(DataType::kString));
    for (Column& column : *text) {
      if (column.type() == DataType::kString) {
        column.Clear();
      } else {
        column = Column(DataType::kString);
      }
    }
  }
  if (!has_text_) return n_ok;
  assert(text != nullptr);
  for (const Feature& f : features_) {
    if (!f.text || n_ok == 0) continue;
    // Every OK row passed CheckText, so the column exists, is a string column, and
    // its nulls have an imputed value.
    const Column& col = *FindBatchColumn(batch, f.column_index, f.column);
    Column& out = (*text)[f.offset];
    out.Reserve(n_ok);
    for (size_t row_idx = 0; row_idx < n_rows; ++row_idx) {
      if (!ctx.row_ok[row_idx]) continue;
      out.AppendString(col.IsNull(row_idx) ? std::string_view(*f.imputed_text) : col.StringAt(row_idx));
    }
  }
  return n_ok;
}

}  // namespace sluice
