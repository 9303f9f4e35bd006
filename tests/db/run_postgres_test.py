#!/usr/bin/python3
"""End-to-end tests of `sluice run` with PostgreSQL (issue 6), against a throwaway server
(pg_server.py), with psql as the independent reader of what Sluice wrote:

  - PostgreSQL -> PostgreSQL, CSV -> PostgreSQL and PostgreSQL -> CSV give the predictions, keys,
    passthrough values and row accounting of the same job on CSV (CSV -> CSV); column types kept;
  - partition.by time / column / hash on a PostgreSQL input: every row once, same predictions;
  - random SIGKILLs during a run into PostgreSQL, resumed each time: every id exactly once
    (count(*) = count(DISTINCT id) = rows_in), predictions as without kills;
  - a connection cut during COPY (a TCP proxy in front of the server) is retried;
  - a connection lost after COMMIT was sent (the proxy forwards COMMIT, then drops the client
    before the reply) does not duplicate the unit: the retry finds the progress row;
  - upsert and overwrite through the CLI;
  - a missing table, a failing query, an unreachable server: exit 2 at preflight, one line naming
    the table or query and the redacted URL;
  - a URL with a password never appears in logs, job.json, markers, rejects or errors.
  - Parquet -> PostgreSQL: case_parquet_to_postgres, enabled with --parquet (needs the Parquet
    source and sink of the same issue).

Usage: run_postgres_test.py SLUICE [--kills N] [--seed S] [--parquet] [--keep]
"""
import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_server import PgServer  # noqa: E402

ROWS = 6000
NULL_X1 = {i for i in range(ROWS) if i % 500 == 7}  # rejected (missing_value) where x1 is a feature
MERCHANTS = ["grocery", "travel", "online", "o'brien \"quoted\"", None]


