#!/usr/bin/python3
"""test_mlp_py.py - tools/mlp.py (NumPy) against mlp.h's model files.

    /usr/bin/python3 tests/test_mlp_py.py [BUILD_DIR]      (default build)

From the repository's root. Needs NumPy; BUILD_DIR/train_mnist and
BUILD_DIR/export_gen for the parts that ask mlp.h (skipped, with a message,
when they are missing), BUILD_DIR/train_csv (newer than mlp.h) for a model
mlp.h writes with input columns and class names. Without NumPy: skipped,
exit 0 (1 with MLP_REQUIRE_PYTHON=1). Scratch files go to
BUILD_DIR/python/mlp_py.

  round trip   tests/data/golden-3-2-2.mlp, the fuzz corpus's models and
               models train_mnist writes (batchnorm, dropout on the input and
               the hidden layers, sigmoid + MSE, tanh, an input that is not an
               image; synthetic data, no MNIST needed): load then dump gives
               the file back byte for byte, save() writes the same bytes, and
               predict() agrees with mlp_predict (export_gen --model) within
               1e-5 with the same argmax
  new records  input columns (kind 5) and class names (kind 6): a file laid
               out by hand from the spec loads with the values it holds and
               dumps back byte for byte, as do models with columns, names,
               both (names with quotes, commas, UTF-8 and bytes that are not
               UTF-8; names given as str or bytes give the same file) and 258
               records; predict applies the columns; every rule broken once
               (not first / not last, twice, widths that differ from the
               input / output width, sizes that lie, 0 and 2^20+1 columns,
               scale 0, -0, NaN, inf, offset NaN, inf, names of 0 and 256
               bytes, each control byte class, duplicates, a record cut
               inside a name, bytes after the last name, 259 records) is
               refused naming the rule, edge cases that keep the rules load;
               with an mlp.h that knows the kinds (else a note): a model
               train_csv writes (byte-exact, predict vs mlp_predict,
               --predict's names) and Python-built ones predicted by mlp.h
  hostile      every truncation of small models (as is, and with the
               checksum resealed so the record checks are reached), every
               bit of every byte flipped, wrong magic / version / flags,
               record sizes that lie, huge widths in a short file: each
               raises MlpFormatError whose message names the problem, never
               another exception, and loading allocates no more than a few
               times the file's size (tracemalloc)
  differential every header and record field of small models (with input
               columns and class names too, once mlp.h knows them: each
               name's length, first and last byte) set to edge values,
               records deleted / duplicated / swapped, random bytes changed,
               the checksum resealed, and the new records' broken files
               above: mlp.py accepts exactly what mlp.h accepts, rejects at
               the record mlp.h names (when it names one), and what both
               accept dumps back to the same bytes (exceptions, counted and
               printed: an input dropout record with the wrong width, which
               mlp.h 0.4 loads and mlp.py refuses; mlp.h's message naming
               record 0 for that width when the input dropout is record 1,
               after input columns); mlp.h's and mlp.py's messages side by
               side in BUILD_DIR/python/mlp_py/diff-messages.txt
  dumps        hand-built models that break each of mlp.h's rules are
               refused with the rule named; one with every layer kind is
               written by mlp.py and predicted by mlp.h alike
  cli          mlp.py info: the architecture line (columns and class names,
               on a UTF-8 terminal and an ASCII one), exit 1 on a bad file
Exit status 0 when everything passed, 1 otherwise.
"""
import concurrent.futures
import os
import re
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
TRAIN_CSV = os.path.join(B, "train_csv")
RECORD = re.compile(r"(?:layer )?record (\d+): ")  # a message naming a record (mlp.h 0.5 says "record" for kinds 5 and 6)
C_NEW_RECORDS = False  # whether mlp.h's loader knows input columns and class names (set by main)
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
        err = err[len("export_gen: "):]
        return False, err[len(path) + 2:] if err.startswith(path + ": ") else err  # mlp_load names the file
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
    # the corpus's seeds (*.mlp) are models; what fuzzing added to it mostly is not
    corpus = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.endswith(".mlp")) if os.path.isdir(CORPUS) else []
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
    """[(offset, 'u32'|'f32'|'u8', name)] of every header and record field of
    a valid model, with the first and last value of each array (input
    columns: of scale and offset; class names: each name's length and its
    first and last byte)."""
    mlp.loads(data)
    u32 = lambda at: struct.unpack_from("<I", data, at)[0]  # noqa: E731
    fields = [(8, "u32", "version"), (12, "u32", "flags"), (16, "u32", "loss"), (20, "u32", "image_w"),
              (24, "u32", "image_h"), (28, "f32", "input_scale"), (32, "f32", "input_offset"), (36, "u32", "n_records")]
    off = mlp.HEADER
    for r in range(u32(36)):
        kind, size = u32(off), u32(off + 4)
        fields += [(off, "u32", "record %d kind" % r), (off + 4, "u32", "record %d size" % r)]
        p = off + 8
        if kind == mlp.REC_DENSE:
            n = u32(p) * u32(p + 4)
            fields += [(p, "u32", "record %d n_in" % r), (p + 4, "u32", "record %d n_out" % r),
                       (p + 8, "f32", "record %d W first" % r), (p + 8 + 4 * (n - 1), "f32", "record %d W last" % r),
                       (p + 8 + 4 * n, "f32", "record %d b first" % r)]
        elif kind == mlp.REC_BATCHNORM:
            n = u32(p)
            fields += [(p, "u32", "record %d width" % r), (p + 4, "f32", "record %d eps" % r),
                       (p + 8, "f32", "record %d momentum" % r)]
            fields += [(p + 12 + 4 * k * n, "f32", "record %d %s" % (r, s)) for k, s in enumerate(("gamma", "beta", "mean", "var"))]
        elif kind == mlp.REC_ACT:
            fields += [(p, "u32", "record %d function" % r), (p + 4, "u32", "record %d width" % r)]
        elif kind == mlp.REC_DROPOUT:
            fields += [(p, "f32", "record %d rate" % r), (p + 4, "u32", "record %d width" % r)]
        elif kind == mlp.REC_COLUMNS:
            n = u32(p)
            fields += [(p, "u32", "record %d n" % r), (p + 4, "f32", "record %d scale first" % r),
                       (p + 4 * n, "f32", "record %d scale last" % r), (p + 4 + 4 * n, "f32", "record %d offset first" % r),
                       (p + 8 * n, "f32", "record %d offset last" % r)]
        else:
            fields.append((p, "u32", "record %d n" % r))
            q = p + 4
            for k in range(u32(p)):
                length = u32(q)
                fields += [(q, "u32", "record %d name %d length" % (r, k)), (q + 4, "u8", "record %d name %d first" % (r, k)),
                           (q + 3 + length, "u8", "record %d name %d last" % (r, k))]
                q += 4 + length
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


