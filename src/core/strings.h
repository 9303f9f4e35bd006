// Small text helpers for messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// "a, b, c" for error messages; "none" when empty. Past `limit` names the rest
// is summarized, so a message stays one readable line: "a, b, … (57 in all)".
std::string JoinNames(const std::vector<std::string>& names, size_t limit = 20);

// A database connection string fit for logs, errors, job.json and reports: the
// password of a URL ("postgresql://ann:secret@db/x" -> "postgresql://ann:***@db/x"),
// a "password=…" / "password='…'" of a key=value string, and a "password=" URL
// query parameter become "***". Anything else is returned unchanged.
std::string RedactConnection(std::string_view conn);

// Replaces every occurrence of `conn`'s password (as RedactConnection finds it)
// in `text` by "***": for messages from libraries that may echo it.
std::string RedactPassword(std::string_view text, std::string_view conn);

}  // namespace sluice
