#include "observe/alerts.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

namespace sluice {
namespace {

AlertSpec Rule(std::string name, AlertSpec::Metric metric, AlertSpec::Op op, double threshold, int64_t for_ms = 0,
               AlertSpec::Action action = AlertSpec::Action::kLog) {
  AlertSpec a;
  a.name = std::move(name);
  a.metric = metric;
  a.op = op;
  a.threshold = threshold;
  a.for_ms = for_ms;
  a.action = action;
  return a;
}

MetricsSnapshot Rows(double at_seconds, int64_t rows_in, int64_t rejected) {
  MetricsSnapshot s;
  s.elapsed_seconds = at_seconds;
  s.rows_in = rows_in;
  s.rows_rejected = rejected;
  return s;
}

std::unique_ptr<AlertEngine> Engine(std::vector<AlertSpec> rules, const ScoreReference* reference = nullptr) {
  Result<std::unique_ptr<AlertEngine>> engine = AlertEngine::Create(rules, reference, "scoring", "abc123");
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  return std::move(*engine);
}

TEST(PopulationStabilityIndex, MatchesTheFormula) {
  // a = (0.5, 0.3, 0.2), e = (0.4, 0.4, 0.2).
  const double expected = (0.5 - 0.4) * std::log(0.5 / 0.4) + (0.3 - 0.4) * std::log(0.3 / 0.4);
  EXPECT_NEAR(PopulationStabilityIndex({50, 30, 20}, {0.4, 0.4, 0.2}), expected, 1e-12);
  EXPECT_NEAR(PopulationStabilityIndex({40, 40, 20}, {0.4, 0.4, 0.2}), 0.0, 1e-12);
}

TEST(PopulationStabilityIndex, FloorsEmptyBins) {
  // The empty observed bin and the empty reference bin count as 1e-4.
  const double expected = (1e-4 - 0.5) * std::log(1e-4 / 0.5) + (1.0 - 0.5) * std::log(1.0 / 0.5);
  EXPECT_NEAR(PopulationStabilityIndex({0, 100}, {0.5, 0.5}), expected, 1e-12);
  const double expected2 = (0.5 - 1e-4) * std::log(0.5 / 1e-4) + (0.5 - 1.0) * std::log(0.5 / 1.0);
  EXPECT_NEAR(PopulationStabilityIndex({50, 50}, {0.0, 1.0}), expected2, 1e-12);
}

TEST(PopulationStabilityIndex, UndefinedForMismatchedOrEmpty) {
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex({1, 2}, {0.2, 0.3, 0.5})));
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex({0, 0}, {0.5, 0.5})));
}

TEST(AlertEngine, RuleWithoutForFiresOnFirstHoldingEvaluation) {
  auto engine = Engine({Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01)});
  engine->Evaluate(Rows(1, 2000, 10));  // 0.005
  EXPECT_TRUE(engine->fired().empty());
  engine->Evaluate(Rows(2, 4000, 100));  // 0.025
  const std::vector<AlertEvent> fired = engine->fired();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].name, "errors");
  EXPECT_EQ(fired[0].metric, "error_rate");
  EXPECT_EQ(fired[0].condition, "error_rate > 0.01");
  EXPECT_DOUBLE_EQ(fired[0].value, 0.025);
  EXPECT_DOUBLE_EQ(fired[0].threshold, 0.01);
  EXPECT_EQ(fired[0].action, "log");
  EXPECT_DOUBLE_EQ(fired[0].at_seconds, 2);
  EXPECT_EQ(fired[0].delivery, "");
  EXPECT_FALSE(engine->fail_requested());
}

TEST(AlertEngine, ForDurationAndRearm) {
  auto engine = Engine({Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGe, 0.05, 2000)});
  engine->Evaluate(Rows(1, 2000, 100));  // holds from 1 s
  engine->Evaluate(Rows(2.5, 2000, 100));
  EXPECT_TRUE(engine->fired().empty());
  engine->Evaluate(Rows(3, 2000, 100));  // held 2 s: fires
  EXPECT_EQ(engine->fired().size(), 1u);
  engine->Evaluate(Rows(4, 2000, 100));  // still holding: fired once only
  EXPECT_EQ(engine->fired().size(), 1u);
  engine->Evaluate(Rows(5, 4000, 100));  // 0.025: false, re-arms
  engine->Evaluate(Rows(6, 4000, 400));  // holds again from 6 s
  engine->Evaluate(Rows(7, 4000, 400));
  EXPECT_EQ(engine->fired().size(), 1u);
  engine->Evaluate(Rows(8, 4000, 400));
  ASSERT_EQ(engine->fired().size(), 2u);
  EXPECT_DOUBLE_EQ(engine->fired()[1].at_seconds, 8);
}

