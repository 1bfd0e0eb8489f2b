#!/usr/bin/env bash
# make test-python, the PyTorch half: mlp.h's model files through
# tools/mlp.py into PyTorch and back (tests/roundtrip_torch.py). A network
# train_mnist trains must predict in PyTorch what mlp_predict predicts, and
# one PyTorch trains must predict in mlp.h (export_gen --model, classify
# --raw) what it predicts in PyTorch: the same class for every image, every
# probability within 1e-5. On a small synthetic data set always, and on
# MNIST's 10,000 test images when data/mnist holds them.
# Needs Debian's Python with NumPy and PyTorch (PYTHON, default
# /usr/bin/python3): skipped with a message without them, unless
# MLP_REQUIRE_PYTHON=1; MNIST's part likewise with MLP_REQUIRE_MNIST=1.
# usage: tests/test_python.sh BUILD_DIR
set -euo pipefail
B=${1:-build}
py=${PYTHON:-/usr/bin/python3}
out=$B/python/roundtrip
for prog in train_mnist export_gen classify idx2png; do
    if [ ! -x "$B/$prog" ]; then
        echo "test_python: $B/$prog is missing (make $B/$prog)" >&2; exit 1
    fi
done

# found, not imported (importing torch takes seconds; roundtrip_torch.py does it once)
missing=$("$py" -c 'import importlib.util as u
print(" ".join("python3-" + m for m in ("numpy", "torch") if u.find_spec(m) is None))' 2> /dev/null) ||
    missing="python3-numpy python3-torch"
if [ -n "$missing" ]; then
    if [ "${MLP_REQUIRE_PYTHON:-0}" = 1 ]; then
        echo "test_python: $py lacks $missing (apt-get install $missing; MLP_REQUIRE_PYTHON=1)" >&2; exit 1
    fi
    echo "test_python: skipped: $py lacks $missing (apt-get install $missing)"
    exit 0
fi

mnist=data/mnist
args=("$B" "$out")
if [ -f "$mnist/t10k-images-idx3-ubyte" ] && [ -f "$mnist/train-images-idx3-ubyte" ]; then
    args+=("$mnist")
elif [ "${MLP_REQUIRE_MNIST:-0}" = 1 ]; then
    echo "test_python: MNIST is missing from $mnist (MLP_REQUIRE_MNIST=1)" >&2; exit 1
else
    echo "test_python: MNIST not in $mnist: the round trip runs on synthetic data only (make data)"
fi
rm -rf "$out"; mkdir -p "$out"
"$py" tests/roundtrip_torch.py "${args[@]}"
