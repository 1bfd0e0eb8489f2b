/* train_mnist.c - train a multi-layer perceptron on MNIST (or any IDX
   image/label pair in the same layout, plain or gzipped) and report its
   test accuracy.

   cc -O2 -o train_mnist examples/train_mnist.c -lm
   ./train_mnist --help
*/
#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <io.h>       /* _isatty */
#include <windows.h>  /* QueryPerformanceCounter */
#define isatty _isatty
#else
#include <unistd.h>   /* isatty */
#endif
#include "stb_png.h" /* its zlib decoder reads gzipped IDX files (MLP_INFLATE) */
#define MLP_IMPLEMENTATION
#include "../mlp.h"

/* examples/train_mpi.c is this program over several processes: it defines
   TRAIN_MNIST_PROCESSES and its own versions of these, then includes this
   file. Here one process does it all. */
#ifndef TRAIN_MNIST_PROCESSES
static const char *program = "train_mnist";
static void start_processes(int *argc, char ***argv) { (void)argc; (void)argv; }
static int  end_processes(int rc) { return rc; }
/* whether this process writes the log, models and checkpoints */
static int  writes_files(void) { return 1; }
/* the part of the training set this process trains on */
static int  take_share(const mlp_dataset *all, mlp_dataset *share) { *share = *all; return 0; }
static void join_training(mlp_train_config *cfg) { (void)cfg; }
/* whether any process was interrupted (Ctrl-C), asked after every batch */
static int  anyone_interrupted(int here) { return here; }
/* training stops in every process at once (an interrupt, a divergence) */
static void all_stopping(void) {}
#endif

typedef struct options {
    const char *data, *train_images, *train_labels, *test_images, *test_labels;
    const char *confusion, *checkpoint, *resume, *save_last_good;
    int val, patience, plateau;
    int interrupt_after, interrupt_times; /* --interrupt-after N,K */
    float min_delta, plateau_factor;
    mlp_augment aug;
    mlp_cli cli; /* the flags every training program shares (mlp.h) */
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: train_mnist [options]\n"
        "  --data DIR            directory with the four MNIST files (default data/mnist)\n"
        "  --train-images FILE   override one file (also --train-labels, --test-images,\n"
        "                        --test-labels); relative to the current directory\n"
        "  --val N               hold N training samples out for validation; the weights\n"
        "                        with the best validation loss are kept\n"
        "  --patience K          stop after K epochs without improvement (of the validation\n"
        "                        loss, or of the training loss without --val)\n"
        "  --min-delta X         smaller improvements do not count (default 0)\n"
        "  --plateau K           multiply the learning rate by --plateau-factor (default 0.5)\n"
        "                        after every K epochs without improvement\n"
        "  augmentation, a fresh random version of every training image each epoch:\n"
        "  --shift PX --rotate DEG --scale X --shear X   random affine map (+- ranges)\n"
        "  --elastic-alpha A --elastic-sigma S           elastic distortion (Simard: 34, 4)\n"
        "  --thickness PX --blur SIGMA --specks P        strokes thicker/thinner by up to PX,\n"
        "                                                blur up to SIGMA, stray specks with\n"
        "                                                probability P (photos, fonts)\n"
        "  --confusion FILE.csv  write the final test confusion matrix as CSV\n"
        "  --save-last-good FILE if training diverges, save the weights as they were after\n"
        "                        the last whole epoch (or the start) to FILE (--out is kept)\n"
        "  --checkpoint FILE     save model + optimizer state + position after every epoch;\n"
        "                        Ctrl-C finishes the batch, saves it (default OUT.ckpt) and exits\n"
        "  --resume FILE         continue a checkpoint until --epochs epochs in total; its\n"
        "                        network and training settings replace the flags\n"
        "  --interrupt-after N[,K]  raise SIGINT after N training batches of this run,\n"
        "                        K times at once (default 1; 2: a second Ctrl-C, which\n"
        "                        exits at once): the Ctrl-C path, for tests and scripts\n"
        "  --help                this text\n"
        "the network and its training (shared with train_csv; the defaults here:\n"
        "--layers 784-256-128-10 --epochs 10 --optimizer sgd --lr 0.05 --batch 64\n"
        "--lr-decay 0.5):\n");
    fputs(mlp_cli_help(), f);
}

