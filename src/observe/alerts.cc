#include "observe/alerts.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice {
namespace {

// The minimum amounts of data before a metric means anything (alerts.h).
constexpr int64_t kMinRowsForErrorRate = 1000;
constexpr int64_t kMinScores = 1000;
constexpr int64_t kMinBatchesForLatency = 10;
constexpr double kMinSecondsForRate = 10;

// Webhook delivery: attempts, the first backoff (doubling), per-request timeout.
constexpr int kWebhookAttempts = 5;
constexpr int64_t kWebhookFirstBackoffMs = 500;
constexpr time_t kWebhookTimeoutSeconds = 5;

std::string_view OpText(AlertSpec::Op op) {
  switch (op) {
    case AlertSpec::Op::kGt: return ">";
    case AlertSpec::Op::kGe: return ">=";
    case AlertSpec::Op::kLt: return "<";
    case AlertSpec::Op::kLe: return "<=";
  }
  return "?";
}

bool Holds(AlertSpec::Op op, double value, double threshold) {
  switch (op) {
    case AlertSpec::Op::kGt: return value > threshold;
    case AlertSpec::Op::kGe: return value >= threshold;
    case AlertSpec::Op::kLt: return value < threshold;
    case AlertSpec::Op::kLe: return value <= threshold;
  }
  return false;
}

// The rule's metric in this snapshot, or nullopt while there is too little data.
std::optional<double> MetricValue(const AlertSpec& rule, const MetricsSnapshot& s, const ScoreReference* reference) {
  if (WatchesScores(rule)) {
    if (s.score_column.empty() || s.scores.count < kMinScores) return std::nullopt;
    if (!rule.column.empty() && rule.column != s.score_column) return std::nullopt;
  }
  switch (rule.metric) {
    case AlertSpec::Metric::kErrorRate:
      if (s.rows_in < kMinRowsForErrorRate) return std::nullopt;
      return static_cast<double>(s.rows_rejected) / static_cast<double>(s.rows_in);
    case AlertSpec::Metric::kBatchLatencyP99:
      if (s.batch_seconds.count < kMinBatchesForLatency) return std::nullopt;
      return s.batch_seconds.Quantile(0.99);
    case AlertSpec::Metric::kRowsPerSec:
      if (s.elapsed_seconds < kMinSecondsForRate) return std::nullopt;
      return s.rows_per_sec;
    case AlertSpec::Metric::kScoreMean:
      return s.scores.Mean();
    case AlertSpec::Metric::kScorePsi: {
      if (reference == nullptr || reference->column != s.score_column) return std::nullopt;
      const double psi = PopulationStabilityIndex(s.scores.counts, reference->fractions);
      if (std::isnan(psi)) return std::nullopt;
      return psi;
    }
  }
  return std::nullopt;
}

// "http://host:port/path?q" -> ("http://host:port", "/path?q").
std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t path_begin = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path_begin == std::string::npos) return {url, "/"};
  return {url.substr(0, path_begin), url.substr(path_begin)};
}

// What a delivery attempt came to.
struct Attempt {
  bool delivered = false;
  bool retry = false;
  std::string error;
};

Attempt PostOnce(const std::string& url, const std::string& body) {
  const auto [origin, path] = SplitUrl(url);
  httplib::Client client(origin);
  client.set_connection_timeout(kWebhookTimeoutSeconds);
  client.set_read_timeout(kWebhookTimeoutSeconds);
  client.set_write_timeout(kWebhookTimeoutSeconds);
  if (!client.is_valid()) return {false, false, "invalid URL"};
  httplib::Result res = client.Post(path, body, "application/json");
  if (!res) return {false, true, httplib::to_string(res.error()) + " error"};
  const int status = res->status;
  if (status >= 200 && status < 300) return {true, false, ""};
  return {false, status >= 500 || status == 429, fmt::format("HTTP {}", status)};
}

}  // namespace

nlohmann::json AlertEvent::ToJson() const {
  return nlohmann::json{{"name", name},           {"metric", metric}, {"condition", condition},
                        {"value", value},         {"threshold", threshold}, {"action", action},
                        {"at_seconds", at_seconds}, {"delivery", delivery}};
}

bool WatchesScores(const AlertSpec& rule) {
  return rule.metric == AlertSpec::Metric::kScoreMean || rule.metric == AlertSpec::Metric::kScorePsi;
}

std::string AlertCondition(const AlertSpec& rule) {
  return fmt::format("{} {} {}", AlertMetricName(rule.metric), OpText(rule.op), rule.threshold);
}