# ---- input columns (kind 5) and class names (kind 6) ------------------------------

NAMES = ["Iris setosa", 'caf\u00e9 "cr\u00e8me", 2', "\udcff\udcfe not UTF-8 \u65e5\u672c"]


def columns_model():
    """small_model() with input columns (negative scales among them) and
    class names (a comma, quotes, UTF-8 and bytes that are not UTF-8).
    Records: 0 columns, 1 input dropout, 2 dense, ..., 9 dense, 10 names."""
    m = small_model()
    rng = np.random.default_rng(4)
    m["columns"] = (np.float32(rng.uniform(0.5, 2.0, 6) * np.array([1, -1, 1, 1, -1, 1])),
                    np.float32(rng.uniform(-1.0, 1.0, 6)))
    m["class_names"] = list(NAMES)
    return m


def split_records(data):
    """(the 36 bytes before the record count, [each record's bytes]) of a
    model whose record sizes are right."""
    recs, off = [], mlp.HEADER
    while off < len(data) - 4:
        size = struct.unpack_from("<I", data, off + 4)[0]
        recs.append(data[off:off + 8 + size])
        off += 8 + size
    return data[:36], recs


def assemble(head, recs, count=None):
    """A model file of these records: the count set (to len(recs) unless
    given), the checksum sealed."""
    return reseal(head + struct.pack("<I", len(recs) if count is None else count) + b"".join(recs) + b"\0\0\0\0")


def columns_record(scale, offset, n=None, size=None):
    body = struct.pack("<I", len(scale) if n is None else n) + np.asarray(scale, "<f4").tobytes() + np.asarray(offset, "<f4").tobytes()
    return struct.pack("<II", mlp.REC_COLUMNS, len(body) if size is None else size) + body


def names_record(names, n=None, extra=b"", lengths=None):
    """Class names as bytes; lengths: the u32 written before each (their own by default)."""
    lengths = lengths or [len(b) for b in names]
    body = struct.pack("<I", len(names) if n is None else n) + b"".join(struct.pack("<I", k) + b for k, b in zip(lengths, names)) + extra
    return struct.pack("<II", mlp.REC_NAMES, len(body)) + body


