#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sluice/job.h"

namespace sluice {
namespace {

constexpr const char* kMinimal = R"(
input: {path: data.csv}
features:
  - {name: amount, impute: median, transform: [log1p, standardize]}
  - {name: merchant, one_hot: [grocery, travel], unknown: error, impute: most_frequent}
  - {name: hour, from: ts, datetime: hour}
  - {name: age, impute: {constant: 35}, transform: [{clip: {min: 0, max: 120}}, minmax]}
model: {path: model.json}
)";

Result<JobSpec> Parse(const std::string& yaml, std::vector<std::string> overrides = {}) {
  return ParseJobSpec(yaml, "/jobs", overrides);
}

std::string ErrorOf(const std::string& yaml, std::vector<std::string> overrides = {}) {
  Result<JobSpec> r = Parse(yaml, overrides);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(JobSpecTest, MinimalSpecGetsDefaultsAndResolvesPaths) {
  Result<JobSpec> r = Parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const JobSpec& s = *r;
  EXPECT_EQ(s.input.path, "/jobs/data.csv");
  EXPECT_EQ(s.input.format, InputFormat::kCsv);
  Result<JobSpec> dir = Parse(std::string(kMinimal) + "", {"input.path=data/"});
  ASSERT_TRUE(dir.ok());
  EXPECT_FALSE(dir->input.format.has_value());  // decided from the files found
  EXPECT_EQ(s.input.csv.delimiter, ',');
  EXPECT_TRUE(s.input.csv.header);
  EXPECT_EQ(s.model.path, "/jobs/model.json");
  EXPECT_EQ(s.model.kind, "auto");
  EXPECT_EQ(s.batch_size, 4096u);
  EXPECT_EQ(s.output.path, "/jobs/out");
  EXPECT_EQ(s.output.format, OutputFormat::kCsv);
  ASSERT_TRUE(s.max_rejected.count.has_value());
  EXPECT_EQ(*s.max_rejected.count, 0);
  ASSERT_EQ(s.features.size(), 4u);
  EXPECT_EQ(s.features[0].impute, ImputeKind::kMedian);
  ASSERT_EQ(s.features[0].transforms.size(), 2u);
  EXPECT_EQ(s.features[0].transforms[0].kind, TransformKind::kLog1p);
  EXPECT_EQ(s.features[0].transforms[1].kind, TransformKind::kStandardize);
  EXPECT_EQ(s.features[1].OutputNames(), (std::vector<std::string>{"merchant=grocery", "merchant=travel"}));
  EXPECT_TRUE(s.features[1].unknown_category_is_error);
  EXPECT_EQ(s.features[2].column, "ts");
  EXPECT_EQ(s.features[2].datetime, DatetimePart::kHour);
  EXPECT_EQ(s.features[3].impute, ImputeKind::kConstant);
  EXPECT_EQ(s.features[3].impute_number, 35);
  EXPECT_EQ(*s.features[3].transforms[0].clip_max, 120);
}

// A constant's text is kept: a text feature (known once the model is loaded) takes it
// as it is; a numeric feature refuses a non-number at preflight.
TEST(JobSpecTest, ImputeConstantKeepsItsText) {
  Result<JobSpec> r = Parse(std::string(kMinimal), {"features[1]={name: merchant, impute: {constant: travel}}"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FeatureSpec& merchant = r->features[1];
  EXPECT_EQ(merchant.impute, ImputeKind::kConstant);
  EXPECT_EQ(merchant.impute_string, "travel");
  EXPECT_FALSE(merchant.impute_number_ok);
  EXPECT_TRUE(r->features[3].impute_number_ok);
  EXPECT_EQ(r->features[3].impute_string, "35");
  Result<JobSpec> other = Parse(std::string(kMinimal), {"features[1]={name: merchant, impute: {constant: fuel}}"});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_NE(r->ToCanonicalJson(), other->ToCanonicalJson());
}

TEST(JobSpecTest, FullOutputSection) {
  Result<JobSpec> r = Parse(std::string(kMinimal) + R"(
batch: {size: 128}
errors: {max_rejected: 0.5%}
output:
  path: /tmp/o
  format: jsonl
  keys: [id]
  columns: [id, score, label]
  threshold: {column: score, at: 0.7, label: label, labels: [no, yes]}
  filter: [{column: score, op: ">=", value: 0.8}, {column: merchant, op: "!=", value: "travel"}]
monitoring: {log_format: json}
)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batch_size, 128u);
  EXPECT_FALSE(r->max_rejected.count.has_value());
  EXPECT_DOUBLE_EQ(*r->max_rejected.fraction, 0.005);
  EXPECT_EQ(r->output.path, "/tmp/o");
  EXPECT_EQ(r->output.format, OutputFormat::kJsonl);
  EXPECT_EQ(r->output.threshold->at, 0.7);
  EXPECT_EQ(r->output.threshold->labels, (std::vector<std::string>{"no", "yes"}));
  ASSERT_EQ(r->output.filter.size(), 2u);
  EXPECT_EQ(r->output.filter[0].op, FilterOp::kGe);
  EXPECT_EQ(*r->output.filter[0].number, 0.8);
  EXPECT_EQ(r->output.filter[1].text, "travel");
  EXPECT_EQ(r->monitoring.log_format, LogFormat::kJson);
}

TEST(JobSpecTest, DatabaseInputsAndOutputs) {
  const std::string features = "features: [{name: x}]\nmodel: {path: m.json}\n";
  Result<JobSpec> sqlite = Parse("input: {path: 'sqlite:///data/in.db', table: tx}\n" + features +
                                 "output: {path: 'sqlite:////var/out.db', table: scores, mode: overwrite}\n");
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  EXPECT_EQ(sqlite->input.format, InputFormat::kSqlite);
  EXPECT_EQ(sqlite->input.database, "/jobs/data/in.db");
  EXPECT_EQ(sqlite->input.path, "");
  EXPECT_EQ(sqlite->input.table, "tx");
  EXPECT_EQ(sqlite->output.format, OutputFormat::kSqlite);
  EXPECT_EQ(sqlite->output.database, "/var/out.db");
  EXPECT_EQ(sqlite->output.path, "/jobs/out");  // state_dir default
  EXPECT_EQ(sqlite->output.mode, OutputMode::kOverwrite);

  Result<JobSpec> file = Parse("input: {path: in.sqlite, query: 'SELECT 1 AS x'}\n" + features +
                               "partition: {column: x}\noutput: {path: preds.db, table: t, state_dir: state}\n");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->partition.column, "x");  // by size: ranges of x
  EXPECT_EQ(file->input.database, "/jobs/in.sqlite");
  EXPECT_EQ(file->output.database, "/jobs/preds.db");
  EXPECT_EQ(file->output.path, "/jobs/state");

  Result<JobSpec> pg = Parse("input: {path: 'postgresql://ann:pw@127.0.0.1:5433/x', query: 'SELECT * FROM t'}\n" +
                             features + "output: {path: 'postgres://127.0.0.1/x', table: s, keys: [id], mode: upsert}\n");
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  EXPECT_EQ(pg->input.format, InputFormat::kPostgres);
  EXPECT_EQ(pg->input.database, "postgresql://ann:pw@127.0.0.1:5433/x");
  EXPECT_EQ(pg->output.format, OutputFormat::kPostgres);
  EXPECT_EQ(pg->output.mode, OutputMode::kUpsert);
  // The password never reaches job.json (nor, therefore, the fingerprint).
  EXPECT_EQ(pg->ToCanonicalJson().find("pw@"), std::string::npos);
  EXPECT_NE(pg->ToCanonicalJson().find("postgresql://ann:***@127.0.0.1:5433/x"), std::string::npos);

  Result<JobSpec> parquet = Parse("input: {path: data/*.parquet}\n" + features + "output: {format: parquet, compression: snappy}\n");
  ASSERT_TRUE(parquet.ok()) << parquet.status().ToString();
  EXPECT_EQ(parquet->input.format, InputFormat::kParquet);
  EXPECT_EQ(parquet->output.format, OutputFormat::kParquet);
  EXPECT_EQ(parquet->output.compression, ParquetCompression::kSnappy);

  EXPECT_EQ(ErrorOf("input: {path: in.db}\n" + features), "input.table: a database input needs exactly one of input.table and input.query");
  EXPECT_EQ(ErrorOf("input: {path: in.db, table: t, query: q}\n" + features),
            "input.table: a database input needs exactly one of input.table and input.query");
  EXPECT_EQ(ErrorOf("input: {path: a.csv, table: t}\n" + features), "input.table: only applies to database inputs");
  EXPECT_EQ(ErrorOf("input: {path: 'postgresql://h/x', table: t, format: sqlite}\n" + features),
            "input.format: 'sqlite' does not match the postgres URL in input.path");
  EXPECT_EQ(ErrorOf("input: {path: x, format: postgres}\n" + features), "input.path: format postgres needs a postgresql:// URL");

  // A database input is cut by size into ranges of partition.column; a file input has no such column.
  Result<JobSpec> ranges = Parse("input: {path: 'postgresql://h/x', table: t}\npartition: {column: id}\n" + features);
  ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
  EXPECT_EQ(ranges->partition.column, "id");
  EXPECT_EQ(ErrorOf("input: {path: 'postgresql://h/x', table: t}\npartition: {by: files, column: id}\n" + features),
            "partition.column: only used when partition.by is size, time, column or hash");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\npartition: {column: id}\n" + features),
            "partition.column: only used when partition.by is time, column or hash");
}

TEST(JobSpecTest, MonitoringSection) {
  Result<JobSpec> r = Parse(std::string(kMinimal) + R"(
monitoring:
  metrics_addr: 9464
  progress: plain
  interval: 2s
  alerts:
    - {name: errors, when: "error_rate > 0.01", action: fail}
    - {name: drift, when: "score_psi>=0.2", for: 30s, action: webhook, url: "http://127.0.0.1:8080/hook", column: p}
    - {name: slow, when: "rows_per_sec < 1e5"}
)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const MonitoringSpec& m = r->monitoring;
  EXPECT_EQ(m.metrics_addr, "127.0.0.1:9464");
  EXPECT_EQ(m.progress, ProgressMode::kPlain);
  EXPECT_EQ(m.interval_ms, 2000);
  ASSERT_EQ(m.alerts.size(), 3u);
  EXPECT_EQ(m.alerts[0].metric, AlertSpec::Metric::kErrorRate);
  EXPECT_EQ(m.alerts[0].op, AlertSpec::Op::kGt);
  EXPECT_EQ(m.alerts[0].threshold, 0.01);
  EXPECT_EQ(m.alerts[0].action, AlertSpec::Action::kFail);
  EXPECT_EQ(m.alerts[1].metric, AlertSpec::Metric::kScorePsi);
  EXPECT_EQ(m.alerts[1].op, AlertSpec::Op::kGe);
  EXPECT_EQ(m.alerts[1].for_ms, 30000);
  EXPECT_EQ(m.alerts[1].url, "http://127.0.0.1:8080/hook");
  EXPECT_EQ(m.alerts[1].column, "p");
  EXPECT_EQ(m.alerts[2].action, AlertSpec::Action::kLog);
  EXPECT_EQ(m.alerts[2].op, AlertSpec::Op::kLt);
  EXPECT_EQ(m.alerts[2].threshold, 1e5);
  // Monitoring is not part of the job's identity.
  Result<JobSpec> plain = Parse(kMinimal);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->ToCanonicalJson(), r->ToCanonicalJson());

