// OpenSource / InferSchema: dispatch on the input format.
#include "sluice/source.h"

#include "source/csv_source.h"
#include "source/jsonl_source.h"

namespace sluice {

Result<Schema> InferSchema(Env* env, const std::string& path, const SourceOptions& options) {
  switch (options.format) {
    case InputFormat::kCsv: return InferCsvSchema(env, path, options);
    case InputFormat::kJsonl: return InferJsonlSchema(env, path, options);
  }
  return Status::NotSupported("input '" + path + "': unknown input.format");
}

Result<std::unique_ptr<Source>> OpenSource(Env* env, const FileRange& range, const Schema& file_schema,
                                           const SourceOptions& options, RejectSink* rejects) {
  switch (options.format) {
    case InputFormat::kCsv: return OpenCsvSource(env, range, file_schema, options, rejects);
    case InputFormat::kJsonl: return OpenJsonlSource(env, range, file_schema, options, rejects);
  }
  return Status::NotSupported("input '" + range.path + "': unknown input.format");
}

}  // namespace sluice
