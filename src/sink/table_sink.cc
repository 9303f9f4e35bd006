// CheckTableSink / OpenTableSink: dispatch on output.format.
#include "sluice/sink.h"

namespace sluice {

Status CheckTableSink(const OutputSpec& output, const Schema&) {
  return Status::NotSupported("output.format: '" + std::string(OutputFormatName(output.format)) +
                              "' is not supported yet");
}

Result<std::unique_ptr<TableSink>> OpenTableSink(const OutputSpec& output, const std::string&) {
  return Status::NotSupported("output.format: '" + std::string(OutputFormatName(output.format)) + "' is not supported yet");
}

}  // namespace sluice
