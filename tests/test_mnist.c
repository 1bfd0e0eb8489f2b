/* Integration on the real MNIST. The default network, 2 epochs, must reach
   97% test accuracy (measured: 0.9765); then, through the PNG path users
   take: 1000 test images exported with idx2png and read by classify --raw
   give exactly the predictions of the IDX path, and the same images
   inverted (dark on white) and enlarged to 140x140 are classified 97% right
   without --raw. Also checks MNIST's mean centre of mass and stroke widths,
   which preprocessing aligns to, and that Ctrl-C (train_mnist
   --interrupt-after) stops with a checkpoint that resumes to the
   uninterrupted model. Needs build/idx2png, build/classify and
   build/train_mnist ($MLP_TRAIN_MNIST overrides the last). Data from
   tools/fetch_mnist.sh (dir: $MLP_MNIST_DIR or data/mnist). Skipped when
   the data is absent, unless MLP_REQUIRE_MNIST=1 (as in CI), which turns
   absence into a failure. */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define N_PNG 1000

/* runs classify --json over the PNGs in dir; digits[i] gets the prediction for
   test image i (-1 if missing); returns how many were right */
static int classify_dir(const char *model, const char *dir, const char *flags, int *digits)
{
    char cmd[2048], line[1024];
    int right = 0, i;
    FILE *p;
    snprintf(cmd, sizeof cmd, "build/classify --json %s %s %s/*.png", flags, model, dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (i = 0; i < N_PNG; i++) digits[i] = -1;
    while (fgets(line, sizeof line, p)) {
        const char *name = strstr(line, "-label"), *d = strstr(line, "\"digit\":");
        int index, label;
        assert_non_null(name);
        assert_non_null(d);
        index = atoi(name - 5);
        label = atoi(name + 6);
        assert_true(index >= 0 && index < N_PNG);
        digits[index] = atoi(d + 8);
        right += digits[index] == label;
    }
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    return right;
}

/* digit i of the test set (0..1, white on black) drawn into a w x h canvas:
   scaled s times (bilinear), top-left at (ox, oy), optionally inverted, or
   as dark ink with alpha on a transparent background (2 channels) */
static float *variant(const mlp_dataset *test, int i, int w, int h, int s, int ox, int oy, int invert, int alpha)
{
    int ch = alpha ? 2 : 1, x, y;
    float *img = calloc((size_t)w * h * ch, sizeof(float));
    const float *d = test->x + (size_t)i * 784;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            float fx = (x - ox + 0.5f) / s - 0.5f, fy = (y - oy + 0.5f) / s - 0.5f, v = 0.0f;
            if (fx >= 0 && fy >= 0 && fx <= 27 && fy <= 27) {
                int x0 = (int)fx, y0 = (int)fy, x1 = x0 < 27 ? x0 + 1 : x0, y1 = y0 < 27 ? y0 + 1 : y0;
                float tx = fx - x0, ty = fy - y0;
                v = (1 - ty) * ((1 - tx) * d[y0 * 28 + x0] + tx * d[y0 * 28 + x1]) + ty * ((1 - tx) * d[y1 * 28 + x0] + tx * d[y1 * 28 + x1]);
            }
            if (alpha) { img[2 * (y * w + x)] = 0.1f; img[2 * (y * w + x) + 1] = v; }
            else img[y * w + x] = invert ? 1.0f - v : v;
        }
    return img;
}

static int predict_pixels(mlp_net *net, const float *px, int w, int h, int ch)
{
    float raw[784], x[784];
    const float *p;
    int k, best = 0;
    /* a digit whose ink reaches the edge of its 28x28 field may be refused
       as cut when it is drawn without a margin: -1, counted as a change */
    if (mlp_digit_preprocess(px, w, h, ch, raw) != 0) return -1;
    mlp_normalize_input(net, raw, x);
    p = mlp_predict(net, x, 1);
    for (k = 1; k < 10; k++) if (p[k] > p[best]) best = k;
    return best;
}

/* The same digit moved, enlarged 3x, inverted, or given an alpha channel is
   read as the same digit (at least 97% of 300 digits for each change). */
