#!/usr/bin/python3
"""Generates a scikit-learn reference case for Sluice's end-to-end test.

    gen_sklearn_reference.py OUTDIR [--rows N] [--seed S] [--train-fraction F]

Deterministic for a given (rows, seed). Writes into OUTDIR:

  data.csv, data.jsonl        the same rows twice: CSV (missing = empty field, ts in
                              ISO 8601 UTC) and JSON Lines (missing = absent key on
                              some rows, null on the others)
  train.csv                   the training rows only (the first --train-fraction of
                              data.csv), for checking `sluice fit-stats` against
                              the exported statistics
  stats.json, model.json      binary case, exported from the fitted sklearn Pipeline
  job_csv.yaml, job_jsonl.yaml  Sluice jobs scoring data.csv / data.jsonl with them
  expected.csv                id, score = predict_proba[:, 1] (repr precision)
  stats_multiclass.json, model_multiclass.json, job_multiclass.yaml,
  expected_multiclass.csv     3-class softmax case: id, proba_0..proba_2 and the
                              argmax label (empty where the top two probabilities
                              are too close to call, which the checker skips)

The pipelines are fitted on the first --train-fraction of the rows and score all
of them. Every statistic Sluice needs is read back from the fitted objects
(SimpleImputer.statistics_, StandardScaler.mean_/scale_, MinMaxScaler.data_min_/
data_max_, OneHotEncoder.categories_, LogisticRegression.coef_/intercept_), so the
test checks Sluice against scikit-learn, not against a second hand-written copy of
the same arithmetic.

Run it with /usr/bin/python3 (Debian's python3-sklearn, numpy, pandas).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MinMaxScaler, OneHotEncoder,
                                   StandardScaler)

# Categories the models know. The data also holds merchants outside this list
# ("pharmacy", "gaming"), which one-hot encode to all zeros on both sides.
KNOWN_MERCHANTS = ["grocery", "travel", "online", "restaurant", "fuel"]
ALL_MERCHANTS = KNOWN_MERCHANTS + ["pharmacy", "gaming"]
MERCHANT_P = [0.30, 0.12, 0.25, 0.14, 0.11, 0.05, 0.03]

TIER_LABELS = ["low", "medium", "high"]

# Multiclass case: clip bounds for score_a (before min-max scaling) and constants.
CLIP_MIN, CLIP_MAX = -2.5, 2.5
AGE_CONSTANT = 35.0
MERCHANT_CONSTANT = "grocery"

# A label whose top two probabilities differ by less than this is not checked:
# float32 arithmetic in the engine may legitimately pick the other class.
LABEL_MARGIN = 1e-4

COLUMNS = ["id", "ts", "amount", "age", "score_a", "score_b", "merchant", "is_fraud", "tier"]
SCHEMA_YAML = ("{id: int64, ts: timestamp, amount: float64, age: float64, score_a: float64, "
               "score_b: float64, merchant: string, is_fraud: int64, tier: int64}")


def make_data(rows, seed):
    """Returns a DataFrame of realistic card transactions; NaN marks missing values."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1_000_001, 1_000_001 + rows, dtype=np.int64)
    # Timestamps: integer seconds over 60 days from 2024-01-01T00:00:00Z.
    epoch0 = 1_704_067_200
    epoch = epoch0 + rng.integers(0, 60 * 86400, size=rows, dtype=np.int64)
    amount = np.round(rng.lognormal(mean=3.6, sigma=1.1, size=rows), 2)
    amount = np.maximum(amount, 0.01)
    age = np.round(np.clip(rng.normal(42.0, 13.0, size=rows), 18, 90), 0)
    score_a = np.round(rng.normal(0.0, 1.0, size=rows), 4)
    score_b = np.round(rng.beta(2.0, 5.0, size=rows) * 100.0, 3)
    merchant = rng.choice(np.array(ALL_MERCHANTS, dtype=object), size=rows, p=MERCHANT_P)

    hour = (epoch // 3600) % 24
    night = ((hour <= 5) | (hour >= 23)).astype(float)
    merchant_risk = np.select([merchant == "online", merchant == "travel",
                               merchant == "gaming"], [0.8, 0.5, 1.0], 0.0)
    logit = (-3.0 + 0.55 * (np.log1p(amount) - 3.6) - 0.02 * (age - 42.0) + 0.7 * score_a
             + 0.015 * (score_b - 28.0) + 0.9 * night + merchant_risk
             + rng.normal(0.0, 0.5, size=rows))
    is_fraud = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    value = (np.log1p(amount) + 0.03 * (age - 42.0) + 0.4 * score_a - 0.01 * score_b
             + np.where(merchant == "travel", 0.8, 0.0) + rng.normal(0.0, 0.6, size=rows))
    tier = np.digitize(value, np.quantile(value, [0.45, 0.8])).astype(np.int64)

    # Missing values, drawn after the targets so they do not leak into them.
    amount[rng.random(rows) < 0.10] = np.nan
    age[rng.random(rows) < 0.05] = np.nan
    score_a[rng.random(rows) < 0.02] = np.nan
    merchant[rng.random(rows) < 0.03] = np.nan

    df = pd.DataFrame({
        "id": ids,
        "epoch": epoch,
        "amount": amount,
        "age": age,
        "score_a": score_a,
        "score_b": score_b,
        "merchant": merchant,
        "is_fraud": is_fraud,
        "tier": tier,
    })
    # Datetime parts as Sluice computes them: UTC; day of week Monday = 0.
    df["hour"] = ((epoch // 3600) % 24).astype(np.float64)
    df["dow"] = (((epoch // 86400) + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    df["ts"] = [s + "Z" for s in np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s")]
    return df


def fmt_float(x):
    """Shortest repr that round-trips; empty for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return repr(float(x))


def is_missing(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_csv(df, path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for r in df[COLUMNS].itertuples(index=False):
            fields = [
                str(r.id), r.ts, fmt_float(r.amount), fmt_float(r.age), fmt_float(r.score_a),
                fmt_float(r.score_b), "" if is_missing(r.merchant) else r.merchant,
                str(r.is_fraud), str(r.tier),
            ]
            f.write(",".join(fields) + "\n")


def write_jsonl(df, path):
    """Missing values: absent key on even ids, explicit null on odd ids."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        for r in df[COLUMNS].itertuples(index=False):
            obj = {}
            for col in COLUMNS:
                v = getattr(r, col)
                if isinstance(v, (np.integer,)):
                    v = int(v)
                elif isinstance(v, (np.floating,)):
                    v = float(v)
                if is_missing(v):
                    if r.id % 2 == 1:
                        obj[col] = None
                    continue
                obj[col] = v
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")


def fit_binary(train):
    log1p = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="mean")),
                          ("scale", StandardScaler())]), ["age", "score_a", "score_b"]),
        ("amount", Pipeline([("impute", SimpleImputer(strategy="median")),
                             ("log1p", log1p),
                             ("scale", StandardScaler())]), ["amount"]),
        ("hour", Pipeline([("scale", StandardScaler())]), ["hour"]),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                          ("onehot", OneHotEncoder(categories=[KNOWN_MERCHANTS],
                                                   handle_unknown="ignore"))]), ["merchant"]),
    ], sparse_threshold=0.0)
    pipe = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))])
    pipe.fit(train, train["is_fraud"])
    return pipe