def new_record_cases(cols):
    """(tag, bytes, keywords) of files that break one rule of the new
    records each (keywords None: a file both readers must load), built from
    cols (columns_model()'s bytes)."""
    head, recs = split_records(cols)
    c, names = recs[0], recs[-1]
    m = mlp.loads(cols)
    scale, offset = m["columns"]
    nb = [s.encode("utf-8", "surrogateescape") for s in NAMES]
    golden = open(GOLDEN, "rb").read()
    ghead, grecs = split_records(golden)
    out = [
        ("columns second", assemble(head, [recs[1], c] + recs[2:]), "layer record 1: input columns must be the first record"),
        ("columns twice", assemble(head, [c] + recs), "layer record 1: input columns must be the first record"),
        ("columns after a dense layer", assemble(ghead, grecs[:1] + [columns_record([1, 2, 3], [0, 0, 0])] + grecs[1:]),
         "layer record 1: input columns must be the first"),
        ("columns last", assemble(ghead, grecs + [columns_record([1, 2, 3], [0, 0, 0])]), "layer record 3: input columns must be the first"),
        ("names before the last dense layer", assemble(head, recs[:-2] + [names, recs[-2]]),
         "layer record 9: class names must be the last record"),
        ("names twice", assemble(head, recs + [names]), "layer record 10: class names must be the last record"),
        ("names first", assemble(ghead, [names_record([b"a", b"b"])] + grecs), "layer record 0: class names must be the last"),
        ("names then columns", assemble(ghead, grecs + [names_record([b"a", b"b"]), columns_record([1, 2, 3], [0, 0, 0])]),
         "layer record 3: class names must be the last"),
        ("columns only", assemble(head, [c]), "no dense layer"),
        ("names only", assemble(head, [names]), "no dense layer"),
        ("columns and names only", assemble(head, [c, names]), "no dense layer"),
        ("5 columns for 6 inputs", assemble(head, [columns_record(scale[:5], offset[:5])] + recs[1:]),
         "layer record 0: 5 input columns for an input width of 6"),
        ("7 columns for 6 inputs", assemble(head, [columns_record(list(scale) + [1], list(offset) + [0])] + recs[1:]),
         "layer record 0: 7 input columns for an input width of 6"),
        ("0 columns", assemble(head, [columns_record([], [])] + recs[1:]), "layer record 0: 0 input columns outside 1..1048576"),
        ("2^20+1 columns", assemble(head, [columns_record(scale, offset, n=(1 << 20) + 1)] + recs[1:]),
         "layer record 0: 1048577 input columns outside"),
        ("columns size 4 short", assemble(head, [columns_record(scale, offset, size=4 + 8 * 6 - 4)[:-4]] + recs[1:]),
         "layer record 0: 6 input columns need 52 bytes, record has 48"),
        ("columns size 4 long", assemble(head, [columns_record(scale, offset, size=4 + 8 * 6 + 4) + b"\0" * 4] + recs[1:]),
         "layer record 0: 6 input columns need 52 bytes, record has 56"),
        ("columns n says 5, 6 present", assemble(head, [columns_record(scale, offset, n=5)] + recs[1:]),
         "layer record 0: 5 input columns need 44 bytes, record has 52"),
        ("columns record of 2 bytes", assemble(head, [struct.pack("<IIH", mlp.REC_COLUMNS, 2, 6)] + recs[1:]),
         "layer record 0: input columns record of 2 bytes"),
        ("columns record of 0 bytes", assemble(head, [struct.pack("<II", mlp.REC_COLUMNS, 0)] + recs[1:]),
         "layer record 0: input columns record of 0 bytes"),
        ("names 2 for 3 outputs", assemble(head, recs[:-1] + [names_record(nb[:2])]), "layer record 10: 2 class names for 3 outputs"),
        ("names 4 for 3 outputs", assemble(head, recs[:-1] + [names_record(nb + [b"four"])]), "layer record 10: 4 class names for 3 outputs"),
        ("names 0 for 3 outputs", assemble(head, recs[:-1] + [names_record([])]), "layer record 10: 0 class names for 3 outputs"),
        ("names n says 4, 3 present", assemble(head, recs[:-1] + [names_record(nb, n=4)]), "layer record 10: 4 class names for 3 outputs"),
        ("names record of 3 bytes", assemble(head, recs[:-1] + [struct.pack("<II", mlp.REC_NAMES, 3) + b"\3\0\0"]),
         "layer record 10: class names record of 3 bytes"),
        ("names record of 0 bytes", assemble(head, recs[:-1] + [struct.pack("<II", mlp.REC_NAMES, 0)]),
         "layer record 10: class names record of 0 bytes"),
        ("names record ends after 2 names", assemble(head, recs[:-1] + [names_record(nb[:2], n=3)]),
         "layer record 10: class name 2: truncated"),
        ("names record ends inside a length", assemble(head, recs[:-1] + [names_record(nb[:2], n=3, extra=b"\1\0")]),
         "layer record 10: class name 2: truncated"),
        ("name length beyond the record", assemble(head, recs[:-1] + [names_record(nb[:2], n=3, lengths=[len(nb[0]), 200])]),
         "layer record 10: class name 1: 200 bytes claimed, %d left" % len(nb[1])),
        ("name length says 1 more", assemble(head, recs[:-1] + [names_record(nb, lengths=[len(nb[0]), len(nb[1]) + 1, len(nb[2])])]),
         "layer record 10: class name 1: control byte 0x%02x at byte %d" % (len(nb[2]), len(nb[1]))),  # name 2's length
        ("a byte after the last name", assemble(head, recs[:-1] + [names_record(nb, extra=b"x")]),
         "layer record 10: 1 unexpected bytes after the last class name"),
        ("name of 0 bytes", assemble(head, recs[:-1] + [names_record([nb[0], b"", nb[2]])]),
         "layer record 10: class name 1: length 0 outside 1..255"),
        ("name of 256 bytes", assemble(head, recs[:-1] + [names_record([nb[0], b"n" * 256, nb[2]])]),
         "layer record 10: class name 1: length 256 outside 1..255"),
        ("name length 2^32-1", assemble(head, recs[:-1] + [names_record(nb, lengths=[len(nb[0]), 0xFFFFFFFF, len(nb[2])])]),
         "layer record 10: class name 1: length 4294967295 outside"),
        ("names 0 and 2 the same", assemble(head, recs[:-1] + [names_record([nb[0], nb[1], nb[0]])]),
         "layer record 10: class names 0 and 2 are both \"Iris setosa\""),
        ("names differ in case only", assemble(head, recs[:-1] + [names_record([b"a", b"A", b"b"])]), None),
        ("names prefixes of each other", assemble(head, recs[:-1] + [names_record([b"a", b"ab", b"a "])]), None),
        ("names of 1 and 255 bytes", assemble(head, recs[:-1] + [names_record([b"\x7e", b"\xff" * 255, b" "])]), None),
        ("columns: large finite values", assemble(head, [columns_record([3e38, -1e-45, 1, 1, 1, 1], [-3e38, 0, -0.0, 1e-45, 0, 0])]
                                                  + recs[1:]), None),
    ]
    for j, (byte, what) in enumerate(((0x00, "NUL"), (0x09, "tab"), (0x0A, "newline"), (0x0D, "CR"), (0x1B, "ESC"),
                                      (0x1F, "0x1f"), (0x7F, "DEL"))):
        bad = nb[1][:j] + bytes([byte]) + nb[1][j + 1:]
        out.append(("name with %s" % what, assemble(head, recs[:-1] + [names_record([nb[0], bad, nb[2]])]),
                    "layer record 10: class name 1: control byte 0x%02x at byte %d" % (byte, j)))
    for byte in (0x20, 0x7E, 0x80, 0xC0, 0xFF):
        out.append(("name with 0x%02x" % byte, assemble(head, recs[:-1] + [names_record([nb[0], bytes([byte]) + nb[1], nb[2]])]), None))
    for j, (val, what) in enumerate(((0.0, "0"), (-0.0, "-0"), (float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf"))):
        s2, o2 = scale.copy(), offset.copy()
        s2[j] = val
        out.append(("column %d scale %s" % (j, what), assemble(head, [columns_record(s2, o2)] + recs[1:]),
                    "layer record 0: input column %d: scale %s is not finite and nonzero" % (j, "%g" % val)))
        if val != 0.0:
            o2[5 - j], s2[j] = val, scale[j]
            out.append(("column %d offset %s" % (5 - j, what), assemble(head, [columns_record(s2, o2)] + recs[1:]),
                        "layer record 0: input column %d: offset %s is not finite" % (5 - j, "%g" % val)))
    # one record more than the most a file may hold: 256 layer records, columns, names, one more
    deep = deep_model()
    dhead, drecs = split_records(deep)
    out.append(("258 records", deep, None))
    out.append(("259 records", assemble(dhead, drecs[:1] + drecs[1:2] + drecs[1:]),
                "259 layer records (need 1..258)"))
    return out


def deep_model(as_dict=False):
    """A model of 258 records, the most there may be: input columns, input
    dropout, 64 x (dense, batchnorm, relu, dropout) without the last
    dropout, class names."""
    rng = np.random.default_rng(9)
    layers = [{"kind": "dropout", "rate": 0.5, "width": 2}]
    for d in range(64):
        layers += [{"kind": "dense", "W": np.float32(rng.uniform(-1, 1, (2, 2))), "b": np.float32(rng.uniform(-1, 1, 2))},
                   {"kind": "batchnorm", "eps": float(np.float32(1e-5)), "momentum": float(np.float32(0.1)),
                    "gamma": np.ones(2, np.float32), "beta": np.zeros(2, np.float32), "mean": np.zeros(2, np.float32),
                    "var": np.ones(2, np.float32)},
                   {"kind": "act", "fn": "relu", "width": 2}]
        if d < 63:
            layers.append({"kind": "dropout", "rate": 0.5, "width": 2})
    m = {"loss": "ce", "image_w": 0, "image_h": 0, "input_scale": 1.0, "input_offset": 0.0, "layers": layers,
         "columns": (np.float32([2, -2]), np.float32([0.5, 0])), "class_names": ["no", "yes"]}
    return m if as_dict else mlp.dumps(m)


def test_new_records(cols_dict):
    section("input columns and class names")
    # the layout, from the spec (not from dumps): golden + columns + names by hand
    golden = open(GOLDEN, "rb").read()
    cs, co = [0.5, -2.0, 4.0], [1.0, -0.25, 0.0]
    by_hand = reseal(golden[:36] + struct.pack("<I", 5)
                     + struct.pack("<IIIfffff" + "f", 5, 28, 3, *(cs + co))
                     + golden[40:-4]
                     + struct.pack("<III", 6, 4 + 5 + 7, 2) + struct.pack("<I", 1) + b"a" + struct.pack("<I", 3) + b"\xff\xfe"
                     + b"b" + b"\0\0\0\0")
    try:
        m = mlp.loads(by_hand)
    except mlp.MlpFormatError as e:
        check(False, "golden + columns + names by hand: %s" % e)
        m = None
    if m is not None:
        check(m["columns"][0].dtype == np.float32 and list(m["columns"][0]) == cs and list(m["columns"][1]) == co
              and m["class_names"] == ["a", "\udcff\udcfeb"], "by hand: columns %r names %r" % (m["columns"], m["class_names"]))
        check(len(m["layers"]) == 3 and m["layers"][0]["kind"] == "dense", "by hand: the layers are golden's")
        check(mlp.dumps(m) == by_hand, "by hand: load then dump is not byte-exact")
        g = mlp.load(GOLDEN)
        g["columns"] = (cs, co)
        g["class_names"] = [b"a", b"\xff\xfeb"]  # bytes in, the same file out
        check(mlp.dumps(g) == by_hand, "by hand: dumps of golden + columns + names (as bytes) differs")
        # predict: (raw * scale + offset) * column scale + column offset, then the layers
        x = np.array([[1.0, 2.0, -1.0], [0.0, 3.5, 7.0]])
        plain = mlp.load(GOLDEN)
        check(np.abs(mlp.predict(m, x) - mlp.predict(plain, x * cs + co)).max() < 1e-12, "by hand: predict applies the columns")
    # round trips: columns only, names only, both; save() writes the same bytes
    variants = {"both": cols_dict, "columns only": dict(cols_dict, class_names=None),
                "names only": dict(cols_dict, columns=None), "deep (258 records)": deep_model(as_dict=True)}
    for name, d in variants.items():
        data = mlp.dumps(d)
        back = mlp.loads(data)
        check(mlp.dumps(back) == data, "%s: load then dump is not byte-exact" % name)
        check((back["columns"] is None) == (d.get("columns") is None) and back["class_names"] == d.get("class_names"),
              "%s: columns or names lost: %s" % (name, mlp.describe(back)))
        n = struct.unpack_from("<I", data, 36)[0]
        first = struct.unpack_from("<I", data, mlp.HEADER)[0]
        check(n == len(d["layers"]) + (d.get("columns") is not None) + (d.get("class_names") is not None)
              and (first == mlp.REC_COLUMNS) == (d.get("columns") is not None),
              "%s: %d records, the first of kind %d" % (name, n, first))
        path = os.path.join(OUT, "new-%s.mlp" % name.split()[0])
        mlp.save(back, path)
        check(open(path, "rb").read() == data, "%s: save() wrote other bytes" % name)
        print("  %-18s %5d bytes byte-exact: %s" % (name, len(data), mlp.describe(back)))
    check(struct.unpack_from("<I", deep_model(), 36)[0] == 258, "deep model: 258 records")
    # every rule of the two records, broken one at a time (and files that keep them)
    n_bad = n_good = 0
    for tag, data, want in new_record_cases(mlp.dumps(cols_dict)):
        if want is None:
            try:
                back = mlp.loads(data)
                n_good += check(mlp.dumps(back) == data, "%s: loads, but dumps gives other bytes" % tag)
            except mlp.MlpFormatError as e:
                check(False, "%s: refused: %s" % (tag, e))
        else:
            n_bad += expect_error(data, want, tag)
    print("  %d files breaking a rule of the new records refused with the rule named; %d edge cases that keep the rules "
          "loaded (byte-exact)" % (n_bad, n_good))


def c_new_records(cols):
    """Whether mlp.h (export_gen) loads a model with input columns and
    class names: False, with a note, when it says kind 5 is unknown (an
    mlp.h before 0.5)."""
    if not HAVE_C:
        return False
    os.makedirs(os.path.join(OUT, "diff"), exist_ok=True)
    path = os.path.join(OUT, "probe-columns.mlp")
    with open(path, "wb") as f:
        f.write(cols)
    ok, msg = mlp_h_verdict(path, 6, "probe")
    if ok:
        return True
    if ok is False and "unknown layer kind 5" in msg:
        print("  note: mlp.h does not know input columns yet (%s): the new records are not compared with mlp.h" % msg)
        notes.append("mlp.h does not know record kinds 5 and 6 yet: no differential test or mlp_predict comparison of them")
        return False
    check(False, "mlp.h refuses a model with input columns and class names: %s" % msg)
    return False


def test_written_by_mlp_h():
    """A model train_csv (mlp.h 0.5) writes, with input columns and class
    names: byte-exact round trip, predict against mlp_predict, the names."""
    section("a model with input columns and class names written by mlp.h (train_csv)")
    newest = max(os.path.getmtime(os.path.join(ROOT, f)) for f in ("mlp.h", os.path.join("examples", "train_csv.c"))
                 if os.path.exists(os.path.join(ROOT, f)))
    if not C_NEW_RECORDS or not os.access(TRAIN_CSV, os.X_OK) or os.path.getmtime(TRAIN_CSV) < newest:
        why = "mlp.h does not know the new records" if not C_NEW_RECORDS else \
            "%s is missing or older than mlp.h (make %s)" % (TRAIN_CSV, TRAIN_CSV)
        print("  skipped: %s" % why)
        notes.append("no model written by mlp.h with columns and names checked: %s" % why)
        return
    d = os.path.join(OUT, "csv")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(12)
    labels = ["virginica", "Setosa", "caf\u00e9 cr\u00e8me", "versi color"]
    rows = []
    for i in range(240):
        k = int(rng.integers(0, 4))
        x = rng.normal(0, 1, 5) * [1, 100, 0.01, 5, 1] + [0, 1000, 0, -20, 3]
        x[k] += 3.0 * [1, 100, 0.01, 5][k]
        rows.append((x, labels[k]))
    train = os.path.join(d, "train.csv")
    with open(train, "w", encoding="utf-8") as f:
        f.write("a,b,c,d,e,label\n")
        for x, lab in rows:
            f.write(",".join("%.6g" % v for v in x) + ",%s\n" % lab)
    model = os.path.join(d, "model.mlp")
    p = subprocess.run([TRAIN_CSV, "--train", train, "--header", "--layers", "auto-12-auto", "--epochs", "5", "--seed", "2",
                        "--quiet", "--out", model], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not check(p.returncode == 0, "train_csv failed: %s" % p.stdout.decode(errors="replace")):
        return
    raw = open(model, "rb").read()
    m = mlp.loads(raw)
    check(mlp.dumps(m) == raw, "train_csv's model: load then dump is not byte-exact")
    check(struct.unpack_from("<I", raw, mlp.HEADER)[0] == mlp.REC_COLUMNS, "train_csv's model: the first record is not kind 5")
    check(m["columns"] is not None and m["columns"][0].size == 5, "train_csv's model: no input columns")
    want = sorted(labels, key=lambda n: n.encode())
    check(m["class_names"] == want, "train_csv's model: class names %r, expected %r (sorted by bytes)" % (m["class_names"], want))
    print("  %d bytes byte-exact: %s" % (len(raw), mlp.describe(m)))
    x = np.float32([r[0] for r in rows])
    idx = os.path.join(d, "rows.idx")
    with open(idx, "wb") as f:
        f.write(bytes([0, 0, 0x0D, 2]) + struct.pack(">II", *x.shape) + x.astype(">f4").tobytes())
    compare_predictions(m, model, idx, "train_csv")
    # --predict prints the class name of mlp.py's argmax
    p = subprocess.run([TRAIN_CSV, "--predict", model, train, "--header"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = p.stdout.decode("utf-8", "surrogateescape").splitlines()
    probs = mlp.predict(m, x.astype(np.float64))
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # a near tie may go either way in float32
    ours = [m["class_names"][k] for k in probs.argmax(1)]
    same = sum(a == b for a, b, c in zip(got, ours, clear) if c)
    check(p.returncode == 0 and len(got) == len(ours) and same == int(clear.sum()),
          "train_csv --predict: exit %d, %d lines, %d of %d clear rows name mlp.py's argmax (%s)"
          % (p.returncode, len(got), same, int(clear.sum()), p.stderr.decode(errors="replace")[:200]))
    print("  train_csv --predict names the class mlp.py's predict picks: %d of %d rows (%d near ties skipped)"
          % (same, len(ours), len(ours) - int(clear.sum())))


def test_hostile(small, cols):
    section("hostile input")
    golden = open(GOLDEN, "rb").read()
    for name, data in (("golden", golden), ("small", small), ("columns+names", cols)):
        n_err = 0
        for n in range(len(data)):
            cut = data[:n]
            want = ["too short"] if n < 8 else ["truncated header"] if n < mlp.HEADER + 4 else ["checksum mismatch&damaged or truncated"]
            n_err += not expect_error(cut, want, "%s cut to %d bytes" % (name, n))
            if n >= mlp.HEADER + 4:  # resealed: the record walk must find the end
                n_err += not expect_error(reseal(data[:n - 4] + b"\0\0\0\0"), [
                    "truncated", "bytes claimed", "no dense layer", "cannot come last", "hidden activations", "record has",
                    "class names record of", "input columns record of"],
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
    expect_error(put(g, 36, "<I", 0xFFFFFFFF), "4294967295 layer records&1..258", "2^32-1 records")
    expect_error(put(g, 36, "<I", 259), "259 layer records (need 1..258)", "259 records")
    expect_error(put(g, 36, "<I", 258), "layer record 3: truncated", "258 records, 3 present")
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
    expect_error(put(s, fields["record 3 kind"], "<I", 7), "layer record 3: unknown layer kind 7&newer mlp.h", "kind 7")
    expect_error(put(s, fields["record 3 kind"], "<I", 5), "layer record 3: input columns must be the first record", "kind 5 at 3")
    expect_error(put(s, fields["record 3 kind"], "<I", 6), "layer record 3: class names must be the last record", "kind 6 at 3")
    expect_error(put(s, fields["record 8 kind"], "<I", 6), "layer record 8: class name 0: ", "kind 6 last")
    expect_error(put(s, fields["record 0 width"], "<I", 7), "input dropout width 7 does not match the input width 6", "input dropout width")
    expect_error(put(s, fields["record 8 n_out"], "<I", 1), "record has", "n_out changed alone")


# ---- differential: mlp.py and mlp.h accept the same files --------------------------

U32_VALUES = [0, 1, 2, 3, 4, 5, 6, 0x80000000, 0xFFFFFFFF, 1 << 20, (1 << 20) + 1]
U8_VALUES = [0x00, 0x09, 0x0A, 0x1F, 0x20, 0x22, 0x2C, 0x7E, 0x7F, 0x80, 0xC3, 0xFF]  # a class name's bytes
F32_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, float("nan"), float("inf"), float("-inf"), 1e-45, 3e38]


def mutants(name, data, rng, header=True, n_random=40):
    """(tag, bytes) of mutations of a valid model, checksums resealed:
    each field set to edge values (header fields too when header), whole
    records deleted / duplicated / swapped, n_random random byte changes."""
    out = []
    for off, kind, field in field_offsets(data):
        if off < mlp.HEADER and not header:
            continue
        fmt = {"u32": "<I", "f32": "<f", "u8": "<B"}[kind]
        old = struct.unpack_from(fmt, data, off)[0]
        if kind == "u32":
            values = U32_VALUES + [old - 1, old + 1, 255, 256] if " length" in field else U32_VALUES + [old - 1, old + 1]
        elif kind == "u8":
            values = [v for v in U8_VALUES if v != old]
        elif field.split()[-1] in ("first", "last", "gamma", "beta", "mean", "var"):  # array values: finite or not
            values = [float("nan"), float("inf"), -0.0, 3e38, -old]
        else:
            values = F32_VALUES + [-old, old * 2]
        for v in values:
            if kind == "u32" and not 0 <= v <= 0xFFFFFFFF:
                continue
            b = bytearray(data)
            struct.pack_into(fmt, b, off, v)
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
    for _ in range(3):  # input columns, input dropout, dense
        if off + 16 > len(data):
            break
        kind, size = struct.unpack_from("<II", data, off)
        if kind == mlp.REC_DENSE:
            n = struct.unpack_from("<I", data, off + 8)[0]
            return n if 1 <= n <= 4096 else 1
        off += 8 + size
    return 1


def test_differential(models, extra=()):
    """models: (name, bytes) to mutate; extra: (tag, bytes) files given as
    they are (new_record_cases)."""
    section("differential: mlp.py against mlp.h's loader")
    if not HAVE_C:
        print("  skipped: %s missing" % EXPORT_GEN)
        return
    os.makedirs(os.path.join(OUT, "diff"), exist_ok=True)
    rng = np.random.default_rng(11)
    cases = []
    for i, (name, data) in enumerate(models):
        cases += mutants(name, data, rng, header=i < 2, n_random=40 if i < 2 else 20)
    cases += list(extra)

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
    both_ok = both_bad = lenient = same_record = dropout_record_0 = 0
    pairs = []  # mlp.h's and mlp.py's messages side by side, for reading
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
            pairs.append("%s\n  mlp.h:  %s\n  mlp.py: %s\n" % (tag, c_msg, py_msg))
            c_rec, py_rec = RECORD.match(c_msg), RECORD.match(py_msg)
            if c_rec and py_rec and "input dropout width" in c_msg and (c_rec.group(1), py_rec.group(1)) == ("0", "1") \
                    and struct.unpack_from("<I", data, mlp.HEADER)[0] == mlp.REC_COLUMNS:
                dropout_record_0 += 1  # mlp.h's message says record 0 for the input dropout record, record 1 after input columns
            elif c_rec:  # mlp.h names a record: mlp.py names the same one
                same_record += 1
                check(py_rec is not None and py_rec.group(1) == c_rec.group(1), "%s: mlp.h says %r, mlp.py %r" % (tag, c_msg, py_msg))
        elif c_ok and "input dropout width" in py_msg:
            lenient += 1  # mlp.h 0.4 ignores this field (see tools/mlp.py)
        else:
            check(False, "%s: mlp.h %s (%s), mlp.py %s (%s)" % (tag, "accepts" if c_ok else "rejects", c_msg,
                                                             "accepts" if py_msg is None else "rejects", py_msg))
    with open(os.path.join(OUT, "diff-messages.txt"), "w", encoding="utf-8", errors="backslashreplace") as f:
        f.writelines(pairs)
    print("  %d mutants: %d loaded by both (byte-exact again), %d refused by both (%d where mlp.h names the record: "
          "mlp.py names the same)%s"
          % (len(cases), both_ok, both_bad, same_record,
             "; %d with a wrong input dropout width that mlp.h loads and mlp.py refuses" % lenient if lenient else ""))
    if dropout_record_0:
        print("  %d of them: mlp.h blames layer record 0 for a wrong input dropout width, but after input columns the "
              "input dropout is record 1 (mlp.py says 1)" % dropout_record_0)
        notes.append("mlp.h says 'layer record 0: input dropout width ...' when the input dropout record is record 1 "
                     "(after input columns): %d mutants" % dropout_record_0)
    if lenient:
        notes.append("mlp.h loads a model whose input dropout record has the wrong width (%d mutants); "
                     "mlp.py refuses it" % lenient)


# ---- dumps: mlp.h's rules on models built in Python -------------------------------

def test_dumps(small_dict):
    section("dumps: the rules")
    import copy

    def refused(mutate, keywords, what, base=small_dict):
        m = copy.deepcopy(base)
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
    # input columns and class names
    cols = columns_model()
    C = lambda m: m["columns"]  # noqa: E731
    for mutate, keywords, what in (
            (lambda m: m.update(columns=np.ones(6)), ["columns: expected (scale, offset)"], "columns one array"),
            (lambda m: m.update(columns=(np.ones(6),)), ["columns: expected (scale, offset)"], "columns a 1-tuple"),
            (lambda m: m.update(columns=(np.ones(6), np.zeros(5))), ["one shape (n,)&(6,), (5,)"], "columns of two widths"),
            (lambda m: m.update(columns=(np.ones((2, 3)), np.zeros((2, 3)))), ["scale must be a 1-D array"], "columns 2-D"),
            (lambda m: m.update(columns=(np.array(["a"] * 6), np.zeros(6))), ["scale must be a 1-D array of numbers"], "columns of strings"),
            (lambda m: m.update(columns=([], [])), ["one shape (n,), 1 <= n"], "columns empty"),
            (lambda m: m.update(columns=(np.ones(5), np.zeros(5))), ["layer record 0: 5 input columns for an input width of 6"], "columns 5 for 6"),
            (lambda m: C(m)[0].__setitem__(3, 0.0), ["layer record 0: input column 3: scale 0 is not finite and nonzero"], "column scale 0"),
            (lambda m: C(m)[0].__setitem__(0, np.nan), ["input column 0: scale nan"], "column scale NaN"),
            (lambda m: m.update(columns=(np.full(6, 1e39), np.zeros(6))), ["input column 0: scale inf"], "column scale beyond float32"),
            (lambda m: C(m)[1].__setitem__(5, -np.inf), ["layer record 0: input column 5: offset -inf is not finite"], "column offset -inf"),
            (lambda m: m.update(class_names="abc"), ["class_names: expected a list of str (or bytes), got str"], "names a str"),
            (lambda m: m.update(class_names=b"abc"), ["expected a list of str (or bytes), got bytes"], "names bytes"),
            (lambda m: m.update(class_names={"a", "b", "c"}), ["got set"], "names a set"),
            (lambda m: m.update(class_names=["a", "b"]), ["layer record 10: 2 class names for 3 outputs"], "2 names for 3 outputs"),
            (lambda m: m.update(class_names=[]), ["0 class names for 3 outputs"], "no names for 3 outputs"),
            (lambda m: m.update(class_names=["a", 2, "c"]), ["class_names[1]: expected str or bytes, got int"], "a name that is a number"),
            (lambda m: m.update(class_names=["a", "\ud800", "c"]), ["class_names[1]: '\\ud800' is not UTF-8 text"], "a lone surrogate"),
            (lambda m: m.update(class_names=["a", "x" * 256, "c"]), ["class_names[1]: 256 bytes (1..255)"], "a name of 256 bytes"),
            (lambda m: m.update(class_names=["a", "\u00e9" * 128, "c"]), ["class_names[1]: 256 bytes"], "128 two-byte characters"),
            (lambda m: m.update(class_names=["a", "", "c"]), ["layer record 10: class name 1: length 0 outside 1..255"], "an empty name"),
            (lambda m: m.update(class_names=["a", "b\nc", "c"]), ["class name 1: control byte 0x0a at byte 1"], "a newline"),
            (lambda m: m.update(class_names=["a", "b", "\x7f"]), ["class name 2: control byte 0x7f at byte 0"], "DEL"),
            (lambda m: m.update(class_names=["a", b"b", "b"]), ["class names 1 and 2 are both \"b\""], "the same bytes twice")):
        refused(mutate, keywords, what, base=cols)
    # names as bytes, as str, with a bytearray: the same file; None: no record
    as_bytes = dict(cols, class_names=[s.encode("utf-8", "surrogateescape") for s in NAMES])
    mixed = dict(cols, class_names=[NAMES[0], bytearray(NAMES[1].encode()), np.str_(NAMES[2])])
    check(mlp.dumps(as_bytes) == mlp.dumps(cols) == mlp.dumps(mixed), "dumps: names as bytes, str, bytearray, np.str_ differ")
    check(mlp.dumps(dict(cols, columns=None, class_names=None)) == mlp.dumps(small_dict), "dumps: columns=None, class_names=None")
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
        if C_NEW_RECORDS:
            mlp.save(cols, path)
            compare_predictions(mlp.load(path), path, images, "python-built columns+names")
            only = dict(copy.deepcopy(cols), class_names=None, loss="mse")
            only["columns"][0][:] = [1e-3, -2, 0.5, 4, 1, 0.25]
            mlp.save(only, path)
            compare_predictions(mlp.load(path), path, images, "python-built columns, mse")


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
    # input columns and class names: shown, the names as UTF-8 with \xNN for bytes that are not
    path = os.path.join(OUT, "info-columns.mlp")
    mlp.save(columns_model(), path)
    p = subprocess.run(tool + ["info", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONIOENCODING="ascii"))
    lines = p.stdout.decode("ascii", "replace").splitlines()
    want = ('6-4-3-3, relu/sigmoid, batchnorm after dense 1, dropout input 0.125 hidden 0.25, loss ce, input x*0.5+-0.25, '
            'image 2x3, per-column standardisation (6 columns), classes "Iris setosa" "caf\\xe9 \\"cr\\xe8me\\", 2" '
            '"\\xff\\xfe not UTF-8 \\u65e5\\u672c"')
    check(p.returncode == 0 and lines and lines[0] == want, "info columns: %d %r (expected %r) %s" % (p.returncode, lines[:1], want, p.stderr))
    check(len(lines) == 13 and lines[1].startswith("  record 0   columns    6, scale ") and
          lines[-2].startswith("  record 10  names      3: \"Iris setosa\""),
          "info columns: the records: %r" % lines)
    p = subprocess.run(tool + ["info", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.decode("utf-8")
    check(p.returncode == 0 and '"caf\u00e9 \\"cr\u00e8me\\", 2" "\\xff\\xfe not UTF-8 \u65e5\u672c"' in out,
          "info columns, UTF-8 terminal: %r" % out.splitlines()[:1])
    print("  " + out.splitlines()[0])
    bad = os.path.join(OUT, "bad-names.mlp")
    head, recs = split_records(open(path, "rb").read())
    with open(bad, "wb") as f:
        f.write(assemble(head, recs[:-1] + [names_record([b"a", b"b\tc", b"d"])]))
    p = subprocess.run(tool + ["info", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = p.stderr.decode()
    check(p.returncode == 1 and not p.stdout and "layer record 10: class name 1: control byte 0x09 at byte 1" in err and bad in err,
          "info on a model with a tab in a name: %d %r" % (p.returncode, err))


def main():
    os.makedirs(OUT, exist_ok=True)
    global C_NEW_RECORDS
    small_dict = small_model()
    small = mlp.dumps(small_dict)
    cols_dict = columns_model()
    cols = mlp.dumps(cols_dict)
    t = time.time()
    paths = test_round_trips()
    t = timed(t)
    C_NEW_RECORDS = c_new_records(cols)
    test_new_records(cols_dict)
    test_written_by_mlp_h()
    t = timed(t)
    test_hostile(small, cols)
    t = timed(t)
    models = [("golden", open(GOLDEN, "rb").read()), ("small", small)]
    if "bn" in paths:
        models.append(("bn", open(paths["bn"], "rb").read()))
    extra = []
    if C_NEW_RECORDS:
        golden_names = mlp.load(GOLDEN)
        golden_names["class_names"] = ["no", "yes"]
        models += [("columns+names", cols), ("golden+names", mlp.dumps(golden_names))]
        extra = [("new records: " + tag, data) for tag, data, _ in new_record_cases(cols)]
    else:
        print("  (the models with input columns and class names are left out: mlp.h does not know them yet)")
    test_differential(models, extra)
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
