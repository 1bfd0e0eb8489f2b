#!/usr/bin/env bash
# make test-faults, the file half: what train_mnist leaves on disk when it
# is killed or the disk refuses it.
#  1. kill -9 at random moments of runs that save a checkpoint every epoch
#     and the model at the end, KILLS times (default 200): after every kill
#     the model at --out and the checkpoint are each the old file or a new
#     one, and load (tests/fault_check.c); a kill inside a save leaves only
#     the FILE.tmp a later save replaces.
#  2. the file-size limit (ulimit -f) below the model's size: train_mnist
#     says the write failed, exits 1, the old model is intact and no
#     temporary file is left.
#  3. a full filesystem (a 6 MB tmpfs mounted for the test, which needs
#     root; skipped with a message otherwise): the same for the model, and
#     for a checkpoint that does not fit.
# usage: tests/test_faults.sh BUILD_DIR [KILLS]
set -euo pipefail
B=${1:-build}
kills=${2:-200}
out=$B/faults
rm -rf "$out"; mkdir -p "$out"
fail() { echo "test_faults: $*" >&2; exit 1; }

# 300 random 8 x 8 "images" of 4 classes as IDX, and a wide network, so a
# save (a 4 MB model, 8 MB checkpoints, flushed to disk) takes long enough
# for kills to land in it
/usr/bin/env python3 - "$out" <<'EOF'
import random, struct, sys
d = sys.argv[1]
random.seed(1)
def idx(path, dims, data):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", n) for n in dims) + bytes(data))
labels = [random.randrange(4) for _ in range(300)]
pixels = [random.randrange(256) if random.random() < 0.5 else 40 * l for l in labels for _ in range(64)]
idx(d + "/images", [300, 8, 8], pixels)
idx(d + "/labels", [300], labels)
EOF
run=("$B/train_mnist" --train-images "$out/images" --train-labels "$out/labels" --test-images "$out/images"
     --test-labels "$out/labels" --layers 64-1000-1000-4 --epochs 4 --batch 100 --lr 0.01 --quiet
     --checkpoint "$out/run.ckpt" --out "$out/model.mlp")

"${run[@]}" > /dev/null || fail "the first run failed"
"$B/fault_check" "$out/model.mlp" "$out/run.ckpt" || fail "the first run's files do not load"
start=$(date +%s%N); "${run[@]}" > /dev/null; took_ms=$((($(date +%s%N) - start) / 1000000))

# 1. kill -9 anywhere in a run
in_save=0
for ((k = 0; k < kills; k++)); do
    cp "$out/model.mlp" "$out/before.mlp"
    "${run[@]}" > /dev/null 2>&1 & pid=$!
    delay_ms=$((RANDOM % (took_ms + 1)))
    sleep "$(printf '0.%03d' "$delay_ms")" 2> /dev/null || sleep 0
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    "$B/fault_check" "$out/model.mlp" || fail "kill $k after $delay_ms ms: --out does not load"
    if [ -e "$out/run.ckpt" ]; then "$B/fault_check" "$out/run.ckpt" || fail "kill $k after $delay_ms ms: the checkpoint does not load"; fi
    if [ -e "$out/model.mlp.tmp" ] || [ -e "$out/run.ckpt.tmp" ]; then in_save=$((in_save + 1)); rm -f "$out"/*.tmp; fi
done
echo "test_faults: $kills kills -9 within a ${took_ms} ms run ($in_save inside a save): --out and the checkpoint always loaded"

# 2. a file-size limit below the model's size (SIGXFSZ ignored, as a daemon
#    or a shell might have it, so the write itself fails)
cp "$out/model.mlp" "$out/before.mlp"
set +e
msg=$(trap '' XFSZ; ulimit -f 4096; "${run[@]}" 2>&1 > /dev/null); code=$?
set -e
[ "$code" = 1 ] || fail "under ulimit -f: exit $code, want 1 ($msg)"
[[ $msg == *"write failed (disk full?); the previous file is untouched"* ]] || fail "under ulimit -f: message: $msg"
cmp -s "$out/model.mlp" "$out/before.mlp" || fail "under ulimit -f: the old model changed"
[ ! -e "$out/model.mlp.tmp" ] && [ ! -e "$out/run.ckpt.tmp" ] || fail "under ulimit -f: a temporary file was left behind"
echo "test_faults: under ulimit -f 4096 (4 MB): \"$msg\", exit 1, the old model intact, no temporary left"

# 3. a full filesystem: a tmpfs that holds the old model (4.3 MB) but not a
#    second copy beside it
small=$out/small
mkdir -p "$small"
if ! mount -t tmpfs -o size=6m tmpfs "$small" 2> /dev/null; then
    echo "test_faults: SKIPPED the full-filesystem case: cannot mount a tmpfs here (it needs root)"
    exit 0
fi
trap 'umount "$small" 2> /dev/null || true' EXIT
full_fs() { # what: runs train_mnist with its files in $small; expects exit 1 and the message
    local what=$1; shift
    set +e
    msg=$("$@" 2>&1 > /dev/null); code=$?
    set -e
    [ "$code" = 1 ] || fail "full filesystem, $what: exit $code, want 1 ($msg)"
    [[ $msg == *"write failed (disk full?); the previous file is untouched"* ]] || fail "full filesystem, $what: message: $msg"
    [ -z "$(ls "$small" | grep '\.tmp$')" ] || fail "full filesystem, $what: a temporary file was left behind"
    echo "test_faults: full filesystem, $what: \"$msg\", exit 1, no temporary left"
}
cp "$out/before.mlp" "$small/model.mlp"
plain=("${run[@]}")
plain=("${plain[@]/--checkpoint/--log}")   # --checkpoint FILE becomes --log FILE (off the small disk)
full_fs "the model" "${plain[@]/$out\/model.mlp/$small/model.mlp}"
cmp -s "$small/model.mlp" "$out/before.mlp" || fail "full filesystem: the old model changed"
echo "test_faults: full filesystem: the old model intact"
rm -f "$small/model.mlp"
dd if=/dev/zero of="$small/filler" bs=1M count=4 status=none
full_fs "a checkpoint" "${run[@]/$out\/run.ckpt/$small/run.ckpt}"
