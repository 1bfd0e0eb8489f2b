#!/usr/bin/python3
"""test_mlp_py.py - tools/mlp.py (NumPy) against mlp.h's model files.

    /usr/bin/python3 tests/test_mlp_py.py [BUILD_DIR]      (default build)

From the repository's root. Needs NumPy; BUILD_DIR/train_mnist and
BUILD_DIR/export_gen for the parts that ask mlp.h (skipped, with a message,
when they are missing). Without NumPy: skipped, exit 0 (1 with
MLP_REQUIRE_PYTHON=1). Scratch files go to BUILD_DIR/python/mlp_py.

  round trip   tests/data/golden-3-2-2.mlp, the fuzz corpus's models and
               models train_mnist writes (batchnorm, dropout on the input and
               the hidden layers, sigmoid + MSE, tanh, an input that is not an
               image; synthetic data, no MNIST needed): load then dump gives
               the file back byte for byte, save() writes the same bytes, and
               predict() agrees with mlp_predict (export_gen --model) within
               1e-5 with the same argmax
  hostile      every truncation of small models (as is, and with the
               checksum resealed so the record checks are reached), every
               bit of every byte flipped, wrong magic / version / flags,
               record sizes that lie, huge widths in a short file: each
               raises MlpFormatError whose message names the problem, never
               another exception, and loading allocates no more than a few
               times the file's size (tracemalloc)
  differential every header and record field of small models set to edge
               values, records deleted / duplicated / swapped, random bytes
               changed, the checksum resealed: mlp.py accepts exactly what
               mlp.h accepts, rejects at the same layer record, and what both
               accept dumps back to the same bytes (one exception, counted
               and printed: an input dropout record with the wrong width,
               which mlp.h 0.4 loads and mlp.py refuses)
  dumps        hand-built models that break each of mlp.h's rules are
               refused with the rule named; one with every layer kind is
               written by mlp.py and predicted by mlp.h alike
  cli          mlp.py info: the architecture line, exit 1 on a bad file
Exit status 0 when everything passed, 1 otherwise.
"""
import concurrent.futures
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

try:
    import numpy as np
except ImportError:
    if os.environ.get("MLP_REQUIRE_PYTHON") == "1":
        print("test_mlp_py: %s has no NumPy (apt-get install python3-numpy; MLP_REQUIRE_PYTHON=1)" % sys.executable)
        sys.exit(1)
    print("test_mlp_py: skipped: %s has no NumPy (apt-get install python3-numpy)" % sys.executable)
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import mlp  # noqa: E402

B = sys.argv[1] if len(sys.argv) > 1 else "build"
OUT = os.path.join(B, "python", "mlp_py")
EXPORT_GEN = os.path.join(B, "export_gen")
TRAIN = os.path.join(B, "train_mnist")
HAVE_C = os.access(EXPORT_GEN, os.X_OK) and os.access(TRAIN, os.X_OK)
GOLDEN = os.path.join(ROOT, "tests", "data", "golden-3-2-2.mlp")
CORPUS = os.path.join(ROOT, "tests", "corpus", "model")

failures = []
notes = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: %s" % what)
    return ok


def section(name):
    print("== %s" % name)


def timed(t):
    now = time.time()
    print("  (%.1f s)" % (now - t))
    return now


def reseal(b):
    """b with its last four bytes replaced by the CRC-32 of the rest."""
    b = bytearray(b)
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


def load_error(data):
    """mlp.loads(data)'s MlpFormatError message, or None when it loads.
    Any other exception is a failure of its own."""
    try:
        mlp.loads(data)
        return None
    except mlp.MlpFormatError as e:
        return str(e)


def expect_error(data, keywords, what, memory=True):
    """loads(data) must raise MlpFormatError mentioning every keyword, and
    (memory) allocate at most a few times len(data) while trying."""
    if memory:
        tracemalloc.start()
    try:
        mlp.loads(data)
        msg = None
    except mlp.MlpFormatError as e:
        msg = str(e)
    except BaseException as e:  # MemoryError, struct.error, IndexError, ...
        if memory:
            tracemalloc.stop()
        return check(False, "%s: %s instead of MlpFormatError: %s" % (what, type(e).__name__, e))
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if not check(peak <= 4 * len(data) + 65536, "%s: loading took %d bytes for a %d-byte file" % (what, peak, len(data))):
            return False
    if not check(msg is not None, "%s: loaded without complaint" % what):
        return False
    if isinstance(keywords, str):
        keywords = [keywords]
    return check(any(all(k in msg for k in kw.split("&")) for kw in keywords),
                 "%s: message %r mentions none of %s" % (what, msg, keywords))


# ---- data and models written by mlp.h ----------------------------------------

def write_idx(path, array):
    a = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes())


