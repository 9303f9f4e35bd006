#include "exec/unit_runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <vector>

#include "core/strings.h"
#include "core/tsan_annotations.h"
#include "observe/log.h"
#include "sink/rejects_writer.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

// Input bytes per batch before anything is measured: a token is assumed to
// need up to this many bytes of memory per byte of input.
constexpr double kInitialExpansion = 8.0;
// Batches are sized to this fraction of a token's share, leaving room for
// growth between measurements.
constexpr double kShareHeadroom = 0.75;

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One batch slot, reused for every batch it carries.
struct Token {
  Batch in;
  std::vector<float> matrix;
  std::vector<uint8_t> row_ok;
  std::vector<uint8_t> row_ok_copy;  // routing: one attempt's flags
  std::vector<Column> text;  // text features' columns, when the model takes some
  std::vector<const Column*> text_ptrs;
  std::vector<OutputTensor> outputs;
  Batch out;
  std::vector<Reject> rejects;  // this batch's rejects, written in batch order
  int64_t reader_rejects = 0;   // rows the reader rejected (counted in rows_in)
  size_t n_ok = 0;
  uint64_t max_input_bytes = 0;  // largest batch this token carried, in input bytes
  size_t target_rows = 0;                     // rows this batch was asked for
  Clock::time_point read_start;  // when this batch's read began (batch_seconds)

  size_t ByteSize() const {
    size_t bytes = in.ByteSize() + out.ByteSize() + matrix.capacity() * sizeof(float) + row_ok.capacity() +
                   in.row_lines.capacity() * sizeof(int64_t) + out.row_lines.capacity() * sizeof(int64_t);
    for (const Column& c : text) bytes += c.ByteSize();
    for (const OutputTensor& t : outputs) bytes += t.values.ByteSize();
    return bytes;
  }
};

// Routes the reader's and preprocessor's rejects into the current token.
class TokenRejectSink final : public RejectSink {
 public:
  void Add(Reject reject) override { token_->rejects.push_back(std::move(reject)); }
  void set_token(Token* token) { token_ = token; }

 private:
  Token* token_ = nullptr;
};

class UnitRun final : public UnitCommit {
 public:
  UnitRun(UnitShared* shared, const WorkUnit& unit)
      : shared_(*shared), spec_(*shared->spec), ctx_(*shared->ctx), unit_(unit), file_(RedactConnection(unit.range.path)) {}

  Result<UnitOutcome> Run(bool defer_commit) {
    ScopedLogUnit log_unit(unit_.id);
    const std::string& out = spec_.output.path;
    ASSIGN_OR_RETURN(rejects_, RejectsWriter::Open(shared_.env, RejectsPath(out, unit_.index)));
    ASSIGN_OR_RETURN(source_, OpenSource(shared_.env, unit_.range, ctx_.file_schema, ctx_.source_options, &sink_));
    if (shared_.table_sink != nullptr) {
      ASSIGN_OR_RETURN(table_, shared_.table_sink->OpenUnit(unit_.id));
    } else {
      PartOptions part_options;
      part_options.format = spec_.output.format;
      part_options.dir = out;
      part_options.part_index = unit_.index;
      part_options.schema = ctx_.postprocessor->output_schema();
      part_options.partition_by = ctx_.partition_by;
      part_options.layout_only_columns = ctx_.layout_only_columns;
      part_options.compression = spec_.output.compression;
      part_options.duckdb_pool = ctx_.duckdb_pool;
      ASSIGN_OR_RETURN(part_, OpenPartWriter(shared_.env, part_options));
    }
    tokens_.resize(shared_.tokens);

    if (shared_.tokens <= 1) {
      RunSync();
    } else {
      RunAsync();
    }
    if (!status_.ok()) {
      AbortOutput();
      rejects_->Abort();
      return status_;
    }
    UnitOutcome outcome;
    if (stop_ != Stop::kNone) {
      AbortOutput();
      if (stop_ == Stop::kRejectLimit) {
        // Not committed, so its rows count nowhere; its rejects are kept for inspection.
        outcome.state = UnitOutcome::State::kRejectLimit;
        outcome.marker.rows_rejected = rejects_->count();
        RETURN_IF_ERROR(rejects_->Commit());
      } else {
        outcome.state = UnitOutcome::State::kStopped;
        rejects_->Abort();
      }
      return outcome;
    }
    const Clock::time_point finish_start = Clock::now();
    if (part_) RETURN_IF_ERROR(part_->Finish());
    finish_seconds_ = SecondsSince(finish_start);
    rows_sampled_out_ = source_->rows_sampled_out();
    if (defer_commit && part_) {
      // What waits for the commit holds no batch, and the reader's resources go back now.
      sink_.set_token(nullptr);
      std::vector<Token>().swap(tokens_);
      source_.reset();
      outcome.state = UnitOutcome::State::kWritten;
      return outcome;
    }
    ASSIGN_OR_RETURN(outcome.marker, Commit());
    return outcome;
  }