static void bad_usage(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "%s: %s %s: %s (see --help)\n", program, flag, value ? value : "", why);
    exit(2);
}

static long parse_int(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char why[80];
        snprintf(why, sizeof why, "expected an integer in %ld..%ld", lo, hi);
        bad_usage(flag, s, why);
    }
    return v;
}

static float parse_float(const char *flag, const char *s, double lo, double hi)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        char why[80];
        snprintf(why, sizeof why, "expected a number in %g..%g", lo, hi);
        bad_usage(flag, s, why);
    }
    return (float)v;
}

/* --interrupt-after N or N,K: N >= 1 batches, K 1 or 2 signals */
static void parse_interrupt(const char *flag, const char *s, options *o)
{
    char *end, *end2;
    long n, k = 1;
    int ok;
    errno = 0;
    n = strtol(s, &end, 10);
    ok = end != s && n >= 1 && n <= 2147483647L;
    if (ok && *end == ',') {
        k = strtol(end + 1, &end2, 10);
        ok = end2 != end + 1 && k >= 1 && k <= 2;
        end = end2;
    }
    if (!ok || errno || *end) bad_usage(flag, s, "expected N or N,K: N >= 1 batches, K 1 or 2 signals");
    o->interrupt_after = (int)n;
    o->interrupt_times = (int)k;
}

static options parse_args(int argc, char **argv)
{
    options o;
    int i, shared;
    memset(&o, 0, sizeof o);
    o.data = "data/mnist";
    o.plateau_factor = 0.5f;
    o.cli = mlp_cli_defaults();
    for (i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(stdout); exit(0); }
        if ((shared = mlp_cli_flag(&o.cli, argc, argv, &i)) < 0) {
            fprintf(stderr, "%s: %s (see --help)\n", program, mlp_error());
            exit(2);
        }
        if (shared) continue;
        if (strncmp(f, "--", 2) != 0) bad_usage(f, NULL, "unexpected argument");
        if (!v) bad_usage(f, NULL, "missing value (or unknown flag)");
        i++;
        if (!strcmp(f, "--data")) o.data = v;
        else if (!strcmp(f, "--train-images")) o.train_images = v;
        else if (!strcmp(f, "--train-labels")) o.train_labels = v;
        else if (!strcmp(f, "--test-images")) o.test_images = v;
        else if (!strcmp(f, "--test-labels")) o.test_labels = v;
        else if (!strcmp(f, "--confusion")) o.confusion = v;
        else if (!strcmp(f, "--save-last-good")) o.save_last_good = v;
        else if (!strcmp(f, "--checkpoint")) o.checkpoint = v;
        else if (!strcmp(f, "--resume")) o.resume = v;
        else if (!strcmp(f, "--interrupt-after")) parse_interrupt(f, v, &o);
        else if (!strcmp(f, "--val")) o.val = (int)parse_int(f, v, 0, 1 << 30);
        else if (!strcmp(f, "--patience")) o.patience = (int)parse_int(f, v, 0, 100000);
        else if (!strcmp(f, "--plateau")) o.plateau = (int)parse_int(f, v, 0, 100000);
        else if (!strcmp(f, "--plateau-factor")) o.plateau_factor = parse_float(f, v, 1e-6, 1);
        else if (!strcmp(f, "--min-delta")) o.min_delta = parse_float(f, v, 0, 1e9);
        else if (!strcmp(f, "--shift")) o.aug.shift = parse_float(f, v, 0, 100);
        else if (!strcmp(f, "--rotate")) o.aug.rotate = parse_float(f, v, 0, 180);
        else if (!strcmp(f, "--scale")) o.aug.scale = parse_float(f, v, 0, 0.9);
        else if (!strcmp(f, "--shear")) o.aug.shear = parse_float(f, v, 0, 2);
        else if (!strcmp(f, "--elastic-alpha")) o.aug.elastic_alpha = parse_float(f, v, 0, 1000);
        else if (!strcmp(f, "--elastic-sigma")) o.aug.elastic_sigma = parse_float(f, v, 0.1, 10);
        else if (!strcmp(f, "--thickness")) o.aug.thickness = parse_float(f, v, 0, 3);
        else if (!strcmp(f, "--blur")) o.aug.blur = parse_float(f, v, 0, 10);
        else if (!strcmp(f, "--specks")) o.aug.specks = parse_float(f, v, 0, 1);
        else bad_usage(f, NULL, "unknown flag");
    }
    return o;
}

