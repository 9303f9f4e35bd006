// CheckTableSink / OpenTableSink: dispatch on output.format.
#include "sluice/sink.h"

#include "sink/postgres_sink.h"
#include "sink/sqlite_sink.h"

namespace sluice {
namespace {

Status NotADatabase(const OutputSpec& output) {
  return Status::InvalidArgument("output.format: '" + std::string(OutputFormatName(output.format)) +
                                 "' is not a database");
}

}  // namespace

Status CheckTableSink(const OutputSpec& output, const Schema& schema) {
  if (output.format == OutputFormat::kSqlite) return CheckSqliteTableSink(output, schema);
  if (output.format == OutputFormat::kPostgres) return CheckPostgresTableSink(output, schema);
  return NotADatabase(output);
}

Result<std::unique_ptr<TableSink>> OpenTableSink(const OutputSpec& output, const std::string& fingerprint) {
  if (output.format == OutputFormat::kSqlite) return OpenSqliteTableSink(output, fingerprint);
  if (output.format == OutputFormat::kPostgres) return OpenPostgresTableSink(output, fingerprint);
  return NotADatabase(output);
}

}  // namespace sluice
