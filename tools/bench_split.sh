#!/bin/sh
# How far splitting one B1 training over the two cores could go on this
# machine. B1 (tools/bench_workloads.md) on one thread alone; then two
# one-thread trainings at once, each pinned to its own core; then one
# training on two threads. Alternately, REPS times (default 5): medians.
#   tools/bench_split.sh BENCH [REPS]      (BENCH: a build of tools/bench.c)
#
# The two trainings at once share only the memory system: no line of one
# is wanted by the other, and nothing waits at a barrier. Their combined
# rate is the yardstick for a division of one training between the cores
# (which keeps half the weights per core, and pays for what crosses), and
# the two-thread figure is printed as a fraction of it.
set -e
bench=$1 reps=${2:-5}
[ -x "$bench" ] || { echo "usage: $0 BENCH [REPS]" >&2; exit 2; }
command -v taskset > /dev/null || { echo "bench-split: taskset not found (apt-get install util-linux)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "bench-split: needs 2 cores, this machine has $(nproc)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out" "$out".a "$out".b' EXIT

"$bench" --ceiling > "$out"
c1=$(awk '$1 == "ceiling" && $2 == 1 { print $3 }' "$out")
c2=$(awk '$1 == "ceiling" && $2 == 2 { print $3 }' "$out")
: > "$out"

# s/epoch of one line of bench --peers b1
secs() { awk '$1 == "mlp" && $2 == "b1" { print $4 }'; }

r=0
while [ $r -lt "$reps" ]; do
    echo "alone $(taskset -c 0 "$bench" --peers b1 1 | secs)" >> "$out"
    taskset -c 0 "$bench" --peers b1 1 | secs > "$out.a" &
    taskset -c 1 "$bench" --peers b1 1 | secs > "$out.b"
    wait
    echo "pair $(cat "$out.a") $(cat "$out.b")" >> "$out"
    echo "two $("$bench" --peers b1 2 | secs)" >> "$out"
    r=$((r + 1))
done

# median of column COL of the lines starting with WHAT
med() {
    awk -v w="$1" -v col="$2" '$1 == w { print $col }' "$out" |
        sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
alone=$(med alone 2) pair_a=$(med pair 2) pair_b=$(med pair 3) two=$(med two 2)
awk -v alone="$alone" -v a="$pair_a" -v b="$pair_b" -v two="$two" -v c1="$c1" -v c2="$c2" -v reps="$reps" 'BEGIN {
    g = 60.4  # GFLOP per B1 epoch
    both = g / a + g / b
    printf "FMA ceiling, probed now: 1 core %s GFLOP/s, 2 cores %s GFLOP/s\n", c1, c2
    printf "B1, medians of %d alternating runs\n", reps
    printf "%-44s %8s %10s %8s\n", "", "s/epoch", "GFLOP/s", "ceiling"
    printf "%-44s %8.4f %10.1f %7.0f%%\n", "one thread alone", alone, g / alone, 100 * g / alone / c1
    printf "%-44s %8.4f %10.1f\n", "two one-thread trainings at once: on core 0", a, g / a
    printf "%-44s %8.4f %10.1f\n", "                                   on core 1", b, g / b
    printf "%-44s %8s %10.1f %7.0f%%\n", "                                   together", "", both, 100 * both / c2
    printf "%-44s %8.4f %10.1f %7.0f%%\n", "one training on two threads", two, g / two, 100 * g / two / c2
    printf "two threads against one alone: %.2fx; the two trainings at once: %.2fx\n", alone / two, both / (g / alone)
    printf "two threads as a fraction of the two trainings at once: %.0f%%\n", 100 * (g / two) / both }'
