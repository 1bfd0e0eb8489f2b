#!/usr/bin/python3
"""mlp.py - mlp.h's model files (.mlp) read and written with NumPy.

    import mlp                          # tools/ on sys.path
    model = mlp.load("build/model.mlp")
    probs = mlp.predict(model, pixels)  # pixels: (B, 784) raw 0..255
    mlp.save(model, "copy.mlp")         # the same bytes mlp.h wrote

    python3 tools/mlp.py info MODEL.mlp  # the architecture; exit 1 on a bad file

The format is the one documented byte by byte in mlp.h (implementation
section "model files"): little-endian, a 40-byte header, L records, a
CRC-32 at the end. Since mlp.h 0.5 the records may include input columns
(kind 5, per-feature standardisation: the first record, at most one) and
class names (kind 6: the last record, at most one); L may be up to 258.
The reader checks what mlp.h's loader checks, in the same order and with
the same words (for kinds 5 and 6: the same rules and the same record
number, in words of its own that name the exact rule), and checks every
size against the bytes that remain before it creates an array: a hostile
file costs at most its own size in memory (class names: Python objects of
some ten times their bytes). Every rejection is an MlpFormatError (a
ValueError) whose message says what is wrong. One check goes further than
mlp.h 0.4: an input dropout record must carry the input width (mlp.h
ignores that field and writes the right width back, which would break the
byte-for-byte round trip).

A model is a dict:
    loss          'ce' (softmax cross-entropy) or 'mse' (Euclidean)
    image_w, image_h   the input as an image (0, 0: not an image)
    input_scale, input_offset   network input = raw * scale + offset
    columns       None, or (scale, offset): two (n_in,) float32 arrays, the
                  input columns record; network input j =
                  (raw_j * input_scale + input_offset) * scale[j] + offset[j]
    class_names   None, or a list of n_out str, the class names record: each
                  name's bytes decoded as UTF-8 with errors='surrogateescape'
                  (bytes that are not UTF-8 come back unchanged on the way
                  out; dumps also takes bytes)
    layers        the layer records in file order (not the two above), each one of
        {'kind': 'dense', 'W': (n_in, n_out) float32, 'b': (n_out,) float32}
        {'kind': 'act', 'fn': 'relu'|'sigmoid'|'tanh', 'width': n}
        {'kind': 'dropout', 'rate': r, 'width': n}       (identity at inference)
        {'kind': 'batchnorm', 'eps': e, 'momentum': m,
         'gamma', 'beta', 'mean', 'var': (n,) float32}   (running statistics)
Floats outside the arrays are Python floats holding float32 values exactly,
so loads() then dumps() gives back the file byte for byte. y = x @ W + b:
W is mlp.h's row-major W[n_in][n_out] (PyTorch's Linear.weight is W.T).

NumPy only; nothing here imports torch.
"""
import math
import os
import re
import struct
import sys
import zlib

import numpy as np

__all__ = ["MlpFormatError", "loads", "load", "dumps", "save", "predict", "describe"]

MAGIC = b"\x89MLP\r\n\x1a\n"
VERSION = 1
HEADER = 40            # bytes before the first record
MAX_LAYERS = 64        # MLP_MAX_LAYERS: dense layers
MAX_WIDTH = 1 << 20    # MLP_MAX_WIDTH
MAX_LAYER_RECORDS = 4 * MAX_LAYERS  # dense, batchnorm, activation, dropout
MAX_RECORDS = MAX_LAYER_RECORDS + 2  # and input columns, class names
MAX_NAME = 255         # MLP_MAX_NAME: bytes in a class name
REC_DENSE, REC_ACT, REC_DROPOUT, REC_BATCHNORM, REC_COLUMNS, REC_NAMES = 1, 2, 3, 4, 5, 6
ACT_NAMES = {1: "relu", 2: "sigmoid", 3: "tanh"}
ACT_CODES = {v: k for k, v in ACT_NAMES.items()}
LOSS_NAMES = {0: "ce", 1: "mse"}
LOSS_CODES = {v: k for k, v in LOSS_NAMES.items()}
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")  # bytes a class name may not hold


class MlpFormatError(ValueError):
    """A model file (or a model dict given to dumps) that mlp.h would not load."""


