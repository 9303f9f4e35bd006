#!/usr/bin/python3
"""Compares a Sluice output directory with expected predictions.

    check_predictions.py EXPECTED ACTUAL_DIR [--tol 1e-5] [--key id]

EXPECTED is a CSV with a header: the key column, then the columns to check.
ACTUAL_DIR is a Sluice output directory: every part file (part-*.csv or
part-*.jsonl, also inside partition sub-directories; never under _sluice/) is
read in path order and joined with EXPECTED on the key.

Checks: every expected key appears exactly once in the output and no other key
does; each expected column exists in the output; numeric expected values match
within --tol (absolute); other values match exactly, except that an empty
expected value means "not checked" (used for labels too close to call).

Prints the number of rows and the max absolute difference of every numeric
column. Exits 0 when everything matches, 1 with the first mismatches otherwise,
2 on unusable input. Standard library only.
"""

import argparse
import csv
import json
import math
import os
import sys

MAX_REPORTED = 10


def fail(msg, code=2):
    print(f"check_predictions: {msg}", file=sys.stderr)
    sys.exit(code)


def normalize_key(value):
    """Keys compare as integers when they are integral numbers, else as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    try:
        return str(int(text))
    except ValueError:
        pass
    try:
        f = float(text)
        if math.isfinite(f) and f.is_integer():
            return str(int(f))
    except ValueError:
        pass
    return text


def as_number(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def part_files(actual_dir):
    parts = []
    for root, dirs, files in os.walk(actual_dir):
        dirs[:] = sorted(d for d in dirs if d != "_sluice")
        for name in files:
            if name.startswith("part-") and (name.endswith(".csv") or name.endswith(".jsonl")):
                parts.append(os.path.join(root, name))
    return sorted(parts, key=lambda p: os.path.relpath(p, actual_dir))


def read_parts(paths):
    """Yields (file, line, row dict) over every row of every part file."""
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            if path.endswith(".csv"):
                reader = csv.DictReader(f)
                for row in reader:
                    yield path, reader.line_num, row
            else:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        fail(f"{path}:{line_no}: invalid JSON: {e}")
                    if not isinstance(row, dict):
                        fail(f"{path}:{line_no}: not a JSON object")
                    yield path, line_no, row


def read_expected(path, key):
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or key not in reader.fieldnames:
            fail(f"{path}:1: no key column '{key}' in header")
        columns = [c for c in reader.fieldnames if c != key]
        expected = {}
        for row in reader:
            k = normalize_key(row[key])
            if k in expected:
                fail(f"{path}:{reader.line_num}: duplicate key {k}")
            expected[k] = row
    return columns, expected


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected")
    ap.add_argument("actual_dir")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--key", default="id")
    args = ap.parse_args()

    columns, expected = read_expected(args.expected, args.key)
    numeric = {c: all(as_number(r[c]) is not None or r[c] == "" for r in expected.values())
               for c in columns}
    paths = part_files(args.actual_dir)
    if not paths:
        fail(f"{args.actual_dir}: no part-*.csv or part-*.jsonl files")

    seen = {}
    problems = []
    max_diff = {c: 0.0 for c in columns if numeric[c]}
    worst = {c: None for c in columns if numeric[c]}
    rows = 0
    for path, line, row in read_parts(paths):
        rows += 1
        where = f"{os.path.relpath(path, args.actual_dir)}:{line}"
        if args.key not in row:
            fail(f"{where}: no key column '{args.key}'")
        k = normalize_key(row[args.key])
        if k in seen:
            problems.append(f"id {k}: duplicate at {where} (first at {seen[k]})")
            continue
        seen[k] = where
        exp = expected.get(k)
        if exp is None:
            problems.append(f"id {k}: unexpected at {where}")
            continue
        for c in columns:
            want = exp[c]
            if want == "":
                continue
            if c not in row:
                fail(f"{where}: no column '{c}' (output has {sorted(row)})")
            got = row[c]
            if numeric[c]:
                w, g = float(want), as_number(got)
                diff = math.inf if g is None or math.isnan(g) else abs(g - w)
                if diff > max_diff[c] or (diff == max_diff[c] and worst[c] is None):
                    max_diff[c], worst[c] = diff, k
                if not diff <= args.tol:
                    problems.append(f"id {k}: {c} = {got!r}, expected {want} "
                                    f"(|diff| {diff:.3g} > {args.tol:g}) at {where}")
            elif str(got) != want:
                problems.append(f"id {k}: {c} = {got!r}, expected {want!r} at {where}")

    missing = [k for k in expected if k not in seen]
    for k in missing[:MAX_REPORTED]:
        problems.append(f"id {k}: missing from output")

    print(f"{args.actual_dir}: {rows} rows in {len(paths)} part file(s), "
          f"{len(expected)} expected")
    for c, d in max_diff.items():
        print(f"  max |diff| {c}: {d:.3g}" + (f" (id {worst[c]})" if worst[c] else ""))
    if problems:
        total = len(problems) + max(0, len(missing) - MAX_REPORTED)
        print(f"FAIL: {total} problem(s), first ones:", file=sys.stderr)
        for p in problems[:MAX_REPORTED]:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"OK (tol {args.tol:g})")


if __name__ == "__main__":
    main()
