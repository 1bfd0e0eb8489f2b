#!/usr/bin/env bash
# make test-mpi: examples/train_mpi.c under Open MPI on this machine.
#  1. 2 processes (and 3, oversubscribed) train what one train_mnist process
#     trains with the same flags and global batch: the weights agree to
#     float rounding (model_diff), the final test accuracy within 0.1 point;
#     the same with augmentation (each process distorts its shard as the
#     whole set would be) and with --val.
#  2. 2 processes give the same bytes every run, and a run interrupted
#     (--interrupt-after, in rank 1 only: every process must stop, rank 0
#     writes the checkpoint) and resumed ends with those bytes too.
#  3. batchnorm and dropout run (each process normalises its own rows, so
#     no equality is asked, only a trained model).
#  4. a divergence stops every process, the model file left as it was.
#  5. a process that dies (SIGKILL) or hangs ends the run: non-zero exit,
#     a message, no model written, and no hang (every run has a time limit).
# Needs MNIST in data/mnist (skipped without it unless MLP_REQUIRE_MNIST=1)
# and mpirun (skipped without it unless MLP_REQUIRE_MPI=1).
#   tests/test_mpi.sh BUILD_DIR
set -euo pipefail
B=$1
mnist=${MNIST_DIR:-data/mnist}
fail() { echo "test_mpi: FAIL: $*" >&2; exit 1; }
if ! command -v mpirun > /dev/null || [ ! -x "$B/train_mpi" ]; then
    [ "${MLP_REQUIRE_MPI:-0}" = 1 ] && fail "mpicc or mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"
    echo "test_mpi: mpicc or mpirun not found (apt-get install openmpi-bin libopenmpi-dev): skipped"; exit 0
fi
if [ ! -f "$mnist/train-images-idx3-ubyte" ]; then
    [ "${MLP_REQUIRE_MNIST:-0}" = 1 ] && fail "MNIST is missing from $mnist"
    echo "test_mpi: MNIST is missing from $mnist (make data): skipped"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # CI runs as root
export OMPI_MCA_rmaps_base_oversubscribe=1                       # 3 processes on 2 cores
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(--data "$mnist" --layers 784-32-10 --epochs 2 --quiet --seed 3)
# a process left waiting gives up after 60 s (the watchdog), so a broken run fails, not hangs
mpi() { local np=$1; shift; timeout 300 mpirun -np "$np" "$B/train_mpi" --mpi-timeout 60 "$@"; }
last_acc() { tail -n 1 "$1" | cut -d, -f5; }
close_acc() { # LOG_A LOG_B: final test accuracies within 0.1 point
    awk -v a="$(last_acc "$1")" -v b="$(last_acc "$2")" 'BEGIN { d = a - b; exit !(d <= 0.001 && d >= -0.001) }' ||
        fail "test accuracy $(last_acc "$2") ($2) is not within 0.1 point of $(last_acc "$1") ($1)"
}
same_as_one() { # NAME NP FLAGS...: NP processes train what one does
    local name=$1 np=$2; shift 2
    "$B/train_mnist" "${flags[@]}" "$@" --log "$tmp/$name-1.csv" --out "$tmp/$name-1.mlp" > /dev/null
    mpi "$np" "${flags[@]}" "$@" --log "$tmp/$name-$np.csv" --out "$tmp/$name-$np.mlp" > "$tmp/out" 2>&1 ||
        { cat "$tmp/out"; fail "$name: mpirun -np $np failed"; }
    "$B/model_diff" "$tmp/$name-1.mlp" "$tmp/$name-$np.mlp" 1e-4 > "$tmp/diff" || { cat "$tmp/diff"; fail "$name: $np processes' weights differ from one's"; }
    close_acc "$tmp/$name-1.csv" "$tmp/$name-$np.csv"
    [ "$(head -n 1 "$tmp/$name-1.csv")" = "$(head -n 1 "$tmp/$name-$np.csv")" ] || fail "$name: the logs' columns differ"
    [ "$(wc -l < "$tmp/$name-1.csv")" = "$(wc -l < "$tmp/$name-$np.csv")" ] || fail "$name: the logs' lengths differ"
    echo "test_mpi: $name, $np processes = 1: $(cat "$tmp/diff"), test accuracy $(last_acc "$tmp/$name-$np.csv")"
}

