#include "core/strings.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace sluice {

std::string JoinNames(const std::vector<std::string>& names, size_t limit) {
  if (names.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > limit) out += ", … (" + std::to_string(names.size()) + " in all)";
  return out;
}

namespace {

// [begin, end) of the password inside `conn`, or nullopt.
std::optional<std::pair<size_t, size_t>> FindPassword(std::string_view conn) {
  const size_t scheme = conn.find("://");
  if (scheme != std::string_view::npos) {
    const size_t auth_begin = scheme + 3;
    const size_t auth_end = conn.find_first_of("/?#", auth_begin);
    const std::string_view authority = conn.substr(auth_begin, auth_end == std::string_view::npos
                                                                   ? std::string_view::npos
                                                                   : auth_end - auth_begin);
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      const size_t colon = authority.find(':');
      if (colon != std::string_view::npos && colon < at) {
        return std::make_pair(auth_begin + colon + 1, auth_begin + at);
      }
    }
  }
  // key=value strings and URL query parameters: password=… up to a space or '&'
  // (or, quoted, up to the closing quote).
  for (size_t pos = conn.find("password="); pos != std::string_view::npos; pos = conn.find("password=", pos + 1)) {
    if (pos > 0 && conn[pos - 1] != ' ' && conn[pos - 1] != '?' && conn[pos - 1] != '&') continue;
    size_t begin = pos + 9;
    if (begin < conn.size() && conn[begin] == '\'') {
      ++begin;
      size_t end = begin;
      while (end < conn.size() && conn[end] != '\'') end += conn[end] == '\\' ? 2 : 1;
      return std::make_pair(begin, std::min(end, conn.size()));
    }
    const size_t end = conn.find_first_of(" &", begin);
    return std::make_pair(begin, end == std::string_view::npos ? conn.size() : end);
  }
  return std::nullopt;
}

}  // namespace

std::string RedactConnection(std::string_view conn) {
  std::string out(conn);
  const auto password = FindPassword(conn);
  if (!password || password->first == password->second) return out;
  return out.replace(password->first, password->second - password->first, "***");
}

std::string RedactPassword(std::string_view text, std::string_view conn) {
  std::string out(text);
  const auto password = FindPassword(conn);
  if (!password || password->first == password->second) return out;
  const std::string secret(conn.substr(password->first, password->second - password->first));
  for (size_t pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos + 3)) {
    out.replace(pos, secret.size(), "***");
  }
  return out;
}

}  // namespace sluice