def fit_multiclass(train):
    log1p = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    clip = FunctionTransformer(np.clip, kw_args={"a_min": CLIP_MIN, "a_max": CLIP_MAX},
                               feature_names_out="one-to-one")
    pre = ColumnTransformer([
        ("age", Pipeline([("impute", SimpleImputer(strategy="constant",
                                                   fill_value=AGE_CONSTANT)),
                          ("scale", StandardScaler())]), ["age"]),
        ("score_a", Pipeline([("impute", SimpleImputer(strategy="mean")),
                              ("clip", clip),
                              ("minmax", MinMaxScaler())]), ["score_a"]),
        ("score_b", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), ["score_b"]),
        ("amount", Pipeline([("impute", SimpleImputer(strategy="median")),
                             ("log1p", log1p),
                             ("scale", StandardScaler())]), ["amount"]),
        ("dow", Pipeline([("scale", StandardScaler())]), ["dow"]),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="constant",
                                                   fill_value=MERCHANT_CONSTANT)),
                          ("onehot", OneHotEncoder(categories=[KNOWN_MERCHANTS],
                                                   handle_unknown="ignore"))]), ["merchant"]),
    ], sparse_threshold=0.0)
    pipe = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))])
    pipe.fit(train, train["tier"])
    return pipe


def step(pipe, branch, name):
    return pipe.named_steps["pre"].named_transformers_[branch].named_steps[name]