def _u32(data, off):
    return struct.unpack_from("<I", data, off)[0]


def _f32(data, off):
    return struct.unpack_from("<f", data, off)[0]


def _floats(data, off, count):
    """count little-endian float32 values at off, as a native float32 array
    (the caller has checked that they are inside data)."""
    return np.frombuffer(data, dtype="<f4", count=count, offset=off).astype(np.float32)


def _g(x):
    return "%g" % x


# ---- reading ---------------------------------------------------------------

def _parse_columns(data, off, size, r):
    """The input columns record (kind 5) at off: (scale, offset)."""
    if r != 0:
        raise MlpFormatError("layer record %d: input columns must be the first record (and come once)" % r)
    if size < 4:
        raise MlpFormatError("layer record %d: input columns record of %d bytes" % (r, size))
    n = _u32(data, off)
    if not 1 <= n <= MAX_WIDTH:
        raise MlpFormatError("layer record %d: %d input columns outside 1..%d" % (r, n, MAX_WIDTH))
    if size != 4 + 8 * n:
        raise MlpFormatError("layer record %d: %d input columns need %d bytes, record has %d" % (r, n, 4 + 8 * n, size))
    scale, offset = _floats(data, off + 4, n), _floats(data, off + 4 + 4 * n, n)
    bad = ~(np.isfinite(scale) & (scale != 0))
    if bad.any():
        j = int(np.argmax(bad))
        raise MlpFormatError("layer record %d: input column %d: scale %s is not finite and nonzero" % (r, j, _g(scale[j])))
    bad = ~np.isfinite(offset)
    if bad.any():
        j = int(np.argmax(bad))
        raise MlpFormatError("layer record %d: input column %d: offset %s is not finite" % (r, j, _g(offset[j])))
    return scale, offset


def _show_name(b):
    """A class name's bytes for a message or a terminal: quoted, \\ and \"
    escaped, bytes that are not UTF-8 as \\xNN."""
    return '"%s"' % b.replace(b"\\", b"\\\\").replace(b'"', b'\\"').decode("utf-8", "backslashreplace")


def _parse_names(data, off, size, r, n_records, n_out):
    """The class names record (kind 6) at off: the names as bytes. n_out:
    the output width (None before any dense layer: 'no dense layer' follows)."""
    if r != n_records - 1:
        raise MlpFormatError("layer record %d: class names must be the last record (and come once)" % r)
    if size < 4:
        raise MlpFormatError("layer record %d: class names record of %d bytes" % (r, size))
    n = _u32(data, off)
    if n_out is not None and n != n_out:
        raise MlpFormatError("layer record %d: %d class names for %d outputs" % (r, n, n_out))
    pos, stop = off + 4, off + size
    names, seen = [], {}
    for k in range(n):  # at least 5 bytes a name: n is bounded by the record's size
        if stop - pos < 4:
            raise MlpFormatError("layer record %d: class name %d: truncated (the record ends)" % (r, k))
        length = _u32(data, pos)
        pos += 4
        if not 1 <= length <= MAX_NAME:
            raise MlpFormatError("layer record %d: class name %d: length %d outside 1..%d" % (r, k, length, MAX_NAME))
        if length > stop - pos:
            raise MlpFormatError("layer record %d: class name %d: %d bytes claimed, %d left in the record"
                                 % (r, k, length, stop - pos))
        name = data[pos:pos + length]
        pos += length
        bad = _CONTROL.search(name)
        if bad:
            raise MlpFormatError("layer record %d: class name %d: control byte 0x%02x at byte %d"
                                 % (r, k, name[bad.start()], bad.start()))
        if name in seen:
            raise MlpFormatError("layer record %d: class names %d and %d are both %s" % (r, seen[name], k, _show_name(name)))
        seen[name] = k
        names.append(name)
    if pos != stop:
        raise MlpFormatError("layer record %d: %d unexpected bytes after the last class name" % (r, stop - pos))
    return names


