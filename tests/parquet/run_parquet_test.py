#!/usr/bin/python3
"""Parquet end to end through the `sluice` command line (CTest: parquet_e2e).

The same rows as CSV and as Parquet (written from the CSV by DuckDB's own writer, in 2048-row
row groups), one linear model, one job; then:
  - CSV -> Parquet, Parquet -> Parquet and Parquet -> CSV give the same predictions and
    passthrough values as CSV -> CSV, row by row (floats compared as float32, exactly);
  - the Parquet outputs keep their types: read back by DuckDB's reader through SQL
    (sluice_duckdb_sql: DESCRIBE, parquet_schema) -- not by Sluice's own source -- and checked at
    the byte level by Python (the "PAR1" magic at both ends and a footer length that fits);
  - a hive-partitioned directory (region=…/…) is detected as Parquet and its directory values are
    a feature and a key, with the predictions of the CSV path where region is a column;
  - partition.by time on a sorted timestamp: `sluice plan --json` shows every day unit reading
    only the row groups of its day (fewer rows than the file), and the run scores every row once;
  - SIGKILL at random moments of a slow Parquet -> Parquet run, resumed each time: every id
    exactly once (count(*) = count(DISTINCT id) = rows, by DuckDB), no temporaries left;
  - an empty, truncated or non-Parquet file and schema drift between files: `validate` and `run`
    exit 2 with one line naming the file, and `run` writes no output.

Usage: run_parquet_test.py SLUICE DUCKDB_SQL [--kills N] [--seed S] [--keep]
"""
import argparse
import csv
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROWS = 12000
REGIONS = ["eu", "us", "apac"]
# CSV columns and their declared types; Parquet gets the same through DuckDB casts.
COLUMNS = [("id", "int64", "BIGINT"), ("f0", "float64", "DOUBLE"), ("f1", "float64", "DOUBLE"),
           ("f2", "int64", "BIGINT"), ("seg", "string", "VARCHAR"), ("ts", "timestamp", "TIMESTAMP"),
           ("day", "date", "DATE"), ("flag", "bool", "BOOLEAN"), ("region", "string", "VARCHAR")]
OUT_COLUMNS = ["id", "score", "label", "ts", "day", "flag", "seg", "f2"]


def fail(msg):
    print(f"run_parquet_test: {msg}", file=sys.stderr)
    sys.exit(1)


def step(text):
    print(f"== {text}", flush=True)


