#!/usr/bin/python3
"""roundtrip_torch.py - mlp.h's model files to PyTorch and back, through
tools/mlp.py (the Python side of `make test-python`, run by
tests/test_python.sh).

    /usr/bin/python3 tests/roundtrip_torch.py BUILD_DIR OUT_DIR [MNIST_DIR]

For a data set (always a small synthetic one written to OUT_DIR; MNIST too
when MNIST_DIR is given):
  mlp.h -> PyTorch   BUILD_DIR/train_mnist trains a network with batchnorm;
                     mlp.py loads it (and dumps it back byte for byte) into a
                     torch.nn.Sequential (Linear with weight = W.T,
                     BatchNorm1d in eval mode with the running statistics and
                     eps, ReLU / Sigmoid / Tanh, Dropout), which must predict
                     what mlp_predict does (BUILD_DIR/export_gen --model) on
                     every test image
  PyTorch -> mlp.h   PyTorch trains a ReLU network with softmax cross-entropy
                     (SGD, fixed seed, one thread); mlp.py saves it; mlp.h's
                     predictions (export_gen --model) must match PyTorch's on
                     every test image, and classify --raw must name
                     PyTorch's digit for a few test images written as PNGs
                     by idx2png
"Match": the same argmax for every image and every probability within 1e-5;
the largest difference is printed. Exit status 0 when everything matched.
"""
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import mlp  # noqa: E402

TOL = 1e-5
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: %s" % what)
    return ok


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes())


def read_floats(path):
    """export_gen's .in / .ref: int32 rows, int32 width, rows x width float32."""
    head = np.fromfile(path, dtype=np.int32, count=2)
    return np.fromfile(path, dtype=np.float32, offset=8).reshape(int(head[0]), int(head[1]))


def synthetic(d):
    """Four classes of 5 x 6 pictures (a bright bar whose row is the class, on
    noise) under MNIST's file names."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(3)
    for name, n in (("train", 2000), ("t10k", 500)):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 110, (n, 5, 6))
        x[np.arange(n), y, :] += 140
        write_idx(os.path.join(d, "%s-images-idx3-ubyte" % name), x)
        write_idx(os.path.join(d, "%s-labels-idx1-ubyte" % name), y)
    return d


def to_torch(model):
    """An mlp.py model as a torch.nn.Sequential in eval mode (float32)."""
    mods = []
    for L in model["layers"]:
        kind = L["kind"]
        if kind == "dense":
            n_in, n_out = L["W"].shape
            lin = nn.Linear(n_in, n_out)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(L["W"].T)))
                lin.bias.copy_(torch.from_numpy(L["b"]))
            mods.append(lin)
        elif kind == "batchnorm":
            bn = nn.BatchNorm1d(L["gamma"].size, eps=L["eps"], momentum=L["momentum"])
            with torch.no_grad():
                bn.weight.copy_(torch.from_numpy(L["gamma"]))
                bn.bias.copy_(torch.from_numpy(L["beta"]))
                bn.running_mean.copy_(torch.from_numpy(L["mean"]))
                bn.running_var.copy_(torch.from_numpy(L["var"]))
            mods.append(bn)
        elif kind == "act":
            mods.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[L["fn"]]())
        else:
            mods.append(nn.Dropout(L["rate"]))  # the identity in eval mode
    return nn.Sequential(*mods).eval()


def torch_predict(net, model, raw):
    """PyTorch's outputs for raw inputs, normalised as mlp.h does (float32)."""
    x = torch.from_numpy(np.asarray(raw, dtype=np.float32))
    x = x * np.float32(model["input_scale"]) + np.float32(model["input_offset"])
    with torch.no_grad():
        y = net(x)
        if model["loss"] == "ce":
            y = torch.softmax(y, dim=1)
    return y.numpy()


def compare(ours, ref, what):
    diff = float(np.abs(ours.astype(np.float64) - ref).max())
    a, b = ours.argmax(1), ref.argmax(1)
    n_bad = int((a != b).sum())
    top2 = np.sort(ref, axis=1)[:, -2:]
    close = int((top2[:, 1] - top2[:, 0] < TOL).sum())
    print("  %s: %d images, largest difference %.3g, argmax %s (%d near-ties in mlp.h's probabilities)"
          % (what, len(ref), diff, "identical" if not n_bad else "DIFFERS for %d" % n_bad, close))
    check(diff <= TOL and n_bad == 0, "%s: largest difference %.3g, argmax differs for %d images" % (what, diff, n_bad))


def mlp_h_to_torch(B, out, data, layers, name):
    """train_mnist's model, loaded into PyTorch."""
    path = os.path.join(out, name + "-mlph.mlp")
    run([os.path.join(B, "train_mnist"), "--data", data, "--layers", layers, "--batchnorm", "--epochs", "1",
         "--seed", "2", "--quiet", "--out", path])
    raw_bytes = open(path, "rb").read()
    model = mlp.loads(raw_bytes)
    check(mlp.dumps(model) == raw_bytes, "%s: mlp.py's dump of train_mnist's model differs" % name)
    prefix = os.path.join(out, name + "-mlph")
    run([os.path.join(B, "export_gen"), "--model", path, os.path.join(data, "t10k-images-idx3-ubyte"), prefix])
    raw, ref = read_floats(prefix + ".in"), read_floats(prefix + ".ref")
    net = to_torch(model)
    compare(torch_predict(net, model, raw), ref, "%s mlp.h -> PyTorch (%s)" % (name, mlp.describe(model)))


