#include "observe/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

TEST(RunMetricsTest, CountersAddUp) {
  RunMetrics m;
  m.SetPlanned(4, 1000);
  m.SetPlanned(1, 10);  // a second RunUnits call of the session adds its units
  m.AddRows(100, 90, 4, 6);
  m.AddRows(50, 50, 0, 0);
  m.AddBytes(4096, 2048);
  m.AddReject("parse_error", 3);
  m.AddReject("missing_feature");
  m.UnitStarted();
  m.UnitStarted();
  m.UnitFinished("00000", true, 1.5);
  m.CountRetry("io_error");
  m.CountRetry("io_error");
  m.SetModelCounts(2, 1);
  const MetricsSnapshot s = m.Snapshot();
  EXPECT_EQ(s.units_total, 5);
  EXPECT_EQ(s.rows_estimated, 1010);
  EXPECT_EQ(s.rows_in, 150);
  EXPECT_EQ(s.rows_out, 140);
  EXPECT_EQ(s.rows_rejected, 4);
  EXPECT_EQ(s.rows_filtered, 6);
  EXPECT_EQ(s.bytes_read, 4096);
  EXPECT_EQ(s.bytes_written, 2048);
  EXPECT_EQ(s.rejects_by_reason.at("parse_error"), 3);
  EXPECT_EQ(s.rejects_by_reason.at("missing_feature"), 1);
  EXPECT_EQ(s.units_done, 1);
  EXPECT_EQ(s.units_running, 1);
  EXPECT_EQ(s.retries.at("io_error"), 2);
  EXPECT_EQ(s.model_loads, 2);
  EXPECT_EQ(s.model_evictions, 1);
  EXPECT_EQ(m.UnitSeconds().at("00000"), 1.5);
}

TEST(RunMetricsTest, SampleReadsTheProcessAndKeepsATimeline) {
  RunMetrics m;
  m.AddRows(10, 10, 0, 0);
  m.Sample();
  m.AddRows(10, 10, 0, 0);
  m.Sample();
  const MetricsSnapshot s = m.Snapshot();
  EXPECT_GT(s.rss_bytes, 0u);
  EXPECT_GE(s.peak_rss_bytes, s.rss_bytes);
  EXPECT_GE(s.cpu_seconds, 0);
  EXPECT_GT(s.rows_per_sec, 0);  // 20 rows since the start, a moment ago
  const std::vector<TimelinePoint> t = m.Timeline();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].rows_in, 10);
  EXPECT_EQ(t[1].rows_in, 20);
  EXPECT_LE(t[0].seconds, t[1].seconds);
  for (int i = 0; i < 1500; ++i) m.Sample();
  const std::vector<TimelinePoint> thinned = m.Timeline();
  EXPECT_LE(thinned.size(), 600u);
  EXPECT_GT(thinned.size(), 250u);
  EXPECT_EQ(thinned.front().rows_in, 10);
}

TEST(RunMetricsTest, ScoresBinByReferenceOrFirstBatch) {
  const ScoreReference ref{"p", {0.25, 0.5, 0.75}, {0.25, 0.25, 0.25, 0.25}};
  RunMetrics with_ref;
  with_ref.SetScoreColumn("p", &ref);
  // Every other value: stride 2 reads element 0 of a width-2 output.
  const float values[] = {0.1f, 9.0f, 0.3f, 9.0f, 0.6f, 9.0f, 0.9f, 9.0f, 0.95f, 9.0f};
  with_ref.ObserveScores(values, 5, 2);
  MetricsSnapshot s = with_ref.Snapshot();
  EXPECT_EQ(s.score_column, "p");
  EXPECT_EQ(s.scores.bounds, ref.edges);
  EXPECT_EQ(s.scores.counts, (std::vector<int64_t>{1, 1, 1, 2}));
  EXPECT_EQ(s.scores.count, 5);
  EXPECT_NEAR(s.scores.Mean(), (0.1 + 0.3 + 0.6 + 0.9 + 0.95) / 5, 1e-6);

  RunMetrics no_ref;
  no_ref.SetScoreColumn("score", nullptr);
  const float first[] = {0.0f, 1.0f, 0.5f, NAN};
  no_ref.ObserveScores(first, 4, 1);
  const float later[] = {-3.0f, 7.0f};  // outside the first batch's range: the open end bins
  no_ref.ObserveScores(later, 2, 1);
  s = no_ref.Snapshot();
  ASSERT_EQ(s.scores.bounds.size(), 19u);
  EXPECT_DOUBLE_EQ(s.scores.bounds.front(), 0.05);
  EXPECT_EQ(s.scores.count, 5);  // NaN skipped
  EXPECT_EQ(s.scores.counts.front(), 2);  // 0 and -3
  EXPECT_EQ(s.scores.counts.back(), 2);   // 1 and 7
}

