// sluice_crash_driver: the `sluice` command line over a FaultInjectionEnv, for
// crash and fault tests of whole runs.
//
//   sluice_crash_driver [--fault SPEC]... [--] SLUICE_ARGS...
//
// SPEC is a fault spec (src/env/fault_spec.h), e.g. `rename:.part-:1:crash`.
// A rule with `crash` ends the process at that step with exit code 86
// (kFaultCrashExitCode); other faults reach the engine as errors. With a random
// spec the seed in use goes to stderr ("crash_driver: random fault seed 42") so
// a failing run can be replayed with the same seed.
//
// Exit code: sluice's own, 86 on an injected crash, 2 for a bad SPEC or usage.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"
#include "env/fault_spec.h"

namespace {

constexpr int kExitUsage = 2;

int Usage(const std::string& error) {
  std::fprintf(stderr,
               "crash_driver: error: %s\n"
               "usage: sluice_crash_driver [--fault SPEC]... [--] SLUICE_ARGS...\n"
               "  SPEC: OP:PATH_SUBSTRING:NTH[+][:CODE][:performed][:crash]\n"
               "        or random:RATE:OPS[:CODE][:SEED] (see src/env/fault_spec.h)\n",
               error.c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  sluice::FaultInjectionEnv env(sluice::Env::Default());
  int arg_idx = 1;
  while (arg_idx < argc) {
    std::string_view arg = argv[arg_idx];
    std::string_view spec;
    if (arg == "--") {
      ++arg_idx;
      break;
    } else if (arg == "--fault") {
      if (arg_idx + 1 >= argc) return Usage("--fault needs a SPEC");
      spec = argv[arg_idx + 1];
      arg_idx += 2;
    } else if (arg.starts_with("--fault=")) {
      spec = arg.substr(std::string_view("--fault=").size());
      ++arg_idx;
    } else {
      break;
    }
    if (sluice::Status st = sluice::ApplyFaultSpec(spec, &env); !st.ok()) return Usage(st.message());
  }
  if (arg_idx >= argc) return Usage("no sluice arguments");
  if (env.has_random_faults()) {
    std::fprintf(stderr, "crash_driver: random fault seed %llu\n",
                 static_cast<unsigned long long>(env.random_seed()));
  }

  // The sluice command line sees the driver's name and the arguments after the faults.
  std::vector<char*> sluice_argv{argv[0]};
  sluice_argv.insert(sluice_argv.end(), argv + arg_idx, argv + argc);
  return sluice::RunCli(static_cast<int>(sluice_argv.size()), sluice_argv.data(), &env);
}