class Env:
    def __init__(self, sluice, duck, work):
        self.sluice, self.duck, self.work = sluice, duck, work

    def sql(self, *statements):
        p = subprocess.run([self.duck, *statements], cwd=self.work, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"duckdb: {p.stderr.strip()}\n  in: {statements}")
        return [json.loads(line) for line in p.stdout.splitlines()]

    def run(self, *args, expect=0):
        p = subprocess.run([self.sluice, *args], cwd=self.work, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if expect is not None and p.returncode != expect:
            fail(f"sluice {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
        return p


def setup(env):
    rng = random.Random(7)
    with open(os.path.join(env.work, "in.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([c for c, _, _ in COLUMNS])
        for i in range(ROWS):
            minutes = i  # sorted: one row a minute from 2024-01-01, about 8.3 days
            ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1704067200 + 60 * minutes))
            w.writerow([i,
                        "" if rng.random() < 0.03 else f"{rng.uniform(-3, 3):.4f}",
                        f"{rng.uniform(0, 100):.3f}",
                        rng.randint(0, 50),
                        "" if rng.random() < 0.02 else rng.choice("abc"),
                        "" if i % 97 == 5 else ts,  # null times are rejected (no imputation)
                        ts[:10],
                        rng.choice(["true", "false"]),
                        REGIONS[i % 3]])
    casts = ", ".join(f"{c}::{duck} AS {c}" for c, _, duck in COLUMNS)
    env.sql(f"COPY (SELECT {casts} FROM read_csv('in.csv', header = true, all_varchar = true)) "
            f"TO 'in.parquet' (FORMAT parquet, ROW_GROUP_SIZE 2048)",
            "COPY (SELECT * FROM 'in.parquet') TO 'hive' (FORMAT parquet, PARTITION_BY (region), ROW_GROUP_SIZE 2048)")
    features = ["f0", "f1", "f2", "hour", "dow", "seg=a", "seg=b", "seg=c", "flag", "region=eu", "region=us"]
    with open(os.path.join(env.work, "model.json"), "w") as f:
        json.dump({"sluice_linear": 1, "feature_names": features,
                   "coefficients": [[0.7, -0.02, 0.05, 0.1, -0.2, 0.3, -0.4, 0.5, 0.25, -0.6, 0.45]],
                   "intercepts": [0.1], "link": "logistic"}, f)
    with open(os.path.join(env.work, "slow.json"), "w") as f:
        json.dump({"sluice_fake": 1, "num_features": 2, "delay_ms": 30}, f)
    schema = ", ".join(f"{c}: {t}" for c, t, _ in COLUMNS)
    for name, path, fmt, extra in [("csv_csv", "in.csv", "csv", ""), ("csv_pq", "in.csv", "parquet", ""),
                                   ("pq_pq", "in.parquet", "parquet", ""), ("pq_csv", "in.parquet", "csv", ""),
                                   ("hive_pq", "hive", "parquet", "  schema: {region: string}\n")]:
        with open(os.path.join(env.work, f"{name}.yaml"), "w") as f:
            f.write(f"""input:
  path: {path}
{f'  schema: {{{schema}}}' + chr(10) if path.endswith('.csv') else extra}partition: {{target_bytes: 16KiB}}
features:
  - {{name: f0, impute: {{constant: 0}}}}
  - {{name: f1, transform: [log1p]}}
  - {{name: f2}}
  - {{name: hour, from: ts, datetime: hour}}
  - {{name: dow, from: day, datetime: dow}}
  - {{name: seg, one_hot: [a, b, c]}}
  - {{name: flag}}
  - {{name: region, one_hot: [eu, us]}}
model: {{path: model.json, outputs: {{score: probability}}}}
errors: {{max_rejected: 5%}}
execution: {{workers: 2}}
output:
  path: out_{name}
  format: {fmt}
  keys: [id]
  columns: [{', '.join(OUT_COLUMNS)}]
  threshold: {{column: score, at: 0.5, label: label, labels: [low, high]}}
""")
    with open(os.path.join(env.work, "slow.yaml"), "w") as f:
        f.write("""input: {path: in.parquet}
partition: {target_bytes: 1}
features: [{name: f1}, {name: f2}]
model: {path: slow.json, kind: fake}
batch: {size: 256}
execution: {workers: 2}
output: {path: out_slow, format: parquet, keys: [id], columns: [id, score]}
""")


def f32(text):
    return struct.unpack("f", struct.pack("f", float(text)))[0]


def micros(text):
    """'2024-01-01T00:01:00Z' (Sluice CSV) -> epoch microseconds."""
    secs = int(time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))) - time.timezone
    return secs * 1000000


def csv_rows(env, out):
    rows = {}
    d = os.path.join(env.work, out)
    for name in sorted(os.listdir(d)):
        if name.startswith("part-"):
            with open(os.path.join(d, name), newline="") as f:
                for r in csv.DictReader(f):
                    rows[int(r["id"])] = (f32(r["score"]), r["label"], micros(r["ts"]), r["day"], r["flag"],
                                          r["seg"] or None, int(r["f2"]))
    return rows


def parquet_rows(env, out):
    check_parquet_bytes(env, out)
    rows = {}
    for r in env.sql(f"SELECT id, score, label, epoch_us(ts), day, flag, seg, f2 "
                     f"FROM read_parquet('{out}/**/*.parquet', hive_partitioning = false)"):
        rid = int(r[0])
        if rid in rows:
            fail(f"{out}: id {rid} twice")
        rows[rid] = (f32(r[1]), r[2], int(r[3]), r[4], r[5], r[6], int(r[7]))
    return rows


def check_parquet_bytes(env, out):
    """Each part is a Parquet file at the byte level: magic at both ends, a footer that fits."""
    parts = 0
    for root, _, files in os.walk(os.path.join(env.work, out)):
        for name in files:
            if ".tmp-" in name:
                fail(f"{out}: temporary left: {os.path.join(root, name)}")
            if not name.endswith(".parquet"):
                continue
            parts += 1
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            footer = struct.unpack("<I", data[-8:-4])[0]
            if data[:4] != b"PAR1" or data[-4:] != b"PAR1" or footer + 12 > len(data):
                fail(f"{out}/{name}: not a Parquet file ({len(data)} bytes, footer {footer})")
    if parts == 0:
        fail(f"{out}: no Parquet part")


