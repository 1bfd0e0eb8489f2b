#!/bin/sh
# mlp.h beside PyTorch on the CPU (tools/bench_workloads.md B1, B2 and the
# recipe network), both run in this one job, alternately, REPS times (default
# 3), and the FMA ceiling probed in the same run: one table of medians.
#   tools/bench_peers.sh BENCH [REPS]      (BENCH: a build of tools/bench.c)
# Environment: PEERS_RECIPE_EPOCHS (default 2) epochs of the recipe network
# per repetition; PYTHON (default /usr/bin/python3, Debian's, which has
# python3-torch).
#
# PyTorch runs at its fastest thread split on this machine: for 2 threads,
# intra-op threads (torch.set_num_threads) against OpenBLAS's own threads
# (OPENBLAS_NUM_THREADS) are tried on one epoch of B1 and on B2 first, and
# each workload runs with the winner, which the output names.
set -e
bench=$1 reps=${2:-3}
recipe_epochs=${PEERS_RECIPE_EPOCHS:-2}
py=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
[ -x "$bench" ] || { echo "usage: $0 BENCH [REPS]" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

have_torch=1
if ! "$py" -c 'import torch' 2>/dev/null; then
    have_torch=0
    echo "bench-peers: PyTorch not found for $py (apt-get install python3-torch): mlp.h's figures only"
fi

"$bench" --ceiling > "$out.ceiling"
c1=$(awk '$1 == "ceiling" && $2 == 1 { print $3 }' "$out.ceiling")
c2=$(awk '$1 == "ceiling" && $2 == 2 { print $3 }' "$out.ceiling")
isa=$(awk '$1 == "ceiling" { print $5; exit }' "$out.ceiling")
core=$(awk '$1 == "openblas" { print $2 }' "$out.ceiling")
rm -f "$out.ceiling"
echo "FMA ceiling ($isa, 12 independent chains per core, probed now): 1 core $c1 GFLOP/s, 2 cores $c2 GFLOP/s; OpenBLAS core: $core"

# torch WORKLOAD TORCH_THREADS BLAS_THREADS [ARGS]: one PyTorch line, its
# thread count rewritten to the threads it was given in all
torch_run() {
    w=$1 tt=$2 bt=$3; shift 3
    OPENBLAS_NUM_THREADS=$bt OMP_NUM_THREADS=$tt "$py" "$here/bench_torch.py" "$w" "$tt" "$@" |
        awk -v t=$((tt > bt ? tt : bt)) '{ $3 = t; print }'
}

# the fastest split for 2 threads: "TORCH_THREADS BLAS_THREADS" per kind of work
train_split="2 1" infer_split="2 1"
if [ $have_torch = 1 ]; then
    best_t= best_i=
    for split in "2 1" "1 2" "2 2"; do
        set -- $split
        t=$(torch_run b1 "$1" "$2" --epochs 1 | awk '{ print $4 }')
        i=$(torch_run b2 "$1" "$2" | awk '$2 == "b2" { print $4 }')
        echo "PyTorch probe: $1 intra-op thread(s), $2 OpenBLAS thread(s): B1 $t s/epoch, B2 $i images/s"
        if [ -z "$best_t" ] || awk -v a="$t" -v b="$best_t" 'BEGIN { exit !(a < b) }'; then best_t=$t train_split=$split; fi
        if [ -z "$best_i" ] || awk -v a="$i" -v b="$best_i" 'BEGIN { exit !(a > b) }'; then best_i=$i infer_split=$split; fi
    done
    echo "PyTorch at 2 threads: training with $train_split (intra-op, OpenBLAS) threads, inference with $infer_split"
fi

r=0
while [ $r -lt "$reps" ]; do
    for t in 1 2; do
        if [ $t = 1 ]; then ts="1 1" is="1 1"; else ts=$train_split is=$infer_split; fi
        "$bench" --peers b1 $t >> "$out"
        [ $have_torch = 0 ] || torch_run b1 $ts >> "$out"
        "$bench" --peers b2 $t >> "$out"
        [ $have_torch = 0 ] || torch_run b2 $is >> "$out"
        "$bench" --peers recipe $t --epochs "$recipe_epochs" >> "$out"
        [ $have_torch = 0 ] || torch_run recipe $ts --epochs "$recipe_epochs" >> "$out"
    done
    r=$((r + 1))
done

# median FIGURE of WHO WORKLOAD THREADS, or - when never measured
med() {
    awk -v who="$1" -v w="$2" -v t="$3" -v col="$4" '$1 == who && $2 == w && $3 == t { print $col }' "$out" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

echo
echo "== mlp.h and PyTorch, medians of $reps alternating runs (ratio > 1: mlp.h faster; % of the FMA ceiling of that many cores)"
printf '%-34s %7s %12s %12s %7s %8s %8s %10s %10s\n' workload threads mlp.h PyTorch ratio "mlp.h%" "torch%" "mlp.h acc" "torch acc"
# workload key, label, G: GFLOP/s = figure * G when larger is faster (the last
# field 1), else G / figure
for row in "b1|B1 train 784-256-128-10 (s/epoch)|60.4|0" \
           "b2|B2 infer, batch 256 (images/s)|0.000469504|1" \
           "b2-1|B2 infer, batch 1 (us/image)|469.504|0" \
           "recipe|784-800-800-10 BN train (s/epoch)|383.8|0"; do
    key=${row%%|*} rest=${row#*|}; label=${rest%%|*} rest=${rest#*|}; gflop=${rest%%|*} larger=${rest#*|}
    for t in 1 2; do
        m=$(med mlp "$key" $t 4) p=$(med torch "$key" $t 4)
        ma=$(med mlp "$key" $t 8) pa=$(med torch "$key" $t 8)
        ceil=$([ $t = 1 ] && echo "$c1" || echo "$c2")
        awk -v label="$label" -v t=$t -v m="$m" -v p="$p" -v g="$gflop" -v larger="$larger" -v c="$ceil" \
            -v ma="$ma" -v pa="$pa" 'function pct(x) {
                if (x == "-" || c <= 0) return "-";
                rate = larger ? x * g : g / x;  # GFLOP/s
                return sprintf("%.0f%%", 100 * rate / c) }
            BEGIN {
                ratio = (m == "-" || p == "-") ? "-" : sprintf("%.2f", larger ? m / p : p / m);
                printf "%-34s %7d %12s %12s %7s %8s %8s %10s %10s\n", label, t, m, p, ratio, pct(m), pct(p), ma == "" ? "-" : ma, pa == "" ? "-" : pa }'
    done
done
