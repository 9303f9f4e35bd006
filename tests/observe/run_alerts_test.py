#!/usr/bin/python3
"""Alert rules and the run report end to end, on a generated CSV (about 0.1% bad rows) scored by
the fake model with a delay per batch, so that the monitor evaluates the rules while units run:

- a webhook rule POSTs its alert to an HTTP server this test runs on 127.0.0.1 (JSON body
  checked), and the report records the delivery;
- a `fail` rule on the error rate stops the job with exit 4 leaving it resumable: a second run
  without the rule completes it, and the output equals a clean run's;
- a drift test: `sluice fit-stats` writes the score reference from the unshifted input; on a
  shifted input `score_psi` fires, on the unshifted one it does not;
- the report's row accounting equals the unit markers', and report.html passes the headless
  Chromium check (tests/report/check_report_html.py).

Usage: run_alerts_test.py SLUICE_BINARY [--keep]
"""
import argparse
import http.server
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)
from output_tree import tree_difference, unit_markers  # noqa: E402

ROWS = 12000
BAD_EVERY = 997  # a non-numeric feature: rejected (error_rate about 0.001)


def fail(msg):
    print(f"run_alerts_test: {msg}", file=sys.stderr)
    sys.exit(1)


def write_input(path, shift=0.0, bad=True):
    rng = random.Random(11)
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,x\n")
        for i in range(ROWS):
            x = "oops" if bad and i % BAD_EVERY == 5 else f"{rng.uniform(0, 400) + shift:.3f}"
            f.write(f"{i},{x}\n")


