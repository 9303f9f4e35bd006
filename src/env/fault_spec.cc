#include "env/fault_spec.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/strings.h"

namespace sluice {
namespace {

constexpr std::string_view kSyntax =
    "expected OP:PATH_SUBSTRING:NTH[+][:CODE][:performed][:crash] or random:RATE:OPS[:CODE][:SEED]";

// The codes a fault can carry: every code but kOk.
constexpr StatusCode kFirstErrorCode = StatusCode::kInvalidArgument;
constexpr StatusCode kLastErrorCode = StatusCode::kTimeout;

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::optional<FaultOp> ParseOp(std::string_view name) {
  for (size_t op_idx = 0; op_idx < kNumFaultOps; ++op_idx) {
    FaultOp op = static_cast<FaultOp>(op_idx);
    if (FaultOpName(op) == name) return op;
  }
  return std::nullopt;
}

std::string OpNames() {
  std::vector<std::string> names;
  for (size_t op_idx = 0; op_idx < kNumFaultOps; ++op_idx) {
    names.emplace_back(FaultOpName(static_cast<FaultOp>(op_idx)));
  }
  return JoinNames(names);
}

std::optional<StatusCode> ParseCode(std::string_view name) {
  for (int code = static_cast<int>(kFirstErrorCode); code <= static_cast<int>(kLastErrorCode); ++code) {
    if (StatusCodeName(static_cast<StatusCode>(code)) == name) return static_cast<StatusCode>(code);
  }
  return std::nullopt;
}

std::string CodeNames() {
  std::vector<std::string> names;
  for (int code = static_cast<int>(kFirstErrorCode); code <= static_cast<int>(kLastErrorCode); ++code) {
    names.emplace_back(StatusCodeName(static_cast<StatusCode>(code)));
  }
  return JoinNames(names);
}

// A whole field as a number of type T, or nullopt.
template <typename T>
std::optional<T> ParseNumber(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

class SpecParser {
 public:
  explicit SpecParser(std::string_view spec) : spec_(spec) {}

  Result<FaultSpec> Parse() {
    std::vector<std::string_view> fields = Split(spec_, ':');
    if (fields.size() < 3) return Bad(kSyntax);
    if (fields[0] == "random") return ParseRandom(fields);
    return ParseRule(fields);
  }

 private:
  Status Bad(std::string_view what) const {
    return Status::InvalidArgument("fault spec '" + std::string(spec_) + "': " + std::string(what));
  }

  Result<FaultOp> Op(std::string_view name) const {
    if (std::optional<FaultOp> op = ParseOp(name)) return *op;
    return Bad("unknown operation '" + std::string(name) + "' (" + OpNames() + ")");
  }

  Result<StatusCode> Code(std::string_view name) const {
    if (std::optional<StatusCode> code = ParseCode(name)) return *code;
    return Bad("unknown code '" + std::string(name) + "' (" + CodeNames() + ")");
  }

  Result<FaultSpec> ParseRule(const std::vector<std::string_view>& fields) const {
    FaultRule rule;
    ASSIGN_OR_RETURN(rule.op, Op(fields[0]));
    rule.path_substring = std::string(fields[1]);
    std::string_view nth = fields[2];
    rule.forever = nth.ends_with('+');
    if (rule.forever) nth.remove_suffix(1);
    std::optional<int64_t> n = ParseNumber<int64_t>(nth);
    if (!n || *n < 1) {
      return Bad("nth '" + std::string(fields[2]) + "' is not a positive integer (optionally followed by '+')");
    }
    rule.nth = *n;

    bool have_code = false;
    for (size_t field_idx = 3; field_idx < fields.size(); ++field_idx) {
      std::string_view field = fields[field_idx];
      bool* seen = field == "performed" ? &rule.performed : field == "crash" ? &rule.crash : &have_code;
      if (seen == &have_code) {
        std::optional<StatusCode> code = ParseCode(field);
        if (!code) {
          return Bad("unknown option '" + std::string(field) + "' (performed, crash, or a code: " +
                     CodeNames() + ")");
        }
        if (have_code) return Bad("a second code '" + std::string(field) + "'");
        rule.code = *code;
      } else if (*seen) {
        return Bad("'" + std::string(field) + "' given twice");
      }
      *seen = true;
    }
    return FaultSpec(std::move(rule));
  }

  Result<FaultSpec> ParseRandom(const std::vector<std::string_view>& fields) const {
    if (fields.size() > 5) return Bad("too many fields; expected random:RATE:OPS[:CODE][:SEED]");
    RandomFaults random;
    std::optional<double> rate = ParseNumber<double>(fields[1]);
    if (!rate || !std::isfinite(*rate) || *rate < 0.0 || *rate > 1.0) {
      return Bad("rate '" + std::string(fields[1]) + "' is not a number in [0, 1]");
    }
    random.rate = *rate;
    for (std::string_view name : Split(fields[2], ',')) {
      ASSIGN_OR_RETURN(FaultOp op, Op(name));
      random.ops.push_back(op);
    }
    if (fields.size() > 3) {
      ASSIGN_OR_RETURN(random.code, Code(fields[3]));
    }
    if (fields.size() > 4) {
      std::optional<uint64_t> seed = ParseNumber<uint64_t>(fields[4]);
      if (!seed) return Bad("seed '" + std::string(fields[4]) + "' is not a non-negative integer");
      random.seed = *seed;
    }
    return FaultSpec(std::move(random));
  }

  std::string_view spec_;
};

}  // namespace

Result<FaultSpec> ParseFaultSpec(std::string_view spec) { return SpecParser(spec).Parse(); }

Status ApplyFaultSpec(std::string_view spec, FaultInjectionEnv* env) {
  ASSIGN_OR_RETURN(FaultSpec parsed, ParseFaultSpec(spec));
  if (FaultRule* rule = std::get_if<FaultRule>(&parsed)) {
    env->AddRule(std::move(*rule));
    return Status::OK();
  }
  if (env->has_random_faults()) {
    return Status::InvalidArgument("fault spec '" + std::string(spec) +
                                   "': random faults are already set (one random spec at most)");
  }
  env->SetRandomFaults(std::get<RandomFaults>(std::move(parsed)));
  return Status::OK();
}

}  // namespace sluice
