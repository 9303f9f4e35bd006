"""The Dask runner on a LocalCluster of 3 worker processes: a worker SIGKILLed while
it runs units, and the job still completes with the bytes of one `sluice run`,
every row once, the model loaded once per worker process; failed units are
retried and reported; `python3 -m sluice.dask --local N --adapt` end to end."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import distributed
import pytest

import sluice
import sluice.dask
from conftest import assert_rows_exactly_once, assert_same_tree, run_reference, write_job


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_failed_units_are_retried_then_reported(client, tmp_path):
    # Every prediction fails (permanently): no unit commits, nothing is finalized.
    job = write_job(str(tmp_path / "job"))
    with open(os.path.join(os.path.dirname(job), "model.json"), "w") as f:
        f.write('{"sluice_fake": 1, "num_features": 3, "fail_calls": 1000000, "fail_code": "invalid_argument"}')
    summary = sluice.dask.run(job, client=client, retries=1, progress=False)
    assert summary["exit_code"] == 1
    assert summary["units_failed"] == summary["units_run"] == summary["units_total"]
    assert "fake model: injected failure" in summary["error"]
    assert summary["finalize"] is None
    out = summary["output"]
    assert not os.path.exists(os.path.join(out, "_SUCCESS"))
    assert not [n for n in os.listdir(out) if n.startswith("part-")]
    assert len(os.listdir(os.path.join(out, "_sluice", "failed"))) == summary["units_total"]


def test_worker_killed_mid_run_gives_the_bytes_of_one_run(client, sluice_binary, tmp_path):
    job = write_job(str(tmp_path / "job"), delay_ms=60)
    reference = run_reference(sluice_binary, job, str(tmp_path / "ref"))
    plan = sluice.plan(job)
    total = len(plan["units"])
    units_dir = os.path.join(plan["output"], "_sluice", "units")

    result = {}
    runner = threading.Thread(target=lambda: result.update(sluice.dask.run(job, client=client, progress=False)))
    runner.start()
    pids = client.run(os.getpid)  # worker address -> pid
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        committed = len(os.listdir(units_dir)) if os.path.isdir(units_dir) else 0
        busy = [w for w, keys in client.processing().items() if keys and w in pids]
        if committed >= 3 and busy:
            victim = busy[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed_at = committed
        else:
            time.sleep(0.02)
    runner.join(timeout=180)
    assert victim is not None, "no worker was running a unit"
    assert killed_at < total - 3, "the kill came too late to matter"
    assert not runner.is_alive()
    print(f"killed {victim} (pid {pids[victim]}) after {killed_at} of {total} unit(s): {result['workers']}")

    assert result["exit_code"] == 0, result["error"]
    assert result["units_committed"] + result["units_skipped"] == total
    assert result["finalize"]["exit_code"] == 0
    assert sorted(os.listdir(units_dir)) == sorted(f"{u['id']}.json" for u in plan["units"])
    assert_same_tree(plan["output"], reference)
    assert_rows_exactly_once(plan["output"])
    workers = result["workers"]
    assert len(workers) >= 2
    assert all(w["model_loads"] == 1 for w in workers.values()), workers
    assert sum(w["units"] for w in workers.values()) == total

    # Run again: every unit is done; nothing is submitted, the output is unchanged.
    again = sluice.dask.run(job, client=client, progress=False)
    assert (again["exit_code"], again["units_run"], again["units_done_before"]) == (0, 0, total)
    assert_same_tree(plan["output"], reference)


def test_command_line_local_cluster_with_adapt(sluice_binary, tmp_path):
    job = write_job(str(tmp_path / "job"))
    reference = run_reference(sluice_binary, job, str(tmp_path / "ref"))
    p = subprocess.run([sys.executable, "-m", "sluice.dask", job, "--local", "2", "--adapt", "1:2", "--json",
                        "--set", "execution.workers=1"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["finalize"]["exit_code"] == 0
    assert summary["rows_in"] == 3000 and summary["rows_rejected"] == 57
    assert all(w["model_loads"] == 1 for w in summary["workers"].values())
    assert "unit(s) finished" in p.stderr
    assert_same_tree(summary["output"], reference)

    bad = subprocess.run([sys.executable, "-m", "sluice.dask", job, "--scheduler", "tcp://127.0.0.1:1",
                          "--adapt", "1:2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--adapt needs --local" in bad.stderr
