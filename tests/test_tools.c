/* The picture tools on a small model and log made here: each writes a valid
   PNG of the expected size, and bad inputs fail with a message. */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"
#include "run.h"

static char dir[64];

static const char *in_dir(const char *name)
{
    static char p[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}


/* 1 if path is a PNG; its size from the IHDR chunk */
static int png_size(const char *path, int *w, int *h)
{
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    int ok;
    if (!f) return 0;
    ok = fread(b, 1, 24, f) == 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4);
    fclose(f);
    *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
    *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
    return ok;
}

static int setup(void **state)
{
    FILE *f;
    int e, i, j;
    mlp_net *net = mlp_create_spec("784-12-10", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mlp_tools_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    net->image_w = net->image_h = 28;
    net->input_scale = 1.0f / 255.0f;
    if (mlp_save(net, in_dir("model.mlp"))) return -1;
    mlp_free(net);
    net = mlp_create_spec("5-3", MLP_ACT_RELU, MLP_LOSS_CE, 2); /* not an image model */
    if (mlp_save(net, in_dir("flat.mlp"))) return -1;
    mlp_free(net);
    f = fopen(in_dir("log.csv"), "w");
    fprintf(f, "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds");
    for (j = 0; j < 10; j++) fprintf(f, ",err%d", j);
    fprintf(f, "\n");
    for (e = 1; e <= 4; e++) {
        fprintf(f, "%d,%f,%f,%f,%f,0.05,1.0", e, 1.0 / e, 1 - 0.1 / e, 1.1 / e, 1 - 0.12 / e);
        for (j = 0; j < 10; j++) fprintf(f, ",%d", 40 / e + j);
        fprintf(f, "\n");
    }
    fclose(f);
    f = fopen(in_dir("conf.csv"), "w");
    fprintf(f, "true");
    for (j = 0; j < 10; j++) fprintf(f, ",pred%d", j);
    fprintf(f, "\n");
    for (i = 0; i < 10; i++) {
        fprintf(f, "%d", i);
        for (j = 0; j < 10; j++) fprintf(f, ",%d", i == j ? 900 + i : (i + j) % 4);
        fprintf(f, "\n");
    }
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_show_weights(void **state)
{
    char cmd[512];
    int w, h;
    (void)state;
    snprintf(cmd, sizeof cmd, "build/show_weights --zoom 2 %s %s", in_dir("model.mlp"), in_dir("w.png"));
    assert_int_equal(run(cmd), 0);
    assert_true(png_size(in_dir("w.png"), &w, &h));
    assert_int_equal(w, 4 * (28 * 2 + 2) + 2); /* 12 units: 4 x 3 grid */
    assert_int_equal(h, 3 * (28 * 2 + 2) + 2);
    snprintf(cmd, sizeof cmd, "build/show_weights %s %s", in_dir("flat.mlp"), in_dir("x.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "not an image"));
    snprintf(cmd, sizeof cmd, "build/show_weights %s %s", in_dir("log.csv"), in_dir("x.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "not an mlp.h model file"));
    assert_int_equal(run("build/show_weights"), 2);
    assert_int_equal(run("build/show_weights --help"), 0);
}

static void test_plot_training(void **state)
{
    char cmd[512];
    int w, h;
    (void)state;
    snprintf(cmd, sizeof cmd, "tools/plot_training %s %s %s", in_dir("log.csv"), in_dir("log.csv"), in_dir("p"));
    assert_int_equal(run(cmd), 0);
    assert_true(png_size(in_dir("p-loss.png"), &w, &h));
    assert_true(w == 900 && h == 560);
    assert_true(png_size(in_dir("p-accuracy.png"), &w, &h));
    assert_true(png_size(in_dir("p-digits.png"), &w, &h));
    snprintf(cmd, sizeof cmd, "tools/plot_training %s %s", in_dir("conf.csv"), in_dir("q"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "not a train_mnist --log file"));
    snprintf(cmd, sizeof cmd, "tools/plot_training %s/missing.csv %s", dir, in_dir("q"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "cannot read"));
    assert_int_equal(run("tools/plot_training"), 2);
}

static void test_plot_confusion(void **state)
{
    char cmd[512];
    int w, h;
    (void)state;
    snprintf(cmd, sizeof cmd, "tools/plot_confusion %s %s", in_dir("conf.csv"), in_dir("c.png"));
    assert_int_equal(run(cmd), 0);
    assert_true(png_size(in_dir("c.png"), &w, &h));
    assert_true(w == 720 && h == 640);
    snprintf(cmd, sizeof cmd, "tools/plot_confusion %s %s", in_dir("log.csv"), in_dir("c2.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "not a train_mnist --confusion file"));
}

static void test_idx2png(void **state)
{
    char cmd[512];
    int w, h;
    FILE *f;
    (void)state;
    f = fopen(in_dir("img.idx"), "wb"); /* 2 images of 3 x 4 */
    fwrite("\0\0\x08\x03\0\0\0\x02\0\0\0\x03\0\0\0\x04", 1, 16, f);
    fwrite("abcdefghijklmnopqrstuvwx", 1, 24, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "build/idx2png --scale 3 --invert %s %s", in_dir("img.idx"), dir);
    assert_int_equal(run(cmd), 0);
    assert_true(png_size(in_dir("00001.png"), &w, &h));
    assert_true(w == 12 && h == 9);
    snprintf(cmd, sizeof cmd, "build/idx2png --scale 99 %s %s", in_dir("img.idx"), dir);
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof cmd, "build/idx2png %s %s", in_dir("conf.csv"), dir);
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "bad magic"));
}

/* 20 random 28x28 "digits" with labels: an untrained model gets most wrong */
static void test_show_errors(void **state)
{
    char cmd[512];
    int w, h, i;
    FILE *f;
    mlp_rng rng;
    (void)state;
    mlp_rng_seed(&rng, 5, 5);
    f = fopen(in_dir("t10k-images-idx3-ubyte"), "wb");
    fwrite("\0\0\x08\x03\0\0\0\x14\0\0\0\x1c\0\0\0\x1c", 1, 16, f);
    for (i = 0; i < 20 * 784; i++) fputc((int)mlp_rng_below(&rng, 256), f);
    fclose(f);
    f = fopen(in_dir("t10k-labels-idx1-ubyte"), "wb");
    fwrite("\0\0\x08\x01\0\0\0\x14", 1, 8, f);
    for (i = 0; i < 20; i++) fputc(i % 10, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "build/show_errors --data %s --max 5 %s %s", dir, in_dir("model.mlp"), in_dir("e.png"));
    assert_int_equal(run(cmd), 0);
    assert_non_null(strstr(output, "5 misclassified"));
    assert_true(png_size(in_dir("e.png"), &w, &h));
    assert_int_equal(w, 16 * (56 + 2) + 2);
    assert_int_equal(h, 56 + 14 + 2 + 2);
    snprintf(cmd, sizeof cmd, "build/show_errors --data %s/nowhere %s %s", dir, in_dir("model.mlp"), in_dir("e.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_weights),
        cmocka_unit_test(test_plot_training),
        cmocka_unit_test(test_plot_confusion),
        cmocka_unit_test(test_idx2png),
        cmocka_unit_test(test_show_errors),
    };
    return cmocka_run_group_tests_name("tools", tests, setup, teardown);
}