static void check_invariance(mlp_net *net, const mlp_dataset *test)
{
    int i, same[4] = {0, 0, 0, 0}, k;
    for (i = 0; i < 300; i++) {
        float *base = variant(test, i, 28, 28, 1, 0, 0, 0, 0), *v;
        int want = predict_pixels(net, base, 28, 28, 1);
        free(base);
        v = variant(test, i, 90, 70, 1, 50, 7, 0, 0); same[0] += predict_pixels(net, v, 90, 70, 1) == want; free(v);
        v = variant(test, i, 100, 100, 3, 8, 10, 0, 0); same[1] += predict_pixels(net, v, 100, 100, 1) == want; free(v);
        v = variant(test, i, 28, 28, 1, 0, 0, 1, 0); same[2] += predict_pixels(net, v, 28, 28, 1) == want; free(v);
        v = variant(test, i, 40, 40, 1, 6, 6, 0, 1); same[3] += predict_pixels(net, v, 40, 40, 2) == want; free(v);
    }
    print_message("same prediction when moved %d/300, enlarged 3x %d/300, inverted %d/300, alpha %d/300\n",
                  same[0], same[1], same[2], same[3]);
    for (k = 0; k < 4; k++) assert_true(same[k] >= 291);
}

static void check_png_path(mlp_net *net, const mlp_dataset *test, const char *images, const char *labels)
{
    char dir[64], model[128], cmd[4096];
    int raw_digits[N_PNG], inv_digits[N_PNG], i, right;
    snprintf(dir, sizeof dir, "/tmp/mlp_mnist_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/model.mlp", dir);
    assert_int_equal(mlp_save(net, model), 0);
    snprintf(cmd, sizeof cmd, "mkdir %s/raw %s/inv && build/idx2png --labels %s --count %d %s %s/raw && "
             "build/idx2png --labels %s --count %d --invert --scale 5 %s %s/inv",
             dir, dir, labels, N_PNG, images, dir, labels, N_PNG, images, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/raw", dir);
    classify_dir(model, cmd, "--raw", raw_digits);
    for (i = 0; i < N_PNG; i++) {
        const float *p = mlp_predict(net, test->x + (size_t)i * test->dim, 1);
        int k, best = 0;
        for (k = 1; k < 10; k++) if (p[k] > p[best]) best = k;
        if (raw_digits[i] != best) print_error("image %d: PNG --raw says %d, IDX path %d\n", i, raw_digits[i], best);
        assert_int_equal(raw_digits[i], best);
    }
    snprintf(cmd, sizeof cmd, "%s/inv", dir);
    right = classify_dir(model, cmd, "", inv_digits);
    print_message("PNG path: %d/%d --raw identical to IDX; inverted 140x140: %d/%d right\n", N_PNG, N_PNG, right, N_PNG);
    assert_true(right >= 0.97 * N_PNG);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_mnist_centre_of_mass(void **state)
{
    const char *dir = getenv("MLP_MNIST_DIR");
    char path[512];
    mlp_idx idx;
    double sx = 0, sy = 0;
    size_t i;
    int x, y;
    (void)state;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir ? dir : "data/mnist");
    if (mlp_idx_load(&idx, path) != 0) skip();
    for (i = 0; i < idx.dims[0]; i++) {
        const float *img = idx.data + i * 784;
        double m = 0, mx = 0, my = 0;
        for (y = 0; y < 28; y++) for (x = 0; x < 28; x++) { m += img[y * 28 + x]; mx += img[y * 28 + x] * x; my += img[y * 28 + x] * y; }
        sx += mx / m; sy += my / m;
    }
    sx /= idx.dims[0]; sy /= idx.dims[0];
    assert_true(fabs(sx - MLP__MNIST_COM_X) < 0.02 && fabs(sy - MLP__MNIST_COM_Y) < 0.02);
    mlp_idx_free(&idx);
}

/* MLP__STROKE_LOW/HIGH/TARGET come from MNIST's own stroke widths through
   the preprocessing page (each of 5000 training digits as a dark-on-white
   28x28 picture): the median must be near the target and at least 90% of
   MNIST must lie inside the band, or MNIST-style pictures would be redrawn. */
static void test_mnist_stroke_width(void **state)
{
    const char *dir = getenv("MLP_MNIST_DIR");
    char path[512];
    mlp_idx idx;
    int i, k, n = 0, inside = 0, below_target = 0;
    (void)state;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir ? dir : "data/mnist");
    if (mlp_idx_load(&idx, path) != 0) skip();
    for (i = 0; i < 5000; i++) {
        float px[784];
        mlp__page p;
        mlp__component *c = NULL;
        int box[4], b[4], count;
        for (k = 0; k < 784; k++) px[k] = 1.0f - idx.data[(size_t)i * 784 + k] / 255.0f;
        if (mlp__page_make(&p, px, 28, 28, 1, NULL, NULL) != 0) continue;
        count = mlp__find_components(&p, &c);
        if (count > 0 && mlp__select_digit(c, count, box)) {
            float s;
            mlp__digit_ink(p.gray, &p, c, box, p.dist);
            mlp__ink_box(p.gray, p.w, p.h, b);
            s = mlp__stroke_width(p.gray, p.w, b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1, p.dist) /
                (float)(b[2] - b[0] > b[3] - b[1] ? b[2] - b[0] + 1 : b[3] - b[1] + 1);
            n++;
            inside += s >= MLP__STROKE_LOW && s <= MLP__STROKE_HIGH;
            below_target += s < MLP__STROKE_TARGET;
        }
        MLP_FREE(c);
        mlp__page_free(&p);
    }
    mlp_idx_free(&idx);
    print_message("MNIST stroke widths: %d/%d inside the band, %d below the target\n", inside, n, below_target);
    assert_true(n > 4900);
    assert_true(inside >= 0.9 * n);
    assert_true(below_target >= 0.4 * n && below_target <= 0.65 * n); /* the target is near the median */
}

