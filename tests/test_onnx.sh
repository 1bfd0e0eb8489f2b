#!/usr/bin/env bash
# make test-onnx: tools/mlp2onnx.py's ONNX models, run by ONNX Runtime
# (onnxruntime-node, under Node), predict what mlp_predict predicts: the same
# class for every input and every output within 1e-5 (tests/onnx_run.js),
# with ONNX Runtime's graph optimisations off and on. Synthetic networks of
# every layer kind (tests/onnx_cases.py), then, when MNIST is in data/mnist,
# three models train_mnist trains for one epoch (ReLU; batchnorm; tanh with
# the MSE loss and dropout) on all 10,000 test images. Every ONNX file also
# passes onnx.checker, keeps each batchnorm as its own node and has no Dropout.
#
# Needs python3-onnx (for $PYTHON, default /usr/bin/python3) and node + npm;
# without them it says so and passes, unless MLP_REQUIRE_ONNX=1. It installs
# onnxruntime-node $ORT_VERSION into BUILD_DIR/onnx/node once (npm registry,
# about 250 MB unpacked) and reuses it afterwards.
# usage: tests/test_onnx.sh BUILD_DIR
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
ORT_VERSION=1.23.2
ort=$B/onnx/node
out=$B/onnx/run
mnist=data/mnist

skip() {
    if [ "${MLP_REQUIRE_ONNX:-0}" = 1 ]; then echo "test_onnx: $1 (MLP_REQUIRE_ONNX=1)" >&2; exit 1; fi
    echo "test_onnx: $1: ONNX export not tested"; exit 0
}
"$PYTHON" -c 'import numpy, onnx' 2>/dev/null || skip "$PYTHON cannot import onnx (apt-get install python3-onnx)"
command -v node > /dev/null && command -v npm > /dev/null || skip "node or npm is missing (apt-get install npm)"

installed() { node -p 'require(process.argv[1]).version' "$ort/node_modules/onnxruntime-node/package.json" 2>/dev/null || true; }
if [ "$(installed)" != "$ORT_VERSION" ]; then
    echo "test_onnx: installing onnxruntime-node@$ORT_VERSION into $ort (npm registry, once)"
    mkdir -p "$ort"
    # ONNXRUNTIME_NODE_INSTALL=skip: its postinstall script would fetch the
    # CUDA provider from api.nuget.org; the CPU runtime is in the npm package.
    ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$ort" --no-audit --no-fund --loglevel=error \
        "onnxruntime-node@$ORT_VERSION" > "$B/onnx/npm-install.log" 2>&1 ||
        { cat "$B/onnx/npm-install.log" >&2; skip "npm install onnxruntime-node@$ORT_VERSION failed (offline?)"; }
    [ "$(installed)" = "$ORT_VERSION" ] || skip "onnxruntime-node@$ORT_VERSION is not in $ort after npm install"
fi

rm -rf "$out"; mkdir -p "$out"

# NAME...: the ONNX files pass onnx.checker (full check) and keep the
# model file's batchnorm layers as BatchNormalization nodes, no Dropout;
# input columns are a second Mul, Add pair; class names are the metadata
# "class_names" (a JSON list), exactly the model file's
check_graphs() {
    "$PYTHON" - "$out" "$@" <<'EOF'
import json, os, sys
sys.path.insert(0, "tools")
import mlp, onnx
d = sys.argv[1]
for name in sys.argv[2:]:
    model = onnx.load(os.path.join(d, name + ".onnx"))
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    m = mlp.load(os.path.join(d, name + ".mlp"))
    bn = sum(L["kind"] == "batchnorm" for L in m["layers"])
    if ops.count("BatchNormalization") != bn or "Dropout" in ops:
        sys.exit("test_onnx: %s: %d batchnorm layers, but the graph is %s" % (name, bn, " ".join(ops)))
    front = ["Mul", "Add"] * (2 if m["columns"] is not None else 1)
    if ops[:len(front)] != front or ops[len(front)] in ("Mul", "Add"):
        sys.exit("test_onnx: %s: input columns %s, but the graph starts %s" % (name, m["columns"] is not None, " ".join(ops[:5])))
    props = {p.key: p.value for p in model.metadata_props}
    names = json.loads(props["class_names"]) if "class_names" in props else None
    if names != m["class_names"]:
        sys.exit("test_onnx: %s: class names %r in the model file, %r in the ONNX metadata" % (name, m["class_names"], names))
    print("  %s: %s%s" % (name, " ".join(ops), "; class names %s" % props["class_names"] if names else ""))
EOF
}

# NAME INPUTS: export_gen's mlp_predict reference for INPUTS (IDX), the ONNX
# model, ONNX Runtime against the reference
check() {
    "$B/export_gen" --model "$out/$1.mlp" "$2" "$out/$1"
    "$PYTHON" tools/mlp2onnx.py "$out/$1.mlp" "$out/$1.onnx"
    node tests/onnx_run.js "$out/$1.onnx" "$out/$1" "$ort"
}

# a file that is not a model: one line and exit status 1
rc=0; "$PYTHON" tools/mlp2onnx.py README.md "$out/readme.onnx" 2> "$out/bad.err" || rc=$?
if [ $rc -ne 1 ] || ! grep -q '^mlp2onnx: README.md: not an mlp.h model file' "$out/bad.err" || [ -e "$out/readme.onnx" ]; then
    echo "test_onnx: mlp2onnx.py README.md: exit status $rc (expected 1), no ONNX file, and:" >&2; cat "$out/bad.err" >&2; exit 1
fi

echo "test_onnx: onnxruntime-node $ORT_VERSION, node $(node --version), onnx $("$PYTHON" -c 'import onnx; print(onnx.__version__)')"
names=$("$PYTHON" tests/onnx_cases.py "$out")
for name in $names; do check "$name" "$out/$name.idx"; done
check_graphs $names

if [ -f "$mnist/t10k-images-idx3-ubyte" ]; then
    train() {
        local name=$1; shift
        "$B/train_mnist" --data "$mnist" --layers 784-32-10 --epochs 1 --threads 2 --quiet --seed 5 \
            --out "$out/$name.mlp" "$@" > "$out/$name.log"
        echo "test_onnx: $name: $(grep '^test accuracy' "$out/$name.log")"
    }
    train mnist_relu
    train mnist_bn --batchnorm
    train mnist_tanh_mse --act tanh --loss mse --dropout 0.2
    for name in mnist_relu mnist_bn mnist_tanh_mse; do check "$name" "$mnist/t10k-images-idx3-ubyte"; done
    check_graphs mnist_relu mnist_bn mnist_tanh_mse
elif [ "${MLP_REQUIRE_MNIST:-0}" = 1 ]; then
    echo "test_onnx: MNIST is missing from $mnist (MLP_REQUIRE_MNIST=1)" >&2; exit 1
else
    echo "test_onnx: MNIST not in $mnist: the MNIST models not checked (make data)"
fi
echo "test_onnx: every ONNX model agrees with mlp_predict"
