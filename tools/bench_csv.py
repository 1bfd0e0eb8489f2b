#!/usr/bin/python3
"""`make bench-csv`: build/train_csv beside scikit-learn's MLPClassifier on the
CSV files tools/sklearn_csv.py writes (iris, wine, breast_cancer, digits).

    tools/bench_csv.py BUILD_DIR DATA_DIR [--reps N] [--seed S] [--seeds K]
    tools/bench_csv.py --sklearn-only DATA_DIR [--seed S]

DATA_DIR is (re)written by tools/sklearn_csv.py first, except with --sklearn-only.

The same network and training on both sides: standardised inputs, one hidden
layer of 100 ReLUs, Adam at 1e-3, batches of min(200, n_train), 200 epochs.
sklearn may stop before 200 (its tol/n_iter_no_change rule; the epochs it ran
are printed); train_csv always runs all 200. Times: sklearn's fit + predict
measured in-process (no Python start-up or CSV reading); train_csv's whole
process from outside (start-up, CSV parsing and the model file included), with
--threads 1; sklearn uses OpenBLAS with the threads the environment gives it.
Medians of --reps runs (default 3), the two sides alternating so that a slow
moment of the machine hits both. Accuracy is deterministic for a seed: the one
for --seed (default 1), and the mean over seeds 1..K (--seeds, default 5, 0 to
skip), because iris's and wine's test sets are tiny (one sample = 2-3 points).
--sklearn-only prints `NAME CORRECT TOTAL` per set, for tests/test_csv_data.sh.
Without scikit-learn it says what to install and exits 0 (1 when
MLP_REQUIRE_SKLEARN=1).
"""
import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

NAMES = ("iris", "wine", "breast_cancer", "digits")
HIDDEN, LR, EPOCHS = 100, 1e-3, 200

try:
    import numpy as np
    import sklearn
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError as e:
    msg = "bench_csv: %s lacks scikit-learn/NumPy (%s): apt-get install python3-sklearn" % (
        sys.executable, e)
    if os.environ.get("MLP_REQUIRE_SKLEARN") == "1":
        print(msg + " (MLP_REQUIRE_SKLEARN=1)", file=sys.stderr)
        sys.exit(1)
    print(msg + "; skipped")
    sys.exit(0)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([r[:-1] for r in rows], dtype=np.float64), np.array([r[-1] for r in rows])


def load(data, name):
    xtr, ytr = read_csv(os.path.join(data, name + "-train.csv"))
    xte, yte = read_csv(os.path.join(data, name + "-test.csv"))
    return xtr, ytr, xte, yte


def run_sklearn(d, seed):
    """(correct, total, seconds, epochs run)"""
    xtr, ytr, xte, yte = d
    model = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam", learning_rate_init=LR,
        batch_size=min(200, len(ytr)), max_iter=EPOCHS, random_state=seed))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 200 epochs is the point
        model.fit(xtr, ytr)
        pred = model.predict(xte)
    t = time.perf_counter() - t
    return int((pred == yte).sum()), len(yte), t, model[-1].n_iter_


