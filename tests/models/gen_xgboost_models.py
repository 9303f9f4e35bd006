#!/usr/bin/python3
"""Generates the XGBoost reference models and predictions for Sluice's tests.

    gen_xgboost_models.py OUTDIR [--rows N] [--train-rows N] [--seed S]

Deterministic for given arguments. Trains with Debian's python3-xgboost (1.7)
on synthetic data with 20 float32 features f0..f19 (NaN in some of them) and
writes into OUTDIR:

  features.csv          id, f0..f19: the rows to score (missing = empty field;
                        one row is missing every feature)
  features.jsonl        the same rows as JSON Lines (missing = absent key on
                        even ids, null on odd ids)
  <model>.json / .ubj / .bin   each model in XGBoost's three encodings (JSON,
                        UBJSON, and the deprecated legacy binary format, which
                        save_model picks for any other extension)
  expected_<model>.csv  id, then Booster.predict of the scoring rows: the
                        main output (`probability`, `probabilities_0..k-1`,
                        `label` or `value`) and `margin` / `margin_0..k-1`
                        (output_margin=True), float32 values written exactly
  manifest.json         what the C++ test and the e2e script need: per model
                        its files, objective, output name and width, number of
                        trees and classes, and the expected CSV

Models: binary (binary:logistic), multiclass (multi:softprob, 3 classes) and
regression (reg:squarederror), each 100 rounds of depth-6 trees; plus smaller
softmax (multi:softmax), dart (binary:logistic) and gblinear (reg:squarederror)
models to cover the other output kinds and boosters.

Predictions use Booster.predict on a DMatrix of the float32 rows with
missing=NaN: the same library (libxgboost.so) that Sluice calls, so Sluice's
in-place prediction must agree to float precision (the tests allow 1e-6).

Run it with /usr/bin/python3 (Debian's python3-xgboost and numpy).
"""

import argparse
import json
import os
import sys

import numpy as np
import xgboost as xgb

NUM_FEATURES = 20
FEATURES = [f"f{i}" for i in range(NUM_FEATURES)]
NAN_FEATURES = {2: 0.10, 5: 0.05, 11: 0.20, 17: 0.02}  # feature -> fraction missing