  Result<UnitMarker> Commit() override {
    ScopedLogUnit log_unit(unit_.id);
    const Clock::time_point commit_start = Clock::now();
    UnitMarker marker;
    RETURN_IF_ERROR(CommitOutput(&marker));
    if (metrics_ != nullptr) {
      metrics_->ObserveStage(Stage::kCommit, finish_seconds_ + SecondsSince(commit_start));
      CountBytesWritten();  // what finishing wrote (a CSV header, a Parquet file)
    }
    return marker;
  }

  // A transient prediction failure already used up execution.retries.
  bool predict_retried() const { return predict_retried_; }

 private:
  enum class Stop { kNone, kRejectLimit, kOtherUnit };

  void RunSync() {
    Token& t = tokens_.front();
    bool more = true;
    while (more && Ok()) {
      AddInFlight(1);
      more = Read(&t);
      if (Ok()) Predict(&t);
      if (Ok()) Write(&t);
      Finish(&t);
      AddInFlight(-1);
    }
  }

  void AddInFlight(int64_t delta) {
    if (metrics_ != nullptr) metrics_->AddInFlight(delta);
  }
  void AddQueued(Stage stage, int64_t delta) {
    if (metrics_ != nullptr) metrics_->AddQueued(stage, delta);
  }

  void RunAsync() {
    std::vector<Token*> free;
    std::mutex free_mu;
    for (Token& t : tokens_) free.push_back(&t);
    bool done = false;
    // Each stage acquires what earlier stages released (see tsan_annotations.h).
    void* const handoff = &shared_;
    tbb::parallel_pipeline(
        shared_.tokens,
        tbb::make_filter<void, Token*>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> Token* {
                                         ScopedLogUnit log_unit(unit_.id);
                                         TsanAcquire(handoff);
                                         if (done || !Ok()) {
                                           fc.stop();
                                           TsanRelease(handoff);  // what it read, before the unit is destroyed
                                           return nullptr;
                                         }
                                         Token* t;
                                         {
                                           std::lock_guard<std::mutex> lock(free_mu);
                                           t = free.back();
                                           free.pop_back();
                                         }
                                         AddInFlight(1);
                                         done = !Read(t);
                                         AddQueued(Stage::kPredict, 1);
                                         TsanRelease(handoff);
                                         return t;
                                       }) &
            tbb::make_filter<Token*, Token*>(tbb::filter_mode::parallel,
                                             [&](Token* t) {
                                               ScopedLogUnit log_unit(unit_.id);
                                               TsanAcquire(handoff);
                                               AddQueued(Stage::kPredict, -1);
                                               if (Ok()) Predict(t);
                                               AddQueued(Stage::kPostprocess, 1);
                                               TsanRelease(handoff);
                                               return t;
                                             }) &
            tbb::make_filter<Token*, void>(tbb::filter_mode::serial_in_order, [&](Token* t) {
              ScopedLogUnit log_unit(unit_.id);
              TsanAcquire(handoff);
              AddQueued(Stage::kPostprocess, -1);
              if (Ok()) Write(t);
              Finish(t);
              AddInFlight(-1);
              {
                std::lock_guard<std::mutex> lock(free_mu);
                free.push_back(t);
              }
              TsanRelease(handoff);
            }));
    TsanAcquire(handoff);
  }

  // Reads and featurizes the next batch into *t. False at the end of the range
  // (*t may still hold the last rejects).
  bool Read(Token* t) {
    t->rejects.clear();
    t->n_ok = 0;
    sink_.set_token(t);
    t->read_start = Clock::now();
    const uint64_t before = source_->bytes_read();
    t->target_rows = shared_.batch_sizer ? shared_.batch_sizer->Next() : spec_.batch_size;
    source_->SetBatchLimits(t->target_rows, BatchByteCap());
    Result<bool> more = source_->Next(&t->in);
    t->reader_rejects = static_cast<int64_t>(t->rejects.size());
    t->max_input_bytes = std::max(t->max_input_bytes, source_->bytes_read() - before);
    const Clock::time_point read_end = Clock::now();
    if (metrics_ != nullptr) {
      metrics_->ObserveStage(Stage::kRead, std::chrono::duration<double>(read_end - t->read_start).count());
      metrics_->AddBytes(static_cast<int64_t>(source_->bytes_read() - before), 0);
    }
    if (!more.ok()) {
      Fail(more.status().WithContext(file_));
      return false;
    }
    if (!*more) return false;  // the batch is empty; its rejects still go out
    rows_read_ += static_cast<int64_t>(t->in.num_rows());
    const bool with_text = ctx_.preprocessor->has_text_features();
    t->n_ok = ctx_.preprocessor->Apply(t->in, file_, &t->matrix, &t->row_ok, &sink_, with_text ? &t->text : nullptr);
    if (metrics_ != nullptr) metrics_->ObserveStage(Stage::kPreprocess, SecondsSince(read_end));
    return true;
  }

  void Predict(Token* t) {
    if (t->n_ok == 0) return;
    const size_t width = ctx_.preprocessor->num_outputs();
    const bool with_text = ctx_.preprocessor->has_text_features();
    t->text_ptrs.clear();
    if (with_text) {
      // n_ok > 0: a text feature's column has n_ok values, the others none.
      t->text_ptrs.assign(t->text.size(), nullptr);
      for (size_t i = 0; i < t->text.size(); ++i) {
        if (t->text[i].size() > 0) t->text_ptrs[i] = &t->text[i];
      }
    }
    // Transient failures (and timeouts) of the call are retried here, cheaper than redoing the unit.
    const RetrySpec& retries = spec_.execution.retries;
    const Clock::time_point start = Clock::now();
    Status st;
    for (int attempt = 1;; ++attempt) {
      st = PredictOnce(t, width, with_text);
      if (st.ok() || !st.IsTransient() || attempt >= retries.max_attempts || shared_.interrupted()) break;
      shared_.CountRetry(st.code());
      const uint64_t wait = shared_.BackoffMicros(attempt);
      spdlog::warn("unit {}: predict attempt {} failed ({}); retrying in {} ms", unit_.id, attempt, st.ToString(),
                   wait / 1000);
      shared_.env->SleepForMicros(wait);
    }
    if (metrics_ != nullptr) metrics_->ObserveStage(Stage::kPredict, SecondsSince(start));
    if (!st.ok()) {
      if (st.IsTransient()) predict_retried_ = true;
      Fail(st.WithContext(fmt::format("{}: rows starting at line {}", file_,
                                      t->in.row_lines.empty() ? 0 : t->in.row_lines.front())));
    }
  }

  Status PredictOnce(Token* t, size_t width, bool with_text) {
    const uint64_t start = shared_.env->NowMicros();
    Status st;
    if (ctx_.router) {
      // Routing clears row_ok of unrouted rows: start every attempt from the preprocessor's flags.
      t->row_ok_copy.assign(t->row_ok.begin(), t->row_ok.end());
      const size_t rejected_before = t->rejects.size();
      const Column& route = t->in.columns[*ctx_.route_column];
      st = ctx_.router->Predict(route, t->row_ok_copy, t->matrix.data(), width, t->text_ptrs, &t->outputs,
                                [&](size_t row) { RejectUnrouted(t, row); });
      if (st.ok()) {
        t->row_ok.swap(t->row_ok_copy);
      } else {
        t->rejects.resize(rejected_before);
      }
    } else if (with_text) {
      st = ctx_.model->PredictWithText(t->matrix.data(), t->n_ok, width, t->text_ptrs, &t->outputs);
    } else {
      st = ctx_.model->Predict(t->matrix.data(), t->n_ok, width, &t->outputs);
    }
    const int64_t timeout_ms = spec_.execution.batch_timeout_ms;
    const uint64_t elapsed = shared_.env->NowMicros() - start;
    if (st.ok() && timeout_ms > 0 && elapsed > static_cast<uint64_t>(timeout_ms) * 1000) {
      // Backends that cannot be stopped (all but ONNX Runtime) finish late: the attempt still fails.
      return Status::Timeout(fmt::format("model '{}': prediction took {} ms, over execution.batch_timeout ({} ms)",
                                         spec_.model.path, elapsed / 1000, timeout_ms));
    }
    return st;
  }

  void RejectUnrouted(Token* t, size_t row) {
    const std::string& column = spec_.model.route->column;
    const std::optional<std::string> key = ModelRouter::KeyText(t->in.columns[*ctx_.route_column], row);
    Reject r;
    r.file = file_;
    r.line = t->in.row_lines.empty() ? 0 : t->in.row_lines[row];
    r.column = column;
    r.value = key.value_or("");
    r.reason = std::string(reject_reason::kNoModel);
    r.message = fmt::format("input '{}' line {}, column '{}': no model for '{}' in model.route and no default", file_,
                            r.line, column, key ? *key : "null");
    t->rejects.push_back(std::move(r));
  }

  void Write(Token* t) {
    const int64_t n_rejects = static_cast<int64_t>(t->rejects.size());
    if (metrics_ != nullptr) CountReasons(t->rejects);
    for (Reject& r : t->rejects) rejects_->Add(std::move(r));
    reader_rejects_ += t->reader_rejects;
    const int64_t total = shared_.rejected.fetch_add(n_rejects) + n_rejects;
    if (n_rejects > 0 && spec_.max_rejected.count && total > *spec_.max_rejected.count) {
      // Only a count limit can be decided mid-run; a percentage needs all rows.
      SetStop(Stop::kRejectLimit);
      shared_.stop = true;
      return;
    }
    if (shared_.stop || shared_.interrupted()) {
      SetStop(Stop::kOtherUnit);
      return;
    }
    const int64_t rows_in = static_cast<int64_t>(t->in.num_rows()) + t->reader_rejects;
    if (t->in.num_rows() == 0) {
      CountBatch(rows_in, n_rejects, 0, 0);
      return;
    }
    const int64_t filtered_before = rows_filtered_;
    const Clock::time_point start = Clock::now();
    Status st = ctx_.postprocessor->Apply(t->in, t->row_ok, t->outputs, &t->out, &rows_filtered_);
    const Clock::time_point written = Clock::now();
    if (st.ok()) st = table_ ? table_->Write(t->out) : part_->Write(t->out);
    if (!st.ok()) {
      Fail(st);
      return;
    }
    if (metrics_ != nullptr) {
      metrics_->ObserveStage(Stage::kPostprocess, std::chrono::duration<double>(written - start).count());
      metrics_->ObserveStage(Stage::kWrite, SecondsSince(written));
      CountBytesWritten();
      metrics_->ObserveBatch(SecondsSince(t->read_start));
      CountBatch(rows_in, n_rejects, static_cast<int64_t>(t->out.num_rows()), rows_filtered_ - filtered_before);
      ObserveScores(*t);
    }
    // What a token holds per byte of input (its buffers keep the capacity of
    // its largest batch): the next batches are sized by the largest ratio seen.
    if (t->max_input_bytes > 0) {
      const double expansion = static_cast<double>(t->ByteSize()) / static_cast<double>(t->max_input_bytes);
      std::lock_guard<std::mutex> lock(mu_);
      expansion_ = std::max(expansion_measured_ ? expansion_ : 0.0, expansion);
      expansion_measured_ = true;
    }
  }

  // batch.size: auto: the controller learns how the batch went.
  void Finish(Token* t) {
    if (shared_.batch_sizer && t->in.num_rows() > 0 && Ok()) {
      shared_.batch_sizer->Record(t->target_rows, t->in.num_rows(), shared_.env->NowMicros());
    }
  }

  // Rejects by reason, tallied per batch (a handful of reasons) and added once each;
  // published by CountBatch with the batch's rows.
  void CountReasons(const std::vector<Reject>& rejects) {
    batch_reasons_.clear();
    for (const Reject& r : rejects) {
      auto it = std::find_if(batch_reasons_.begin(), batch_reasons_.end(),
                             [&](const auto& entry) { return entry.first == r.reason; });
      if (it == batch_reasons_.end()) {
        batch_reasons_.emplace_back(r.reason, 1);
      } else {
        ++it->second;
      }
    }
  }

  void CountBatch(int64_t rows_in, int64_t rejected, int64_t rows_out, int64_t filtered) {
    if (metrics_ == nullptr) return;
    metrics_->AddRows(rows_in, rows_out, rejected, filtered);
    for (const auto& [reason, n] : batch_reasons_) metrics_->AddReject(reason, n);
    batch_reasons_.clear();
  }

  // Part bytes written since the last call (file outputs).
  void CountBytesWritten() {
    if (!part_) return;
    const uint64_t now = part_->bytes_written();
    metrics_->AddBytes(0, static_cast<int64_t>(now - bytes_counted_));
    bytes_counted_ = now;
  }

  // The score column's values of the batch's scored rows.
  void ObserveScores(const Token& t) {
    const int score_output = shared_.score_output.load(std::memory_order_acquire);
    if (score_output < 0 || t.n_ok == 0) return;
    const size_t output = static_cast<size_t>(score_output);
    const size_t element = shared_.score_element.load(std::memory_order_relaxed);
    if (output >= t.outputs.size()) return;
    const OutputTensor& tensor = t.outputs[output];
    if (tensor.values.type() != DataType::kFloat32 || element >= tensor.width) return;
    const std::span<const float> values = tensor.values.float32s();
    if (values.size() < t.n_ok * tensor.width) return;
    metrics_->ObserveScores(values.data() + element, t.n_ok, tensor.width);
  }

  size_t BatchByteCap() {
    if (shared_.token_bytes == 0) return 0;
    std::lock_guard<std::mutex> lock(mu_);
    const double cap = static_cast<double>(shared_.token_bytes) * kShareHeadroom / std::max(expansion_, 1.0);
    return std::max<size_t>(static_cast<size_t>(cap), 1);
  }

  void AbortOutput() {
    if (table_) table_->Abort();
    if (part_) part_->Abort();
  }

  // Files: the part's files, then the marker (the commit point). Database
  // sinks: the rows and the progress row in one transaction (the commit
  // point), then the marker file, a copy for `sluice status` and _SUCCESS.
  Status CommitOutput(UnitMarker* m) {
    if (part_) RETURN_IF_ERROR(part_->Commit());
    m->unit_id = unit_.id;
    m->input = file_;
    m->rows_rejected = rejects_->count();
    m->rows_in = rows_read_ + reader_rejects_;
    m->rows_out = part_ ? part_->rows_written() : table_->rows_written();
    m->rows_filtered = rows_filtered_;
    m->rows_sampled_out = rows_sampled_out_;
    if (part_) m->files = part_->files();
    if (m->rows_rejected > 0) {
      RETURN_IF_ERROR(rejects_->Commit());
      m->rejects = "_sluice/rejects/" + fmt::format("part-{:05d}.jsonl", unit_.index);
    } else {
      rejects_->Abort();
    }
    if (m->rows_in != m->rows_out + m->rows_rejected + m->rows_filtered) {
      return Status::Internal(fmt::format("row accounting broken for unit {}: in {} != out {} + rejected {} + filtered {}",
                                          unit_.id, m->rows_in, m->rows_out, m->rows_rejected, m->rows_filtered));
    }
    if (table_) {
      ASSIGN_OR_RETURN(const bool committed, table_->Commit(UnitMarkerJson(*m)));
      if (!committed) {
        // An earlier attempt committed (its answer was lost): its rows stand, this attempt's are gone.
        spdlog::warn("unit {}: already committed to {} by an earlier attempt; this attempt's rows are discarded",
                     unit_.id, spec_.output.table);
        ASSIGN_OR_RETURN(std::optional<std::string> marker, shared_.table_sink->CommittedMarker(unit_.id));
        if (!marker) return Status::Internal("unit " + unit_.id + ": the progress row vanished after a duplicate commit");
        ASSIGN_OR_RETURN(*m, ParseUnitMarker(*marker, "sluice_units row of unit " + unit_.id));
      }
    }
    return WriteUnitMarker(shared_.env, spec_.output.path, *m);
  }

  bool Ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_.ok() && stop_ == Stop::kNone;
  }
  void SetStop(Stop stop) {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = stop;
  }
  void Fail(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_.ok()) status_ = std::move(st);
  }

  UnitShared& shared_;
  const JobSpec& spec_;
  const JobContext& ctx_;
  const WorkUnit& unit_;
  const std::string file_;  // the input as named in messages and rejects (a database: redacted)
  std::unique_ptr<RejectsWriter> rejects_;
  TokenRejectSink sink_;
  std::unique_ptr<Source> source_;
  std::unique_ptr<PartWriter> part_;        // file outputs
  std::unique_ptr<TableUnitWriter> table_;  // database sinks
  std::vector<Token> tokens_;
  RunMetrics* const metrics_ = shared_.metrics;  // may be null
  // The write stage's tally of the current batch's rejects by reason.
  std::vector<std::pair<std::string, int64_t>> batch_reasons_;

  std::mutex mu_;
  Status status_;               // guarded by mu_: first error
  Stop stop_ = Stop::kNone;     // guarded by mu_ while the stages run
  double expansion_ = kInitialExpansion;  // guarded by mu_
  bool expansion_measured_ = false;       // guarded by mu_
  // Written by the serial read or write stage only.
  int64_t rows_read_ = 0;
  int64_t reader_rejects_ = 0;
  int64_t rows_filtered_ = 0;
  uint64_t bytes_counted_ = 0;  // part bytes already added to the metrics
  bool predict_retried_ = false;  // a transient prediction failure used up its attempts
  // Set when the stages are done, for the commit.
  double finish_seconds_ = 0;  // part_->Finish()
  int64_t rows_sampled_out_ = 0;
};

}  // namespace

void UnitShared::CountRetry(StatusCode code) {
  if (metrics != nullptr) metrics->CountRetry(StatusCodeName(code));
  std::lock_guard<std::mutex> lock(mu_);
  ++retries_[std::string(StatusCodeName(code))];
}

std::map<std::string, int64_t> UnitShared::Retries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return retries_;
}

uint64_t UnitShared::BackoffMicros(int attempt) {
  const RetrySpec& r = spec->execution.retries;
  const double cap = std::min<double>(static_cast<double>(r.max_backoff_ms),
                                      static_cast<double>(r.initial_backoff_ms) * std::pow(2.0, attempt - 1));
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint64_t>(std::uniform_real_distribution<double>(0.0, cap)(rng_) * 1000.0);
}

Result<UnitOutcome> RunUnit(UnitShared* shared, const WorkUnit& unit, bool defer_commit, bool* retryable) {
  auto run = std::make_unique<UnitRun>(shared, unit);
  Result<UnitOutcome> r = run->Run(defer_commit);
  *retryable = !r.ok() && r.status().IsTransient() && !run->predict_retried();
  if (r.ok() && r->state == UnitOutcome::State::kWritten) r->commit = std::move(run);
  return r;
}

}  // namespace sluice