TEST(RunMetricsTest, ConcurrentUpdatesFromSeveralThreads) {
  RunMetrics m;
  constexpr int kThreads = 8, kBatches = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      const float scores[] = {0.2f, 0.4f};
      for (int b = 0; b < kBatches; ++b) {
        m.AddRows(10, 9, 1, 0);
        m.AddReject(t % 2 == 0 ? "even" : "odd");
        m.ObserveStage(Stage::kPredict, 0.002);
        m.ObserveBatch(0.01);
        m.AddInFlight(1);
        m.AddInFlight(-1);
        m.ObserveScores(scores, 2, 1);
        if (b % 100 == 0) m.CountRetry("unavailable");
      }
    });
  }
  std::thread sampler([&m] {
    for (int i = 0; i < 50; ++i) {
      m.Sample();
      (void)m.ExpositionText();
    }
  });
  for (std::thread& t : threads) t.join();
  sampler.join();
  const MetricsSnapshot s = m.Snapshot();
  const int64_t batches = int64_t{kThreads} * kBatches;
  EXPECT_EQ(s.rows_in, 10 * batches);
  EXPECT_EQ(s.rows_out, 9 * batches);
  EXPECT_EQ(s.rejects_by_reason.at("even") + s.rejects_by_reason.at("odd"), batches);
  EXPECT_EQ(s.stage_seconds[static_cast<size_t>(Stage::kPredict)].count, batches);
  EXPECT_NEAR(s.stage_seconds[static_cast<size_t>(Stage::kPredict)].sum, 0.002 * static_cast<double>(batches), 1e-6);
  EXPECT_EQ(s.batches, batches);
  EXPECT_EQ(s.batches_in_flight, 0);
  EXPECT_EQ(s.scores.count, 2 * batches);
  EXPECT_EQ(s.retries.at("unavailable"), kThreads * kBatches / 100);
}

TEST(RunMetricsTest, ExpositionHasHeadersCumulativeBucketsAndEscapedLabels) {
  RunMetrics m;
  m.SetJob("fraud \"nightly\"\nrun\\1", "abc123");
  m.AddRows(7, 5, 2, 0);
  m.AddReject("parse_error", 2);
  m.ObserveStage(Stage::kRead, 0.0002);
  m.ObserveStage(Stage::kRead, 0.003);
  m.ObserveStage(Stage::kRead, 100);  // above the last bound: only +Inf
  const std::string text = m.ExpositionText();
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("# HELP sluice_rows_read_total Input rows read, rejected ones included.")) << text;
  EXPECT_TRUE(has("# TYPE sluice_rows_read_total counter"));
  EXPECT_TRUE(has("sluice_rows_read_total 7"));
  EXPECT_TRUE(has("sluice_rows_rejected_total{reason=\"parse_error\"} 2"));
  EXPECT_TRUE(has("sluice_job_info{fingerprint=\"abc123\",job=\"fraud \\\"nightly\\\"\\nrun\\\\1\"} 1")) << text;
  EXPECT_TRUE(has("# TYPE sluice_stage_seconds histogram"));
  EXPECT_TRUE(has("sluice_stage_seconds_bucket{stage=\"read\",le=\"0.0001\"} 0"));
  EXPECT_TRUE(has("sluice_stage_seconds_bucket{stage=\"read\",le=\"0.00025\"} 1"));
  EXPECT_TRUE(has("sluice_stage_seconds_bucket{stage=\"read\",le=\"0.005\"} 2"));
  EXPECT_TRUE(has("sluice_stage_seconds_bucket{stage=\"read\",le=\"60\"} 2"));
  EXPECT_TRUE(has("sluice_stage_seconds_bucket{stage=\"read\",le=\"+Inf\"} 3"));
  EXPECT_TRUE(has("sluice_stage_seconds_count{stage=\"read\"} 3"));
  EXPECT_TRUE(has("sluice_stage_seconds_sum{stage=\"read\"} 100.0032"));
  EXPECT_TRUE(has("sluice_units{state=\"pending\"} 0"));
  EXPECT_EQ(text.find("sluice_score"), std::string::npos);  // no score column yet
}

// The exposition parses with the Prometheus project's own Python parser.
TEST(RunMetricsTest, ExpositionParsesWithPrometheusClient) {
  RunMetrics m;
  m.SetJob("job \"x\"", "f00");
  m.SetPlanned(3, 300);
  m.AddRows(120, 100, 15, 5);
  m.AddReject("parse_error", 10);
  m.AddReject("bad\\value \"quoted\"", 5);
  for (int i = 0; i < 20; ++i) m.ObserveStage(static_cast<Stage>(i % kStageCount), 0.001 * i);
  m.ObserveBatch(0.5);
  m.CountRetry("io_error");
  m.SetScoreColumn("score", nullptr);
  const float scores[] = {0.1f, 0.2f, 0.9f};
  m.ObserveScores(scores, 3, 1);
  m.Sample();
  const std::string path = ::testing::TempDir() + "/metrics_test.prom";
  {
    std::ofstream f(path);
    f << m.ExpositionText();
  }
  const std::string cmd = "/usr/bin/python3 " SLUICE_SOURCE_DIR "/src/observe/parse_exposition.py " + path;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  // The script prints "name{labels} value" for the samples it parsed.
  auto has = [&](const std::string& line) { return out.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("sluice_rows_read_total{} 120.0")) << out;
  EXPECT_TRUE(has("sluice_rows_rejected_total{reason=bad\\value \"quoted\"} 5.0")) << out;
  EXPECT_TRUE(has("sluice_job_info{fingerprint=f00,job=job \"x\"} 1.0")) << out;
  EXPECT_TRUE(has("sluice_stage_seconds_count{stage=predict} 3.0")) << out;
  EXPECT_TRUE(has("sluice_score_count{column=score} 3.0")) << out;
  EXPECT_TRUE(has("sluice_units{state=pending} 3.0")) << out;
  EXPECT_TRUE(has("family sluice_stage_seconds histogram")) << out;
  EXPECT_TRUE(has("family sluice_rows_read counter")) << out;
}

}  // namespace
}  // namespace sluice
