"""Sluice from Python: the same C++ engine as the `sluice` command.

    import sluice
    plan = sluice.plan("job.yaml")                  # the units, and which are done
    report = sluice.run_unit("job.yaml", "00003")   # one unit, committed exactly once
    sluice.finalize(plan["output"])                 # _SUCCESS once every unit is committed

`run_unit` keeps one session per job in the process (plan, fingerprint and models
loaded once), which is what a worker that runs many units of one job wants; the
Dask runner (`sluice.dask`) is built on it. Reports are dicts with the fields of
the command's summary. Engine errors raise `sluice.Error`.

Units of one job may run in several processes and hosts at once into one output
directory (a shared POSIX filesystem: see docs/scale-out.md); a unit that runs
twice is committed once.
"""
import os
import threading


class Error(Exception):
    """An engine error, with its one-line message.

    exit_code: what the `sluice` command would exit with (1 units failed, 2 invalid
    job, spec or preflight, 3 reject limit, 130 interrupted); code: the engine's
    status code name ("invalid_argument", "not_found", "io_error", ...).
    """

    def __init__(self, message, exit_code=2, code="internal"):
        super().__init__(message, exit_code, code)
        self.message = message
        self.exit_code = exit_code
        self.code = code

    def __str__(self):
        return self.message


from . import _sluice  # noqa: E402  (the extension raises Error, defined above)


class Session(_sluice.Session):
    """A job opened once: preflight, the output directory and the models.

    Session(job, set=None, shard=None, shared=True). `set` is a list of "key=value"
    overrides (as `--set`); `shard` is "I/N". shared=True lets other processes run
    units of this job into the same output directory meanwhile (unit-level locks,
    first commit wins); shared=False holds it alone, as `sluice run`.

    plan() -> dict; run_units(ids) -> dict (the report over those units; units
    already committed are skipped); unit_ids() -> the units of the shard;
    fingerprint, output, model_loads; close() releases the directory and the models.
    Usable as a context manager.
    """

    def __init__(self, job, set=None, shard=None, shared=True):
        super().__init__(os.fspath(job), _overrides(set), shard, shared)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def plan(job, set=None, shard=None):
    """The job's units and which are committed in its output directory; loads no model.

    Returns {"format", "fingerprint", "output", "output_is_this_job", "units": [{"id",
    "path", "begin", "end", "label", "est_bytes", "est_rows", "rows_exact",
    "in_shard", "done"}, ...]}.
    """
    return _sluice.plan(os.fspath(job), _overrides(set), shard)


def finalize(out_dir):
    """Completes an output directory whose units were run apart (`sluice finalize`).

    Writes _SUCCESS when every unit of the plan recorded in job.json has a valid
    marker (and the job is within errors.max_rejected); otherwise writes nothing.
    Returns {"output", "units_total", "units_done", "missing": ["00007: pending", ...],
    "rows_in", "rows_out", "rows_rejected", "rows_filtered", "exit_code", "error"}.
    """
    return _sluice.finalize(os.fspath(out_dir))


def set_log_level(level):
    """Engine log level on stderr: trace, debug, info, warn (the default), error, off.
    Set it before running units: it replaces the engine's logger."""
    _sluice.set_log_level(level)


# Sessions of this process, by (absolute job path, overrides): run_unit reuses them.
_sessions = {}
_sessions_lock = threading.Lock()


def session(job, set=None, fingerprint=None):
    """This process's shared Session of the job, opened on first use and kept.

    With `fingerprint` (from plan()), a kept session of an older version of the job
    (spec, model or inputs changed) is closed and the job opened again; Error when
    the job on disk still differs (it changed after it was planned).
    """
    key = (os.path.abspath(os.fspath(job)), tuple(_overrides(set) or ()))
    with _sessions_lock:
        s = _sessions.get(key)
        if s is not None and not s.closed and (fingerprint is None or s.fingerprint == fingerprint):
            return s
        if s is not None:
            s.close()
            del _sessions[key]
        s = Session(key[0], list(key[1]), shared=True)
        if fingerprint is not None and s.fingerprint != fingerprint:
            found = s.fingerprint
            s.close()
            raise Error(f"job '{key[0]}' changed since it was planned (fingerprint {found[:12]}, planned "
                        f"{fingerprint[:12]}): its spec, model or inputs differ", 2, "failed_precondition")
        _sessions[key] = s
        return s


def run_unit(job, unit_id, set=None, fingerprint=None):
    """Runs one unit of the job (skipped when it is committed) and returns the report as a dict.

    The process keeps the job's session (see session()), so a process running many
    units of one job loads the model once; report["model_loads"] counts the
    session's loads. A failed unit is reported (exit_code 1, error), not raised.
    """
    return session(job, set, fingerprint).run_units([unit_id])


def close_sessions(job=None):
    """Closes this process's kept sessions (of `job`, or all): releases their models
    and the output directories' locks."""
    path = None if job is None else os.path.abspath(os.fspath(job))
    with _sessions_lock:
        for key in [k for k in _sessions if path is None or k[0] == path]:
            _sessions.pop(key).close()


def _overrides(values):
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError("set: expected a list of 'key=value' strings, not one string")
    return [str(v) for v in values]
