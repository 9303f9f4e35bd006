#include "observe/monitor.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRedrawEvery = std::chrono::milliseconds(200);
constexpr size_t kBarWidth = 24;

// 950, 12.3k, 4.56M, 1.2G.
std::string Count(double n) {
  const double a = std::fabs(n);
  if (a < 1e3) return fmt::format("{:.0f}", n);
  if (a < 1e6) return fmt::format("{:.{}f}k", n / 1e3, a < 1e4 ? 1 : 0);
  if (a < 1e9) return fmt::format("{:.{}f}M", n / 1e6, a < 1e7 ? 2 : 1);
  return fmt::format("{:.2f}G", n / 1e9);
}

// 45s, 2m03s, 1h02m.
std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
}

// "41% 1.2M/2.9M rows  812k rows/s  ETA 2m03s  units 3/8 (1 failed)"; the
// fraction done (0..1) goes to *fraction.
std::string ProgressText(const MetricsSnapshot& s, double* fraction) {
  const int64_t units_finished = s.units_done + s.units_failed;
  double f = 0;
  if (s.rows_estimated > 0) {
    f = static_cast<double>(s.rows_in) / static_cast<double>(s.rows_estimated);
  } else if (s.units_total > 0) {
    f = static_cast<double>(units_finished) / static_cast<double>(s.units_total);
  }
  // Row estimates are estimates: not 100% before every unit is finished.
  f = std::clamp(f, 0.0, units_finished < s.units_total ? 0.99 : 1.0);
  *fraction = f;
  const int64_t total_rows = std::max(s.rows_estimated, s.rows_in);
  std::string eta = "--";
  if (units_finished >= s.units_total && s.units_total > 0) {
    eta = "0s";
  } else if (s.rows_per_sec > 0 && total_rows > s.rows_in) {
    eta = Duration(static_cast<double>(total_rows - s.rows_in) / s.rows_per_sec);
  }
  std::string text = fmt::format("{:3.0f}% {}/{} rows  {} rows/s  ETA {}  units {}/{}", f * 100,
                                 Count(static_cast<double>(s.rows_in)), Count(static_cast<double>(total_rows)),
                                 Count(s.rows_per_sec), eta, s.units_done, s.units_total);
  if (s.units_failed > 0) text += fmt::format(" ({} failed)", s.units_failed);
  return text;
}

std::string SummaryText(const MetricsSnapshot& s) {
  const double rate = s.elapsed_seconds > 0 ? static_cast<double>(s.rows_in) / s.elapsed_seconds : 0;
  return fmt::format("{} rows in {} ({} rows/s): {} out, {} rejected, {} filtered; units {}/{} done, {} failed",
                     Count(static_cast<double>(s.rows_in)), Duration(s.elapsed_seconds), Count(rate),
                     Count(static_cast<double>(s.rows_out)), Count(static_cast<double>(s.rows_rejected)),
                     Count(static_cast<double>(s.rows_filtered)), s.units_done, s.units_total, s.units_failed);
}

void WriteStderr(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

// "HOST:PORT" as MonitoringSpec::metrics_addr holds it (the host may be an
// IPv6 address, without brackets).
bool SplitAddress(const std::string& addr, std::string* host, int* port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  *host = addr.substr(0, colon);
  const std::string digits = addr.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *port = std::stoi(digits);
  return !host->empty() && *port <= 65535;
}

std::string JoinAddress(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

enum class Display { kNone, kLines, kBar };

// The terminal line the bar lives on, shared by the bar and the log sinks.
struct TerminalLine {
  std::mutex mu;
  bool bar_shown = false;  // guarded by mu: the cursor is at the end of the bar
};

// Wraps a log sink while the bar is shown: a log line first erases the bar,
// so it starts on a clean line; the next redraw puts the bar back below it.
class BarAwareSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  BarAwareSink(spdlog::sink_ptr inner, TerminalLine* line) : inner_(std::move(inner)), line_(line) {
    set_level(inner_->level());
  }
  const spdlog::sink_ptr& inner() const { return inner_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard<std::mutex> lock(line_->mu);
    if (line_->bar_shown) {
      std::fputs("\r\x1b[K", stderr);
      line_->bar_shown = false;
    }
    inner_->log(msg);
  }
  void flush_() override { inner_->flush(); }

 private:
  spdlog::sink_ptr inner_;
  TerminalLine* line_;
};

}  // namespace

struct Monitor::Impl {
  RunMetrics* metrics = nullptr;
  Env* env = nullptr;
  MonitorOptions options;
  Display display = Display::kNone;
  std::chrono::milliseconds interval{5000};

  std::unique_ptr<httplib::Server> server;
  std::thread server_thread;
  std::atomic<bool> server_ended{false};
  std::string address;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu
  bool stopped = false;   // Stop ran; only the run's thread reads and writes it

  bool textfile_warned = false;  // the monitor's thread only (then Stop, after the join)
  bool fail_signalled = false;   // the monitor's thread only (then Stop, after the join)
  TerminalLine line;
  bool sinks_wrapped = false;  // the run's thread only

