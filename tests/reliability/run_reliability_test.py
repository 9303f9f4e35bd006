#!/usr/bin/python3
"""Crash, fault and resume tests of `sluice run` (DESIGN.md §4-5), each against an uninterrupted run
of the same job:
  - SIGKILL at >= 20 random moments, resumed each time: identical output, every id once, no
    temporaries, and units committed before a kill are not redone;
  - a crash at each commit step (after the part's write, sync, rename; before and after the marker);
  - 20% transient write failures (retried, counted in the summary);
  - a rename that happens but reports failure;
  - a permanent "disk full" (exit 1 naming the file; resumable once the fault is gone);
  - a poison unit (fails after max_attempts, named with its file and byte range; others committed);
  - a second concurrent run and a changed model are refused;
  - SIGINT stops with exit 130 and the run resumes.
Faults are injected by sluice_crash_driver (the sluice command line over a fault-injecting Env).

Usage: run_reliability_test.py SLUICE CRASH_DRIVER [--kills N] [--seed S] [--keep]
"""
import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from output_tree import tree, tree_difference  # noqa: E402

ROWS = 6000


def fail(msg):
    print(f"run_reliability_test: {msg}", file=sys.stderr)
    sys.exit(1)


def setup(work):
    rng = random.Random(3)
    with open(os.path.join(work, "in.csv"), "w") as f:
        f.write("id,x1,x2\n")
        for i in range(ROWS):
            f.write(f"{i},{rng.uniform(-2, 2):.4f},{rng.uniform(0, 5):.3f}\n")
    with open(os.path.join(work, "model.json"), "w") as f:
        json.dump({"sluice_linear": 1, "feature_names": ["x1", "x2"], "coefficients": [[0.7, -0.3]],
                   "intercepts": [0.05], "link": "logistic"}, f)
    # A slow model (the fake backend sleeps per call) so that kills land in the middle of runs.
    with open(os.path.join(work, "slow.json"), "w") as f:
        json.dump({"sluice_fake": 1, "num_features": 2, "delay_ms": 40}, f)
    for name, model in [("job.yaml", "model.json"), ("slow.yaml", "slow.json")]:
        with open(os.path.join(work, name), "w") as f:
            f.write(f"""input: {{path: in.csv}}
partition: {{target_bytes: 4KiB}}
features: [{{name: x1}}, {{name: x2}}]
model: {{path: {model}, kind: {'linear' if model == 'model.json' else 'fake'}}}
batch: {{size: 64}}
execution: {{workers: 2, retries: {{max_attempts: 4, initial_backoff: 1ms, max_backoff: 5ms}}}}
output: {{path: out, keys: [id]}}
""")


