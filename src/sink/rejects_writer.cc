#include "sink/rejects_writer.h"

#include <unistd.h>

#include "sink/value_format.h"

namespace sluice {
namespace {

// The longest prefix of `s` of at most `max_bytes` that does not split a UTF-8 character.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<std::unique_ptr<RejectsWriter>> RejectsWriter::Open(Env* env, std::string final_path) {
  if (final_path.empty() || final_path.back() == '/') {
    return Status::InvalidArgument("rejects file path '" + final_path + "' does not name a file");
  }
  std::string tmp_path = JoinPath(DirName(final_path), "." + BaseName(final_path) + ".tmp-" +
                                                           std::to_string(::getpid()));
  return std::unique_ptr<RejectsWriter>(
      new RejectsWriter(env, std::move(final_path), std::move(tmp_path)));
}

RejectsWriter::RejectsWriter(Env* env, std::string final_path, std::string tmp_path)
    : env_(env), final_path_(std::move(final_path)), tmp_path_(std::move(tmp_path)) {}

RejectsWriter::~RejectsWriter() { Abort(); }

void RejectsWriter::Add(Reject reject) {
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
  auto reason = by_reason_.try_emplace(reject.reason, 0).first;
  ++reason->second;
  if (state_ != State::kOpen || !error_.ok()) return;

  if (file_ == nullptr) {
    Status dirs = env_->CreateDirs(DirName(final_path_));
    if (!dirs.ok()) {
      LatchErrorLocked(std::move(dirs));
      return;
    }
    Result<std::unique_ptr<WritableFile>> file = env_->NewWritableFile(tmp_path_);
    if (!file.ok()) {
      LatchErrorLocked(file.status());
      return;
    }
    file_ = std::move(file).value();
    created_ = true;
  }

  line_.clear();
  line_.append("{\"file\":");
  AppendJsonString(reject.file, &line_);
  line_.append(",\"line\":");
  AppendInt64Text(reject.line, &line_);
  if (reject.byte_offset >= 0) {
    line_.append(",\"byte_offset\":");
    AppendInt64Text(reject.byte_offset, &line_);
  }
  if (!reject.column.empty()) {
    line_.append(",\"column\":");
    AppendJsonString(reject.column, &line_);
  }
  if (!reject.value.empty()) {
    line_.append(",\"value\":");
    AppendJsonString(TruncateUtf8(reject.value, kMaxValueBytes), &line_);
  }
  line_.append(",\"reason\":");
  AppendJsonString(reject.reason, &line_);
  line_.append(",\"message\":");
  AppendJsonString(reject.message, &line_);
  line_.append("}\n");
  Status appended = file_->Append(line_);
  if (!appended.ok()) LatchErrorLocked(std::move(appended));
}

int64_t RejectsWriter::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

std::map<std::string, int64_t> RejectsWriter::counts_by_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_reason_;
}

Status RejectsWriter::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  return CloseLocked();
}

Status RejectsWriter::Commit() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kCommitted || state_ == State::kAborted) {
    return Status::FailedPrecondition("commit '" + final_path_ + "': rejects file is " +
                                      (state_ == State::kCommitted ? "committed" : "aborted"));
  }
  RETURN_IF_ERROR(CloseLocked());
  if (!created_) {
    state_ = State::kCommitted;
    return Status::OK();
  }
  Status renamed = env_->RenameFile(tmp_path_, final_path_);
  if (!renamed.ok()) {
    LatchErrorLocked(renamed);
    return renamed;
  }
  state_ = State::kCommitted;
  return env_->SyncDir(DirName(final_path_));
}

void RejectsWriter::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  AbortLocked();
}

void RejectsWriter::LatchErrorLocked(Status s) {
  if (error_.ok()) error_ = std::move(s);
  file_.reset();
  if (created_) {
    (void)env_->RemoveFile(tmp_path_);
    created_ = false;
  }
}

Status RejectsWriter::CloseLocked() {
  if (state_ != State::kOpen) return error_;
  state_ = State::kClosed;
  if (file_ != nullptr && error_.ok()) {
    Status s = file_->Sync();
    if (s.ok()) s = file_->Close();
    if (!s.ok()) LatchErrorLocked(std::move(s));
  }
  file_.reset();
  return error_;
}

void RejectsWriter::AbortLocked() {
  if (state_ == State::kCommitted || state_ == State::kAborted) return;
  state_ = State::kAborted;
  file_.reset();
  if (created_) {
    (void)env_->RemoveFile(tmp_path_);
    created_ = false;
  }
}

}  // namespace sluice
