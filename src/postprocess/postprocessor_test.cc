#include "postprocess/postprocessor.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Input: id int64, merchant string, amount float64 — 5 rows, ids 10..14,
// merchants a, b, <null>, a, c; source lines 2..6.
Batch MakeInput() {
  Batch batch;
  batch.Reset(Schema({{"id", DataType::kInt64}, {"merchant", DataType::kString}, {"amount", DataType::kFloat64}}));
  const char* merchants[] = {"a", "b", nullptr, "a", "c"};
  for (int i = 0; i < 5; ++i) {
    batch.columns[0].AppendInt64(10 + i);
    if (merchants[i]) {
      batch.columns[1].AppendString(merchants[i]);
    } else {
      batch.columns[1].AppendNull();
    }
    batch.columns[2].AppendFloat64(1.5 * i);
    batch.row_lines.push_back(2 + i);
  }
  batch.unit_id = "u7";
  batch.first_row = 100;
  return batch;
}

ModelInfo ProbaInfo() {  // like the linear softmax model: one output of width 3
  ModelInfo info;
  info.backend = "test";
  info.num_features = 2;
  info.outputs.push_back({"probabilities", DataType::kFloat32, 3});
  return info;
}

ModelInfo ScoreInfo() {  // one float32 score
  ModelInfo info;
  info.backend = "test";
  info.num_features = 2;
  info.outputs.push_back({"score", DataType::kFloat32, 1});
  return info;
}

OutputTensor Tensor(size_t width, std::vector<float> values) {
  OutputTensor t;
  t.width = width;
  t.values = Column(DataType::kFloat32);
  for (float v : values) t.values.AppendFloat32(v);
  return t;
}

std::unique_ptr<Postprocessor> MakeOk(const OutputSpec& output, const ModelSpec& model, const ModelInfo& info,
                                      const Schema& schema = MakeInput().schema) {
  Result<std::unique_ptr<Postprocessor>> p = Postprocessor::Make(output, model, info, schema);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

Status MakeError(const OutputSpec& output, const ModelSpec& model, const ModelInfo& info) {
  Result<std::unique_ptr<Postprocessor>> p = Postprocessor::Make(output, model, info, MakeInput().schema);
  EXPECT_FALSE(p.ok());
  if (p.ok()) return Status::OK();
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message().find('\n'), std::string::npos);
  return p.status();
}

std::vector<std::string> FieldNames(const Schema& schema) {
  std::vector<std::string> names;
  for (const Field& f : schema.fields()) names.push_back(f.name);
  return names;
}

// Column `name` of `batch` as text, one entry per row: "null" for nulls.
std::vector<std::string> Strings(const Batch& batch, std::string_view name) {
  const Column* c = batch.ColumnByName(name);
  EXPECT_NE(c, nullptr) << name;
  std::vector<std::string> out;
  if (!c) return out;
  for (size_t i = 0; i < c->size(); ++i) {
    if (c->IsNull(i)) {
      out.push_back("null");
    } else if (c->type() == DataType::kString) {
      out.emplace_back(c->StringAt(i));
    } else {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), c->NumericAt(i));
      out.emplace_back(buf, end);
    }
  }
  return out;
}

using Strs = std::vector<std::string>;
std::vector<uint8_t> Ok(std::vector<uint8_t> v) { return v; }
const std::vector<uint8_t> kAllOk(5, 1);

// ---- prediction columns ----

