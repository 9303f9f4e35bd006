#include "observe/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

// Borrowed from the ScopedLogUnit's argument, which outlives the scope.
thread_local const std::string* t_log_unit = nullptr;

// One JSON object per line: {"level": "info", "msg": "...", "ts": "...",
// "unit": "00003"} ("unit" only on a thread working on a unit). The message is
// escaped properly (spdlog patterns cannot do that). spdlog formats on the
// logging thread, so the thread-local unit is the caller's.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto secs = std::chrono::time_point_cast<std::chrono::milliseconds>(msg.time);
    const std::time_t t = std::chrono::system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    const auto ms = secs.time_since_epoch().count() % 1000;
    std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    nlohmann::json j;
    j["ts"] = fmt::format("{}.{:03d}Z", ts, ms);
    j["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                             spdlog::level::to_string_view(msg.level).size());
    if (t_log_unit != nullptr) j["unit"] = *t_log_unit;
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

ScopedLogUnit::ScopedLogUnit(const std::string& unit_id) : previous_(t_log_unit) { t_log_unit = &unit_id; }
ScopedLogUnit::~ScopedLogUnit() { t_log_unit = previous_; }

std::string_view CurrentLogUnit() { return t_log_unit != nullptr ? std::string_view(*t_log_unit) : std::string_view(); }

Status InitLogging(std::string_view level, LogFormat format) {
  const spdlog::level::level_enum lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("--log-level: unknown level '" + std::string(level) +
                                   "' (expected trace, debug, info, warn, error, off)");
  }
  auto logger = std::make_shared<spdlog::logger>("sluice", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  return Status::OK();
}

}  // namespace sluice
