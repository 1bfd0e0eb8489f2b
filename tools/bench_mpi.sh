#!/usr/bin/env bash
# make bench-mpi: B1 (tools/bench_workloads.md) trained by 2 MPI processes
# of 1 thread each (examples/train_mpi.c) beside 1 process of 2 threads and
# 1 process of 1 thread (train_mnist), in alternation, REPS times (default
# 3): the median seconds per epoch of each, and what one gradient sum (one
# MPI_Allreduce per batch) costs and carries.
#   tools/bench_mpi.sh BUILD_DIR [REPS]
# Environment: BENCH_MPI_EPOCHS (default 3) epochs per run; MNIST_DIR.
set -euo pipefail
B=$1 reps=${2:-3}
epochs=${BENCH_MPI_EPOCHS:-3}
mnist=${MNIST_DIR:-data/mnist}
[ -x "$B/train_mpi" ] || { echo "bench_mpi: $B/train_mpi is missing (needs mpicc: apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b1=(--data "$mnist" --layers 784-256-128-10 --batch 64 --lr 0.05 --momentum 0.9 --lr-decay 1 --epochs "$epochs" --seed 1 --quiet)

# the median of the log's seconds column (training time per epoch, evaluation excluded)
median_epoch() { tail -n +2 "$1" | cut -d, -f7 | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median_of() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for r in $(seq "$reps"); do
    "$B/train_mnist" "${b1[@]}" --threads 1 --log "$tmp/one1.csv" --out "$tmp/m.mlp" > /dev/null
    median_epoch "$tmp/one1.csv" >> "$tmp/one1"
    "$B/train_mnist" "${b1[@]}" --threads 2 --log "$tmp/one2.csv" --out "$tmp/m.mlp" > /dev/null
    median_epoch "$tmp/one2.csv" >> "$tmp/one2"
    mpirun -np 2 "$B/train_mpi" "${b1[@]}" --threads 1 --log "$tmp/two.csv" --out "$tmp/m.mlp" > "$tmp/out"
    median_epoch "$tmp/two.csv" >> "$tmp/two"
    sed -n 's/.*gradient sums: \([0-9]*\), \([0-9.]*\) ms each on average, \([0-9]*\) bytes each/\2 \3 \1/p' "$tmp/out" >> "$tmp/sums"
    acc_one=$(tail -n 1 "$tmp/one2.csv" | cut -d, -f5) acc_two=$(tail -n 1 "$tmp/two.csv" | cut -d, -f5)
    echo "run $r: 1x1 $(tail -n 1 "$tmp/one1") s/epoch, 1x2 $(tail -n 1 "$tmp/one2") s/epoch, 2x1 $(tail -n 1 "$tmp/two") s/epoch (test acc $acc_one / $acc_two)"
done
one1=$(median_of < "$tmp/one1") one2=$(median_of < "$tmp/one2") two=$(median_of < "$tmp/two")
ms=$(cut -d' ' -f1 "$tmp/sums" | median_of) bytes=$(head -n 1 "$tmp/sums" | cut -d' ' -f2) n=$(head -n 1 "$tmp/sums" | cut -d' ' -f3)
echo
echo "B1, $epochs epochs, median of $reps runs (s/epoch)     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-34s %8s %10s\n" "configuration" "s/epoch" "vs 1x2"
printf "%-34s %8.3f %9.2fx\n" "1 process x 1 thread" "$one1" "$(awk -v a="$one2" -v b="$one1" 'BEGIN { print a / b }')"
printf "%-34s %8.3f %9.2fx\n" "1 process x 2 threads" "$one2" 1
printf "%-34s %8.3f %9.2fx\n" "2 MPI processes x 1 thread" "$two" "$(awk -v a="$one2" -v b="$two" 'BEGIN { print a / b }')"
echo "gradient sums: $n per run ($((n / epochs)) per epoch), $bytes bytes each, ${ms} ms each (median), $(awk -v m="$ms" -v n="$n" -v e="$epochs" -v t="$two" 'BEGIN { printf "%.0f%%", 100 * m * n / e / 1000 / t }') of the 2-process epoch"