TEST(PostprocessorTest, EmptyMappingExpandsEveryOutput) {
  ModelInfo info = ProbaInfo();
  info.outputs.push_back({"score", DataType::kFloat32, 1});
  OutputSpec output;
  output.keys = {"id"};
  auto p = MakeOk(output, ModelSpec{}, info);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()),
            (Strs{"id", "probabilities_0", "probabilities_1", "probabilities_2", "score"}));
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(p->output_schema().field(i).type, DataType::kFloat32);
  EXPECT_EQ(p->output_schema().field(0).type, DataType::kInt64);
  EXPECT_EQ(p->input_columns(), Strs{"id"});

  std::vector<OutputTensor> outputs = {
      Tensor(3, {.1f, .2f, .7f, .3f, .3f, .4f, .5f, .25f, .25f, 0, 1, 0, .6f, .3f, .1f}),
      Tensor(1, {1, 2, 3, 4, 5})};
  Batch out;
  int64_t filtered = 0;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, outputs, &out, &filtered).ok());
  EXPECT_EQ(out.num_rows(), 5u);
  EXPECT_EQ(Strings(out, "id"), (Strs{"10", "11", "12", "13", "14"}));
  EXPECT_EQ(out.columns[3].float32s()[0], .7f);
  EXPECT_EQ(out.columns[1].float32s()[4], .6f);
  EXPECT_EQ(Strings(out, "score"), (Strs{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(filtered, 0);
  EXPECT_EQ(out.unit_id, "u7");
  EXPECT_EQ(out.first_row, 100u);
  EXPECT_EQ(out.row_lines, (std::vector<int64_t>{2, 3, 4, 5, 6}));
}

TEST(PostprocessorTest, ExplicitMappingWholeAndElement) {
  ModelSpec model;
  model.outputs = {{"p", "probabilities"}, {"fraud", "probabilities[2]"}};
  auto p = MakeOk(OutputSpec{}, model, ProbaInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), (Strs{"p_0", "p_1", "p_2", "fraud"}));
  EXPECT_TRUE(p->input_columns().empty());
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk,
                       {Tensor(3, {.1f, .2f, .7f, .3f, .3f, .4f, .5f, .25f, .25f, 0, 1, 0, .6f, .3f, .1f})}, &out,
                       nullptr)
                  .ok());
  EXPECT_EQ(out.columns[3].float32s()[0], .7f);
  EXPECT_EQ(out.columns[3].float32s()[3], 0.0f);
  EXPECT_EQ(out.columns[1].float32s()[3], 1.0f);
}

TEST(PostprocessorTest, WidthOneWholeOutputIsOneColumn) {
  ModelSpec model;
  model.outputs = {{"fraud_score", "score"}};
  auto p = MakeOk(OutputSpec{}, model, ScoreInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), Strs{"fraud_score"});
}

TEST(PostprocessorTest, OtherOutputTypesAreKept) {
  ModelInfo info;
  info.outputs = {{"label", DataType::kInt64, 1}, {"name", DataType::kString, 1}, {"raw", DataType::kFloat64, 2}};
  auto p = MakeOk(OutputSpec{}, ModelSpec{}, info);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), (Strs{"label", "name", "raw_0", "raw_1"}));
  EXPECT_EQ(p->output_schema().field(0).type, DataType::kInt64);
  EXPECT_EQ(p->output_schema().field(1).type, DataType::kString);
  EXPECT_EQ(p->output_schema().field(2).type, DataType::kFloat64);

  std::vector<OutputTensor> outputs(3);
  outputs[0].values = Column(DataType::kInt64);
  outputs[1].values = Column(DataType::kString);
  outputs[2].width = 2;
  outputs[2].values = Column(DataType::kFloat64);
  outputs[0].values.AppendInt64(7);
  outputs[1].values.AppendString("seven");
  outputs[2].values.AppendFloat64(0.25);
  outputs[2].values.AppendFloat64(0.75);
  std::vector<uint8_t> ok = {0, 0, 1, 0, 0};
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), ok, outputs, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "label"), Strs{"7"});
  EXPECT_EQ(Strings(out, "name"), Strs{"seven"});
  EXPECT_EQ(Strings(out, "raw_1"), Strs{"0.75"});
  EXPECT_EQ(out.row_lines, std::vector<int64_t>{4});
}

