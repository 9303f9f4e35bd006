#!/usr/bin/python3
"""Array jobs end to end, through the scale-out examples' own command lines
(examples/scale-out/): for Slurm, a Kubernetes Indexed Job, Airflow and Kubeflow, the
example's three shard commands run at once on one fresh output directory, then its
finalize command; each output directory equals one `sluice run` of the same job byte
for byte. Also: the examples parse (bash -n, YAML, py_compile), finalize on an
incomplete directory exits 1 naming the missing units and writes nothing.

Slurm, Kubernetes, Airflow and Kubeflow are not installed here: the sbatch scripts run
under bash with the array variables set, the manifests' container commands under sh with
JOB_COMPLETION_INDEX set, and the DAG and pipeline files are executed against small
stand-ins for the airflow and kfp modules that record the tasks they declare.

Usage: run_scaleout_test.py SLUICE_BINARY [--keep]
"""
import argparse
import concurrent.futures
import os
import py_compile
import runpy
import shutil
import subprocess
import sys
import tempfile
import types

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from output_tree import tree_difference  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples", "scale-out")
JOB = os.path.join(REPO, "examples", "quickstart", "job.yaml")
SHARDS = 3


def fail(msg):
    print(f"run_scaleout_test: {msg}", file=sys.stderr)
    sys.exit(1)


def same_tree(a, b, what):
    difference = tree_difference(a, b)
    if difference:
        fail(f"{what}: {difference}")
    if not os.path.exists(os.path.join(a, "_SUCCESS")):
        fail(f"{what}: no _SUCCESS")


