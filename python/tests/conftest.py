"""Shared pieces of the Python package's tests: a job of many small units over a
deterministic fake model (slow when asked, so that a worker can be killed while
it runs units), the reference output of one `sluice run`, and tree comparison.

Environment (set by CTest, python/CMakeLists.txt): PYTHONPATH=<build>/python,
SLUICE_BINARY=<build>/sluice.
"""
import csv
import math
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests"))
from output_tree import tree_difference  # noqa: E402

ROWS = 3000
FEATURES = ["x1", "x2", "x3"]


@pytest.fixture(scope="session")
def sluice_binary():
    path = os.environ.get("SLUICE_BINARY", "")
    if not os.access(path, os.X_OK):
        pytest.fail(f"SLUICE_BINARY='{path}' is not the sluice binary (set by CTest)")
    return path


def bad_row(i):
    return i % 53 == 7  # x2 is not a number: rejected


def write_job(directory, delay_ms=0, extra=""):
    """A job of ~28 units (CSV split by 2 KiB ranges) in `directory`; returns its path."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "data.csv"), "w") as f:
        f.write("id," + ",".join(FEATURES) + "\n")
        for i in range(ROWS):
            xs = [f"{(i * 7) % 101 - 50:.2f}", f"{(i * 13) % 37 / 4:.3f}", f"{i % 11}"]
            if bad_row(i):
                xs[1] = "oops"
            f.write(f"{i}," + ",".join(xs) + "\n")
    with open(os.path.join(directory, "model.json"), "w") as f:
        f.write(f'{{"sluice_fake": 1, "num_features": {len(FEATURES)}, "delay_ms": {delay_ms}}}')
    job = os.path.join(directory, "job.yaml")
    with open(job, "w") as f:
        f.write(f"""input: {{path: data.csv, schema: {{x1: float64, x2: float64, x3: float64}}}}
partition: {{target_bytes: 2KiB}}
features: [{{name: x1}}, {{name: x2}}, {{name: x3}}]
model: {{path: model.json, outputs: {{score: score}}}}
batch: {{size: 50}}
errors: {{max_rejected: 5%}}
execution: {{mode: sync, workers: 1}}
output: {{path: out, keys: [id]}}
{extra}""")
    return job


def run_reference(binary, job, out):
    """One `sluice run` of the whole job into `out`."""
    p = subprocess.run([binary, "--log-level", "warn", "run", job, "--set", f"output.path={out}",
                        "--set", "execution.workers=8"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def assert_same_tree(a, b):
    difference = tree_difference(a, b)
    assert difference is None, difference


def assert_rows_exactly_once(out):
    """Every good input row is in the parts exactly once, with the fake model's score
    computed here (frac(sum x_i * (i + 1) * 0.001), src/model/fake/fake_model.h)."""
    seen = []
    for name in sorted(n for n in os.listdir(out) if n.startswith("part-")):
        with open(os.path.join(out, name), newline="") as f:
            for row in csv.DictReader(f):
                i = int(row["id"])
                seen.append(i)
                xs = [float(v) for v in (f"{(i * 7) % 101 - 50:.2f}", f"{(i * 13) % 37 / 4:.3f}", f"{i % 11}")]
                v = sum(x * (k + 1) * 0.001 for k, x in enumerate(xs))
                assert abs(float(row["score"]) - (v - math.floor(v))) < 1e-6, row
    assert seen == [i for i in range(ROWS) if not bad_row(i)]