TEST(PostprocessorTest, MappingErrors) {
  ModelSpec model;
  model.outputs = {{"score", "probs"}};
  EXPECT_EQ(MakeError(OutputSpec{}, model, ProbaInfo()).message(),
            "model.outputs.score: model has no output 'probs' (outputs: probabilities (width 3))");
  model.outputs = {{"score", "probabilities[3]"}};
  EXPECT_EQ(MakeError(OutputSpec{}, model, ProbaInfo()).message(),
            "model.outputs.score: index 3 is out of range for output 'probabilities' of width 3");
  for (const char* bad : {"probabilities[x]", "probabilities[1", "[1]", "", "probabilities[]", "p]"}) {
    model.outputs = {{"score", bad}};
    EXPECT_EQ(MakeError(OutputSpec{}, model, ProbaInfo()).message(),
              "model.outputs.score: bad output reference '" + std::string(bad) + "' (expected 'name' or 'name[i]')");
  }
  model.outputs = {{"amount", "probabilities[0]"}};
  EXPECT_EQ(MakeError(OutputSpec{}, model, ProbaInfo()).message(),
            "model.outputs.amount: prediction column 'amount' is already an input column; name it differently in "
            "model.outputs");
  model.outputs = {{"s", "probabilities[0]"}, {"s", "probabilities[1]"}};
  EXPECT_EQ(MakeError(OutputSpec{}, model, ProbaInfo()).message(),
            "model.outputs.s: prediction column 's' is already a prediction column; name it differently in "
            "model.outputs");
  // Without a mapping the output's own name must be free too.
  ModelInfo info = ScoreInfo();
  info.outputs[0].name = "merchant";
  EXPECT_EQ(MakeError(OutputSpec{}, ModelSpec{}, info).message(),
            "model.outputs: prediction column 'merchant' is already an input column; name it differently in "
            "model.outputs");
}

// ---- threshold ----

TEST(PostprocessorTest, ThresholdInt64) {
  OutputSpec output;
  output.keys = {"id"};
  output.threshold = ThresholdSpec{"score", 0.5, "is_fraud", {}};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), (Strs{"id", "score", "is_fraud"}));
  EXPECT_EQ(p->output_schema().field(2).type, DataType::kInt64);
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, {Tensor(1, {0.2f, 0.5f, kNan, 0.9f, 0.49f})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "is_fraud"), (Strs{"0", "1", "null", "1", "0"}));  // >= at; NaN -> null
}

TEST(PostprocessorTest, ThresholdStringLabelsOnExpandedColumn) {
  OutputSpec output;
  output.threshold = ThresholdSpec{"probabilities_1", 0.3, "label", {"legit", "fraud"}};
  auto p = MakeOk(output, ModelSpec{}, ProbaInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema().fields().back(), (Field{"label", DataType::kString}));
  Batch out;
  ASSERT_TRUE(
      p->Apply(MakeInput(), Ok({1, 0, 0, 0, 1}), {Tensor(3, {.1f, .2f, .7f, .3f, .3f, .4f})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "label"), (Strs{"legit", "fraud"}));
  EXPECT_EQ(out.row_lines, (std::vector<int64_t>{2, 6}));
}

TEST(PostprocessorTest, ThresholdErrors) {
  OutputSpec output;
  output.threshold = ThresholdSpec{"amount", 0.5, "label", {}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.threshold.column: 'amount' is not a prediction column (predictions: score)");
  output.threshold = ThresholdSpec{"score", 0.5, "label", {"a", "b", "c"}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.threshold.labels: expected 2 names (negative, positive), got 3");
  output.threshold = ThresholdSpec{"score", 0.5, "merchant", {}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.threshold.label: column 'merchant' is already an input column; choose another name");
  output.threshold = ThresholdSpec{"score", 0.5, "score", {}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.threshold.label: column 'score' is already a prediction column; choose another name");
  ModelInfo info;
  info.outputs = {{"name", DataType::kString, 1}};
  output.threshold = ThresholdSpec{"name", 0.5, "label", {}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, info).message(),
            "output.threshold.column: prediction column 'name' is string, not a number");
}

// ---- argmax labels ----

TEST(PostprocessorTest, ArgmaxLabels) {
  OutputSpec output;
  output.keys = {"id"};
  output.labels = {"low", "mid", "high"};
  output.label_column = "risk";
  ModelSpec model;
  model.outputs = {{"p_high", "probabilities[2]"}};  // argmax still sees the whole output
  auto p = MakeOk(output, model, ProbaInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), (Strs{"id", "p_high", "risk"}));
  EXPECT_EQ(p->output_schema().field(2).type, DataType::kString);
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk,
                       {Tensor(3, {.1f, .2f, .7f,            // high
                                   .4f, .4f, .2f,            // tie -> first: low
                                   .5f, kNan, .25f,          // NaN -> null
                                   0, 1, 0,                  // mid
                                   .3f, .3f, .3f})},         // all tied -> low
                       &out, nullptr)
                  .ok());
  EXPECT_EQ(Strings(out, "risk"), (Strs{"high", "low", "null", "mid", "low"}));
}

TEST(PostprocessorTest, ArgmaxPicksTheMappedOutputWhenSeveralFit) {
  ModelInfo info = ProbaInfo();
  info.outputs.push_back({"logits", DataType::kFloat32, 3});
  OutputSpec output;
  output.labels = {"a", "b", "c"};
  ModelSpec model;
  model.outputs = {{"z", "logits"}};
  auto p = MakeOk(output, model, info);
  ASSERT_NE(p, nullptr);
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), Ok({1, 0, 0, 0, 0}), {Tensor(3, {.9f, .05f, .05f}), Tensor(3, {1, 2, 3})}, &out,
                       nullptr)
                  .ok());
  EXPECT_EQ(Strings(out, "label"), Strs{"c"});  // from logits, not probabilities

  EXPECT_EQ(MakeError(output, ModelSpec{}, info).message(),
            "output.labels: ambiguous, model outputs probabilities, logits all have 3 values per row; map only one "
            "in model.outputs");
}

