#!/bin/sh
# B1 (tools/bench_workloads.md) from two builds of tools/bench.c, a plain -O2 one and a
# -march=native one, run alternately RUNS times (default 3) so that both see
# the same machine noise; prints the median seconds per epoch of each and
# their ratio, per thread count. Both builds run the same kernels (one
# table per network, chosen at run time: make test-kernels), so the ratio
# should stay near 1.
#   tools/bench_builds.sh PLAIN_BENCH NATIVE_BENCH [RUNS]
set -e
plain=$1 native=$2 runs=${3:-3}
[ -x "$plain" ] && [ -x "$native" ] || { echo "usage: $0 PLAIN_BENCH NATIVE_BENCH [RUNS]" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=0
while [ $i -lt "$runs" ]; do
    "$plain" --training | sed -n 's/^B1 train *\([0-9]*\) threads* .* \([0-9.]*\) s\/epoch.*/plain \1 \2/p' >> "$out"
    "$native" --training | sed -n 's/^B1 train *\([0-9]*\) threads* .* \([0-9.]*\) s\/epoch.*/native \1 \2/p' >> "$out"
    i=$((i + 1))
done
echo "== B1 from a plain -O2 build and a -march=native build, run alternately $runs times (median s/epoch)"
for t in $(awk '{ print $2 }' "$out" | sort -un); do
    p=$(awk -v t="$t" '$1 == "plain" && $2 == t { print $3 }' "$out" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    n=$(awk -v t="$t" '$1 == "native" && $2 == t { print $3 }' "$out" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    awk -v t="$t" -v p="$p" -v n="$n" 'BEGIN { printf "B1 %d thread%s  plain -O2 %.3f s  -march=native %.3f s  native/plain %.3f\n", t, (t > 1 ? "s" : " "), p, n, n / p }'
done