def _parse_records(data, end, n_records):
    """The records between HEADER and end, checked as mlp.h's
    mlp__parse_records checks them; returns (layers, widths, columns, names):
    columns (scale, offset) and names (a list of bytes) or None."""
    layers, sizes = [], []
    columns = names = None
    off = HEADER
    prev_act, prev_dropout, prev_dense = True, False, False  # a model starts with a dense layer
    input_rate, input_width, input_record = None, 0, 0
    hidden_rate, hidden_dropouts, hidden_acts = None, 0, 0
    for r in range(n_records):
        if end - off < 8:
            raise MlpFormatError("layer record %d: truncated" % r)
        kind, size = _u32(data, off), _u32(data, off + 4)
        off += 8
        if size > end - off:
            raise MlpFormatError("layer record %d: %d bytes claimed, %d left" % (r, size, end - off))
        if kind == REC_DENSE:
            if size < 8:
                raise MlpFormatError("layer record %d: dense record of %d bytes" % (r, size))
            n_in, n_out = _u32(data, off), _u32(data, off + 4)
            if not (1 <= n_in <= MAX_WIDTH and 1 <= n_out <= MAX_WIDTH):
                raise MlpFormatError("layer record %d: dense size %d x %d outside 1..%d" % (r, n_in, n_out, MAX_WIDTH))
            need = 8 + 4 * (n_in * n_out + n_out)
            if size != need:
                raise MlpFormatError("layer record %d: dense %d x %d needs %d bytes, record has %d"
                                     % (r, n_in, n_out, need, size))
            if not sizes:
                sizes.append(n_in)
            elif sizes[-1] != n_in:
                raise MlpFormatError("layer record %d: dense input %d does not match the previous width %d"
                                     % (r, n_in, sizes[-1]))
            if len(sizes) > MAX_LAYERS:
                raise MlpFormatError("more than %d dense layers" % MAX_LAYERS)
            sizes.append(n_out)
            if prev_act and len(sizes) > 2:
                hidden_acts += 1  # an activation feeding this layer
            nw = n_in * n_out
            W = _floats(data, off + 8, nw).reshape(n_in, n_out)
            b = _floats(data, off + 8 + 4 * nw, n_out)
            layers.append({"kind": "dense", "W": W, "b": b})
            prev_act, prev_dropout, prev_dense = False, False, True
            off += size
            continue
        elif kind == REC_ACT:
            if size != 8:
                raise MlpFormatError("layer record %d: activation record of %d bytes (expected 8)" % (r, size))
            fn, width = _u32(data, off), _u32(data, off + 4)
            if fn not in ACT_NAMES:
                raise MlpFormatError("layer record %d: unknown activation function %d" % (r, fn))
            if prev_act:
                raise MlpFormatError("layer record %d: an activation must follow a dense layer" % r)
            if width != sizes[-1]:
                raise MlpFormatError("layer record %d: activation width %d does not match %d" % (r, width, sizes[-1]))
            layers.append({"kind": "act", "fn": ACT_NAMES[fn], "width": width})
            prev_act = True
        elif kind == REC_BATCHNORM:
            if size < 12:
                raise MlpFormatError("layer record %d: batchnorm record of %d bytes" % (r, size))
            width, eps, momentum = _u32(data, off), _f32(data, off + 4), _f32(data, off + 8)
            if not prev_dense or width != sizes[-1]:
                raise MlpFormatError("layer record %d: batchnorm must follow a dense layer of the same width" % r)
            if size != 12 + 16 * width:
                raise MlpFormatError("layer record %d: batchnorm of width %d needs %d bytes, record has %d"
                                     % (r, width, 12 + 16 * width, size))
            if not (0.0 < eps < 1.0) or not (0.0 < momentum <= 1.0):
                raise MlpFormatError("layer record %d: batchnorm eps %s or momentum %s out of range"
                                     % (r, _g(eps), _g(momentum)))
            blocks = [_floats(data, off + 12 + 4 * k * width, width) for k in range(4)]
            layers.append({"kind": "batchnorm", "eps": eps, "momentum": momentum, "gamma": blocks[0],
                           "beta": blocks[1], "mean": blocks[2], "var": blocks[3]})
        elif kind == REC_DROPOUT:
            if size != 8:
                raise MlpFormatError("layer record %d: dropout record of %d bytes (expected 8)" % (r, size))
            rate, width = _f32(data, off), _u32(data, off + 4)
            if not (0.0 < rate < 1.0):
                raise MlpFormatError("layer record %d: dropout rate %s outside (0, 1)" % (r, _g(rate)))
            if prev_dropout:
                raise MlpFormatError("layer record %d: two dropout layers in a row" % r)
            if not sizes:
                input_rate, input_width, input_record = rate, width, r
            elif not prev_act or width != sizes[-1]:
                raise MlpFormatError("layer record %d: dropout must follow the input or an activation of the same width" % r)
            elif hidden_dropouts and rate != hidden_rate:
                raise MlpFormatError("layer record %d: hidden dropout rates differ (%s, %s)" % (r, _g(hidden_rate), _g(rate)))
            else:
                hidden_rate = rate
                hidden_dropouts += 1
            layers.append({"kind": "dropout", "rate": rate, "width": width})
            prev_dropout = True
        elif kind == REC_COLUMNS:  # changes no prev_*: the walk goes on as if it were not there
            columns = _parse_columns(data, off, size, r)
            off += size
            continue
        elif kind == REC_NAMES:
            names = _parse_names(data, off, size, r, n_records, sizes[-1] if sizes else None)
            off += size
            continue
        else:
            raise MlpFormatError("layer record %d: unknown layer kind %d (written by a newer mlp.h?)" % (r, kind))
        prev_dense = False
        off += size
    if len(sizes) < 2:
        raise MlpFormatError("no dense layer")
    if hidden_dropouts and hidden_dropouts != hidden_acts:
        raise MlpFormatError("dropout after %d of %d hidden activations (all or none)" % (hidden_dropouts, hidden_acts))
    if prev_dropout:
        raise MlpFormatError("a dropout layer cannot come last")
    if off != end:
        raise MlpFormatError("%d unexpected bytes after the last layer" % (end - off))
    if input_rate is not None and input_width != sizes[0]:
        raise MlpFormatError("layer record %d: input dropout width %d does not match the input width %d"
                             % (input_record, input_width, sizes[0]))
    if columns is not None and columns[0].size != sizes[0]:
        raise MlpFormatError("layer record 0: %d input columns for an input width of %d" % (columns[0].size, sizes[0]))
    return layers, sizes, columns, names