TEST(AlertEngine, InterruptedConditionRestartsTheForClock) {
  auto engine = Engine({Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01, 2000)});
  engine->Evaluate(Rows(1, 2000, 100));
  engine->Evaluate(Rows(2, 2000, 0));  // false
  engine->Evaluate(Rows(3.5, 2000, 100));
  engine->Evaluate(Rows(4, 2000, 100));  // held 0.5 s only
  EXPECT_TRUE(engine->fired().empty());
  engine->Evaluate(Rows(5.5, 2000, 100));
  EXPECT_EQ(engine->fired().size(), 1u);
}

TEST(AlertEngine, MinimumCountsBeforeEvaluating) {
  auto engine = Engine({Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01),
                        Rule("slow_batches", AlertSpec::Metric::kBatchLatencyP99, AlertSpec::Op::kGt, 0.5),
                        Rule("slow", AlertSpec::Metric::kRowsPerSec, AlertSpec::Op::kLt, 100),
                        Rule("mean", AlertSpec::Metric::kScoreMean, AlertSpec::Op::kGt, 0.5)});
  MetricsSnapshot s = Rows(9.9, 999, 999);  // 999 rows: error rate not evaluated
  s.rows_per_sec = 1;                        // before 10 s: not evaluated
  s.batch_seconds.bounds = {0.1, 1};
  s.batch_seconds.counts = {0, 9, 0};  // 9 batches: p99 not evaluated
  s.batch_seconds.count = 9;
  s.score_column = "score";
  s.scores.bounds = {0.5};
  s.scores.counts = {0, 999};  // 999 scores: mean not evaluated
  s.scores.count = 999;
  s.scores.sum = 999 * 0.9;
  engine->Evaluate(s);
  EXPECT_TRUE(engine->fired().empty());

  s = Rows(10, 1000, 20);
  s.rows_per_sec = 1;
  s.batch_seconds.bounds = {0.1, 1};
  s.batch_seconds.counts = {0, 10, 0};
  s.batch_seconds.count = 10;
  s.score_column = "score";
  s.scores.bounds = {0.5};
  s.scores.counts = {0, 1000};
  s.scores.count = 1000;
  s.scores.sum = 1000 * 0.9;
  engine->Evaluate(s);
  std::vector<std::string> names;
  for (const AlertEvent& e : engine->fired()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"errors", "slow_batches", "slow", "mean"}));
}

TEST(AlertEngine, FailActionRequestsStop) {
  auto engine = Engine({Rule("too_slow", AlertSpec::Metric::kRowsPerSec, AlertSpec::Op::kLt, 1000, 0,
                             AlertSpec::Action::kFail)});
  MetricsSnapshot s = Rows(12, 5000, 0);
  s.rows_per_sec = 250;
  engine->Evaluate(s);
  EXPECT_TRUE(engine->fail_requested());
  EXPECT_EQ(engine->fail_reason(), "alert too_slow fired: rows_per_sec 250 < 1000");
  ASSERT_EQ(engine->fired().size(), 1u);
  EXPECT_EQ(engine->fired()[0].action, "fail");
}

TEST(AlertEngine, ScorePsiNeedsAReference) {
  std::vector<AlertSpec> rules = {Rule("drift", AlertSpec::Metric::kScorePsi, AlertSpec::Op::kGt, 0.2)};
  Result<std::unique_ptr<AlertEngine>> engine = AlertEngine::Create(rules, nullptr, "scoring", "abc");
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("'drift'"), std::string::npos) << engine.status().message();
  EXPECT_NE(engine.status().message().find("fit-stats"), std::string::npos) << engine.status().message();

  ScoreReference reference{"score", {0.5}, {0.5, 0.5}};
  rules[0].column = "other";
  engine = AlertEngine::Create(rules, &reference, "scoring", "abc");
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("'other'"), std::string::npos) << engine.status().message();
}

