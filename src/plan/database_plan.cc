// PlanDatabaseUnits: units of SQLite and PostgreSQL inputs (see planner.h).
#include "plan/planner.h"

namespace sluice {

Result<Plan> PlanDatabaseUnits(const InputSpec&, const PartitionSpec&) {
  return Status::NotSupported("input.database: database input is not supported yet");
}

}  // namespace sluice