  EXPECT_EQ(Parse(std::string(kMinimal) + "monitoring: {metrics_addr: \"0.0.0.0:9100\"}\n")->monitoring.metrics_addr,
            "0.0.0.0:9100");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {metrics_addr: \"host:99999\"}\n"),
            "monitoring.metrics_addr: expected HOST:PORT, :PORT or PORT with a port from 0 to 65535, got 'host:99999'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {alerts: [{name: a, when: \"latency > 1\"}]}\n"),
            "monitoring.alerts[0].when: unknown metric 'latency'; expected 'METRIC OP NUMBER' with METRIC one of "
            "error_rate, batch_latency_p99, rows_per_sec, score_mean, score_psi and OP one of >, >=, <, <=");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {alerts: [{name: a, when: \"error_rate > x\"}]}\n").substr(0, 52),
            "monitoring.alerts[0].when: 'x' is not a number; expe");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {alerts: [{name: a, when: \"error_rate > 1\", action: webhook}]}\n"),
            "monitoring.alerts[0].url: required for action: webhook");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) +
                    "monitoring: {alerts: [{name: a, when: \"error_rate > 1\", action: webhook, url: ftp://x}]}\n"),
            "monitoring.alerts[0].url: expected an http:// or https:// URL, got 'ftp://x'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {alerts: [{name: a, when: \"error_rate > 1\"}, "
                                            "{name: a, when: \"error_rate > 2\"}]}\n"),
            "monitoring.alerts[1].name: 'a' names two rules");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {alerts: [{name: a, when: \"error_rate > 1\", column: p}]}\n"),
            "monitoring.alerts[0].column: only used with score_mean and score_psi");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "monitoring: {interval: 10ms}\n"), "monitoring.interval: must be at least 100ms");
}

