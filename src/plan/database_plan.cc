// PlanDatabaseUnits: units of SQLite and PostgreSQL inputs (see planner.h).
#include "plan/planner.h"

namespace sluice {

WorkUnit& AddDatabaseUnit(Plan* plan, const std::string& database, std::string filter, std::vector<SqlParam> params,
                          std::string label, int64_t est_rows, bool rows_exact) {
  WorkUnit& unit = plan->units.emplace_back();
  unit.index = static_cast<int>(plan->units.size() - 1);
  unit.id = UnitId(unit.index);
  unit.range.path = database;
  unit.range.filter = std::move(filter);
  unit.range.params = std::move(params);
  unit.range.label = std::move(label);
  unit.est_rows = est_rows;
  unit.rows_exact = rows_exact;
  return unit;
}

Result<Plan> PlanDatabaseUnits(const InputSpec& input, const PartitionSpec& partition) {
  if (input.format == InputFormat::kSqlite) return PlanSqliteUnits(input, partition);
  if (input.format == InputFormat::kPostgres) return PlanPostgresUnits(input, partition);
  return Status::InvalidArgument("input.format: '" + std::string(InputFormatName(input.format.value_or(InputFormat::kCsv))) +
                                 "' is not a database");
}

}  // namespace sluice
