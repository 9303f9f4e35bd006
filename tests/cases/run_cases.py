#!/usr/bin/python3
"""Data-driven end-to-end cases for the `sluice` CLI.

Each folder here holds a job (job.yaml plus its inputs and model) and case.json with what must
happen:
  {
    "runs": [                          # commands run in order, in a scratch copy of the folder
      {"args": ["run", "job.yaml"],    # sluice arguments
       "exit": 0,                      # expected exit code
       "stderr": ["substring", ...],   # each must appear in stderr (optional)
       "stdout": ["substring", ...]}   # each must appear in stdout (optional)
    ],
    "output": "out",                   # output directory, relative to the case folder
    "output_exists": true,             # false: the run must not have created it
    "success": true,                   # whether out/_SUCCESS must exist
    "rows": {"in": 10, "out": 8, "rejected": 2, "filtered": 0},   # summed over unit markers
    "ids": [1, 2, 3],                  # the "id" column of all parts, in part order
    "columns": ["id", "score"],        # header of the parts (CSV) / keys (JSONL)
    "values": {"label": ["0", "1"]},   # a column's values, in order, as text
    "rejects": [{"line": 3, "reason": "ragged_row", "column": "x"}]   # in order; keys optional
  }
Usage: run_cases.py SLUICE_BINARY [CASE ...]
"""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def read_parts(out_dir):
    parts = sorted(p for p in glob.glob(os.path.join(out_dir, "part-*")))
    rows, header = [], None
    for part in parts:
        with open(part, newline="", encoding="utf-8") as f:
            if part.endswith(".csv"):
                reader = csv.reader(f)
                header = next(reader)
                rows += [dict(zip(header, r)) for r in reader]
            else:
                for line in f:
                    obj = json.loads(line)
                    header = list(obj.keys())
                    rows.append({k: "" if v is None else (json.dumps(v) if isinstance(v, bool) else str(v))
                                 for k, v in obj.items()})
    return header, rows


def check_case(sluice, name):
    src = os.path.join(HERE, name)
    with open(os.path.join(src, "case.json")) as f:
        spec = json.load(f)
    errors = []
    with tempfile.TemporaryDirectory(prefix="sluice-case-") as tmp:
        work = os.path.join(tmp, name)
        shutil.copytree(src, work)
        for i, run in enumerate(spec["runs"]):
            proc = subprocess.run([sluice] + run["args"], cwd=work, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=120)
            where = f"run {i} ({' '.join(run['args'])})"
            if proc.returncode != run["exit"]:
                errors.append(f"{where}: exit {proc.returncode}, expected {run['exit']}; stderr: {proc.stderr.strip()}")
            for s in run.get("stderr", []):
                if s not in proc.stderr:
                    errors.append(f"{where}: stderr lacks {s!r}; got: {proc.stderr.strip()}")
            for s in run.get("stdout", []):
                if s not in proc.stdout:
                    errors.append(f"{where}: stdout lacks {s!r}; got: {proc.stdout.strip()}")
        out = os.path.join(work, spec.get("output", "out"))
        if "output_exists" in spec and os.path.exists(out) != spec["output_exists"]:
            errors.append(f"output dir exists={os.path.exists(out)}, expected {spec['output_exists']}")
        if "success" in spec and os.path.exists(os.path.join(out, "_SUCCESS")) != spec["success"]:
            errors.append(f"_SUCCESS exists={not spec['success']}, expected {spec['success']}")
        if "rows" in spec:
            totals = {"in": 0, "out": 0, "rejected": 0, "filtered": 0}
            for marker in glob.glob(os.path.join(out, "_sluice", "units", "*.json")):
                with open(marker) as f:
                    m = json.load(f)
                for k in totals:
                    totals[k] += m["rows_" + k]
            if totals != spec["rows"]:
                errors.append(f"rows {totals}, expected {spec['rows']}")
        if any(k in spec for k in ("ids", "columns", "values")):
            header, rows = read_parts(out)
            if "columns" in spec and header != spec["columns"]:
                errors.append(f"columns {header}, expected {spec['columns']}")
            if "ids" in spec:
                ids = [int(r["id"]) for r in rows]
                if ids != spec["ids"]:
                    errors.append(f"ids {ids}, expected {spec['ids']}")
            for col, want in spec.get("values", {}).items():
                got = [r.get(col) for r in rows]
                if got != want:
                    errors.append(f"column {col}: {got}, expected {want}")
        if "rejects" in spec:
            got = []
            for path in sorted(glob.glob(os.path.join(out, "_sluice", "rejects", "*.jsonl"))):
                with open(path, encoding="utf-8") as f:
                    got += [json.loads(line) for line in f]
            if len(got) != len(spec["rejects"]):
                errors.append(f"{len(got)} rejects, expected {len(spec['rejects'])}: {got}")
            for want, have in zip(spec["rejects"], got):
                for k, v in want.items():
                    if have.get(k) != v:
                        errors.append(f"reject {want}: has {k}={have.get(k)!r}")
    return errors


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    sluice = os.path.abspath(sys.argv[1])
    names = sys.argv[2:] or sorted(d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "case.json")))
    failed = 0
    for name in names:
        errors = check_case(sluice, name)
        print(f"{'ok  ' if not errors else 'FAIL'} {name}")
        for e in errors:
            print(f"     {e}")
        failed += bool(errors)
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
