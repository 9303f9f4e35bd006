// Fault specs: FaultInjectionEnv rules and random faults written as text, so a
// command line (tests/crash's driver) can set them.
//
//   rule:    OP:PATH_SUBSTRING:NTH[+][:CODE][:performed][:crash]
//   random:  random:RATE:OPS[:CODE][:SEED]
//
// OP is a FaultOpName ("write", "sync", "rename", "create", "read", "remove",
// "sync_dir"); PATH_SUBSTRING may be empty (every path) and cannot hold ':';
// NTH is the 1-based matching call to fail, "+" failing it and every later one;
// CODE is a StatusCodeName other than "ok" (default "io_error"); "performed" and
// "crash" set the FaultRule fields of those names, in any order after NTH.
// RATE is a probability in [0, 1]; OPS is a comma-separated list of OP names;
// SEED is a decimal integer, 0 or absent to pick one. Examples:
//
//   rename:.part-:2:io_error           fail the 2nd rename of a ".part-" path once
//   write::1+:resource_exhausted       every write from the first on: a full disk
//   rename:units/:1:crash:performed    rename the first unit marker, then crash
//   random:0.2:write,sync:io_error:42  a fifth of writes and syncs fail, seed 42
//
// Thread-safety: functions without state; ApplyFaultSpec is as safe as the
// FaultInjectionEnv it changes.
#pragma once

#include <string_view>
#include <variant>

#include "env/fault_injection_env.h"
#include "sluice/status.h"

namespace sluice {

using FaultSpec = std::variant<FaultRule, RandomFaults>;

// Parses one spec. kInvalidArgument naming the spec and the bad part:
// "fault spec 'renam:x:1': unknown operation 'renam' (write, sync, …)".
Result<FaultSpec> ParseFaultSpec(std::string_view spec);

// Parses `spec` and adds its rule to `env`, or sets its random faults. A second
// random spec on the same env is kInvalidArgument (an env has one random
// configuration); read the seed in use from env->random_seed().
Status ApplyFaultSpec(std::string_view spec, FaultInjectionEnv* env);

}  // namespace sluice