class Runner:
    def __init__(self, work, sluice):
        self.work = work
        bin_dir = os.path.join(work, "bin")
        os.makedirs(bin_dir)
        os.symlink(sluice, os.path.join(bin_dir, "sluice"))  # the examples call `sluice` from PATH
        self.env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], SLUICE_JOB=JOB)

    def out(self, name):
        return os.path.join(self.work, name)

    def run(self, argv, what, extra_env=None, expect=0):
        env = dict(self.env, **(extra_env or {}))
        p = subprocess.run(argv, env=env, cwd=self.work, capture_output=True, text=True)
        if p.returncode != expect:
            fail(f"{what}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
        return p

    def at_once(self, commands):
        """Runs (argv, what, extra_env) commands concurrently; all must succeed."""
        with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
            for f in [pool.submit(self.run, *c) for c in commands]:
                f.result()


def check_commands(text, what):
    for needed in ("sluice run", "--shard", "sluice finalize"):
        if needed not in text:
            fail(f"{what}: does not call '{needed}'")


def slurm(r, reference):
    d = os.path.join(EXAMPLES, "slurm")
    for name in ("shards.sbatch", "finalize.sbatch", "submit.sh"):
        r.run(["bash", "-n", os.path.join(d, name)], f"bash -n {name}")
    shards = open(os.path.join(d, "shards.sbatch")).read()
    check_commands(shards + open(os.path.join(d, "finalize.sbatch")).read(), "slurm")
    if f"#SBATCH --array=0-{SHARDS - 1}\n" not in shards:
        fail(f"slurm: shards.sbatch does not declare --array=0-{SHARDS - 1}")
    out = r.out("out_slurm")
    env = {"SLUICE_OUT": out, "SLURM_ARRAY_TASK_COUNT": str(SHARDS), "SLURM_SUBMIT_DIR": REPO}
    r.at_once([(["bash", os.path.join(d, "shards.sbatch")], f"slurm shard {i}",
                dict(env, SLURM_ARRAY_TASK_ID=str(i))) for i in range(SHARDS)])
    r.run(["bash", os.path.join(d, "finalize.sbatch")], "slurm finalize", {"SLUICE_OUT": out})
    same_tree(out, reference, "slurm")


def container_env(container, overrides):
    env = {e["name"]: str(e["value"]) for e in container.get("env", [])}
    env.update(overrides)
    return env


def kubernetes(r, reference, units):
    d = os.path.join(EXAMPLES, "kubernetes")
    with open(os.path.join(d, "indexed-job.yaml")) as f:
        shards = yaml.safe_load(f)
    with open(os.path.join(d, "finalize-job.yaml")) as f:
        finalize = yaml.safe_load(f)
    spec = shards["spec"]
    if shards["kind"] != "Job" or spec["completionMode"] != "Indexed":
        fail("kubernetes: indexed-job.yaml is not an Indexed Job")
    shard_container = spec["template"]["spec"]["containers"][0]
    finalize_container = finalize["spec"]["template"]["spec"]["containers"][0]
    count = int(container_env(shard_container, {})["SHARDS"])
    if not spec["completions"] == spec["parallelism"] == count == SHARDS:
        fail("kubernetes: completions, parallelism and SHARDS differ")
    check_commands(" ".join(shard_container["command"] + finalize_container["command"]), "kubernetes")
    if "$JOB_COMPLETION_INDEX" not in shard_container["command"][-1]:
        fail("kubernetes: the shard command does not use JOB_COMPLETION_INDEX")

    out = r.out("out_kubernetes")
    ours = {"SLUICE_JOB": JOB, "SLUICE_OUT": out}
    # Finalize before the last shard ran: exit 1, the missing units listed, nothing written.
    missing = [f"{u:05d}" for u in range(1, units, SHARDS)]
    r.at_once([(shard_container["command"], f"kubernetes index {i}",
                container_env(shard_container, dict(ours, JOB_COMPLETION_INDEX=str(i)))) for i in (0, 2)])
    p = r.run(finalize_container["command"], "kubernetes early finalize", container_env(finalize_container, ours),
              expect=1)
    listed = [line.strip().split(":")[0] for line in p.stderr.splitlines()[1:]]
    if listed != missing or os.path.exists(os.path.join(out, "_SUCCESS")):
        fail(f"kubernetes: finalize before shard 1 ran should list its units {missing}:\n{p.stderr}")
    r.run(shard_container["command"], "kubernetes index 1",
          container_env(shard_container, dict(ours, JOB_COMPLETION_INDEX="1")))
    r.run(finalize_container["command"], "kubernetes finalize", container_env(finalize_container, ours))
    same_tree(out, reference, "kubernetes")
    return len(listed)


class Recorder:
    """Stand-ins for the airflow and kfp modules: they record the tasks a file declares."""

    def __init__(self):
        self.tasks = []
        self.after = {}  # task -> tasks it runs after

    def task(self, **fields):
        recorder = self

        class Task(types.SimpleNamespace):
            def __rshift__(self, other):
                for o in other if isinstance(other, list) else [other]:
                    recorder.after.setdefault(id(o), []).append(self)
                return other

            def __rrshift__(self, others):  # [a, b] >> c
                for o in others:
                    recorder.after.setdefault(id(self), []).append(o)
                return self

            def after(self, *tasks):
                recorder.after.setdefault(id(self), []).extend(tasks)
                return self

        t = Task(**fields)
        self.tasks.append(t)
        return t

    def modules(self):
        rec = self

        class DAG:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        def bash_operator(task_id, bash_command, env=None, append_env=False, **kwargs):
            return rec.task(task_id=task_id, bash_command=bash_command, env=env or {}, append_env=append_env)

        def container_component(fn):
            def call(**kwargs):
                spec = fn(**kwargs)
                return rec.task(name=fn.__name__, command=spec.command, args=[str(a) for a in spec.args])
            return call

        airflow = types.ModuleType("airflow")
        airflow.DAG = DAG
        operators = types.ModuleType("airflow.operators")
        bash = types.ModuleType("airflow.operators.bash")
        bash.BashOperator = bash_operator
        kfp = types.ModuleType("kfp")
        dsl = types.ModuleType("kfp.dsl")
        dsl.container_component = container_component
        dsl.ContainerSpec = lambda image, command, args: types.SimpleNamespace(image=image, command=command,
                                                                              args=args)
        dsl.pipeline = lambda **kwargs: (lambda fn: fn)
        compiler = types.ModuleType("kfp.compiler")
        compiler.Compiler = object
        kfp.dsl, kfp.compiler = dsl, compiler
        return {"airflow": airflow, "airflow.operators": operators, "airflow.operators.bash": bash, "kfp": kfp,
                "kfp.dsl": dsl, "kfp.compiler": compiler}


def load_with_stand_ins(path, run_name="example"):
    recorder = Recorder()
    saved = dict(sys.modules)
    sys.modules.update(recorder.modules())
    try:
        namespace = runpy.run_path(path, run_name=run_name)
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    return recorder, namespace


def airflow(r, reference):
    path = os.path.join(EXAMPLES, "airflow", "sluice_dag.py")
    py_compile.compile(path, cfile=os.path.join(r.work, "dag.pyc"), doraise=True)
    out = r.out("out_airflow")
    os.environ.update(SLUICE_JOB=JOB, SLUICE_OUT=out)  # read when the scheduler parses the DAG
    rec, _ = load_with_stand_ins(path)
    by_id = {t.task_id: t for t in rec.tasks}
    shards = [by_id[f"shard_{i}"] for i in range(SHARDS)]
    final = by_id["finalize"]
    if sorted(by_id) != sorted([f"shard_{i}" for i in range(SHARDS)] + ["finalize"]):
        fail(f"airflow: unexpected tasks {sorted(by_id)}")
    if [id(t) for t in rec.after.get(id(final), [])] != [id(t) for t in shards]:
        fail("airflow: finalize does not run after every shard")
    check_commands(" ".join(t.bash_command for t in rec.tasks), "airflow")
    if not all(t.append_env and t.env["SLUICE_OUT"] == out for t in rec.tasks):
        fail("airflow: tasks do not pass SLUICE_JOB/SLUICE_OUT in their environment")
    r.at_once([(["bash", "-c", t.bash_command], t.task_id, t.env) for t in shards])
    r.run(["bash", "-c", final.bash_command], "airflow finalize", final.env)
    same_tree(out, reference, "airflow")


def kubeflow(r, reference):
    path = os.path.join(EXAMPLES, "kubeflow", "sluice_pipeline.py")
    py_compile.compile(path, cfile=os.path.join(r.work, "pipeline.pyc"), doraise=True)
    rec, namespace = load_with_stand_ins(path)
    out = r.out("out_kubeflow")
    namespace["sluice_quickstart"](job=JOB, out=out)
    shards = [t for t in rec.tasks if t.name == "sluice_shard"]
    finals = [t for t in rec.tasks if t.name == "sluice_finalize"]
    if len(shards) != SHARDS or len(finals) != 1:
        fail(f"kubeflow: expected {SHARDS} shard tasks and one finalize, got {[t.name for t in rec.tasks]}")
    if [id(t) for t in rec.after.get(id(finals[0]), [])] != [id(t) for t in shards]:
        fail("kubeflow: finalize does not run after every shard")
    check_commands(" ".join(" ".join(t.command) for t in rec.tasks), "kubeflow")
    r.at_once([(t.command + t.args, f"kubeflow shard {t.args[1]}", None) for t in shards])
    r.run(finals[0].command + finals[0].args, "kubeflow finalize")
    same_tree(out, reference, "kubeflow")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice_scaleout_")
    try:
        r = Runner(work, os.path.abspath(args.sluice))
        reference = r.out("reference")
        r.run(["sluice", "run", JOB, "--set", "partition.target_bytes=16KiB", "--set", f"output.path={reference}"],
              "reference run")
        units = len(os.listdir(os.path.join(reference, "_sluice", "units")))
        if units < 2 * SHARDS:
            fail(f"the reference run has {units} unit(s); the shards need more")
        slurm(r, reference)
        print(f"slurm: {SHARDS} array tasks at once, then finalize == one run ({units} units)")
        listed = kubernetes(r, reference, units)
        print(f"kubernetes: finalize without index 1 exits 1 listing its {listed} unit(s); "
              f"{SHARDS} indexes, then finalize == one run")
        airflow(r, reference)
        print(f"airflow: {SHARDS} shard tasks at once, then finalize == one run")
        kubeflow(r, reference)
        print(f"kubeflow: {SHARDS} shard components at once, then finalize == one run")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
