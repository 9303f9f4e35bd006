#!/usr/bin/python3
"""Generates the ONNX models, reference predictions and end-to-end cases for Sluice's tests.

    gen_onnx_models.py OUTDIR [--rows N] [--seed S]

Deterministic for a given (rows, seed). Run it with /usr/bin/python3 (Debian's
python3-torch, python3-onnx and python3-numpy). Nothing it writes is committed:
CTest runs it as the fixture `onnx_models` into BUILD/test_models/onnx.

Reference models, checked against their own library (tolerance 1e-5):

  mlp.onnx                   torch.nn MLP 20 -> 64 -> 64 -> 1 with a sigmoid, exported by
                             torch.onnx.export (opset 17, dynamic batch axis); input
                             "features" float [N, 20], output "score" float [N, 1]; custom
                             metadata {"sluice_case": "mlp"}, model_version 3
  mlp_reference.json         {"inputs": {"features": rows}, "outputs": {"score": rows}}:
                             torch's own float32 forward on REFERENCE_ROWS rows
  clf_zipmap.onnx            ONNX-ML LinearClassifier (SOFTMAX, classes "low", "medium",
                             "high") over three named inputs as scikit-learn converters
                             write them: amount float [N, 1], ratio double [N, 1], count
                             int64 [N, 1]; outputs output_label string [N] and
                             output_probability = ZipMap -> seq(map(string, float))
  clf_tensor.onnx            LinearClassifier (LOGISTIC, classes 0, 1, 2) on "input" float
                             [N, 4]; outputs label int64 [N] and probabilities float
                             [N, "classes"] (a symbolic width, learned from a test run)
  clf_zipmap_int.onnx        LinearClassifier (SOFTMAX, classes 30, 10, 20 in that order)
                             on "input" float [N, 4]; label int64 and ZipMap with int64 keys
  <name>_reference.json      for each classifier: inputs by name and numpy's float64
                             labels and probabilities (class order), same layout as above

A string input, as scikit-learn converters write categorical columns:

  string_input.onnx          inputs merchant string [N, 1], amount float [N, 1], ratio float
                             [N]: LabelEncoder (ai.onnx.ml) maps merchant to a float code
                             (STRING_CODES; an unseen string -> -1), Concat with amount and
                             ratio, MatMul + Add + Sigmoid -> "score" float [N, 1]
  string_input_reference.json  {"inputs": {"merchant": [...], "amount": [...], "ratio": [...]},
                             "outputs": {"score": [...]}}: the numpy float32 reference

Conformance models (7 features, the shared suite's width; weights in <name>.json for a
double-precision reference computed by the C++ test):

  conformance_mlp.onnx       torch MLP 7 -> 16 -> 16 -> 1, sigmoid; "x" float [N, 7] -> "y"
  conformance_multi.onnx     seven named inputs f0..f6 (f0-f3 float [N, 1], f4 double
                             [N, 1], f5 float [N], f6 double [N]), computed in double:
                             "value" double [N, 2] = X W + b, "probability" float [N, 2] =
                             sigmoid(value)
  conformance_mlp.json, conformance_multi.json   {"layers": [{"w": [[...]], "b": [...]}]}
                             with w as [inputs][outputs]

Bad models for the error tests:

  unknown_op.onnx            a node "NoSuchOp" in domain "com.example.sluice"
  future_opset.onnx          an Identity node in a model importing opset 99 of ai.onnx
  dynamic_width.onnx         input "x" float [N, "F"]: the feature count is not fixed
  fixed_batch.onnx           the conformance MLP exported without a dynamic batch axis
                             (input [1, 7]): Sluice scores it one row at a time

A deliberately slow model for execution.batch_timeout:

  slow_chain.onnx            "x" float [N, 256] -> SLOW_CHAIN_LENGTH MatMuls in a row, all by
                             one 256 x 256 permutation matrix -> "y" float [N, 256]. The cost
                             grows with the rows: a few rows take tens of ms, 8192 rows about
                             40 s on one core (each node under 10 ms), and every node is a
                             point where ONNX Runtime can stop a terminated run. A
                             permutation keeps the arithmetic exact: row r of y is row r of x
                             with its columns permuted, y[:, j] = x[:, slow_chain_source[j]]
  slow_chain.json            {"source": slow_chain_source}, the permutation after the chain

End-to-end (`sluice run`, tests/onnx_e2e/run_onnx_e2e_test.sh):

  data.csv, data.jsonl       id, f0..f19, amount, ratio, count (the same rows twice)
  expected_mlp.csv           id, score (torch forward of the float32 features)
  expected_clf.csv           id, label, p_low, p_medium, p_high (numpy reference)
  job_mlp_csv.yaml, job_mlp_jsonl.yaml, job_clf_csv.yaml, job_clf_jsonl.yaml
  job_mlp_width.yaml         the MLP with 19 features: must fail at preflight (exit 2)
  data_str.csv, data_str.jsonl   id, merchant, amount, ratio; merchant null in some rows
                             and unseen by the model ("casino") in others
  expected_str.csv           id, score (numpy float32 reference, nulls imputed "travel")
  job_str_csv.yaml, job_str_jsonl.yaml   merchant as text, impute {constant: travel}
  job_str_bad.yaml           merchant as text with a transform: must fail at preflight
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
ML_OPSET = 3
REFERENCE_ROWS = 300
# Labels whose top two probabilities differ by less than this are not checked (float32
# arithmetic in the engine may legitimately pick the other class).
LABEL_MARGIN = 1e-4
CLF_CLASSES = ["low", "medium", "high"]
ZIPMAP_INT_CLASSES = [30, 10, 20]


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
        f.write("\n")


def f32_list(a):
    """float32 values as Python floats (exactly representable, repr round-trips)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