double PopulationStabilityIndex(const std::vector<int64_t>& observed, const std::vector<double>& fractions) {
  constexpr double kFloor = 1e-4;
  if (observed.size() != fractions.size() || observed.empty()) return std::numeric_limits<double>::quiet_NaN();
  int64_t total = 0;
  for (int64_t c : observed) total += c;
  if (total <= 0) return std::numeric_limits<double>::quiet_NaN();
  double psi = 0;
  for (size_t bin = 0; bin < observed.size(); ++bin) {
    const double a = std::max(static_cast<double>(observed[bin]) / static_cast<double>(total), kFloor);
    const double e = std::max(fractions[bin], kFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

struct AlertEngine::Impl {
  struct RuleState {
    AlertSpec rule;
    std::optional<double> holding_since;  // elapsed seconds when the condition began to hold
    bool armed = true;
  };
  struct Delivery {
    size_t event_index;
    std::string url;
    std::string body;
  };

  std::vector<RuleState> rules;
  std::optional<ScoreReference> reference;
  std::string job_name;
  std::string fingerprint;

  std::atomic<bool> fail_requested{false};

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<AlertEvent> fired;   // guarded by mu
  std::string fail_reason;         // guarded by mu
  std::deque<Delivery> queue;      // guarded by mu
  bool delivering = false;         // guarded by mu: the worker holds a delivery
  bool stopping = false;           // guarded by mu
  std::thread worker;              // started with the first webhook

  void Fire(RuleState& state, double value, double at_seconds);
  void Deliver();
};

void AlertEngine::Impl::Fire(RuleState& state, double value, double at_seconds) {
  const AlertSpec& rule = state.rule;
  AlertEvent event;
  event.name = rule.name;
  event.metric = std::string(AlertMetricName(rule.metric));
  event.condition = AlertCondition(rule);
  event.value = value;
  event.threshold = rule.threshold;
  event.action = std::string(AlertActionName(rule.action));
  event.at_seconds = at_seconds;
  const std::string line =
      fmt::format("alert {} fired: {} {:.6g} {} {}", rule.name, event.metric, value, OpText(rule.op), rule.threshold);
  spdlog::warn("{}", line);

  std::lock_guard<std::mutex> lock(mu);
  if (rule.action == AlertSpec::Action::kWebhook) {
    event.delivery = "pending";
    nlohmann::json body = event.ToJson();
    body.erase("delivery");
    body["job"] = job_name;
    body["fingerprint"] = fingerprint;
    queue.push_back({fired.size(), rule.url, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    if (!worker.joinable()) worker = std::thread([this] { Deliver(); });
    cv.notify_all();
  }
  if (rule.action == AlertSpec::Action::kFail && !fail_requested.load()) {
    fail_reason = line;
    fail_requested.store(true);
  }
  fired.push_back(std::move(event));
}

// The worker: posts queued bodies one at a time, retrying with backoff.
// Stopping cuts a backoff short and abandons what is left (still "pending").
void AlertEngine::Impl::Deliver() {
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    cv.wait(lock, [this] { return stopping || !queue.empty(); });
    if (stopping) return;
    Delivery d = std::move(queue.front());
    queue.pop_front();
    delivering = true;
    std::string outcome;
    int64_t backoff_ms = kWebhookFirstBackoffMs;
    for (int attempt = 1; attempt <= kWebhookAttempts; ++attempt) {
      lock.unlock();
      const Attempt a = PostOnce(d.url, d.body);
      lock.lock();
      if (a.delivered) {
        outcome = "delivered";
        break;
      }
      outcome = fmt::format("failed: {} after {} attempt{}", a.error, attempt, attempt == 1 ? "" : "s");
      if (!a.retry || attempt == kWebhookAttempts) break;
      if (cv.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stopping; })) {
        outcome += ", then the run ended";
        break;
      }
      backoff_ms *= 2;
    }
    if (outcome != "delivered") {
      spdlog::warn("alert {}: webhook not delivered: {}", fired[d.event_index].name, outcome);
    }
    fired[d.event_index].delivery = outcome;
    delivering = false;
    cv.notify_all();
  }
}

AlertEngine::AlertEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AlertEngine::~AlertEngine() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

Result<std::unique_ptr<AlertEngine>> AlertEngine::Create(const std::vector<AlertSpec>& rules,
                                                         const ScoreReference* reference, std::string job_name,
                                                         std::string fingerprint) {
  auto impl = std::make_unique<Impl>();
  for (const AlertSpec& rule : rules) {
    if (rule.metric == AlertSpec::Metric::kScorePsi) {
      if (reference == nullptr) {
        return Status::InvalidArgument(fmt::format(
            "monitoring.alerts: rule '{}' watches score_psi, but the stats file has no reference histogram of the "
            "scores; run `sluice fit-stats JOB --out STATS` to write one",
            rule.name));
      }
      if (!rule.column.empty() && rule.column != reference->column) {
        return Status::InvalidArgument(fmt::format(
            "monitoring.alerts: rule '{}' watches score_psi of column '{}', but the stats file's reference histogram "
            "is of column '{}'",
            rule.name, rule.column, reference->column));
      }
    }
    impl->rules.push_back({rule, std::nullopt, true});
  }
  if (reference != nullptr) impl->reference = *reference;
  impl->job_name = std::move(job_name);
  impl->fingerprint = std::move(fingerprint);
  return std::unique_ptr<AlertEngine>(new AlertEngine(std::move(impl)));
}

void AlertEngine::Evaluate(const MetricsSnapshot& snapshot) {
  const ScoreReference* reference = impl_->reference ? &*impl_->reference : nullptr;
  for (Impl::RuleState& state : impl_->rules) {
    const std::optional<double> value = MetricValue(state.rule, snapshot, reference);
    if (!value) continue;
    if (!Holds(state.rule.op, *value, state.rule.threshold)) {
      state.holding_since.reset();
      state.armed = true;
      continue;
    }
    if (!state.holding_since) state.holding_since = snapshot.elapsed_seconds;
    const double held_ms = (snapshot.elapsed_seconds - *state.holding_since) * 1000;
    if (state.armed && held_ms >= static_cast<double>(state.rule.for_ms)) {
      state.armed = false;
      impl_->Fire(state, *value, snapshot.elapsed_seconds);
    }
  }
}

void AlertEngine::Flush(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                     [this] { return impl_->queue.empty() && !impl_->delivering; });
}

bool AlertEngine::fail_requested() const { return impl_->fail_requested.load(); }

std::string AlertEngine::fail_reason() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->fail_reason;
}

std::vector<AlertEvent> AlertEngine::fired() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->fired;
}

}  // namespace sluice