TEST(AlertEngine, ScorePsiFiresOnShiftedScores) {
  const ScoreReference reference{"score", {0.25, 0.5, 0.75}, {0.25, 0.25, 0.25, 0.25}};
  auto engine = Engine({Rule("drift", AlertSpec::Metric::kScorePsi, AlertSpec::Op::kGt, 0.2)}, &reference);
  MetricsSnapshot s = Rows(1, 4000, 0);
  s.score_column = "score";
  s.scores.bounds = reference.edges;
  s.scores.counts = {1000, 1000, 1000, 1000};
  s.scores.count = 4000;
  engine->Evaluate(s);
  EXPECT_TRUE(engine->fired().empty());
  s.elapsed_seconds = 2;
  s.scores.counts = {2000, 2000, 3000, 3000};  // a = (0.2, 0.2, 0.3, 0.3): PSI 0.0365
  s.scores.count = 10000;
  engine->Evaluate(s);
  EXPECT_TRUE(engine->fired().empty());
  s.elapsed_seconds = 3;
  s.scores.counts = {2000, 2000, 3000, 13000};  // mass moved to the top bin
  s.scores.count = 20000;
  engine->Evaluate(s);
  ASSERT_EQ(engine->fired().size(), 1u);
  EXPECT_NEAR(engine->fired()[0].value, PopulationStabilityIndex(s.scores.counts, reference.fractions), 1e-12);
  EXPECT_GT(engine->fired()[0].value, 0.2);
}

// A webhook receiver on 127.0.0.1 that answers `failures` times 503, then 200.
class WebhookServer {
 public:
  explicit WebhookServer(int failures, int status_after = 200) {
    server_.Post("/hooks/alert", [this, failures, status_after](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      res.status = static_cast<int>(bodies_.size()) <= failures ? 503 : status_after;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~WebhookServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/alert"; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
};

TEST(AlertEngine, WebhookRetriesOn503ThenDelivers) {
  WebhookServer server(/*failures=*/2);
  AlertSpec rule = Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01, 0,
                        AlertSpec::Action::kWebhook);
  rule.url = server.url();
  auto engine = Engine({rule});
  engine->Evaluate(Rows(4.5, 2000, 50));
  ASSERT_EQ(engine->fired().size(), 1u);
  engine->Flush(30000);
  EXPECT_EQ(engine->fired()[0].delivery, "delivered");
  const std::vector<std::string> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0], bodies[2]);
  EXPECT_EQ(server.content_types()[2], "application/json");
  const nlohmann::json body = nlohmann::json::parse(bodies[2]);
  EXPECT_EQ(body["name"], "errors");
  EXPECT_EQ(body["metric"], "error_rate");
  EXPECT_EQ(body["condition"], "error_rate > 0.01");
  EXPECT_DOUBLE_EQ(body["value"].get<double>(), 0.025);
  EXPECT_DOUBLE_EQ(body["threshold"].get<double>(), 0.01);
  EXPECT_EQ(body["action"], "webhook");
  EXPECT_DOUBLE_EQ(body["at_seconds"].get<double>(), 4.5);
  EXPECT_EQ(body["job"], "scoring");
  EXPECT_EQ(body["fingerprint"], "abc123");
  EXPECT_FALSE(body.contains("delivery"));
  EXPECT_FALSE(engine->fail_requested());
}

TEST(AlertEngine, WebhookClientErrorIsNotRetried) {
  WebhookServer server(/*failures=*/0, /*status_after=*/404);
  AlertSpec rule = Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01, 0,
                        AlertSpec::Action::kWebhook);
  rule.url = server.url();
  auto engine = Engine({rule});
  engine->Evaluate(Rows(1, 2000, 50));
  engine->Flush(30000);
  EXPECT_EQ(engine->fired()[0].delivery, "failed: HTTP 404 after 1 attempt");
  EXPECT_EQ(server.bodies().size(), 1u);
}

TEST(AlertEngine, UnreachableWebhookDoesNotBlockShutdown) {
  // Nothing listens on the port: connection errors are retried with backoff;
  // destroying the engine cuts the backoff short.
  // A port bound and closed again, with no listener: connections are refused.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  AlertSpec rule = Rule("errors", AlertSpec::Metric::kErrorRate, AlertSpec::Op::kGt, 0.01, 0,
                        AlertSpec::Action::kWebhook);
  rule.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto engine = Engine({rule});
  engine->Evaluate(Rows(1, 2000, 50));
  engine->Flush(100);
  EXPECT_EQ(engine->fired()[0].delivery, "pending");
  engine.reset();  // returns within the backoff, not after 5 attempts
}

}  // namespace
}  // namespace sluice