def torch_to_mlp_h(B, out, data, hidden, steps, name, min_acc):
    """A PyTorch network, saved by mlp.py, run by mlp.h."""
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    X = read_idx(os.path.join(data, "train-images-idx3-ubyte"))
    h, w = X.shape[1:]
    X = X.reshape(len(X), h * w)
    Y = read_idx(os.path.join(data, "train-labels-idx1-ubyte")).astype(np.int64)
    n_out = int(Y.max()) + 1
    scale = float(np.float32(1.0 / 255.0))
    net = nn.Sequential(nn.Linear(h * w, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    Xt = torch.from_numpy(X.astype(np.float32) * np.float32(scale))
    Yt = torch.from_numpy(Y)
    for step in range(steps):
        i = torch.from_numpy(rng.integers(0, len(X), 64))
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(Xt[i]), Yt[i])
        loss.backward()
        opt.step()
    net.eval()
    lin1, lin2 = net[0], net[2]
    g = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    model = {"loss": "ce", "image_w": w, "image_h": h, "input_scale": scale, "input_offset": 0.0, "layers": [
        {"kind": "dense", "W": g(lin1.weight).T.copy(), "b": g(lin1.bias)},
        {"kind": "act", "fn": "relu", "width": hidden},
        {"kind": "dense", "W": g(lin2.weight).T.copy(), "b": g(lin2.bias)}]}
    path = os.path.join(out, name + "-torch.mlp")
    mlp.save(model, path)
    prefix = os.path.join(out, name + "-torch")
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    run([os.path.join(B, "export_gen"), "--model", path, images, prefix])
    raw, ref = read_floats(prefix + ".in"), read_floats(prefix + ".ref")
    with torch.no_grad():
        ours = torch.softmax(net(torch.from_numpy(raw) * np.float32(scale)), dim=1).numpy()
    labels = read_idx(os.path.join(data, "t10k-labels-idx1-ubyte"))
    acc = float((ours.argmax(1) == labels).mean())
    compare(ours, ref, "%s PyTorch -> mlp.h (%s, %d SGD steps, test accuracy %.4f)" % (name, mlp.describe(model), steps, acc))
    check(acc >= min_acc, "%s: PyTorch's network reached only %.4f (want %.2f): did it train?" % (name, acc, min_acc))
    # classify --raw on PNGs of a few test images
    png_dir = os.path.join(out, name + "-png")
    os.makedirs(png_dir, exist_ok=True)
    for f in os.listdir(png_dir):
        os.unlink(os.path.join(png_dir, f))
    first, count = 0, 12
    run([os.path.join(B, "idx2png"), "--first", str(first), "--count", str(count), images, png_dir])
    pngs = sorted(os.path.join(png_dir, f) for f in os.listdir(png_dir))
    check(len(pngs) == count, "%s: idx2png wrote %d PNGs, not %d" % (name, len(pngs), count))
    lines = run([os.path.join(B, "classify"), "--raw", "--json", path] + pngs).splitlines()
    agree, worst = 0, 0.0
    for line in lines:
        r = json.loads(line)
        i = int(os.path.basename(r["file"]).split(".")[0])
        worst = max(worst, float(np.abs(np.array(r["probs"]) - ours[i]).max()))
        agree += check(r["digit"] == int(ours[i].argmax()),
                       "%s: classify says %d for %s, PyTorch %d" % (name, r["digit"], r["file"], ours[i].argmax()))
    print("  %s classify --raw: %d of %d PNGs name PyTorch's digit (probabilities within %.3g, as printed)"
          % (name, agree, len(pngs), worst))
    check(len(lines) == len(pngs) and worst <= 1e-4, "%s: classify printed %d lines, probabilities off by %.3g"
          % (name, len(lines), worst))


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    B, out = sys.argv[1], sys.argv[2]
    mnist = sys.argv[3] if len(sys.argv) == 4 else None
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    t = time.time()
    synth = synthetic(os.path.join(out, "synth"))
    mlp_h_to_torch(B, out, synth, "30-12-8-4", "synthetic")
    torch_to_mlp_h(B, out, synth, 16, 300, "synthetic", 0.9)
    print("  (synthetic: %.1f s)" % (time.time() - t))
    if mnist:
        t = time.time()
        mlp_h_to_torch(B, out, mnist, "784-32-10", "MNIST")
        torch_to_mlp_h(B, out, mnist, 32, 400, "MNIST", 0.85)
        print("  (MNIST: %.1f s)" % (time.time() - t))
    if failures:
        print("roundtrip_torch: %d check(s) failed" % len(failures))
        return 1
    print("roundtrip_torch: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