def read_floats(path):
    """export_gen's .in / .ref: int32 rows, int32 width, rows x width float32."""
    head = np.fromfile(path, dtype=np.int32, count=2)
    return np.fromfile(path, dtype=np.float32, offset=8).reshape(int(head[0]), int(head[1]))


def synthetic_data(d, flat=False):
    """Four classes of 5 x 6 pictures (or rows of 30 values): a bright bar
    whose place is the class, on noise. MNIST's file names, in d."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, n in (("train", 400), ("t10k", 100)):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 90, (n, 5, 6))
        for i in range(n):
            x[i, y[i], :] += 150
        write_idx(os.path.join(d, "%s-images-idx3-ubyte" % name), x.reshape(n, 30) if flat else x)
        write_idx(os.path.join(d, "%s-labels-idx1-ubyte" % name), y)


VARIANTS = [  # name, data, train_mnist flags
    ("bn", "img", ["--layers", "30-12-8-4", "--batchnorm"]),
    ("dropout", "img", ["--layers", "30-12-8-4", "--dropout", "0.2", "--dropout-input", "0.1"]),
    ("sigmoid_mse", "img", ["--layers", "30-10-4", "--act", "sigmoid", "--loss", "mse"]),
    ("tanh_bn_dropout", "img", ["--layers", "30-9-7-4", "--act", "tanh", "--batchnorm", "--dropout", "0.3",
                                "--dropout-input", "0.05"]),
    ("flat", "flat", ["--layers", "30-6-4", "--loss", "mse", "--act", "tanh"]),
]


def train_variants():
    """{name: path} of the models train_mnist writes, trained side by side."""
    data = {"img": os.path.join(OUT, "synth"), "flat": os.path.join(OUT, "synth_flat")}
    synthetic_data(data["img"])
    synthetic_data(data["flat"], flat=True)
    procs, paths = [], {}
    for name, which, flags in VARIANTS:
        path = os.path.join(OUT, name + ".mlp")
        cmd = [TRAIN, "--data", data[which], "--epochs", "2", "--batch", "16", "--lr", "0.05", "--quiet",
               "--seed", "3", "--out", path] + flags
        procs.append((name, cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        paths[name] = path
    for name, cmd, p in procs:
        out = p.communicate()[0].decode(errors="replace")
        if not check(p.returncode == 0, "train_mnist %s failed: %s\n%s" % (name, " ".join(cmd), out)):
            paths.pop(name)
    return paths, data


def mlp_h_verdict(path, n_in, tag):
    """(accepted, message) of mlp.h's loader for the model at path, through
    export_gen --model on one row of n_in inputs."""
    idx = os.path.join(OUT, "diff", "row%d.idx" % n_in)
    if not os.path.exists(idx):
        tmp = "%s.%s.tmp" % (idx, tag)  # threads may race to write the same row file
        write_idx(tmp, np.arange(n_in).reshape(1, n_in) % 256)
        os.replace(tmp, idx)
    p = subprocess.run([EXPORT_GEN, "--model", path, idx, os.path.join(OUT, "diff", tag)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = p.stderr.decode(errors="replace").strip()
    if p.returncode == 0:
        return True, ""
    if p.returncode == 1 and err.startswith("export_gen: "):
        return False, err[len("export_gen: "):]
    return None, "export_gen exited %d: %s" % (p.returncode, err)


def compare_predictions(model, path, images, what):
    prefix = os.path.join(OUT, os.path.basename(path) + ".pred")
    p = subprocess.run([EXPORT_GEN, "--model", path, images, prefix], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not check(p.returncode == 0, "%s: export_gen --model failed: %s" % (what, p.stdout.decode(errors="replace"))):
        return
    raw, ref = read_floats(prefix + ".in"), read_floats(prefix + ".ref")
    ours = mlp.predict(model, raw)
    diff = float(np.abs(ours - ref).max())
    same = bool((ours.argmax(1) == ref.argmax(1)).all())
    print("  %-16s predict vs mlp_predict on %d rows: largest difference %.3g, argmax %s"
          % (what, len(raw), diff, "identical" if same else "DIFFERS"))
    check(diff <= 1e-5 and same, "%s: predict differs from mlp_predict (%.3g, argmax same: %s)" % (what, diff, same))


def test_round_trips():
    section("round trips")
    corpus = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS)) if os.path.isdir(CORPUS) else []
    files = [GOLDEN] + corpus
    for path in files:
        data = open(path, "rb").read()
        m = mlp.loads(data)
        check(mlp.dumps(m) == data, "%s: load then dump is not byte-exact" % path)
    # the golden model's values, known from its bytes
    g = mlp.load(GOLDEN)
    check(g["loss"] == "ce" and (g["image_w"], g["image_h"]) == (0, 0) and g["input_scale"] == 1.0
          and g["input_offset"] == 0.0, "golden: header fields")
    check([L["kind"] for L in g["layers"]] == ["dense", "act", "dense"] and g["layers"][1]["fn"] == "tanh",
          "golden: layer kinds")
    W0 = g["layers"][0]["W"]
    check(W0.dtype == np.float32 and W0.shape == (3, 2) and W0[0, 0] == -1.0 and W0[0, 1] == -0.875
          and W0[2, 1] == -0.375, "golden: W[n_in][n_out] row major, float32")
    x = np.array([[1.0, 2.0, -1.0]])
    h = np.tanh(x @ W0.astype(np.float64) + g["layers"][0]["b"])
    z = h @ g["layers"][2]["W"].astype(np.float64) + g["layers"][2]["b"]
    want = np.exp(z) / np.exp(z).sum()
    check(np.abs(mlp.predict(g, x) - want).max() < 1e-12, "golden: predict by hand")
    print("  golden and %d corpus models: byte-exact" % (len(files) - 1))
    if not HAVE_C:
        print("  %s or %s missing: models written by mlp.h not checked (make %s %s)" % (TRAIN, EXPORT_GEN, TRAIN, EXPORT_GEN))
        notes.append("mlp.h's programs missing: no models written by mlp.h, no differential tests")
        return {}
    paths, data = train_variants()
    for name, path in paths.items():
        raw = open(path, "rb").read()
        m = mlp.loads(raw)
        check(mlp.dumps(m) == raw, "%s: load then dump is not byte-exact" % name)
        copy = os.path.join(OUT, name + ".copy.mlp")
        mlp.save(m, copy)
        check(open(copy, "rb").read() == raw and not os.path.exists(copy + ".tmp"), "%s: save() wrote other bytes" % name)
        print("  %-16s %6d bytes byte-exact: %s" % (name, len(raw), mlp.describe(m)))
        which = "flat" if name == "flat" else "img"
        compare_predictions(m, path, os.path.join(data[which], "t10k-images-idx3-ubyte"), name)
    kinds = {L["kind"] for p in paths.values() for L in mlp.load(p)["layers"]}
    check(kinds == {"dense", "act", "dropout", "batchnorm"}, "trained models hold every layer kind (%s)" % kinds)
    m = mlp.load(paths["flat"]) if "flat" in paths else None
    check(m is None or (m["image_w"], m["image_h"]) == (0, 0), "flat: an input that is no image says 0 x 0")
    return paths


# ---- hostile input -------------------------------------------------------------

def field_offsets(data):
    """[(offset, 'u32'|'f32', name)] of every header and record field of a
    valid model, with the first and last value of each array."""
    m = mlp.loads(data)
    fields = [(8, "u32", "version"), (12, "u32", "flags"), (16, "u32", "loss"), (20, "u32", "image_w"),
              (24, "u32", "image_h"), (28, "f32", "input_scale"), (32, "f32", "input_offset"), (36, "u32", "n_records")]
    off = mlp.HEADER
    for r, L in enumerate(m["layers"]):
        size = struct.unpack_from("<I", data, off + 4)[0]
        fields += [(off, "u32", "record %d kind" % r), (off + 4, "u32", "record %d size" % r)]
        p = off + 8
        if L["kind"] == "dense":
            n = L["W"].size
            fields += [(p, "u32", "record %d n_in" % r), (p + 4, "u32", "record %d n_out" % r),
                       (p + 8, "f32", "record %d W first" % r), (p + 8 + 4 * (n - 1), "f32", "record %d W last" % r),
                       (p + 8 + 4 * n, "f32", "record %d b first" % r)]
        elif L["kind"] == "batchnorm":
            n = L["gamma"].size
            fields += [(p, "u32", "record %d width" % r), (p + 4, "f32", "record %d eps" % r),
                       (p + 8, "f32", "record %d momentum" % r)]
            fields += [(p + 12 + 4 * k * n, "f32", "record %d %s" % (r, s)) for k, s in enumerate(("gamma", "beta", "mean", "var"))]
        elif L["kind"] == "act":
            fields += [(p, "u32", "record %d function" % r), (p + 4, "u32", "record %d width" % r)]
        else:
            fields += [(p, "f32", "record %d rate" % r), (p + 4, "u32", "record %d width" % r)]
        off = p + size
    return fields


def small_model():
    """A hand-built model with every layer kind, small enough to mutate at length."""
    rng = np.random.default_rng(1)
    f = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    return {"loss": "ce", "image_w": 2, "image_h": 3, "input_scale": 0.5, "input_offset": -0.25, "layers": [
        {"kind": "dropout", "rate": 0.125, "width": 6},
        {"kind": "dense", "W": f(6, 4), "b": f(4)},
        {"kind": "batchnorm", "eps": float(np.float32(1e-5)), "momentum": float(np.float32(0.1)), "gamma": f(4) + 1,
         "beta": f(4), "mean": f(4), "var": np.abs(f(4)) + 0.5},
        {"kind": "act", "fn": "relu", "width": 4},
        {"kind": "dropout", "rate": 0.25, "width": 4},
        {"kind": "dense", "W": f(4, 3), "b": f(3)},
        {"kind": "act", "fn": "sigmoid", "width": 3},
        {"kind": "dropout", "rate": 0.25, "width": 3},
        {"kind": "dense", "W": f(3, 3), "b": f(3)}]}


def test_hostile(small):
    section("hostile input")
    golden = open(GOLDEN, "rb").read()
    for name, data in (("golden", golden), ("small", small)):
        n_err = 0
        for n in range(len(data)):
            cut = data[:n]
            want = ["too short"] if n < 8 else ["truncated header"] if n < mlp.HEADER + 4 else ["checksum mismatch&damaged or truncated"]
            n_err += not expect_error(cut, want, "%s cut to %d bytes" % (name, n))
            if n >= mlp.HEADER + 4:  # resealed: the record walk must find the end
                n_err += not expect_error(reseal(data[:n - 4] + b"\0\0\0\0"), [
                    "truncated", "bytes claimed", "no dense layer", "cannot come last", "hidden activations", "record has"],
                    "%s cut to %d bytes, checksum resealed" % (name, n))
        print("  %s (%d bytes): every truncation refused%s" % (name, len(data), "" if not n_err else " EXCEPT %d" % n_err))
        n_err = 0
        for i in range(len(data)):
            for bit in range(8):
                b = bytearray(data)
                b[i] ^= 1 << bit
                want = "bad magic" if i < 8 else "model format version" if i < 12 else "checksum mismatch"
                n_err += not expect_error(bytes(b), want, "%s: bit %d of byte %d flipped" % (name, bit, i), memory=False)
        print("  %s: each of the %d single-bit flips refused%s" % (name, 8 * len(data), "" if not n_err else " EXCEPT %d" % n_err))

    def put(data, off, fmt, v):
        b = bytearray(data)
        struct.pack_into(fmt, b, off, v)
        return reseal(b)

    g = golden
    expect_error(b"\x89MLP\r\n\x1a\x0b" + g[8:], "bad magic", "wrong magic")
    expect_error(b"PK\x03\x04" + g[4:], "bad magic", "a zip file")
    expect_error(b"", "too short&0 bytes", "empty")
    expect_error(put(g, 8, "<I", 2), "model format version 2", "version 2")
    expect_error(put(g, 8, "<I", 0), "model format version 0", "version 0")
    expect_error(put(g, 12, "<I", 1), "unknown flags 0x1", "flags 1")
    expect_error(put(g, 12, "<I", 0x80000000), "unknown flags 0x80000000", "flags bit 31")
    expect_error(put(g, 16, "<I", 2), "unknown loss 2", "loss 2")
    expect_error(put(g, 28, "<f", 0.0), "bad input normalisation", "scale 0")
    expect_error(put(g, 28, "<f", float("nan")), "bad input normalisation", "scale NaN")
    expect_error(put(g, 32, "<f", float("inf")), "bad input normalisation", "offset inf")
    expect_error(put(g, 36, "<I", 0), "0 layer records", "no records")
    expect_error(put(g, 36, "<I", 0xFFFFFFFF), "4294967295 layer records&1..256", "2^32-1 records")
    expect_error(put(g, 36, "<I", 256), "layer record 3: truncated", "256 records, 3 present")
    expect_error(put(g, 36, "<I", 2), "unexpected bytes after the last layer", "2 records of 3 counted")
    expect_error(put(put(g, 20, "<I", 2), 24, "<I", 1), "image size 2 x 1 does not match the input width 3", "image 2x1")
    expect_error(put(g, 20, "<I", 3), "bad image size 3 x 0", "image 3x0")
    expect_error(put(put(g, 20, "<I", 1 << 21), 24, "<I", 1), "bad image size", "image 2^21 x 1")
    # record sizes that lie (the golden's records: dense at 40, act at 88, dense at 104, CRC at 144)
    expect_error(put(g, 44, "<I", 36), "layer record 0: dense 3 x 2 needs 40 bytes, record has 36", "dense payload 4 short")
    expect_error(put(g, 44, "<I", 44), "layer record 0: dense 3 x 2 needs 40 bytes, record has 44", "dense payload 4 long")
    expect_error(put(g, 44, "<I", 0xFFFFFFF0), "layer record 0: 4294967280 bytes claimed, 96 left", "dense payload 4 GB")
    expect_error(put(g, 44, "<I", 4), "layer record 0: dense record of 4 bytes", "dense payload 4 bytes")
    expect_error(put(g, 92, "<I", 12), "layer record 1: activation record of 12 bytes (expected 8)", "act payload 12")
    expect_error(put(g, 92, "<I", 0), "layer record 1: activation record of 0 bytes", "act payload 0")
    expect_error(put(g, 108, "<I", 28), "layer record 2: dense 2 x 2 needs 32 bytes, record has 28", "last dense 4 short")
    expect_error(put(g, 108, "<I", 36), "layer record 2: 36 bytes claimed, 32 left", "last dense 4 long")
    # huge widths in a short file
    for n_in, n_out, want in ((1 << 20, 1 << 20, "layer record 0: dense 1048576 x 1048576 needs 4398050705416 bytes, record has 40"),
                              (0xFFFFFFFF, 2, "dense size 4294967295 x 2 outside 1..1048576"),
                              (3, 0xFFFFFFFF, "dense size 3 x 4294967295 outside"),
                              (0, 2, "dense size 0 x 2 outside"), ((1 << 20) + 1, 1, "dense size 1048577 x 1 outside")):
        expect_error(put(put(g, 48, "<I", n_in), 52, "<I", n_out), want, "dense %d x %d" % (n_in, n_out))
    expect_error(put(put(put(g, 44, "<I", 8 + 4 * (3 * 1000 + 1000)), 48, "<I", 3), 52, "<I", 1000),
                 "layer record 0: 16008 bytes claimed, 96 left", "dense 3 x 1000 claimed, 96 bytes present")
    # the small model: batchnorm and dropout fields (records: dropout 40, dense 56, batchnorm ...)
    s = small
    fields = {name: off for off, kind, name in field_offsets(s)}
    expect_error(put(s, fields["record 2 width"], "<I", 0xFFFFFFFF), "layer record 2: batchnorm must follow a dense layer of the same width", "batchnorm width 2^32-1")
    expect_error(put(s, fields["record 2 size"], "<I", 12 + 16 * 5), "layer record 2: batchnorm of width 4 needs 76 bytes, record has 92", "batchnorm size lies")
    expect_error(put(s, fields["record 2 size"], "<I", 8), "layer record 2: batchnorm record of 8 bytes", "batchnorm size 8")
    expect_error(put(s, fields["record 2 eps"], "<f", 0.0), "layer record 2: batchnorm eps 0 or momentum 0.1 out of range", "eps 0")
    expect_error(put(s, fields["record 2 momentum"], "<f", 1.5), "momentum 1.5 out of range", "momentum 1.5")
    expect_error(put(s, fields["record 2 var"], "<f", -1.0), "running statistics of unit 0&variance < 0", "var -1")
    expect_error(put(s, fields["record 2 mean"], "<f", float("inf")), "running statistics of unit 0", "mean inf")
    expect_error(put(s, fields["record 2 gamma"], "<f", float("nan")), "layer record 2: batchnorm gamma[0] is not finite", "gamma NaN")
    expect_error(put(s, fields["record 1 W last"], "<f", float("-inf")), "layer record 1: dense W[5][3] is not finite", "W inf")
    expect_error(put(s, fields["record 0 rate"], "<f", 1.0), "layer record 0: dropout rate 1 outside (0, 1)", "rate 1")
    expect_error(put(s, fields["record 0 rate"], "<f", float("nan")), "dropout rate nan outside", "rate NaN")
    expect_error(put(s, fields["record 4 rate"], "<f", 0.5), "layer record 7: hidden dropout rates differ (0.5, 0.25)", "hidden rates differ")
    expect_error(put(s, fields["record 4 width"], "<I", 5), "layer record 4: dropout must follow the input or an activation of the same width", "dropout width")
    expect_error(put(s, fields["record 3 function"], "<I", 4), "layer record 3: unknown activation function 4", "act 4")
    expect_error(put(s, fields["record 3 width"], "<I", 3), "layer record 3: activation width 3 does not match 4", "act width")
    expect_error(put(s, fields["record 3 kind"], "<I", 5), "layer record 3: unknown layer kind 5&newer mlp.h", "kind 5")
    expect_error(put(s, fields["record 0 width"], "<I", 7), "input dropout width 7 does not match the input width 6", "input dropout width")
    expect_error(put(s, fields["record 8 n_out"], "<I", 1), "record has", "n_out changed alone")


# ---- differential: mlp.py and mlp.h accept the same files --------------------------

U32_VALUES = [0, 1, 2, 3, 4, 5, 0x80000000, 0xFFFFFFFF, 1 << 20, (1 << 20) + 1]
F32_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, float("nan"), float("inf"), float("-inf"), 1e-45, 3e38]


def mutants(name, data, rng, header=True, n_random=40):
    """(tag, bytes) of mutations of a valid model, checksums resealed:
    each field set to edge values (header fields too when header), whole
    records deleted / duplicated / swapped, n_random random byte changes."""
    out = []
    for off, kind, field in field_offsets(data):
        if off < mlp.HEADER and not header:
            continue
        old = struct.unpack_from("<" + ("I" if kind == "u32" else "f"), data, off)[0]
        if kind == "u32":
            values = U32_VALUES + [old - 1, old + 1]
        elif field.split()[-1] in ("first", "last", "gamma", "beta", "mean", "var"):  # array values: finite or not
            values = [float("nan"), float("inf"), -0.0, 3e38, -old]
        else:
            values = F32_VALUES + [-old, old * 2]
        for v in values:
            if kind == "u32" and not 0 <= v <= 0xFFFFFFFF:
                continue
            b = bytearray(data)
            struct.pack_into("<I" if kind == "u32" else "<f", b, off, v)
            out.append(("%s %s=%r" % (name, field, v), reseal(b)))
    # whole records deleted, duplicated, swapped with the next (count adjusted)
    spans, off = [], mlp.HEADER
    while off < len(data) - 4:
        size = struct.unpack_from("<I", data, off + 4)[0]
        spans.append((off, off + 8 + size))
        off += 8 + size
    body, tail = data[:mlp.HEADER], len(data) - 4
    recs = [data[a:b] for a, b in spans]
    for r in range(len(recs)):
        for how, new in (("deleted", recs[:r] + recs[r + 1:]), ("duplicated", recs[:r + 1] + recs[r:]),
                         ("swapped with the next", recs[:r] + recs[r + 1:r + 2] + recs[r:r + 1] + recs[r + 2:])):
            if new == recs or not new:
                continue
            head = bytearray(body)
            struct.pack_into("<I", head, 36, len(new))
            out.append(("%s record %d %s" % (name, r, how), reseal(bytes(head) + b"".join(new) + b"\0\0\0\0")))
    # random bytes changed
    for k in range(n_random):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(8, tail))
            b[i] = int(rng.integers(0, 256))
        out.append(("%s random %d" % (name, k), reseal(b)))
    return out


def first_n_in(data):
    """The input width a model's first dense record claims (for the one row
    export_gen is given), 1 when there is no plausible one."""
    off = mlp.HEADER
    for _ in range(2):
        if off + 16 > len(data):
            break
        kind, size = struct.unpack_from("<II", data, off)
        if kind == mlp.REC_DENSE:
            n = struct.unpack_from("<I", data, off + 8)[0]
            return n if 1 <= n <= 4096 else 1
        off += 8 + size
    return 1


def test_differential(models):
    section("differential: mlp.py against mlp.h's loader")
    if not HAVE_C:
        print("  skipped: %s missing" % EXPORT_GEN)
        return
    os.makedirs(os.path.join(OUT, "diff"), exist_ok=True)
    rng = np.random.default_rng(11)
    cases = []
    for i, (name, data) in enumerate(models):
        cases += mutants(name, data, rng, header=i < 2, n_random=40 if i < 2 else 20)

    def run(i):
        tag, data = cases[i]
        path = os.path.join(OUT, "diff", "m%d.mlp" % i)
        with open(path, "wb") as f:
            f.write(data)
        verdict = mlp_h_verdict(path, first_n_in(data), "m%d" % i)
        for ext in ("", ".in", ".ref"):
            if os.path.exists(path[:-4] + ext if ext else path):
                os.unlink(path[:-4] + ext if ext else path)
        return verdict

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(run, range(len(cases))))
    both_ok = both_bad = lenient = 0
    for (tag, data), (c_ok, c_msg) in zip(cases, verdicts):
        try:
            py_msg = load_error(data)
        except BaseException as e:
            check(False, "%s: %s instead of MlpFormatError: %s" % (tag, type(e).__name__, e))
            continue
        if not check(c_ok is not None, "%s: %s" % (tag, c_msg)):
            continue
        if c_ok and py_msg is None:
            both_ok += 1
            check(mlp.dumps(mlp.loads(data)) == data, "%s: accepted by both, but dumps gives other bytes" % tag)
        elif not c_ok and py_msg is not None:
            both_bad += 1
            if c_msg.startswith("layer record "):
                prefix = c_msg.split(":")[0]
                check(py_msg.startswith(prefix + ":"), "%s: mlp.h says %r, mlp.py %r" % (tag, c_msg, py_msg))
        elif c_ok and "input dropout width" in py_msg:
            lenient += 1  # mlp.h 0.4 ignores this field (see tools/mlp.py)
        else:
            check(False, "%s: mlp.h %s (%s), mlp.py %s (%s)" % (tag, "accepts" if c_ok else "rejects", c_msg,
                                                             "accepts" if py_msg is None else "rejects", py_msg))
    print("  %d mutants: %d loaded by both (byte-exact again), %d refused by both at the same record%s"
          % (len(cases), both_ok, both_bad,
             "; %d with a wrong input dropout width that mlp.h loads and mlp.py refuses" % lenient if lenient else ""))
    if lenient:
        notes.append("mlp.h loads a model whose input dropout record has the wrong width (%d mutants); "
                     "mlp.py refuses it" % lenient)


# ---- dumps: mlp.h's rules on models built in Python -------------------------------

def test_dumps(small_dict):
    section("dumps: the rules")
    import copy

    def refused(mutate, keywords, what):
        m = copy.deepcopy(small_dict)
        mutate(m)
        try:
            mlp.dumps(m)
        except mlp.MlpFormatError as e:
            return check(any(all(k in str(e) for k in kw.split("&")) for kw in keywords),
                         "dumps %s: message %r mentions none of %s" % (what, str(e), keywords))
        except BaseException as e:
            return check(False, "dumps %s: %s instead of MlpFormatError: %s" % (what, type(e).__name__, e))
        return check(False, "dumps %s: accepted" % what)

    L = lambda m: m["layers"]  # noqa: E731
    refused(lambda m: m.update(loss="hinge"), ["unknown loss 'hinge'"], "loss hinge")
    refused(lambda m: m.pop("layers"), ["no 'layers'"], "no layers")
    refused(lambda m: m.update(layers=[]), ["1..256 layers"], "empty layers")
    refused(lambda m: L(m)[1].update(b=np.zeros(5, np.float32)), ["b has shape (5,)"], "b of the wrong length")
    refused(lambda m: L(m)[1].update(W=np.zeros(24, np.float32)), ["'W' must be a 2-D array"], "W 1-D")
    refused(lambda m: L(m)[1].update(W=np.array([["a"]])), ["'W' must be a 2-D array of numbers"], "W of strings")
    refused(lambda m: L(m)[5].update(W=np.zeros((5, 3), np.float32)), ["layer record 5: dense input 5 does not match the previous width 4"], "chain broken")
    refused(lambda m: L(m)[3].update(width=5), ["activation width 5 does not match 4"], "act width")
    refused(lambda m: L(m)[3].update(fn="gelu"), ["unknown activation 'gelu'"], "act gelu")
    refused(lambda m: L(m)[3].update(width=-1), ["width: -1 does not fit a u32"], "width -1")
    refused(lambda m: L(m)[3].update(width=4.0), ["expected an integer"], "width 4.0")
    refused(lambda m: L(m).insert(2, {"kind": "dropout", "rate": 0.25, "width": 4}),
            ["dropout must follow the input or an activation"], "dropout after dense")
    refused(lambda m: L(m).insert(1, {"kind": "dropout", "rate": 0.25, "width": 6}), ["two dropout layers in a row"], "two dropouts")
    refused(lambda m: L(m).append({"kind": "act", "fn": "tanh", "width": 3}) or L(m).append({"kind": "dropout", "rate": 0.25, "width": 3}),
            ["cannot come last", "hidden activations"], "dropout last")
    refused(lambda m: L(m).pop(7), ["dropout after 1 of 2 hidden activations"], "dropout on some hidden layers")
    refused(lambda m: L(m)[7].update(rate=0.5), ["hidden dropout rates differ (0.25, 0.5)"], "hidden rates differ")
    refused(lambda m: L(m)[0].update(rate=1 - 1e-9), ["dropout rate 1 outside (0, 1)"], "rate rounding to 1 in float32")
    refused(lambda m: L(m)[0].update(rate=0.0), ["dropout rate 0 outside"], "rate 0")
    refused(lambda m: L(m)[0].update(width=5), ["input dropout width 5 does not match the input width 6"], "input dropout width")
    refused(lambda m: L(m).insert(4, L(m)[2]), ["batchnorm must follow a dense layer"], "batchnorm after act")
    refused(lambda m: L(m)[2].update(eps=0.0), ["batchnorm eps 0"], "eps 0")
    refused(lambda m: L(m)[2].update(var=np.ones(5, np.float32)), ["must have one shape"], "var of the wrong length")
    refused(lambda m: L(m)[2].update(var=-np.ones(4, np.float32)), ["running statistics of unit 0"], "var < 0")
    refused(lambda m: L(m)[1]["W"].__setitem__((0, 0), np.nan), ["layer record 1: dense W[0][0] is not finite"], "W NaN")
    refused(lambda m: L(m)[1].update(W=np.full((6, 4), 1e39)), ["dense W[0][0] is not finite"], "W beyond float32")
    refused(lambda m: m.update(image_w=3), ["image size 3 x 3 does not match the input width 6"], "image size")
    refused(lambda m: m.update(image_h=0), ["bad image size 2 x 0"], "image height 0")
    refused(lambda m: m.update(input_scale=0.0), ["bad input normalisation"], "scale 0")
    refused(lambda m: m.update(input_scale=1e39), ["input_scale: 1e+39 does not fit a float32"], "scale 1e39")
    refused(lambda m: L(m)[8].update(W=np.zeros((3, 1), np.float32), b=np.zeros(1, np.float32)),
            ["cross-entropy model with one output"], "ce with one output")
    refused(lambda m: m.update(layers=[{"kind": "dense", "W": np.zeros((2, 2)), "b": np.zeros(2)}] * 65),
            ["more than 64 dense layers"], "65 dense layers")
    refused(lambda m: L(m).__setitem__(3, {"kind": "conv"}), ["unknown layer kind"], "a conv layer")
    refused(lambda m: L(m)[1].update(W=np.zeros((1, 1 << 21), np.float32), b=np.zeros(1 << 21, np.float32)),
            ["dense size 1 x 2097152 outside 1..1048576"], "width 2^21")
    # defaults and conversions: float64 arrays and Python floats rounded to float32
    m = {"loss": "mse", "layers": [{"kind": "dense", "W": np.array([[0.1, 0.2]]), "b": np.array([1 / 3, 2.0])}]}
    back = mlp.loads(mlp.dumps(m))
    check(back["image_w"] == 0 and back["input_scale"] == 1.0 and back["input_offset"] == 0.0
          and back["layers"][0]["W"][0, 0] == np.float32(0.1) and back["layers"][0]["b"][0] == np.float32(1 / 3),
          "dumps: defaults and float32 rounding")
    # atomic save: a refused model leaves neither the file nor PATH.tmp
    bad = os.path.join(OUT, "refused.mlp")
    try:
        mlp.save({"loss": "ce", "layers": []}, bad)
    except mlp.MlpFormatError:
        pass
    check(not os.path.exists(bad) and not os.path.exists(bad + ".tmp"), "save: a refused model left a file behind")
    print("  every rule refused with its reason")
    # written by mlp.py, predicted by mlp.h
    if HAVE_C:
        path = os.path.join(OUT, "small.mlp")
        mlp.save(small_dict, path)
        rng = np.random.default_rng(5)
        images = os.path.join(OUT, "small-images.idx")
        write_idx(images, rng.integers(0, 256, (200, 3, 2)))
        compare_predictions(mlp.load(path), path, images, "python-built")
        mse = copy.deepcopy(small_dict)
        mse["loss"] = "mse"
        mse["layers"].append({"kind": "act", "fn": "tanh", "width": 3})
        mlp.save(mse, path)
        compare_predictions(mlp.load(path), path, images, "python-built mse")


# ---- the command line ---------------------------------------------------------

def test_cli(paths):
    section("mlp.py info")
    tool = [sys.executable, os.path.join(ROOT, "tools", "mlp.py")]
    p = subprocess.run(tool + ["info", GOLDEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.decode()
    check(p.returncode == 0 and out.startswith("3-2-2, tanh, loss ce, input x*1+0\n"), "info golden: %r" % out)
    if "bn" in paths:
        p = subprocess.run(tool + ["info", paths["bn"]], stdout=subprocess.PIPE)
        first = p.stdout.decode().splitlines()[0]
        print("  " + first)
        check(first == "30-12-8-4, relu, batchnorm, loss ce, input x*0.00392157+0, image 6x5", "info bn: %r" % first)
    bad = os.path.join(OUT, "bad.mlp")
    with open(bad, "wb") as f:
        f.write(open(GOLDEN, "rb").read()[:-1])
    p = subprocess.run(tool + ["info", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = p.stderr.decode()
    check(p.returncode == 1 and "checksum mismatch" in err and bad in err and not p.stdout, "info on a bad file: %d %r" % (p.returncode, err))
    p = subprocess.run(tool + ["info", os.path.join(OUT, "absent.mlp")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.returncode == 1 and "No such file" in p.stderr.decode(), "info on a missing file: %r" % p.stderr)
    p = subprocess.run(tool, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.returncode == 2 and "usage" in p.stderr.decode(), "mlp.py without arguments: usage, exit 2")


def main():
    os.makedirs(OUT, exist_ok=True)
    small_dict = small_model()
    small = mlp.dumps(small_dict)
    t = time.time()
    paths = test_round_trips()
    t = timed(t)
    test_hostile(small)
    t = timed(t)
    models = [("golden", open(GOLDEN, "rb").read()), ("small", small)]
    if "bn" in paths:
        models.append(("bn", open(paths["bn"], "rb").read()))
    test_differential(models)
    t = timed(t)
    test_dumps(small_dict)
    test_cli(paths)
    timed(t)
    for n in notes:
        print("note: %s" % n)
    if failures:
        print("test_mlp_py: %d check(s) failed" % len(failures))
        return 1
    print("test_mlp_py: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