def same_rows(want, got, what):
    if sorted(want) != sorted(got):
        fail(f"{what}: ids differ: {len(want)} expected, {len(got)} got")
    for rid in want:
        if want[rid] != got[rid]:
            fail(f"{what}: id {rid}: expected {want[rid]}, got {got[rid]}")


def summary_counts(p):
    line = next((l for l in p.stdout.splitlines() if l.startswith("rows:")), "")
    return line


def check_types(env, out):
    described = {r[0]: r[1] for r in env.sql(f"DESCRIBE SELECT * FROM read_parquet('{out}/*.parquet')")}
    want = {"id": "BIGINT", "score": "FLOAT", "label": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "day": "DATE",
            "flag": "BOOLEAN", "seg": "VARCHAR", "f2": "BIGINT"}
    if described != want:
        fail(f"{out}: column types {described}, expected {want}")
    logical = env.sql(f"SELECT DISTINCT logical_type FROM parquet_schema('{out}/*.parquet') WHERE name = 'ts'")
    if len(logical) != 1 or "isAdjustedToUTC=1" not in logical[0][0]:
        fail(f"{out}: ts is not a UTC timestamp: {logical}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("duckdb_sql")
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    print(f"seed {a.seed}")
    work = tempfile.mkdtemp(prefix="sluice_parquet.")
    env = Env(os.path.abspath(a.sluice), os.path.abspath(a.duckdb_sql), work)
    setup(env)

    step("CSV -> CSV (the reference), CSV -> Parquet, Parquet -> Parquet, Parquet -> CSV")
    counts = {}
    for job in ["csv_csv", "csv_pq", "pq_pq", "pq_csv"]:
        env.run("validate", f"{job}.yaml")
        counts[job] = summary_counts(env.run("run", f"{job}.yaml"))
    ref = csv_rows(env, "out_csv_csv")
    if len(ref) < ROWS * 0.95:
        fail(f"the reference scored only {len(ref)} rows")
    for job in ["csv_pq", "pq_pq", "pq_csv"]:
        got = parquet_rows(env, f"out_{job}") if job.endswith("pq") else csv_rows(env, f"out_{job}")
        same_rows(ref, got, job)
        if counts[job] != counts["csv_csv"]:
            fail(f"{job}: {counts[job]} but the CSV path has {counts['csv_csv']}")
    check_types(env, "out_csv_pq")
    check_types(env, "out_pq_pq")
    units = len(os.listdir(os.path.join(work, "out_pq_pq", "_sluice", "units")))
    print(f"   {len(ref)} rows scored alike in all four ({counts['csv_csv']}); Parquet -> Parquet in {units} units")

    step("hive-partitioned directory: region from the directories, as a feature and a key")
    p = env.run("run", "hive_pq.yaml", "--set", "output.keys=[id, region]",
                "--set", f"output.columns=[{', '.join(OUT_COLUMNS)}, region]")
    got = parquet_rows(env, "out_hive_pq")
    same_rows(ref, got, "hive")
    regions = env.sql("SELECT DISTINCT region = ['eu', 'us', 'apac'][(id % 3) + 1] FROM read_parquet('out_hive_pq/*.parquet')")
    if regions != [["true"]]:
        fail(f"hive: the region column does not follow the directories: {regions}")
    print(f"   {len(got)} rows alike; {summary_counts(p)}")

    step("partition.by time: units read only their day's row groups")
    time_args = ["--set", "partition.by=time", "--set", "partition.column=ts", "--set", "partition.window=1d"]
    plan = json.loads(env.run("plan", "pq_pq.yaml", "--json", *time_args).stdout)
    days = [u for u in plan["units"] if " in [" in u["label"]]
    if len(days) != 9 or not plan["units"][-1]["label"].endswith("ts is null"):
        fail(f"time plan: expected 9 day units and a null unit, got {[u['label'] for u in plan['units']]}")
    for u in days:
        if u["end"] - u["begin"] > 2 * 2048 or u["end"] - u["begin"] >= ROWS:
            fail(f"time plan: unit {u['id']} reads rows [{u['begin']}, {u['end']}), more than its day's row groups")
    planned = sum(u["end"] - u["begin"] for u in plan["units"])
    est = sum(u["est_rows"] for u in plan["units"])
    if abs(est - ROWS) > 20:
        fail(f"time plan: estimated rows {est}, expected about {ROWS}")
    print(f"   {len(days)} day units read {planned - (plan['units'][-1]['end'] - plan['units'][-1]['begin'])} rows in all "
          f"instead of {len(days)} x {ROWS}; estimated {est} rows")
    p = env.run("run", "pq_pq.yaml", "--set", "output.path=out_time", *time_args)
    same_rows(ref, parquet_rows(env, "out_time"), "time units")
    if summary_counts(p) != counts["csv_csv"]:
        fail(f"time units: {summary_counts(p)} but the CSV path has {counts['csv_csv']}")

    step(f"SIGKILL at {a.kills} random moments of a slow Parquet -> Parquet run, resumed each time")
    rng = random.Random(a.seed)
    t0 = time.time()
    env.run("run", "slow.yaml", "--set", "output.path=slow_ref")
    full = time.time() - t0
    kills = 0
    out = os.path.join(work, "out_slow")
    while kills < a.kills:
        proc = subprocess.Popen([env.sluice, "run", "slow.yaml"], cwd=work, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, full * 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if proc.returncode == 0:
            shutil.rmtree(out)  # finished before the kill: start over for more kills
    env.run("run", "slow.yaml")
    check_parquet_bytes(env, "out_slow")
    counts_slow = env.sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM read_parquet('out_slow/*.parquet')")
    if counts_slow != [[str(ROWS), str(ROWS), "0", str(ROWS - 1)]]:
        fail(f"after kills: count, distinct ids, min, max = {counts_slow[0]}, expected {ROWS} ids once")
    diff = env.sql("SELECT count(*) FROM (SELECT * FROM read_parquet('out_slow/*.parquet') "
                   "EXCEPT SELECT * FROM read_parquet('slow_ref/*.parquet'))")
    if diff != [["0"]]:
        fail(f"after kills: {diff[0][0]} rows differ from the uninterrupted run")
    print(f"   {kills} kills; every id exactly once, rows equal to an uninterrupted run ({full:.1f} s)")

    step("bad files: one-line preflight errors naming the file, exit 2, no output")
    bad = os.path.join(work, "bad")
    os.makedirs(bad)
    with open(os.path.join(work, "in.parquet"), "rb") as f:
        good = f.read()
    cases = {"empty.parquet": b"", "truncated.parquet": good[: len(good) // 2],
             "magic.parquet": b"id,x\n1,2\n" * 10}
    for name, data in cases.items():
        path = os.path.join(bad, name)
        with open(path, "wb") as f:
            f.write(data)
        expect_preflight_error(env, path, path)
        os.remove(path)
    env.sql(f"COPY (SELECT 1::BIGINT AS id, 'x' AS f1) TO '{bad}/a.parquet' (FORMAT parquet)",
            f"COPY (SELECT 2::BIGINT AS id, 2.5::DOUBLE AS f1) TO '{bad}/b.parquet' (FORMAT parquet)")
    expect_preflight_error(env, bad, "column 'f1' is string (VARCHAR) in")
    expect_preflight_error(env, os.path.join(bad, "missing.parquet"), "missing.parquet")
    print("   empty, truncated, not Parquet, schema drift, missing: exit 2, one line")

    if a.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    print("run_parquet_test: OK")


def expect_preflight_error(env, path, needle):
    for cmd in ("validate", "run"):
        p = env.run(cmd, "slow.yaml", "--set", f"input.path={path}", "--set", "output.path=out_bad", expect=2)
        lines = p.stderr.strip().splitlines()
        if len(lines) != 1 or needle not in lines[0]:
            fail(f"{cmd} of {path}: expected one error line with '{needle}', got:\n{p.stderr}")
    if os.path.exists(os.path.join(env.work, "out_bad")):
        fail(f"run of {path} left an output directory")


if __name__ == "__main__":
    main()
