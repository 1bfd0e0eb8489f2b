#!/usr/bin/python3
"""An mlp.h model file as an ONNX model, for ONNX Runtime and other runtimes.

    tools/mlp2onnx.py MODEL.mlp OUT.onnx [--opset N]

The ONNX graph takes what mlp_predict's caller starts from and gives what it
gives back:

    raw    float32 [N, n_in]   inputs as the data holds them (MNIST: pixels 0..255)
    probs  float32 [N, n_out]  softmax of the logits (loss ce), the network's
                               outputs as they are (loss mse)

N, the batch, is left open. Nodes, in the model file's order:

    x = raw * input_scale + input_offset      Mul, Add
    input columns (when the model has them):
    x = x * column_scale + column_offset      Mul, Add ([n_in] constants:
                                              per-feature standardisation)
    dense:      x W + b                       Gemm (W as stored, n_in x n_out)
    activation: relu, sigmoid, tanh           Relu, Sigmoid, Tanh
    batchnorm:  gamma (x - mean) / sqrt(var + eps) + beta, the running mean
                and variance                  BatchNormalization (inference)
    dropout:    nothing (it only acts in training)
    ce:         softmax over the classes      Softmax(axis=-1)

Class names (when the model has them) are in the model's metadata_props
under "class_names": a JSON list of strings in class index order (a name
whose bytes are not UTF-8 appears with \\udcXX escapes for those bytes, as
Python's surrogateescape gives them; otherwise the JSON is plain UTF-8).

Batchnorm stays a node of its own (mlp_export_c folds it into the dense layer
before it; here a runtime may). Opsets 11 (the first with Softmax(axis=-1))
to the newest the installed onnx package knows; default 13. The file is
read by tools/mlp.py; the result is checked by onnx.checker (full check,
shape inference included) before it is written. Exit status 1 with one line
on stderr when the model file is unreadable or wrong, 2 on a usage error.
Needs NumPy and onnx (Debian: python3-onnx).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, checker, helper, numpy_helper
except ImportError as e:
    print("mlp2onnx: %s (Debian: apt-get install python3-onnx)" % e, file=sys.stderr)
    sys.exit(1)

import mlp

DEFAULT_OPSET = 13
MIN_OPSET = 11
ACT_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


class Graph:
    """Nodes and initializers in order; each value named after its node."""

    def __init__(self):
        self.nodes, self.inits, self.last = [], [], "raw"

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type, name, extra_inputs=(), **attrs):
        self.nodes.append(helper.make_node(op_type, [self.last] + list(extra_inputs), [name], name=name, **attrs))
        self.last = name


def build(m, opset, source):
    layers = m["layers"]
    dense = [L for L in layers if L["kind"] == "dense"]
    if not dense:
        raise mlp.MlpFormatError("no dense layer")
    n_in, n_out = dense[0]["W"].shape[0], dense[-1]["W"].shape[1]
    if m["loss"] not in ("ce", "mse"):
        raise mlp.MlpFormatError("unknown loss %r" % (m["loss"],))

    g = Graph()
    g.op("Mul", "scaled", [g.const("input_scale", m["input_scale"])])
    g.op("Add", "x", [g.const("input_offset", m["input_offset"])])
    width, plan = n_in, []
    columns = m.get("columns")
    if columns is not None:
        scale, offset = (np.asarray(a, np.float32) for a in columns)
        if scale.shape != (n_in,) or offset.shape != (n_in,):
            raise mlp.MlpFormatError("input columns of shapes %s and %s for %d inputs" % (scale.shape, offset.shape, n_in))
        g.op("Mul", "column_scaled", [g.const("column_scale", scale)])
        g.op("Add", "columns", [g.const("column_offset", offset)])
        plan.append("input columns")
    class_names = m.get("class_names")
    if class_names is not None and len(class_names) != n_out:
        raise mlp.MlpFormatError("%d class names for %d outputs" % (len(class_names), n_out))
    for i, L in enumerate(layers):
        kind = L["kind"]
        if kind != "dense" and L.get("width", width) != width:
            raise mlp.MlpFormatError("layer %d: %s of width %d after width %d" % (i, kind, L["width"], width))
        if kind == "dense":
            W, b = np.asarray(L["W"], np.float32), np.asarray(L["b"], np.float32)
            if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
                raise mlp.MlpFormatError("layer %d: dense %s + bias %s after width %d" % (i, W.shape, b.shape, width))
            g.op("Gemm", "dense%d" % i, [g.const("W%d" % i, W), g.const("b%d" % i, b)])
            width = W.shape[1]
            plan.append("dense %d-%d" % W.shape)
        elif kind == "act":
            if L["fn"] not in ACT_OPS:
                raise mlp.MlpFormatError("layer %d: unknown activation %r" % (i, L["fn"]))
            g.op(ACT_OPS[L["fn"]], "%s%d" % (L["fn"], i))
            plan.append(L["fn"])
        elif kind == "batchnorm":
            stats = [np.asarray(L[k], np.float32) for k in ("gamma", "beta", "mean", "var")]
            if any(s.shape != (width,) for s in stats):
                raise mlp.MlpFormatError("layer %d: batchnorm statistics are not %d wide" % (i, width))
            names = [g.const("%s%d" % (k, i), s) for k, s in zip(("gamma", "beta", "mean", "var"), stats)]
            g.op("BatchNormalization", "batchnorm%d" % i, names, epsilon=float(L["eps"]))
            plan.append("batchnorm")
        elif kind == "dropout":
            plan.append("(dropout %g: omitted)" % L["rate"])
        else:
            raise mlp.MlpFormatError("layer %d: unknown kind %r" % (i, kind))
    if m["loss"] == "ce":
        g.op("Softmax", "softmax", axis=-1)
    g.nodes[-1].output[0] = "probs"  # the last node's output is the graph's

    graph = helper.make_graph(
        g.nodes, "mlp",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N", n_in])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n_out])],
        g.inits)
    opsets = [helper.make_opsetid("", opset)]
    what = "class probabilities (softmax)" if m["loss"] == "ce" else "network outputs (MSE-trained, no softmax)"
    doc = ("mlp.h network from %s: %s; loss %s. Input 'raw' [N, %d] as the data holds it, "
           "normalised inside as raw * %.9g + %.9g%s; output 'probs' [N, %d]: %s%s."
           % (os.path.basename(source), ", ".join(plan), m["loss"], n_in,
              m["input_scale"], m["input_offset"],
              ", then column j * column_scale[j] + column_offset[j]" if columns is not None else "", n_out, what,
              " (class names: metadata 'class_names')" if class_names is not None else ""))
    model = helper.make_model(graph, producer_name="mlp.h", producer_version="mlp2onnx 1",
                              doc_string=doc, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    props = {"mlp.loss": m["loss"], "mlp.input_scale": "%.9g" % m["input_scale"],
             "mlp.input_offset": "%.9g" % m["input_offset"]}
    if m["image_w"]:
        props["mlp.image_width"], props["mlp.image_height"] = str(m["image_w"]), str(m["image_h"])
    if class_names is not None:
        names = [n.decode("utf-8", "surrogateescape") if isinstance(n, (bytes, bytearray)) else n for n in class_names]
        try:
            "".join(names).encode("utf-8")
            props["class_names"] = json.dumps(names, ensure_ascii=False)
        except UnicodeEncodeError:  # bytes that are not UTF-8: \udcXX escapes, the JSON in ASCII
            props["class_names"] = json.dumps(names)
    helper.set_model_props(model, props)
    checker.check_model(model, full_check=True)
    return model


def main():
    newest = onnx.defs.onnx_opset_version()
    ap = argparse.ArgumentParser(prog="mlp2onnx.py", description="Write an mlp.h model file (.mlp) as an ONNX model.")
    ap.add_argument("model", metavar="MODEL.mlp")
    ap.add_argument("out", metavar="OUT.onnx")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                    help="ONNX opset, %d to %d (default %d)" % (MIN_OPSET, newest, DEFAULT_OPSET))
    a = ap.parse_args()
    if not MIN_OPSET <= a.opset <= newest:
        ap.error("--opset %d: this onnx (%s) writes opsets %d to %d" % (a.opset, onnx.__version__, MIN_OPSET, newest))
    try:
        m = mlp.load(a.model)  # its MlpFormatError names the file
    except OSError as e:
        print("mlp2onnx: cannot read %s: %s" % (a.model, e.strerror or e), file=sys.stderr)
        return 1
    except mlp.MlpFormatError as e:
        print("mlp2onnx: %s" % e, file=sys.stderr)
        return 1
    try:
        model = build(m, a.opset, a.model)
    except (mlp.MlpFormatError, checker.ValidationError) as e:
        print("mlp2onnx: %s: %s" % (a.model, e), file=sys.stderr)
        return 1
    try:
        onnx.save(model, a.out)
    except OSError as e:
        print("mlp2onnx: cannot write %s: %s" % (a.out, e.strerror or e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
