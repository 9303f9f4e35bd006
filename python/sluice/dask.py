"""Sluice on a Dask cluster: one Dask task per pending unit of a job.

    python3 -m sluice.dask JOB.yaml (--scheduler tcp://HOST:PORT | --local N)
                           [--adapt MIN:MAX] [--set KEY=VALUE]... [--retries N]

or from Python: sluice.dask.run("job.yaml", client=client).

How it works (docs/scale-out.md): the client plans the job (no model is loaded
there) and submits one task per unit that is not committed yet, with `retries`.
A task names the job file, its overrides, its fingerprint and a unit id, nothing
more: the worker process runs the unit through sluice.run_unit, which keeps one
session per job in the process (keyed by job path, overrides and fingerprint),
so each worker process loads the model once and the model never travels through
the scheduler. A unit whose task runs twice (a worker lost after it committed, a
retried task, two attempts at once) is committed once: the attempts take turns on
the unit's lock in the output directory, and a later one finds the commit and
writes nothing. At the end the workers close their sessions and the client
finalizes the output directory (_SUCCESS). Workers must see the job, its model
and input files, and the output directory at the same paths (a shared
filesystem), and import this package (PYTHONPATH).
"""
import argparse
import json
import os
import sys
import time

import distributed

import sluice

# Exit codes of the `sluice` command (DESIGN.md §5).
_EXIT_UNITS_FAILED = 1
_EXIT_INVALID = 2
_EXIT_REJECT_LIMIT = 3


def _run_unit_task(job, overrides, fingerprint, unit_id):
    """The task: one unit in this worker process. A failed unit raises sluice.Error,
    so that Dask retries it; a unit over errors.max_rejected is returned (retrying
    cannot help)."""
    report = sluice.run_unit(job, unit_id, overrides, fingerprint)
    if report["exit_code"] not in (0, _EXIT_REJECT_LIMIT):
        raise sluice.Error(f"unit {unit_id}: {report['error']}", report["exit_code"], "unit_failed")
    try:
        worker = distributed.get_worker().address
    except ValueError:  # run outside a worker (tests)
        worker = "local"
    keep = ("exit_code", "error", "rows_in", "rows_out", "rows_rejected", "rows_filtered", "model_loads", "retries",
            "seconds")
    result = {key: report[key] for key in keep}
    result.update(unit=unit_id, worker=worker, pid=os.getpid(), skipped=report["units_skipped"] > 0)
    return result


def _close_job_sessions(job):
    sluice.close_sessions(job)


class _Progress:
    """A counter on stderr: a line per change at most every `every` seconds, and the last."""

    def __init__(self, total, enabled, every=1.0):
        self.total, self.enabled, self.every = total, enabled, every
        self.done = self.failed = 0
        self.last = 0.0

    def tick(self, failed=False):
        self.done += 1
        self.failed += 1 if failed else 0
        now = time.monotonic()
        if self.enabled and (now - self.last >= self.every or self.done == self.total):
            self.last = now
            failed_text = f", {self.failed} failed" if self.failed else ""
            print(f"sluice.dask: {self.done}/{self.total} unit(s) finished{failed_text}", file=sys.stderr, flush=True)


def run(job, client=None, set=None, retries=3, progress=True, finalize=True):
    """Runs every pending unit of `job` as a Dask task, then finalizes the output.

    client: a distributed.Client; None uses the current default client, or starts a
    LocalCluster (one single-threaded worker process per core) for the call.
    set: "key=value" overrides, as `sluice run --set`. retries: Dask retries of a
    task whose unit failed (the engine's execution.retries apply first, inside the
    task); worker loss is handled by the scheduler (distributed.scheduler.allowed-failures).

    Returns a summary dict: output, fingerprint, units_total, units_done_before (found
    committed at planning), units_run (tasks submitted), units_committed (by this
    run), units_skipped (tasks that found their unit committed by another attempt),
    units_failed and failed ({unit: error}), rows_in/out/rejected/filtered (the whole
    job's, from finalize; else the units of this run), retries, workers ({address:
    {"pid", "units", "model_loads"}}: model_loads is 1 per worker process for a job
    without model.route), finalize (sluice.finalize's dict, or None), seconds,
    exit_code (as `sluice run`: 0, 1 units failed, 3 reject limit) and error.
    Planning errors raise sluice.Error.
    """
    start = time.monotonic()
    job = os.path.abspath(os.fspath(job))
    overrides = [str(v) for v in (set or [])]
    plan = sluice.plan(job, set=overrides)
    if not plan["fingerprint"]:
        raise sluice.Error(f"job '{job}': its model files cannot be read; run `sluice validate {job}` to see why",
                           _EXIT_INVALID, "invalid_argument")
    fingerprint = plan["fingerprint"]
    pending = [u["id"] for u in plan["units"] if not u["done"]]
    summary = {
        "output": plan["output"], "fingerprint": fingerprint, "units_total": len(plan["units"]),
        "units_done_before": len(plan["units"]) - len(pending), "units_run": len(pending), "units_committed": 0,
        "units_skipped": 0, "units_failed": 0, "failed": {}, "rows_in": 0, "rows_out": 0, "rows_rejected": 0,
        "rows_filtered": 0, "retries": {}, "workers": {}, "finalize": None, "exit_code": 0, "error": "",
    }

    own_cluster = None
    if client is None and pending:
        try:
            client = distributed.get_client()
        except ValueError:
            own_cluster = distributed.LocalCluster(threads_per_worker=1, processes=True, dashboard_address=None)
            client = distributed.Client(own_cluster)
    try:
        if pending:
            _run_tasks(client, job, overrides, fingerprint, pending, retries, progress, summary)
            # Workers release the directory's locks and the models; a finalize needs the directory alone.
            client.run(_close_job_sessions, job)
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()

    if summary["units_failed"]:
        first = next(iter(summary["failed"].items()))
        summary["exit_code"] = _EXIT_UNITS_FAILED
        summary["error"] = f"{summary['units_failed']} unit(s) failed; first: {first[1]}"
    elif summary["exit_code"] == 0 and finalize:
        fin = sluice.finalize(plan["output"])
        summary["finalize"] = fin
        summary["exit_code"], summary["error"] = fin["exit_code"], fin["error"]
        if fin["exit_code"] != 1:  # the whole job's rows
            for key in ("rows_in", "rows_out", "rows_rejected", "rows_filtered"):
                summary[key] = fin[key]
    summary["seconds"] = time.monotonic() - start
    return summary


