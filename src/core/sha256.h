// Incremental SHA-256 (OpenSSL EVP underneath), for part checksums, the model
// fingerprint and the spec hash.
// Thread-safety: one object per thread; no shared state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sluice/env.h"
#include "sluice/status.h"

namespace sluice {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Lower-case hex digest of everything updated so far; ends the object's use.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
// Digest of a file's contents, read in 1 MiB chunks through env.
Result<std::string> Sha256File(Env* env, const std::string& path);

}  // namespace sluice
