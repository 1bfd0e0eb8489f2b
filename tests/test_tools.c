/* The picture tools on small inputs made here, checked by reading their
   pictures back (stb_image) and comparing pixels with what the test
   computes itself from the inputs: idx2png writes every pixel of every
   image (exactly at --scale 1, the documented bilinear enlargement
   otherwise, 255 - v with --invert); show_weights draws unit u's weight
   vector in tile u, pixel for pixel in its diverging colours; show_errors
   puts exactly the misclassified digits in its tiles, in order. The gnuplot
   plots are checked for size only. Bad inputs fail with a message. */
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

#define STBI_ONLY_PNG
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  /* stb_image is not ours to lint */
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

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

/* The picture at path decoded to `channels` bytes a pixel (stb_image); the
   number of channels stored in the file in *stored. Fails the test if it is
   not a PNG of w x h. */
static unsigned char *read_png(const char *path, int channels, int w, int h, int stored)
{
    int x, y, n;
    unsigned char *px = stbi_load(path, &x, &y, &n, channels);
    if (!px) fail_msg("%s: not a readable PNG (%s)", path, stbi_failure_reason());
    if (x != w || y != h || n != stored) print_error("%s: %dx%d with %d channels, want %dx%d with %d\n", path, x, y, n, w, h, stored);
    assert_int_equal(x, w);
    assert_int_equal(y, h);
    assert_int_equal(n, stored);
    return px;
}

/* unit u's first-layer weight for pixel (x, y) of a 28x28 input: at most
   half the unit's own size 0.1 (u + 1) either way (0 included), except the
   largest, +size, and the smallest, -0.8 size, each at one pixel off the
   diagonal (a transposed tile cannot pass) */
static float weight_at(int u, int x, int y)
{
    float size = 0.1f * (float)(u + 1);
    uint32_t k = ((uint32_t)(u * 784 + y * 28 + x) + 1u) * 2654435761u;
    if (x == 3 + u && y == 20 - u) return size;
    if (x == 24 - u && y == 5 + u / 2) return -0.8f * size;
    return size * (float)((int)((k >> 16) % 21) - 10) / 20.0f;
}

/* 784-12-10 models of 28x28 images: weights.mlp with weight_at as its
   first layer; three.mlp, all weights 0 and output bias 1 for class 3
   only, which calls every input a 3 */
static int write_models(void)
{
    mlp_net *net = mlp_create_spec("784-12-10", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    mlp_layer *first, *last = NULL;
    int p, u, l;
    if (!net) return -1;
    net->image_w = net->image_h = 28;
    net->input_scale = 1.0f / 255.0f;
    first = &net->layers[0];
    for (p = 0; p < 784; p++)
        for (u = 0; u < 12; u++) first->W[(size_t)p * 12 + u] = weight_at(u, p % 28, p / 28); /* W is n_in x n_out */
    if (mlp_save(net, in_dir("weights.mlp"))) return -1;
    memset(net->params, 0, sizeof(float) * net->n_params);
    for (l = 0; l < net->n_layers; l++) if (net->layers[l].kind == MLP_LAYER_DENSE) last = &net->layers[l];
    last->b[3] = 1.0f;
    if (mlp_save(net, in_dir("three.mlp"))) return -1;
    mlp_free(net);
    return 0;
}

static int setup(void **state)
{
    FILE *f;
    int e, i, j;
    mlp_net *net;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mlp_tools_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    if (write_models() != 0) return -1;
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
    (void)state;
    return remove_tree(dir);
}

/* show_weights' picture of weights.mlp: tiles of 28 zoom x 28 zoom in rows
   of `cols`, 2-pixel grey frames; every pixel of unit u's tile in the
   colour its weight should have: the unit's weights divided by their
   largest magnitude, v, drawn red (255, g, g) if v >= 0 and blue (g, g, 255)
   if v < 0, g = 255 (1 - |v|) (white at 0, pure red at the largest weight).
   Tiles past the last unit are frame. */
static void check_weights_png(const char *path, int units, int cols, int rows, int zoom)
{
    int side = 28 * zoom + 2, w = cols * side + 2, h = rows * side + 2, x, y, bad = 0;
    unsigned char *px = read_png(path, 3, w, h, 3);
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            const unsigned char *c = px + ((size_t)y * w + x) * 3;
            int tx = (x - 2) % side, ty = (y - 2) % side, u = (y - 2) / side * cols + (x - 2) / side, ok;
            if (x < 2 || y < 2 || tx >= 28 * zoom || ty >= 28 * zoom || u >= units) {
                ok = c[0] == c[1] && c[1] == c[2] && c[0] < 128; /* frame: dark grey */
            } else {
                float v = weight_at(u, tx / zoom, ty / zoom) / (0.1f * (float)(u + 1));
                int g = (int)(255.0f * (1.0f - fabsf(v)));
                ok = abs(c[1] - g) <= 1 && (v >= 0 ? c[0] == 255 && c[2] == c[1] : c[2] == 255 && c[0] == c[1]);
            }
            if (!ok && bad++ < 5)
                print_error("%s (%d, %d), unit %d: rgb %d %d %d\n", path, x, y, u < units ? u : -1, c[0], c[1], c[2]);
        }
    stbi_image_free(px);
    assert_int_equal(bad, 0);
}