# name -> (training parameters, rounds, encodings saved)
MODELS = {
    "binary": ({"objective": "binary:logistic"}, 100, ["json", "ubj", "bin"]),
    "multiclass": ({"objective": "multi:softprob", "num_class": 3}, 100, ["json", "ubj", "bin"]),
    "regression": ({"objective": "reg:squarederror"}, 100, ["json", "ubj", "bin"]),
    "softmax": ({"objective": "multi:softmax", "num_class": 3}, 20, ["json"]),
    "dart": ({"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.1, "seed": 3}, 20, ["ubj"]),
    "gblinear": ({"objective": "reg:squarederror", "booster": "gblinear"}, 20, ["json"]),
}
COMMON_PARAMS = {"max_depth": 6, "eta": 0.1, "tree_method": "hist", "seed": 0, "nthread": 2, "verbosity": 0}


def make_features(rng, rows, all_missing_row):
    x = rng.normal(0.0, 1.0, size=(rows, NUM_FEATURES)).astype(np.float32)
    x[:, 7] = rng.uniform(0, 100, size=rows).astype(np.float32)  # a wider range
    x[:, 8] = np.round(rng.uniform(0, 5, size=rows)).astype(np.float32)  # few distinct values
    for f, frac in NAN_FEATURES.items():
        x[rng.random(rows) < frac, f] = np.nan
    if all_missing_row is not None:
        x[all_missing_row, :] = np.nan
    return x


def make_labels(rng, x):
    z = np.nan_to_num(x, nan=0.0).astype(np.float64)
    score = z[:, 0] + z[:, 1] * z[:, 2] - 0.5 * z[:, 3] + 0.02 * z[:, 7] - 1.0 + np.sin(z[:, 4] * 2)
    noisy = score + rng.normal(0.0, 0.5, size=len(z))
    binary = (noisy > 0).astype(np.float32)
    cuts = np.quantile(noisy, [1 / 3, 2 / 3])
    multiclass = np.digitize(noisy, cuts).astype(np.float32)
    regression = (score + rng.normal(0.0, 0.2, size=len(z))).astype(np.float32)
    return binary, multiclass, regression


def fmt(v):
    """Exact text of a float32 value (Python's repr of the same double)."""
    v = float(v)
    if np.isnan(v):
        return ""
    return repr(v)


def write_features(outdir, ids, x):
    with open(os.path.join(outdir, "features.csv"), "w", encoding="utf-8") as f:
        f.write("id," + ",".join(FEATURES) + "\n")
        for i, row in zip(ids, x):
            f.write(str(i) + "," + ",".join(fmt(v) for v in row) + "\n")
    with open(os.path.join(outdir, "features.jsonl"), "w", encoding="utf-8") as f:
        for i, row in zip(ids, x):
            obj = {"id": int(i)}
            for name, v in zip(FEATURES, row):
                if np.isnan(v):
                    if i % 2:
                        obj[name] = None
                else:
                    obj[name] = float(v)
            f.write(json.dumps(obj) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--rows", type=int, default=3000, help="rows to score")
    ap.add_argument("--train-rows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=20240311)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    rng = np.random.default_rng(args.seed)
    x_train = make_features(rng, args.train_rows, None)
    labels = dict(zip(["binary", "multiclass", "regression"], make_labels(rng, x_train)))
    x_score = make_features(rng, args.rows, all_missing_row=1)
    ids = np.arange(1, args.rows + 1, dtype=np.int64)
    write_features(args.outdir, ids, x_score)

    dscore = xgb.DMatrix(x_score, missing=np.nan, feature_names=FEATURES)
    manifest = {"num_features": NUM_FEATURES, "feature_names": FEATURES, "rows": args.rows,
                "features_csv": "features.csv", "features_jsonl": "features.jsonl", "models": []}
    for name, (params, rounds, encodings) in MODELS.items():
        objective = params["objective"]
        label = labels["multiclass" if objective.startswith("multi:") else
                       "binary" if objective.startswith("binary:") else "regression"]
        dtrain = xgb.DMatrix(x_train, label=label, missing=np.nan, feature_names=FEATURES)
        booster = xgb.train({**COMMON_PARAMS, **params}, dtrain, num_boost_round=rounds)

        files = {}
        for enc in encodings:
            path = os.path.join(args.outdir, f"{name}.{enc}")
            booster.save_model(path)
            files["binary" if enc == "bin" else enc] = os.path.basename(path)

        value = booster.predict(dscore)
        margin = booster.predict(dscore, output_margin=True)
        value = value.reshape(args.rows, -1)
        margin = margin.reshape(args.rows, -1)
        if objective == "binary:logistic":
            output, dtype = "probability", "float32"
        elif objective == "multi:softprob":
            output, dtype = "probabilities", "float32"
        elif objective == "multi:softmax":
            output, dtype = "label", "int64"
        else:
            output, dtype = "value", "float32"
        width = value.shape[1]

        def names(base, k):
            return [base] if k == 1 else [f"{base}_{c}" for c in range(k)]

        value_cols, margin_cols = names(output, width), names("margin", margin.shape[1])
        expected = f"expected_{name}.csv"
        with open(os.path.join(args.outdir, expected), "w", encoding="utf-8") as f:
            f.write(",".join(["id"] + value_cols + margin_cols) + "\n")
            for i in range(args.rows):
                vals = [str(int(v)) if dtype == "int64" else fmt(v) for v in value[i]]
                f.write(",".join([str(ids[i])] + vals + [fmt(v) for v in margin[i]]) + "\n")

        config = json.loads(booster.save_config())
        gb = config["learner"]["gradient_booster"]
        tree_param = gb.get("gbtree_model_param") or gb.get("gbtree", {}).get("gbtree_model_param")
        manifest["models"].append({
            "name": name,
            "objective": objective,
            "booster": gb["name"],
            "files": files,
            "output": output,
            "output_type": dtype,
            "width": width,
            "margin_width": int(margin.shape[1]),
            "num_classes": int(params.get("num_class", 0)),
            "num_boosted_rounds": booster.num_boosted_rounds(),
            "num_trees": int(tree_param["num_trees"]) if tree_param else 0,
            "expected": expected,
            "value_columns": value_cols,
            "margin_columns": margin_cols,
        })

    with open(os.path.join(args.outdir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    print(f"gen_xgboost_models: {len(manifest['models'])} models, {args.rows} rows in {args.outdir}")


if __name__ == "__main__":
    sys.exit(main())
