// PlanDatabaseUnits: units of SQLite and PostgreSQL inputs (see planner.h).
#include "plan/planner.h"

namespace sluice {

Result<Plan> PlanDatabaseUnits(const InputSpec& input, const PartitionSpec& partition) {
  if (input.format == InputFormat::kSqlite) return PlanSqliteUnits(input, partition);
  if (input.format == InputFormat::kPostgres) return PlanPostgresUnits(input, partition);
  return Status::NotSupported("input.database: database input is not supported yet");
}

}  // namespace sluice