static void test_show_weights(void **state)
{
    char cmd[512];
    unsigned char *px;
    int u;
    (void)state;
    snprintf(cmd, sizeof cmd, "build/show_weights --zoom 2 %s %s", in_dir("weights.mlp"), in_dir("w.png"));
    assert_int_equal(run(cmd), 0);
    check_weights_png(in_dir("w.png"), 12, 4, 3, 2); /* 12 units: 4 x 3 grid */
    px = read_png(in_dir("w.png"), 3, 4 * 58 + 2, 3 * 58 + 2, 3);
    for (u = 0; u < 12; u++) { /* in so many words: pure red at the largest weight, most blue at the smallest */
        int ox = 2 + u % 4 * 58, oy = 2 + u / 4 * 58;
        const unsigned char *hi = px + ((size_t)(oy + 2 * (20 - u)) * (4 * 58 + 2) + ox + 2 * (3 + u)) * 3;
        const unsigned char *lo = px + ((size_t)(oy + 2 * (5 + u / 2)) * (4 * 58 + 2) + ox + 2 * (24 - u)) * 3;
        assert_true(hi[0] == 255 && hi[1] == 0 && hi[2] == 0);
        assert_true(lo[2] == 255 && lo[0] == lo[1] && abs(lo[0] - 51) <= 1);
    }
    stbi_image_free(px);
    snprintf(cmd, sizeof cmd, "build/show_weights --max 5 %s %s", in_dir("weights.mlp"), in_dir("w5.png"));
    assert_int_equal(run(cmd), 0);
    check_weights_png(in_dir("w5.png"), 5, 3, 2, 3); /* 5 units: 3 x 2 grid, default zoom 3 */
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

/* Two images 4 wide and 3 high (not square: a transposed picture cannot
   pass), every byte different, 0 and 255 among them. */
#define IW 4
#define IH 3
static const unsigned char idx_pixels[2][IH * IW] = {
    {0, 255, 17, 200, 34, 91, 128, 7, 250, 63, 180, 1},
    {254, 2, 99, 140, 45, 222, 12, 167, 76, 111, 240, 30}};

/* idx2png's pixel (x, y) of image k enlarged s times, as documented:
   bilinear, output pixel centres mapped back to the source ((x + 0.5) / s
   - 0.5) and held at the edges, rounded to the nearest value; 255 - that
   with --invert. At s = 1, the byte itself. For an odd s the value is a
   multiple of 1 / s^2, never half-way between two integers: no ties to
   round either way. */
static int idx2png_pixel(int k, int s, int invert, int x, int y)
{
    const unsigned char *src = idx_pixels[k];
    double fx = (x + 0.5) / s - 0.5, fy = (y + 0.5) / s - 0.5, tx, ty, v;
    int x0, y0, x1, y1, r;
    fx = fx < 0 ? 0 : fx > IW - 1 ? IW - 1 : fx;
    fy = fy < 0 ? 0 : fy > IH - 1 ? IH - 1 : fy;
    x0 = (int)floor(fx); y0 = (int)floor(fy);
    x1 = x0 + 1 < IW ? x0 + 1 : x0; y1 = y0 + 1 < IH ? y0 + 1 : y0;
    tx = fx - x0; ty = fy - y0;
    v = (1 - ty) * ((1 - tx) * src[y0 * IW + x0] + tx * src[y0 * IW + x1]) +
        ty * ((1 - tx) * src[y1 * IW + x0] + tx * src[y1 * IW + x1]);
    r = (int)floor(v + 0.5);
    return invert ? 255 - r : r;
}

/* every pixel of sub/name, a grey PNG, is image k's as idx2png should draw it */
static void check_idx2png(const char *sub, const char *name, int k, int s, int invert)
{
    char path[256];
    unsigned char *px;
    int x, y, bad = 0;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    px = read_png(path, 1, IW * s, IH * s, 1);
    for (y = 0; y < IH * s; y++)
        for (x = 0; x < IW * s; x++) {
            int want = idx2png_pixel(k, s, invert, x, y);
            if (px[y * IW * s + x] != want && bad++ < 5)
                print_error("%s (%d, %d): %d, want %d\n", path, x, y, px[y * IW * s + x], want);
        }
    stbi_image_free(px);
    assert_int_equal(bad, 0);
}

static void test_idx2png(void **state)
{
    static const struct { const char *sub, *flags; int s, invert; } runs[] = {
        {"s1", "", 1, 0}, {"s1i", "--invert", 1, 1}, {"s3", "--scale 3", 3, 0}, {"s3i", "--invert --scale 3", 3, 1}};
    char cmd[512], name[32];
    int r, k;
    FILE *f;
    (void)state;
    f = fopen(in_dir("img.idx"), "wb"); /* 2 images of 3 x 4 */
    fwrite("\0\0\x08\x03\0\0\0\x02\0\0\0\x03\0\0\0\x04", 1, 16, f);
    fwrite(idx_pixels, 1, sizeof idx_pixels, f);
    fclose(f);
    f = fopen(in_dir("lab.idx"), "wb");
    fwrite("\0\0\x08\x01\0\0\0\x02\x07\x02", 1, 10, f);
    fclose(f);
    for (r = 0; r < 4; r++) {
        snprintf(cmd, sizeof cmd, "mkdir %s/%s && build/idx2png %s %s %s/%s", dir, runs[r].sub, runs[r].flags,
                 in_dir("img.idx"), dir, runs[r].sub);
        assert_int_equal(run(cmd), 0);
        for (k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%05d.png", k);
            check_idx2png(runs[r].sub, name, k, runs[r].s, runs[r].invert);
        }
    }
    /* labels in the names; --first and --count pick image 1 alone */
    snprintf(cmd, sizeof cmd, "mkdir %s/s5i && build/idx2png --labels %s --first 1 --count 1 --scale 5 --invert %s %s/s5i",
             dir, in_dir("lab.idx"), in_dir("img.idx"), dir);
    assert_int_equal(run(cmd), 0);
    check_idx2png("s5i", "00001-label2.png", 1, 5, 1);
    snprintf(cmd, sizeof cmd, "ls %s/s5i", dir);
    assert_int_equal(run(cmd), 0);
    assert_string_equal(output, "00001-label2.png\n");
    snprintf(cmd, sizeof cmd, "build/idx2png --scale 99 %s %s", in_dir("img.idx"), dir);
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof cmd, "build/idx2png --first 1 --count 2 %s %s", in_dir("img.idx"), dir);
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "only 2 images"));
    snprintf(cmd, sizeof cmd, "build/idx2png %s %s", in_dir("conf.csv"), dir);
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "bad magic"));
}