/* runs a shell command quietly; its exit status */
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* 1 if the file exists */
static int exists(const char *dir, const char *name)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "rb"))) return 0;
    fclose(f);
    return 1;
}

/* Ctrl-C through the real program: exit 130 with a checkpoint, and resuming
   it gives the same model file, byte for byte, as a run that was never
   interrupted, both mid-epoch and in an epoch's last batch (training goes
   on to the epoch's end there). A second Ctrl-C exits at once: no
   checkpoint, the existing --out file unchanged, no temporary left behind.
   The SIGINTs come from train_mnist --interrupt-after, raised after a given
   batch into the real signal handler: no timer, no race with the training
   speed. 60000 / 64 = 938 batches an epoch; batch 1000 is epoch 2's 62nd. */
static void test_ctrl_c_and_resume(void **state)
{
    const char *dir = getenv("MLP_MNIST_DIR"), *bin = getenv("MLP_TRAIN_MNIST");
    char cmd[4096], t[64], r[1024];
    FILE *f;
    (void)state;
    if (!dir) dir = "data/mnist";
    if (!bin || !*bin) bin = "build/train_mnist";
    snprintf(cmd, sizeof cmd, "%s/t10k-labels-idx1-ubyte", dir);
    if (!(f = fopen(cmd, "rb"))) skip();
    fclose(f);
    snprintf(t, sizeof t, "/tmp/mlp_resume_XXXXXX");
    assert_non_null(mkdtemp(t));
    snprintf(r, sizeof r, "%s --data %s --quiet --epochs 3 --layers 784-64-10", bin, dir);
    assert_int_equal(sh("%s --out %s/straight.mlp > /dev/null", r, t), 0);

    /* mid-epoch: stops after epoch 2's batch 62 */
    assert_int_equal(sh("%s --out %s/cut.mlp --interrupt-after 1000 > %s/cut.log 2>&1", r, t, t), 130);
    assert_int_equal(sh("grep -qF 'interrupted in epoch 2 after batch 62; checkpoint saved to %s/cut.mlp.ckpt' %s/cut.log", t, t), 0);
    assert_true(exists(t, "cut.mlp.ckpt"));
    assert_false(exists(t, "cut.mlp"));
    assert_int_equal(sh("%s --resume %s/cut.mlp.ckpt --out %s/cut.mlp > %s/resume.log", r, t, t, t), 0);
    assert_int_equal(sh("grep -q '^resuming .* after epoch 1, batch 62$' %s/resume.log", t), 0);
    assert_int_equal(sh("cmp %s/straight.mlp %s/cut.mlp", t, t), 0);

    /* in the last batch of epoch 1: the epoch completes, then the checkpoint */
    assert_int_equal(sh("%s --out %s/end.mlp --interrupt-after 938 > %s/end.log 2>&1", r, t, t), 130);
    assert_int_equal(sh("grep -qF 'interrupted after epoch 1; checkpoint saved to %s/end.mlp.ckpt' %s/end.log", t, t), 0);
    assert_int_equal(sh("%s --resume %s/end.mlp.ckpt --out %s/end.mlp > /dev/null", r, t, t), 0);
    assert_int_equal(sh("cmp %s/straight.mlp %s/end.mlp", t, t), 0);

    /* two SIGINTs at once: exit 130 at once, nothing written */
    assert_int_equal(sh("cp %s/straight.mlp %s/keep.mlp", t, t), 0);
    assert_int_equal(sh("%s --out %s/keep.mlp --interrupt-after 500,2 > %s/keep.log 2>&1", r, t, t), 130);
    assert_int_equal(sh("grep -q 'checkpoint saved' %s/keep.log", t), 1);
    assert_false(exists(t, "keep.mlp.ckpt"));
    assert_false(exists(t, "keep.mlp.tmp"));
    assert_false(exists(t, "keep.mlp.ckpt.tmp"));
    assert_int_equal(sh("cmp %s/straight.mlp %s/keep.mlp", t, t), 0);
    assert_int_equal(sh("rm -rf %s", t), 0);
}

