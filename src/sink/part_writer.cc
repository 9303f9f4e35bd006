// CSV and JSON Lines part writers. Rows are formatted into one reusable buffer
// that goes to the temporary file every ~1 MiB; the SHA-256 is updated with
// exactly the bytes handed to the file, so it matches the committed part.
#include <unistd.h>

#include <charconv>

#include "core/sha256.h"
#include "sink/value_format.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

constexpr size_t kFlushBytes = 1 << 20;

std::string_view Extension(OutputFormat format) {
  switch (format) {
    case OutputFormat::kCsv: return "csv";
    case OutputFormat::kJsonl: return "jsonl";
  }
  return "out";
}

std::string DescribeSchema(const Schema& schema) {
  std::string out = "(";
  for (size_t i = 0; i < schema.num_fields(); ++i) {
    if (i > 0) out.append(", ");
    out.append(schema.field(i).name).append(" ").append(DataTypeName(schema.field(i).type));
  }
  out.append(")");
  return out;
}

class TextPartWriter final : public PartWriter {
 public:
  TextPartWriter(Env* env, OutputFormat format, std::string dir, std::string name,
                 std::string tmp_path, Schema schema, std::unique_ptr<WritableFile> file)
      : env_(env),
        format_(format),
        text_format_(format == OutputFormat::kJsonl ? TextFormat::kJson : TextFormat::kCsv),
        dir_(std::move(dir)),
        name_(std::move(name)),
        final_path_(JoinPath(dir_, name_)),
        tmp_path_(std::move(tmp_path)),
        schema_(std::move(schema)),
        file_(std::move(file)) {
    buf_.reserve(kFlushBytes + (kFlushBytes >> 2));
    if (format_ == OutputFormat::kCsv) {
      for (size_t col = 0; col < schema_.num_fields(); ++col) {
        if (col > 0) buf_.push_back(',');
        AppendCsvString(schema_.field(col).name, ',', &buf_);
      }
      buf_.push_back('\n');
    } else {
      // `{"id":` then `,"score":` …: the keys are escaped once, not per row.
      for (size_t col = 0; col < schema_.num_fields(); ++col) {
        std::string key = col == 0 ? "{" : ",";
        AppendJsonString(schema_.field(col).name, &key);
        key.push_back(':');
        json_keys_.push_back(std::move(key));
      }
    }
  }

  ~TextPartWriter() override {
    if (state_ != State::kCommitted) Abort();
  }

  Status Write(const Batch& batch) override {
    if (state_ != State::kOpen) return NotOpen("write");
    if (!(batch.schema == schema_) || batch.columns.size() != schema_.num_fields()) {
      return Status::InvalidArgument(final_path_ + ": batch schema " + DescribeSchema(batch.schema) +
                                     " differs from the part's schema " + DescribeSchema(schema_));
    }
    const size_t num_rows = batch.num_rows();
    const size_t num_cols = batch.columns.size();
    for (size_t row = 0; row < num_rows; ++row) {
      if (format_ == OutputFormat::kCsv) {
        for (size_t col = 0; col < num_cols; ++col) {
          if (col > 0) buf_.push_back(',');
          AppendColumnValue(batch.columns[col], row, text_format_, &buf_);
        }
        buf_.push_back('\n');
      } else {
        for (size_t col = 0; col < num_cols; ++col) {
          buf_.append(json_keys_[col]);
          AppendColumnValue(batch.columns[col], row, text_format_, &buf_);
        }
        buf_.append(num_cols == 0 ? "{}\n" : "}\n");
      }
      if (buf_.size() >= kFlushBytes) RETURN_IF_ERROR(FailOnError(FlushBuffer()));
    }
    rows_written_ += static_cast<int64_t>(num_rows);
    return Status::OK();
  }

  Status Commit() override {
    if (state_ != State::kOpen) return NotOpen("commit");
    RETURN_IF_ERROR(FailOnError(FlushBuffer()));
    RETURN_IF_ERROR(FailOnError(file_->Sync()));
    RETURN_IF_ERROR(FailOnError(file_->Close()));
    file_.reset();
    RETURN_IF_ERROR(FailOnError(env_->RenameFile(tmp_path_, final_path_)));
    // The part is in place; what is left is making the rename durable. If that
    // fails the caller retries the unit and the part is written again.
    state_ = State::kCommitted;
    files_.push_back(PartFile{name_, rows_written_, bytes_written_, hasher_.HexDigest()});
    return env_->SyncDir(dir_);
  }

  void Abort() override {
    if (state_ == State::kCommitted || state_ == State::kAborted) return;
    state_ = State::kAborted;
    file_.reset();  // closes; errors do not matter, the file goes away
    // NotFound is fine (never created, or already removed); other errors leave
    // an orphan temporary that the next run's cleanup removes.
    (void)env_->RemoveFile(tmp_path_);
  }

  int64_t rows_written() const override { return rows_written_; }
  uint64_t bytes_written() const override { return bytes_written_ + buf_.size(); }
  const std::vector<PartFile>& files() const override { return files_; }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  Status NotOpen(std::string_view op) const {
    return Status::FailedPrecondition(std::string(op) + " '" + final_path_ + "': part is " +
                                      (state_ == State::kCommitted ? "committed" : "aborted"));
  }

  // A failed write, sync or rename leaves the temporary in an unknown state:
  // the part is dropped and the unit must be written again.
  Status FailOnError(Status s) {
    if (!s.ok()) Abort();
    return s;
  }

  Status FlushBuffer() {
    if (buf_.empty()) return Status::OK();
    hasher_.Update(buf_);
    bytes_written_ += buf_.size();
    Status s = file_->Append(buf_);
    buf_.clear();
    return s;
  }

  Env* const env_;
  const OutputFormat format_;
  const TextFormat text_format_;
  const std::string dir_;
  const std::string name_;
  const std::string final_path_;
  const std::string tmp_path_;
  const Schema schema_;
  std::unique_ptr<WritableFile> file_;
  std::vector<std::string> json_keys_;
  std::string buf_;
  Sha256 hasher_;
  std::vector<PartFile> files_;
  State state_ = State::kOpen;
  int64_t rows_written_ = 0;
  uint64_t bytes_written_ = 0;  // bytes handed to the file; buf_ holds the rest
};

}  // namespace

std::string PartFileName(OutputFormat format, int part_index) {
  std::string name = "part-";
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), part_index);
  (void)ec;
  for (auto pad = 5 - (end - digits); pad > 0; --pad) name.push_back('0');
  name.append(digits, end);
  name.push_back('.');
  name.append(Extension(format));
  return name;
}

Result<std::unique_ptr<PartWriter>> OpenPartWriter(Env* env, const PartOptions& options) {
  if (!options.partition_by.empty()) return Status::NotSupported("output.partition_by: not supported yet");
  const OutputFormat format = options.format;
  const std::string& dir = options.dir;
  const int part_index = options.part_index;
  const Schema& schema = options.schema;
  if (part_index < 0) {
    return Status::InvalidArgument("part index " + std::to_string(part_index) + " is negative");
  }
  RETURN_IF_ERROR(env->CreateDirs(dir));
  const std::string name = PartFileName(format, part_index);
  std::string tmp_name = "." + name + ".tmp-" + std::to_string(::getpid());
  std::string tmp_path = JoinPath(dir, tmp_name);
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env->NewWritableFile(tmp_path));
  return std::unique_ptr<PartWriter>(new TextPartWriter(env, format, dir, name,
                                                        std::move(tmp_path), schema, std::move(file)));
}

}  // namespace sluice
