/* train_csv.c - train a classifier on any CSV file of numbers, or classify
   the rows of one with a trained model.

   cc -O2 -o train_csv examples/train_csv.c -lm
   ./train_csv --train iris.csv --header --label species --layers auto-16-auto --epochs 200
   ./train_csv --predict model.mlp new_flowers.csv --header
*/
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h> /* QueryPerformanceCounter */
#endif
#define MLP_IMPLEMENTATION
#include "../mlp.h"

typedef struct options {
    const char *train, *test, *label, *predict_model, *predict_file;
    float test_fraction;
    int header;
    mlp_cli cli; /* the flags every training program shares (mlp.h) */
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: train_csv --train FILE [--test FILE | --test-fraction F] [--label COLUMN] [--header] [options]\n"
        "       train_csv --predict MODEL FILE [--header] [--label COLUMN]\n"
        "  --train FILE          the training data: one sample per line, numbers separated\n"
        "                        by commas, one column the class (a number or a name)\n"
        "  --test FILE           the test data, in the same columns\n"
        "  --test-fraction F     or hold out this fraction of --train for testing (default 0.2)\n"
        "  --label COLUMN        the class column: a 0-based index or, with --header, a name\n"
        "                        (default the last column)\n"
        "  --header              the first line names the columns\n"
        "  --predict MODEL FILE  print the class of every line of FILE, one per line (its\n"
        "                        name when the model has names); FILE may have the label\n"
        "                        column (--label) or only the inputs\n"
        "  --help                this text\n"
        "the network and its training (shared with train_mnist; the defaults here are for\n"
        "small tables: --layers auto-64-auto --epochs 200 --init glorot --optimizer adam\n"
        "--lr 0.001 --lr-decay 1 (a constant rate) --batch 32); inputs are standardised\n"
        "with the training set's mean and deviation, which the model keeps:\n");
    fputs(mlp_cli_help(), f);
}

static void bad_usage(const char *what)
{
    fprintf(stderr, "train_csv: %s (see --help)\n", what);
    exit(2);
}

static options parse_args(int argc, char **argv)
{
    options o;
    int i, shared;
    char *end;
    memset(&o, 0, sizeof o);
    o.test_fraction = 0.2f;
    o.cli = mlp_cli_defaults();
    o.cli.layers = "auto-64-auto"; /* defaults for small tables, as scikit-learn's MLPClassifier has */
    o.cli.epochs = 200;
    o.cli.train.optimizer = MLP_OPT_ADAM;
    o.cli.train.lr = 0.001f;
    o.cli.train.lr_decay = 1.0f; /* a constant rate */
    o.cli.train.batch = 32;
    o.cli.init = MLP_INIT_GLOROT; /* He's, before ReLU, left small tables undertrained on some seeds */
    for (i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(stdout); exit(0); }
        if ((shared = mlp_cli_flag(&o.cli, argc, argv, &i)) < 0) bad_usage(mlp_error());
        if (shared) continue;
        if (!strcmp(f, "--header")) { o.header = 1; continue; }
        if (!strcmp(f, "--predict")) {
            if (i + 2 >= argc) bad_usage("--predict: expected MODEL and FILE");
            o.predict_model = argv[++i];
            o.predict_file = argv[++i];
            continue;
        }
        if (i + 1 >= argc) bad_usage(strncmp(f, "--", 2) ? "unexpected argument" : "missing value (or unknown flag)");
        if (!strcmp(f, "--train")) o.train = argv[++i];
        else if (!strcmp(f, "--test")) o.test = argv[++i];
        else if (!strcmp(f, "--label")) o.label = argv[++i];
        else if (!strcmp(f, "--test-fraction")) {
            o.test_fraction = (float)strtod(argv[++i], &end);
            if (*end || end == argv[i] || !(o.test_fraction > 0.0f && o.test_fraction < 1.0f))
                bad_usage("--test-fraction: expected a number between 0 and 1");
        } else bad_usage("unknown flag");
    }
    if (!o.predict_model && !o.train) bad_usage("--train FILE or --predict MODEL FILE is needed");
    return o;
}

/* --label as a column index of the file: a name in its header, a number,
   or (no --label) the last column; -3 after printing why not */
static int label_column(const options *o, const char *path)
{
    char *end;
    long k;
    int named;
    if (!o->label) return MLP_CSV_LAST;
    if (o->header && (named = mlp_csv_find_column(path, o->label)) >= 0) return named;
    k = strtol(o->label, &end, 10);
    if (*end || end == o->label || k < 0 || k > MLP_MAX_WIDTH) {
        fprintf(stderr, "train_csv: --label %s: %s\n", o->label,
                o->header ? mlp_error() : "expected a 0-based column number (or --header and a name)");
        return -3;
    }
    return (int)k;
}

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

/* --predict: the model's class for every line of the file */
static int predict(const options *o)
{
    mlp_net *net = mlp_load(o->predict_model);
    mlp_dataset ds;
    float *x = NULL;
    int i, n_in, label, rc = 1;
    if (!net) { fprintf(stderr, "train_csv: %s\n", mlp_error()); return 1; }
    n_in = mlp_input_width(net);
    /* only inputs, or the inputs and the label column (which is skipped) */
    if (mlp_dataset_load_csv(&ds, o->predict_file, MLP_CSV_NONE, o->header, NULL) != 0 || ds.dim != n_in) {
        mlp_dataset_free(&ds);
        if ((label = label_column(o, o->predict_file)) == -3 ||
            mlp_dataset_load_csv(&ds, o->predict_file, label, o->header, NULL) != 0) {
            if (label != -3) fprintf(stderr, "train_csv: %s\n", mlp_error());
            mlp_free(net);
            return 1;
        }
    }
    if (ds.dim != n_in) {
        fprintf(stderr, "train_csv: %s has %d input columns; the model takes %d\n", o->predict_file, ds.dim, n_in);
        goto done;
    }
    if (!(x = (float *)malloc(sizeof(float) * (size_t)n_in))) { fprintf(stderr, "train_csv: out of memory\n"); goto done; }
    for (i = 0; i < ds.n; i++) {
        const float *p;
        int k, best = 0;
        mlp_normalize_input(net, ds.x + (size_t)i * n_in, x); /* the training set's standardisation */
        if (!(p = mlp_predict(net, x, 1))) { fprintf(stderr, "train_csv: %s\n", mlp_error()); goto done; }
        for (k = 1; k < mlp_output_width(net); k++) if (p[k] > p[best]) best = k;
        if (mlp_class_name(net, best)) printf("%s\n", mlp_class_name(net, best));
        else printf("%d\n", best);
    }
    rc = 0;
done:
    free(x);
    mlp_dataset_free(&ds);
    mlp_free(net);
    return rc;
}