TEST(JobSpecTest, BatchSizeAuto) {
  Result<JobSpec> r = Parse(std::string(kMinimal) + "batch: {size: auto}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->batch_size_auto);
  EXPECT_EQ(r->batch_size, 4096u);  // where the run starts
  EXPECT_EQ(nlohmann::json::parse(r->ToCanonicalJson())["batch"]["size"], "auto");
  // --set turns it on and off; a number is a fixed size again.
  Result<JobSpec> fixed = Parse(std::string(kMinimal) + "batch: {size: auto}\n", {"batch.size=512"});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_FALSE(fixed->batch_size_auto);
  EXPECT_EQ(fixed->batch_size, 512u);
  EXPECT_EQ(nlohmann::json::parse(fixed->ToCanonicalJson())["batch"]["size"], 512);
  Result<JobSpec> set = Parse(kMinimal, {"batch.size=auto"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_TRUE(set->batch_size_auto);
  EXPECT_NE(r->ToCanonicalJson(), fixed->ToCanonicalJson());
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "batch: {size: 0}\n"), "batch.size: value 0 out of range [1, 16777216]");
}

TEST(JobSpecTest, ErrorsNameTheKeyPath) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bogus: 1\n"),
            "bogus: unknown key (expected one of: input, partition, features, stats, model, batch, execution, errors, "
            "output, monitoring)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "batch: {size: -3}\n"), "batch.size: value -3 out of range [1, 16777216]");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "batch: {size: many}\n"), "batch.size: expected a number or auto, got 'many'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {format: xml}\n"),
            "output.format: unknown value 'xml' (expected csv, jsonl, parquet, sqlite, postgres)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {path: out.db}\n"), "output.table: required for a database output");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {table: t}\n"), "output.table: only applies to database outputs");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {path: out.db, table: t, mode: upsert}\n"),
            "output.mode: upsert needs output.keys (the columns that identify a row)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {compression: zstd}\n"),
            "output.compression: only applies with output.format parquet");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {path: o.db, table: t, partition_by: [a]}\n"),
            "output.partition_by: only applies to file outputs (csv, jsonl, parquet), not a database table");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "errors: {max_rejected: lots}\n"),
            "errors.max_rejected: expected a count (e.g. 100) or a percentage (e.g. 0.5%), got 'lots'");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nfeatures: [{name: x, impute: avg}]\nmodel: {path: m.json}\n"),
            "features[0].impute: unknown value 'avg' (expected none, mean, median, most_frequent, nan, constant)");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nfeatures: [{name: x, transform: [sqrt]}]\nmodel: {path: m.json}\n"),
            "features[0].transform[0]: unknown value 'sqrt' (expected log1p, standardize, minmax, clip)");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nfeatures: [{name: x}, {name: x}]\nmodel: {path: m.json}\n"),
            "features[1].name: duplicate feature 'x'");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nfeatures: [{name: m, one_hot: [a], impute: mean}]\nmodel: {path: m.json}\n"),
            "features[0].impute: 'mean' does not apply to a one_hot feature (use most_frequent or {constant: …})");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nmodel: {path: m.json}\n"),
            "features: required: a list of {name: …} entries, in the model's input order");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "execution: {workers: many}\n"),
            "execution.workers: expected a number or auto, got 'many'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "execution: {memory_limit: 2 bananas}\n"),
            "execution.memory_limit: expected a size such as 64MiB, 2GiB or a number of bytes, got '2 bananas'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "execution: {memory_limit: 1MiB}\n"),
            "execution.memory_limit: must be at least 16777216 bytes, got '1MiB'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "execution: {retries: {max_attempts: 0}}\n"),
            "execution.retries.max_attempts: value 0 out of range [1, 100]");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "execution: {batch_timeout: soon}\n"),
            "execution.batch_timeout: expected a duration such as 250ms, 10s, 5m or 1h, got 'soon'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "partition: {by: hash}\n"),
            "partition.column: required when partition.by is time, column or hash");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "partition: {sample: 1.5}\n"), "partition.sample: expected a fraction in (0, 1]");
  // Databases cut ranges of a column under partition.by size; files do not.
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "partition: {column: id}\n"),
            "partition.column: only used when partition.by is time, column or hash");
  EXPECT_EQ(ErrorOf("input: {path: x.db, query: 'SELECT 1 AS x'}\nfeatures: [{name: x}]\nmodel: {path: m.json}\n"
                    "partition: {by: files, column: x}\noutput: {path: out.db, table: t}\n"),
            "partition.column: only used when partition.by is size, time, column or hash");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "partition: {window: 2d}\n"),
            "partition.window: unknown value '2d' (expected 1h, 1d, 1w, 1mo)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "output: {partition_by: ['ts:minute']}\n"),
            "output.partition_by[0]: unknown time bucket 'minute' in 'ts:minute' (expected hour, day, week, month)");
  EXPECT_EQ(ErrorOf("input: {path: a.csv}\nfeatures: [{name: x}]\nmodel: {route: {by: seg}}\n"),
            "model.route.models: required: a mapping of segment value: model path");
  EXPECT_EQ(ErrorOf("input: [1, 2\n"), "line 2, column 1: end of sequence flow not found");
}