def feature_names(pipe):
    """Sluice feature names, checked against sklearn's own output names."""
    names = []
    for out in pipe.named_steps["pre"].get_feature_names_out():
        _, col = out.split("__", 1)
        for cat in KNOWN_MERCHANTS:
            if col == "merchant_" + cat:
                col = "merchant=" + cat
        names.append(col)
    return names


def standardize_stats(scaler, idx=0):
    return {"mean": float(scaler.mean_[idx]), "std": float(scaler.scale_[idx])}


def check_categories(pipe):
    cats = list(step(pipe, "cat", "onehot").categories_[0])
    if cats != KNOWN_MERCHANTS:
        sys.exit(f"encoder categories {cats} != {KNOWN_MERCHANTS}")


def export_binary_stats(pipe):
    num_imp = step(pipe, "num", "impute")
    num_scale = step(pipe, "num", "scale")
    feats = {}
    for i, name in enumerate(["age", "score_a", "score_b"]):
        feats[name] = {"impute": float(num_imp.statistics_[i]),
                       "standardize": standardize_stats(num_scale, i)}
    feats["amount"] = {"impute": float(step(pipe, "amount", "impute").statistics_[0]),
                       "standardize": standardize_stats(step(pipe, "amount", "scale"))}
    feats["hour"] = {"standardize": standardize_stats(step(pipe, "hour", "scale"))}
    check_categories(pipe)
    feats["merchant"] = {"impute": str(step(pipe, "cat", "impute").statistics_[0])}
    return {"sluice_stats": 1, "features": feats}


def export_multiclass_stats(pipe):
    minmax = step(pipe, "score_a", "minmax")
    feats = {
        "age": {"standardize": standardize_stats(step(pipe, "age", "scale"))},
        "score_a": {"impute": float(step(pipe, "score_a", "impute").statistics_[0]),
                    "minmax": {"min": float(minmax.data_min_[0]),
                               "max": float(minmax.data_max_[0])}},
        "score_b": {"impute": float(step(pipe, "score_b", "impute").statistics_[0]),
                    "standardize": standardize_stats(step(pipe, "score_b", "scale"))},
        "amount": {"impute": float(step(pipe, "amount", "impute").statistics_[0]),
                   "standardize": standardize_stats(step(pipe, "amount", "scale"))},
        "dow": {"standardize": standardize_stats(step(pipe, "dow", "scale"))},
    }
    check_categories(pipe)
    return {"sluice_stats": 1, "features": feats}


def export_model(pipe):
    clf = pipe.named_steps["clf"]
    coef = [[float(c) for c in row] for row in clf.coef_]
    intercepts = [float(b) for b in clf.intercept_]
    link = "logistic" if len(clf.classes_) == 2 else "softmax"
    return {"sluice_linear": 1, "feature_names": feature_names(pipe), "coefficients": coef,
            "intercepts": intercepts, "link": link}


def check_model_matches(model, pipe, df):
    """Recomputes predict_proba from the exported JSON to catch export mistakes."""
    x = pipe.named_steps["pre"].transform(df)
    w = np.asarray(model["coefficients"])
    z = x @ w.T + np.asarray(model["intercepts"])
    if model["link"] == "logistic":
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        ref = pipe.predict_proba(df)[:, 1]
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        ref = pipe.predict_proba(df)
    diff = float(np.max(np.abs(p - ref)))
    if diff > 1e-12:
        sys.exit(f"exported model disagrees with sklearn by {diff}")


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


BINARY_FEATURES = """\
features:
  - {name: age, impute: mean, transform: [standardize]}
  - {name: score_a, impute: mean, transform: [standardize]}
  - {name: score_b, impute: mean, transform: [standardize]}
  - {name: amount, impute: median, transform: [log1p, standardize]}
  - {name: hour, from: ts, datetime: hour, transform: [standardize]}
  - {name: merchant, impute: most_frequent, one_hot: [%(cats)s], unknown: zeros}
""" % {"cats": ", ".join(KNOWN_MERCHANTS)}


