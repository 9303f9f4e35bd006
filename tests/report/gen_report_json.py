#!/usr/bin/python3
"""Writes a synthetic run report, OUT_DIR/_sluice/report.json, in the layout of
src/observe/report.h: eight units, a minute of throughput, every stage, a batch
latency histogram, a prediction histogram with a reference, rejects, alerts.
Names carry markup so that the rendered page shows whether text is escaped.

usage: gen_report_json.py OUT_DIR
"""
import json
import math
import os
import sys

LATENCY_BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


def quantile(bounds, counts, q):
    """Prometheus' histogram_quantile, as HistogramData::Quantile."""
    total = sum(counts)
    rank = q * total
    below = 0
    for i, c in enumerate(counts):
        if c == 0 or below + c < rank:
            below += c
            continue
        if i == len(bounds):
            return bounds[-1]
        lo = min(0.0, bounds[0]) if i == 0 else bounds[i - 1]
        return lo + (bounds[i] - lo) * (rank - below) / c
    return bounds[-1]


def histogram(bounds, counts):
    return {"p50": quantile(bounds, counts, 0.5), "p90": quantile(bounds, counts, 0.9),
            "p99": quantile(bounds, counts, 0.99), "bounds": bounds, "counts": counts}


def main():
    out = sys.argv[1]
    units = []
    for i in range(8):
        rows_in = 250000 + 1000 * i
        rejected = 3 * i
        filtered = 10 * i
        units.append({"id": f"{i:05d}", "input": f"data/part-{i}<&>.csv", "rows_in": rows_in,
                      "rows_out": rows_in - rejected - filtered, "rows_rejected": rejected,
                      "rows_filtered": filtered, "files": [f"part-{i:05d}.csv"],
                      "seconds": None if i == 0 else 6.5 + 0.25 * i})
    throughput = []
    rows = 0
    for t in range(1, 61):
        rate = 34000 + 6000 * math.sin(t / 6.0)
        rows = min(rows + int(rate), sum(u["rows_in"] for u in units))
        throughput.append({"seconds": float(t), "rows_in": rows, "rows_out": rows - rows // 1000,
                           "rows_per_sec": rate, "rss_bytes": (180 + t) << 20})
    stages = {}
    for k, name in enumerate(["read", "preprocess", "predict", "postprocess", "write", "commit"]):
        counts = [0] * (len(LATENCY_BOUNDS) + 1)
        counts[5 + k % 3] = 400
        counts[6 + k % 3] = 90
        stages[name] = {"seconds": [12.5, 8.1, 30.2, 4.4, 9.7, 0.6][k], "count": 490,
                        "p50": quantile(LATENCY_BOUNDS, counts, 0.5), "p90": quantile(LATENCY_BOUNDS, counts, 0.9),
                        "p99": quantile(LATENCY_BOUNDS, counts, 0.99)}
    batch_counts = [0, 0, 0, 0, 0, 3, 40, 200, 180, 60, 6, 1, 0, 0, 0, 0, 0, 0, 0]
    edges = [0.05, 0.11, 0.18, 0.26, 0.35, 0.45, 0.57, 0.7, 0.84]
    reference = [0.1] * 10
    counts = [900, 950, 1000, 1040, 1000, 980, 1010, 1100, 1200, 1820]
    total = sum(counts)
    psi = sum((max(c / total, 1e-4) - e) * math.log(max(c / total, 1e-4) / e) for c, e in zip(counts, reference))
    report = {
        "sluice_report": 1,
        "job": {"name": "scoring <demo> & co", "spec": {"input": {"path": "data/*.csv"}},
                "monitoring": {"log_format": "text", "metrics_addr": None, "progress": "auto", "interval_ms": 5000,
                               "alerts": [{"name": "drift", "when": "score_psi > 0.1", "for_ms": 0,
                                           "action": "webhook", "url": "https://hooks.example.com/…"}]},
                "fingerprint": "3f" * 32, "model_sha256": "a1" * 32,
                "started": "2026-11-24T03:00:00Z", "finished": "2026-11-24T03:01:00Z", "seconds": 60.0,
                "exit_code": 0, "error": ""},
        "totals": {"rows_in": sum(u["rows_in"] for u in units), "rows_out": sum(u["rows_out"] for u in units),
                   "rows_rejected": sum(u["rows_rejected"] for u in units),
                   "rows_filtered": sum(u["rows_filtered"] for u in units), "rows_sampled_out": 0,
                   "units_total": 8, "units_done": 8, "units_failed": 0, "units_skipped": 1, "parts": 8},
        "units": units,
        "stages": stages,
        "latency": {"batch": histogram(LATENCY_BOUNDS, batch_counts)},
        "throughput": throughput,
        "predictions": {"column": "score", "bounds": edges, "counts": counts, "mean": 0.41, "count": total,
                        "reference": reference, "psi": psi},
        "rejects": {"by_reason": {"bad_number": 60, "missing_value": 20, "<script>alert(1)</script>": 4}},
        "alerts": [{"name": "drift", "metric": "score_psi", "condition": "score_psi > 0.1", "value": psi,
                    "threshold": 0.1, "action": "webhook", "at_seconds": 42.0, "delivery": "delivered"}],
        "resources": {"peak_rss_bytes": 241 << 20, "cpu_seconds": 118.5, "workers": 2, "model_threads": 1,
                      "model_loads": 1, "model_evictions": 0, "retries": {"io_error": 2}},
    }
    os.makedirs(os.path.join(out, "_sluice"), exist_ok=True)
    with open(os.path.join(out, "_sluice", "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