# ---- torch MLPs -------------------------------------------------------------------------


class Mlp(torch.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Sigmoid())
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def export_mlp(model, num_features, path, input_name, output_name, dynamic=True):
    model.eval()
    example = torch.zeros(1, num_features, dtype=torch.float32)
    kwargs = {}
    if dynamic:
        kwargs["dynamic_axes"] = {input_name: {0: "batch"}, output_name: {0: "batch"}}
    torch.onnx.export(model, example, path, input_names=[input_name], output_names=[output_name],
                      opset_version=OPSET, do_constant_folding=True, **kwargs)


def mlp_layers_json(model):
    layers = []
    for m in model.net:
        if isinstance(m, torch.nn.Linear):
            layers.append({"w": f32_list(m.weight.detach().numpy().T),
                           "b": f32_list(m.bias.detach().numpy())})
    return {"layers": layers}


def add_metadata(path, props, model_version=None, doc=None):
    m = onnx.load(path)
    for k, v in props.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    if model_version is not None:
        m.model_version = model_version
    if doc is not None:
        m.doc_string = doc
    onnx.save(m, path)


def torch_forward(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


# ---- ONNX-ML classifiers built with onnx.helper -----------------------------------------


def save_model(graph, path, ml=False, opsets=None, producer="sluice-tests"):
    imports = opsets or [helper.make_opsetid("", OPSET)]
    if ml:
        imports.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=imports, producer_name=producer)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def zipmap_type(key_type):
    """seq(map(key_type, float)): the type of a ZipMap output (onnx 1.12 has no map helper)."""
    m = onnx.TypeProto()
    m.map_type.key_type = key_type
    m.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    return helper.make_sequence_type_proto(m)


def linear_scores(x, coef, intercepts):
    return x.astype(np.float64) @ coef.T.astype(np.float64) + intercepts.astype(np.float64)


def post_transform(scores, kind):
    if kind == "SOFTMAX":
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-scores))
    raise ValueError(kind)


def linear_classifier_node(inp, coef, intercepts, kind, labels):
    attrs = {"coefficients": f32_list(coef.reshape(-1)), "intercepts": f32_list(intercepts),
             "post_transform": kind, "multi_class": 0}
    if isinstance(labels[0], str):
        attrs["classlabels_strings"] = labels
    else:
        attrs["classlabels_ints"] = labels
    return helper.make_node("LinearClassifier", [inp], ["label", "probabilities"],
                            domain="ai.onnx.ml", name="linear_classifier", **attrs)