def binary_job(input_path, input_format, output_path, output_format):
    csv_block = ""
    if input_format == "csv":
        csv_block = '  csv: {delimiter: ",", header: true, null_values: [""]}\n'
    return f"""\
# Generated by tests/reference/gen_sklearn_reference.py: binary logistic regression
# exported from a scikit-learn Pipeline; expected scores in expected.csv.
input:
  path: {input_path}
  format: {input_format}
{csv_block}  schema: {SCHEMA_YAML}
{BINARY_FEATURES}stats: stats.json
model:
  path: model.json
  kind: linear
  outputs: {{score: probability}}
batch:
  size: 4096
errors:
  max_rejected: 0
output:
  path: {output_path}
  format: {output_format}
  keys: [id]
"""


def multiclass_job():
    return f"""\
# Generated by tests/reference/gen_sklearn_reference.py: 3-class softmax regression
# exported from a scikit-learn Pipeline; expected in expected_multiclass.csv.
input:
  path: data.csv
  format: csv
  csv: {{delimiter: ",", header: true, null_values: [""]}}
  schema: {SCHEMA_YAML}
features:
  - {{name: age, impute: {{constant: {AGE_CONSTANT!r}}}, transform: [standardize]}}
  - {{name: score_a, impute: mean, transform: [{{clip: {{min: {CLIP_MIN!r}, max: {CLIP_MAX!r}}}}}, minmax]}}
  - {{name: score_b, impute: median, transform: [standardize]}}
  - {{name: amount, impute: median, transform: [log1p, standardize]}}
  - {{name: dow, from: ts, datetime: dow, transform: [standardize]}}
  - {{name: merchant, impute: {{constant: {MERCHANT_CONSTANT}}}, one_hot: [{", ".join(KNOWN_MERCHANTS)}], unknown: zeros}}
stats: stats_multiclass.json
model:
  path: model_multiclass.json
  kind: linear
  outputs: {{proba: probabilities}}
batch:
  size: 1000
errors:
  max_rejected: 0
output:
  path: out_multiclass
  format: csv
  keys: [id]
  labels: [{", ".join(TIER_LABELS)}]
  label_column: tier_label
"""


def write_expected_binary(df, proba, path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,score\n")
        for i, p in zip(df["id"], proba[:, 1]):
            f.write(f"{int(i)},{float(p)!r}\n")


def write_expected_multiclass(df, proba, path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id," + ",".join(f"proba_{k}" for k in range(proba.shape[1])) + ",tier_label\n")
        for i, row in zip(df["id"], proba):
            top2 = np.sort(row)[-2:]
            label = "" if top2[1] - top2[0] < LABEL_MARGIN else TIER_LABELS[int(np.argmax(row))]
            f.write(f"{int(i)}," + ",".join(repr(float(p)) for p in row) + f",{label}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--rows", type=int, default=12_000)
    ap.add_argument("--seed", type=int, default=20240105)
    ap.add_argument("--train-fraction", type=float, default=0.7)
    args = ap.parse_args()
    if args.rows < 100:
        sys.exit("--rows must be at least 100")
    os.makedirs(args.outdir, exist_ok=True)
    out = lambda name: os.path.join(args.outdir, name)  # noqa: E731

    df = make_data(args.rows, args.seed)
    train = df.iloc[: int(args.rows * args.train_fraction)]

    write_csv(df, out("data.csv"))
    write_csv(train, out("train.csv"))
    write_jsonl(df, out("data.jsonl"))

    binary = fit_binary(train)
    model = export_model(binary)
    check_model_matches(model, binary, df)
    write_json(export_binary_stats(binary), out("stats.json"))
    write_json(model, out("model.json"))
    write_expected_binary(df, binary.predict_proba(df), out("expected.csv"))
    with open(out("job_csv.yaml"), "w", encoding="utf-8") as f:
        f.write(binary_job("data.csv", "csv", "out_csv", "csv"))
    with open(out("job_jsonl.yaml"), "w", encoding="utf-8") as f:
        f.write(binary_job("data.jsonl", "jsonl", "out_jsonl", "jsonl"))

    multi = fit_multiclass(train)
    model_multi = export_model(multi)
    check_model_matches(model_multi, multi, df)
    write_json(export_multiclass_stats(multi), out("stats_multiclass.json"))
    write_json(model_multi, out("model_multiclass.json"))
    write_expected_multiclass(df, multi.predict_proba(df), out("expected_multiclass.csv"))
    with open(out("job_multiclass.yaml"), "w", encoding="utf-8") as f:
        f.write(multiclass_job())

    print(f"wrote {args.rows} rows (trained on {len(train)}) to {args.outdir}")


if __name__ == "__main__":
    main()
