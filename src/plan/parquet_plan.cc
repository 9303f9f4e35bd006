// PlanParquetUnits: row-group units of Parquet files (see planner.h).
#include "plan/planner.h"

namespace sluice {

Result<Plan> PlanParquetUnits(Env*, const InputSpec& input, const PartitionSpec&) {
  return Status::NotSupported("input '" + input.path + "': Parquet input is not supported yet");
}

}  // namespace sluice
