#!/usr/bin/python3
"""Compares two Sluice stats files (e.g. scikit-learn's against `sluice fit-stats`).

    compare_stats.py EXPECTED ACTUAL [--rtol 1e-9]

Every value in EXPECTED's "features" must be in ACTUAL under the same path:
numbers within --rtol (relative; absolute for expected zeros), strings equal.
ACTUAL may hold more (counts, statistics of other transforms). Prints each
compared value's relative difference; exits 1 on the first mismatches, 2 on
unusable input. Standard library only.
"""

import argparse
import json
import sys


def flatten(node, prefix=""):
    out = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"compare_stats: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if doc.get("sluice_stats") != 1 or not isinstance(doc.get("features"), dict):
        print(f"compare_stats: {path}: not a sluice_stats 1 file", file=sys.stderr)
        sys.exit(2)
    return flatten(doc["features"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--rtol", type=float, default=1e-9)
    args = ap.parse_args()
    want, got = load(args.expected), load(args.actual)

    problems = []
    worst = 0.0
    for path, w in sorted(want.items()):
        if path not in got:
            problems.append(f"features.{path}: missing from {args.actual}")
            continue
        g = got[path]
        if isinstance(w, str) or isinstance(g, str):
            if w != g:
                problems.append(f"features.{path}: {g!r}, expected {w!r}")
            continue
        diff = abs(g - w) / (abs(w) if w != 0 else 1.0)
        worst = max(worst, diff)
        if not diff <= args.rtol:
            problems.append(f"features.{path}: {g!r}, expected {w!r} (rel diff {diff:.3g})")
    print(f"{args.actual}: {len(want)} values compared, max rel diff {worst:.3g}")
    if problems:
        print(f"FAIL: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems[:10]:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"OK (rtol {args.rtol:g})")


if __name__ == "__main__":
    main()
