#include "sink/rejects_writer.h"

#include <unistd.h>

#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "env/fault_injection_env.h"

namespace sluice {
namespace {

using nlohmann::ordered_json;

std::vector<ordered_json> ReadLines(Env* env, const std::string& path) {
  std::vector<ordered_json> out;
  auto text = ReadFileToString(env, path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return out;
  size_t start = 0;
  while (start < text->size()) {
    size_t nl = text->find('\n', start);
    EXPECT_NE(nl, std::string::npos);
    if (nl == std::string::npos) break;
    auto line = ordered_json::parse(text->substr(start, nl - start), nullptr, false);
    EXPECT_FALSE(line.is_discarded()) << text->substr(start, nl - start);
    out.push_back(std::move(line));
    start = nl + 1;
  }
  return out;
}

std::vector<std::string> Keys(const ordered_json& obj) {
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(it.key());
  return keys;
}

Reject MakeReject(std::string reason, int64_t line) {
  Reject r;
  r.file = "data/in.csv";
  r.line = line;
  r.reason = std::move(reason);
  r.message = "line " + std::to_string(line) + ": bad";
  return r;
}

class RejectsWriterTest : public ::testing::Test {
 protected:
  RejectsWriterTest() : mem_(NewMemEnv()) {}
  std::unique_ptr<Env> mem_;
};

TEST_F(RejectsWriterTest, NoRejectsWritesNoFile) {
  auto writer = RejectsWriter::Open(mem_.get(), "out/_sluice/rejects/part-00000.jsonl");
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->count(), 0);
  EXPECT_TRUE((*writer)->Commit().ok());
  EXPECT_FALSE(mem_->FileExists("out"));
  EXPECT_EQ((*writer)->Commit().code(), StatusCode::kFailedPrecondition);
}

TEST_F(RejectsWriterTest, WritesOneJsonObjectPerRejectAndCommitsAtomically) {
  const std::string path = "out/_sluice/rejects/part-00003.jsonl";
  auto opened = RejectsWriter::Open(mem_.get(), path);
  ASSERT_TRUE(opened.ok());
  RejectsWriter& writer = **opened;

  Reject full;
  full.file = "data/in \"q\".csv";
  full.line = 7;
  full.byte_offset = 120;
  full.column = "amount";
  full.value = "12,5\n";
  full.reason = "bad_value";
  full.message = "data/in.csv:7: column 'amount': '12,5' is not a float64";
  writer.Add(full);
  writer.Add(MakeReject("ragged_row", 9));
  writer.Add(MakeReject("bad_value", 11));

  // Not visible before Commit; only the hidden temporary exists.
  EXPECT_FALSE(mem_->FileExists(path));
  EXPECT_EQ(*mem_->GetChildren("out/_sluice/rejects"),
            std::vector<std::string>{".part-00003.jsonl.tmp-" + std::to_string(::getpid())});
  ASSERT_TRUE(writer.Commit().ok());
  EXPECT_EQ(*mem_->GetChildren("out/_sluice/rejects"), std::vector<std::string>{"part-00003.jsonl"});

  std::vector<ordered_json> lines = ReadLines(mem_.get(), path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Keys(lines[0]), (std::vector<std::string>{"file", "line", "byte_offset", "column", "value",
                                                       "reason", "message"}));
  EXPECT_EQ(lines[0]["file"], "data/in \"q\".csv");
  EXPECT_EQ(lines[0]["line"], 7);
  EXPECT_EQ(lines[0]["byte_offset"], 120);
  EXPECT_EQ(lines[0]["column"], "amount");
  EXPECT_EQ(lines[0]["value"], "12,5\n");
  EXPECT_EQ(lines[0]["reason"], "bad_value");
  EXPECT_EQ(lines[0]["message"], full.message);
  // Unknown offset, no column, no value: the keys are left out.
  EXPECT_EQ(Keys(lines[1]), (std::vector<std::string>{"file", "line", "reason", "message"}));
  EXPECT_EQ(lines[1]["reason"], "ragged_row");
  EXPECT_EQ(lines[2]["line"], 11);

  EXPECT_EQ(writer.count(), 3);
  EXPECT_EQ(writer.counts_by_reason(), (std::map<std::string, int64_t>{{"bad_value", 2}, {"ragged_row", 1}}));
}

TEST_F(RejectsWriterTest, LongValuesAreCutAtACharacterBoundary) {
  auto writer = RejectsWriter::Open(mem_.get(), "r.jsonl");
  ASSERT_TRUE(writer.ok());
  Reject ascii = MakeReject("bad_value", 1);
  ascii.value = std::string(300, 'a');
  (*writer)->Add(ascii);
  Reject utf8 = MakeReject("bad_value", 2);
  utf8.value = std::string(255, 'b') + "é" + "tail";  // "é" is bytes 255..256
  (*writer)->Add(utf8);
  Reject euro = MakeReject("bad_value", 3);
  euro.value = std::string(254, 'c') + "€";  // 257 bytes, "€" is bytes 254..256
  (*writer)->Add(euro);
  ASSERT_TRUE((*writer)->Commit().ok());
  std::vector<ordered_json> lines = ReadLines(mem_.get(), "r.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["value"], std::string(256, 'a'));
  EXPECT_EQ(lines[1]["value"], std::string(255, 'b'));
  EXPECT_EQ(lines[2]["value"], std::string(254, 'c'));
}

TEST_F(RejectsWriterTest, ConcurrentAddsAreAllWrittenAndCounted) {
  auto writer = RejectsWriter::Open(mem_.get(), "out/r.jsonl");
  ASSERT_TRUE(writer.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        (*writer)->Add(MakeReject(t % 2 == 0 ? "bad_value" : "invalid_json", t * 1000 + i));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ((*writer)->count(), 2000);
  EXPECT_EQ((*writer)->counts_by_reason(),
            (std::map<std::string, int64_t>{{"bad_value", 1000}, {"invalid_json", 1000}}));
  std::vector<ordered_json> lines = ReadLines(mem_.get(), "out/r.jsonl");
  ASSERT_EQ(lines.size(), 2000u);
  std::set<int64_t> seen;
  for (const auto& line : lines) seen.insert(line["line"].get<int64_t>());
  EXPECT_EQ(seen.size(), 2000u);
}

TEST_F(RejectsWriterTest, AbortAndDestructionRemoveTheTemporary) {
  {
    auto writer = RejectsWriter::Open(mem_.get(), "out/a.jsonl");
    ASSERT_TRUE(writer.ok());
    (*writer)->Add(MakeReject("bad_value", 1));
    (*writer)->Abort();
    (*writer)->Abort();
    EXPECT_EQ((*writer)->Commit().code(), StatusCode::kFailedPrecondition);
  }
  {
    auto writer = RejectsWriter::Open(mem_.get(), "out/b.jsonl");
    ASSERT_TRUE(writer.ok());
    (*writer)->Add(MakeReject("bad_value", 1));
    ASSERT_TRUE((*writer)->Close().ok());
  }
  EXPECT_TRUE(mem_->GetChildren("out")->empty());
}

TEST_F(RejectsWriterTest, WriteErrorsSurfaceOnCommitAndCountsStayRight) {
  FaultInjectionEnv env(mem_.get());
  env.FailOnce(FaultOp::kWrite, "rejects", 2, StatusCode::kResourceExhausted);
  auto writer = RejectsWriter::Open(&env, "out/rejects.jsonl");
  ASSERT_TRUE(writer.ok());
  for (int i = 1; i <= 4; ++i) (*writer)->Add(MakeReject("bad_value", i));
  EXPECT_EQ((*writer)->count(), 4);
  Status s = (*writer)->Commit();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("injected fault: write 'out/.rejects.jsonl.tmp-"), std::string::npos)
      << s.message();
  EXPECT_TRUE(env.GetChildren("out")->empty());
}

TEST_F(RejectsWriterTest, FailedCreateAndRenameLeaveNoFile) {
  for (FaultOp op : {FaultOp::kCreate, FaultOp::kSync, FaultOp::kRename}) {
    SCOPED_TRACE(std::string(FaultOpName(op)));
    auto mem = NewMemEnv();
    FaultInjectionEnv env(mem.get());
    env.FailOnce(op, "");
    auto writer = RejectsWriter::Open(&env, "out/r.jsonl");
    ASSERT_TRUE(writer.ok());
    (*writer)->Add(MakeReject("bad_value", 1));
    (*writer)->Add(MakeReject("bad_value", 2));
    Status s = (*writer)->Commit();
    EXPECT_EQ(s.code(), StatusCode::kIOError);
    EXPECT_TRUE(env.GetChildren("out")->empty());
    EXPECT_EQ((*writer)->count(), 2);
  }
}

TEST_F(RejectsWriterTest, OpenRejectsAPathWithoutAFileName) {
  EXPECT_EQ(RejectsWriter::Open(mem_.get(), "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RejectsWriter::Open(mem_.get(), "out/").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
