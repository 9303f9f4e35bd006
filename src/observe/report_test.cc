#include "observe/report.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sluice {
namespace {

using ojson = nlohmann::ordered_json;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The SVG element with id `id`, up to its </svg>.
std::string Chart(const std::string& html, const std::string& id) {
  const size_t begin = html.find("<svg id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  return html.substr(begin, html.find("</svg>", begin) - begin);
}

HistogramData Histogram(std::vector<double> bounds, std::vector<int64_t> counts, double sum) {
  HistogramData h;
  h.bounds = std::move(bounds);
  h.counts = std::move(counts);
  for (int64_t c : h.counts) h.count += c;
  h.sum = sum;
  return h;
}

// A run of two committed units, one of them by an earlier run, with rejects,
// scores against a reference, and an alert: names carry markup to escape.
class ReportTest : public ::testing::Test {
 protected:
  ReportTest() {
    spec_.output.path = "/data/out/scoring/";
    AlertSpec rule;
    rule.name = "errors";
    rule.metric = AlertSpec::Metric::kErrorRate;
    rule.threshold = 0.01;
    rule.action = AlertSpec::Action::kWebhook;
    rule.url = "https://hooks.example.com/services/T000/SECRET?token=abc";
    spec_.monitoring.alerts.push_back(rule);

    fp_.spec_json = R"({"input": {"path": "in.csv"}})";
    fp_.model_sha256 = "ab12";

    report_.units_total = 3;
    report_.units_done = 2;
    report_.units_failed = 1;
    report_.units_skipped = 1;
    report_.workers = 2;
    report_.model_threads = 4;
    report_.seconds = 12.5;
    report_.exit_code = ExitCode::kUnitsFailed;
    report_.error = "unit 00002 failed: <io> & more";
    report_.rejects_by_reason = {{"bad_number", 7}, {"<script>alert(1)</script>", 2}};
    report_.peak_rss_bytes = 300 << 20;

    // id, input, rows in / out / rejected / filtered / sampled out, files.
    input_.markers = {{"00000", "in/a.csv", 1000, 990, 7, 3, 0, {{"part-00000.csv", 990, 5000, "x"}}, ""},
                      {"00001", "in/<b>.csv", 500, 498, 2, 0, 4, {{"part-00001.csv", 498, 2500, "y"}}, ""}};
    input_.unit_seconds = {{"00000", 3.25}};

    MetricsSnapshot& m = input_.metrics;
    m.elapsed_seconds = 12.5;
    m.cpu_seconds = 20;
    m.peak_rss_bytes = 200 << 20;
    for (size_t s = 0; s < kStageCount; ++s) {
      m.stage_seconds[s] = Histogram({0.001, 0.01, 0.1}, {0, 4, 6, 0}, 0.1 * static_cast<double>(s + 1));
    }
    m.batch_seconds = Histogram({0.001, 0.01, 0.1, 1}, {0, 2, 8, 1, 0}, 0.9);
    m.score_column = "score";
    m.scores = Histogram({0.25, 0.5, 0.75}, {100, 300, 500, 100}, 520);
    m.rejects_by_reason = {{"ignored", 1}};
    reference_ = {"score", {0.25, 0.5, 0.75}, {0.25, 0.25, 0.25, 0.25}};
    input_.score_reference = &reference_;
    input_.timeline = {{1, 100, 99, 100, 1 << 20}, {2, 400, 396, 300, 2 << 20}, {3, 1500, 1488, 1100, 3 << 20}};
    AlertEvent e;
    e.name = "errors<&>";
    e.metric = "error_rate";
    e.condition = "error_rate > 0.01";
    e.value = 0.02;
    e.threshold = 0.01;
    e.action = "webhook";
    e.at_seconds = 4;
    e.delivery = "delivered";
    input_.alerts = {e};
    input_.spec = &spec_;
    input_.fingerprint = &fp_;
    input_.report = &report_;
    input_.started_unix_micros = 1700000000000000;  // 2023-11-14T22:13:20Z
    input_.finished_unix_micros = 1700000012500000;
  }

  JobSpec spec_;
  JobFingerprint fp_;
  JobReport report_;
  ScoreReference reference_;
  ReportInput input_;
};

TEST_F(ReportTest, JsonLayout) {
  const ojson r = BuildReportJson(input_);
  std::vector<std::string> keys;
  for (const auto& [key, value] : r.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"sluice_report", "job", "totals", "units", "stages", "latency",
                                            "throughput", "predictions", "rejects", "alerts", "resources"}));
  EXPECT_EQ(r["sluice_report"], 1);

