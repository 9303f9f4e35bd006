#!/usr/bin/python3
"""batch.size: auto against the best fixed size `sluice tune` finds.

    bench/tune_auto.py build/sluice [--rows 1000000] [--runs 3] [--dir DIR] [--keep]

Generates (deterministically) ROWS rows of `id` + 20 float features as CSV, an XGBoost model
(tests/models/gen_xgboost_models.py: binary:logistic, 100 trees of depth 6), an ONNX MLP
20-64-64-1 (tests/models/gen_onnx_models.py: mlp.onnx) and a logistic linear model; then for each pipeline (CSV -> model -> CSV) runs `sluice tune` (default sample),
and scores the whole input RUNS times with the tuned settings and RUNS times with batch.size:
auto on the same workers x threads, alternating, and prints the best of each, the size auto
chose, and auto / tuned. The machine's load (`uptime`) is printed before and after: on a shared
machine the figures move by more than the difference being measured.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = [f"f{i}" for i in range(20)]
PIPELINES = {"linear": "linear.json", "xgboost": "models/binary.json", "mlp": "onnx/mlp.onnx"}


def sh(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"tune_auto: {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def generate(d, rows):
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, size=(rows, len(FEATURES))).astype(np.float32)
    data = np.column_stack([np.arange(1, rows + 1), x]).astype(object)
    with open(os.path.join(d, "features.csv"), "w") as f:
        f.write("id," + ",".join(FEATURES) + "\n")
        np.savetxt(f, data, fmt=["%d"] + ["%.6g"] * len(FEATURES), delimiter=",")
    sh(["/usr/bin/python3", os.path.join(HERE, "..", "tests", "models", "gen_xgboost_models.py"),
        os.path.join(d, "models")], d)
    sh(["/usr/bin/python3", os.path.join(HERE, "..", "tests", "models", "gen_onnx_models.py"),
        os.path.join(d, "onnx")], d)
    coefficients = [round(float(c), 3) for c in rng.normal(0.0, 0.5, size=len(FEATURES))]
    with open(os.path.join(d, "linear.json"), "w") as f:
        f.write('{"sluice_linear": 1, "feature_names": [%s], "coefficients": [%s], "intercepts": -0.2, '
                '"link": "logistic"}' % (", ".join(f'"{n}"' for n in FEATURES), ", ".join(map(str, coefficients))))
    features = ", ".join(f"{{name: {n}}}" for n in FEATURES)
    for name, model in PIPELINES.items():
        with open(os.path.join(d, f"{name}.yaml"), "w") as f:
            f.write(f"input: {{path: features.csv}}\nfeatures: [{features}]\nmodel: {{path: {model}}}\n"
                    f"output: {{path: out-{name}, keys: [id]}}\n")


def score(sluice, d, job, settings):
    """rows/s of one whole run (the summary's rows in / seconds), and the batch line."""
    out = os.path.join(d, "out-run")
    shutil.rmtree(out, ignore_errors=True)
    args = [sluice, "run", job, "--set", f"output.path={out}"]
    for s in settings:
        args += ["--set", s]
    p = sh(args, d)
    rows = int(re.search(r"rows: in (\d+)", p.stdout).group(1))
    seconds = float(re.search(r"; ([\d.]+) s\n", p.stdout).group(1))
    batch = re.search(r"batch (\d+) rows", p.stdout).group(1)
    shutil.rmtree(out, ignore_errors=True)
    return rows / seconds, batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    d = args.dir or tempfile.mkdtemp(prefix="sluice-tune-auto-")
    os.makedirs(d, exist_ok=True)
    try:
        if not os.path.exists(os.path.join(d, "features.csv")):
            generate(d, args.rows)
        print("load before:", sh(["uptime"], d).stdout.strip())
        print(f"{'pipeline':10} {'tuned settings':38} {'tuned rows/s':>12} {'auto rows/s':>12} "
              f"{'auto chose':>10} {'auto/tuned':>10}")
        for name in PIPELINES:
            job = f"{name}.yaml"
            tuned_file = os.path.join(d, f"{name}.tuned.yaml")
            sh([sluice, "tune", job, "--out", tuned_file], d)
            with open(tuned_file) as f:
                tuned = yaml.safe_load(f)
            fixed = [f"{section}.{key}={value}" for section, keys in tuned.items() for key, value in keys.items()]
            split = [s for s in fixed if not s.startswith("batch.")]
            best_fixed, best_auto, chose = 0.0, 0.0, []
            for _ in range(args.runs):
                best_fixed = max(best_fixed, score(sluice, d, job, fixed)[0])
                rate, batch = score(sluice, d, job, split + ["batch.size=auto"])
                best_auto = max(best_auto, rate)
                chose.append(batch)
            print(f"{name:10} {' '.join(fixed):38} {best_fixed:12.0f} {best_auto:12.0f} {'/'.join(chose):>10} "
                  f"{best_auto / best_fixed:10.2f}")
        print("load after: ", sh(["uptime"], d).stdout.strip())
    finally:
        if args.keep or args.dir:
            print(f"tune_auto: files in {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
