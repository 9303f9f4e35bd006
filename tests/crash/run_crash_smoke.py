#!/usr/bin/python3
"""Smoke test of sluice_crash_driver on a tiny job (three CSV files, a linear model).

- `--fault rename:.part-:1:crash`: exit 86 at the first part's rename, before it; no part-* file
  is visible and no unit is committed. A re-run without faults in the same directory completes
  the job.
- No faults, in a fresh directory: exit 0 with every row in the parts.
- A random spec prints its seed on stderr; a bad spec is a usage error (exit 2) naming the spec.

Usage: run_crash_smoke.py SLUICE_CRASH_DRIVER
"""
import glob
import os
import subprocess
import sys
import tempfile

CRASH_EXIT = 86  # kFaultCrashExitCode, src/env/fault_injection_env.h

JOB = """input: {path: data/*.csv}
features: [{name: x}]
model: {path: model.json, outputs: {score: value}}
output: {keys: [id]}
"""
MODEL = '{"sluice_linear": 1, "feature_names": ["x"], "coefficients": [2.0], "intercepts": 0.0, "link": "identity"}\n'
DATA = {"a.csv": [(1, 0.5), (2, 1.5)], "b.csv": [(3, 2.5)], "c.csv": [(4, 3.5), (5, 4.5)]}


def make_job(root):
    os.makedirs(os.path.join(root, "data"))
    with open(os.path.join(root, "job.yaml"), "w") as f:
        f.write(JOB)
    with open(os.path.join(root, "model.json"), "w") as f:
        f.write(MODEL)
    for name, rows in DATA.items():
        with open(os.path.join(root, "data", name), "w") as f:
            f.write("id,x\n" + "".join(f"{i},{x}\n" for i, x in rows))


def run(driver, root, faults, *args):
    cmd = [driver] + [a for spec in faults for a in ("--fault", spec)] + ["--"] + list(args)
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def visible_parts(out):
    return sorted(os.path.relpath(p, out) for p in glob.glob(os.path.join(out, "**", "part-*"), recursive=True))


def ids_in_parts(out):
    ids = []
    for part in visible_parts(out):
        with open(os.path.join(out, part)) as f:
            lines = f.read().splitlines()
        ids += [int(line.split(",")[0]) for line in lines[1:]]
    return ids


ALL_IDS = [i for rows in DATA.values() for i, _ in rows]


def failure(what, proc):
    return f"{what}: exit {proc.returncode}; stderr: {proc.stderr.strip()}"


def crash_then_rerun(driver, root):
    errors = []
    out = os.path.join(root, "out")
    proc = run(driver, root, ["rename:.part-:1:crash"], "run", "job.yaml")
    if proc.returncode != CRASH_EXIT:
        errors.append(failure(f"crash run: expected exit {CRASH_EXIT}", proc))
    if visible_parts(out):
        errors.append(f"crash run: parts visible: {visible_parts(out)}")
    markers = glob.glob(os.path.join(out, "_sluice", "units", "*.json"))
    if markers:
        errors.append(f"crash run: unit markers: {markers}")
    if os.path.exists(os.path.join(out, "_SUCCESS")):
        errors.append("crash run: _SUCCESS exists")
    proc = run(driver, root, [], "run", "job.yaml")
    if proc.returncode != 0:
        errors.append(failure("re-run after the crash", proc))
    if ids_in_parts(out) != ALL_IDS or not os.path.exists(os.path.join(out, "_SUCCESS")):
        errors.append(f"re-run after the crash: ids {ids_in_parts(out)}, expected {ALL_IDS} and _SUCCESS")
    return errors


def no_faults(driver, root):
    proc = run(driver, root, [], "run", "job.yaml")
    if proc.returncode != 0:
        return [failure("run without faults", proc)]
    ids = ids_in_parts(os.path.join(root, "out"))
    return [] if ids == ALL_IDS else [f"run without faults: ids {ids}, expected {ALL_IDS}"]


def random_seed_printed(driver, root):
    proc = run(driver, root, ["random:0:write,sync:io_error:42"], "run", "job.yaml")
    errors = [] if proc.returncode == 0 else [failure("zero-rate random spec", proc)]
    if "crash_driver: random fault seed 42\n" not in proc.stderr:
        errors.append(f"seed not printed; stderr: {proc.stderr!r}")
    return errors


def bad_spec(driver, root):
    proc = run(driver, root, ["rename:.part-:zero"], "run", "job.yaml")
    if proc.returncode != 2 or "fault spec 'rename:.part-:zero': nth 'zero'" not in proc.stderr:
        return [failure("bad spec: expected exit 2 naming the spec", proc)]
    return [] if not os.path.exists(os.path.join(root, "out")) else ["bad spec: the job ran"]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    driver = os.path.abspath(sys.argv[1])
    failed = 0
    scenarios = [crash_then_rerun, no_faults, random_seed_printed, bad_spec]
    with tempfile.TemporaryDirectory(prefix="sluice-crash-") as tmp:
        for scenario in scenarios:
            root = os.path.join(tmp, scenario.__name__)
            make_job(root)
            errors = scenario(driver, root)
            print(f"{'ok  ' if not errors else 'FAIL'} {scenario.__name__}")
            for e in errors:
                print(f"     {e}")
            failed += bool(errors)
    print(f"{len(scenarios) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
