/* train_mnist as a user meets it: flag errors exit 2 with a message, data
   that does not fit the network is refused, a small synthetic IDX data set
   trains end to end and writes the CSV log, and Ctrl-C (made deterministic
   with --interrupt-after) leaves a checkpoint that resumes to the
   uninterrupted model. Needs build/train_mnist. */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"
#include "run.h"

#define TRAIN "$MLP_TRAIN_MNIST"  /* set by main; the Makefile may point it at a sanitizer build */
static char tmpdir[64];

static void write_idx(const char *name, int type, int ndims, const uint32_t *dims, const unsigned char *body, size_t len)
{
    char path[128];
    FILE *f;
    int i;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputc(0, f); fputc(0, f); fputc(type, f); fputc(ndims, f);
    for (i = 0; i < ndims; i++) { fputc((int)(dims[i] >> 24), f); fputc((int)(dims[i] >> 16) & 255, f); fputc((int)(dims[i] >> 8) & 255, f); fputc((int)dims[i] & 255, f); }
    fwrite(body, 1, len, f);
    fclose(f);
}

/* 4x4 images of three classes: a bright row 0, column 0, or the diagonal */
static void write_synthetic(const char *prefix, int n, uint64_t seed)
{
    unsigned char *img = calloc((size_t)n, 16), *lab = malloc((size_t)n);
    uint32_t dims[3] = {0, 4, 4};
    char name[64];
    mlp_rng rng;
    int i, k;
    mlp_rng_seed(&rng, seed, 5);
    for (i = 0; i < n; i++) {
        lab[i] = (unsigned char)mlp_rng_below(&rng, 3);
        for (k = 0; k < 16; k++) img[i * 16 + k] = (unsigned char)mlp_rng_below(&rng, 60);
        for (k = 0; k < 4; k++) img[i * 16 + (lab[i] == 0 ? k : lab[i] == 1 ? 4 * k : 5 * k)] = 255;
    }
    dims[0] = (uint32_t)n;
    snprintf(name, sizeof name, "%s-images", prefix); write_idx(name, 8, 3, dims, img, (size_t)n * 16);
    snprintf(name, sizeof name, "%s-labels", prefix); write_idx(name, 8, 1, dims, lab, (size_t)n);
    free(img); free(lab);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mlp_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    write_synthetic("train", 300, 1);
    write_synthetic("test", 90, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static void data_flags(char *buf, size_t size, const char *extra)
{
    snprintf(buf, size, TRAIN " --train-images %s/train-images --train-labels %s/train-labels"
             " --test-images %s/test-images --test-labels %s/test-labels --out %s/model.mlp %s",
             tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, extra);
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect(TRAIN " --epochs abc", 2, "--epochs abc: expected an integer");
    expect(TRAIN " --epochs -1", 2, "--epochs -1: expected an integer in 0..");
    expect(TRAIN " --lr x1", 2, "--lr x1: expected a number");
    expect(TRAIN " --act softplus", 2, "expected relu, sigmoid or tanh");
    expect(TRAIN " --loss hinge", 2, "expected ce or mse");
    expect(TRAIN " --init zeros", 2, "expected auto, uniform, glorot or he");
    expect(TRAIN " --optimizer rmsprop", 2, "expected sgd, nesterov, adam or adamw");
    expect(TRAIN " --schedule linear", 2, "expected step, exp or cosine");
    expect(TRAIN " --beta2 1.5", 2, "--beta2 1.5: expected a number");
    expect(TRAIN " --bogus 1", 2, "--bogus");
    expect(TRAIN " --epochs", 2, "missing value");
    expect(TRAIN " --layers 784-x-10", 2, "layer spec");
    expect(TRAIN " --help", 0, "--weight-decay");
}

static void test_missing_data(void **state)
{
    (void)state;
    expect(TRAIN " --data /nonexistent", 1, "/nonexistent/train-images-idx3-ubyte: cannot open");
}

static void test_mismatched_network(void **state)
{
    char cmd[1024];
    (void)state;
    data_flags(cmd, sizeof cmd, "--layers 784-10 --epochs 1");
    expect(cmd, 1, "16 features per sample but the network's input width is 784");
    data_flags(cmd, sizeof cmd, "--layers 16-2 --epochs 1");
    expect(cmd, 1, "not below the network's output width 2");
}

static void test_trains_and_logs(void **state)
{
    char cmd[1024], log[128], line[256];
    FILE *f;
    int rows = 0;
    double acc = 0;
    (void)state;
    snprintf(log, sizeof log, "%s/log.csv", tmpdir);
    data_flags(cmd, sizeof cmd, "--layers 16-12-3 --epochs 3 --batch 16 --lr 0.1 --lr-decay 0.5 --lr-step 2 --log ");
    strcat(cmd, log);
    expect(cmd, 0, "test accuracy");
    assert_non_null(strstr(output, "confusion matrix"));
    f = fopen(log, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,err0,err1,err2\n");
    while (fgets(line, sizeof line, f)) {
        int epoch, e0, e1, e2;
        double tl, ta, vl, lr, sec;
        assert_int_equal(sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%d,%d,%d", &epoch, &tl, &ta, &vl, &acc, &lr, &sec, &e0, &e1, &e2), 10);
        assert_true(e0 >= 0 && e1 >= 0 && e2 >= 0 && e0 + e1 + e2 <= 90);
        assert_float_equal(acc, 1.0 - (e0 + e1 + e2) / 90.0, 1e-6); /* errors match the accuracy */
        assert_int_equal(epoch, ++rows);
        assert_true(ta >= 0 && ta <= 1 && acc >= 0 && acc <= 1 && sec >= 0);
        assert_float_equal(lr, rows <= 2 ? 0.1 : 0.05, 1e-6);
    }
    fclose(f);
    assert_int_equal(rows, 3);
    assert_true(acc > 0.9);
}

/* MNIST as it is distributed: gzipped IDX files, found by --data DIR as
   NAME.gz when NAME is not there, inflated by stb_image's decoder
   (MLP_INFLATE in examples/stb_png.h); the model is the one the plain files
   give, and a damaged stream is refused with a message. Compressed by
   gzip(1), so real Huffman blocks. */
static void test_gzipped_data(void **state)
{
    static const char *names[4][2] = {{"train-images", "train-images-idx3-ubyte"}, {"train-labels", "train-labels-idx1-ubyte"},
                                      {"test-images", "t10k-images-idx3-ubyte"}, {"test-labels", "t10k-labels-idx1-ubyte"}};
    char cmd[1024], flags[256];
    int i;
    (void)state;
    snprintf(cmd, sizeof cmd, "mkdir -p %s/gz", tmpdir);
    assert_int_equal(run(cmd), 0);
    for (i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "gzip -9 -c %s/%s > %s/gz/%s.gz", tmpdir, names[i][0], tmpdir, names[i][1]);
        assert_int_equal(run(cmd), 0);
    }
    snprintf(flags, sizeof flags, "--layers 16-12-3 --epochs 2 --batch 16 --lr 0.1 --seed 3");
    data_flags(cmd, sizeof cmd, flags);
    expect(cmd, 0, "test accuracy");
    snprintf(cmd, sizeof cmd, TRAIN " --data %s/gz --out %s/gz.mlp %s", tmpdir, tmpdir, flags);
    expect(cmd, 0, "test accuracy");
    snprintf(cmd, sizeof cmd, "cmp %s/model.mlp %s/gz.mlp", tmpdir, tmpdir);
    expect(cmd, 0, "");
    /* the last 8 bytes (CRC and size) cut off */
    snprintf(cmd, sizeof cmd, "head -c -8 %s/gz/t10k-labels-idx1-ubyte.gz > %s/cut.gz && " TRAIN
             " --data %s/gz --test-labels %s/cut.gz --out %s/cut.mlp %s", tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, flags);
    expect(cmd, 1, "cut.gz: ");
    assert_non_null(strstr(output, "gzip")); /* what it says depends on the bytes that now end the file */
}

/* Not a terminal: no progress bar, no carriage returns or escapes. */
static void test_no_control_characters_in_logs(void **state)
{
    char cmd[1024], conf[128], line[256];
    const char *c;
    FILE *f;
    int rows = 0, sum = 0;
    (void)state;
    snprintf(conf, sizeof conf, "%s/confusion.csv", tmpdir);
    data_flags(cmd, sizeof cmd, "--layers 16-8-3 --epochs 2 --confusion ");
    strcat(cmd, conf);
    expect(cmd, 0, "test accuracy");
    for (c = output; *c; c++) assert_true(*c == '\n' || (*c >= 32 && *c < 127));
    f = fopen(conf, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "true,pred0,pred1,pred2\n");
    while (fgets(line, sizeof line, f)) {
        int t, a, b, d;
        assert_int_equal(sscanf(line, "%d,%d,%d,%d", &t, &a, &b, &d), 4);
        assert_int_equal(t, rows++);
        sum += a + b + d;
    }
    fclose(f);
    assert_int_equal(rows, 3);
    assert_int_equal(sum, 90);
}

/* A diverging run stops at the batch it diverges in and leaves the previous
   model file as it was. */
static void test_divergence_keeps_previous_model(void **state)
{
    char cmd[1024], model[128];
    FILE *f;
    (void)state;
    snprintf(model, sizeof model, "%s/model.mlp", tmpdir);
    data_flags(cmd, sizeof cmd, "--layers 16-8-3 --epochs 1");
    expect(cmd, 0, "model saved");
    f = fopen(model, "rb");
    assert_non_null(f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cp %s %s.before", model, model);
    assert_int_equal(run(cmd), 0);
    data_flags(cmd, sizeof cmd, "--layers 16-8-3 --epochs 3 --lr 1e6 --loss mse");
    expect(cmd, 1, "in epoch 1, batch ");
    assert_non_null(strstr(output, "model.mlp not written"));
    snprintf(cmd, sizeof cmd, "cmp %s %s.before", model, model);
    assert_int_equal(run(cmd), 0);
    /* cross-entropy under ReLU stays finite while it diverges: the watch */
    data_flags(cmd, sizeof cmd, "--layers 16-32-3 --epochs 3 --lr 1e6");
    expect(cmd, 1, "training diverged in epoch 1, batch ");
    assert_non_null(strstr(output, "model.mlp not written"));
    snprintf(cmd, sizeof cmd, "cmp %s %s.before", model, model);
    assert_int_equal(run(cmd), 0);
    data_flags(cmd, sizeof cmd, "--layers 16-32-3 --epochs 1 --diverge-factor 0.01");
    expect(cmd, 1, "over 0.01 times what guessing costs");
    data_flags(cmd, sizeof cmd, "--layers 16-32-3 --epochs 1 --diverge-factor -1");
    expect(cmd, 2, "--diverge-factor -1");
}

/* --save-last-good: a learning rate that grows a millionfold after epoch 1
   diverges in epoch 2; the weights saved are those of a run that stops
   after epoch 1, byte for byte */
static void test_save_last_good(void **state)
{
    char cmd[1024], flags[512];
    (void)state;
    snprintf(flags, sizeof flags, "--layers 16-32-3 --lr 0.01 --lr-decay 1e6 --lr-step 1 --seed 5 --epochs 1 --out %s/one.mlp", tmpdir);
    data_flags(cmd, sizeof cmd, flags);
    expect(cmd, 0, "model saved");
    snprintf(flags, sizeof flags, "--layers 16-32-3 --lr 0.01 --lr-decay 1e6 --lr-step 1 --seed 5 --epochs 4 "
             "--out %s/never.mlp --save-last-good %s/good.mlp", tmpdir, tmpdir);
    data_flags(cmd, sizeof cmd, flags);
    expect(cmd, 1, "diverged in epoch 2");
    assert_non_null(strstr(output, "the weights after epoch 1 saved to"));
    snprintf(cmd, sizeof cmd, "cmp %s/one.mlp %s/good.mlp", tmpdir, tmpdir);
    expect(cmd, 0, "");
    snprintf(cmd, sizeof cmd, "test -e %s/never.mlp", tmpdir);
    assert_int_equal(run(cmd), 1);
}

/* --val holds samples out, early stopping stops and puts back the best
   weights; the log gains val_loss,val_acc at the end */
static void test_validation_and_early_stopping(void **state)
{
    char cmd[1024], log[128], line[512];
    FILE *f;
    (void)state;
    data_flags(cmd, sizeof cmd, "--layers 16-12-3 --epochs 40 --val 60 --patience 2 --min-delta 0.001 --optimizer adam --lr 0.05 --lr-decay 1 --log ");
    snprintf(log, sizeof log, "%s/val.csv", tmpdir);
    strcat(cmd, log);
    expect(cmd, 0, "240 training and 90 test samples");
    if (!strstr(output, "stopping after epoch")) print_error("%s", output);
    assert_non_null(strstr(output, "val loss"));
    assert_non_null(strstr(output, "stopping after epoch"));
    assert_non_null(strstr(output, "restored the weights of epoch"));
    f = fopen(log, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "err2,val_loss,val_acc\n"));
    {   /* the last row describes the restored (saved) model: its epoch is the restored one */
        char last[512] = "";
        int restored = atoi(strstr(output, "restored the weights of epoch ") + 30);
        while (fgets(line, sizeof line, f)) strcpy(last, line);
        assert_int_equal(atoi(last), restored);
    }
    fclose(f);
    data_flags(cmd, sizeof cmd, "--layers 16-3 --val 300");
    expect(cmd, 2, "--val 300 leaves no training samples");
    data_flags(cmd, sizeof cmd, "--layers 16-12-3 --epochs 50 --min-delta 1");
    expect(cmd, 0, "stopping after epoch 2");   /* the seed notes' "improves by less than eps" */
    /* --plateau: no epoch improves by 1, so the rate halves after each one */
    data_flags(cmd, sizeof cmd, "--layers 16-12-3 --epochs 3 --lr 0.08 --lr-decay 1 --min-delta 1 --patience 9 --plateau 1");
    expect(cmd, 0, "no improvement for 1 epochs: learning rate now 0.04");
    assert_non_null(strstr(output, "no improvement for 2 epochs: learning rate now 0.02"));
}

/* --batchnorm end to end: the saved model holds batchnorm layers, and with
   --val the restored weights come with their own running statistics, so
   the model file scores exactly the log's last test_acc. */
static void test_batchnorm_model(void **state)
{
    char cmd[1024], log[128], model[128], line[512], last[512] = "";
    mlp_dataset test;
    mlp_eval ev;
    mlp_net *net;
    FILE *f;
    int l, bn = 0;
    (void)state;
    data_flags(cmd, sizeof cmd, "--layers 16-12-8-3 --batchnorm --epochs 12 --val 60 --lr 0.2 --lr-decay 1 --log ");
    snprintf(log, sizeof log, "%s/bn.csv", tmpdir);
    strcat(cmd, log);
    expect(cmd, 0, "test accuracy");
    snprintf(model, sizeof model, "%s/model.mlp", tmpdir);
    net = mlp_load(model);
    assert_non_null(net);
    for (l = 0; l < net->n_layers; l++) bn += net->layers[l].kind == MLP_LAYER_BATCHNORM;
    assert_int_equal(bn, 2);
    snprintf(cmd, sizeof cmd, "%s/test-images", tmpdir);
    snprintf(line, sizeof line, "%s/test-labels", tmpdir);
    assert_int_equal(mlp_dataset_load(&test, cmd, line), 0);
    assert_int_equal(mlp_evaluate(net, &test, 90, &ev, NULL), 0);
    f = fopen(log, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) strcpy(last, line);
    fclose(f);
    {   /* epoch,train_loss,train_acc,test_loss,test_acc,... */
        const char *p = last;
        int comma;
        for (comma = 0; comma < 4; comma++) p = strchr(p, ',') + 1;
        if (fabs(atof(p) - ev.accuracy) > 1e-6) print_error("log %s model %f\n", last, ev.accuracy);
        assert_true(fabs(atof(p) - ev.accuracy) <= 1e-6);
    }
    mlp_dataset_free(&test);
    mlp_free(net);
}

/* 1 if tmpdir/name exists */
static int exists(const char *name)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (!(f = fopen(path, "rb"))) return 0;
    fclose(f);
    return 1;
}

/* Ctrl-C, made deterministic by --interrupt-after (SIGINT raised after a
   given batch into the real handler): exit 130 and a checkpoint, resumed to
   a model identical byte for byte to an uninterrupted run's, mid-epoch and
   in an epoch's last batch; two SIGINTs exit at once and write nothing.
   300 samples / batch 16 = 19 batches an epoch; batch 25 is epoch 2's 6th. */
/* resumes from tmpdir/CKPT into tmpdir/OUT, which must then equal the
   uninterrupted run's model byte for byte */
static void resume_matches_straight(const char *ckpt, const char *out, const char *says)
{
    char cmd[1024], flags[512];
    snprintf(flags, sizeof flags, "--epochs 3 --resume %s/%s --out %s/%s", tmpdir, ckpt, tmpdir, out);
    data_flags(cmd, sizeof cmd, flags);
    expect(cmd, 0, says);
    snprintf(cmd, sizeof cmd, "cmp %s/straight.mlp %s/%s", tmpdir, tmpdir, out);
    expect(cmd, 0, "");
}

static void test_interrupt_and_resume(void **state)
{
    char cmd[1024], want[512];
    const char *net = "--layers 16-12-3 --epochs 3 --batch 16 --optimizer adam --lr 0.01";
    (void)state;
    snprintf(want, sizeof want, "%s --out %s/straight.mlp", net, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    expect(cmd, 0, "model saved");

    snprintf(want, sizeof want, "%s --out %s/cut.mlp --interrupt-after 25", net, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    snprintf(want, sizeof want, "train_mnist: interrupted in epoch 2 after batch 6; checkpoint saved to %s/cut.mlp.ckpt"
             " (continue with --resume %s/cut.mlp.ckpt)\n", tmpdir, tmpdir);
    expect(cmd, 130, want);
    assert_non_null(strstr(output, "epoch   1  train loss"));
    assert_null(strstr(output, "epoch   2  train loss"));
    assert_true(exists("cut.mlp.ckpt"));
    assert_false(exists("cut.mlp"));
    resume_matches_straight("cut.mlp.ckpt", "cut.mlp", "after epoch 1, batch 6\n");

    /* in the last batch of epoch 1: the epoch is finished, then saved */
    snprintf(want, sizeof want, "%s --out %s/end.mlp --interrupt-after 19", net, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    snprintf(want, sizeof want, "train_mnist: interrupted after epoch 1; checkpoint saved to %s/end.mlp.ckpt\n", tmpdir);
    expect(cmd, 130, want);
    assert_false(exists("end.mlp"));
    resume_matches_straight("end.mlp.ckpt", "end.mlp", "after epoch 1, batch 0\n");

    /* --checkpoint names the file (also written after every epoch) */
    snprintf(want, sizeof want, "%s --out %s/named.mlp --checkpoint %s/named.ckpt --interrupt-after 44", net, tmpdir, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    snprintf(want, sizeof want, "train_mnist: interrupted in epoch 3 after batch 6; checkpoint saved to %s/named.ckpt", tmpdir);
    expect(cmd, 130, want);
    assert_false(exists("named.mlp.ckpt"));
    resume_matches_straight("named.ckpt", "named.mlp", "after epoch 2, batch 6\n");

    /* a second SIGINT right after the first: exit at once */
    snprintf(cmd, sizeof cmd, "cp %s/straight.mlp %s/keep.mlp", tmpdir, tmpdir);
    expect(cmd, 0, "");
    snprintf(want, sizeof want, "%s --out %s/keep.mlp --interrupt-after 5,2", net, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    expect(cmd, 130, "network 16-12-3");
    assert_null(strstr(output, "checkpoint"));
    assert_false(exists("keep.mlp.ckpt"));
    assert_false(exists("keep.mlp.tmp"));
    assert_false(exists("keep.mlp.ckpt.tmp"));
    snprintf(cmd, sizeof cmd, "cmp %s/straight.mlp %s/keep.mlp", tmpdir, tmpdir);
    expect(cmd, 0, "");

    /* beyond the run's last batch: never raised, a normal run */
    snprintf(want, sizeof want, "%s --out %s/late.mlp --interrupt-after 58", net, tmpdir);
    data_flags(cmd, sizeof cmd, want);
    expect(cmd, 0, "model saved");
    snprintf(cmd, sizeof cmd, "cmp %s/straight.mlp %s/late.mlp", tmpdir, tmpdir);
    expect(cmd, 0, "");

    expect(TRAIN " --interrupt-after 0", 2, "--interrupt-after 0: expected N or N,K");
    expect(TRAIN " --interrupt-after 5,3", 2, "--interrupt-after 5,3: expected N or N,K");
    expect(TRAIN " --interrupt-after 5x", 2, "--interrupt-after 5x: expected N or N,K");
    expect(TRAIN " --help", 0, "--interrupt-after N[,K]");
}

/* Early stopping across a resume: with --val, --patience and --plateau a
   run interrupted mid-epoch (twice in the same epoch), and one interrupted
   in an epoch's last batch, end with the uninterrupted run's model byte
   for byte, and their --log files (the interrupted run's rows, then the
   resumed ones') equal its log in every column but seconds. */
#define VAL_NET "--layers 16-12-3 --epochs 9 --batch 16 --optimizer sgd --lr 0.2 --val 60 " \
                "--patience 4 --plateau 1 --plateau-factor 0.5 --min-delta 0.02"

static void same_log_but_seconds(const char *a, const char *b)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cut -d, -f1-6,8- %s/%s > %s/%s.cut && cut -d, -f1-6,8- %s/%s > %s/%s.cut && cmp %s/%s.cut %s/%s.cut",
             tmpdir, a, tmpdir, a, tmpdir, b, tmpdir, b, tmpdir, a, tmpdir, b);
    expect(cmd, 0, "");
}

static void val_run(const char *name, const char *extra, int code, const char *says)
{
    char cmd[2048], flags[1400];
    snprintf(flags, sizeof flags, VAL_NET " --out %s/%s.mlp --log %s/%s.csv %s", tmpdir, name, tmpdir, name, extra);
    data_flags(cmd, sizeof cmd, flags);
    expect(cmd, code, says);
}

static void test_resume_keeps_early_stopping(void **state)
{
    char extra[512], cmd[512];
    const char *names[2] = {"vmid", "vend"};
    int i;
    (void)state;
    val_run("vstraight", "", 0, "model saved");
    /* the run must use what the checkpoint has to carry */
    assert_non_null(strstr(output, "no improvement for 1 epochs: learning rate now"));
    assert_non_null(strstr(output, "restored the weights of epoch"));

    /* 240 training samples: 15 batches an epoch; batch 35 is epoch 3's 5th,
       then 3 more; 30 is epoch 2's last */
    val_run("vmid", "--interrupt-after 35", 130, "interrupted in epoch 3 after batch 5");
    snprintf(extra, sizeof extra, "--resume %s/vmid.mlp.ckpt --interrupt-after 3", tmpdir);
    val_run("vmid", extra, 130, "interrupted in epoch 3 after batch 8");
    val_run("vend", "--interrupt-after 30", 130, "interrupted after epoch 2");
    for (i = 0; i < 2; i++) {
        snprintf(extra, sizeof extra, "--resume %s/%s.mlp.ckpt", tmpdir, names[i]);
        val_run(names[i], extra, 0, "model saved");
        snprintf(cmd, sizeof cmd, "cmp %s/vstraight.mlp %s/%s.mlp", tmpdir, tmpdir, names[i]);
        expect(cmd, 0, "");
        snprintf(cmd, sizeof cmd, "%s.csv", names[i]);
        same_log_but_seconds("vstraight.csv", cmd);
    }
}

int main(void)
{
    const char *bin = getenv("MLP_TRAIN_MNIST");
    if (!bin || !*bin) setenv("MLP_TRAIN_MNIST", "build/train_mnist", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_resume_keeps_early_stopping),
        cmocka_unit_test(test_missing_data),
        cmocka_unit_test(test_mismatched_network),
        cmocka_unit_test(test_trains_and_logs),
        cmocka_unit_test(test_gzipped_data),
        cmocka_unit_test(test_no_control_characters_in_logs),
        cmocka_unit_test(test_divergence_keeps_previous_model),
        cmocka_unit_test(test_save_last_good),
        cmocka_unit_test(test_validation_and_early_stopping),
        cmocka_unit_test(test_batchnorm_model),
        cmocka_unit_test(test_interrupt_and_resume),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
