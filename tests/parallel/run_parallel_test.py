#!/usr/bin/python3
"""Parallel execution end to end: the same job split into many units gives byte-identical output
directories for execution.workers in {1, 2, 8} and execution.mode in {sync, async}, on CSV (quoted
newlines, doubled quotes, CRLF, bad rows) and JSON Lines; concatenated parts equal an unsplit run;
--shard runs add up to one run; output.partition_by layouts; model.route with an LRU cache of 2
equals scoring each segment alone; a small execution.memory_limit changes nothing in the output.

Usage: run_parallel_test.py SLUICE_BINARY [--rows N] [--keep]
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from output_tree import tree, tree_difference  # noqa: E402

FEATURES = ["x1", "x2", "x3", "x4"]
SEGMENTS = ["a", "b", "c", "d"]


def fail(msg):
    print(f"run_parallel_test: {msg}", file=sys.stderr)
    sys.exit(1)


def make_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        xs = [round(rng.uniform(-3, 3), 4) for _ in FEATURES]
        if rng.random() < 0.03:
            xs[rng.randrange(4)] = None  # imputed
        note = rng.choice(["plain", "with, comma", 'say "hi"', "two\nlines", "three\r\nlines\nhere", ""])
        ts = f"2024-01-{1 + (i * 7) % 28:02d}T{(i * 5) % 24:02d}:{i % 60:02d}:00Z"
        rows.append({"id": i, **dict(zip(FEATURES, xs)), "seg": SEGMENTS[i % 7 % 4] if i % 11 else "zz",
                     "note": note, "ts": ts})
    return rows


def csv_field(v):
    if v is None:
        return ""
    s = str(v)
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def write_csv(path, rows, rng):
    cols = ["id"] + FEATURES + ["seg", "note", "ts"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            line = ",".join(csv_field(r[c]) for c in cols)
            if rng.random() < 0.002:
                line = line.replace(str(r["x2"]), "oops", 1) if r["x2"] is not None else line + ",extra"
            f.write(line + ("\r\n" if rng.random() < 0.3 else "\n"))


def write_jsonl(path, rows, rng):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            if rng.random() < 0.002:
                f.write('{"id": ' + str(r["id"]) + ', "x1": \n')  # broken line
                continue
            f.write(json.dumps(r) + "\n")


def linear_model(path, coefs, intercept):
    with open(path, "w") as f:
        json.dump({"sluice_linear": 1, "feature_names": FEATURES, "coefficients": [coefs],
                   "intercepts": [intercept], "link": "logistic"}, f)


def write_job(path, input_path, out, extra=""):
    stats = ", ".join(f"{c}: {{impute: 0.25}}" for c in FEATURES)
    feats = "\n".join(f"  - {{name: {c}, impute: mean}}" for c in FEATURES)
    with open(path, "w") as f:
        f.write(f"""input: {{path: {input_path}, schema: {{id: int64, x1: float64, x2: float64, x3: float64,
         x4: float64, seg: string, note: string, ts: timestamp}}}}
