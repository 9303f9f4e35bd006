#!/usr/bin/python3
"""Live metrics and progress end to end, on a job over a generated CSV scored by the fake model
with a delay per batch, so that it runs a few seconds:

- /metrics served on 127.0.0.1 (port 0: the bound address is read from the log) is scraped over
  loopback while the job runs; every scrape parses (prometheus_client's parser) and the row
  counters move; after the run the textfile out/_sluice/metrics.prom parses too and its row
  counters, rejects by reason, units and scores equal the sums of the unit markers;
- a metrics_addr already in use fails the run before anything starts (exit 2, naming the key);
- JSON logs carry the unit id as "unit" on every line about a unit;
- progress: in a pseudo-terminal the bar redraws in place ("\\r") and ends with a summary line;
  without a terminal plain lines and the summary; --quiet prints neither.

Usage: run_observe_test.py SLUICE_BINARY [--keep]
"""
import argparse
import json
import os
import pty
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from output_tree import unit_markers  # noqa: E402

ROWS = 24000
BAD_EVERY = 997  # a row with a non-numeric feature: rejected (bad_value)


def fail(msg):
    print(f"run_observe_test: {msg}", file=sys.stderr)
    sys.exit(1)


def write_input(path):
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,x\n")
        for i in range(ROWS):
            x = "oops" if i % BAD_EVERY == 5 else f"{rng.uniform(0, 400):.3f}"
            f.write(f"{i},{x}\n")


def write_job(work, name, monitoring, delay_ms=120):
    with open(os.path.join(work, "model.json"), "w") as f:
        json.dump({"sluice_fake": 1, "num_features": 1, "delay_ms": delay_ms}, f)
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(f"""input: {{path: input.csv, schema: {{id: int64, x: float64}}}}
features: [{{name: x}}]
model: {{path: model.json}}
batch: {{size: 500}}
partition: {{target_bytes: 64KiB}}
errors: {{max_rejected: 5%}}
execution: {{workers: 2}}
output: {{path: {name}.out, keys: [id]}}
monitoring: {monitoring}
""")
    return path


