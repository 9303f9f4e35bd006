// RejectsWriter: the RejectSink that writes rejected rows to a JSON Lines file,
// one object per reject, keys in this order:
//   {"file":"in.csv","line":7,"byte_offset":120,"column":"amount","value":"abc",
//    "reason":"bad_value","message":"…"}
// "byte_offset" is omitted when unknown (-1), "column" and "value" when empty;
// "value" is cut to at most 256 bytes at a UTF-8 character boundary.
//
// The file is published like a part: lines go to "<dir>/.<name>.tmp-<pid>",
// created lazily on the first reject (a unit without rejects writes no file),
// and Commit() syncs it and renames it to the final path. Abort(), or
// destruction without Commit(), removes the temporary.
//
// Errors: Add() cannot fail; the first I/O error is kept and returned by
// Close() / Commit(). Rejects are counted even after an error.
//
// Thread-safety: safe for concurrent use (one mutex); several stages and
// threads may Add() at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sluice/env.h"
#include "sluice/reject.h"
#include "sluice/status.h"

namespace sluice {

class RejectsWriter final : public RejectSink {
 public:
  // Longest "value" written, in bytes.
  static constexpr size_t kMaxValueBytes = 256;

  // `env` is borrowed and must outlive the writer. Nothing is created until
  // the first Add().
  static Result<std::unique_ptr<RejectsWriter>> Open(Env* env, std::string final_path);

  ~RejectsWriter() override;
  RejectsWriter(const RejectsWriter&) = delete;
  RejectsWriter& operator=(const RejectsWriter&) = delete;

  void Add(Reject reject) override;

  int64_t count() const;
  std::map<std::string, int64_t> counts_by_reason() const;

  // Ends writing: flushes, syncs and closes the temporary file. Returns the
  // first error seen since Open. Later Add() calls are counted, not written.
  Status Close();
  // Close(), then renames the temporary to the final path and syncs the
  // directory. With no rejects there is nothing to publish: OK, no file (an
  // existing file at the final path is left alone). Call at most once.
  Status Commit();
  // Drops the temporary file. Safe to call more than once.
  void Abort();

  const std::string& final_path() const { return final_path_; }

 private:
  RejectsWriter(Env* env, std::string final_path, std::string tmp_path);

  // Records the first error; Abort()s the file so nothing half-written stays.
  void LatchErrorLocked(Status s);
  Status CloseLocked();
  void AbortLocked();

  enum class State { kOpen, kClosed, kCommitted, kAborted };

  Env* const env_;
  const std::string final_path_;
  const std::string tmp_path_;

  mutable std::mutex mu_;
  std::unique_ptr<WritableFile> file_;           // guarded by mu_; null until the first Add
  bool created_ = false;                         // guarded by mu_: the temporary was created
  std::string line_;                             // guarded by mu_: reused for each line
  Status error_;                                 // guarded by mu_: first error
  State state_ = State::kOpen;                   // guarded by mu_
  int64_t count_ = 0;                            // guarded by mu_
  std::map<std::string, int64_t> by_reason_;     // guarded by mu_
};

}  // namespace sluice