TEST(PostprocessorTest, ArgmaxErrors) {
  OutputSpec output;
  output.labels = {"a", "b"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ProbaInfo()).message(),
            "output.labels: no numeric model output has 2 values per row to match 2 class names (outputs: "
            "probabilities (width 3))");
  output.labels = {"only"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.labels: need at least 2 class names, got 1 (for one score use output.threshold)");
  output.labels = {"a", "b", "c"};
  output.threshold = ThresholdSpec{"probabilities_0", 0.5, "label", {}};  // both default to "label"
  EXPECT_EQ(MakeError(output, ModelSpec{}, ProbaInfo()).message(),
            "output.label_column: column 'label' is already the threshold label; choose another name");
}

// ---- keys and columns ----

TEST(PostprocessorTest, ExplicitColumnsWithPassthroughAndLabels) {
  OutputSpec output;
  output.keys = {"id"};
  output.columns = {"label", "merchant", "id", "score"};
  output.threshold = ThresholdSpec{"score", 0.5, "label", {}};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()), (Strs{"label", "merchant", "id", "score"}));
  EXPECT_EQ(p->input_columns(), (Strs{"id", "merchant"}));  // input schema order
  Batch out;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, {Tensor(1, {.1f, .6f, .7f, .2f, .9f})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "merchant"), (Strs{"a", "b", "null", "a", "c"}));  // nulls pass through
  EXPECT_EQ(Strings(out, "label"), (Strs{"0", "1", "1", "0", "1"}));
}