def build_clf_zipmap(path, coef, intercepts):
    """Three named single-column inputs (float, double, int64) -> string labels + ZipMap."""
    inputs = [helper.make_tensor_value_info("amount", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("ratio", TensorProto.DOUBLE, ["N", 1]),
              helper.make_tensor_value_info("count", TensorProto.INT64, ["N", 1])]
    nodes = [helper.make_node("Cast", ["ratio"], ["ratio_f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.FLOAT),
             helper.make_node("Concat", ["amount", "ratio_f", "count_f"], ["x"], axis=1),
             linear_classifier_node("x", coef, intercepts, "SOFTMAX", CLF_CLASSES),
             helper.make_node("Identity", ["label"], ["output_label"]),
             helper.make_node("ZipMap", ["probabilities"], ["output_probability"],
                              domain="ai.onnx.ml", classlabels_strings=CLF_CLASSES)]
    outputs = [helper.make_tensor_value_info("output_label", TensorProto.STRING, ["N"]),
               helper.make_value_info("output_probability", zipmap_type(TensorProto.STRING))]
    save_model(helper.make_graph(nodes, "clf_zipmap", inputs, outputs), path, ml=True)


def build_clf_tensor(path, coef, intercepts, labels, kind, zipmap):
    """One float [N, 4] input -> int64 labels + probabilities (tensor or ZipMap with int keys)."""
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", coef.shape[1]])]
    nodes = [linear_classifier_node("input", coef, intercepts, kind, labels)]
    if zipmap:
        nodes.append(helper.make_node("ZipMap", ["probabilities"], ["output_probability"],
                                      domain="ai.onnx.ml", classlabels_int64s=labels))
        prob = helper.make_value_info("output_probability", zipmap_type(TensorProto.INT64))
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]), prob]
    else:
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", "classes"])]
    name = "clf_zipmap_int" if zipmap else "clf_tensor"
    save_model(helper.make_graph(nodes, name, inputs, outputs), path, ml=True)


def classifier_reference(x, coef, intercepts, kind, labels):
    scores = linear_scores(x, coef, intercepts)
    proba = post_transform(scores, kind)
    # LinearClassifier picks the class of the highest raw score.
    label = [labels[i] for i in np.argmax(scores, axis=1)]
    return label, proba


# ---- conformance multi-input model --------------------------------------------------------


def build_conformance_multi(path, w, b):
    names = [f"f{i}" for i in range(7)]
    types = [TensorProto.FLOAT] * 4 + [TensorProto.DOUBLE, TensorProto.FLOAT, TensorProto.DOUBLE]
    shapes = [["N", 1]] * 5 + [["N"], ["N"]]
    inputs = [helper.make_tensor_value_info(n, t, s) for n, t, s in zip(names, types, shapes)]
    nodes, cols = [], []
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    for n, s in zip(names, shapes):
        src = n
        if len(s) == 1:
            nodes.append(helper.make_node("Unsqueeze", [n, "axes"], [n + "_2d"]))
            src = n + "_2d"
        nodes.append(helper.make_node("Cast", [src], [n + "_d"], to=TensorProto.DOUBLE))
        cols.append(n + "_d")
    nodes += [helper.make_node("Concat", cols, ["x"], axis=1),
              helper.make_node("MatMul", ["x", "w"], ["xw"]),
              helper.make_node("Add", ["xw", "b"], ["value"]),
              helper.make_node("Sigmoid", ["value"], ["p_d"]),
              helper.make_node("Cast", ["p_d"], ["probability"], to=TensorProto.FLOAT)]
    inits = [axes, numpy_helper.from_array(w.astype(np.float64), "w"),
             numpy_helper.from_array(b.astype(np.float64), "b")]
    outputs = [helper.make_tensor_value_info("value", TensorProto.DOUBLE, ["N", 2]),
               helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 2])]
    save_model(helper.make_graph(nodes, "conformance_multi", inputs, outputs, initializer=inits), path)


# ---- bad models ------------------------------------------------------------------------


def build_bad_models(out):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example.sluice")],
                              "unknown_op", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.example.sluice", 1)])
    model.ir_version = 8
    onnx.save(model, out("unknown_op.onnx"))  # not checked: the checker rejects unknown ops too

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "future_opset", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)])
    model.ir_version = 8
    onnx.save(model, out("future_opset.onnx"))

    xd = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "F"])
    yd = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "F"])
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "dynamic_width", [xd], [yd])
    save_model(graph, out("dynamic_width.onnx"))


