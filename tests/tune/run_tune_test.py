#!/usr/bin/python3
"""batch.size: auto and `sluice tune` end to end.

auto: a run with batch.size: auto (1 and 2 workers, async and sync) writes byte-identical output
(parts, rejects, unit markers, _SUCCESS) to runs with fixed sizes 256, 4096 and 65536, and reports the size
it chose, one of the candidates. Which size it chooses depends on timing and is not asserted.

tune: `sluice tune` on a small generated input prints one table row per batch size and split of
the cores, names the best, removes its scratch directory, and writes a YAML file whose settings,
given back as --set overrides, run the job to the same output.

Usage: run_tune_test.py SLUICE_BINARY [--rows N] [--keep]
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from output_tree import tree_difference  # noqa: E402

SIZES = [256, 1024, 4096, 16384, 65536]
FEATURES = [f"x{i}" for i in range(8)]


def fail(msg):
    print(f"run_tune_test: {msg}", file=sys.stderr)
    sys.exit(1)


def write_input(path, rows, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(["id"] + FEATURES) + "\n")
        for i in range(rows):
            xs = [f"{rng.uniform(-5, 5):.4f}" for _ in FEATURES]
            if i % 997 == 13:
                xs[3] = "not-a-number"  # rejected, in input order
            elif i % 101 == 7:
                xs[1] = ""  # imputed
            f.write(",".join([str(i)] + xs) + "\n")


def write_job(d):
    coefficients = [round(0.1 * (i + 1) * (-1) ** i, 2) for i in range(len(FEATURES))]
    with open(os.path.join(d, "model.json"), "w") as f:
        f.write('{"sluice_linear": 1, "feature_names": [%s], "coefficients": [%s], "intercepts": 0.25, '
                '"link": "logistic"}' % (", ".join(f'"{x}"' for x in FEATURES), ", ".join(map(str, coefficients))))
    features = ", ".join(f"{{name: {x}, impute: {{constant: 0}}}}" for x in FEATURES)
    with open(os.path.join(d, "job.yaml"), "w") as f:
        f.write(f"""input: {{path: data.csv}}
partition: {{target_bytes: 4MiB}}
features: [{features}]
model: {{path: model.json, outputs: {{score: probability}}}}
batch: {{size: auto}}
errors: {{max_rejected: 1%}}
output: {{path: out, keys: [id]}}
""")


def run(sluice, d, args, env=None):
    p = subprocess.run([sluice] + args, cwd=d, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        fail(f"sluice {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def chosen_size(stdout):
    m = re.search(r"batch (\d+) rows( \(auto\))?", stdout)
    if not m:
        fail(f"no batch size in the run summary:\n{stdout}")
    return int(m.group(1)), m.group(2) is not None


def check_auto(sluice, d):
    run(sluice, d, ["run", "job.yaml", "--set", "batch.size=4096", "--set", "output.path=fixed-4096"])
    for size in (256, 65536):
        out = f"fixed-{size}"
        p = run(sluice, d, ["run", "job.yaml", "--set", f"batch.size={size}", "--set", f"output.path={out}"])
        if chosen_size(p.stdout) != (size, False):
            fail(f"fixed run reports {chosen_size(p.stdout)}, expected ({size}, False)")
        diff = tree_difference("fixed-4096", out)
        if diff:
            fail(f"batch.size {size} vs 4096: {diff}")
    for workers, mode in ((1, "async"), (2, "async"), (2, "sync")):
        out = f"auto-{workers}-{mode}"
        p = run(sluice, d, ["run", "job.yaml", "--set", f"execution.workers={workers}", "--set",
                            f"execution.mode={mode}", "--set", f"output.path={out}"])
        size, auto = chosen_size(p.stdout)
        if not auto or size not in SIZES:
            fail(f"{out}: the summary says batch {size} auto={auto}, expected one of {SIZES} (auto)")
        diff = tree_difference("fixed-4096", out)
        if diff:
            fail(f"{out} vs a fixed batch.size: {diff}")
        tried = re.search(r"batch.size auto: .*", p.stderr)
        print(f"run_tune_test: {out}: batch {size}; {tried.group(0) if tried else 'no choice logged'}")


def check_tune(sluice, d):
    scratch = os.path.join(d, "tmp")
    os.mkdir(scratch)
    env = dict(os.environ, TMPDIR=scratch)
    p = run(sluice, d, ["tune", "job.yaml", "--sample", "30000", "--repeats", "1", "--out", "tuned.yaml"], env=env)
    cores = len(os.sched_getaffinity(0))
    splits = [(w, cores // w) for w in range(cores, 0, -1) if cores % w == 0]
    lines = p.stdout.splitlines()
    if not lines or not re.match(r"\s*batch\s+workers x threads\s+rows/s\s+peak RSS", lines[0]):
        fail(f"tune: no table header:\n{p.stdout}")
    rows = [re.match(r"\s*(\d+)\s+(\d+) x (\d+)\s+(\d+)\s+(\d+) MiB", line) for line in lines[1:]]
    rows = [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in rows if m]
    expected = [(size, w, t) for (w, t) in splits for size in SIZES]
    if rows != expected:
        fail(f"tune: table rows {rows}, expected {expected}:\n{p.stdout}")
    best = re.search(r"^best: batch.size (\d+), (\d+) worker\(s\) x (\d+) model thread\(s\)", p.stdout, re.M)
    if not best or (int(best.group(1)), int(best.group(2)), int(best.group(3))) not in expected:
        fail(f"tune: no valid best line:\n{p.stdout}")
    if os.listdir(scratch):
        fail(f"tune left its scratch directory behind: {os.listdir(scratch)}")
    if os.path.exists(os.path.join(d, "out")):
        fail("tune wrote into the job's output.path")
    with open(os.path.join(d, "tuned.yaml")) as f:
        tuned = yaml.safe_load(f)
    settings = [f"{section}.{key}={value}" for section, keys in tuned.items() for key, value in keys.items()]
    if sorted(settings) != sorted([f"batch.size={best.group(1)}", f"execution.workers={best.group(2)}",
                                   f"model.threads={best.group(3)}"]):
        fail(f"tuned.yaml holds {settings}, not the best line's settings")
    args = ["run", "job.yaml", "--set", "output.path=tuned-out"]
    for s in settings:
        args += ["--set", s]
    run(sluice, d, args)
    diff = tree_difference("fixed-4096", "tuned-out")
    if diff:
        fail(f"the tuned run's output: {diff}")
    print(f"run_tune_test: tune: {len(rows)} configurations, best {settings}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    d = tempfile.mkdtemp(prefix="sluice-tune-test-")
    try:
        write_input(os.path.join(d, "data.csv"), args.rows, seed=8)
        write_job(d)
        check_auto(sluice, d)
        check_tune(sluice, d)
    finally:
        if args.keep:
            print(f"run_tune_test: kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    print("run_tune_test: ok")


if __name__ == "__main__":
    main()
