#!/usr/bin/python3
"""A throwaway PostgreSQL server for the tests.

PgServer runs initdb into a fresh temporary directory, starts postgres listening on 127.0.0.1 at a
free port and on a unix socket in that directory, creates one role with a password and one database,
and on stop() (or leaving the `with` block, or process exit) stops the server and removes the
directory. The server binaries come from $SLUICE_PG_BIN, else the newest /usr/lib/postgresql/*/bin.

initdb refuses to run as root: as root, the directory is owned by and the server runs as the
`postgres` user (runuser -u postgres).

Authentication (pg_hba.conf): the superuser `sluice_admin` over the unix socket with trust (for
setup); the role `sluice` over TCP with scram-sha-256 and its password, so clients must take it from
PGPASSWORD, ~/.pgpass (PGPASSFILE) or the URL.

As a library:
    with PgServer() as pg:
        pg.url()                   # postgresql://sluice@127.0.0.1:PORT/sluice_test (no password)
        pg.url(with_password=True) # ...sluice:PASSWORD@...
        pg.psql("SELECT 1")        # runs SQL as the superuser over the socket; returns stdout
        pg.create_database("x")    # a fresh database owned by `sluice`

As a command (the ctest fixture; the gtests read the state file, see postgres_test_util.h):
    pg_server.py start STATE_DIR   # starts a server, writes STATE_DIR/state.json; a stale one is stopped first
    pg_server.py stop STATE_DIR    # stops it and removes its files
    pg_server.py available         # exit 0 when server binaries exist, 1 otherwise
"""
import atexit
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ADMIN = "sluice_admin"
USER = "sluice"
PASSWORD = "pw-Sluice-7q2x"
DATABASE = "sluice_test"


def find_bin_dir():
    """The directory holding initdb/pg_ctl/postgres, or None."""
    env = os.environ.get("SLUICE_PG_BIN")
    candidates = [env] if env else []

    def version(d):
        try:
            return float(d.split("/")[-2])
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for d in candidates:
        if d and all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, base_dir=None):
        self.bin_dir = find_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl, postgres); install the "
                               "Debian package postgresql (scripts/bootstrap) or set SLUICE_PG_BIN")
        self.base_dir = base_dir
        self.dir = None
        self.port = None
        self.psql_bin = os.path.join(self.bin_dir, "psql")
        if not os.access(self.psql_bin, os.X_OK):
            self.psql_bin = shutil.which("psql")
        self._as_user = None
        self._stopped = True

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-", dir=self.base_dir)
        self._stopped = False
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                self._as_user = "postgres"
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
            pwfile = os.path.join(self.dir, "admin.pw")
            with open(pwfile, "w") as f:
                f.write("unused\n")
            if self._as_user:
                os.chown(pwfile, pwd.getpwnam(self._as_user).pw_uid, -1)
            self._run([os.path.join(self.bin_dir, "initdb"), "-D", self.data_dir, "-U", ADMIN,
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                       "--no-sync", f"--pwfile={pwfile}"])
            for attempt in range(5):
                self.port = free_port()
                options = (f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off "
                           "-c synchronous_commit=off -c max_connections=100 -c shared_buffers=32MB "
                           "-c log_min_messages=warning")
                p = self._run([os.path.join(self.bin_dir, "pg_ctl"), "start", "-w", "-t", "60", "-D",
                               self.data_dir, "-l", self.log_path, "-o", options], check=False)
                if p.returncode == 0:
                    break
                if attempt == 4:
                    raise RuntimeError(f"postgres did not start:\n{p.stdout}{p.stderr}\n{self.log()}")
            self.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'", database="postgres")
            self.create_database(DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        try:
            if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
                self._run([os.path.join(self.bin_dir, "pg_ctl"), "stop", "-D", self.data_dir, "-m", "immediate",
                           "-w", "-t", "30"], check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- access ------------------------------------------------------------------------------

    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def url(self, database=DATABASE, with_password=False, port=None):
        auth = f"{USER}:{PASSWORD}" if with_password else USER
        return f"postgresql://{auth}@127.0.0.1:{port or self.port}/{database}"

    def client_env(self, database=DATABASE):
        """Environment for libpq clients connecting as the password role (PGPASSWORD set)."""
        env = dict(os.environ)
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=USER, PGDATABASE=database,
                   PGPASSWORD=PASSWORD, PGSSLMODE="disable")
        return env

    def psql(self, sql, database=DATABASE, csv=False, check=True):
        """Runs `sql` as the superuser over the socket; returns stdout: unaligned tuples, or with
        `csv` CSV with a header line."""
        cmd = [self.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
               "-U", ADMIN, "-d", database] + (["--csv"] if csv else ["-At"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        p = subprocess.run(cmd + ["-c", sql], capture_output=True, text=True, env=env)
        if check and p.returncode != 0:
            raise RuntimeError(f"psql failed ({p.returncode}): {sql[:200]}\n{p.stderr}")
        return p.stdout

    def create_database(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")
        self.psql(f'CREATE DATABASE "{name}" OWNER {USER}', database="postgres")

    def state(self):
        return {"host": "127.0.0.1", "port": self.port, "socket_dir": self.dir, "admin": ADMIN, "user": USER,
                "password": PASSWORD, "database": DATABASE, "bin_dir": self.bin_dir, "dir": self.dir,
                "url": self.url()}

    def _run(self, cmd, check=True):
        if self._as_user:
            cmd = ["runuser", "-u", self._as_user, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd="/")
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p


def stop_state_dir(state_dir):
    """Stops the server described by STATE_DIR/state.json, if any, and removes its files."""
    path = os.path.join(state_dir, "state.json")
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return
    server = PgServer.__new__(PgServer)
    server.bin_dir = state["bin_dir"]
    server.dir = state["dir"]
    server.port = state["port"]
    server._as_user = "postgres" if os.geteuid() == 0 else None
    server._stopped = False
    server.stop()
    os.remove(path)


def main(argv):
    if len(argv) == 2 and argv[1] == "available":
        return 0 if find_bin_dir() else 1
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    state_dir = argv[2]
    os.makedirs(state_dir, exist_ok=True)
    stop_state_dir(state_dir)
    if argv[1] == "stop":
        return 0
    if find_bin_dir() is None:
        print("pg_server: no PostgreSQL server binaries; database tests will skip", file=sys.stderr)
        return 0
    server = PgServer().start()
    atexit.unregister(server.stop)  # it outlives this process until `stop`
    tmp = os.path.join(state_dir, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(server.state(), f)
    os.replace(tmp, os.path.join(state_dir, "state.json"))
    print(f"pg_server: running at {server.url()} (socket in {server.dir})")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main(sys.argv))
