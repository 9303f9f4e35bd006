#!/usr/bin/python3
"""`make bench`: Sluice against its peers and its ceilings, all pipelines in one run.

    bench/run_all.py [--build DIR] [--rows N] [--jsonl-peer-rows N] [--workers W]
                     [--work DIR] [--markdown PATH] [--keep]

Deterministic: the data come from DuckDB's hash of (row, column) (no random state) and every
model is trained with a fixed seed. Steps:

1. Data: N rows (default 1M) of id + f0..f19 (float64, 6 decimals, uniform in [-5, 5)) as CSV,
   JSON Lines and Parquet (zstd), written by DuckDB (BUILD/tests/parquet/sluice_duckdb_sql);
   a label from a fixed nonlinear rule of the first five features, for training only.
2. Models, trained on the first 50k rows: logistic regression (scikit-learn StandardScaler +
   LogisticRegression, exported as Sluice's stats file + linear model: the job standardizes);
   XGBoost (python3-xgboost, 100 trees of depth 6); an MLP 20 -> 64 -> 64 -> 1 (python3-torch,
   exported to ONNX, opset 17); and for the parse + write ceiling a "constant" linear model (all
   coefficients 0, identity link, intercept 0.1234567: a score as long as a real one).
3. Measurements, page cache warm:
   - Sluice: `sluice run`, W workers (default 2), units of 16 MiB, output in the input's format;
     best wall time of 5 runs; peak RSS from /usr/bin/time -v. The runs are interleaved: each
     round runs every pipeline (the ceilings' too) once, before any peer, so a shared machine
     that speeds up or slows down during the bench moves all of Sluice's figures alike and the
     ratios between them (÷ ceiling, JSONL ÷ CSV, Parquet ÷ CSV) compare like with like.
   - pandas and Dask peers (bench/peers.py): CSV and JSONL. JSONL peers read a slice of
     --jsonl-peer-rows rows (default 100k; rows/s extrapolated, marked in the table) because
     read_json(lines=True) is slow (about 20k rows/s for pandas and Dask on a busy 2-core machine). No Parquet peers: pandas and Dask need pyarrow
     or fastparquet to read Parquet, and neither is installed.
   - Ceilings: parse + write (Sluice with the constant model, same input and output format) and
     model only (BUILD/bench/sluice_model_ceiling: the backend's Predict on an in-memory matrix
     through the Model interface, one thread per core).
4. One table on stdout, also written as markdown (--markdown, default BUILD/bench/results.md),
   with the machine (CPU model, cores, RAM) and the load average when the run started and ended.
"""

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = [f"f{i}" for i in range(20)]
TRAIN_ROWS = 50000
CONSTANT = 0.1234567
SLUICE_REPEATS = 5

# (model name, sluice kind, model file, outputs of the job, stats file or None)
MODELS = {
    "logistic": ("linear", "logistic.json", "{score: probability}", "stats.json"),
    "xgboost": ("xgboost", "xgboost.json", "{score: probability}", None),
    "mlp": ("onnx", "mlp.onnx", "{score: 'score[0]'}", None),
    "constant": ("linear", "constant.json", "{score: value}", None),
}
MODEL_LABEL = {"logistic": "standardize → logistic", "xgboost": "XGBoost 100×d6", "mlp": "ONNX MLP 20-64-64-1"}
FORMAT_LABEL = {"csv": "CSV", "jsonl": "JSONL", "parquet": "Parquet"}


def log(msg):
    print(msg, flush=True)