def _run_tasks(client, job, overrides, fingerprint, pending, retries, progress, summary):
    prefix = f"sluice-{fingerprint[:12]}-"
    futures = [client.submit(_run_unit_task, job, overrides, fingerprint, unit_id, key=prefix + unit_id,
                             retries=retries, pure=False) for unit_id in pending]
    counter = _Progress(len(futures), progress)
    for future in distributed.as_completed(futures):
        unit_id = future.key[len(prefix):]
        if future.cancelled():
            continue
        try:
            result = future.result()
        except Exception as e:  # the unit failed after its retries, or its workers kept dying
            summary["units_failed"] += 1
            summary["failed"][unit_id] = str(e) or type(e).__name__
            counter.tick(failed=True)
            continue
        finally:
            future.release()
        counter.tick()
        worker = summary["workers"].setdefault(result["worker"], {"pid": result["pid"], "units": 0,
                                                                  "model_loads": 0})
        worker["units"] += 1
        worker["model_loads"] = max(worker["model_loads"], result["model_loads"])
        for code, count in result["retries"].items():
            summary["retries"][code] = summary["retries"].get(code, 0) + count
        if result["exit_code"] == _EXIT_REJECT_LIMIT:
            # A count limit that one unit crosses alone is crossed by the job: stop.
            summary["exit_code"], summary["error"] = _EXIT_REJECT_LIMIT, result["error"]
            client.cancel([f for f in futures if not f.done()])
            continue
        summary["units_skipped" if result["skipped"] else "units_committed"] += 1
        for key in ("rows_in", "rows_out", "rows_rejected", "rows_filtered"):
            summary[key] += result[key]


def _parse_adapt(text):
    try:
        low, high = (int(v) for v in text.split(":"))
    except ValueError:
        low = high = -1
    if low < 0 or high < max(low, 1):
        raise argparse.ArgumentTypeError(f"--adapt '{text}': expected MIN:MAX with 0 <= MIN <= MAX, MAX >= 1")
    return low, high


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m sluice.dask",
        description="Run a Sluice job on a Dask cluster: one task per pending unit, then finalize.")
    parser.add_argument("job", help="job spec (YAML)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler")
    where.add_argument("--local", type=int, metavar="N", help="a local cluster of N worker processes")
    parser.add_argument("--adapt", type=_parse_adapt, metavar="MIN:MAX",
                        help="with --local: scale between MIN and MAX workers (cluster.adapt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, as sluice run --set (repeatable)")
    parser.add_argument("--retries", type=int, default=3, help="Dask retries of a failed unit's task (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--log-level", default="warn", help="engine log level in this process (default warn)")
    args = parser.parse_args(argv)
    if args.adapt and args.scheduler:
        parser.error("--adapt needs --local: a remote cluster scales through its own cluster manager")
    if args.local is not None and args.local < 1:
        parser.error("--local N: N must be at least 1")

    sluice.set_log_level(args.log_level)
    cluster = None
    try:
        if args.local is not None:
            cluster = distributed.LocalCluster(n_workers=args.local, threads_per_worker=1, processes=True,
                                               dashboard_address=None)
            if args.adapt:
                cluster.adapt(minimum=args.adapt[0], maximum=args.adapt[1])
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(args.scheduler)
        with client:
            summary = run(args.job, client=client, set=args.set, retries=args.retries, progress=not args.no_progress)
    except sluice.Error as e:
        print(f"sluice: error: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        if cluster is not None:
            cluster.close()

    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"rows: in {summary['rows_in']} = out {summary['rows_out']} + rejected {summary['rows_rejected']} "
              f"+ filtered {summary['rows_filtered']}")
        print(f"units: {summary['units_committed']} committed, {summary['units_done_before']} done before, "
              f"{summary['units_skipped']} found committed, {summary['units_failed']} failed of "
              f"{summary['units_total']}; {summary['seconds']:.2f} s")
        for address, w in sorted(summary["workers"].items()):
            print(f"worker {address} (pid {w['pid']}): {w['units']} unit(s), model loads {w['model_loads']}")
        print(f"output: {summary['output']}{' (_SUCCESS)' if summary['finalize'] and summary['exit_code'] == 0 else ''}")
    if summary["exit_code"]:
        print(f"sluice: error: {summary['error']}", file=sys.stderr)
    return summary["exit_code"]


if __name__ == "__main__":
    # Tasks must name functions of the module `sluice.dask`, which workers import,
    # not of `__main__`.
    from sluice.dask import main as _main
    sys.exit(_main())