class Work:
    def __init__(self, sluice, work):
        self.sluice, self.work = sluice, work
        with open(os.path.join(work, "model.json"), "w") as f:
            json.dump({"sluice_fake": 1, "num_features": 1, "delay_ms": 40}, f)

    def job(self, name, out, monitoring, input_path="input.csv", stats=""):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(f"""input: {{path: {input_path}, schema: {{id: int64, x: float64}}}}
features: [{{name: x}}]
{stats}
model: {{path: model.json}}
batch: {{size: 250}}
partition: {{target_bytes: 32KiB}}
errors: {{max_rejected: 5%}}
execution: {{workers: 2}}
output: {{path: {out}, keys: [id]}}
monitoring: {monitoring}
""")
        return name

    def run(self, *args, expect=0):
        p = subprocess.run([self.sluice, *args], cwd=self.work, capture_output=True, text=True)
        if p.returncode != expect:
            fail(f"sluice {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
        return p

    def path(self, *parts):
        return os.path.join(self.work, *parts)


def report(out):
    with open(os.path.join(out, "_sluice", "report.json")) as f:
        return json.load(f)


def check_report_accounting(out, what):
    r = report(out)
    units = unit_markers(out)
    for key in ("rows_in", "rows_out", "rows_rejected", "rows_filtered"):
        want = sum(m[key] for m in units)
        if r["totals"][key] != want:
            fail(f"{what}: report totals.{key} = {r['totals'][key]}, markers say {want}")
    if sorted(u["id"] for u in r["units"]) != sorted(m["unit"] for m in units):
        fail(f"{what}: report units {[u['id'] for u in r['units']]} != markers")
    return r


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hooks.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def check_webhook(w):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook/T0?token=secret"
        job = w.job("hook.yaml", "hook", "{interval: 100ms, progress: off, alerts: [{name: rejects_seen, "
                    f"when: 'error_rate > 0.0005', action: webhook, url: '{url}'}}]}}")
        p = w.run("run", job)
    finally:
        server.shutdown()
    if len(Hooks.received) != 1:
        fail(f"webhook: {len(Hooks.received)} POSTs received, expected 1\n{p.stderr}")
    path, content_type, body = Hooks.received[0]
    event = json.loads(body)
    with open(w.path("hook", "_sluice", "job.json")) as f:
        job_json = json.load(f)
    expected = {"name": "rejects_seen", "metric": "error_rate", "condition": "error_rate > 0.0005",
                "threshold": 0.0005, "action": "webhook", "job": "hook"}
    for key, want in expected.items():
        if event.get(key) != want:
            fail(f"webhook body: {key} = {event.get(key)!r}, expected {want!r}: {event}")
    if path != "/hook/T0?token=secret" or not content_type.startswith("application/json"):
        fail(f"webhook: POST {path} with Content-Type {content_type!r}")
    if not 0.0005 < event["value"] < 0.01 or event["at_seconds"] <= 0 or not event.get("fingerprint"):
        fail(f"webhook body: value, at_seconds or fingerprint wrong: {event}")
    if job_json.get("fingerprint", event["fingerprint"]) != event["fingerprint"]:
        fail(f"webhook body: fingerprint {event['fingerprint']} is not job.json's")
    if "alert rejects_seen fired: error_rate" not in p.stderr:
        fail(f"webhook: no alert line in the log\n{p.stderr}")
    r = check_report_accounting(w.path("hook"), "webhook run")
    alerts = r["alerts"]
    if len(alerts) != 1 or alerts[0]["name"] != "rejects_seen" or alerts[0]["delivery"] != "delivered":
        fail(f"report alerts: {alerts}")
    if "secret" in json.dumps(r):
        fail("report: the webhook URL's token is in report.json")
    print(f"webhook: 1 POST, error_rate {event['value']:.4f} at {event['at_seconds']:.2f} s, delivered")


def check_fail_and_resume(w):
    clean = w.job("clean.yaml", "clean", "{progress: off}")
    w.run("run", clean)
    failing = w.job("fail.yaml", "failing", "{interval: 100ms, progress: off, alerts: [{name: errors, "
                    "when: 'error_rate > 0.0005', action: fail}]}")
    p = w.run("run", failing, expect=4)
    out = w.path("failing")
    if "alert errors fired: error_rate" not in p.stderr or "run the same command again to resume" not in p.stderr:
        fail(f"fail rule: stderr lacks the alert or the resume hint\n{p.stderr}")
    if os.path.exists(os.path.join(out, "_SUCCESS")):
        fail("fail rule: _SUCCESS written by a run stopped by an alert")
    stopped = check_report_accounting(out, "alert-stopped run")
    if stopped["job"]["exit_code"] != 4 or [a["name"] for a in stopped["alerts"]] != ["errors"]:
        fail(f"alert-stopped report: exit {stopped['job']['exit_code']}, alerts {stopped['alerts']}")
    committed = len(unit_markers(out))
    planned = len(unit_markers(w.path("clean")))
    if committed >= planned:
        fail(f"fail rule: {committed} of {planned} units committed; the job was not stopped")
    resume = w.job("resume.yaml", "failing", "{progress: off}")
    w.run("run", resume)
    difference = tree_difference(w.path("clean"), out)
    if difference:
        fail(f"resumed after a fail rule: {difference}")
    check_report_accounting(out, "resumed run")
    print(f"fail rule: exit 4 with {committed} of {planned} units committed; resumed to the clean output")


def check_drift(w):
    write_input(w.path("shifted.csv"), shift=400.0, bad=False)
    monitoring = ("{interval: 100ms, progress: off, alerts: [{name: drift, when: 'score_psi > 0.2', action: log}, "
                  "{name: mean, when: 'score_mean > 10', action: log}]}")
    stats = "stats: stats.json"
    fit_job = w.job("fit.yaml", "unused", monitoring, stats="")
    p = w.run("fit-stats", fit_job, "--out", "stats.json")
    with open(w.path("stats.json")) as f:
        scores = json.load(f).get("scores", {})
    if "score" not in scores:
        fail(f"fit-stats wrote no score reference: {p.stdout}")
    same = w.run("run", w.job("same.yaml", "same", monitoring, stats=stats))
    if "alert drift fired" in same.stderr:
        fail(f"drift: score_psi fired on the input the reference was fitted on\n{same.stderr}")
    shifted = w.run("run", w.job("drift.yaml", "drift", monitoring, input_path="shifted.csv", stats=stats))
    if "alert drift fired: score_psi" not in shifted.stderr:
        fail(f"drift: score_psi did not fire on the shifted input\n{shifted.stderr}")
    if "alert mean fired" in shifted.stderr:
        fail("drift: score_mean > 10 fired on scores in [0, 1)")
    r = check_report_accounting(w.path("drift"), "drift run")
    psi = r["predictions"]["psi"]
    if psi is None or psi <= 0.2 or r["predictions"]["reference"] is None:
        fail(f"drift report: psi {psi}, reference {r['predictions']['reference']}")
    base = report(w.path("same"))["predictions"]["psi"]
    if base is None or base >= 0.2:
        fail(f"unshifted report: psi {base}")
    print(f"drift: psi {psi:.2f} on the shifted input (fires), {base:.4f} on the fitted one")
    return w.path("drift", "_sluice", "report.html")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice_alerts_")
    try:
        write_input(os.path.join(work, "input.csv"))
        w = Work(os.path.abspath(args.sluice), work)
        check_webhook(w)
        check_fail_and_resume(w)
        html = check_drift(w)
        # A real run's page in headless Chromium: charts drawn, no console messages (the drift run
        # has an alert and a prediction histogram with its reference; no rejects).
        p = subprocess.run(["/usr/bin/python3", os.path.join(TESTS, "report", "check_report_html.py"), html,
                            os.path.join(work, "report.png"), "--allow-empty", "chart-rejects"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"report.html in Chromium:\n{p.stdout}{p.stderr}")
        print("report.html: rendered in headless Chromium, every chart drawn")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("run_alerts_test: ok")


if __name__ == "__main__":
    main()
