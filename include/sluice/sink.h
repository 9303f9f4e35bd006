// Sinks write the output of one work unit as one part. A part becomes visible
// only on Commit: it is written under a temporary name, synced, renamed into
// place and the directory synced. Abort (or destruction without Commit) removes
// the temporary; a part never appears half-written.
//
// Thread-safety: a PartWriter is used by one thread at a time. Different parts
// may be written concurrently.
#pragma once

#include <memory>
#include <string>

#include "sluice/batch.h"
#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

class PartWriter {
 public:
  virtual ~PartWriter() = default;
  // Appends the rows of `batch`; its schema must equal the schema given at open.
  virtual Status Write(const Batch& batch) = 0;
  // Finishes the part durably and atomically. After OK, the part is at final_path().
  virtual Status Commit() = 0;
  // Drops everything written. Safe to call more than once.
  virtual void Abort() = 0;
  virtual const std::string& final_path() const = 0;
  virtual int64_t rows_written() const = 0;
  virtual uint64_t bytes_written() const = 0;
  // SHA-256 (hex) of the part's bytes; valid after Commit.
  virtual std::string sha256() const = 0;
};

// Opens the writer for part `part_index` of `schema` in output directory
// `dir`: "<dir>/part-00007.csv" (or .jsonl).
Result<std::unique_ptr<PartWriter>> OpenPartWriter(Env* env, OutputFormat format,
                                                   const std::string& dir, int part_index,
                                                   const Schema& schema);

// The file name of part `part_index` in `format`: "part-00007.csv".
std::string PartFileName(OutputFormat format, int part_index);

}  // namespace sluice
