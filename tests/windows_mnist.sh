#!/usr/bin/env bash
# MNIST end to end on Windows (MinGW-w64 builds under Wine) beside Linux:
# train a small net with 1 and 2 threads on each, compare the weights,
# interrupt and resume a run, classify test digits as PNGs with the Windows
# model on both systems.
# The kernels are forced to AVX2 (MLP_ISA), which every x86-64 CI machine of
# ours has, so both systems run the same instructions; the weights may still
# differ in the last bits where the C libraries' exp() and log() round
# differently (glibc against msvcrt), hence a tolerance.
# usage: tests/windows_mnist.sh (after make test-windows's builds); needs data/mnist
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "windows_mnist: no MNIST in data/mnist (make data)" >&2; exit 1; }
B=build; W=$B/win; out=$W/mnist; rm -rf "$out"; mkdir -p "$out"
run_win() { tools/wine_run.sh "$@"; }
export MLP_ISA=avx2
flags=(--layers 784-256-128-10 --batch 128 --epochs 1 --seed 7 --quiet)

for threads in 1 2; do
    ./$B/train_mnist "${flags[@]}" --threads $threads --out "$out/linux-$threads.mlp" \
        --log "$out/linux-$threads.csv" > "$out/linux-$threads.txt"
    run_win $W/train_mnist.exe "${flags[@]}" --threads $threads --out "$out/windows-$threads.mlp" \
        --log "$out/windows-$threads.csv" > "$out/windows-$threads.txt"
    echo "windows, $threads thread(s): $(grep -i 'test accuracy' "$out/windows-$threads.txt" | head -1)"
done

# Any thread count gives the same bits on one system; across systems the
# same weights within float rounding.
cmp "$out/windows-1.mlp" "$out/windows-2.mlp"
cmp "$out/linux-1.mlp" "$out/linux-2.mlp"
./$B/model_diff "$out/linux-2.mlp" "$out/windows-2.mlp" 1e-4

# Speed is reported, never asserted (the machine is shared).
secs() { tail -1 "$1" | awk -F, '{print $7}'; }
echo "epoch seconds under Wine: 1 thread $(secs "$out/windows-1.csv"), 2 threads $(secs "$out/windows-2.csv")"

# Ctrl-C on Windows (raised by --interrupt-after at a known batch) saves a
# checkpoint and exits 130; resuming it ends with the bytes of a run that was
# never interrupted.
small=(--layers 784-32-10 --epochs 2 --quiet)
run_win $W/train_mnist.exe "${small[@]}" --out "$out/whole.mlp" > /dev/null
status=0
run_win $W/train_mnist.exe "${small[@]}" --interrupt-after 50 --checkpoint "$out/cut.ckpt" \
    --out "$out/resumed.mlp" > /dev/null 2>&1 || status=$?
[ "$status" -eq 130 ] || { echo "windows_mnist: interrupted run exited $status, not 130" >&2; exit 1; }
run_win $W/train_mnist.exe --resume "$out/cut.ckpt" --epochs 2 --quiet --out "$out/resumed.mlp" > /dev/null
cmp "$out/whole.mlp" "$out/resumed.mlp"
echo "windows: interrupted at batch 50, resumed: the same model as an uninterrupted run"

# Classify 20 test digits as PNGs with the Windows-trained model.
mkdir -p "$out/png"
./$B/idx2png --labels data/mnist/t10k-labels-idx1-ubyte --first 0 --count 20 \
    --invert --scale 3 data/mnist/t10k-images-idx3-ubyte "$out/png" > /dev/null
./$B/classify "$out/windows-2.mlp" "$out"/png/*.png > "$out/classify-linux.txt"
run_win $W/classify.exe "$out/windows-2.mlp" "$out"/png/*.png > "$out/classify-windows.txt"
diff "$out/classify-linux.txt" "$out/classify-windows.txt"
echo "windows_mnist: the Windows build trains like Linux and classifies the same ($(wc -l < "$out/classify-windows.txt") PNGs)"