def parse(text, what):
    """{(name, sorted label items): value} of every sample; fails on a parse error."""
    samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    except ValueError as e:
        fail(f"{what}: not Prometheus text exposition: {e}\n{text[:2000]}")
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def check_scrapes_and_textfile(sluice, work):
    job = write_job(work, "scrape.yaml", "{metrics_addr: '127.0.0.1:0', interval: 200ms, progress: off}")
    p = subprocess.Popen([sluice, "run", job], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    address = threading.Event()
    found = {}

    def read_stderr():
        for line in p.stderr:
            lines.append(line)
            m = re.search(r"metrics: serving http://([0-9.]+:\d+)/metrics", line)
            if m:
                found["addr"] = m.group(1)
                address.set()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    if not address.wait(30):
        p.kill()
        reader.join()
        fail("no 'metrics: serving' line in the log:\n" + "".join(lines))
    url = f"http://{found['addr']}/metrics"
    rows_seen = []
    while p.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                content_type = r.headers.get("Content-Type", "")
                text = r.read().decode("utf-8")
        except OSError:
            # The run ended between the check and the request: its monitor stops serving
            # before the process exits (the report is written after), which takes a while
            # on a slow (sanitizer) build.
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise
            break
        if not content_type.startswith("text/plain"):
            fail(f"/metrics: Content-Type {content_type!r}")
        samples = parse(text, "/metrics")
        rows_seen.append(value(samples, "sluice_rows_read_total"))
        time.sleep(0.3)
    stdout = p.stdout.read()
    reader.join()
    if p.returncode != 0:
        fail(f"scrape run: exit {p.returncode}\n{stdout}{''.join(lines)}")
    if len(rows_seen) < 3:
        fail(f"only {len(rows_seen)} scrape(s) while the job ran; make the job slower")
    increases = sum(1 for a, b in zip(rows_seen, rows_seen[1:]) if b > a)
    if increases < 2 or rows_seen != sorted(rows_seen):
        fail(f"sluice_rows_read_total does not move forward while the job runs: {rows_seen}")

    out = os.path.join(work, "scrape.yaml.out")
    with open(os.path.join(out, "_sluice", "metrics.prom"), encoding="utf-8") as f:
        final = parse(f.read(), "metrics.prom")
    units = unit_markers(out)
    if len(units) < 3:
        fail(f"expected several units, got {len(units)}")
    sums = {k: sum(m[k] for m in units) for k in ("rows_in", "rows_out", "rows_rejected", "rows_filtered")}
    if sums["rows_in"] != ROWS or sums["rows_rejected"] == 0:
        fail(f"markers: {sums}")
    expected = {
        "sluice_rows_read_total": sums["rows_in"],
        "sluice_rows_written_total": sums["rows_out"],
        "sluice_rows_filtered_total": sums["rows_filtered"],
    }
    for name, want in expected.items():
        if value(final, name) != want:
            fail(f"metrics.prom: {name} = {value(final, name)}, markers say {want}")
    if total(final, "sluice_rows_rejected_total") != sums["rows_rejected"]:
        fail(f"metrics.prom: rejected {total(final, 'sluice_rows_rejected_total')} != markers {sums['rows_rejected']}")
    if value(final, "sluice_rows_rejected_total", reason="bad_value") != sums["rows_rejected"]:
        fail("metrics.prom: rejects are not all bad_value: " +
             str({k: v for k, v in final.items() if k[0] == "sluice_rows_rejected_total"}))
    if value(final, "sluice_units", state="done") != len(units) or value(final, "sluice_units", state="failed") != 0:
        fail(f"metrics.prom: units done {value(final, 'sluice_units', state='done')}, markers {len(units)}")
    if value(final, "sluice_score_count", column="score") != sums["rows_out"] + sums["rows_filtered"]:
        fail(f"metrics.prom: score count {value(final, 'sluice_score_count', column='score')}")
    batches = value(final, "sluice_batches_total")
    # Each unit's last read finds the end of its range.
    if value(final, "sluice_stage_seconds_count", stage="read") != batches + len(units):
        fail(f"metrics.prom: {value(final, 'sluice_stage_seconds_count', stage='read')} reads, "
             f"{batches} batches in {len(units)} units")
    for stage in ("preprocess", "predict", "postprocess", "write"):
        if value(final, "sluice_stage_seconds_count", stage=stage) != batches:
            fail(f"metrics.prom: stage {stage} observed {value(final, 'sluice_stage_seconds_count', stage=stage)} "
                 f"times, batches {batches}")
    if value(final, "sluice_stage_seconds_count", stage="commit") != len(units):
        fail("metrics.prom: commits != units")
    # The fake model sleeps 120 ms per call: predict time is at least that per batch.
    if value(final, "sluice_stage_seconds_sum", stage="predict") < 0.1 * batches:
        fail("metrics.prom: predict time below the model's delay")
    # Every unit reads its byte range (and the header for the schema): about the file's size.
    size = os.path.getsize(os.path.join(work, "input.csv"))
    if not size * 0.95 <= value(final, "sluice_bytes_read_total") <= size * 1.1:
        fail(f"metrics.prom: bytes read {value(final, 'sluice_bytes_read_total')}, input holds {size}")
    parts = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out) if x.startswith("part-"))
    if value(final, "sluice_bytes_written_total") != parts:
        fail(f"metrics.prom: bytes written {value(final, 'sluice_bytes_written_total')}, parts hold {parts}")
    if not value(final, "sluice_peak_resident_memory_bytes") > 0 or value(final, "sluice_batches_in_flight") != 0:
        fail("metrics.prom: resources or in-flight batches wrong")
    print(f"scrapes: {len(rows_seen)}, rows_read_total {rows_seen}; textfile equals {len(units)} markers")


def check_address_in_use(sluice, work):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        job = write_job(work, "busy.yaml", f"{{metrics_addr: '127.0.0.1:{port}'}}", delay_ms=0)
        p = subprocess.run([sluice, "run", job], cwd=work, capture_output=True, text=True)
    if p.returncode != 2 or "monitoring.metrics_addr" not in p.stderr:
        fail(f"metrics_addr in use: exit {p.returncode}, expected 2 naming monitoring.metrics_addr\n{p.stderr}")
    if os.path.exists(os.path.join(work, "busy.yaml.out", "_sluice", "units")) and \
            os.listdir(os.path.join(work, "busy.yaml.out", "_sluice", "units")):
        fail("metrics_addr in use: units ran anyway")


