#!/usr/bin/env python3
"""Train the TPE's default model and write models/tpe-default.onnx + .json.

Reproducible: fixed seeds, single-threaded BLAS, no timestamps; rerunning on the same
code writes byte-identical files (the spec records the .onnx sha256).

Features are NOT computed here: `steerd tpe dataset` (src/tpe/features.rs, the one
implementation, also used at inference) writes them as .npy, from generated scenarios
(the Rust generator, src/tpe/scenario.rs) and/or exported telemetry CSVs (--data).
Training seeds are < 1000; the held-out evaluation uses 9001/9002.

Usage:
    pip install -r scripts/requirements-train.txt
    python3 scripts/train.py                 # builds steerd (release), trains, writes models/
    python3 scripts/train.py --data a.csv    # add exported telemetry to the training set
    python3 scripts/train.py --make-test-models   # tests/data/tpe-{wrong-shape,nan}.onnx

The model is an MLP (N_FEATURES -> 128 -> 64 -> 3, ReLU) trained with Adam on a
smooth-L1 loss of the log1p-ratio targets (see features.rs); the input standardisation
(mean/std of the training features) is folded into the first layer, so the ONNX graph
takes the raw features. Opset 13, ops Gemm and Relu only.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "tpe-default"
MODEL_VERSION = "1"
SEED = 20240101
TRAIN_SCENARIOS = ["mixed:1", "mixed:2", "mixed:3", "surge:11", "surge:12", "diurnal:21"]
VAL_SCENARIOS = ["mixed:100", "surge:101"]
HIDDEN = (128, 64)


def log(*a):
    print("train.py:", *a, file=sys.stderr, flush=True)


def steerd_binary(args):
    if args.steerd:
        return args.steerd
    ensure_placeholder()
    log("building steerd (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "steerd"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "steerd")


def dataset(binary, out_prefix, scenarios, data, buckets, dests, stride):
    cmd = [binary, "tpe", "dataset", "--out", out_prefix, "--buckets", str(buckets),
           "--destinations", str(dests), "--stride", str(stride)]
    for s in scenarios:
        cmd += ["--scenario", s]
    for d in data:
        cmd += ["--data", d]
    subprocess.run(cmd, check=True)
    x = np.load(out_prefix + ".x.npy")
    y = np.load(out_prefix + ".y.npy")
    with open(out_prefix + ".meta.json") as f:
        meta = json.load(f)
    return x, y, meta


# ------------------------------------------------------------------------------------
# ONNX graph


def build_onnx(layers, n_features, n_out=3, input_dim=None, name=MODEL_NAME):
    """layers: list of (W [in, out], b [out]); ReLU between layers."""
    inits, nodes = [], []
    cur = "x"
    for i, (w, b) in enumerate(layers):
        wn, bn, out = f"W{i}", f"b{i}", ("y" if i == len(layers) - 1 else f"h{i}")
        inits.append(numpy_helper.from_array(np.asarray(w, dtype=np.float32), wn))
        inits.append(numpy_helper.from_array(np.asarray(b, dtype=np.float32), bn))
        gemm_out = out if i == len(layers) - 1 else f"g{i}"
        nodes.append(helper.make_node("Gemm", [cur, wn, bn], [gemm_out], name=f"gemm{i}"))
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [gemm_out], [out], name=f"relu{i}"))
        cur = out
    in_dim = n_features if input_dim is None else input_dim
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_dim])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    model = helper.make_model(graph, producer_name="steerd scripts/train.py", producer_version=MODEL_VERSION,
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def write_model(path_onnx, onnx_bytes, meta, training, n_dest=64, name=MODEL_NAME):
    with open(path_onnx, "wb") as f:
        f.write(onnx_bytes)
    spec = {
        "name": name,
        "version": MODEL_VERSION,
        "inputs": {"window": meta["window"], "features": meta["features"], "n_dest": n_dest, "layout": "batch_features"},
        "normalization": {"method": meta["normalization"], "clip": meta["clip"]},
        "horizons": meta["horizons"],
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "training": training,
    }
    with open(os.path.splitext(path_onnx)[0] + ".json", "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")


def default_meta():
    """Used only for the placeholder model (before steerd can be built)."""
    feats = [f"w{i:02d}" for i in range(32)]
    feats += ["log_level", "tod_sin", "tod_cos", "dow_sin", "dow_cos", "ev_now", "ev_5", "ev_15", "ev_60"]
    for p in ["day", "week"]:
        feats += [f"{p}_5", f"{p}_15", f"{p}_60", f"{p}_lvl", f"has_{p}"]
    return {"window": 32, "features": feats, "horizons": [5, 15, 60],
            "normalization": "log1p_ratio_to_deevented_window_mean", "clip": 4.0}


def ensure_placeholder():
    """The binary embeds models/tpe-default.onnx; on a fresh tree without it, write an
    untrained placeholder (all-zero outputs) so that steerd can be built to make the
    dataset. The real model overwrites it."""
    p = os.path.join(ROOT, "models", MODEL_NAME + ".onnx")
    if os.path.exists(p):
        return
    log("no models/tpe-default.onnx yet: writing an untrained placeholder so steerd builds")
    meta = default_meta()
    nf = len(meta["features"])
    layers = [(np.zeros((nf, 3), np.float32), np.zeros(3, np.float32))]
    os.makedirs(os.path.dirname(p), exist_ok=True)
    write_model(p, build_onnx(layers, nf), meta, {"placeholder": True})


# ------------------------------------------------------------------------------------
# Training (plain numpy MLP, Adam, smooth L1)


def init_layers(rng, sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2.0 / a))
        layers.append([w, np.zeros(b, np.float32)])
    return layers


def forward(layers, x):
    acts = [x]
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
        acts.append(h)
    return acts


def smooth_l1(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d / delta, a - 0.5 * delta)


def smooth_l1_grad(d, delta):
    return np.clip(d / delta, -1.0, 1.0)


def train(x, y, w_rows, xv, yv, epochs, seed, batch=512, lr=2e-3, delta=0.05):
    rng = np.random.default_rng(seed)
    n, nf = x.shape
    mu = x.mean(axis=0).astype(np.float32)
    sd = x.std(axis=0).astype(np.float32)
    sd[sd < 1e-3] = 1.0
    xs = ((x - mu) / sd).astype(np.float32)
    xvs = ((xv - mu) / sd).astype(np.float32)
    layers = init_layers(rng, [nf, *HIDDEN, 3])
    m = [[np.zeros_like(p) for p in l] for l in layers]
    v = [[np.zeros_like(p) for p in l] for l in layers]
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    steps_total = epochs * (n // batch)
    history = []
    for ep in range(epochs):
        perm = rng.permutation(n)
        tot = 0.0
        for i in range(n // batch):
            idx = perm[i * batch:(i + 1) * batch]
            xb, yb, wb = xs[idx], y[idx], w_rows[idx][:, None]
            acts = forward(layers, xb)
            d = acts[-1] - yb
            tot += float((smooth_l1(d, delta) * wb).mean())
            g = (smooth_l1_grad(d, delta) * wb / (batch * 3)).astype(np.float32)
            step += 1
            cur_lr = lr * 0.5 * (1 + np.cos(np.pi * step / steps_total))
            for li in range(len(layers) - 1, -1, -1):
                w, _ = layers[li]
                gw = acts[li].T @ g
                gb = g.sum(axis=0)
                if li > 0:
                    g = (g @ w.T) * (acts[li] > 0)
                for pi, gp in enumerate((gw, gb)):
                    m[li][pi] = b1 * m[li][pi] + (1 - b1) * gp
                    v[li][pi] = b2 * v[li][pi] + (1 - b2) * gp * gp
                    mh = m[li][pi] / (1 - b1 ** step)
                    vh = v[li][pi] / (1 - b2 ** step)
                    layers[li][pi] = (layers[li][pi] - cur_lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        pv = forward(layers, xvs)[-1]
        val = [float(np.abs(pv[:, k] - yv[:, k]).mean()) for k in range(3)]
        history.append({"epoch": ep + 1, "train_loss": round(tot / max(1, n // batch), 6),
                        "val_mae_log": [round(v_, 5) for v_ in val]})
        log(f"epoch {ep + 1}/{epochs} loss {tot / max(1, n // batch):.5f} val MAE(log) {val}")
    # Fold standardisation into the first layer: ((x - mu)/sd) @ W + b = x @ (W/sd) + (b - (mu/sd) @ W).
    w0, b0 = layers[0]
    layers[0] = [(w0 / sd[:, None]).astype(np.float32), (b0 - (mu / sd) @ w0).astype(np.float32)]
    return layers, history


def row_weights(x, meta, how):
    """Weight rows by the destination's level (linear: the absolute MAE's own weighting,
    large destinations dominate it), its square root, or not at all."""
    li = meta["features"].index("log_level")
    level = np.maximum(np.exp(x[:, li].astype(np.float64) * 10.0) - 1.0, 1.0)
    w = {"linear": level, "sqrt": np.sqrt(level), "none": np.ones_like(level)}[how]
    return (w / w.mean()).astype(np.float32)


def make_test_models(binary, out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        _, _, meta = dataset(binary, os.path.join(tmp, "tiny"), ["diurnal:1"], [], 200, 1, 50)
    nf = len(meta["features"])
    rng = np.random.default_rng(1)
    os.makedirs(out_dir, exist_ok=True)
    # Wrong shape: the model takes one feature fewer than the spec lists.
    layers = [(rng.standard_normal((nf - 1, 3)).astype(np.float32) * 0.01, np.zeros(3, np.float32))]
    write_model(os.path.join(out_dir, "tpe-wrong-shape.onnx"), build_onnx(layers, nf, input_dim=nf - 1, name="tpe-wrong-shape"),
                meta, {"test_model": "input has n_features - 1 columns"}, name="tpe-wrong-shape")
    # NaN outputs: right shapes, a NaN bias.
    layers = [(np.zeros((nf, 3), np.float32), np.array([np.nan, 0.0, np.inf], np.float32))]
    write_model(os.path.join(out_dir, "tpe-nan.onnx"), build_onnx(layers, nf, name="tpe-nan"), meta,
                {"test_model": "bias is NaN/inf"}, name="tpe-nan")
    log(f"wrote test models to {out_dir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steerd", help="use this steerd binary instead of building one")
    ap.add_argument("--data", action="append", default=[], help="exported telemetry CSV to train on (repeatable)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--buckets", type=int, default=30240, help="buckets per training scenario (3 weeks)")
    ap.add_argument("--destinations", type=int, default=64)
    ap.add_argument("--stride", type=int, default=9)
    ap.add_argument("--hidden", default="128,64", help="hidden layer sizes")
    ap.add_argument("--scenarios", default=",".join(TRAIN_SCENARIOS), help="training scenarios NAME:SEED,... (seeds < 1000)")
    ap.add_argument("--weight", default="sqrt", choices=["linear", "sqrt", "none"], help="row weighting")
    ap.add_argument("--make-test-models", action="store_true", help="write the bad models used by the tests and exit")
    args = ap.parse_args()

    binary = steerd_binary(args)
    if args.make_test_models:
        make_test_models(binary, os.path.join(ROOT, "tests", "data"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = [v for v in args.scenarios.split(",") if v]
        x, y, meta = dataset(binary, os.path.join(tmp, "train"), scenarios, args.data, args.buckets,
                             args.destinations, args.stride)
        xv, yv, _ = dataset(binary, os.path.join(tmp, "val"), VAL_SCENARIOS, [], args.buckets,
                            args.destinations, args.stride * 4)
    log(f"training rows {x.shape}, validation rows {xv.shape}")
    global HIDDEN
    HIDDEN = tuple(int(v) for v in args.hidden.split(","))
    w_rows = row_weights(x, meta, args.weight)
    t0 = time.time()
    layers, history = train(x, y, w_rows, xv, yv, args.epochs, SEED, lr=args.lr)
    log(f"trained in {time.time() - t0:.0f} s")
    onnx_bytes = build_onnx(layers, x.shape[1])
    training = {
        "script": "scripts/train.py",
        "seed": SEED,
        "scenarios": scenarios,
        "telemetry_files": [os.path.basename(d) for d in args.data],
        "validation_scenarios": VAL_SCENARIOS,
        "buckets_per_scenario": args.buckets,
        "destinations": args.destinations,
        "stride": args.stride,
        "rows": int(x.shape[0]),
        "architecture": f"MLP {x.shape[1]}-{'-'.join(map(str, HIDDEN))}-3 ReLU, Gemm/Relu, opset 13",
        "loss": f"smooth L1 (delta 0.05) on log1p-ratio targets, rows weighted: {args.weight} in level",
        "optimizer": f"Adam lr {args.lr} cosine decay, batch 512",
        "epochs": history,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, MODEL_NAME + ".onnx")
    write_model(out, onnx_bytes, meta, training)
    log(f"wrote {out} sha256 {hashlib.sha256(onnx_bytes).hexdigest()}")


if __name__ == "__main__":
    main()
