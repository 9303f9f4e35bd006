// Helpers for the Parquet tests (source, planner, sink): a temporary directory
// and Parquet files written by DuckDB's own writer (COPY … TO), so inputs are
// made by a path independent of Sluice's reader and writer.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "source/duckdb_util.h"

namespace sluice {

// A fresh directory under /tmp, removed with its contents at the end.
class ParquetTempDir {
 public:
  ParquetTempDir() {
    std::string tmpl = "/tmp/sluice_parquet_test_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~ParquetTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs `statements` on a fresh in-memory database; fails the test on an error.
inline void RunDuckSql(const std::vector<std::string>& statements) {
  Result<std::unique_ptr<DuckDb>> db = DuckDb::Open();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (const std::string& sql : statements) {
    Status st = (*db)->Execute(sql);
    ASSERT_TRUE(st.ok()) << sql << ": " << st.ToString();
  }
}

// Writes the rows of `query` to `path` as Parquet (DuckDB's writer), in row
// groups of `row_group_size` rows (a multiple of 2048 gives exact groups).
inline void WriteParquet(const std::string& path, const std::string& query, int row_group_size = 122880) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  Result<std::unique_ptr<DuckDb>> db = DuckDb::Open();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Result<DuckStatement> copy = (*db)->Prepare("COPY (" + query + ") TO ? (FORMAT parquet, ROW_GROUP_SIZE " +
                                              std::to_string(row_group_size) + ")");
  ASSERT_TRUE(copy.ok()) << query << ": " << copy.status().ToString();
  ASSERT_TRUE(copy->Bind(0, path).ok());
  Result<DuckResult> done = copy->Query();
  ASSERT_TRUE(done.ok()) << query << ": " << done.status().ToString();
}

}  // namespace sluice