TEST(PostprocessorTest, KeyAndColumnErrors) {
  OutputSpec output;
  output.keys = {"order_id"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(), "output.keys: no input column 'order_id'");
  output.keys = {"score"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(), "output.keys: no input column 'score'");
  output.keys = {"id", "id"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(), "output.keys: column 'id' listed twice");

  output.keys = {"id"};
  output.columns = {"id", "foo"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.columns: unknown column 'foo' (input: id, merchant, amount; predictions: score)");
  output.threshold = ThresholdSpec{"score", 0.5, "label", {}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.columns: unknown column 'foo' (input: id, merchant, amount; predictions: score; labels: label)");
  output.columns = {"id", "score", "id"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(), "output.columns: column 'id' listed twice");
  output.columns = {"score"};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(), "output.keys: key 'id' is not in output.columns");
}

// ---- filters ----

TEST(PostprocessorTest, NumericFilterOnPredictionCountsFiltered) {
  OutputSpec output;
  output.keys = {"id"};
  output.filter = {FilterSpec{"score", FilterOp::kGe, 0.5, ""}};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  Batch out;
  int64_t filtered = 3;  // added to, not overwritten
  // Row 1 was rejected upstream: not scored, not counted as filtered.
  std::vector<uint8_t> ok = {1, 0, 1, 1, 1};
  ASSERT_TRUE(p->Apply(MakeInput(), ok, {Tensor(1, {.9f, .1f, kNan, .5f})}, &out, &filtered).ok());
  EXPECT_EQ(Strings(out, "id"), (Strs{"10", "14"}));  // NaN fails; 0.5 >= 0.5 holds
  EXPECT_EQ(out.row_lines, (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(filtered, 5);
}

TEST(PostprocessorTest, EveryOperator) {
  struct Case {
    FilterOp op;
    double value;
    Strs ids;
  };
  // amount = 0, 1.5, 3, 4.5, 6
  const Case cases[] = {
      {FilterOp::kEq, 3, {"12"}},           {FilterOp::kNe, 3, {"10", "11", "13", "14"}},
      {FilterOp::kLt, 3, {"10", "11"}},     {FilterOp::kLe, 3, {"10", "11", "12"}},
      {FilterOp::kGt, 3, {"13", "14"}},     {FilterOp::kGe, 3, {"12", "13", "14"}},
  };
  for (const Case& c : cases) {
    OutputSpec output;
    output.keys = {"id"};
    output.filter = {FilterSpec{"amount", c.op, c.value, ""}};
    auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->input_columns(), (Strs{"id", "amount"}));
    Batch out;
    ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, {Tensor(1, {0, 0, 0, 0, 0})}, &out, nullptr).ok());
    EXPECT_EQ(Strings(out, "id"), c.ids) << static_cast<int>(c.op);
  }
}

TEST(PostprocessorTest, TextFiltersAndNulls) {
  OutputSpec output;
  output.keys = {"id"};
  output.filter = {FilterSpec{"merchant", FilterOp::kNe, std::nullopt, "b"}};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  Batch out;
  int64_t filtered = 0;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, {Tensor(1, {0, 0, 0, 0, 0})}, &out, &filtered).ok());
  EXPECT_EQ(Strings(out, "id"), (Strs{"10", "13", "14"}));  // the null merchant fails even "!="
  EXPECT_EQ(filtered, 2);

  output.filter = {FilterSpec{"merchant", FilterOp::kGt, std::nullopt, "a"}};
  p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk, {Tensor(1, {0, 0, 0, 0, 0})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "id"), (Strs{"11", "14"}));
}