/* the training and test sets: --test, or a seeded split of --train */
static int load_data(const options *o, mlp_dataset *train, mlp_dataset *test, mlp_dataset *held_out)
{
    int label = label_column(o, o->train);
    if (label == -3) return 1;
    if (mlp_dataset_load_csv(train, o->train, label, o->header, NULL) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); return 1; }
    if (o->test) {
        if ((label = label_column(o, o->test)) == -3) return 1;
        if (mlp_dataset_load_csv(test, o->test, label, o->header, train) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); return 1; }
        if (test->dim != train->dim) {
            fprintf(stderr, "train_csv: %s has %d input columns, %s %d\n", o->test, test->dim, o->train, train->dim);
            return 1;
        }
    } else {
        int n = (int)(o->test_fraction * (float)train->n + 0.5f);
        if (n < 1 || n >= train->n) {
            fprintf(stderr, "train_csv: --test-fraction %g of %d samples leaves nothing on one side\n", o->test_fraction, train->n);
            return 1;
        }
        if (mlp_dataset_split(train, held_out, n, o->cli.train.seed) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); return 1; }
        *test = *held_out;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o = parse_args(argc, argv);
    mlp_dataset train, test, held_out;
    mlp_eval tr, te, int8;
    mlp_net *net = NULL;
    FILE *log = NULL;
    int epoch, rc = 1;
    if (o.predict_model) return predict(&o);
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    memset(&held_out, 0, sizeof held_out);
    if (load_data(&o, &train, &test, &held_out) != 0) goto done;
    if (!(net = mlp_cli_create(&o.cli, train.dim, train.n_classes))) {
        fprintf(stderr, "train_csv: --layers %s: %s\n", o.cli.layers, mlp_error());
        rc = 2;
        goto done;
    }
    if (mlp_dataset_check(net, &train) != 0 || mlp_dataset_check(net, &test) != 0 ||
        mlp_dataset_standardize(net, &train, &test) != 0 ||
        (train.class_names && mlp_set_class_names(net, (const char *const *)train.class_names) != 0)) {
        fprintf(stderr, "train_csv: %s\n", mlp_error());
        goto done;
    }
    if (o.cli.log && !(log = fopen(o.cli.log, "w"))) { fprintf(stderr, "train_csv: cannot write %s\n", o.cli.log); goto done; }
    if (log) fprintf(log, "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n");
    if (!o.cli.train.total_epochs) o.cli.train.total_epochs = o.cli.epochs; /* the cosine schedule's end */
    printf("%d training and %d test samples, %d inputs, %d classes\n", train.n, test.n, train.dim, train.n_classes);
    for (epoch = 0; epoch < o.cli.epochs; epoch++) {
        double t0 = seconds_now(), dt;
        if (mlp_train_epoch(net, &train, &o.cli.train, epoch, &tr) != 0 || mlp_evaluate(net, &test, 1000, &te, NULL) != 0) {
            fprintf(stderr, "train_csv: %s; %s not written\n", mlp_error(), o.cli.out);
            goto done;
        }
        dt = seconds_now() - t0;
        if (!o.cli.quiet || epoch + 1 == o.cli.epochs)
            printf("epoch %3d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  lr %.4g  %.3f s\n",
                   epoch + 1, tr.loss, tr.accuracy, te.loss, te.accuracy, mlp_lr_at(&o.cli.train, epoch), dt);
        if (log) fprintf(log, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.4f\n", epoch + 1, tr.loss, tr.accuracy, te.loss, te.accuracy,
                         mlp_lr_at(&o.cli.train, epoch), dt);
    }
    if (mlp_evaluate(net, &test, 1000, &te, NULL) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); goto done; }
    printf("test accuracy %.4f (%d/%d)\n", te.accuracy, te.correct, te.n);
    if (mlp_save(net, o.cli.out) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); goto done; }
    printf("model saved to %s\n", o.cli.out);
    if (mlp_cli_export(&o.cli, net, &test, &int8) != 0) { fprintf(stderr, "train_csv: %s\n", mlp_error()); goto done; }
    if (o.cli.export_c) printf("C header written to %s (%s_predict)\n", o.cli.export_c, o.cli.export_name ? o.cli.export_name : "mlp_model");
    if (o.cli.export_c_int8)
        printf("int8 C header written to %s: test accuracy %.4f (%d/%d), %.4f with float weights\n", o.cli.export_c_int8,
               int8.accuracy, int8.correct, int8.n, te.accuracy);
    rc = 0;
done:
    if (log && fclose(log) != 0) { fprintf(stderr, "train_csv: error writing %s\n", o.cli.log); rc = 1; }
    mlp_free(net);
    mlp_dataset_free(&train); /* held_out is a view into train */
    if (o.test) mlp_dataset_free(&test);
    return rc;
}
