#!/usr/bin/python3
"""The peers of `make bench`: the same scoring job written as a pandas or a Dask user would write it.

    peers.py pandas|dask MODEL_KIND MODEL_DIR INPUT OUT_DIR

MODEL_KIND is logistic (MODEL_DIR/logistic.pkl: a scikit-learn Pipeline of StandardScaler and
LogisticRegression, predict_proba), xgboost (MODEL_DIR/xgboost.json: Booster.predict on a DMatrix)
or mlp (MODEL_DIR/mlp.pt: the torch state dict of the MLP that bench/run_all.py exported to ONNX;
a torch forward under no_grad, because ONNX Runtime has no Python package here). INPUT is .csv or
.jsonl (id, f0..f19); the output (id, score) goes to OUT_DIR in the same format.

pandas: read_csv / read_json(lines=True), predict on the whole frame, to_csv / to_json.
Dask: a LocalCluster of 2 single-threaded worker processes, started (and the model's library
imported in each) before the clock;
read_csv / read_json(lines=True) with blocksize 16 MB, map_partitions(score), to_csv / to_json
with one file per partition.

Prints one JSON line: {"seconds": time from model load to the last byte written (the imports
of Python packages and the cluster start are not included), "rows": rows scored, "workers_peak_rss_bytes": the sum of the Dask
worker processes' peak RSS (0 for pandas; the caller measures this process under /usr/bin/time)}.
"""

import json
import os
import pickle
import resource
import sys
import time

import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(20)]


def mlp_module():
    import torch
    return torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 1), torch.nn.Sigmoid())


def import_libraries(kind):
    """Imports the model's library before the clock starts, as a long-lived user process would have."""
    if kind == "logistic":
        import sklearn.linear_model  # noqa: F401 (unpickling needs it)
        import sklearn.pipeline  # noqa: F401
    elif kind == "xgboost":
        import xgboost  # noqa: F401
    else:
        import torch  # noqa: F401


def load_model(kind, model_dir):
    if kind == "logistic":
        with open(os.path.join(model_dir, "logistic.pkl"), "rb") as f:
            return pickle.load(f)
    if kind == "xgboost":
        import xgboost as xgb
        return xgb.Booster(model_file=os.path.join(model_dir, "xgboost.json"))
    if kind == "mlp":
        import torch
        model = mlp_module()
        model.load_state_dict(torch.load(os.path.join(model_dir, "mlp.pt")))
        model.eval()
        return model
    sys.exit(f"peers.py: unknown model kind '{kind}'")


def score(frame, kind, model):
    """The model's own Python API on one frame; returns a frame of id and score."""
    x = frame[FEATURES].to_numpy(dtype=np.float32)
    if kind == "logistic":
        p = model.predict_proba(x)[:, 1]
    elif kind == "xgboost":
        import xgboost as xgb
        p = model.predict(xgb.DMatrix(x, feature_names=FEATURES))
    else:
        import torch
        with torch.no_grad():
            p = model(torch.from_numpy(x)).numpy()[:, 0]
    return pd.DataFrame({"id": frame["id"].to_numpy(), "score": p.astype(np.float32)})


def run_pandas(kind, model_dir, path, out_dir):
    start = time.perf_counter()
    model = load_model(kind, model_dir)
    frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_json(path, lines=True)
    out = score(frame, kind, model)
    if path.endswith(".csv"):
        out.to_csv(os.path.join(out_dir, "part-0.csv"), index=False)
    else:
        out.to_json(os.path.join(out_dir, "part-0.jsonl"), orient="records", lines=True)
    return time.perf_counter() - start, len(out), 0


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_dask(kind, model_dir, path, out_dir):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(import_libraries, kind)
        start = time.perf_counter()
        model = load_model(kind, model_dir)
        if path.endswith(".csv"):
            frame = dd.read_csv(path, blocksize="16MB")
        else:
            frame = dd.read_json(path, lines=True, blocksize=16 * 1024 * 1024)
        out = frame.map_partitions(score, kind, model, meta={"id": "i8", "score": "f4"})
        if path.endswith(".csv"):
            out.to_csv(os.path.join(out_dir, "part-*.csv"), index=False)
        else:
            out.to_json(os.path.join(out_dir, "part-*.jsonl"), orient="records", lines=True)
        seconds = time.perf_counter() - start
        workers_rss = sum(client.run(peak_rss_bytes).values())
    rows = 0
    for name in os.listdir(out_dir):
        with open(os.path.join(out_dir, name), "rb") as f:
            rows += sum(1 for _ in f) - (1 if name.endswith(".csv") else 0)
    return seconds, rows, workers_rss


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("pandas", "dask"):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    engine, kind, model_dir, path, out_dir = sys.argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    import_libraries(kind)
    runner = run_pandas if engine == "pandas" else run_dask
    seconds, rows, workers_rss = runner(kind, model_dir, path, out_dir)
    print(json.dumps({"seconds": seconds, "rows": rows, "workers_peak_rss_bytes": workers_rss}))


if __name__ == "__main__":
    main()