/* show_errors' montage: 16 tiles a row, each 56 x 56 (the digit, 2 x 2
   pixels a source pixel, grey) over a 14-pixel strip with "true>predicted"
   (true in green, predicted in red), 2-pixel black gaps. Tile k must hold
   digit wrong[k] exactly; tiles after the n-th are black. */
static void check_error_tiles(const char *path, const unsigned char *digits, const int *wrong, int n, int rows)
{
    int w = 16 * 58 + 2, h = rows * 72 + 2, k, x, y, bad = 0;
    unsigned char *px = read_png(path, 3, w, h, 3);
    for (k = 0; k < 16 * rows; k++) {
        int ox = 2 + k % 16 * 58, oy = 2 + k / 16 * 72, green = 0, red = 0;
        for (y = 0; y < 56; y++)
            for (x = 0; x < 56; x++) {
                const unsigned char *c = px + ((size_t)(oy + y) * w + ox + x) * 3;
                int want = k < n ? digits[wrong[k] * 784 + y / 2 * 28 + x / 2] : 0;
                if ((c[0] != want || c[1] != want || c[2] != want) && bad++ < 5)
                    print_error("%s tile %d (%d, %d): rgb %d %d %d, want grey %d\n", path, k, x, y, c[0], c[1], c[2], want);
            }
        for (y = 56; y < 70; y++)
            for (x = 0; x < 56; x++) {
                const unsigned char *c = px + ((size_t)(oy + y) * w + ox + x) * 3;
                green += c[0] == 120 && c[1] == 230 && c[2] == 120;
                red += c[0] == 250 && c[1] == 110 && c[2] == 110;
            }
        if ((k < n) != (green > 0) || (k < n) != (red > 0)) {
            print_error("%s tile %d: %d green and %d red label pixels\n", path, k, green, red);
            bad++;
        }
    }
    stbi_image_free(px);
    assert_int_equal(bad, 0);
}