def loads(data):
    """The model in data (a .mlp file's bytes) as a dict; MlpFormatError
    with the reason when mlp.h would not load it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("loads: expected bytes, got %s" % type(data).__name__)
    data = bytes(data)
    size = len(data)
    if size < 8:
        raise MlpFormatError("too short to be a model file (%d bytes)" % size)
    if data[:8] != MAGIC:
        raise MlpFormatError("not an mlp.h model file (bad magic)")
    if size < 12:
        raise MlpFormatError("truncated header (%d bytes)" % size)
    version = _u32(data, 8)
    if version != VERSION:
        raise MlpFormatError("model format version %d; this reader reads version %d" % (version, VERSION))
    if size < HEADER + 4:
        raise MlpFormatError("truncated header (%d bytes)" % size)
    end = size - 4
    stored, actual = _u32(data, end), zlib.crc32(data[:end]) & 0xFFFFFFFF
    if stored != actual:
        raise MlpFormatError("checksum mismatch (stored %08x, computed %08x): the file is damaged or truncated"
                             % (stored, actual))
    flags, loss = _u32(data, 12), _u32(data, 16)
    img_w, img_h = _u32(data, 20), _u32(data, 24)
    scale, offset = _f32(data, 28), _f32(data, 32)
    n_records = _u32(data, 36)
    if flags != 0:
        raise MlpFormatError("unknown flags 0x%x" % flags)
    if loss not in LOSS_NAMES:
        raise MlpFormatError("unknown loss %d" % loss)
    if not math.isfinite(scale) or not math.isfinite(offset) or scale == 0.0:
        raise MlpFormatError("bad input normalisation (scale %s, offset %s)" % (_g(scale), _g(offset)))
    if not 1 <= n_records <= MAX_RECORDS:
        raise MlpFormatError("%d layer records (need 1..%d)" % (n_records, MAX_RECORDS))
    if img_w > MAX_WIDTH or img_h > MAX_WIDTH or (img_w == 0) != (img_h == 0):
        raise MlpFormatError("bad image size %d x %d" % (img_w, img_h))
    layers, sizes, columns, names = _parse_records(data, end, n_records)
    if img_w and img_w * img_h != sizes[0]:
        raise MlpFormatError("image size %d x %d does not match the input width %d" % (img_w, img_h, sizes[0]))
    if loss == 0 and sizes[-1] < 2:
        raise MlpFormatError("cross-entropy model with one output")
    for r, L in enumerate(layers):
        if L["kind"] == "batchnorm":
            bad = ~(np.isfinite(L["mean"]) & np.isfinite(L["var"]) & (L["var"] >= 0))
            if bad.any():
                raise MlpFormatError("layer record %d: batchnorm running statistics of unit %d are not finite "
                                     "(or the variance < 0)" % (r, int(np.argmax(bad))))
    for r, L in enumerate(layers):  # the parameters, in mlp.h's order
        for name in ("W", "b") if L["kind"] == "dense" else ("gamma", "beta") if L["kind"] == "batchnorm" else ():
            bad = ~np.isfinite(L[name])
            if bad.any():
                where = np.unravel_index(int(np.argmax(bad)), bad.shape)
                raise MlpFormatError("layer record %d: %s %s%s is not finite"
                                     % (r, L["kind"], name, "".join("[%d]" % i for i in where)))
    return {"loss": LOSS_NAMES[loss], "image_w": img_w, "image_h": img_h,
            "input_scale": scale, "input_offset": offset, "layers": layers, "columns": columns,
            "class_names": None if names is None else [b.decode("utf-8", "surrogateescape") for b in names]}


def load(path):
    """loads() of the file at path (MlpFormatError names the file)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return loads(data)
    except MlpFormatError as e:
        raise MlpFormatError("%s: %s" % (path, e)) from None


