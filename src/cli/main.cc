#include <tbb/global_control.h>

#include <new>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // Joins oneTBB's worker threads before exit, so that libraries' exit-time
  // cleanup (OpenSSL, Kerberos via libpq) never runs beside a worker thread
  // that used them (and ThreadSanitizer sees the join).
  tbb::task_scheduler_handle workers{tbb::attach{}};
  const int code = sluice::RunCli(argc, argv, sluice::Env::Default());
  tbb::finalize(workers, std::nothrow);
  return code;
}
