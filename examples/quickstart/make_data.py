#!/usr/bin/python3
"""Regenerates the quickstart's committed files (deterministic):

    transactions.csv   2,000 card transactions to score, with a few missing values,
                       two merchant categories the model never saw, and three bad
                       rows that Sluice rejects (a typo in an amount, an impossible
                       timestamp, a refund whose log1p is undefined)
    stats.json         preprocessing statistics, read from the fitted scikit-learn
                       objects (imputer, scaler)
    model.json         the fitted LogisticRegression in Sluice's linear-model format
    model_xgb.json     a gradient-boosted tree model (XGBoost) trained on the same
                       history from the raw values (missing stays missing), for
                       job_xgboost.yaml

The model is trained on a separate 6,000-row history (not written out), as a real
model would be: the scored file is new data. job.yaml is written by hand; its
features list must stay in the order of FEATURE_NAMES below.

Usage: /usr/bin/python3 make_data.py [OUTDIR]   (default: this script's folder)
"""

import json
import os
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
import xgboost as xgb

SEED = 7
HISTORY_ROWS = 6_000
SCORE_ROWS = 2_000

MERCHANTS = ["grocery", "online", "travel", "restaurant", "fuel"]  # what the model knows
NEW_MERCHANTS = ["crypto", "pharmacy"]                                # only in the new data
TXN_CLIP = 30.0
REVIEW_AT = 0.15  # job.yaml's output.threshold.at

FEATURE_NAMES = (["customer_age", "card_present", "amount", "txn_count_24h", "hour"]
                 + [f"merchant={m}" for m in MERCHANTS])


def transactions(rng, rows, first_id, with_new_merchants):
    epoch = 1_714_521_600 + rng.integers(0, 7 * 86400, size=rows)  # 2024-05-01 .. 05-07 UTC
    merchants = MERCHANTS + (NEW_MERCHANTS if with_new_merchants else [])
    p = np.array([0.34, 0.26, 0.12, 0.16, 0.12] + ([0.05, 0.04] if with_new_merchants else []))
    merchant = rng.choice(np.array(merchants, dtype=object), size=rows, p=p / p.sum())
    amount = np.maximum(np.round(rng.lognormal(3.4, 1.0, size=rows), 2), 0.5)
    age = np.round(np.clip(rng.normal(44, 14, size=rows), 18, 95))
    card_present = (rng.random(rows) < np.where(merchant == "online", 0.02, 0.85)).astype(float)
    txn_count = rng.poisson(3.0, size=rows).astype(float)
    hour = (epoch // 3600) % 24
    logit = (-4.2 + 0.6 * (np.log1p(amount) - 3.4) - 0.025 * (age - 44) - 1.1 * card_present
             + 0.12 * np.minimum(txn_count, TXN_CLIP) + 1.0 * ((hour < 6) | (hour == 23))
             + np.select([merchant == "online", merchant == "travel", merchant == "crypto"],
                         [0.9, 0.6, 1.5], 0.0)
             + rng.normal(0, 0.4, size=rows))
    is_fraud = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    amount[rng.random(rows) < 0.04] = np.nan
    age[rng.random(rows) < 0.06] = np.nan
    merchant[rng.random(rows) < 0.02] = np.nan
    ts = [s + "Z" for s in np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s")]
    return pd.DataFrame({
        "id": np.arange(first_id, first_id + rows), "ts": ts, "amount": amount,
        "customer_age": age, "card_present": card_present, "txn_count_24h": txn_count,
        "merchant": merchant, "hour": hour.astype(float), "is_fraud": is_fraud,
    })


def fit(history):
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="mean")),
                          ("scale", StandardScaler())]), ["customer_age"]),
        ("card", "passthrough", ["card_present"]),
        ("amount", Pipeline([("impute", SimpleImputer(strategy="median")),
                             ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
                             ("scale", StandardScaler())]), ["amount"]),
        ("txn", Pipeline([("clip", FunctionTransformer(np.clip, feature_names_out="one-to-one",
                                                       kw_args={"a_min": 0.0, "a_max": TXN_CLIP})),
                          ("scale", StandardScaler())]), ["txn_count_24h"]),
        ("hour", StandardScaler(), ["hour"]),
        ("merchant", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                               ("onehot", OneHotEncoder(categories=[MERCHANTS],
                                                        handle_unknown="ignore"))]),
         ["merchant"]),
    ], sparse_threshold=0.0)
    pipe = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))])
    pipe.fit(history, history["is_fraud"])
    return pipe


