#!/usr/bin/python3
"""Real data for build/train_csv: the four classification sets Debian's
python3-sklearn ships as files (sklearn.datasets.load_*, no network) written
as CSV, never committed (they are sklearn's, and regenerated in a second).

    tools/sklearn_csv.py OUTDIR

For each NAME in iris, wine, breast_cancer, digits writes OUTDIR/NAME.csv (all
rows) and OUTDIR/NAME-train.csv, OUTDIR/NAME-test.csv (a stratified 75/25
split with a fixed seed, the same on every run). A header line of feature
names, the label last. iris and wine are labelled by class name (setosa,
class_0, ...) so train_csv's name path is used; breast_cancer and digits by
class index. The bytes are the same on every run: the values are printed
with repr, the shortest text that reads back as the same double, which for
these sets is the short decimal sklearn read from its own files.
Exit status 3 when sklearn cannot be imported (the caller says what to install).
"""
import os
import re
import sys

try:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
except ImportError as e:
    print("sklearn_csv.py: %s (apt-get install python3-sklearn)" % e, file=sys.stderr)
    sys.exit(3)

SETS = (("iris", datasets.load_iris, True), ("wine", datasets.load_wine, True),
        ("breast_cancer", datasets.load_breast_cancer, False),
        ("digits", datasets.load_digits, False))
TEST_FRACTION = 0.25
SEED = 0


def column_name(name):
    # "sepal length (cm)" -> "sepal_length_cm": no commas, quotes or spaces to quote
    return re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_")


def number(v):
    # digits' pixels are whole numbers stored as doubles: "16", not "16.0"
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def write(path, header, rows, labels):
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for row, label in zip(rows, labels):
            f.write(",".join(number(v) for v in row) + "," + str(label) + "\n")
    print("wrote %s (%d rows)" % (path, len(labels)))


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, load, by_name in SETS:
        d = load()
        header = [column_name(n) for n in d.feature_names] + ["target"]
        labels = [d.target_names[t] if by_name else int(t) for t in d.target]
        write(os.path.join(out, name + ".csv"), header, d.data, labels)
        # split indices, not arrays, so every file prints its rows the same way
        train, test = train_test_split(range(len(labels)), test_size=TEST_FRACTION,
                                       random_state=SEED, stratify=d.target)
        for part, idx in (("train", train), ("test", test)):
            write(os.path.join(out, "%s-%s.csv" % (name, part)), header,
                  [d.data[i] for i in idx], [labels[i] for i in idx])


if __name__ == "__main__":
    main()
