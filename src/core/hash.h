// Stable 64-bit hashing for data-dependent decisions that must not change
// between runs, machines or builds: sampling (partition.sample) and hash
// partitions. FNV-1a over the bytes, then the splitmix64 finalizer so that low
// bits are well mixed. Not cryptographic.
// Thread-safety: pure functions.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace sluice {

inline uint64_t MixHash(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

// Folds `bytes` into `h` (start with kHashSeed).
inline uint64_t HashBytes(std::string_view bytes, uint64_t h) {
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline constexpr uint64_t kHashSeed = 0xcbf29ce484222325ULL;

// Typed key values, hashed by a canonical text so that the same value read from
// CSV or JSON Lines (or declared int64 vs float64) hashes the same: integers and
// integral floats as decimal integers, other floats in shortest round-trip form,
// booleans as true/false, timestamps as their microseconds, null as a marker.
// Multi-column keys: call once per column, in key order; finish with MixHash.
inline uint64_t HashKeyInt(int64_t v, uint64_t h) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return HashBytes({buf, static_cast<size_t>(r.ptr - buf)}, HashBytes("\x1fi", h));
}
inline uint64_t HashKeyDouble(double v, uint64_t h) {
  if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) < 0x1.0p53) return HashKeyInt(static_cast<int64_t>(v), h);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return HashBytes({buf, static_cast<size_t>(r.ptr - buf)}, HashBytes("\x1f" "f", h));
}
inline uint64_t HashKeyBool(bool v, uint64_t h) { return HashBytes(v ? "true" : "false", HashBytes("\x1f" "b", h)); }
inline uint64_t HashKeyString(std::string_view v, uint64_t h) { return HashBytes(v, HashBytes("\x1fs", h)); }
inline uint64_t HashKeyNull(uint64_t h) { return HashBytes("\x1fn", h); }

// A row without key columns is sampled by where it is: its file and line.
inline uint64_t HashRowLocation(std::string_view path, int64_t line) {
  return MixHash(HashKeyInt(line, HashKeyString(path, kHashSeed)));
}

// True when a row whose (finished, MixHash-ed) hash is `hash` is in a sample of
// `fraction` (0..1]: hash / 2^64 < fraction.
inline bool SampleKeep(uint64_t hash, double fraction) {
  if (fraction >= 1.0) return true;
  return static_cast<double>(hash >> 11) * 0x1.0p-53 < fraction;
}

}  // namespace sluice
