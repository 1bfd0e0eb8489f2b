#!/usr/bin/env bash
# make test's real-data check of train_csv: the four sets Debian's
# python3-sklearn ships (iris, wine, breast_cancer, digits; written as CSV by
# tools/sklearn_csv.py into BUILD_DIR/csv) trained with the settings of
# make bench-csv. For each set: train_csv exits 0; the model it saved loads
# in train_csv --predict, which prints one valid label per test row (class
# names for iris and wine, which exercises the kind-6 record); the share of
# those labels equal to the file's own last column is the accuracy train_csv
# printed (so that number is recomputed independently, from the saved model
# and a second reading of the CSV); and it is not worse than scikit-learn's
# MLPClassifier on the same split and network. No timing checks.
# Needs Debian's Python with scikit-learn (PYTHON, default /usr/bin/python3):
# skipped with a message without it, unless MLP_REQUIRE_SKLEARN=1.
# usage: tests/test_csv_data.sh BUILD_DIR
set -eu
B=${1:-build}
py=${PYTHON:-/usr/bin/python3}
dir=$B/csv
fail() { echo "test_csv_data: $*" >&2; exit 1; }
[ -x "$B/train_csv" ] || fail "$B/train_csv is missing (make $B/train_csv)"

# found, not imported (importing sklearn takes a second)
missing=$("$py" -c 'import importlib.util as u
print(" ".join("python3-" + m for m in ("numpy", "sklearn") if u.find_spec(m) is None))' 2> /dev/null) ||
    missing="python3-numpy python3-sklearn"
if [ -n "$missing" ]; then
    [ "${MLP_REQUIRE_SKLEARN:-0}" = 1 ] && fail "$py lacks $missing (apt-get install $missing; MLP_REQUIRE_SKLEARN=1)"
    echo "test_csv_data: skipped: $py lacks $missing (apt-get install $missing)"
    exit 0
fi

"$py" tools/sklearn_csv.py "$dir" > /dev/null
# sklearn's side (a few seconds) runs while train_csv trains
"$py" tools/bench_csv.py --sklearn-only "$dir" > "$dir/sklearn.txt" &
sk_pid=$!

declare -A correct
for name in iris wine breast_cancer digits; do
    train=$dir/$name-train.csv test=$dir/$name-test.csv model=$dir/$name.mlp
    n_train=$(($(wc -l < "$train") - 1)) n_test=$(($(wc -l < "$test") - 1))
    # all 200 epochs, as make bench-csv: the whole test still takes ~10 s
    out=$("$B/train_csv" --train "$train" --test "$test" --header --layers auto-100-auto --init glorot \
        --optimizer adam --lr 0.001 --batch $((n_train < 200 ? n_train : 200)) --epochs 200 \
        --seed 1 --threads 1 --quiet --out "$model") || fail "$name: train_csv exited $?"
    last=$(printf '%s\n' "$out" | grep '^test accuracy' | tail -n 1)
    [[ $last =~ ^test\ accuracy\ [0-9.]+\ \(([0-9]+)/([0-9]+)\)$ ]] || fail "$name: no test accuracy line in: $out"
    c=${BASH_REMATCH[1]}
    [ "${BASH_REMATCH[2]}" = "$n_test" ] || fail "$name: $last, but $test has $n_test rows"

    pred=$("$B/train_csv" --predict "$model" "$test" --header) || fail "$name: --predict exited $?"
    [ "$(printf '%s\n' "$pred" | wc -l)" = "$n_test" ] ||
        fail "$name: --predict printed $(printf '%s\n' "$pred" | wc -l) lines for $n_test rows"
    # valid: one of the labels the training file uses (the model's classes)
    classes=$(tail -n +2 "$train" | awk -F, '{print $NF}' | sort -u)
    bad=$(printf '%s\n' "$pred" | grep -vxF "$classes" | head -n 3)
    [ -z "$bad" ] || fail "$name: --predict printed labels that are no class: $bad"
    same=$(paste -d, <(printf '%s\n' "$pred") <(tail -n +2 "$test" | awk -F, '{print $NF}') |
        awk -F, '$1 == $2' | wc -l)
    [ "$same" = "$c" ] || fail "$name: train_csv said $c/$n_test correct, --predict matches $same"
    correct[$name]=$c
    echo "test_csv_data: $name: $last, --predict agrees"
done

wait $sk_pid || fail "tools/bench_csv.py --sklearn-only failed"
# The bar: mlp.h's accuracy >= sklearn's - 1 point - one test sample. The
# two use different random initialisations and batch orders, and the test
# sets are small (iris 38 rows, wine 45: one sample is 2-3 points), so a tie
# within one sample either way is chance, not a defect; the extra point
# covers digits and breast_cancer, where 1 point is 1.4-4.5 samples.
# In whole numbers: c/n >= s/n - 1/100 - 1/n  <=>  100c >= 100s - n - 100.
# Seed 1 is make bench-csv's, not one picked to pass. Both sides start from
# Glorot-uniform weights (sklearn's scheme; train_csv's default): from He's
# (mlp.h's choice before ReLU elsewhere) iris ended 3-5 samples below
# sklearn on seeds 3, 7 and 9 of 1-10.
while read -r name s n; do
    c=${correct[$name]}
    if [ $((100 * c)) -lt $((100 * s - n - 100)) ]; then
        fail "$name: mlp.h $c/$n correct, scikit-learn $s/$n (bar: 1 point + 1 sample below it)"
    fi
    echo "test_csv_data: $name: mlp.h $c/$n, scikit-learn $s/$n"
done < "$dir/sklearn.txt"
[ "$(wc -l < "$dir/sklearn.txt")" = 4 ] || fail "scikit-learn's accuracies are missing"
echo "test_csv_data: passed"