def fail(msg):
    print(f"run_postgres_test: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- data and jobs --------------------------------------------------------------------------------

def make_rows():
    rng = random.Random(11)
    rows = []
    for i in range(ROWS):
        x1 = None if i in NULL_X1 else f"{rng.uniform(-2, 2):.4f}"
        x2 = f"{rng.uniform(0, 5):.3f}"
        merchant = MERCHANTS[i % len(MERCHANTS)]
        ts = f"2024-01-{1 + (i * 7) % 9:02d}T{(i * 13) % 24:02d}:{i % 60:02d}:00.{i % 1000:03d}Z"
        rows.append((i, x1, x2, merchant, ts))
    rng.shuffle(rows)  # the table's physical order is not the id order
    return rows


def write_inputs(work, pg, rows):
    with open(os.path.join(work, "in.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "x1", "x2", "merchant", "ts"])
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    pg.psql("CREATE TABLE events (id bigint PRIMARY KEY, x1 double precision, x2 real, merchant text, "
            "ts timestamptz); ALTER TABLE events OWNER TO sluice")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    p = subprocess.run([pg.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.dir, "-p", str(pg.port), "-U",
                        "sluice_admin", "-d", "sluice_test", "-c", "COPY events FROM STDIN WITH (FORMAT csv)"],
                       input=buf.getvalue(), capture_output=True, text=True)
    check(p.returncode == 0, f"loading events: {p.stderr}")
    pg.psql("ANALYZE events")
    with open(os.path.join(work, "model.json"), "w") as f:
        json.dump({"sluice_linear": 1, "feature_names": ["x1", "x2"], "coefficients": [[0.7, -0.3]],
                   "intercepts": [0.05], "link": "logistic"}, f)
    # A slow model (the fake backend sleeps per call), so that kills land in the middle of runs.
    with open(os.path.join(work, "slow.json"), "w") as f:
        json.dump({"sluice_fake": 1, "num_features": 2, "delay_ms": 40}, f)


def write_job(path, input_yaml, output_yaml, model="model.json", extra=""):
    linear = model == "model.json"
    features = "[{name: x1}, {name: x2}]" if linear else "[{name: x1, impute: {constant: 0}}, {name: x2}]"
    model_yaml = f"{{path: {model}, outputs: {{score: probability}}}}" if linear else f"{{path: {model}}}"
    with open(path, "w") as f:
        f.write(f"""input: {input_yaml}
features: {features}
model: {model_yaml}
batch: {{size: 128}}
execution: {{workers: 2, retries: {{max_attempts: 5, initial_backoff: 1ms, max_backoff: 20ms}}}}
errors: {{max_rejected: 100}}
output: {output_yaml}
{extra}""")


class Runner:
    def __init__(self, sluice, work, pg):
        self.sluice, self.work, self.pg = sluice, work, pg
        self.transcripts = []  # every stdout/stderr, for the password check

    def run(self, job, *args, expect=0, env=None):
        p = subprocess.run([self.sluice, "run", job, *args], cwd=self.work, capture_output=True, text=True,
                           env=env or self.pg.client_env(), stdin=subprocess.DEVNULL)
        self.transcripts.append(p.stdout + p.stderr)
        if expect is not None and p.returncode != expect:
            fail(f"sluice run {job} {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
        return p


def summary(p):
    """(rows_in, rows_out, rejected) from the run's summary line."""
    for line in p.stdout.splitlines():
        if line.startswith("rows: in "):
            parts = line.replace("=", "").replace("+", "").split()
            return int(parts[2]), int(parts[4]), int(parts[6])
    fail(f"no summary line in:\n{p.stdout}")


# ---- reading results independently -----------------------------------------------------------------

def csv_parts(out):
    """{id: row dict} of every part file in `out` (each id once)."""
    rows = {}
    for name in sorted(os.listdir(out)):
        if not name.startswith("part-"):
            continue
        with open(os.path.join(out, name), newline="") as f:
            for r in csv.DictReader(f):
                check(r["id"] not in rows, f"{out}: id {r['id']} twice")
                rows[r["id"]] = r
    return rows


def csv_lines(out):
    """Data lines of every part file in `out`, sorted (the exact text Sluice wrote)."""
    lines = []
    for name in sorted(os.listdir(out)):
        if name.startswith("part-"):
            with open(os.path.join(out, name)) as f:
                lines += f.read().splitlines()[1:]
    return sorted(lines)


def table(pg, sql):
    return list(csv.DictReader(io.StringIO(pg.psql(sql, csv=True))))


def f32(text):
    return struct.unpack("f", struct.pack("f", float(text)))[0]


def micros(iso):
    """Microseconds since the epoch of an ISO 8601 UTC timestamp as Sluice writes it ('…Z')."""
    from datetime import datetime, timezone
    d = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return (int(d.replace(microsecond=0).timestamp()) * 1000000) + d.microsecond


def check_table_against(pg, tbl, ref, what, passthrough=True):
    """Table `tbl` holds exactly the reference rows: ids once, scores (float32) and passthrough equal."""
    counts = table(pg, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {tbl}")[0]
    check(int(counts["n"]) == len(ref) and int(counts["d"]) == len(ref),
          f"{what}: {counts['n']} rows, {counts['d']} distinct ids; expected {len(ref)} once each")
    cols = "id, score" + (", merchant, (extract(epoch FROM ts) * 1000000)::int8 AS ts_us, x2" if passthrough else "")
    for r in table(pg, f"SELECT {cols} FROM {tbl}"):
        e = ref.get(r["id"])
        check(e is not None, f"{what}: unexpected id {r['id']}")
        check(f32(r["score"]) == f32(e["score"]), f"{what}: id {r['id']} score {r['score']} != {e['score']}")
        if passthrough:
            check(r["merchant"] == e["merchant"], f"{what}: id {r['id']} merchant {r['merchant']!r} != {e['merchant']!r}")
            check(int(r["ts_us"]) == micros(e["ts"]), f"{what}: id {r['id']} ts {r['ts_us']} != {e['ts']}")
            check(f32(r["x2"]) == f32(e["x2"]), f"{what}: id {r['id']} x2 {r['x2']} != {e['x2']}")


def column_types(pg, tbl):
    return pg.psql(f"SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
                   f"FROM pg_attribute WHERE attrelid = '{tbl}'::regclass AND attnum > 0 AND NOT attisdropped").strip()


# ---- a TCP proxy that breaks connections on cue ------------------------------------------------------

class FaultProxy:
    """Forwards 127.0.0.1:port to the server. Reads the client's protocol messages so it can act on
    them: `cut_copy` = ordinals of COPYs (counted over all connections) whose first CopyData is
    dropped with both sockets; `lose_commit` = ordinals of COMMITs of connections that ran a COPY,
    which are forwarded to the server, after which the client is disconnected before the reply."""

    def __init__(self, upstream_port, cut_copy=(), lose_commit=()):
        self.upstream_port = upstream_port
        self.cut_copy, self.lose_commit = set(cut_copy), set(lose_commit)
        self.copies = self.commits = self.faults = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            mute = threading.Event()  # set: the server's answers are dropped
            threading.Thread(target=self._pump, args=(server, client, mute), daemon=True).start()
            threading.Thread(target=self._client_to_server, args=(client, server, mute), daemon=True).start()

    @staticmethod
    def _pump(src, dst, mute):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not mute.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _read(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _client_to_server(self, client, server, mute):
        copying, copy_ordinal = False, 0
        try:
            while True:  # untyped: SSLRequest / GSSENCRequest, then the startup message
                head = self._read(client, 4)
                body = self._read(client, struct.unpack("!i", head)[0] - 4)
                server.sendall(head + body)
                if struct.unpack("!i", body[:4])[0] not in (80877103, 80877104):
                    break
            while True:
                kind = self._read(client, 1)
                head = self._read(client, 4)
                body = self._read(client, struct.unpack("!i", head)[0] - 4)
                msg = kind + head + body
                if kind == b"Q":
                    sql = body.rstrip(b"\0").decode(errors="replace").strip().upper()
                    if sql.startswith("COPY "):
                        with self.lock:
                            self.copies += 1
                            copy_ordinal = self.copies
                        copying = True
                    elif sql == "COMMIT" and copying:
                        with self.lock:
                            self.commits += 1
                            lose = self.commits in self.lose_commit
                            self.faults += lose
                        if lose:
                            mute.set()  # before the server can answer
                            server.sendall(msg)
                            client.shutdown(socket.SHUT_RDWR)
                            client.close()
                            time.sleep(0.5)  # the server commits; its answer goes nowhere
                            server.close()
                            return
                elif kind == b"d" and copy_ordinal in self.cut_copy:
                    with self.lock:
                        self.cut_copy.discard(copy_ordinal)
                        self.faults += 1
                    raise EOFError
                server.sendall(msg)
        except (EOFError, OSError):
            pass
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


# ---- cases ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--parquet", action="store_true", help="also Parquet -> PostgreSQL (needs the Parquet source/sink)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    print(f"seed {a.seed}")
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="sluice_pg_e2e.")
    with PgServer() as pg:
        try:
            run_cases(os.path.abspath(a.sluice), work, pg, rng, a)
        except BaseException:
            print(f"server log (tail):\n{pg.log()[-3000:]}\nwork directory kept: {work}", file=sys.stderr)
            raise
    if a.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("run_postgres_test: OK")


def run_cases(sluice, work, pg, rng, a):
    rows = make_rows()
    write_inputs(work, pg, rows)
    r = Runner(sluice, work, pg)
    url, secret_url = pg.url(), pg.url(with_password=True)
    cols = "[id, merchant, ts, x2, score]"

    print("== reference: the same job on CSV")
    write_job(os.path.join(work, "ref.yaml"), "{path: in.csv}", f"{{path: ref, keys: [id], columns: {cols}}}")
    ref_run = r.run("ref.yaml")
    ref = csv_parts(os.path.join(work, "ref"))
    ref_summary = summary(ref_run)
    check(ref_summary == (ROWS, ROWS - len(NULL_X1), len(NULL_X1)), f"reference summary {ref_summary}")

    print("== PostgreSQL -> PostgreSQL (URLs with the password)")
    write_job(os.path.join(work, "pg2pg.yaml"), f'{{path: "{secret_url}", table: events}}',
              f'{{path: "{secret_url}", table: preds, keys: [id], columns: {cols}, state_dir: st_pg2pg}}',
              extra="partition: {target_bytes: 32KiB}\n")
    env = pg.client_env()
    del env["PGPASSWORD"]  # the URL's password is the one used
    p = r.run("pg2pg.yaml", env=env)
    check(summary(p) == ref_summary, f"pg2pg summary {summary(p)} != {ref_summary}")
    units = len(os.listdir(os.path.join(work, "st_pg2pg", "_sluice", "units")))
    check(units >= 5, f"pg2pg: only {units} units")
    check_table_against(pg, "preds", ref, "pg2pg")
    types = column_types(pg, "preds")
    check(types == "id bigint, merchant text, ts timestamp with time zone, x2 real, score real", f"types: {types}")
    rej = [json.loads(l) for f in os.listdir(os.path.join(work, "st_pg2pg", "_sluice", "rejects"))
           for l in open(os.path.join(work, "st_pg2pg", "_sluice", "rejects", f))]
    check(sorted(x["reason"] for x in rej) == ["missing_value"] * len(NULL_X1), f"pg2pg rejects: {rej[:3]}")
    print(f"   {units} units; same predictions, passthrough and rejects as CSV; types: {types}")

    print("== CSV -> PostgreSQL, PostgreSQL -> CSV")
    write_job(os.path.join(work, "csv2pg.yaml"), "{path: in.csv}",
              f'{{path: "{url}", table: preds_from_csv, keys: [id], columns: {cols}, state_dir: st_csv2pg}}')
    check(summary(r.run("csv2pg.yaml")) == ref_summary, "csv2pg summary")
    check_table_against(pg, "preds_from_csv", ref, "csv2pg")
    write_job(os.path.join(work, "pg2csv.yaml"), f'{{path: "{url}", table: events}}',
              f"{{path: pg2csv, keys: [id], columns: {cols}}}", extra="partition: {target_bytes: 32KiB}\n")
    check(summary(r.run("pg2csv.yaml")) == ref_summary, "pg2csv summary")
    check(csv_lines(os.path.join(work, "pg2csv")) == csv_lines(os.path.join(work, "ref")),
          "pg2csv: the CSV text differs from the CSV path's")
    print("   identical predictions; PostgreSQL -> CSV writes the very lines of CSV -> CSV")

    print("== partition.by time / column / hash on PostgreSQL")
    for by, extra in [("time", "partition: {by: time, column: ts, window: 1d}"),
                      ("column", "partition: {by: column, column: merchant}"),
                      ("hash", "partition: {by: hash, column: id, buckets: 7}"),
                      ("query", None)]:
        inp = f'{{path: "{url}", table: events}}'
        if by == "query":
            inp = f'{{path: "{url}", query: "SELECT * FROM events WHERE id >= 0;"}}'
            extra = "partition: {column: id, target_bytes: 64KiB}"
        write_job(os.path.join(work, f"by_{by}.yaml"), inp, f"{{path: by_{by}, keys: [id], columns: {cols}}}",
                  extra=extra + "\n")
        check(summary(r.run(f"by_{by}.yaml")) == ref_summary, f"by {by} summary")
        check(csv_lines(os.path.join(work, f"by_{by}")) == csv_lines(os.path.join(work, "ref")), f"by {by}: rows differ")
        n = len(os.listdir(os.path.join(work, f"by_{by}", "_sluice", "units")))
        print(f"   by {by}: {n} units, same rows as CSV")

    print("== upsert and overwrite")
    write_job(os.path.join(work, "upsert.yaml"), f'{{path: "{url}", table: events}}',
              f'{{path: "{url}", table: preds_upsert, keys: [id], columns: [id, score], mode: upsert, state_dir: st_up}}')
    pg.psql("CREATE TABLE preds_upsert (id bigint PRIMARY KEY, score double precision, note text DEFAULT 'kept'); "
            "INSERT INTO preds_upsert VALUES (1, -1, 'old'), (-5, -1, 'other'); ALTER TABLE preds_upsert OWNER TO sluice")
    r.run("upsert.yaml")
    got = table(pg, "SELECT count(*) AS n, sum((score = -1)::int) AS old, min(id) AS lo FROM preds_upsert")[0]
    check(got == {"n": str(ROWS - len(NULL_X1) + 1), "old": "1", "lo": "-5"}, f"upsert: {got}")
    check(table(pg, "SELECT note FROM preds_upsert WHERE id = 1")[0]["note"] == "old", "upsert touched a column not written")
    write_job(os.path.join(work, "overwrite.yaml"), f'{{path: "{url}", table: events}}',
              f'{{path: "{url}", table: preds_upsert, keys: [id], columns: [id, score], mode: overwrite, state_dir: st_ow}}')
    r.run("overwrite.yaml")
    check(table(pg, "SELECT count(*) AS n, min(id) AS lo FROM preds_upsert")[0] == {"n": str(ROWS - len(NULL_X1)), "lo": "0"},
          "overwrite did not replace the table")
    r.run("overwrite.yaml")  # the same job again: nothing is done twice, nothing lost
    check(table(pg, "SELECT count(*) AS n FROM preds_upsert")[0]["n"] == str(ROWS - len(NULL_X1)), "overwrite rerun")
    print("   upsert replaced rows on the keys and kept others; overwrite emptied the table once")

    case_kills(r, pg, work, rng, a.kills)
    case_faults(r, pg, work, ref)
    case_preflight(r, pg, work)
    if a.parquet:
        case_parquet_to_postgres(r, pg, work, ref, ref_summary)
    else:
        print("== Parquet -> PostgreSQL: skipped (run with --parquet once the Parquet source and sink are in)")

    print("== no password anywhere")
    secret = pg.state()["password"]
    leaks = [t for t in r.transcripts if secret in t]
    check(not leaks, f"the password appears in sluice's output:\n{leaks[0][:2000] if leaks else ''}")
    for root, _, files in os.walk(work):
        for name in files:
            path = os.path.join(root, name)
            if path.endswith(".yaml"):
                continue  # the jobs themselves hold the URL as the user wrote it
            with open(path, "rb") as f:
                check(secret.encode() not in f.read(), f"the password appears in {path}")
    markers = pg.psql("SELECT string_agg(marker, '') FROM sluice_units")
    check(secret not in markers and "***" in markers, "the password appears in sluice_units markers")
    print(f"   not in {len(r.transcripts)} runs' output, the state directories, or sluice_units")


def case_kills(r, pg, work, rng, kills):
    print(f"== SIGKILL at {kills} random moments into PostgreSQL, resumed each time")
    url = pg.url()
    write_job(os.path.join(work, "slow_ref.yaml"), "{path: in.csv}", "{path: slow_ref, keys: [id], columns: [id, score]}",
              model="slow.json")
    t0 = time.time()
    r.run("slow_ref.yaml")
    full = time.time() - t0
    ref = csv_parts(os.path.join(work, "slow_ref"))
    # A run that completes between kills ends a round: its table is checked and the next kills go
    # to a new table and state directory.
    done, rounds = 0, 0
    while done < kills:
        rounds += 1
        name = f"killed{rounds}"
        write_job(os.path.join(work, f"{name}.yaml"), f'{{path: "{url}", table: events}}',
                  f'{{path: "{url}", table: {name}, keys: [id], columns: [id, score], state_dir: st_{name}}}',
                  model="slow.json", extra="partition: {target_bytes: 16KiB}\n")
        while done < kills:
            p = subprocess.Popen([r.sluice, "run", f"{name}.yaml"], cwd=work, env=pg.client_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, full))
            killed = p.poll() is None
            if killed:
                p.send_signal(signal.SIGKILL)
                done += 1
            p.wait()
            if not killed:
                break
        p = r.run(f"{name}.yaml")
        rows_in, rows_out, rejected = summary(p)
        got = table(pg, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {name}")[0]
        committed_in = pg.psql(f"SELECT sum((marker::json->>'rows_in')::int) FROM sluice_units "
                               f"WHERE tbl = '{name}' AND unit <> ''").strip()
        check(int(got["n"]) == int(got["d"]) == rows_in == ROWS == int(committed_in) and rejected == 0,
              f"{name}: count {got['n']}, distinct {got['d']}, rows_in {rows_in}, markers {committed_in}")
        check_table_against(pg, name, ref, f"after kills ({name})", passthrough=False)
    units = pg.psql("SELECT count(*) FROM sluice_units WHERE tbl = 'killed1'").strip()
    print(f"   {kills} kills in {rounds} round(s) of {units} units; count(*) = count(DISTINCT id) = rows_in = {ROWS}; "
          "predictions as CSV")


def proxied_run(r, pg, work, name, proxy):
    """Runs a PostgreSQL -> PostgreSQL job into table `name` whose output connection goes through `proxy`."""
    try:
        write_job(os.path.join(work, f"{name}.yaml"), f'{{path: "{pg.url()}", table: events}}',
                  f'{{path: "{pg.url(port=proxy.port)}", table: {name}, keys: [id], '
                  f'columns: [id, merchant, ts, x2, score], state_dir: st_{name}}}',
                  extra="partition: {target_bytes: 32KiB}\n")
        return r.run(f"{name}.yaml")
    finally:
        proxy.close()


def case_faults(r, pg, work, ref):
    print("== a connection cut during COPY is retried")
    proxy = FaultProxy(pg.port, cut_copy=(2, 5))
    p = proxied_run(r, pg, work, "cut", proxy)
    check(proxy.faults == 2, f"the proxy cut {proxy.faults} COPYs, expected 2")
    retries = [l for l in p.stdout.splitlines() if l.startswith("retries:")]
    check(retries and "unavailable 2" in retries[0], f"no retries counted:\n{p.stdout}\n{p.stderr}")
    check_table_against(pg, "cut", ref, "cut COPY")
    print(f"   2 COPYs cut, {retries[0]}; every row once")

    print("== a connection lost after COMMIT was sent does not duplicate the unit")
    proxy = FaultProxy(pg.port, lose_commit=(3,))
    p = proxied_run(r, pg, work, "lost", proxy)
    check(proxy.faults == 1, f"the proxy dropped {proxy.faults} COMMIT answers, expected 1")
    check("already committed" in p.stderr, f"the retry did not find the committed unit:\n{p.stderr}")
    check_table_against(pg, "lost", ref, "lost COMMIT")
    print("   the retry hit the progress row and discarded its rows; every row once")


def case_preflight(r, pg, work):
    print("== preflight errors: exit 2, one line naming the table or query and the redacted URL")
    secret_url = pg.url(with_password=True)
    shown = secret_url.replace(pg.state()["password"], "***")
    dead = f"postgresql://sluice:{pg.state()['password']}@127.0.0.1:1/x"
    cases = [
        ("missing table", f'{{path: "{secret_url}", table: nope}}', f"input.table 'nope' in {shown}"),
        ("failing query", f'{{path: "{secret_url}", query: "SELECT 1/0 AS x1, 2 AS x2, 3 AS id"}}',
         f"input.query in {shown}: division by zero"),
        ("unreachable server", f'{{path: "{dead}", table: events}}',
         "input.path: cannot connect to " + dead.replace(pg.state()["password"], "***")),
    ]
    for what, inp, expected in cases:
        write_job(os.path.join(work, "bad.yaml"), inp, "{path: bad_out, keys: [id]}")
        p = r.run("bad.yaml", expect=2)
        err = p.stderr.strip().splitlines()
        check(len(err) == 1 and expected in err[0], f"{what}: expected one line with {expected!r}, got:\n{p.stderr}")
        print(f"   {what}: {err[0][:150]}")
    write_job(os.path.join(work, "bad.yaml"), f'{{path: "{pg.url()}", table: events}}',
              f'{{path: "{secret_url}", table: events, keys: [id], columns: [id, score], state_dir: bad_out}}')
    p = r.run("bad.yaml", expect=2)
    check("column 'score'" in p.stderr and shown in p.stderr, f"incompatible output table:\n{p.stderr}")
    print(f"   incompatible output table: {p.stderr.strip()[:150]}")


def case_parquet_to_postgres(r, pg, work, ref, ref_summary):
    """Parquet -> PostgreSQL: the CSV input written as Parquet by Sluice's own Parquet sink (every
    column passed through), then the reference job scored from those files into PostgreSQL."""
    print("== Parquet -> PostgreSQL")
    with open(os.path.join(work, "fast1.json"), "w") as f:
        json.dump({"sluice_fake": 1, "num_features": 1}, f)
    with open(os.path.join(work, "to_parquet.yaml"), "w") as f:
        f.write("""input: {path: in.csv}
features: [{name: x2}]
model: {path: fast1.json}
output: {path: parquet_in, format: parquet, keys: [id], columns: [id, x1, x2, merchant, ts]}
""")
    r.run("to_parquet.yaml")
    write_job(os.path.join(work, "pq2pg.yaml"), "{path: 'parquet_in/part-*.parquet'}",
              f'{{path: "{pg.url()}", table: preds_from_parquet, keys: [id], columns: [id, merchant, ts, x2, score], '
              f'state_dir: st_pq2pg}}')
    check(summary(r.run("pq2pg.yaml")) == ref_summary, "parquet -> postgres summary")
    check_table_against(pg, "preds_from_parquet", ref, "parquet -> postgres")
    print("   same predictions, passthrough and rejects as CSV")


if __name__ == "__main__":
    main()