# ---- writing ---------------------------------------------------------------

def _pack_u32(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise MlpFormatError("%s: expected an integer, got %r" % (what, v))
    if not 0 <= int(v) <= 0xFFFFFFFF:
        raise MlpFormatError("%s: %d does not fit a u32" % (what, v))
    return struct.pack("<I", int(v))


def _pack_f32(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise MlpFormatError("%s: expected a number, got %r" % (what, v))
    try:
        return struct.pack("<f", float(v))
    except OverflowError:
        raise MlpFormatError("%s: %s does not fit a float32" % (what, _g(v))) from None


def _array(L, name, ndim, what):
    if name not in L:
        raise MlpFormatError("%s: no '%s'" % (what, name))
    a = np.asarray(L[name])
    if a.dtype.kind not in "fiu" or a.ndim != ndim:
        raise MlpFormatError("%s: '%s' must be a %d-D array of numbers, got %s of shape %s"
                             % (what, name, ndim, a.dtype, a.shape))
    with np.errstate(over="ignore"):  # too large for float32: inf, refused below as not finite
        return a.astype("<f4")


def _field(L, name, what):
    if name not in L:
        raise MlpFormatError("%s: no '%s'" % (what, name))
    return L[name]


def _encode_layer(r, L):
    what = "layers[%d]" % r
    if not isinstance(L, dict) or "kind" not in L:
        raise MlpFormatError("%s: expected a dict with a 'kind'" % what)
    kind = L["kind"]
    what += " (%s)" % kind
    if kind == "dense":
        W, b = _array(L, "W", 2, what), _array(L, "b", 1, what)
        n_in, n_out = W.shape
        if not (1 <= n_in <= MAX_WIDTH and 1 <= n_out <= MAX_WIDTH):
            raise MlpFormatError("%s: dense size %d x %d outside 1..%d" % (what, n_in, n_out, MAX_WIDTH))
        if b.shape != (n_out,):
            raise MlpFormatError("%s: b has shape %s, W %s needs (%d,)" % (what, b.shape, W.shape, n_out))
        payload = 8 + 4 * (n_in * n_out + n_out)
        if payload > 0xFFFFFFFF:
            raise MlpFormatError("%s: %d x %d weights do not fit one record (%d bytes, 4 GiB at most)"
                                 % (what, n_in, n_out, payload))
        return [struct.pack("<IIII", REC_DENSE, payload, n_in, n_out), W.tobytes(), b.tobytes()]
    if kind == "act":
        fn = _field(L, "fn", what)
        if fn not in ACT_CODES:
            raise MlpFormatError("%s: unknown activation %r (relu, sigmoid or tanh)" % (what, fn))
        return [struct.pack("<III", REC_ACT, 8, ACT_CODES[fn]), _pack_u32(_field(L, "width", what), what + " width")]
    if kind == "dropout":
        return [struct.pack("<II", REC_DROPOUT, 8), _pack_f32(_field(L, "rate", what), what + " rate"),
                _pack_u32(_field(L, "width", what), what + " width")]
    if kind == "batchnorm":
        blocks = [_array(L, name, 1, what) for name in ("gamma", "beta", "mean", "var")]
        n = blocks[0].shape[0]
        if any(a.shape != (n,) for a in blocks) or n < 1:
            raise MlpFormatError("%s: gamma, beta, mean and var must have one shape (n,), n >= 1; got %s"
                                 % (what, ", ".join(str(a.shape) for a in blocks)))
        if n > MAX_WIDTH:
            raise MlpFormatError("%s: width %d outside 1..%d" % (what, n, MAX_WIDTH))
        head = [struct.pack("<III", REC_BATCHNORM, 12 + 16 * n, n), _pack_f32(_field(L, "eps", what), what + " eps"),
                _pack_f32(_field(L, "momentum", what), what + " momentum")]
        return head + [a.tobytes() for a in blocks]
    raise MlpFormatError("%s: unknown layer kind (dense, act, dropout or batchnorm)" % what)


def _encode_columns(columns):
    """The input columns record: columns is (scale, offset)."""
    if not isinstance(columns, (tuple, list)) or len(columns) != 2:
        raise MlpFormatError("columns: expected (scale, offset), two arrays of the input width, got %s"
                             % type(columns).__name__)
    arrays = []
    for name, a in zip(("scale", "offset"), columns):
        a = np.asarray(a)
        if a.dtype.kind not in "fiu" or a.ndim != 1:
            raise MlpFormatError("columns: %s must be a 1-D array of numbers, got %s of shape %s" % (name, a.dtype, a.shape))
        with np.errstate(over="ignore"):  # too large for float32: inf, refused by loads as not finite
            arrays.append(a.astype("<f4"))
    n = arrays[0].size
    if arrays[1].shape != (n,) or not 1 <= n <= MAX_WIDTH:
        raise MlpFormatError("columns: scale and offset must have one shape (n,), 1 <= n <= %d; got %s, %s"
                             % (MAX_WIDTH, arrays[0].shape, arrays[1].shape))
    return [struct.pack("<III", REC_COLUMNS, 4 + 8 * n, n), arrays[0].tobytes(), arrays[1].tobytes()]


def _encode_names(names):
    """The class names record: names is a list of str (UTF-8, surrogateescape) or bytes."""
    if isinstance(names, (str, bytes, bytearray)) or not isinstance(names, (list, tuple)):
        raise MlpFormatError("class_names: expected a list of str (or bytes), got %s" % type(names).__name__)
    parts = [struct.pack("<I", len(names))]
    for k, name in enumerate(names):
        if isinstance(name, str):
            try:
                name = name.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as e:
                raise MlpFormatError("class_names[%d]: %r is not UTF-8 text (%s)" % (k, name, e.reason)) from None
        elif not isinstance(name, (bytes, bytearray)):
            raise MlpFormatError("class_names[%d]: expected str or bytes, got %s" % (k, type(name).__name__))
        if len(name) > MAX_NAME:  # checked by loads too; here before the u32 of its length
            raise MlpFormatError("class_names[%d]: %d bytes (1..%d)" % (k, len(name), MAX_NAME))
        parts += [struct.pack("<I", len(name)), bytes(name)]
    payload = sum(len(b) for b in parts)
    if payload > 0xFFFFFFFF:
        raise MlpFormatError("class_names: %d names do not fit one record" % len(names))
    return [struct.pack("<II", REC_NAMES, payload)] + parts


def dumps(model):
    """model as the bytes of a .mlp file, the ones mlp.h's mlp_save writes for
    the same network: the input columns record (when model['columns'] is not
    None) right after the header, then layers, then the class names record
    (when model['class_names'] is not None). MlpFormatError when mlp.h would
    not load the result (layer record r of the message is layers[r], or
    layers[r - 1] when the model has columns)."""
    if not isinstance(model, dict):
        raise MlpFormatError("model: expected a dict, got %s" % type(model).__name__)
    for key in ("loss", "layers"):
        if key not in model:
            raise MlpFormatError("model: no '%s'" % key)
    if model["loss"] not in LOSS_CODES:
        raise MlpFormatError("model: unknown loss %r ('ce' or 'mse')" % (model["loss"],))
    layers = model["layers"]
    if not isinstance(layers, (list, tuple)) or not 1 <= len(layers) <= MAX_LAYER_RECORDS:
        raise MlpFormatError("model: 'layers' must be a list of 1..%d layers" % MAX_LAYER_RECORDS)
    columns, names = model.get("columns"), model.get("class_names")
    n_records = len(layers) + (columns is not None) + (names is not None)
    parts = [MAGIC, struct.pack("<III", VERSION, 0, LOSS_CODES[model["loss"]]),
             _pack_u32(model.get("image_w", 0), "image_w"), _pack_u32(model.get("image_h", 0), "image_h"),
             _pack_f32(model.get("input_scale", 1.0), "input_scale"),
             _pack_f32(model.get("input_offset", 0.0), "input_offset"), struct.pack("<I", n_records)]
    if columns is not None:
        parts += _encode_columns(columns)
    for r, L in enumerate(layers):
        parts += _encode_layer(r, L)
    if names is not None:
        parts += _encode_names(names)
    body = b"".join(parts)
    data = body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    try:
        loads(data)  # mlp.h's rules, checked once, in one place
    except MlpFormatError as e:
        raise MlpFormatError("not a model mlp.h would load: %s" % e) from None
    return data


def save(model, path):
    """dumps(model) to path, atomically: written to PATH.tmp, synced, renamed."""
    data = dumps(model)
    tmp = "%s.tmp" % os.fspath(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- inference -------------------------------------------------------------

def predict(model, raw):
    """The network's outputs (float64, (B, n_out)) for raw inputs (B, n_in)
    as the data holds them (MNIST: pixels 0..255): raw * input_scale +
    input_offset, the layers (dropout: identity; batchnorm: running
    statistics), then softmax for 'ce'; 'mse' outputs as they are. With
    input columns: (raw * input_scale + input_offset) * scale + offset,
    column by column, before the layers."""
    x = np.asarray(raw, dtype=np.float64)
    n_in = next(L["W"].shape[0] for L in model["layers"] if L["kind"] == "dense")
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError("predict: raw must be (B, %d), got shape %s" % (n_in, x.shape))
    x = x * float(model["input_scale"]) + float(model["input_offset"])
    if model.get("columns") is not None:
        scale, offset = (np.asarray(a, dtype=np.float64) for a in model["columns"])
        if scale.shape != (n_in,) or offset.shape != (n_in,):
            raise ValueError("predict: columns must be two (%d,) arrays, got %s and %s" % (n_in, scale.shape, offset.shape))
        x = x * scale + offset
    for L in model["layers"]:
        kind = L["kind"]
        if kind == "dense":
            x = x @ np.asarray(L["W"], dtype=np.float64) + np.asarray(L["b"], dtype=np.float64)
        elif kind == "batchnorm":
            g, b, m, v = (np.asarray(L[k], dtype=np.float64) for k in ("gamma", "beta", "mean", "var"))
            x = g * (x - m) / np.sqrt(v + float(L["eps"])) + b
        elif kind == "act":
            fn = L["fn"]
            x = np.maximum(x, 0.0) if fn == "relu" else np.tanh(x) if fn == "tanh" else 0.5 * (1.0 + np.tanh(0.5 * x))
        elif kind != "dropout":
            raise ValueError("predict: unknown layer kind %r" % (kind,))
    if model["loss"] == "ce":
        x = np.exp(x - x.max(axis=1, keepdims=True))
        x /= x.sum(axis=1, keepdims=True)
    return x


# ---- the command line --------------------------------------------------------

def _name_list(names, most=10):
    """The first names, quoted, and how many more there are."""
    shown = [_show_name(n.encode("utf-8", "surrogateescape") if isinstance(n, str) else bytes(n)) for n in names[:most]]
    return " ".join(shown) + (" ... (%d more)" % (len(names) - most) if len(names) > most else "")


def describe(model):
    """One line: widths, hidden activation(s), batchnorm, dropout, loss,
    input, input columns, class names."""
    layers = model["layers"]
    dense = [L for L in layers if L["kind"] == "dense"]
    widths = [dense[0]["W"].shape[0]] + [L["W"].shape[1] for L in dense]
    acts, d = [None] * len(dense), -1  # activation after each dense layer
    bn = []
    for L in layers:
        if L["kind"] == "dense":
            d += 1
        elif L["kind"] == "act":
            acts[d] = L["fn"]
        elif L["kind"] == "batchnorm":
            bn.append(d)
    parts = ["-".join(str(w) for w in widths)]
    hidden = sorted(set(a or "identity" for a in acts[:-1]))
    if hidden:
        parts.append("/".join(hidden))
    if acts[-1]:
        parts.append("output %s" % acts[-1])
    if bn:
        parts.append("batchnorm" if bn == list(range(len(dense) - 1)) else
                     "batchnorm after dense %s" % ",".join(str(i + 1) for i in bn))
    drop = [L for L in layers if L["kind"] == "dropout"]
    if drop:
        first = layers[0]["kind"] == "dropout"
        rates = (["input %s" % _g(drop[0]["rate"])] if first else []) + \
                (["hidden %s" % _g(drop[-1]["rate"])] if len(drop) > first else [])
        parts.append("dropout " + " ".join(rates))
    parts.append("loss %s" % model["loss"])
    parts.append("input x*%s+%s" % (_g(model["input_scale"]), _g(model["input_offset"])))
    if model["image_w"]:
        parts.append("image %dx%d" % (model["image_w"], model["image_h"]))
    if model.get("columns") is not None:
        parts.append("per-column standardisation (%d columns)" % len(model["columns"][0]))
    names = model.get("class_names")
    if names is not None:
        parts.append("classes %s" % _name_list(names))
    return ", ".join(parts)


def _main(argv):
    if len(argv) != 3 or argv[1] != "info":
        print("usage: mlp.py info MODEL.mlp   (the architecture of an mlp.h model file)", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(errors="backslashreplace")  # class names on a terminal that is not UTF-8
    try:
        model = load(argv[2])
    except (OSError, MlpFormatError) as e:
        print("mlp.py: %s" % e, file=sys.stderr)
        return 1
    print(describe(model))
    n_params = 0
    first = 0
    if model["columns"] is not None:
        scale, offset = model["columns"]
        print("  record 0   %-10s %d, scale %s..%s, offset %s..%s" % (
            "columns", scale.size, _g(scale.min()), _g(scale.max()), _g(offset.min()), _g(offset.max())))
        first = 1
    for r, L in enumerate(model["layers"], first):
        kind = L["kind"]
        if kind == "dense":
            n = L["W"].size + L["b"].size
            line = "%d -> %d, %d parameters" % (L["W"].shape + (n,))
        elif kind == "batchnorm":
            n = 2 * L["gamma"].size
            line = "%d, eps %s, momentum %s" % (L["gamma"].size, _g(L["eps"]), _g(L["momentum"]))
        elif kind == "act":
            n, line = 0, "%s, %d" % (L["fn"], L["width"])
        else:
            n, line = 0, "rate %s, %d" % (_g(L["rate"]), L["width"])
        n_params += n
        print("  record %-3d %-10s %s" % (r, kind, line))
    if model["class_names"] is not None:
        names = model["class_names"]
        print("  record %-3d %-10s %d: %s" % (first + len(model["layers"]), "names", len(names), _name_list(names)))
    print("%d parameters" % n_params)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv))
    except BrokenPipeError:  # `mlp.py info M | head -1`: the reader left, nothing is wrong
        sys.stderr.close()
        sys.exit(0)
