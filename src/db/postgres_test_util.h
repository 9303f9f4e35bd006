// A PostgreSQL server for the unit tests (tests/db/pg_server.py).
//
// Under ctest the fixture pg_server (tests/CMakeLists.txt) starts one server
// for every test and writes its state to <build>/pg_server/state.json
// ($SLUICE_TEST_PG_STATE overrides the path). A test binary run by hand
// without a live fixture server starts its own for the process (stopped at
// exit). Only when no server binaries exist do the tests skip
// (SLUICE_PG_OR_SKIP).
//
// Each test works in a database of its own (TestPgServer::FreshDatabase, named
// after the test), so tests may run in parallel against one server.
// PGPASSWORD is set for the test role; tests of other password sources unset it.
//
// Thread-safety: test helpers, for the test's main thread.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "db/postgres_conn.h"

namespace sluice {

class TestPgServer {
 public:
  // The shared server, or null when there are no server binaries. `error` is
  // set when there are binaries but no server could be had.
  static const TestPgServer* Get(std::string* error) {
    static std::string start_error;
    static const std::unique_ptr<TestPgServer> server = Start(&start_error);
    *error = start_error;
    return server.get();
  }

  ~TestPgServer() {
    if (!own_dir_.empty()) {
      (void)std::system((Script() + " stop " + own_dir_ + " >/dev/null 2>&1").c_str());
      std::filesystem::remove_all(own_dir_);
    }
  }

  int port() const { return port_; }
  const std::string& password() const { return password_; }

  // postgresql://sluice[:password]@127.0.0.1:PORT/<database>
  std::string Url(const std::string& database, bool with_password = false) const {
    return "postgresql://" + user_ + (with_password ? ":" + password_ : "") + "@127.0.0.1:" + std::to_string(port_) +
           "/" + database;
  }

  // The superuser over the unix socket (trust), as a connection string.
  std::string AdminConn(const std::string& database) const {
    return "host=" + socket_dir_ + " port=" + std::to_string(port_) + " user=" + admin_ + " dbname=" + database;
  }

  // Runs `sql` in `database` as the test role (the database's owner); fails the test on error.
  void Sql(const std::string& database, const std::string& sql) const { Run(Url(database), sql); }

  // The first value of a query (text; "NULL" for null, "" when there is no row), as the test role.
  std::string Value(const std::string& database, const std::string& sql) const {
    PgResult r = Run(Url(database), sql);
    if (r == nullptr || PQntuples(r.get()) == 0) return "";
    return PQgetisnull(r.get(), 0, 0) ? "NULL" : PQgetvalue(r.get(), 0, 0);
  }

  // Runs `sql` over `conn` (a connection string); null and a test failure on error.
  static PgResult Run(const std::string& conn, const std::string& sql) {
    Result<std::unique_ptr<PgConnection>> c = PgConnection::Connect(conn, "test");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return nullptr;
    Result<PgResult> r = (*c)->Exec(sql, "test SQL");
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
    return r.ok() ? std::move(*r) : nullptr;
  }

  // A new, empty database owned by the test role, named after the current test
  // (`suffix` tells several apart). Returns its name.
  std::string FreshDatabase(const std::string& suffix = "") const {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string raw = std::string(info->test_suite_name()) + "_" + info->name() + suffix;
    std::string name = "t_";
    for (const char c : raw) name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    if (name.size() > 50) name = name.substr(0, 40) + "_" + std::to_string(std::hash<std::string>()(raw) % 1000000000);
    Run(AdminConn("postgres"), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    Run(AdminConn("postgres"), "CREATE DATABASE " + name + " OWNER " + user_);
    return name;
  }

 private:
  static std::string Script() { return "/usr/bin/python3 " SLUICE_SOURCE_DIR "/tests/db/pg_server.py"; }

  static std::unique_ptr<TestPgServer> FromState(const std::string& path) {
    std::ifstream in(path);
    if (!in) return nullptr;
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return nullptr;
    auto s = std::unique_ptr<TestPgServer>(new TestPgServer());
    s->port_ = j.value("port", 0);
    s->socket_dir_ = j.value("socket_dir", "");
    s->admin_ = j.value("admin", "");
    s->user_ = j.value("user", "");
    s->password_ = j.value("password", "");
    Result<std::unique_ptr<PgConnection>> probe = PgConnection::Connect(s->AdminConn("postgres"), "probe");
    return probe.ok() ? std::move(s) : nullptr;  // a stale state file: its server is gone
  }

  static std::unique_ptr<TestPgServer> Start(std::string* error) {
    const char* env = std::getenv("SLUICE_TEST_PG_STATE");
    std::unique_ptr<TestPgServer> server = FromState(env ? env : SLUICE_BINARY_DIR "/pg_server/state.json");
    if (server == nullptr) {
      if (std::system((Script() + " available").c_str()) != 0) return nullptr;
      char tmpl[] = "/tmp/sluice-pg-test-XXXXXX";
      const char* dir = mkdtemp(tmpl);
      if (dir == nullptr || std::system((Script() + " start " + dir + " >&2").c_str()) != 0 ||
          (server = FromState(std::string(dir) + "/state.json")) == nullptr) {
        *error = "tests/db/pg_server.py could not start a server (see its output above)";
        return nullptr;
      }
      server->own_dir_ = dir;
    }
    setenv("PGPASSWORD", server->password_.c_str(), 1);
    return server;
  }

  TestPgServer() = default;

  int port_ = 0;
  std::string socket_dir_, admin_, user_, password_;
  std::string own_dir_;  // set when this process started the server
};

// Declares `pg` (const TestPgServer*); skips the test when no server binaries
// exist, fails it when there are binaries but no server.
#define SLUICE_PG_OR_SKIP(pg)                                                       \
  std::string pg##_error;                                                          \
  const TestPgServer* pg = TestPgServer::Get(&pg##_error);                         \
  if (!pg##_error.empty()) FAIL() << pg##_error;                                   \
  if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL server binaries (tests/db/pg_server.py)"

}  // namespace sluice