  // Sample, textfile, alerts (on_fail once a `fail` rule fired); a plain line when `print_line`.
  void Tick(bool print_line) {
    metrics->Sample();
    if (!options.textfile.empty()) {
      Status st = WriteFileAtomic(env, options.textfile, metrics->ExpositionText());
      if (!st.ok() && !textfile_warned) {
        textfile_warned = true;
        spdlog::warn("metrics: cannot write {}: {} (the run goes on)", options.textfile, st.ToString());
      }
    }
    const MetricsSnapshot snapshot = metrics->Snapshot();
    if (options.alerts != nullptr) {
      options.alerts->Evaluate(snapshot);
      if (!fail_signalled && options.alerts->fail_requested()) {
        fail_signalled = true;
        if (options.on_fail) options.on_fail(options.alerts->fail_reason());
      }
    }
    if (print_line && display == Display::kLines) {
      double fraction = 0;
      WriteStderr("progress: " + ProgressText(snapshot, &fraction) + "\n");
    }
  }

  void Redraw() {
    double fraction = 0;
    const std::string text = ProgressText(metrics->Snapshot(), &fraction);
    const size_t filled = static_cast<size_t>(fraction * kBarWidth);
    // "\r" and erase-line redraw in place; a log line printed meanwhile is left above.
    std::lock_guard<std::mutex> lock(line.mu);
    WriteStderr(fmt::format("\r\x1b[K[{}{}] {}", std::string(filled, '#'), std::string(kBarWidth - filled, ' '), text));
    line.bar_shown = true;
  }

  // Log lines erase the bar first (BarAwareSink) while it is shown. Start and
  // Stop run while no unit logs.
  void WrapLogSinks(bool wrap) {
    if (wrap == sinks_wrapped) return;
    sinks_wrapped = wrap;
    for (spdlog::sink_ptr& sink : spdlog::default_logger()->sinks()) {
      if (wrap) {
        sink = std::make_shared<BarAwareSink>(sink, &line);
      } else if (auto* bar_aware = dynamic_cast<BarAwareSink*>(sink.get())) {
        sink = bar_aware->inner();
      }
    }
  }

  void Loop() {
    auto next_tick = Clock::now() + interval;
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      const auto wake = display == Display::kBar ? std::min(next_tick, Clock::now() + kRedrawEvery) : next_tick;
      cv.wait_until(lock, wake, [&] { return stopping; });
      if (stopping) break;
      lock.unlock();
      if (Clock::now() >= next_tick) {
        Tick(/*print_line=*/true);
        next_tick += interval;
        if (next_tick < Clock::now()) next_tick = Clock::now() + interval;  // a slow tick: do not catch up
      }
      if (display == Display::kBar) Redraw();
      lock.lock();
    }
  }

  Status StartServer(const std::string& addr) {
    std::string host;
    int port = 0;
    if (!SplitAddress(addr, &host, &port)) {
      return Status::InvalidArgument("monitoring.metrics_addr: expected HOST:PORT, got '" + addr + "'");
    }
    server = std::make_unique<httplib::Server>();
    // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second run
    // listen on the same port and take half of the scrapes.
    server->set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    RunMetrics* m = metrics;
    server->Get("/metrics", [m](const httplib::Request&, httplib::Response& res) {
      res.set_content(m->ExpositionText(), "text/plain; version=0.0.4; charset=utf-8");
    });
    const int bound = port == 0 ? server->bind_to_any_port(host) : (server->bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
      return Status::Unavailable(fmt::format("monitoring.metrics_addr: cannot listen on {}: {}", JoinAddress(host, port),
                                             std::strerror(errno)));
    }
    address = JoinAddress(host, bound);
    httplib::Server* s = server.get();
    std::atomic<bool>* ended = &server_ended;
    server_thread = std::thread([s, ended] {
      s->listen_after_bind();
      ended->store(true);
    });
    // A stop() before the server runs would be lost, and Stop would wait forever.
    while (!s->is_running() && !ended->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    spdlog::info("metrics: serving http://{}/metrics", address);
    return Status::OK();
  }
};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Monitor::~Monitor() { Stop(); }

Result<std::unique_ptr<Monitor>> Monitor::Start(RunMetrics* metrics, Env* env, MonitorOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->metrics = metrics;
  impl->env = env;
  impl->options = std::move(options);
  const MonitoringSpec* spec = impl->options.spec;
  if (spec != nullptr) impl->interval = std::chrono::milliseconds(std::max<int64_t>(spec->interval_ms, 1));
  switch (impl->options.progress) {
    case ProgressMode::kOff: impl->display = Display::kNone; break;
    case ProgressMode::kPlain: impl->display = Display::kLines; break;
    case ProgressMode::kAuto: impl->display = impl->options.tty ? Display::kBar : Display::kLines; break;
  }
  if (spec != nullptr && !spec->metrics_addr.empty()) RETURN_IF_ERROR(impl->StartServer(spec->metrics_addr));
  Impl* raw = impl.get();
  if (raw->display == Display::kBar) raw->WrapLogSinks(true);
  raw->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Monitor>(new Monitor(std::move(impl)));
}

std::string Monitor::metrics_address() const { return impl_->address; }

void Monitor::Stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
  }
  m.cv.notify_all();
  if (m.thread.joinable()) m.thread.join();
  m.WrapLogSinks(false);
  m.Tick(/*print_line=*/false);
  if (m.display != Display::kNone) {
    // The bar's line is replaced by the summary.
    WriteStderr(fmt::format("{}done: {}\n", m.line.bar_shown ? "\r\x1b[K" : "", SummaryText(m.metrics->Snapshot())));
  }
  if (m.server) {
    m.server->stop();
    if (m.server_thread.joinable()) m.server_thread.join();
  }
}

}  // namespace sluice