/* 20 random 28x28 "digits" labelled 0-9, 0-9, and a model that calls
   everything a 3: all but digits 3 and 13 are wrong, in this order. */
static void test_show_errors(void **state)
{
    static const int wrong[18] = {0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19};
    static unsigned char digits[20 * 784];
    char cmd[512];
    int i;
    FILE *f;
    mlp_rng rng;
    (void)state;
    mlp_rng_seed(&rng, 5, 5);
    for (i = 0; i < 20 * 784; i++) digits[i] = (unsigned char)mlp_rng_below(&rng, 256);
    f = fopen(in_dir("t10k-images-idx3-ubyte"), "wb");
    fwrite("\0\0\x08\x03\0\0\0\x14\0\0\0\x1c\0\0\0\x1c", 1, 16, f);
    fwrite(digits, 1, sizeof digits, f);
    fclose(f);
    f = fopen(in_dir("t10k-labels-idx1-ubyte"), "wb");
    fwrite("\0\0\x08\x01\0\0\0\x14", 1, 8, f);
    for (i = 0; i < 20; i++) fputc(i % 10, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "build/show_errors --data %s --max 5 %s %s", dir, in_dir("three.mlp"), in_dir("e.png"));
    assert_int_equal(run(cmd), 0);
    assert_non_null(strstr(output, "5 misclassified test digits (of the first 6)"));
    check_error_tiles(in_dir("e.png"), digits, wrong, 5, 1);
    snprintf(cmd, sizeof cmd, "build/show_errors --data %s %s %s", dir, in_dir("three.mlp"), in_dir("e18.png"));
    assert_int_equal(run(cmd), 0);
    assert_non_null(strstr(output, "18 misclassified test digits (of the first 20)"));
    check_error_tiles(in_dir("e18.png"), digits, wrong, 18, 2);
    snprintf(cmd, sizeof cmd, "build/show_errors --data %s/nowhere %s %s", dir, in_dir("three.mlp"), in_dir("e.png"));
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
