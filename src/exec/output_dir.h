// The output directory layout of DESIGN.md §4 and the files that describe a run:
//   <out>/part-00000.csv …          committed parts
//   <out>/_sluice/job.json          normalized spec + fingerprints
//   <out>/_sluice/units/00000.json  one commit marker per finished unit
//   <out>/_sluice/rejects/part-00000.jsonl  rejected rows of unit 00000
//   <out>/_SUCCESS                  manifest, written when every unit is committed
// Every file here is written atomically (WriteFileAtomic).
// Thread-safety: stateless functions.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/sink.h"

namespace sluice {

struct PlannedRange {
  std::string id;
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;
  std::string label;
};

struct JobFingerprint {
  std::string spec_json;    // JobSpec::ToCanonicalJson()
  std::string spec_sha256;
  std::string model_sha256;
  struct Input {
    std::string path;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
  };
  std::vector<Input> inputs;
  // sha256 over all of the above: equal digests = the same job.
  std::string Digest() const;
  // The plan, recorded in job.json for `sluice status` (not part of the digest:
  // it follows from the spec and the inputs).
  std::vector<PlannedRange> units;
};

struct UnitMarker {
  std::string unit_id;
  std::string input;  // file the unit read
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  int64_t rows_rejected = 0;
  int64_t rows_filtered = 0;
  int64_t rows_sampled_out = 0;
  std::vector<PartFile> files;  // committed output files, relative to the output dir
  std::string rejects;  // relative path of the unit's rejects file, empty if none
};

std::string SluiceDir(const std::string& out);        // <out>/_sluice
std::string UnitsDir(const std::string& out);         // <out>/_sluice/units
std::string RejectsDir(const std::string& out);       // <out>/_sluice/rejects
std::string RejectsPath(const std::string& out, int unit_index);
std::string UnitMarkerPath(const std::string& out, const std::string& unit_id);
std::string FailedUnitPath(const std::string& out, const std::string& unit_id);  // <out>/_sluice/failed/<id>.json

// Read-only: whether `out` may receive this job's output (the refusals of
// PrepareOutputDir below). Creates and changes nothing.
Status CheckOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart);

// The locks of one run on an output directory (DESIGN.md §4): a run of the
// whole job holds <out>/_sluice/lock exclusively; a run that shares the
// directory holds it shared: a --shard I/N run (with
// <out>/_sluice/locks/shard-I-of-N exclusively, so a shard runs once at a
// time) or a session with RunOptions::shared_output (no shard lock).
// kFailedPrecondition naming the directory when another run holds them.
// Creates <out>/_sluice if missing; call after CheckOutputDir.
struct OutputLock {
  std::unique_ptr<FileLock> dir;
  std::unique_ptr<FileLock> shard;
};
Result<OutputLock> LockOutputDir(Env* env, const std::string& out, const RunOptions& options);
// Whether a run with these options shares the directory with other runs.
bool SharesOutputDir(const RunOptions& options);

// <out>/_sluice/locks/unit-<id>, held exclusively by the attempt that runs the
// unit in a run sharing the directory, from before it checks for the unit's
// marker until after it wrote the marker or dropped its output: attempts of one
// unit (in any process or thread) run one after the other, and the first commit
// wins. Waits for another holder (polling, up to a second apart; the lock of a
// dead process is free at once); kCancelled when `interrupt` is set meanwhile.
Result<std::unique_ptr<FileLock>> LockUnit(Env* env, const std::string& out, const std::string& unit_id,
                                           const std::atomic<bool>* interrupt);

// Removes temporaries (names with ".tmp-") that units in `unit_ids` left when
// a run died: parts (also in partition directories), rejects, markers; with
// `whole_job` (a run that holds the directory alone) also those of job.json,
// _SUCCESS, the metrics textfiles and the run reports (report*.json, .html).
Status RemoveOrphanTemporaries(Env* env, const std::string& out, const std::set<std::string>& unit_ids,
                               bool whole_job);

// The unit's marker when it is committed: the marker parses and every file it
// lists is there with its size. Otherwise nullopt (a stale marker is removed).
Result<std::optional<UnitMarker>> CommittedUnit(Env* env, const std::string& out, const std::string& unit_id);
// The same check, read-only: nullopt when there is no marker, or when it is
// stale (it does not parse or its files differ), which *stale then tells.
Result<std::optional<UnitMarker>> ReadValidMarker(Env* env, const std::string& out, const std::string& unit_id,
                                                  bool* stale);

// A unit that failed for good in the last run: for `sluice status`.
struct FailedUnit {
  std::string unit_id;
  std::string input;
  uint64_t begin = 0;
  uint64_t end = 0;
  std::string error;
  int attempts = 0;
};
Status WriteFailedUnit(Env* env, const std::string& out, const FailedUnit& failed);
Result<FailedUnit> ReadFailedUnit(Env* env, const std::string& path);

// Checks that `out` may receive this job's output, and prepares it:
// - missing or empty: created;
// - holds the output of the same job (equal fingerprint digest): kept, parts
//   are rewritten as units complete;
// - holds another job's output: kFailedPrecondition naming what changed,
//   unless `restart`, in which case Sluice's own files there are removed;
// - holds files that are not Sluice's: kFailedPrecondition (never deleted).
// Then writes _sluice/job.json.
Status PrepareOutputDir(Env* env, const std::string& out, const JobFingerprint& fp, bool restart);

// True when `out` has a _sluice/job.json with this fingerprint.
bool OutputDirHoldsJob(Env* env, const std::string& out, const JobFingerprint& fp);

Status WriteUnitMarker(Env* env, const std::string& out, const UnitMarker& marker);
// Reads a marker written by WriteUnitMarker; kCorruption naming the file if it does not parse.
Result<UnitMarker> ReadUnitMarker(Env* env, const std::string& path);
// The marker's JSON text (the file's contents; a database sink's sluice_units.marker),
// and back; `what` names the source in errors ("unit marker 'out/_sluice/units/00001.json'").
std::string UnitMarkerJson(const UnitMarker& marker);
Result<UnitMarker> ParseUnitMarker(std::string_view text, const std::string& what);
// What <out>/_sluice/job.json records: the job's fingerprint digest, its plan
// and its reject limit (errors.max_rejected). kNotFound when there is none,
// kCorruption when it does not parse.
struct JobRecord {
  std::string fingerprint;
  std::vector<PlannedRange> units;  // in plan order
  RejectLimit max_rejected;
};
Result<JobRecord> ReadJobRecord(Env* env, const std::string& out);

// Writes <out>/_SUCCESS listing the parts of `markers` with rows and checksums.
Status WriteSuccessManifest(Env* env, const std::string& out, const std::vector<UnitMarker>& markers,
                            const JobReport& report);

}  // namespace sluice