def std_stats(scaler):
    return {"mean": float(scaler.mean_[0]), "std": float(scaler.scale_[0])}


def export(pipe):
    t = pipe.named_steps["pre"].named_transformers_
    stats = {"sluice_stats": 1, "features": {
        "customer_age": {"impute": float(t["num"]["impute"].statistics_[0]),
                         "standardize": std_stats(t["num"]["scale"])},
        "amount": {"impute": float(t["amount"]["impute"].statistics_[0]),
                   "standardize": std_stats(t["amount"]["scale"])},
        "txn_count_24h": {"standardize": std_stats(t["txn"]["scale"])},
        "hour": {"standardize": std_stats(t["hour"])},
        "merchant": {"impute": str(t["merchant"]["impute"].statistics_[0])},
    }}
    if list(t["merchant"]["onehot"].categories_[0]) != MERCHANTS:
        sys.exit("unexpected encoder categories")
    clf = pipe.named_steps["clf"]
    model = {"sluice_linear": 1, "feature_names": FEATURE_NAMES,
             "coefficients": [[float(c) for c in clf.coef_[0]]],
             "intercepts": [float(clf.intercept_[0])], "link": "logistic"}
    return stats, model


def raw_features(df):
    """The tree model's inputs, as job_xgboost.yaml builds them: raw numbers (NaN when
    missing) and the merchant one-hot (all zeros when missing or unknown)."""
    cols = [df[c].to_numpy(dtype=np.float32) for c in ["customer_age", "card_present", "amount",
                                                         "txn_count_24h", "hour"]]
    cols += [(df["merchant"] == m).to_numpy(dtype=np.float32) for m in MERCHANTS]
    return np.column_stack(cols)


def fit_xgboost(history):
    dtrain = xgb.DMatrix(raw_features(history), label=history["is_fraud"], feature_names=FEATURE_NAMES)
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "seed": SEED, "nthread": 1}
    return xgb.train(params, dtrain, num_boost_round=60)


def fmt(x):
    return "" if isinstance(x, float) and np.isnan(x) else repr(float(x))


def write_csv(df, path):
    """Writes the rows to score, then breaks three of them the way real feeds do."""
    bad = {
        417: ("amount", "12.5O"),                  # letter O typed for a zero -> bad_value
        1203: ("ts", "2024-05-04T25:10:00Z"),      # hour 25 -> bad_value
        1688: ("amount", "-4.99"),                 # a refund: log1p undefined -> invalid_feature
    }
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,ts,amount,customer_age,card_present,txn_count_24h,merchant\n")
        for i, r in enumerate(df.itertuples(index=False)):
            fields = {"id": str(r.id), "ts": r.ts, "amount": fmt(r.amount),
                      "customer_age": fmt(r.customer_age), "card_present": str(int(r.card_present)),
                      "txn_count_24h": str(int(r.txn_count_24h)),
                      "merchant": r.merchant if isinstance(r.merchant, str) else ""}
            if i in bad:
                fields[bad[i][0]] = bad[i][1]
            f.write(",".join(fields.values()) + "\n")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(SEED)
    history = transactions(rng, HISTORY_ROWS, 1, with_new_merchants=False)
    new = transactions(rng, SCORE_ROWS, 500_001, with_new_merchants=True)
    pipe = fit(history)
    names = [n.split("__", 1)[1].replace("merchant_", "merchant=")
             for n in pipe.named_steps["pre"].get_feature_names_out()]
    if names != FEATURE_NAMES:
        sys.exit(f"feature order {names} != {FEATURE_NAMES}")
    stats, model = export(pipe)
    os.makedirs(outdir, exist_ok=True)
    for name, obj in (("stats.json", stats), ("model.json", model)):
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    write_csv(new, os.path.join(outdir, "transactions.csv"))
    booster = fit_xgboost(history)
    booster.save_model(os.path.join(outdir, "model_xgb.json"))
    p = pipe.predict_proba(new)[:, 1]
    print(f"wrote {SCORE_ROWS} rows to {outdir}; history fraud rate "
          f"{history['is_fraud'].mean():.3f}; share sent to review: {(p >= REVIEW_AT).mean():.3f}")


if __name__ == "__main__":
    main()