def fail(msg):
    sys.exit(f"run_all: {msg}")


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        fail(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def timed(cmd, cwd):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS bytes, CPU seconds, stdout)."""
    time_file = os.path.join(cwd, "time.txt")
    start = time.perf_counter()
    result = run(["/usr/bin/time", "-v", "-o", time_file] + cmd, cwd=cwd)
    seconds = time.perf_counter() - start
    rss_kb = 0
    cpu = 0.0
    with open(time_file, encoding="utf-8") as f:
        for line in f:
            if "Maximum resident set size" in line:
                rss_kb = int(line.rsplit(":", 1)[1])
            elif "User time (seconds)" in line or "System time (seconds)" in line:
                cpu += float(line.rsplit(":", 1)[1])
    return seconds, rss_kb * 1024, cpu, result.stdout


# ---- data and models ----

def generate_data(duck, work, rows, jsonl_peer_rows):
    cols = ", ".join(f"round((hash(range * 20 + {i}) % 10000000)::DOUBLE / 1e6 - 5, 6) AS f{i}" for i in range(20))
    run([duck, f"CREATE TABLE t AS SELECT range AS id, {cols} FROM range({rows})",
         "COPY t TO 'data.csv' (HEADER)",
         "COPY t TO 'data.jsonl' (FORMAT json)",
         "COPY t TO 'data.parquet' (FORMAT parquet, COMPRESSION zstd)",
         f"COPY (SELECT * FROM t WHERE id < {jsonl_peer_rows}) TO 'peer.jsonl' (FORMAT json)"], cwd=work)
    for name in ("data.csv", "data.jsonl", "data.parquet"):
        log(f"  {name}: {os.path.getsize(os.path.join(work, name)) / 1e6:.0f} MB")


def train_models(work):
    import numpy as np
    x = np.loadtxt(os.path.join(work, "data.csv"), delimiter=",", skiprows=1, max_rows=TRAIN_ROWS,
                   dtype=np.float64)[:, 1:]
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] * x[:, 3] + np.sin(x[:, 4]) > 0).astype(np.int64)

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]).fit(x, y)
    scaler, clf = pipe.named_steps["scale"], pipe.named_steps["clf"]
    write_json(os.path.join(work, "stats.json"), {"sluice_stats": 1, "features": {
        name: {"standardize": {"mean": float(scaler.mean_[i]), "std": float(scaler.scale_[i])}}
        for i, name in enumerate(FEATURES)}})
    write_json(os.path.join(work, "logistic.json"), {
        "sluice_linear": 1, "feature_names": FEATURES, "coefficients": [float(c) for c in clf.coef_[0]],
        "intercepts": float(clf.intercept_[0]), "link": "logistic"})
    with open(os.path.join(work, "logistic.pkl"), "wb") as f:
        pickle.dump(pipe, f)
    write_json(os.path.join(work, "constant.json"), {
        "sluice_linear": 1, "feature_names": FEATURES, "coefficients": [0.0] * 20, "intercepts": CONSTANT,
        "link": "identity"})

    import xgboost as xgb
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist",
                         "seed": 0, "nthread": 2, "verbosity": 0},
                        xgb.DMatrix(x.astype(np.float32), label=y, feature_names=FEATURES), num_boost_round=100)
    booster.save_model(os.path.join(work, "xgboost.json"))

    import torch
    sys.path.insert(0, HERE)
    from peers import mlp_module
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = mlp_module()
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(150):
        idx = torch.arange(step * 1024, step * 1024 + 1024) % TRAIN_ROWS
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    model.eval()
    torch.save(model.state_dict(), os.path.join(work, "mlp.pt"))
    torch.onnx.export(model, xt[:2], os.path.join(work, "mlp.onnx"), input_names=["features"],
                      output_names=["score"], opset_version=17, do_constant_folding=True,
                      dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}})
    log(f"  logistic (train accuracy {pipe.score(x, y):.3f}), xgboost, mlp (last loss {loss.item():.3f}), constant")


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


# ---- measurements ----

def write_job(work, model, fmt, workers):
    kind, path, outputs, stats = MODELS[model]
    transform = ", transform: [standardize]" if stats else ""
    features = ", ".join(f"{{name: {name}{transform}}}" for name in FEATURES)
    name = f"job_{model}_{fmt}.yaml"
    with open(os.path.join(work, name), "w", encoding="utf-8") as f:
        f.write(f"input: {{path: data.{fmt}}}\n")
        f.write("partition: {target_bytes: 16MiB}\n")
        f.write(f"features: [{features}]\n")
        if stats:
            f.write(f"stats: {stats}\n")
        f.write(f"model: {{path: {path}, kind: {kind}, outputs: {outputs}}}\n")
        f.write(f"execution: {{workers: {workers}}}\n")
        f.write(f"output: {{path: out_{model}_{fmt}, format: {fmt}, keys: [id]}}\n")
    return name


def sluice_runs(sluice, work, pipelines, workers, rows):
    """Each (model, format) of `pipelines`, best of SLUICE_REPEATS, in rounds that run every one once."""
    jobs = {p: write_job(work, *p, workers) for p in pipelines}
    best = {}
    for _ in range(SLUICE_REPEATS):
        for (model, fmt), job in jobs.items():
            shutil.rmtree(os.path.join(work, f"out_{model}_{fmt}"), ignore_errors=True)
            seconds, rss, cpu, stdout = timed([sluice, "run", job], work)
            if f"in {rows} = out {rows} " not in stdout:
                fail(f"sluice run {job}: not every row came out:\n{stdout}")
            if (model, fmt) not in best or seconds < best[(model, fmt)][0]:
                best[(model, fmt)] = (seconds, rss, cpu)
    for model, fmt in pipelines:
        shutil.rmtree(os.path.join(work, f"out_{model}_{fmt}"), ignore_errors=True)
    return {p: {"rows_per_s": rows / b[0], "rss": b[1], "rows_per_cpu_s": rows / b[2]} for p, b in best.items()}


def peer_run(engine, work, model, fmt, rows):
    out = os.path.join(work, f"peer_{engine}_{model}_{fmt}")
    shutil.rmtree(out, ignore_errors=True)
    data = "data.csv" if fmt == "csv" else "peer.jsonl"
    _, rss, _, stdout = timed([PYTHON, os.path.join(HERE, "peers.py"), engine, model, work, data, out], work)
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["rows"] != rows:
        fail(f"{engine} peer on {model}/{fmt}: {result['rows']} rows out of {rows}")
    shutil.rmtree(out, ignore_errors=True)
    return {"rows_per_s": rows / result["seconds"], "rss": rss + result["workers_peak_rss_bytes"]}


def model_ceiling(binary, work, model):
    kind, path, _, _ = MODELS[model]
    _, _, _, stdout = timed([binary, path, kind, "20", "--rows", "1000000", "--seconds", "2"], work)
    return {"rows_per_s": json.loads(stdout)["rows_per_s"]}


# ---- report ----

def machine():
    cpu = "unknown CPU"
    for line in run(["lscpu"]).stdout.splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(f.readline().split()[1])
    return f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB RAM"


def load_average():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def rate(r):
    return f"{r['rows_per_s'] / 1e6:.2f}M" if r else "n/a"


def mb(r):
    return f"{r['rss'] / 1e6:.0f} MB" if r and "rss" in r else "n/a"


def ratio(a, b):
    return f"{a['rows_per_s'] / b['rows_per_s']:.1f}×" if a and b else "n/a"


def table(results, jsonl_peer_rows):
    head = ["pipeline", "Sluice rows/s", "Sluice rows/CPU·s", "Sluice RSS", "pandas rows/s", "pandas RSS", "Dask rows/s", "Dask RSS",
            "parse+write", "model only", "÷ pandas", "÷ Dask", "÷ min(ceilings)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for (model, fmt), r in results.items():
        ceil = min((c for c in (r["parse"], r["model"]) if c), key=lambda c: c["rows_per_s"])
        mark = "*" if fmt == "jsonl" else ""
        cells = [f"{FORMAT_LABEL[fmt]} → {MODEL_LABEL[model]} → {FORMAT_LABEL[fmt]}", rate(r["sluice"]),
                 f"{r['sluice']['rows_per_cpu_s'] / 1e6:.2f}M", mb(r["sluice"]), rate(r["pandas"]) + (mark if r["pandas"] else ""), mb(r["pandas"]),
                 rate(r["dask"]) + (mark if r["dask"] else ""), mb(r["dask"]), rate(r["parse"]), rate(r["model"]),
                 ratio(r["sluice"], r["pandas"]), ratio(r["sluice"], r["dask"]), f"{r['sluice']['rows_per_s'] / ceil['rows_per_s']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"\\* JSONL peers ran on the first {jsonl_peer_rows:,} rows; their rows/s is extrapolated.",
        "Parquet peers: n/a (pandas and Dask need pyarrow or fastparquet, not installed).",
        "Peer RSS: pandas, the process; Dask, the client (with the scheduler) plus both workers' peaks.",
        "Sluice rows/CPU·s: rows over the user + system CPU time of the run (all threads); on a loaded"
        " machine it shows what the cores would do if Sluice had them to itself.",
        "MLP peers run the forward in torch (ONNX Runtime has no Python package here).",
        "parse+write: Sluice with a constant linear model (zero weights), same input and output format;"
        " model only: the backend's Predict on an in-memory matrix, one thread per core.",
    ]
    return "\n".join(lines), notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--jsonl-peer-rows", type=int, default=100000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", help="working directory (default: a new temporary one, removed after)")
    parser.add_argument("--markdown", help="where to write the table (default BUILD/bench/results.md)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sluice = os.path.join(build, "sluice")
    duck = os.path.join(build, "tests", "parquet", "sluice_duckdb_sql")
    ceiling = os.path.join(build, "bench", "sluice_model_ceiling")
    for binary in (sluice, duck, ceiling):
        if not os.access(binary, os.X_OK):
            fail(f"no {binary} (build with -DSLUICE_BUILD_BENCH=ON, or run `make bench`)")
    jsonl_peer_rows = min(args.jsonl_peer_rows, args.rows)
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="sluice-bench.")
    os.makedirs(work, exist_ok=True)
    markdown = args.markdown or os.path.join(build, "bench", "results.md")
    load_before = load_average()
    started = time.time()
    try:
        log(f"== data: {args.rows} rows in {work}")
        generate_data(duck, work, args.rows, jsonl_peer_rows)
        log("== models")
        train_models(work)
        formats = ("csv", "jsonl", "parquet")
        for name in [f"data.{fmt}" for fmt in formats] + ["peer.jsonl"]:
            with open(os.path.join(work, name), "rb") as f:  # warm the page cache
                while f.read(1 << 24):
                    pass
        log(f"== Sluice: every pipeline, {SLUICE_REPEATS} interleaved rounds")
        runs = sluice_runs(sluice, work, [(m, fmt) for fmt in formats for m in ("constant",) + tuple(MODEL_LABEL)],
                           args.workers, args.rows)
        results = {}
        for fmt in formats:
            log(f"== {FORMAT_LABEL[fmt]}")
            parse = runs[("constant", fmt)]
            log(f"  parse+write ceiling: {rate(parse)} rows/s, {mb(parse)}")
            for model in MODEL_LABEL:
                r = {"parse": parse, "model": model_ceiling(ceiling, work, model), "sluice": runs[(model, fmt)]}
                peer_rows = args.rows if fmt == "csv" else jsonl_peer_rows
                for engine in ("pandas", "dask"):
                    r[engine] = peer_run(engine, work, model, fmt, peer_rows) if fmt != "parquet" else None
                log(f"  {model}: Sluice {rate(r['sluice'])} ({mb(r['sluice'])}), pandas {rate(r['pandas'])}, "
                    f"Dask {rate(r['dask'])}, model only {rate(r['model'])}")
                results[(model, fmt)] = r
        text, notes = table(results, jsonl_peer_rows)
        header = [f"`make bench`: {args.rows:,} rows of id + 20 float64 features; Sluice with {args.workers} workers "
                  f"(best of {SLUICE_REPEATS}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
                  f"{time.time() - started:.0f} s in all.",
                  f"Machine: {machine()}. Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}."]
        out = "\n\n".join(["\n".join(header), text, "\n".join(f"- {n}" for n in notes)]) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(markdown)), exist_ok=True)
        with open(markdown, "w", encoding="utf-8") as f:
            f.write(out)
        with open(os.path.splitext(markdown)[0] + ".json", "w", encoding="utf-8") as f:
            json.dump({f"{m}/{fmt}": r for (m, fmt), r in results.items()}, f, indent=1)
        log("\n" + out)
        log(f"(written to {markdown})")
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
