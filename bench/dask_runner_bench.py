#!/usr/bin/python3
"""The Dask half of bench/dask.sh: times sluice.dask.run on a LocalCluster of 2 single-threaded
worker processes that is up before the clock starts, REPEAT times into a fresh output directory,
and prints the best time in seconds on stdout (each run's line on stderr).

    dask_runner_bench.py JOB OUT REPEAT ROWS [KEY=VALUE...]
"""
import shutil
import sys
import time

import distributed

import sluice.dask


def main():
    job, out, repeat, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    overrides = sys.argv[5:]
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    client.run(lambda: __import__("sluice") and None)  # a running cluster's workers have the package loaded
    best = None
    for i in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        start = time.monotonic()
        summary = sluice.dask.run(job, client=client, set=overrides, progress=False)
        seconds = time.monotonic() - start
        if summary["exit_code"] != 0 or summary["rows_out"] != rows:
            sys.exit(f"dask_runner_bench: run {i + 1} failed: {summary}")
        loads = {w: v["model_loads"] for w, v in summary["workers"].items()}
        print(f"  run {i + 1}: {seconds:.2f} s, {summary['units_committed']} units, model loads per worker {loads}",
              file=sys.stderr)
        best = seconds if best is None else min(best, seconds)
    client.close()
    cluster.close()
    print(f"{best:.3f}")


if __name__ == "__main__":  # LocalCluster starts worker processes that import this file
    main()