/* DIR/NAME unless the user named the file explicitly; DIR/NAME.gz (MNIST
   as it is distributed) when only that is there */
static const char *data_path(char *buf, size_t size, const char *dir, const char *override, const char *name)
{
    FILE *f;
    if (override) return override;
    snprintf(buf, size, "%s/%s", dir, name);
    if ((f = fopen(buf, "rb"))) { fclose(f); return buf; }
    snprintf(buf, size, "%s/%s.gz", dir, name);
    if ((f = fopen(buf, "rb"))) { fclose(f); return buf; }
    snprintf(buf, size, "%s/%s", dir, name); /* neither: the error names the plain file */
    return buf;
}

static int load(mlp_dataset *ds, const mlp_net *net, const char *images, const char *labels)
{
    if (mlp_dataset_load(ds, images, labels) != 0 || mlp_dataset_check(net, ds) != 0) {
        fprintf(stderr, "%s: %s\n", program, mlp_error());
        return -1;
    }
    return 0;
}

/* a steady clock in seconds, for the log's timings */
static double seconds_now(void)
{
#ifdef _WIN32
    LARGE_INTEGER t, per_second;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&per_second);
    return (double)t.QuadPart / (double)per_second.QuadPart;
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#endif
}

static void print_confusion(const int *conf, int n)
{
    int i, j;
    printf("confusion matrix (rows: true label, columns: predicted)\n     ");
    for (j = 0; j < n; j++) printf("%6d", j);
    printf("\n");
    for (i = 0; i < n; i++) {
        printf("%4d ", i);
        for (j = 0; j < n; j++) printf("%6d", conf[i * n + j]);
        printf("\n");
    }
}

/* Ctrl-C: the first asks training to stop after the current batch (and save
   a checkpoint); a second one exits at once. Files are only ever replaced
   by an atomic rename, so neither can leave a half-written one. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    if (interrupted) _Exit(130); /* async-signal-safe, unlike exit() */
    interrupted = 1;
    signal(sig, on_sigint);
}

/* Called after every batch: counts batches, draws the progress bar (redrawn
   in place on a terminal, at most ten times a second; never into a pipe or
   a file, where it would be garbage) and passes a Ctrl-C on. With
   --interrupt-after it raises the SIGINT itself, so the signal handler and
   everything after it run as for a Ctrl-C, at a known batch. */
typedef struct progress {
    int epochs, n, draw, batches_done;
    long batches_run, interrupt_after; /* batches trained by this run; 0: no --interrupt-after */
    int interrupt_times;
    double t0, last;
} progress;

static int after_batch(void *user, const mlp_batch_info *b)
{
    progress *p = (progress *)user;
    double now = seconds_now(), rate, eta;
    int width = 30, filled, k;
    p->batches_done = b->batch + 1;
    if (++p->batches_run == p->interrupt_after)
        for (k = 0; k < p->interrupt_times; k++) raise(SIGINT);
    if (anyone_interrupted(interrupted)) interrupted = 1;
    if (b->batch == 0 || p->t0 == 0) p->t0 = now;
    if (!p->draw || ((now - p->last < 0.1 || now - p->t0 < 0.05) && b->batch + 1 < b->n_batches)) return interrupted;
    p->last = now;
    rate = b->samples_done / (now - p->t0 + 1e-9);
    eta = (p->n - b->samples_done) / (rate + 1e-9);
    filled = (int)((double)width * (b->batch + 1) / b->n_batches);
    fprintf(stderr, "\repoch %d/%d [%.*s%*s] %d/%d  %.0f samples/s  loss %.4f  ETA %.0f s \033[K",
            b->epoch + 1, p->epochs, filled, "##############################", width - filled, "",
            b->batch + 1, b->n_batches, rate, b->loss, eta);
    fflush(stderr);
    return interrupted;
}

