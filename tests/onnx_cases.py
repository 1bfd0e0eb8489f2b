#!/usr/bin/python3
"""Synthetic networks for tests/test_onnx.sh, which need no MNIST: every
layer kind and activation, input dropout, batchnorm with drawn statistics,
normalisations with an offset, an output activation, both losses, input
columns (per-feature standardisation of features on very different scales,
as train_csv writes it) with class names (one of them not UTF-8).

    tests/onnx_cases.py DIR

writes, for each case NAME, DIR/NAME.mlp (tools/mlp.py's save, which
checks it as mlp.h's loader does) and DIR/NAME.idx (500 raw inputs as a
float32 IDX file, for `export_gen --model DIR/NAME.mlp DIR/NAME.idx`), and
prints the names. Weights, biases and statistics are drawn away from their
defaults (seeded: the same files every run).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import numpy as np  # noqa: E402
import mlp  # noqa: E402

ROWS = 500
# name: loss, input scale, offset, widths, hidden activation, output activation,
#       batchnorm, input dropout, hidden dropout
CASES = {
    "relu_ce":         ("ce",  1 / 255, 0.0,  [20, 33, 17, 5],  "relu",    None,      False, 0.0, 0.0),
    "bn_dropout":      ("ce",  0.01,   -0.5,  [12, 40, 24, 7],  "relu",    None,      True,  0.1, 0.3),
    "sigmoid_mse":     ("mse", 2.0,    -1.0,  [7, 9, 3],        "sigmoid", "sigmoid", False, 0.0, 0.0),
    "tanh_bn":         ("ce",  0.5,     0.25, [5, 11, 13, 4],   "tanh",    None,      True,  0.0, 0.0),
    "tanh_mse_linear": ("mse", 0.125,  -1.0,  [16, 8, 6],       "tanh",    None,      False, 0.0, 0.2),
    "one_layer":       ("ce",  1.0,     0.0,  [9, 10],          None,      None,      False, 0.0, 0.0),
    "columns_names":   ("ce",  1.0,     0.0,  [6, 14, 4],       "relu",    None,      False, 0.0, 0.0),
    "columns_mse":     ("mse", 0.5,     0.25, [8, 10, 3],       "tanh",    None,      True,  0.2, 0.0),
}
# name: the features' means and spreads (input columns scale = 1 / spread,
# offset = -mean / spread, after the header's normalisation), class names
COLUMNS = {
    "columns_names": ([5.8, 3000.0, -0.004, 0.0, 120.0, 1.0], [0.8, 250.0, 0.002, 1e-3, 40.0, 1.0],
                      ["Iris-setosa", "Iris-versicolor", "caf\u00e9 \"cr\u00e8me\", \u65e5\u672c", "\udcff not UTF-8"]),
    "columns_mse": ([0.0, 1.0, -3.0, 10.0, 0.5, 0.0, 2e4, -7.0], [1.0, 0.5, 2.0, 2.0, 3.0, 1.0, 5e3, 1.5],
                    ["x", "y (m/s)", "\u0394t \u2264 1"]),  # UTF-8 only: plain UTF-8 JSON
}


def f32(a):
    return np.asarray(a, dtype=np.float32)


def network(rng, loss, scale, offset, widths, act, out_act, bn, drop_in, drop_hidden):
    layers = [{"kind": "dropout", "rate": drop_in, "width": widths[0]}] if drop_in else []
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        layers.append({"kind": "dense", "W": f32(rng.uniform(-0.75, 0.75, (n_in, n_out))),
                       "b": f32(rng.uniform(-0.75, 0.75, n_out))})
        last = i == len(widths) - 2
        if bn and not last:
            layers.append({"kind": "batchnorm", "eps": 1e-5, "momentum": 0.1,
                           "gamma": f32(rng.uniform(0.5, 1.5, n_out)), "beta": f32(rng.uniform(-0.75, 0.75, n_out)),
                           "mean": f32(rng.uniform(-0.5, 0.5, n_out)), "var": f32(rng.uniform(0.05, 2.05, n_out))})
        fn = out_act if last else act
        if fn:
            layers.append({"kind": "act", "fn": fn, "width": n_out})
        if drop_hidden and not last:
            layers.append({"kind": "dropout", "rate": drop_hidden, "width": n_out})
    return {"loss": loss, "image_w": 0, "image_h": 0, "input_scale": scale, "input_offset": offset, "layers": layers}


def write_idx_f32(path, a):
    """a (2-D) as an IDX file of big-endian float32 (type 0x0D)"""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x0D, a.ndim]) + struct.pack(">%dI" % a.ndim, *a.shape))
        f.write(np.ascontiguousarray(a, dtype=">f4").tobytes())


def main():
    if len(sys.argv) != 2:
        print("usage: tests/onnx_cases.py DIR", file=sys.stderr)
        return 2
    rng = np.random.default_rng(2026)
    for name, case in CASES.items():
        loss, scale, offset, widths = case[:4]
        model = network(rng, *case)
        col_scale, col_offset = np.float32(1.0), np.float32(0.0)
        if name in COLUMNS:
            mean, spread, names = COLUMNS[name]
            mean = np.asarray(mean, dtype=np.float64) * scale + offset  # after the header's normalisation
            spread = np.asarray(spread, dtype=np.float64) * abs(scale)
            col_scale, col_offset = f32(1.0 / spread), f32(-mean / spread)
            model["columns"], model["class_names"] = (col_scale, col_offset), names
        mlp.save(model, os.path.join(sys.argv[1], name + ".mlp"))
        # normalised inputs in [-0.5, 1.5), as raw values
        x = rng.random((ROWS, widths[0])) * 2.0 - 0.5
        raw = ((x - col_offset) / col_scale - offset) / scale
        write_idx_f32(os.path.join(sys.argv[1], name + ".idx"), f32(raw))
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
