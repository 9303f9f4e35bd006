// Small text helpers for messages.
#pragma once

#include <string>
#include <vector>

namespace sluice {

// "a, b, c" for error messages; "none" when empty. Past `limit` names the rest
// is summarized, so a message stays one readable line: "a, b, … (57 in all)".
std::string JoinNames(const std::vector<std::string>& names, size_t limit = 20);

}  // namespace sluice