/* One CSV row: the seven contract columns, errK per class (test samples of
   class K misclassified), and val_loss,val_acc when there is a validation set. */
static void log_row(FILE *log, int epoch, const mlp_eval *tr, const mlp_eval *te, float lr, double seconds,
                    const int *conf, int n, const mlp_eval *ve)
{
    int i, j;
    fprintf(log, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f", epoch, tr->loss, tr->accuracy, te->loss, te->accuracy, lr, seconds);
    for (i = 0; i < n; i++) {
        int wrong = 0;
        for (j = 0; j < n; j++) if (j != i) wrong += conf[i * n + j];
        fprintf(log, ",%d", wrong);
    }
    if (ve) fprintf(log, ",%.6f,%.6f", ve->loss, ve->accuracy);
    fprintf(log, "\n");
    fflush(log);
}

/* A checkpoint of net and the loop's state; early stopping's weights go in
   only once an epoch has been the best. */
static int save_checkpoint(const mlp_net *net, const mlp_train_config *cfg, const mlp_train_state *st, const char *path)
{
    mlp_train_state saved = *st;
    if (!saved.best_epoch) saved.best = NULL;
    return mlp_checkpoint_save_state(net, cfg, &saved, path);
}

static const mlp_eval no_samples = {0.0, 0.0, 0, 0};

static int write_confusion(const char *path, const int *conf, int n)
{
    int i, j;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "true");
    for (j = 0; j < n; j++) fprintf(f, ",pred%d", j);
    fprintf(f, "\n");
    for (i = 0; i < n; i++) {
        fprintf(f, "%d", i);
        for (j = 0; j < n; j++) fprintf(f, ",%d", conf[i * n + j]);
        fprintf(f, "\n");
    }
    return fclose(f);
}