# 1. the same training as one process
same_as_one plain 2
same_as_one plain 3
same_as_one val 2 --val 5000 --batch 100
same_as_one augment 2 --epochs 1 --shift 2 --rotate 8
grep -q "^2 processes; gradient sums: 938," "$tmp/out" || { cat "$tmp/out"; fail "the summary line is missing"; }

# 2. deterministic, and resumable to the same bytes
mpi 2 "${flags[@]}" --out "$tmp/again.mlp" > /dev/null 2>&1 || fail "the second 2-process run failed"
cmp "$tmp/plain-2.mlp" "$tmp/again.mlp" || fail "two 2-process runs gave different models"
set +e
mpi 2 "${flags[@]}" --out "$tmp/cut.mlp" --log "$tmp/cut.csv" --interrupt-after 700 --interrupt-rank 1 > "$tmp/out" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "an interrupted run exited 0"
grep -q "interrupted in epoch 1 after batch 700; checkpoint saved to $tmp/cut.mlp.ckpt" "$tmp/out" || { cat "$tmp/out"; fail "no checkpoint message"; }
[ ! -e "$tmp/cut.mlp" ] || fail "an interrupted run wrote its model"
mpi 2 "${flags[@]}" --out "$tmp/cut.mlp" --log "$tmp/cut.csv" --resume "$tmp/cut.mlp.ckpt" > /dev/null 2>&1 || fail "the resumed run failed"
cmp "$tmp/plain-2.mlp" "$tmp/cut.mlp" || fail "the interrupted and resumed run ended with another model"
cmp <(cut -d, -f1-6 "$tmp/plain-2.csv") <(cut -d, -f1-6 "$tmp/cut.csv") || fail "the resumed run's log differs"
echo "test_mpi: 2 processes twice, and interrupted + resumed: the same bytes"

# 3. batchnorm and dropout train
mpi 2 "${flags[@]}" --epochs 1 --batchnorm --dropout 0.2 --log "$tmp/bn.csv" --out "$tmp/bn.mlp" > /dev/null 2>&1 || fail "batchnorm + dropout failed"
awk -v a="$(last_acc "$tmp/bn.csv")" 'BEGIN { exit !(a > 0.9) }' || fail "batchnorm + dropout: test accuracy $(last_acc "$tmp/bn.csv")"
echo "test_mpi: batchnorm + dropout over 2 processes: test accuracy $(last_acc "$tmp/bn.csv")"

# 4. a divergence stops every process; the model on disk stays as it was
cp "$tmp/plain-2.mlp" "$tmp/keep.mlp"
set +e
mpi 2 "${flags[@]}" --lr 1e6 --out "$tmp/keep.mlp" > "$tmp/out" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a diverging run exited 0"
grep -q "rank 0: .*diverged in epoch 1.*; $tmp/keep.mlp not written" "$tmp/out" || { cat "$tmp/out"; fail "no divergence message"; }
cmp "$tmp/plain-2.mlp" "$tmp/keep.mlp" || fail "a diverging run changed the model file"
echo "test_mpi: --lr 1e6 over 2 processes: exit $rc, $(grep -o 'diverged in epoch [0-9]*, batch [0-9]*' "$tmp/out" | head -n 1), model kept"

# 5. a process that dies, or hangs, ends the run
for how in kill stall; do
    start=$(date +%s)
    set +e
    mpi 2 "${flags[@]}" --out "$tmp/$how.mlp" --$how-rank 1,50 --mpi-timeout 5 > "$tmp/out" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "$how: exit 0"
    [ $rc -ne 124 ] || fail "$how: the run hung (killed by timeout after 300 s)"
    [ ! -e "$tmp/$how.mlp" ] || fail "$how: a model was written"
    if [ $how = kill ]; then
        grep -Eqi "signal 9|killed|no answer" "$tmp/out" || { cat "$tmp/out"; fail "kill: no message names the death"; }
    else
        grep -q "train_mpi rank 0: no answer from the other processes for 5 s (did one die?); giving up" "$tmp/out" ||
            { cat "$tmp/out"; fail "stall: no watchdog message"; }
    fi
    echo "test_mpi: rank 1 $how at its 50th sum: exit $rc after $(( $(date +%s) - start )) s, no model"
done
echo "test_mpi: passed"