TEST(JobSpecTest, ParsesExecutionPartitionAndRouting) {
  Result<JobSpec> r = Parse(std::string(kMinimal) +
                            "partition: {by: time, column: ts, window: 1w, target_bytes: 8MiB, sample: 0.25}\n"
                            "execution: {workers: auto, mode: sync, memory_limit: 512MB, batch_timeout: 2m,\n"
                            "            retries: {max_attempts: 5, initial_backoff: 250ms, max_backoff: 3s}}\n"
                            "output: {partition_by: ['ts:day', merchant]}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->partition.by, PartitionBy::kTime);
  EXPECT_EQ(r->partition.window, TimeWindow::kWeek);
  EXPECT_EQ(r->partition.target_bytes, uint64_t{8} << 20);
  EXPECT_EQ(r->partition.sample, 0.25);
  ASSERT_TRUE(r->partition.OutputKey().has_value());
  EXPECT_EQ(r->partition.OutputKey()->DirName(), "ts_week");
  EXPECT_EQ(r->execution.workers, 0);
  EXPECT_FALSE(r->execution.async);
  EXPECT_EQ(r->execution.memory_limit, 512000000u);
  EXPECT_EQ(r->execution.batch_timeout_ms, 120000);
  EXPECT_EQ(r->execution.retries.max_attempts, 5);
  EXPECT_EQ(r->execution.retries.initial_backoff_ms, 250);
  EXPECT_EQ(r->execution.retries.max_backoff_ms, 3000);
  ASSERT_EQ(r->output.partition_by.size(), 2u);
  EXPECT_EQ(r->output.partition_by[0].DirName(), "ts_day");
  EXPECT_EQ(r->output.partition_by[1].DirName(), "merchant");

  Result<JobSpec> routed = ParseJobSpec(
      "input: {path: a.csv}\nfeatures: [{name: x}]\n"
      "model: {load: lazy, threads: auto, route: {by: seg, models: {a: ma.json, b: /abs/mb.json}, cache_size: 2}}\n",
      "/jobs");
  ASSERT_TRUE(routed.ok()) << routed.status().ToString();
  ASSERT_TRUE(routed->model.route.has_value());
  EXPECT_TRUE(routed->model.lazy);
  EXPECT_EQ(routed->model.threads, 0);
  EXPECT_EQ(routed->model.route->models.at("a"), "/jobs/ma.json");
  EXPECT_EQ(routed->model.route->default_path, "");  // no default: other segments are rejected
  EXPECT_EQ(routed->model.path, "/jobs/ma.json");     // the signature model
  EXPECT_EQ(routed->model.route->cache_size, 2);
}

TEST(JobSpecTest, OverridesApplyBeforeValidation) {
  Result<JobSpec> r = Parse(kMinimal, {"batch.size=64", "output.keys=[id, ts]", "features[0].impute=mean",
                                       "input.csv.delimiter=;"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batch_size, 64u);
  EXPECT_EQ(r->output.keys, (std::vector<std::string>{"id", "ts"}));
  EXPECT_EQ(r->features[0].impute, ImputeKind::kMean);
  EXPECT_EQ(r->input.csv.delimiter, ';');
  EXPECT_EQ(ErrorOf(kMinimal, {"batch.size"}), "--set 'batch.size': expected KEY=VALUE");
  EXPECT_EQ(ErrorOf(kMinimal, {"batch.size=0"}), "batch.size: value 0 out of range [1, 16777216]");
  EXPECT_EQ(ErrorOf(kMinimal, {"features[9].impute=mean"}), "--set features[9].impute: index 9 out of range");
}

TEST(JobSpecTest, InlineStatsBecomeStatsFileJson) {
  Result<JobSpec> r = Parse(std::string(kMinimal) + "stats: {amount: {impute: 3, standardize: {mean: 1, std: 2}}}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  nlohmann::json j = nlohmann::json::parse(r->stats_inline_json);
  EXPECT_EQ(j["sluice_stats"], 1);
  EXPECT_EQ(j["features"]["amount"]["standardize"]["std"], 2);
  Result<JobSpec> with_file = Parse(std::string(kMinimal) + "stats: stats.json\n");
  ASSERT_TRUE(with_file.ok());
  EXPECT_EQ(with_file->stats_path, "/jobs/stats.json");
}

TEST(JobSpecTest, CanonicalJsonIsStableAndReflectsChanges) {
  Result<JobSpec> a = Parse(kMinimal);
  Result<JobSpec> b = Parse(kMinimal);
  Result<JobSpec> c = Parse(kMinimal, {"batch.size=1"});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->ToCanonicalJson(), b->ToCanonicalJson());
  EXPECT_NE(a->ToCanonicalJson(), c->ToCanonicalJson());
  EXPECT_TRUE(nlohmann::json::accept(a->ToCanonicalJson()));
}

}  // namespace
}  // namespace sluice
