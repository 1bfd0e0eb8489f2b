#!/usr/bin/env bash
# make test-export: mlp_export_c's headers compile on their own (gcc and
# clang as C99 with -Wall -Wextra -Wpedantic -Werror, g++ as C++11, and
# with NAME_NO_LIBC freestanding, needing no symbol at all) and predict what
# mlp_predict predicts: the same class for every input, every probability
# within 1e-5. Synthetic networks of every layer kind and activation, then
# (when MNIST is in data/mnist) a model trained by train_mnist --batchnorm
# --export-c, on all 10,000 test images.
# usage: tests/test_export.sh BUILD_DIR
set -euo pipefail
B=${1:-build}
out=$B/export
rm -rf "$out"; mkdir -p "$out"
"$B/export_gen" "$out"

upper() { echo "$1" | tr a-z A-Z; }

# check NAME PREFIX: every compiler and mode builds export_run and it agrees
check() {
    local name=$1 prefix=$2 u; u=$(upper "$1")
    local defs=(-I. -DEXPORTED="\"$out/$name.h\"" -DNAME="$name" -DUPPER="$u")
    gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror "${defs[@]}" tests/export_run.c -o "$out/run-$name" -lm
    "$out/run-$name" "$prefix"
    if command -v clang >/dev/null; then
        clang -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror "${defs[@]}" tests/export_run.c -o "$out/run-$name-clang" -lm
        "$out/run-$name-clang" "$prefix" > /dev/null
    fi
    g++ -std=c++11 -O2 -Wall -Wextra -Wpedantic -Werror -x c++ "${defs[@]}" tests/export_run.c -o "$out/run-$name-cpp" -lm
    "$out/run-$name-cpp" "$prefix" > /dev/null
    gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -D"${u}_NO_LIBC" "${defs[@]}" tests/export_run.c -o "$out/run-$name-nolibc" -lm
    echo -n "  ${u}_NO_LIBC: "; "$out/run-$name-nolibc" "$prefix"
    # freestanding: the header alone, nothing left for the linker to find
    printf '#define %s_NO_LIBC\n#include "%s.h"\nint classify(const float *raw, float *probs) { return %s_predict(raw, probs); }\n' \
        "$u" "$name" "$name" > "$out/free-$name.c"
    gcc -std=c99 -O2 -ffreestanding -Wall -Wextra -Wpedantic -Werror -I"$out" -c "$out/free-$name.c" -o "$out/free-$name.o"
    if [ -n "$(nm -u "$out/free-$name.o")" ]; then
        echo "test_export: $name with ${u}_NO_LIBC still needs: $(nm -u "$out/free-$name.o" | tr -s ' \n' ' ')" >&2
        exit 1
    fi
}

for h in "$out"/*.h; do
    name=$(basename "$h" .h)
    check "$name" "$out/$name"
done

# Class names: the header's NAME_class_name(k) prints what mlp_class_name says
for f in "$out"/*.names; do
    name=$(basename "$f" .names)
    printf '#include <stdio.h>\n#include "%s.h"\nint main(void) { int k; for (k = 0; %s_class_name(k); k++) puts(%s_class_name(k)); return 0; }\n' \
        "$name" "$name" "$name" > "$out/names-$name.c"
    gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$out" "$out/names-$name.c" -o "$out/names-$name" -lm
    "$out/names-$name" | cmp - "$f" || { echo "test_export: $name's class names differ from mlp_class_name's" >&2; exit 1; }
    echo "$name: $(wc -l < "$f") class names as mlp_class_name gives them"
done

# A unit that includes an exported header and never calls it: no warning.
printf '#include "relu_ce.h"\nint unused_model(void) { return RELU_CE_INPUTS; }\n' > "$out/unused.c"
gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$out" -c "$out/unused.c" -o "$out/unused.o"

mnist=data/mnist
if [ -f "$mnist/t10k-images-idx3-ubyte" ]; then
    "$B/train_mnist" --data "$mnist" --layers 784-48-10 --batchnorm --epochs 1 --quiet --seed 5 \
        --out "$out/mnist.mlp" --export-c "$out/mnist_model.h" --export-name mnist_model > "$out/train.log"
    "$B/export_gen" --model "$out/mnist.mlp" "$mnist/t10k-images-idx3-ubyte" "$out/mnist_model"
    check mnist_model "$out/mnist_model"
    # int8: the header against mlp_predict of the rounded weights, and the
    # accuracy train_mnist prints for it within 0.3 points of the float model's
    "$B/train_mnist" --data "$mnist" --layers 784-48-10 --batchnorm --epochs 1 --quiet --seed 5 \
        --out "$out/mnist8.mlp" --export-c-int8 "$out/mnist_int8.h" --export-name mnist_int8 > "$out/train8.log"
    cmp "$out/mnist.mlp" "$out/mnist8.mlp"
    "$B/export_gen" --model-int8 "$out/mnist.mlp" "$mnist/t10k-images-idx3-ubyte" "$out/mnist_int8"
    check mnist_int8 "$out/mnist_int8"
    line=$(grep "^int8 C header written" "$out/train8.log")
    echo "  $line"
    echo "$line" | awk '{ q = $(NF-5); f = $(NF-3); d = (f - q) * 100; if (d < 0) d = -d;
        if (d > 0.3) { print "test_export: int8 accuracy " q " is " d " points from the float " f > "/dev/stderr"; exit 1 } }' 
elif [ "${MLP_REQUIRE_MNIST:-0}" = 1 ]; then
    echo "test_export: MNIST is missing from $mnist (MLP_REQUIRE_MNIST=1)" >&2; exit 1
else
    echo "test_export: MNIST not in $mnist: the MNIST model's export not checked (make data)"
fi
echo "test_export: every exported header agrees with mlp_predict"