def check_json_logs(sluice, work):
    job = write_job(work, "json.yaml", "{log_format: json, progress: off}", delay_ms=0)
    p = subprocess.run([sluice, "run", job], cwd=work, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"json logs: exit {p.returncode}\n{p.stderr}")
    about_units = 0
    for line in p.stderr.splitlines():
        record = json.loads(line)
        m = re.match(r"unit (\d+):", record["msg"])
        if m:
            about_units += 1
            if record.get("unit") != m.group(1):
                fail(f"json logs: a line about unit {m.group(1)} carries unit {record.get('unit')!r}: {line}")
    if about_units < 3:
        fail(f"json logs: {about_units} lines about units\n{p.stderr}")


def run_in_pty(argv, cwd):
    """Runs argv with stderr on a pseudo-terminal (stdout a pipe); returns (exit, stderr bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return p.wait(), b"".join(chunks).decode("utf-8", "replace")


def check_progress(sluice, work):
    job = write_job(work, "bar.yaml", "{interval: 200ms}", delay_ms=60)
    code, tty = run_in_pty([sluice, "run", job], work)
    if code != 0:
        fail(f"progress (tty): exit {code}\n{tty}")
    # Log lines erase the bar first: each starts its own line.
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    starts = [m.start() for m in re.finditer(stamp, tty)]
    if len(starts) < 5:
        fail(f"progress (tty): expected log lines\n{tty!r}")
    for at in starts:
        before = tty[max(0, at - 4):at]
        if not (at == 0 or before.endswith("\n") or before.endswith("\r\x1b[K")):
            fail(f"progress (tty): a log line shares the bar's line: {tty[max(0, at - 80):at + 40]!r}")
    redraws = re.findall(r"\r\x1b\[K\[[# ]+\] +\d+% \S+/\S+ rows +\S+ rows/s +ETA \S+ +units \d+/\d+", tty)
    if len(redraws) < 3:
        fail(f"progress (tty): {len(redraws)} in-place redraws of the bar\n{tty!r}")
    # The terminal ends lines with "\r\n"; the summary replaces the bar on its line.
    last = tty.replace("\r\n", "\n").rstrip("\n").split("\n")[-1].split("\r")[-1]
    if not re.fullmatch(r"(?:\x1b\[K)?done: \S+ rows in \S+ \(\S+ rows/s\): .* units (\d+)/\1 done, 0 failed", last):
        fail(f"progress (tty): the output does not end with a summary line: {last!r}")

    p = subprocess.run([sluice, "run", job, "--log-level", "warn", "--set",
                        "output.path=plain.out"], cwd=work, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"progress (pipe): exit {p.returncode}\n{p.stderr}")
    plain = [line for line in p.stderr.splitlines() if line.startswith("progress: ")]
    if "\r" in p.stderr or len(plain) < 2 or not p.stderr.splitlines()[-1].startswith("done: "):
        fail(f"progress (pipe): expected plain lines and a summary\n{p.stderr!r}")

    p = subprocess.run([sluice, "run", job, "--quiet", "--log-level", "warn", "--set", "output.path=quiet.out"],
                       cwd=work, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        fail(f"progress (--quiet): exit {p.returncode}, stderr {p.stderr!r}")
    code, tty = run_in_pty([sluice, "run", job, "--quiet", "--set", "output.path=quiet_tty.out", "--log-level", "warn"],
                           work)
    if code != 0 or tty.strip():
        fail(f"progress (--quiet on a tty): exit {code}, stderr {tty!r}")
    print(f"progress: {len(redraws)} redraws on a tty, {len(plain)} plain lines without one")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    work = tempfile.mkdtemp(prefix="sluice_observe_")
    try:
        write_input(os.path.join(work, "input.csv"))
        check_scrapes_and_textfile(sluice, work)
        check_address_in_use(sluice, work)
        check_json_logs(sluice, work)
        check_progress(sluice, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("run_observe_test: ok")


if __name__ == "__main__":
    main()
