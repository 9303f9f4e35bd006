#include "observe/monitor.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

namespace sluice {
namespace {

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

std::string Scrape(const std::string& address) {
  httplib::Client client("127.0.0.1", PortOf(address));
  httplib::Result res = client.Get("/metrics");
  if (!res || res->status != 200) return "";
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  return res->body;
}

TEST(MonitorTest, ServesLiveMetricsAndRewritesTheTextfile) {
  std::unique_ptr<Env> env = NewMemEnv();
  RunMetrics metrics;
  metrics.AddRows(5, 5, 0, 0);
  MonitoringSpec spec;
  spec.metrics_addr = "127.0.0.1:0";
  spec.interval_ms = 100;
  MonitorOptions options;
  options.spec = &spec;
  options.textfile = "/out/_sluice/metrics.prom";
  options.progress = ProgressMode::kOff;
  Result<std::unique_ptr<Monitor>> monitor = Monitor::Start(&metrics, env.get(), options);
  ASSERT_TRUE(monitor.ok()) << monitor.status().ToString();
  const std::string address = (*monitor)->metrics_address();
  ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
  EXPECT_NE(PortOf(address), 0);

  EXPECT_NE(Scrape(address).find("\nsluice_rows_read_total 5\n"), std::string::npos);
  metrics.AddRows(3, 2, 1, 0);  // the server answers from the live counters
  EXPECT_NE(Scrape(address).find("\nsluice_rows_read_total 8\n"), std::string::npos);

  // The textfile appears within a few intervals.
  for (int i = 0; i < 100 && !env->FileExists(options.textfile); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(env->FileExists(options.textfile));
  metrics.AddRows(2, 2, 0, 0);
  (*monitor)->Stop();
  (*monitor)->Stop();  // idempotent
  Result<std::string> text = ReadFileToString(env.get(), options.textfile);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\nsluice_rows_read_total 10\n"), std::string::npos) << *text;  // the last sample
  EXPECT_FALSE(metrics.Timeline().empty());
  EXPECT_EQ(Scrape(address), "");  // the server is gone
}

TEST(MonitorTest, AnAddressInUseIsUnavailableNamingTheKey) {
  std::unique_ptr<Env> env = NewMemEnv();
  RunMetrics metrics;
  MonitoringSpec spec;
  spec.metrics_addr = "127.0.0.1:0";
  MonitorOptions options;
  options.spec = &spec;
  options.progress = ProgressMode::kOff;
  Result<std::unique_ptr<Monitor>> first = Monitor::Start(&metrics, env.get(), options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  MonitoringSpec busy = spec;
  busy.metrics_addr = (*first)->metrics_address();
  options.spec = &busy;
  Result<std::unique_ptr<Monitor>> second = Monitor::Start(&metrics, env.get(), options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("monitoring.metrics_addr: cannot listen on " + busy.metrics_addr),
            std::string::npos)
      << second.status().message();
}

TEST(MonitorTest, WithoutAddressOrTextfileOnlySamples) {
  RunMetrics metrics;
  MonitoringSpec spec;
  spec.interval_ms = 100;
  MonitorOptions options;
  options.spec = &spec;
  options.progress = ProgressMode::kOff;
  Result<std::unique_ptr<Monitor>> monitor = Monitor::Start(&metrics, nullptr, options);
  ASSERT_TRUE(monitor.ok());
  EXPECT_EQ((*monitor)->metrics_address(), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  (*monitor)->Stop();
  EXPECT_GE(metrics.Timeline().size(), 2u);  // ticks and the last sample
}

// A `fail` rule that fires calls on_fail once, from the monitor's thread.
TEST(MonitorTest, AFailRuleCallsOnFailOnce) {
  AlertSpec rule;
  rule.name = "errors";
  rule.metric = AlertSpec::Metric::kErrorRate;
  rule.op = AlertSpec::Op::kGt;
  rule.threshold = 0.01;
  rule.action = AlertSpec::Action::kFail;
  Result<std::unique_ptr<AlertEngine>> alerts = AlertEngine::Create({rule}, nullptr, "job", "f00");
  ASSERT_TRUE(alerts.ok()) << alerts.status().ToString();
  RunMetrics metrics;
  metrics.AddRows(2000, 1900, 100, 0);  // 5% rejected
  MonitoringSpec spec;
  spec.interval_ms = 100;
  MonitorOptions options;
  options.spec = &spec;
  options.progress = ProgressMode::kOff;
  options.alerts = alerts->get();
  std::promise<std::string> reason;
  int calls = 0;
  options.on_fail = [&](const std::string& why) {
    if (calls++ == 0) reason.set_value(why);
  };
  Result<std::unique_ptr<Monitor>> monitor = Monitor::Start(&metrics, nullptr, options);
  ASSERT_TRUE(monitor.ok());
  std::future<std::string> fired = reason.get_future();
  ASSERT_EQ(fired.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // more ticks: no second call
  (*monitor)->Stop();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(fired.get().find("alert errors fired"), std::string::npos);
  ASSERT_EQ((*alerts)->fired().size(), 1u);
}

}  // namespace
}  // namespace sluice