TEST(PostprocessorTest, FiltersOnLabelsAndAllMustHold) {
  OutputSpec output;
  output.keys = {"id"};
  output.threshold = ThresholdSpec{"probabilities_2", 0.5, "flag", {}};
  output.labels = {"x", "y", "z"};
  output.filter = {FilterSpec{"flag", FilterOp::kEq, 1.0, ""}, FilterSpec{"label", FilterOp::kEq, std::nullopt, "z"},
                   FilterSpec{"merchant", FilterOp::kEq, std::nullopt, "a"}};
  auto p = MakeOk(output, ModelSpec{}, ProbaInfo());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(FieldNames(p->output_schema()),
            (Strs{"id", "probabilities_0", "probabilities_1", "probabilities_2", "flag", "label"}));
  Batch out;
  int64_t filtered = 0;
  ASSERT_TRUE(p->Apply(MakeInput(), kAllOk,
                       {Tensor(3, {.1f, .2f, .7f,     // flag 1, z, a -> kept
                                   .1f, .2f, .7f,     // merchant b
                                   .1f, .2f, .7f,     // merchant null
                                   .6f, .0f, .4f,     // flag 0
                                   .1f, .2f, .7f})},  // merchant c
                       &out, &filtered)
                  .ok());
  EXPECT_EQ(Strings(out, "id"), Strs{"10"});
  EXPECT_EQ(filtered, 4);

  output.threshold->labels = {"no", "yes"};
  output.filter = {FilterSpec{"flag", FilterOp::kEq, std::nullopt, "yes"}};
  p = MakeOk(output, ModelSpec{}, ProbaInfo());
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(
      p->Apply(MakeInput(), Ok({1, 1, 0, 0, 0}), {Tensor(3, {.1f, .2f, .7f, .6f, .0f, .4f})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "id"), Strs{"10"});
}

TEST(PostprocessorTest, FilterErrors) {
  OutputSpec output;
  output.threshold = ThresholdSpec{"score", 0.5, "label", {}};
  output.filter = {FilterSpec{"score", FilterOp::kGe, 0.5, ""}, FilterSpec{"merchant", FilterOp::kEq, 3.0, ""}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.filter[1]: column 'merchant' is string; compare it with text, not the number 3");
  output.filter = {FilterSpec{"score", FilterOp::kGe, 0.5, ""}, FilterSpec{"score", FilterOp::kEq, std::nullopt, "hi"}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.filter[1]: column 'score' is float32; compare it with a number, not the text 'hi'");
  output.filter = {FilterSpec{"label", FilterOp::kEq, std::nullopt, "1"}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.filter[0]: column 'label' is int64; compare it with a number, not the text '1'");
  output.filter = {FilterSpec{"nope", FilterOp::kEq, 1.0, ""}};
  EXPECT_EQ(MakeError(output, ModelSpec{}, ScoreInfo()).message(),
            "output.filter[0]: unknown column 'nope' (input: id, merchant, amount; predictions: score; labels: label)");
}

// ---- Apply contract ----

TEST(PostprocessorTest, ProjectedSchemaBehavesTheSame) {
  OutputSpec output;
  output.keys = {"id"};
  output.filter = {FilterSpec{"amount", FilterOp::kGt, 2.0, ""}};
  auto full = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(full, nullptr);
  Schema projected({{"id", DataType::kInt64}, {"amount", DataType::kFloat64}});
  ASSERT_EQ(full->input_columns(), (Strs{"id", "amount"}));
  auto narrow = MakeOk(output, ModelSpec{}, ScoreInfo(), projected);
  ASSERT_NE(narrow, nullptr);
  EXPECT_EQ(narrow->output_schema(), full->output_schema());

  // The projected Postprocessor finds its columns by name in the full batch.
  Batch a, b;
  std::vector<OutputTensor> outputs = {Tensor(1, {1, 2, 3, 4, 5})};
  ASSERT_TRUE(full->Apply(MakeInput(), kAllOk, outputs, &a, nullptr).ok());
  ASSERT_TRUE(narrow->Apply(MakeInput(), kAllOk, outputs, &b, nullptr).ok());
  EXPECT_EQ(Strings(a, "id"), (Strs{"12", "13", "14"}));
  EXPECT_EQ(Strings(a, "id"), Strings(b, "id"));
  EXPECT_EQ(Strings(a, "score"), Strings(b, "score"));
}

TEST(PostprocessorTest, ApplyArgumentErrors) {
  OutputSpec output;
  output.keys = {"id"};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  Batch out;
  Status st = p->Apply(MakeInput(), std::vector<uint8_t>(4, 1), {Tensor(1, {1, 2, 3, 4})}, &out, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "postprocess: row_ok has 4 entries for a batch of 5 rows");
  st = p->Apply(MakeInput(), kAllOk, {Tensor(1, {1, 2, 3, 4})}, &out, nullptr);
  EXPECT_EQ(st.message(),
            "postprocess: model output 'score' has 4 float32 values of width 1, expected 5 scored rows of float32 "
            "width 1");
  st = p->Apply(MakeInput(), kAllOk, {}, &out, nullptr);
  EXPECT_EQ(st.message(), "postprocess: got 0 model outputs, expected 1");
  Batch no_id;
  no_id.Reset(Schema({{"amount", DataType::kFloat64}}));
  no_id.columns[0].AppendFloat64(1);
  st = p->Apply(no_id, std::vector<uint8_t>{1}, {Tensor(1, {1})}, &out, nullptr);
  EXPECT_EQ(st.message(), "postprocess: input batch has no column 'id'");
  Batch wrong_type;
  wrong_type.Reset(Schema({{"id", DataType::kString}}));
  wrong_type.columns[0].AppendString("x");
  st = p->Apply(wrong_type, std::vector<uint8_t>{1}, {Tensor(1, {1})}, &out, nullptr);
  EXPECT_EQ(st.message(), "postprocess: input column 'id' is string, expected int64");
}

TEST(PostprocessorTest, NoScoredRowsIgnoresOutputs) {
  OutputSpec output;
  output.keys = {"id"};
  output.filter = {FilterSpec{"score", FilterOp::kGt, 0.5, ""}};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  Batch out;
  int64_t filtered = 0;
  // Every row rejected upstream: Predict was skipped, outputs are empty or left from an earlier batch.
  ASSERT_TRUE(p->Apply(MakeInput(), std::vector<uint8_t>(5, 0), {}, &out, &filtered).ok());
  EXPECT_EQ(out.num_rows(), 0u);
  EXPECT_EQ(out.schema, p->output_schema());
  ASSERT_TRUE(p->Apply(MakeInput(), std::vector<uint8_t>(5, 0), {Tensor(1, {1, 2})}, &out, &filtered).ok());
  EXPECT_EQ(out.num_rows(), 0u);
  EXPECT_EQ(filtered, 0);
}

TEST(PostprocessorTest, NoRowLinesAndReusedOutputBatch) {
  OutputSpec output;
  output.keys = {"id"};
  auto p = MakeOk(output, ModelSpec{}, ScoreInfo());
  ASSERT_NE(p, nullptr);
  Batch input = MakeInput();
  input.row_lines.clear();
  Batch out;
  ASSERT_TRUE(p->Apply(input, kAllOk, {Tensor(1, {1, 2, 3, 4, 5})}, &out, nullptr).ok());
  EXPECT_EQ(out.num_rows(), 5u);
  EXPECT_TRUE(out.row_lines.empty());
  ASSERT_TRUE(p->Apply(MakeInput(), Ok({0, 0, 0, 1, 0}), {Tensor(1, {9})}, &out, nullptr).ok());
  EXPECT_EQ(Strings(out, "id"), Strs{"13"});
  EXPECT_EQ(Strings(out, "score"), Strs{"9"});
  EXPECT_EQ(out.row_lines, std::vector<int64_t>{5});
}

TEST(PostprocessorTest, ConcurrentApplyMatchesSerial) {
  OutputSpec output;
  output.keys = {"id"};
  output.labels = {"a", "b", "c"};
  output.threshold = ThresholdSpec{"probabilities_0", 0.2, "hot", {}};
  output.filter = {FilterSpec{"amount", FilterOp::kLe, 4.5, ""}};
  auto p = MakeOk(output, ModelSpec{}, ProbaInfo());
  ASSERT_NE(p, nullptr);
  const Batch input = MakeInput();
  const std::vector<OutputTensor> outputs = {
      Tensor(3, {.1f, .2f, .7f, .3f, .3f, .4f, .5f, .25f, .25f, 0, 1, 0, .6f, .3f, .1f})};
  Batch expected;
  ASSERT_TRUE(p->Apply(input, kAllOk, outputs, &expected, nullptr).ok());
  EXPECT_EQ(Strings(expected, "label"), (Strs{"c", "c", "a", "b"}));
  EXPECT_EQ(Strings(expected, "hot"), (Strs{"0", "1", "1", "0"}));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Batch out;
      for (int i = 0; i < 200; ++i) {
        int64_t filtered = 0;
        if (!p->Apply(input, kAllOk, outputs, &out, &filtered).ok() || filtered != 1) ++mismatches[t];
        for (const char* name : {"id", "probabilities_1", "hot", "label"}) {
          if (Strings(out, name) != Strings(expected, name)) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace sluice