def run_mlp(build, data, name, n_train, seed, out):
    """(correct, total, seconds) from train_csv's line `test accuracy 0.9667 (29/30)`"""
    cmd = [os.path.join(build, "train_csv"), "--train", os.path.join(data, name + "-train.csv"),
           "--test", os.path.join(data, name + "-test.csv"), "--header",
           "--layers", "auto-%d-auto" % HIDDEN, "--init", "glorot", "--optimizer", "adam", "--lr", repr(LR),
           "--batch", str(min(200, n_train)), "--epochs", str(EPOCHS), "--seed", str(seed),
           "--threads", "1", "--quiet", "--out", out]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    t = time.perf_counter() - t
    lines = [l for l in p.stdout.splitlines() if l.startswith("test accuracy")]
    m = re.fullmatch(r"test accuracy [0-9.]+ \((\d+)/(\d+)\)", lines[-1] if lines else "")
    if p.returncode != 0 or not m:
        sys.exit("bench_csv: %s\nexit %d\nstdout:\n%s\nstderr:\n%s"
                 % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return int(m.group(1)), int(m.group(2)), t


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def blas():
    # the threads sklearn's matrix products really get, not what we guess from the environment
    try:
        from threadpoolctl import threadpool_info
        return ", ".join("%s %s, %d threads" % (i["internal_api"], i.get("version"), i["num_threads"])
                         for i in threadpool_info()) or "none found"
    except ImportError:
        return "unknown (no threadpoolctl)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sklearn-only", action="store_true")
    a = ap.parse_args()
    if a.sklearn_only:
        for name in NAMES:
            c, n, _, _ = run_sklearn(load(a.dirs[0], name), a.seed)
            print(name, c, n)
        return
    if len(a.dirs) != 2:
        ap.error("BUILD_DIR DATA_DIR")
    build, data = a.dirs
    # (re)written each time: a second's work, and never a stale or edited copy
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "sklearn_csv.py"), data],
                   stdout=subprocess.DEVNULL, check=True)
    sets = {name: load(data, name) for name in NAMES}
    sk = {n: [] for n in NAMES}
    ml = {n: [] for n in NAMES}
    tmp = tempfile.TemporaryDirectory()
    out = os.path.join(tmp.name, "bench.mlp")
    for rep in range(a.reps):
        for name in NAMES:
            d = sets[name]
            # alternate which side goes first so neither always gets the warm cache
            for side in (("sk", "ml") if rep % 2 == 0 else ("ml", "sk")):
                if side == "sk":
                    sk[name].append(run_sklearn(d, a.seed))
                else:
                    ml[name].append(run_mlp(build, data, name, len(d[1]), a.seed, out))
    for name in NAMES:  # the same seed must give the same accuracy on every run
        for side, runs in (("sklearn", sk[name]), ("mlp.h", ml[name])):
            if len({r[0] for r in runs}) > 1:
                print("bench_csv: %s %s: accuracy differs between runs of seed %d: %s"
                      % (name, side, a.seed, [r[0] for r in runs]))
    means = {}
    for name in NAMES if a.seeds > 0 else ():
        d = sets[name]
        s = [run_sklearn(d, k) for k in range(1, a.seeds + 1)]
        m = [run_mlp(build, data, name, len(d[1]), k, out) for k in range(1, a.seeds + 1)]
        means[name] = (statistics.mean(r[0] / r[1] for r in s),
                       statistics.mean(r[0] / r[1] for r in m), [r[3] for r in s])

    print("machine: %s (%d CPUs)" % (cpu_model(), os.cpu_count()))
    print("scikit-learn %s, NumPy %s, BLAS: %s; environment as found: %s; train_csv --threads 1"
          % (sklearn.__version__, np.__version__, blas(), " ".join(
              "%s=%s" % (k, v) for k, v in sorted(os.environ.items())
              if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))) or "no OPENBLAS_/OMP_ variables"))
    print("accuracy: seed %d; times: median of %d runs, sklearn fit+predict in-process, "
          "train_csv the whole process\n" % (a.seed, a.reps))
    head = ["dataset", "train/test rows", "features", "classes", "sklearn acc", "mlp.h acc",
            "sklearn s", "mlp.h s", "ratio"]
    if means:
        head[6:6] = ["sklearn acc, mean seeds 1-%d" % a.seeds, "mlp.h acc, mean seeds 1-%d" % a.seeds]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in NAMES:
        xtr, ytr, xte, yte = sets[name]
        s, m = sk[name][0], ml[name][0]
        ts = statistics.median(r[2] for r in sk[name])
        tm = statistics.median(r[2] for r in ml[name])
        row = [name, "%d/%d" % (len(ytr), len(yte)), str(xtr.shape[1]), str(len(set(ytr))),
               "%.4f (%d/%d)" % (s[0] / s[1], s[0], s[1]), "%.4f (%d/%d)" % (m[0] / m[1], m[0], m[1]),
               "%.3f" % ts, "%.3f" % tm, "%.2f" % (ts / tm)]
        if means:
            row[6:6] = ["%.4f" % means[name][0], "%.4f" % means[name][1]]
        print("| " + " | ".join(row) + " |")
    print("\nepochs sklearn ran (of %d; it stops when the loss stalls): seed %d: %s"
          % (EPOCHS, a.seed, ", ".join("%s %d" % (n, sk[n][0][3]) for n in NAMES)))
    if means:
        print("  seeds 1-%d: %s" % (a.seeds, "; ".join(
            "%s %s" % (n, " ".join(map(str, means[n][2]))) for n in NAMES)))


if __name__ == "__main__":
    main()