  const ojson& job = r["job"];
  EXPECT_EQ(job["name"], "scoring");
  EXPECT_EQ(job["spec"]["input"]["path"], "in.csv");
  EXPECT_EQ(job["fingerprint"], fp_.Digest());
  EXPECT_EQ(job["model_sha256"], "ab12");
  EXPECT_EQ(job["started"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(job["finished"], "2023-11-14T22:13:32Z");
  EXPECT_EQ(job["seconds"], 12.5);
  EXPECT_EQ(job["exit_code"], 1);
  EXPECT_EQ(job["error"], report_.error);
  // The webhook's token stays out of the report.
  EXPECT_EQ(job["monitoring"]["alerts"][0]["url"], "https://hooks.example.com/…");
  EXPECT_EQ(job["monitoring"]["alerts"][0]["when"], "error_rate > 0.01");
  EXPECT_EQ(r.dump().find("SECRET"), std::string::npos);

  // Rows are the markers' sums.
  const ojson& t = r["totals"];
  EXPECT_EQ(t["rows_in"], 1500);
  EXPECT_EQ(t["rows_out"], 1488);
  EXPECT_EQ(t["rows_rejected"], 9);
  EXPECT_EQ(t["rows_filtered"], 3);
  EXPECT_EQ(t["rows_sampled_out"], 4);
  EXPECT_EQ(t["units_total"], 3);
  EXPECT_EQ(t["units_done"], 2);
  EXPECT_EQ(t["units_failed"], 1);
  EXPECT_EQ(t["units_skipped"], 1);
  EXPECT_EQ(t["parts"], 2);

  ASSERT_EQ(r["units"].size(), 2u);
  EXPECT_EQ(r["units"][0]["id"], "00000");
  EXPECT_EQ(r["units"][0]["seconds"], 3.25);
  EXPECT_EQ(r["units"][0]["files"], ojson::array({"part-00000.csv"}));
  EXPECT_TRUE(r["units"][1]["seconds"].is_null());

  ASSERT_EQ(r["stages"].size(), kStageCount);
  EXPECT_DOUBLE_EQ(r["stages"]["predict"]["seconds"].get<double>(), 0.3);
  EXPECT_EQ(r["stages"]["commit"]["count"], 10);
  EXPECT_DOUBLE_EQ(r["latency"]["batch"]["p50"].get<double>(), input_.metrics.batch_seconds.Quantile(0.5));
  EXPECT_EQ(r["latency"]["batch"]["counts"], ojson::array({0, 2, 8, 1, 0}));

  ASSERT_EQ(r["throughput"].size(), 3u);
  EXPECT_EQ(r["throughput"][2]["rows_in"], 1500);
  EXPECT_EQ(r["throughput"][2]["rss_bytes"], 3 << 20);

  const ojson& p = r["predictions"];
  EXPECT_EQ(p["column"], "score");
  EXPECT_EQ(p["count"], 1000);
  EXPECT_DOUBLE_EQ(p["mean"].get<double>(), 0.52);
  EXPECT_EQ(p["reference"], ojson::array({0.25, 0.25, 0.25, 0.25}));
  EXPECT_DOUBLE_EQ(p["psi"].get<double>(), PopulationStabilityIndex({100, 300, 500, 100}, reference_.fractions));

  EXPECT_EQ(r["rejects"]["by_reason"]["bad_number"], 7);
  ASSERT_EQ(r["alerts"].size(), 1u);
  EXPECT_EQ(r["alerts"][0]["delivery"], "delivered");
  EXPECT_EQ(r["resources"]["peak_rss_bytes"], 300 << 20);
  EXPECT_EQ(r["resources"]["workers"], 2);
  EXPECT_EQ(r["resources"]["model_threads"], 4);
}

TEST_F(ReportTest, HtmlHasEveryChartDrawnAndNoScript) {
  Result<std::string> html = RenderReportHtml(BuildReportJson(input_));
  ASSERT_TRUE(html.ok()) << html.status().message();
  EXPECT_EQ(html->rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(Count(*html, "<script"), 0u);
  EXPECT_EQ(Count(*html, "href="), 0u) << "no links to load";
  EXPECT_EQ(Count(*html, " src="), 0u) << "nothing to load";
  EXPECT_EQ(Count(*html, "<svg "), 5u);

  EXPECT_EQ(Count(Chart(*html, "chart-throughput"), "<polyline class=\"series\""), 1u);
  EXPECT_EQ(Count(Chart(*html, "chart-stages"), "<rect class=\"bar\""), kStageCount);
  // Latency: the buckets from the first to the last non-empty one.
  EXPECT_EQ(Count(Chart(*html, "chart-latency"), "<rect class=\"bar\""), 3u);
  // Predictions: a bar and a reference mark per bin, and the legend.
  EXPECT_EQ(Count(Chart(*html, "chart-predictions"), "<rect class=\"bar\""), 5u);
  EXPECT_EQ(Count(Chart(*html, "chart-predictions"), "<line class=\"reference\""), 5u);
  EXPECT_EQ(Count(Chart(*html, "chart-rejects"), "<rect class=\"bar\""), 2u);

  for (const char* id : {"summary", "throughput", "stages", "latency", "predictions", "rejects", "alerts", "units"}) {
    EXPECT_NE(html->find("<section id=\"" + std::string(id) + "\">"), std::string::npos) << id;
  }
  EXPECT_NE(html->find("PSI against the reference"), std::string::npos);
  EXPECT_NE(html->find("earlier run"), std::string::npos);
  EXPECT_NE(html->find("1,500"), std::string::npos);
}

TEST_F(ReportTest, HtmlEscapesText) {
  Result<std::string> html = RenderReportHtml(BuildReportJson(input_));
  ASSERT_TRUE(html.ok()) << html.status().message();
  EXPECT_EQ(html->find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(html->find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html->find("in/&lt;b&gt;.csv"), std::string::npos);
  EXPECT_NE(html->find("errors&lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(html->find("&lt;io&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html->find("<b>"), std::string::npos);
  EXPECT_EQ(html->find("<io>"), std::string::npos);
}

TEST(Report, EmptyRunRenders) {
  JobSpec spec;
  spec.output.path = "out";
  JobReport report;
  report.exit_code = ExitCode::kInterrupted;
  ReportInput input;
  input.spec = &spec;
  input.report = &report;
  const ojson r = BuildReportJson(input);
  EXPECT_EQ(r["job"]["name"], "out");
  EXPECT_TRUE(r["units"].empty());
  EXPECT_TRUE(r["predictions"].is_null());
  EXPECT_EQ(r["totals"]["rows_in"], 0);
  EXPECT_TRUE(r["latency"]["batch"]["p99"].is_number());

  Result<std::string> html = RenderReportHtml(r);
  ASSERT_TRUE(html.ok()) << html.status().message();
  EXPECT_EQ(Count(*html, "<svg "), 5u);
  EXPECT_EQ(Count(*html, ">no data</text>"), 5u);
  EXPECT_NE(html->find("No unit committed."), std::string::npos);
  EXPECT_NE(html->find("No alert fired."), std::string::npos);
  EXPECT_NE(html->find("exit 130"), std::string::npos);
}

TEST(Report, RejectsDocumentsThatAreNotReports) {
  Result<std::string> html = RenderReportHtml(ojson{{"hello", 1}});
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.status().code(), StatusCode::kCorruption);
  EXPECT_NE(html.status().message().find("'sluice_report'"), std::string::npos) << html.status().message();

  JobSpec spec;
  ReportInput input;
  input.spec = &spec;
  ojson r = BuildReportJson(input);
  r.erase("units");
  html = RenderReportHtml(r);
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.status().message().find("'units'"), std::string::npos) << html.status().message();

  // Values of the wrong type deep inside render as empty, not as a crash.
  r = BuildReportJson(input);
  r["totals"]["rows_in"] = "many";
  r["job"]["name"] = ojson::array({1, 2});
  r["throughput"] = ojson::array({ojson{{"seconds", "x"}}});
  html = RenderReportHtml(r);
  EXPECT_TRUE(html.ok()) << html.status().message();
}

TEST(Report, BaseNames) {
  EXPECT_EQ(ReportBaseName(0, 1), "report");
  EXPECT_EQ(ReportBaseName(2, 4), "report-shard-2-of-4");
}

TEST_F(ReportTest, WriteAndRerender) {
  std::unique_ptr<Env> env = NewMemEnv();
  Result<std::vector<std::string>> none = RerenderReports(env.get(), "/out");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);

  const ojson r = BuildReportJson(input_);
  ASSERT_TRUE(WriteReport(env.get(), "/out", "report", r).ok());
  ASSERT_TRUE(WriteReport(env.get(), "/out", ReportBaseName(1, 2), r).ok());
  Result<std::string> json = ReadFileToString(env.get(), "/out/_sluice/report.json");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(ojson::parse(*json), r);
  Result<std::string> html = ReadFileToString(env.get(), "/out/_sluice/report.html");
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(*html, *RenderReportHtml(r));

  ASSERT_TRUE(env->RemoveFile("/out/_sluice/report.html").ok());
  Result<std::vector<std::string>> paths = RerenderReports(env.get(), "/out");
  ASSERT_TRUE(paths.ok()) << paths.status().message();
  EXPECT_EQ(*paths, (std::vector<std::string>{"/out/_sluice/report.html", "/out/_sluice/report-shard-1-of-2.html"}));
  Result<std::string> again = ReadFileToString(env.get(), "/out/_sluice/report.html");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *html);

  ASSERT_TRUE(WriteFileAtomic(env.get(), "/out/_sluice/report.json", "{not json").ok());
  paths = RerenderReports(env.get(), "/out");
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.status().message().find("/out/_sluice/report.json"), std::string::npos) << paths.status().message();
}

TEST_F(ReportTest, TextThatIsNotUtf8IsReplaced) {
  report_.rejects_by_reason = {{"bad \xff byte", 3}};
  input_.markers[1].input = "in/caf\xe9-latin1-name-that-is-quite-long.csv";
  std::unique_ptr<Env> env = NewMemEnv();
  ASSERT_TRUE(WriteReport(env.get(), "/out", "report", BuildReportJson(input_)).ok());
  Result<std::string> json = ReadFileToString(env.get(), "/out/_sluice/report.json");
  ASSERT_TRUE(json.ok());
  const ojson r = ojson::parse(*json);
  EXPECT_EQ(r["rejects"]["by_reason"].begin().key(), "bad \xEF\xBF\xBD byte");  // U+FFFD
  EXPECT_TRUE(RerenderReports(env.get(), "/out").ok());
}

}  // namespace
}  // namespace sluice