# ---- a slow model ------------------------------------------------------------------------

SLOW_CHAIN_WIDTH = 256
SLOW_CHAIN_LENGTH = 5000


def build_slow_chain(path, rng):
    """x [N, 256] -> MatMul by one permutation matrix, SLOW_CHAIN_LENGTH times -> y.

    Returns source with y[:, j] = x[:, source[j]]."""
    perm = rng.permutation(SLOW_CHAIN_WIDTH)
    w = np.zeros((SLOW_CHAIN_WIDTH, SLOW_CHAIN_WIDTH), dtype=np.float32)
    w[perm, np.arange(SLOW_CHAIN_WIDTH)] = 1.0  # (x @ w)[:, j] = x[:, perm[j]]
    nodes = []
    prev = "x"
    for i in range(SLOW_CHAIN_LENGTH):
        name = "y" if i + 1 == SLOW_CHAIN_LENGTH else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, "w"], [name]))
        prev = name
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SLOW_CHAIN_WIDTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", SLOW_CHAIN_WIDTH])
    graph = helper.make_graph(nodes, "slow_chain", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    save_model(graph, path)
    source = np.arange(SLOW_CHAIN_WIDTH)
    for _ in range(SLOW_CHAIN_LENGTH):
        source = source[perm]
    return [int(v) for v in source]


# ---- a string input ----------------------------------------------------------------------

STRING_CODES = {"grocery": 1.0, "travel": 2.0, "fuel": 3.0}
STRING_UNSEEN_CODE = -1.0
STRING_IMPUTE = "travel"
STRING_MERCHANTS = ["grocery", "travel", "fuel", "casino", None]  # casino: unseen; None: null


def build_string_input(path, w, b):
    inputs = [helper.make_tensor_value_info("merchant", TensorProto.STRING, ["N", 1]),
              helper.make_tensor_value_info("amount", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("ratio", TensorProto.FLOAT, ["N"])]
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])
    nodes = [
        helper.make_node("LabelEncoder", ["merchant"], ["code"], domain="ai.onnx.ml",
                         keys_strings=list(STRING_CODES), values_floats=list(STRING_CODES.values()),
                         default_float=STRING_UNSEEN_CODE),
        helper.make_node("Unsqueeze", ["ratio", "axis1"], ["ratio_col"]),
        helper.make_node("Concat", ["code", "amount", "ratio_col"], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["score"]),
    ]
    inits = [numpy_helper.from_array(np.asarray(w, dtype=np.float32).reshape(3, 1), "w"),
             numpy_helper.from_array(np.asarray(b, dtype=np.float32).reshape(1), "b"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")]
    graph = helper.make_graph(nodes, "string_input", inputs, [score], initializer=inits)
    save_model(graph, path, ml=True)


def string_reference(merchant, amount, ratio, w, b):
    code = np.array([STRING_CODES.get(STRING_IMPUTE if m is None else m, STRING_UNSEEN_CODE) for m in merchant],
                    dtype=np.float32)
    x = np.stack([code, amount.astype(np.float32), ratio.astype(np.float32)], axis=1)
    z = (x @ np.asarray(w, dtype=np.float32).reshape(3, 1))[:, 0] + np.float32(b)
    return (1.0 / (1.0 + np.exp(-z.astype(np.float64)))).astype(np.float32)


def write_string_e2e(out, ids, amount, ratio, w, b):
    merchant = [STRING_MERCHANTS[i % len(STRING_MERCHANTS)] for i in range(len(ids))]
    with open(out("data_str.csv"), "w", encoding="utf-8", newline="") as f:
        f.write("id,merchant,amount,ratio\n")
        for r in range(len(ids)):
            f.write(f"{int(ids[r])},{merchant[r] or ''},{float(amount[r])!r},{float(ratio[r])!r}\n")
    with open(out("data_str.jsonl"), "w", encoding="utf-8") as f:
        for r in range(len(ids)):
            f.write(json.dumps({"id": int(ids[r]), "merchant": merchant[r], "amount": float(amount[r]),
                                "ratio": float(ratio[r])}) + "\n")
    scores = string_reference(merchant, amount, ratio, w, b)
    with open(out("expected_str.csv"), "w", encoding="utf-8", newline="") as f:
        f.write("id,score\n")
        for i, s in zip(ids, scores):
            f.write(f"{int(i)},{float(s)!r}\n")
    for fmt, batch in (("csv", 1000), ("jsonl", 333)):
        csv_block = '  csv: {delimiter: ",", header: true}\n' if fmt == "csv" else ""
        text = (f"# Generated by tests/models/gen_onnx_models.py.\n"
                f"input:\n  path: data_str.{fmt}\n  format: {fmt}\n{csv_block}"
                f"  schema: {{id: int64, merchant: string, amount: float64, ratio: float64}}\n"
                f"features:\n  - {{name: merchant, impute: {{constant: {STRING_IMPUTE}}}}}\n"
                f"  - {{name: amount}}\n  - {{name: ratio}}\n"
                f"model:\n  path: string_input.onnx\n  kind: auto\n  outputs: {{score: 'score[0]'}}\n"
                f"batch:\n  size: {batch}\n"
                f"errors:\n  max_rejected: 0\n"
                f"output:\n  path: out_str_{fmt}\n  format: {fmt}\n  keys: [id]\n")
        with open(out(f"job_str_{fmt}.yaml"), "w", encoding="utf-8") as f:
            f.write(text)
        if fmt == "csv":
            bad = text.replace("impute: {constant: travel}}", "transform: [log1p]}").replace("out_str_csv", "out_str_bad")
            with open(out("job_str_bad.yaml"), "w", encoding="utf-8") as f:
                f.write(bad)


# ---- end-to-end data and jobs -------------------------------------------------------------


def make_e2e_data(rows, rng):
    ids = np.arange(1, rows + 1, dtype=np.int64)
    feats = np.round(rng.normal(0.0, 1.5, size=(rows, 20)), 4)
    amount = np.round(rng.lognormal(2.0, 0.8, size=rows), 2)
    ratio = np.round(rng.uniform(-1.0, 1.0, size=rows), 6)
    count = rng.integers(0, 12, size=rows, dtype=np.int64)
    return ids, feats, amount, ratio, count


def write_e2e_data(out, ids, feats, amount, ratio, count):
    header = ["id"] + [f"f{i}" for i in range(20)] + ["amount", "ratio", "count"]
    with open(out("data.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for r in range(len(ids)):
            vals = [str(int(ids[r]))] + [repr(float(v)) for v in feats[r]]
            vals += [repr(float(amount[r])), repr(float(ratio[r])), str(int(count[r]))]
            f.write(",".join(vals) + "\n")
    with open(out("data.jsonl"), "w", encoding="utf-8") as f:
        for r in range(len(ids)):
            obj = {"id": int(ids[r])}
            obj.update({f"f{i}": float(feats[r, i]) for i in range(20)})
            obj.update({"amount": float(amount[r]), "ratio": float(ratio[r]), "count": int(count[r])})
            f.write(json.dumps(obj) + "\n")


SCHEMA_YAML = ("{id: int64, " + ", ".join(f"f{i}: float64" for i in range(20)) +
               ", amount: float64, ratio: float64, count: int64}")


def job_yaml(model, features, outputs, data, fmt, out_dir, batch):
    csv_block = '  csv: {delimiter: ",", header: true}\n' if fmt == "csv" else ""
    feature_lines = "".join(f"  - {{name: {n}}}\n" for n in features)
    return (f"# Generated by tests/models/gen_onnx_models.py.\n"
            f"input:\n  path: {data}\n  format: {fmt}\n{csv_block}  schema: {SCHEMA_YAML}\n"
            f"features:\n{feature_lines}"
            f"model:\n  path: {model}\n  kind: auto\n  outputs: {outputs}\n"
            f"batch:\n  size: {batch}\n"
            f"errors:\n  max_rejected: 0\n"
            f"output:\n  path: {out_dir}\n  format: {fmt}\n  keys: [id]\n")


def write_jobs(out):
    mlp_features = [f"f{i}" for i in range(20)]
    clf_features = ["amount", "ratio", "count"]
    clf_outputs = "{label: output_label, p_low: 'output_probability[0]', " \
                  "p_medium: 'output_probability[1]', p_high: 'output_probability[2]'}"
    jobs = {
        "job_mlp_csv.yaml": job_yaml("mlp.onnx", mlp_features, "{score: 'score[0]'}", "data.csv", "csv",
                                     "out_mlp_csv", 1000),
        "job_mlp_jsonl.yaml": job_yaml("mlp.onnx", mlp_features, "{score: 'score[0]'}", "data.jsonl", "jsonl",
                                       "out_mlp_jsonl", 777),
        "job_clf_csv.yaml": job_yaml("clf_zipmap.onnx", clf_features, clf_outputs, "data.csv", "csv",
                                     "out_clf_csv", 1000),
        "job_clf_jsonl.yaml": job_yaml("clf_zipmap.onnx", clf_features, clf_outputs, "data.jsonl", "jsonl",
                                       "out_clf_jsonl", 333),
        "job_mlp_width.yaml": job_yaml("mlp.onnx", mlp_features[:19], "{score: 'score[0]'}", "data.csv", "csv",
                                       "out_mlp_width", 1000),
    }
    for name, text in jobs.items():
        with open(out(name), "w", encoding="utf-8") as f:
            f.write(text)


# ---- main ----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20240301)
    args = ap.parse_args()
    if args.rows < 10:
        sys.exit("--rows must be at least 10")
    os.makedirs(args.outdir, exist_ok=True)
    out = lambda name: os.path.join(args.outdir, name)  # noqa: E731
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)

    # MLP 20 -> 64 -> 64 -> 1 and its torch reference.
    mlp = Mlp([20, 64, 64, 1])
    export_mlp(mlp, 20, out("mlp.onnx"), "features", "score")
    add_metadata(out("mlp.onnx"), {"sluice_case": "mlp"}, model_version=3, doc="reference MLP")
    x_ref = rng.normal(0.0, 2.0, size=(REFERENCE_ROWS, 20)).astype(np.float32)
    x_ref[0] = 0.0
    x_ref[1] = 40.0  # saturates the sigmoid
    write_json({"inputs": {"features": f32_list(x_ref)},
                "outputs": {"score": f32_list(torch_forward(mlp, x_ref))}}, out("mlp_reference.json"))

    # Conformance MLP (7 features) and the same network with a fixed batch of one.
    conf_mlp = Mlp([7, 16, 16, 1])
    export_mlp(conf_mlp, 7, out("conformance_mlp.onnx"), "x", "y")
    export_mlp(conf_mlp, 7, out("fixed_batch.onnx"), "x", "y", dynamic=False)
    write_json(mlp_layers_json(conf_mlp), out("conformance_mlp.json"))

    # Conformance multi-input model.
    w = rng.uniform(-1.0, 1.0, size=(7, 2))
    b = rng.uniform(-1.0, 1.0, size=2)
    build_conformance_multi(out("conformance_multi.onnx"), w, b)
    write_json({"layers": [{"w": w.tolist(), "b": b.tolist()}]}, out("conformance_multi.json"))

    # Classifiers.
    clf_coef = np.array([[0.8, -1.5, 0.05], [-0.3, 0.9, 0.2], [0.1, 0.7, -0.25]], dtype=np.float32)
    clf_icpt = np.array([0.2, -0.1, 0.05], dtype=np.float32)
    build_clf_zipmap(out("clf_zipmap.onnx"), clf_coef, clf_icpt)
    tensor_coef = rng.uniform(-1.0, 1.0, size=(3, 4)).astype(np.float32)
    tensor_icpt = rng.uniform(-0.5, 0.5, size=3).astype(np.float32)
    build_clf_tensor(out("clf_tensor.onnx"), tensor_coef, tensor_icpt, [0, 1, 2], "LOGISTIC", zipmap=False)
    build_clf_tensor(out("clf_zipmap_int.onnx"), tensor_coef, tensor_icpt, ZIPMAP_INT_CLASSES, "SOFTMAX",
                     zipmap=True)

    amount = np.round(rng.lognormal(2.0, 0.8, size=REFERENCE_ROWS), 2).astype(np.float32)
    ratio = rng.uniform(-1.0, 1.0, size=REFERENCE_ROWS).astype(np.float32)
    count = rng.integers(0, 12, size=REFERENCE_ROWS).astype(np.float32)
    x_clf = np.stack([amount, ratio, count], axis=1)
    labels, proba = classifier_reference(x_clf, clf_coef, clf_icpt, "SOFTMAX", CLF_CLASSES)
    write_json({"inputs": {"amount": f32_list(amount), "ratio": f32_list(ratio), "count": f32_list(count)},
                "outputs": {"output_label": labels, "output_probability": proba.tolist()},
                "classes": CLF_CLASSES}, out("clf_zipmap_reference.json"))
    x4 = rng.normal(0.0, 1.5, size=(REFERENCE_ROWS, 4)).astype(np.float32)
    labels, proba = classifier_reference(x4, tensor_coef, tensor_icpt, "LOGISTIC", [0, 1, 2])
    write_json({"inputs": {"input": f32_list(x4)},
                "outputs": {"label": labels, "probabilities": proba.tolist()},
                "classes": ["0", "1", "2"]}, out("clf_tensor_reference.json"))
    labels, proba = classifier_reference(x4, tensor_coef, tensor_icpt, "SOFTMAX", ZIPMAP_INT_CLASSES)
    write_json({"inputs": {"input": f32_list(x4)},
                "outputs": {"label": [int(v) for v in labels], "output_probability": proba.tolist()},
                "classes": [str(c) for c in ZIPMAP_INT_CLASSES]}, out("clf_zipmap_int_reference.json"))

    build_bad_models(out)

    # End-to-end data: features reach the model as float32, so the references use those values.
    ids, feats, e_amount, e_ratio, e_count = make_e2e_data(args.rows, rng)
    write_e2e_data(out, ids, feats, e_amount, e_ratio, e_count)
    scores = torch_forward(mlp, feats.astype(np.float32))[:, 0]
    with open(out("expected_mlp.csv"), "w", encoding="utf-8", newline="") as f:
        f.write("id,score\n")
        for i, s in zip(ids, scores):
            f.write(f"{int(i)},{float(s)!r}\n")
    x_e2e = np.stack([e_amount, e_ratio, e_count], axis=1).astype(np.float32)
    scores_clf = linear_scores(x_e2e, clf_coef, clf_icpt)
    proba = post_transform(scores_clf, "SOFTMAX")
    with open(out("expected_clf.csv"), "w", encoding="utf-8", newline="") as f:
        f.write("id,label,p_low,p_medium,p_high\n")
        for i, s, p in zip(ids, scores_clf, proba):
            top2 = np.sort(s)[-2:]
            label = "" if top2[1] - top2[0] < LABEL_MARGIN else CLF_CLASSES[int(np.argmax(s))]
            f.write(f"{int(i)},{label}," + ",".join(repr(float(v)) for v in p) + "\n")
    write_jobs(out)

    str_w = rng.uniform(-1.0, 1.0, size=3)
    str_b = float(rng.uniform(-0.5, 0.5))
    build_string_input(out("string_input.onnx"), str_w, str_b)
    ref_merchant = [STRING_MERCHANTS[i % 4] for i in range(40)] + [""]  # no nulls; "" is unseen
    ref_amount = np.round(rng.lognormal(2.0, 0.8, size=len(ref_merchant)), 2).astype(np.float32)
    ref_ratio = rng.uniform(-1.0, 1.0, size=len(ref_merchant)).astype(np.float32)
    write_json({"inputs": {"merchant": ref_merchant, "amount": f32_list(ref_amount), "ratio": f32_list(ref_ratio)},
                "outputs": {"score": f32_list(string_reference(ref_merchant, ref_amount, ref_ratio, str_w, str_b))}},
               out("string_input_reference.json"))
    write_string_e2e(out, ids, e_amount, e_ratio, str_w, str_b)
    # Its own generator, so that adding it changed none of the models above.
    slow_rng = np.random.default_rng(args.seed + 1)
    write_json({"source": build_slow_chain(out("slow_chain.onnx"), slow_rng)}, out("slow_chain.json"))
    print(f"gen_onnx_models: wrote models, references and {args.rows} end-to-end rows to {args.outdir}")


if __name__ == "__main__":
    main()