features:
{feats}
stats: {{{stats}}}
model: {{path: model.json, outputs: {{score: probability}}}}
batch: {{size: 257}}
errors: {{max_rejected: 5%}}
output: {{path: {out}, keys: [id], columns: [id, score, note]}}
{extra}""")


class Runner:
    def __init__(self, sluice, work):
        self.sluice, self.work = sluice, work

    def run(self, *args, expect=0):
        p = subprocess.run([self.sluice, *args], cwd=self.work, capture_output=True, text=True)
        if p.returncode != expect:
            fail(f"sluice {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stderr}")
        return p


def same_tree(a, b, what):
    difference = tree_difference(a, b)
    if difference:
        fail(f"{what}: {difference}")
    return len(tree(a))


def data_lines(out, ext):
    """The output rows of all parts in part order (CSV headers dropped), as raw text."""
    rows = []
    for p in sorted(x for x in os.listdir(out) if x.startswith("part-")):
        with open(os.path.join(out, p), encoding="utf-8", newline="") as f:
            text = f.read()
        if ext == "csv":
            text = text.split("\n", 1)[1]
        rows.append(text)
    return "".join(rows)


def rejects(out):
    d = os.path.join(out, "_sluice", "rejects")
    got = []
    for p in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, p)) as f:
            got += [(r["line"], r["reason"]) for r in map(json.loads, f)]
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    work = tempfile.mkdtemp(prefix="sluice_parallel.")
    r = Runner(sluice, work)
    rng = random.Random(7)
    rows = make_rows(args.rows, 11)
    write_csv(os.path.join(work, "in.csv"), rows, rng)
    write_jsonl(os.path.join(work, "in.jsonl"), rows, rng)
    linear_model(os.path.join(work, "model.json"), [0.5, -0.25, 1.0, 0.125], -0.1)

    for fmt in ["csv", "jsonl"]:
        print(f"== {fmt}: workers x mode on {os.path.getsize(os.path.join(work, 'in.' + fmt))} bytes")
        write_job(os.path.join(work, f"job_{fmt}.yaml"), f"in.{fmt}", f"out_{fmt}",
                  "partition: {target_bytes: 48KiB}\n")
        plan = json.loads(r.run("plan", f"job_{fmt}.yaml", "--json").stdout)
        units = plan["units"]
        if len(units) < 20:
            fail(f"{fmt}: expected many units, got {len(units)}")
        for prev, cur in zip(units, units[1:]):
            if prev["end"] != cur["begin"]:
                fail(f"{fmt}: ranges not contiguous at unit {cur['id']}")
        base = None
        for workers in [1, 2, 8]:
            for mode in ["sync", "async"]:
                out = f"out_{fmt}_{workers}_{mode}"
                r.run("run", f"job_{fmt}.yaml", "--set", f"execution.workers={workers}", "--set",
                      f"execution.mode={mode}", "--set", f"output.path={out}")
                if base is None:
                    base = out
                    continue
                n = same_tree(os.path.join(work, base), os.path.join(work, out), f"{fmt} workers={workers} {mode}")
        print(f"   {len(units)} units; 6 runs byte-identical ({n} files each)")
        # One unit per file: the same rows and rejects in the same order.
        r.run("run", f"job_{fmt}.yaml", "--set", "partition.by=files", "--set", f"output.path=out_{fmt}_whole")
        whole = os.path.join(work, f"out_{fmt}_whole")
        split = os.path.join(work, base)
        if data_lines(whole, "csv") != data_lines(split, "csv"):
            fail(f"{fmt}: concatenated parts differ from the one-unit run")
        if rejects(whole) != rejects(split) or not rejects(whole):
            fail(f"{fmt}: rejects differ from the one-unit run: {rejects(whole)[:3]} vs {rejects(split)[:3]}")
        print(f"   concatenated parts == one-unit run ({len(rejects(whole))} rejects, same lines)")
        # Shards add up to one run.
        for i in range(3):
            r.run("run", f"job_{fmt}.yaml", "--shard", f"{i}/3", "--set", f"output.path=out_{fmt}_shards")
        same_tree(split, os.path.join(work, f"out_{fmt}_shards"), f"{fmt} --shard i/3")
        print("   --shard 0/3, 1/3, 2/3 == one run")
        # A memory limit just above what the process needs, with huge batches asked for: the
        # reader caps batches by bytes, and the output is the same. The process's own size differs
        # between builds (sanitizers), so the limit comes from the refusal of a too small one, plus
        # 6 MiB: under TSan beside other builds, that size moved by 2 MiB from one run to the next.
        mem_args = ["--set", "partition.by=files", "--set", "batch.size=1000000"]
        p = r.run("run", f"job_{fmt}.yaml", *mem_args, "--set", "execution.memory_limit=16MiB", expect=2)
        m = re.search(r"take (\d+) MiB, .* need at least (\d+) MiB more", p.stderr)
        if not m:
            fail(f"{fmt}: unexpected memory_limit refusal: {p.stderr}")
        limit = int(m.group(1)) + int(m.group(2)) + 6
        r.run("run", f"job_{fmt}.yaml", *mem_args, "--set", f"execution.memory_limit={limit}MiB",
              "--set", f"output.path=out_{fmt}_mem")
        mem = os.path.join(work, f"out_{fmt}_mem")
        if data_lines(mem, "csv") != data_lines(whole, "csv") or rejects(mem) != rejects(whole):
            fail(f"{fmt}: output with memory_limit={limit}MiB differs")
        print(f"   memory_limit {limit}MiB (just above the process's own size) == unlimited")

    print("== output.partition_by [seg, ts:day], workers 1 vs 8")
    for workers in [1, 8]:
        r.run("run", "job_csv.yaml", "--set", f"execution.workers={workers}", "--set",
              "output.partition_by=[seg, 'ts:day']", "--set", f"output.path=out_part_{workers}")
    n = same_tree(os.path.join(work, "out_part_1"), os.path.join(work, "out_part_8"), "partition_by")
    dirs = sorted(d for d in os.listdir(os.path.join(work, "out_part_1")) if "=" in d)
    if dirs != [f"seg={s}" for s in sorted(SEGMENTS + ["zz"])]:
        fail(f"partition_by: unexpected top-level directories {dirs}")
    print(f"   {n} files, byte-identical; top level {dirs}")

    print("== model.route: 3 segment models + default, cache_size 2")
    models = {"a": ([1.0, 0.0, 0.0, 0.0], 0.0), "b": ([0.0, 1.0, 0.0, 0.0], 0.5), "c": ([0.0, 0.0, 1.0, -1.0], -0.5)}
    for seg, (coefs, b) in models.items():
        linear_model(os.path.join(work, f"model_{seg}.json"), coefs, b)
    route = ("model: {path: model.json, outputs: {score: probability}, route: {by: seg, "
             "models: {a: model_a.json, b: model_b.json, c: model_c.json}, cache_size: 2}}\n")
    write_job(os.path.join(work, "job_route.yaml"), "in.csv", "out_route", "partition: {target_bytes: 48KiB}\n")
    with open(os.path.join(work, "job_route.yaml")) as f:
        text = f.read().replace("model: {path: model.json, outputs: {score: probability}}\n", route)
    with open(os.path.join(work, "job_route.yaml"), "w") as f:
        f.write(text)
    p = r.run("run", "job_route.yaml", "--set", "execution.workers=2", "--set", "output.columns=[id, score, seg]")
    if "evictions" not in p.stdout:
        fail("route: no model loads/evictions in the summary")
    print("   " + [l for l in p.stdout.splitlines() if l.startswith("workers:")][0])
    routed = read_scores(os.path.join(work, "out_route"))
    for seg in SEGMENTS + ["zz"]:
        model = f"model_{seg}.json" if seg in models else "model.json"
        r.run("run", "job_csv.yaml", "--set", f"model.path={model}", "--set", f"output.path=out_seg_{seg}",
              "--set", "output.columns=[id, score, seg]", "--set", f"output.filter=[{{column: seg, value: {seg}}}]")
        alone = read_scores(os.path.join(work, f"out_seg_{seg}"))
        got = {k: v for k, v in routed.items() if v[1] == seg}
        if got != alone or not alone:
            fail(f"route: segment {seg}: {len(got)} routed rows differ from {len(alone)} scored alone")
    print(f"   {len(routed)} rows: every segment equals its model alone")

    print("run_parallel_test: ok")
    if not args.keep:
        shutil.rmtree(work)


def read_scores(out):
    import csv
    got = {}
    for p in sorted(x for x in os.listdir(out) if x.startswith("part-")):
        with open(os.path.join(out, p), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                got[row["id"]] = (row["score"], row["seg"])
    return got


if __name__ == "__main__":
    main()
