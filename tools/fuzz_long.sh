#!/bin/bash
# Long fuzzing campaigns: each named libFuzzer target (built by make into
# build/fuzz/fuzz_T) runs SECONDS of wall time, as many at once as there
# are cores (FUZZ_JOBS to say otherwise), so each has a core; starting
# from the committed corpus; then the inputs that add coverage are merged,
# minimised, into tests/corpus/, and one summary line per target goes to
# build/fuzz-long/summary.txt: CPU seconds it really got, executions,
# coverage (edges and features), corpus files added, findings.
#   usage: tools/fuzz_long.sh SECONDS TARGET...
# With FUZZ_BUDGET=cpu, SECONDS counts the fuzzer's own CPU seconds instead
# (a campaign beside other work then still gets its hour): the script polls
# the fuzzer's CPU time and interrupts it (SIGINT; libFuzzer prints its final
# stats and exits 72) once it has had them; wall time is capped at 6 x SECONDS.
# A finding (crash, leak, timeout) stops that target; its input is kept in
# build/fuzz-long/T-* and the script exits 1 after the others finish.
set -u
seconds=$1; shift
out=build/fuzz-long
mkdir -p "$out"
corpus_of() { [ "$1" = image ] && echo tests/corpus/png || echo "tests/corpus/$1"; }

# CPU seconds (user + system) of a process, from /proc/PID/stat fields 14, 15
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) / hz) }' "/proc/$1/stat" 2>/dev/null
}

# Interrupt the fuzzer under /usr/bin/time (pid $1) once it has used $2 CPU s.
stop_after_cpu() {
    local fuzzer used
    while kill -0 "$1" 2>/dev/null; do
        fuzzer=$(pgrep -P "$1" | head -1)
        used=$([ -n "$fuzzer" ] && cpu_seconds "$fuzzer")
        if [ -n "$used" ] && [ "$used" -ge "$2" ]; then kill -INT "$fuzzer"; return; fi
        sleep 5
    done
}

run_one() {
    t=$1
    dir=$(corpus_of "$t")
    work="$out/corpus_$t"
    mkdir -p "$work" "$dir"
    start=$(date +%s)
    # CPU time of the fuzzer alone, from its own rusage (bash's `times` would
    # count every other child as well)
    wall=$seconds
    [ "${FUZZ_BUDGET:-wall}" = cpu ] && wall=$((seconds * 6))
    /usr/bin/time -f "%U %S" -o "$out/$t.cpu" \
        "./build/fuzz/fuzz_$t" -max_total_time="$wall" -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="$out/$t-" -print_final_stats=1 "$work" "$dir" > "$out/$t.log" 2>&1 &
    fuzzer_run=$!
    [ "${FUZZ_BUDGET:-wall}" = cpu ] && stop_after_cpu "$fuzzer_run" "$seconds" &
    wait "$fuzzer_run"
    rc=$?
    [ "$rc" = 72 ] && rc=0    # interrupted by stop_after_cpu: the budget was spent
    before=$(ls "$dir" | wc -l)
    "./build/fuzz/fuzz_$t" -merge=1 "$dir" "$work" > "$out/$t.merge.log" 2>&1
    after=$(ls "$dir" | wc -l)
    cpu=$(awk 'END { printf "%.0f", $1 + $2 }' "$out/$t.cpu" 2>/dev/null)  # the last line: time may first say how it exited
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
    cov=$(grep -E "^#[0-9]+" "$out/$t.log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/p')
    # crashes, leaks, timeouts, out-of-memory; a "slow unit" is reported
    # apart (a fuzzer stopped by SIGSTOP, or a busy machine, writes them)
    findings=$(ls "$out" | grep -cE "^$t-(crash|leak|timeout|oom)-" || true)
    slow=$(ls "$out" | grep -c "^$t-slow-unit-" || true)
    printf "%-10s %s %6s CPU s in %6s s  %12s executions  %-28s corpus %s -> %s  findings %s  slow units %s  exit %s\n" \
        "$t" "$(date -u +%Y-%m-%d)" "$cpu" "$(( $(date +%s) - start ))" "$execs" "$cov" "$before" "$after" "$findings" "$slow" "$rc" \
        | tee -a "$out/summary.txt"
    return $rc
}

status=0 running=0
for t in "$@"; do
    if [ "$running" -ge "${FUZZ_JOBS:-$(nproc)}" ]; then wait -n || status=1; running=$((running - 1)); fi
    run_one "$t" & running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done
exit $status