static int train(int argc, char **argv)
{
    options o = parse_args(argc, argv);
    char p1[4096], p2[4096], p3[4096], p4[4096];
    mlp_dataset train, test;
    mlp_eval tr, te, int8;
    FILE *log = NULL;
    progress bar;
    int first_epoch = 0, first_batch = 0, epoch, n_out, *confusion = NULL, rc = 1, j;
    mlp_dataset val, augmented, share; /* share: what this process trains on */
    mlp_eval ve;
    int augmenting = 0;
    double aug_seconds = 0;
    /* early stopping's state (st.best: the weights of the best epoch), kept
       in checkpoints with the statistics of an interrupted epoch so far */
    mlp_train_state st, loaded;
    mlp_net *good = NULL;  /* --save-last-good: the weights after the last whole epoch */
    int good_epoch = 0;
    char ckpt_default[4096];
    const char *ckpt = o.checkpoint;
    mlp_net *net;
    memset(&st, 0, sizeof st);
    memset(&loaded, 0, sizeof loaded);
    st.best_loss = 1e300;
    if (o.resume) { /* the checkpoint's network, settings and loop state, the command line's epochs */
        if (!(net = mlp_checkpoint_load_state(o.resume, &o.cli.train, &loaded))) {
            fprintf(stderr, "%s: %s\n", program, mlp_error());
            return 1;
        }
        first_epoch = loaded.epoch;
        first_batch = loaded.batch;
        printf("resuming %s after epoch %d, batch %d\n", o.resume, first_epoch, first_batch);
        o.cli.layers = "(from the checkpoint)";
    } else if (!(net = mlp_cli_create(&o.cli, 0, 0))) { /* its weights drawn, batchnorm and dropout added */
        fprintf(stderr, "%s: --layers %s: %s\n", program, o.cli.layers, mlp_error());
        return 2;
    }
    snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", o.cli.out);
    if (!ckpt) ckpt = ckpt_default;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    memset(&val, 0, sizeof val);
    memset(&augmented, 0, sizeof augmented);
    memset(&share, 0, sizeof share);
    memset(&ve, 0, sizeof ve);
    if (mlp_set_threads(net, o.cli.threads) != 0) {
        fprintf(stderr, "%s: %s\n", program, mlp_error());
        goto done;
    }
    if (load(&train, net, data_path(p1, sizeof p1, o.data, o.train_images, "train-images-idx3-ubyte"),
             data_path(p2, sizeof p2, o.data, o.train_labels, "train-labels-idx1-ubyte")) ||
        load(&test, net, data_path(p3, sizeof p3, o.data, o.test_images, "t10k-images-idx3-ubyte"),
             data_path(p4, sizeof p4, o.data, o.test_labels, "t10k-labels-idx1-ubyte")))
        goto done;
    if (o.val >= train.n) { fprintf(stderr, "%s: --val %d leaves no training samples (%d in all)\n", program, o.val, train.n); rc = 2; goto done; }
    if (o.val && mlp_dataset_split(&train, &val, o.val, o.cli.train.seed) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    if (take_share(&train, &share) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    if (!o.cli.train.total_epochs) o.cli.train.total_epochs = o.cli.epochs; /* the cosine schedule's end */
    augmenting = o.aug.shift > 0 || o.aug.rotate > 0 || o.aug.scale > 0 || o.aug.shear > 0 || o.aug.elastic_alpha > 0 ||
                 o.aug.thickness > 0 || o.aug.blur > 0 || o.aug.specks > 0;
    if (augmenting && !train.image_w) { fprintf(stderr, "%s: augmentation needs images (n x height x width IDX)\n", program); rc = 2; goto done; }
    if (augmenting) {
        augmented = share;
        if (!(augmented.x = (float *)malloc(sizeof(float) * (size_t)share.n * share.dim))) { fprintf(stderr, "%s: out of memory\n", program); goto done; }
    }
    if (!(st.best = mlp_clone(net))) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    if (loaded.best_epoch) {
        st.best_loss = loaded.best_loss; st.best_epoch = loaded.best_epoch; st.bad_epochs = loaded.bad_epochs;
        st.best_train = loaded.best_train;
        if (loaded.best && mlp_copy_weights(st.best, loaded.best) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    }
    st.so_far = loaded.so_far;
    { /* what the model file records about its input */
        mlp_input in = mlp_get_input(net);
        in.scale = train.scale;
        in.image_w = train.image_w * train.image_h == train.dim ? train.image_w : 0;
        in.image_h = in.image_w ? train.image_h : 0;
        if (mlp_set_input(net, &in) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    }
    if (o.save_last_good && !(good = mlp_clone(net))) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    good_epoch = first_epoch;
    n_out = mlp_output_width(net);
    if (!(confusion = (int *)calloc((size_t)n_out * n_out, sizeof(int)))) { fprintf(stderr, "%s: out of memory\n", program); goto done; }
    if (o.cli.log && writes_files() && !(log = fopen(o.cli.log, o.resume ? "a" : "w"))) { fprintf(stderr, "%s: cannot write %s\n", program, o.cli.log); goto done; }
    if (log && !o.resume) { /* errK: test samples of class K misclassified this epoch */
        fprintf(log, "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds");
        for (j = 0; j < n_out; j++) fprintf(log, ",err%d", j);
        fprintf(log, "%s\n", o.val ? ",val_loss,val_acc" : "");
    }
    memset(&bar, 0, sizeof bar);
    bar.epochs = o.cli.epochs; bar.n = train.n; bar.draw = !o.cli.quiet && isatty(2);
    bar.interrupt_after = o.interrupt_after; bar.interrupt_times = o.interrupt_times;
    o.cli.train.on_batch = after_batch;
    o.cli.train.user = &bar;
    join_training(&o.cli.train);
    signal(SIGINT, on_sigint);
    printf("network %s, %d training and %d test samples, kernel %s, %d thread%s\n", o.cli.layers, train.n, test.n,
           mlp_isa_name(mlp_get_isa(net)), o.cli.threads, o.cli.threads > 1 ? "s" : "");
    fflush(stdout); /* Ctrl-C is handled from here on */

    for (epoch = first_epoch; epoch < o.cli.epochs; epoch++) {
        double t0 = seconds_now(), dt;
        int status;
        o.cli.train.start_batch = epoch == first_epoch ? first_batch : 0;
        bar.batches_done = o.cli.train.start_batch;
        if (augmenting) { /* a fresh distortion of every image, a function of (seed, epoch) */
            if (mlp_augment_dataset(net, &share, &o.aug, o.cli.train.seed, epoch, augmented.x) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
            aug_seconds = seconds_now() - t0;
        }
        status = mlp_train_epoch(net, augmenting ? &augmented : &share, &o.cli.train, epoch, &tr);
        if (bar.draw) fprintf(stderr, "\r\033[K");
        if (epoch == first_epoch) tr = mlp_eval_merge(&st.so_far, &tr); /* the batches before the resume too */
        if (status != 0) all_stopping(); /* mlp_train_epoch ends alike everywhere */
        if (status == MLP_EINTR) {
            st.epoch = epoch; st.batch = bar.batches_done; st.so_far = tr;
            if (writes_files() && save_checkpoint(net, &o.cli.train, &st, ckpt) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
            if (writes_files()) fprintf(stderr, "%s: interrupted in epoch %d after batch %d; checkpoint saved to %s "
                    "(continue with --resume %s)\n", program, epoch + 1, bar.batches_done, ckpt, ckpt);
            rc = 130;
            goto done;
        }
        if (status != 0) { /* e.g. divergence: the model on disk is left as it was */
            fprintf(stderr, "%s: %s; %s not written\n", program, mlp_error(), o.cli.out);
            if (good && writes_files() && mlp_save(good, o.save_last_good) == 0)
                fprintf(stderr, "%s: the weights after epoch %d saved to %s\n", program, good_epoch, o.save_last_good);
            else if (good && writes_files()) fprintf(stderr, "%s: %s\n", program, mlp_error());
            goto done;
        }
        if (good && mlp_copy_weights(good, net) == 0) good_epoch = epoch + 1;
        dt = seconds_now() - t0;
        if (mlp_evaluate(net, &test, 1000, &te, confusion) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
        if (o.val && mlp_evaluate(net, &val, 1000, &ve, NULL) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
        if (o.val) printf("epoch %3d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  test acc %.4f  lr %.4g  %.2f s\n",
                          epoch + 1, tr.loss, tr.accuracy, ve.loss, ve.accuracy, te.accuracy, mlp_lr_at(&o.cli.train, epoch), dt);
        else printf("epoch %3d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  lr %.4g  %.2f s\n",
                    epoch + 1, tr.loss, tr.accuracy, te.loss, te.accuracy, mlp_lr_at(&o.cli.train, epoch), dt);
        if (augmenting) printf("           (augmentation %.2f s of it)\n", aug_seconds);
        fflush(stdout);
        if (log) log_row(log, epoch + 1, &tr, &te, mlp_lr_at(&o.cli.train, epoch), dt, confusion, n_out, o.val ? &ve : NULL);
        {   /* stopping and plateaus watch the validation loss, or without --val the training loss */
            double watched = o.val ? ve.loss : tr.loss;
            int patience = o.patience ? o.patience : o.min_delta > 0 ? 1 : 0;
            st.so_far = no_samples;
            if (watched < st.best_loss - o.min_delta) {
                st.best_loss = watched; st.best_epoch = epoch + 1; st.bad_epochs = 0; st.best_train = tr;
                mlp_copy_weights(st.best, net);
            } else {
                st.bad_epochs++;
                if (o.plateau && st.bad_epochs % o.plateau == 0) {
                    o.cli.train.lr_scale *= o.plateau_factor;
                    printf("no improvement for %d epochs: learning rate now %.4g\n", st.bad_epochs, mlp_lr_at(&o.cli.train, epoch + 1));
                }
                if (patience && st.bad_epochs >= patience) {
                    printf("stopping after epoch %d: %d epoch%s without an improvement of more than %g\n",
                           epoch + 1, st.bad_epochs, st.bad_epochs > 1 ? "s" : "", o.min_delta);
                    break;
                }
            }
        }
        /* after the epoch's log row and early stopping's bookkeeping, so
           that a resumed run neither skips nor repeats them */
        st.epoch = epoch + 1; st.batch = 0;
        if (anyone_interrupted(interrupted)) interrupted = 1;
        if ((o.checkpoint || interrupted) && writes_files() && save_checkpoint(net, &o.cli.train, &st, ckpt) != 0) {
            fprintf(stderr, "%s: %s\n", program, mlp_error());
            goto done;
        }
        if (interrupted) { /* Ctrl-C during the epoch's last batch */
            all_stopping();
            if (writes_files()) fprintf(stderr, "%s: interrupted after epoch %d; checkpoint saved to %s\n", program, epoch + 1, ckpt);
            rc = 130;
            goto done;
        }
    }
    if (o.val && st.best_epoch && st.best_epoch < epoch + (epoch < o.cli.epochs)) { /* the weights that did best on validation */
        mlp_copy_weights(net, st.best);
        printf("restored the weights of epoch %d (best validation loss %.4f)\n", st.best_epoch, st.best_loss);
        if (log) { /* a last row for the model that is saved, so the log's last test_acc is the result */
            if (mlp_evaluate(net, &test, 1000, &te, confusion) != 0 || mlp_evaluate(net, &val, 1000, &ve, NULL) != 0) {
                fprintf(stderr, "%s: %s\n", program, mlp_error());
                goto done;
            }
            log_row(log, st.best_epoch, &st.best_train, &te, mlp_lr_at(&o.cli.train, st.best_epoch - 1), 0.0, confusion, n_out, &ve);
        }
    }
    if (mlp_evaluate(net, &test, 1000, &te, confusion) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    print_confusion(confusion, n_out);
    if (o.confusion && writes_files() && write_confusion(o.confusion, confusion, n_out) != 0) { fprintf(stderr, "%s: cannot write %s\n", program, o.confusion); goto done; }
    printf("test accuracy %.4f (%d/%d)\n", te.accuracy, te.correct, te.n);
    if (writes_files() && mlp_save(net, o.cli.out) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    printf("model saved to %s\n", o.cli.out);
    if (writes_files() && mlp_cli_export(&o.cli, net, &test, &int8) != 0) { fprintf(stderr, "%s: %s\n", program, mlp_error()); goto done; }
    if (o.cli.export_c) printf("C header written to %s (%s_predict)\n", o.cli.export_c, o.cli.export_name ? o.cli.export_name : "mlp_model");
    if (o.cli.export_c_int8)
        printf("int8 C header written to %s: test accuracy %.4f (%d/%d), %.4f with float weights\n", o.cli.export_c_int8,
               int8.accuracy, int8.correct, int8.n, te.accuracy);
    rc = 0;
done:
    if (log && fclose(log) != 0) { fprintf(stderr, "%s: error writing %s\n", program, o.cli.log); rc = 1; }
    free(confusion);
    mlp_free(st.best);
    mlp_free(loaded.best);
    mlp_free(good);
    free(augmented.x);
    mlp_dataset_free(&train); /* val is a view into train */
    mlp_dataset_free(&test);
    mlp_free(net);
    return rc;
}

int main(int argc, char **argv)
{
    start_processes(&argc, &argv);
    return end_processes(train(argc, argv));
}