class Run:
    def __init__(self, sluice, driver, work):
        self.sluice, self.driver, self.work = sluice, driver, work

    def sluice_run(self, job, out, *extra, faults=(), expect=0):
        cmd = [self.driver] + [a for f in faults for a in ("--fault", f)] + ["--"] if faults else [self.sluice]
        cmd += ["run", job, "--set", f"output.path={out}", *extra]
        p = subprocess.run(cmd, cwd=self.work, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if expect is not None and p.returncode != expect:
            fail(f"{' '.join(cmd)}: exit {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
        return p


def same(a, b, what):
    difference = tree_difference(a, b)
    if difference:
        fail(f"{what}: {difference}")
    temps = [r for r in tree(b) if ".tmp-" in r]
    if temps:
        fail(f"{what}: temporaries left: {temps[:5]}")


def ids_once(d):
    ids = []
    for p in sorted(x for x in os.listdir(d) if x.startswith("part-")):
        with open(os.path.join(d, p)) as f:
            ids += [int(r["id"]) for r in csv.DictReader(f)]
    if sorted(ids) != list(range(ROWS)):
        fail(f"{d}: ids are not each of 0..{ROWS - 1} exactly once ({len(ids)} ids)")


def markers(d):
    units = os.path.join(d, "_sluice", "units")
    got = {}
    for name in os.listdir(units) if os.path.isdir(units) else []:
        if name.endswith(".json"):
            st = os.stat(os.path.join(units, name))
            got[name] = (st.st_ino, st.st_mtime_ns)
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("driver")
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    print(f"seed {a.seed}")
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="sluice_reliability.")
    setup(work)
    r = Run(os.path.abspath(a.sluice), os.path.abspath(a.driver), work)
    ref = os.path.join(work, "ref")
    r.sluice_run("job.yaml", "ref")
    slow_ref = os.path.join(work, "slow_ref")
    t0 = time.time()
    r.sluice_run("slow.yaml", "slow_ref")
    full = time.time() - t0
    units = len(markers(slow_ref))
    print(f"== reference runs: {units} units; slow run {full:.1f} s")

    print(f"== SIGKILL at {a.kills} random moments, resumed each time")
    kills, rounds = 0, 0
    while kills < a.kills:
        # A run that completes between kills ends the round: its output is checked, and the
        # next kills go to a new output directory.
        rounds += 1
        name = f"killed{rounds}"
        out = os.path.join(work, name)
        while kills < a.kills:
            before = markers(out) if os.path.isdir(out) else {}
            p = subprocess.Popen([r.sluice, "run", "slow.yaml", "--set", f"output.path={name}"], cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, full / 6))
            killed = p.poll() is None
            if killed:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            after = markers(out) if os.path.isdir(out) else {}
            redone = [m for m in before if after.get(m) != before[m]]
            if redone:
                fail(f"kill {kills}: units committed before were redone or lost: {redone[:5]}")
            if not killed:
                break
        r.sluice_run("slow.yaml", name)
        same(slow_ref, out, f"after kills ({name})")
        ids_once(out)
    print(f"   {kills} kills in {rounds} round(s); each output identical to the uninterrupted run, each id once")

    print("== a crash at each commit step, then resume")
    steps = {"part written": "write:.part-:1:crash", "part synced": "sync:.part-:1:crash",
             "part renamed": "rename:.part-:1:crash:performed", "before the marker": "rename:units/:1:crash",
             "after the marker": "rename:units/:1:crash:performed", "3rd part renamed": "rename:.part-:3:crash:performed"}
    for what, spec in steps.items():
        d = "crash_" + what.replace(" ", "_")
        p = r.sluice_run("job.yaml", d, faults=[spec], expect=86)
        r.sluice_run("job.yaml", d)
        same(ref, os.path.join(work, d), f"crash {what}")
    print(f"   {len(steps)} crash points: identical after resume")

    print("== 20% transient write failures")
    p = r.sluice_run("job.yaml", "flaky", "--set", "execution.retries.max_attempts=12",
                     faults=[f"random:0.2:write:io_error:{a.seed}"])
    same(ref, os.path.join(work, "flaky"), "20% write faults")
    line = [l for l in p.stdout.splitlines() if l.startswith("retries:")]
    if not line or "io_error" not in line[0]:
        fail(f"no io_error retries in the summary:\n{p.stdout}")
    print(f"   identical; {line[0]}")

    print("== a rename that happens but reports failure")
    r.sluice_run("job.yaml", "renamed", faults=["rename:.part-:2:io_error:performed"])
    same(ref, os.path.join(work, "renamed"), "performed rename")
    print("   identical, no duplicate")

    print("== permanent disk full, then resume")
    p = r.sluice_run("job.yaml", "full", faults=["write:.part-:5+:resource_exhausted"], expect=1)
    if "in.csv bytes [" not in p.stderr or "resource_exhausted" not in p.stderr:
        fail(f"disk full: the error does not name the file, range and error:\n{p.stderr}")
    r.sluice_run("job.yaml", "full")
    same(ref, os.path.join(work, "full"), "disk full then resume")
    print("   exit 1 naming the input range; resumed to identical output")

    print("== a poison unit")
    p = r.sluice_run("job.yaml", "poison", faults=["rename:part-00003:1+:io_error"], expect=1)
    if "unit 00003" not in p.stderr or "after 4 attempt(s)" not in p.stderr:
        fail(f"poison unit: unexpected error:\n{p.stderr}")
    st = json.loads(subprocess.run([r.sluice, "status", "poison", "--json"], cwd=work, capture_output=True,
                                   text=True, check=True).stdout)
    states = {u["id"]: u["state"] for u in st["units"]}
    if states["00003"] != "failed" or list(states.values()).count("done") != len(states) - 1:
        fail(f"poison unit: status {states}")
    r.sluice_run("job.yaml", "poison")
    same(ref, os.path.join(work, "poison"), "poison unit then resume")
    print("   fails after 4 attempts, others committed, `sluice status` shows it; resume completes")

    print("== concurrent runs and changes")
    p1 = subprocess.Popen([r.sluice, "run", "slow.yaml", "--set", "output.path=busy"], cwd=work,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Wait until the first run holds the directory (sluice status sees the lock).
    deadline = time.time() + 30
    while time.time() < deadline and p1.poll() is None:
        s = subprocess.run([r.sluice, "status", "busy", "--json"], cwd=work, capture_output=True, text=True)
        if s.returncode == 0 and json.loads(s.stdout)["running"]:
            break
        time.sleep(0.02)
    else:
        fail("the first run never showed as running in `sluice status`")
    p = r.sluice_run("slow.yaml", "busy", expect=2)
    if "in use by another run" not in p.stderr:
        fail(f"second run: {p.stderr}")
    p1.wait()
    with open(os.path.join(work, "model.json")) as f:
        m = json.load(f)
    m["intercepts"] = [0.5]
    with open(os.path.join(work, "model.json"), "w") as f:
        json.dump(m, f)
    p = r.sluice_run("job.yaml", "ref", expect=2)
    if "the model file changed" not in p.stderr:
        fail(f"changed model: {p.stderr}")
    print("   a second run is refused; a changed model is refused without --restart")

    print("== SIGINT; SIGTERM twice; then resume")
    p = subprocess.Popen([r.sluice, "run", "slow.yaml", "--set", "output.path=stopped"], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(full * 0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate()
    if p.returncode != 130 or "interrupted" not in err:
        fail(f"SIGINT: exit {p.returncode}\n{err}")
    p = subprocess.Popen([r.sluice, "run", "slow.yaml", "--set", "output.path=stopped"], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(full * 0.3)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    p.communicate()
    if p.returncode != 130:
        fail(f"second SIGTERM: exit {p.returncode}")
    r.sluice_run("slow.yaml", "stopped")
    same(slow_ref, os.path.join(work, "stopped"), "SIGINT, two SIGTERMs, then resume")
    print("   exit 130 (a second signal stops at once); resumed to identical output")

    print("run_reliability_test: ok")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