static void test_mnist_two_epochs(void **state)
{
    const char *dir = getenv("MLP_MNIST_DIR"), *require = getenv("MLP_REQUIRE_MNIST");
    char p[4][512];
    mlp_dataset train, test;
    mlp_train_config cfg = mlp_train_defaults();
    mlp_eval ev;
    mlp_net *net;
    int epoch;
    (void)state;
    memset(&ev, 0, sizeof ev);
    if (!dir) dir = "data/mnist";
    snprintf(p[0], sizeof p[0], "%s/train-images-idx3-ubyte", dir);
    snprintf(p[1], sizeof p[1], "%s/train-labels-idx1-ubyte", dir);
    snprintf(p[2], sizeof p[2], "%s/t10k-images-idx3-ubyte", dir);
    snprintf(p[3], sizeof p[3], "%s/t10k-labels-idx1-ubyte", dir);
    if (mlp_dataset_load(&train, p[0], p[1]) != 0) {
        if (require && *require == '1') fail_msg("MNIST required but not loadable: %s", mlp_error());
        print_message("MNIST not found (%s); run tools/fetch_mnist.sh. Skipping.\n", mlp_error());
        skip();
    }
    assert_int_equal(mlp_dataset_load(&test, p[2], p[3]), 0);
    assert_int_equal(train.n, 60000);
    assert_int_equal(test.n, 10000);
    assert_int_equal(train.n_classes, 10);
    cfg.lr_decay = 0.3f; /* 0.05 then 0.015: settles in two epochs */
    cfg.lr_step = 1;
    net = mlp_create_spec("784-256-128-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_non_null(net);
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(net, &train, &cfg, epoch, NULL), 0);
    assert_int_equal(mlp_evaluate(net, &test, 500, &ev, NULL), 0);
    print_message("MNIST 784-256-128-10, 2 epochs: test accuracy %.4f\n", ev.accuracy);
    assert_true(ev.accuracy >= 0.97);
    net->image_w = net->image_h = 28;
    net->input_scale = train.scale;
    check_png_path(net, &test, p[2], p[3]);
    check_invariance(net, &test);
    mlp_free(net);
    mlp_dataset_free(&train);
    mlp_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mnist_two_epochs),
        cmocka_unit_test(test_mnist_centre_of_mass),
        cmocka_unit_test(test_mnist_stroke_width),
        cmocka_unit_test(test_ctrl_c_and_resume),
    };
    return cmocka_run_group_tests_name("mnist", tests, NULL, NULL);
}
