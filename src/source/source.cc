// OpenSource / InferSchema: dispatch on the input format.
#include "sluice/source.h"

#include "source/csv_source.h"
#include "source/jsonl_source.h"
#if SLUICE_WITH_DUCKDB
#include "source/parquet_source.h"
#endif
#include "source/sqlite_source.h"
#include "source/postgres_source.h"

namespace sluice {

std::string_view InputFormatName(InputFormat format) {
  switch (format) {
    case InputFormat::kCsv: return "csv";
    case InputFormat::kJsonl: return "jsonl";
    case InputFormat::kParquet: return "parquet";
    case InputFormat::kSqlite: return "sqlite";
    case InputFormat::kPostgres: return "postgres";
  }
  return "unknown";
}

Result<Schema> InferSchema(Env* env, const std::string& path, const SourceOptions& options) {
  switch (options.format) {
    case InputFormat::kCsv: return InferCsvSchema(env, path, options);
    case InputFormat::kJsonl: return InferJsonlSchema(env, path, options);
#if SLUICE_WITH_DUCKDB
    case InputFormat::kParquet: return InferParquetSchema(env, path, options);
#else
    case InputFormat::kParquet:
#endif
    case InputFormat::kSqlite: return InferSqliteSchema(path, options);
    case InputFormat::kPostgres: return InferPostgresSchema(path, options);
  }
  return Status::NotSupported("input '" + path + "': input.format " + std::string(InputFormatName(options.format)) + " is not supported by this build");
}

Result<std::unique_ptr<Source>> OpenSource(Env* env, const InputRange& range, const Schema& file_schema,
                                           const SourceOptions& options, RejectSink* rejects) {
  switch (options.format) {
    case InputFormat::kCsv: return OpenCsvSource(env, range, file_schema, options, rejects);
    case InputFormat::kJsonl: return OpenJsonlSource(env, range, file_schema, options, rejects);
#if SLUICE_WITH_DUCKDB
    case InputFormat::kParquet: return OpenParquetSource(env, range, file_schema, options, rejects);
#else
    case InputFormat::kParquet:
#endif
    case InputFormat::kSqlite: return OpenSqliteSource(range, file_schema, options, rejects);
    case InputFormat::kPostgres: return OpenPostgresSource(range, file_schema, options, rejects);
  }
  return Status::NotSupported("input '" + range.path + "': input.format " + std::string(InputFormatName(options.format)) + " is not supported by this build");
}

}  // namespace sluice
