"""Output directories compared file by file, and their unit markers read, in the end-to-end tests
(tests/*, python/tests)."""
import filecmp
import json
import os


def tree(d):
    """Every file under d, relative path -> path, but _sluice/job.json (it records output.path
    itself), the run locks (_sluice/lock, _sluice/locks/), the metrics textfiles and the run
    reports (_sluice/metrics*.prom, _sluice/report*.json/.html: timings and memory, different in
    every run)."""
    out = {}
    for root, _, files in os.walk(d):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), d)
            if rel == os.path.join("_sluice", "job.json") or rel.startswith(os.path.join("_sluice", "lock")):
                continue
            if rel.startswith(os.path.join("_sluice", "metrics")) and rel.endswith(".prom"):
                continue
            if rel.startswith(os.path.join("_sluice", "report")) and rel.endswith((".json", ".html")):
                continue
            out[rel] = os.path.join(root, name)
    return out


def tree_difference(a, b):
    """None when a and b hold the same files (as tree() lists them) with the same bytes; otherwise
    what differs, in one line."""
    ta, tb = tree(a), tree(b)
    if sorted(ta) != sorted(tb):
        return (f"files differ: only in {a}: {sorted(set(ta) - set(tb))[:5]}, "
                f"only in {b}: {sorted(set(tb) - set(ta))[:5]}")
    for rel in sorted(ta):
        if not filecmp.cmp(ta[rel], tb[rel], shallow=False):
            return f"{rel} differs between {a} and {b}"
    return None


def unit_markers(out):
    """The commit markers of out (_sluice/units/*.json), parsed, in unit order."""
    d = os.path.join(out, "_sluice", "units")
    markers = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                markers.append(json.load(f))
    return markers
