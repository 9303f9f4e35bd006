// sluice_duckdb_sql: runs SQL statements through DuckDB's C API, outside the
// engine, for the Parquet tests (generating inputs with COPY … TO, reading
// outputs back with read_parquet / parquet_schema / parquet_metadata).
//
//   sluice_duckdb_sql [--threads N] STATEMENT...
//
// Each argument is one statement, run in order on one in-memory database. The
// rows of every statement that returns any are printed as JSON arrays, one row
// a line, with each value as DuckDB's text of it (CAST AS VARCHAR) or null.
// (Nested values such as lists need an explicit CAST.)
// A failing statement prints "sluice_duckdb_sql: <error>" on stderr and exits 1.
#include <duckdb.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void AppendJsonString(const char* text, std::string* out) {
  out->push_back('"');
  for (const char* p = text; *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "sluice_duckdb_sql: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  std::string threads = "1";
  if (argc > 2 && std::strcmp(argv[1], "--threads") == 0) {
    threads = argv[2];
    first = 3;
  }
  if (first >= argc) return Fail("usage: sluice_duckdb_sql [--threads N] STATEMENT...");
  duckdb_config config = nullptr;
  duckdb_database db = nullptr;
  duckdb_connection con = nullptr;
  char* open_error = nullptr;
  if (duckdb_create_config(&config) != DuckDBSuccess ||
      duckdb_set_config(config, "threads", threads.c_str()) != DuckDBSuccess ||
      duckdb_open_ext(nullptr, &db, config, &open_error) != DuckDBSuccess ||
      duckdb_connect(db, &con) != DuckDBSuccess) {
    const std::string why = open_error != nullptr ? open_error : "cannot open an in-memory database";
    duckdb_free(open_error);
    return Fail(why);
  }
  duckdb_destroy_config(&config);
  int rc = 0;
  for (int arg = first; arg < argc && rc == 0; ++arg) {
    duckdb_result result;
    if (duckdb_query(con, argv[arg], &result) != DuckDBSuccess) {
      rc = Fail(duckdb_result_error(&result));
      duckdb_destroy_result(&result);
      break;
    }
    const idx_t cols = duckdb_column_count(&result);
    const idx_t rows = duckdb_row_count(&result);
    std::string line;
    for (idx_t row = 0; row < rows; ++row) {
      line = "[";
      for (idx_t col = 0; col < cols; ++col) {
        if (col > 0) line.push_back(',');
        if (duckdb_value_is_null(&result, col, row)) {
          line.append("null");
          continue;
        }
        char* text = duckdb_value_varchar(&result, col, row);
        if (text == nullptr) {
          rc = Fail(std::string("column '") + duckdb_column_name(&result, col) +
                    "' has no text form here; CAST it AS VARCHAR in the query");
          break;
        }
        AppendJsonString(text, &line);
        duckdb_free(text);
      }
      if (rc != 0) break;
      line.append("]\n");
      std::fputs(line.c_str(), stdout);
    }
    duckdb_destroy_result(&result);
  }
  duckdb_disconnect(&con);
  duckdb_close(&db);
  return rc;
}
