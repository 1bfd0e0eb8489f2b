/* classify as a user meets it: every PNG colour type and bit depth gives the
   prediction the library gives for the same pixels; missing, non-PNG,
   truncated, oversized and blank files each get a message naming the file
   while the other files are still classified; exit codes 0 / 1 / 2.
   Needs build/classify (or $MLP_CLASSIFY). */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp, setenv */
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

#define CLASSIFY "$MLP_CLASSIFY"
static char dir[64], model_path[128];


static const char *in_dir(const char *name)
{
    static char p[16][256];
    static int k;
    k = (k + 1) % 16;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* -- a minimal PNG writer (stored deflate blocks), enough for 16-bit and
      palette images, which stb_image_write does not produce -- */
static void put32be(FILE *f, uint32_t v) { fputc((int)(v >> 24), f); fputc((int)(v >> 16) & 255, f); fputc((int)(v >> 8) & 255, f); fputc((int)v & 255, f); }

static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char *buf = malloc(n + 4);
    memcpy(buf, type, 4);
    if (n) memcpy(buf + 4, data, n);
    put32be(f, n);
    fwrite(buf, 1, n + 4, f);
    put32be(f, mlp_crc32(buf, n + 4));
    free(buf);
}

/* rows: h scanlines of row_bytes each (filter byte added here) */
static void write_png(const char *path, int w, int h, int depth, int color, const unsigned char *rows, int row_bytes,
                      const unsigned char *palette, int n_palette)
{
    unsigned char ihdr[13];
    size_t raw_len = (size_t)h * (row_bytes + 1), i, z_len = 2 + raw_len + 5 * (raw_len / 65535 + 1) + 4, o = 0;
    unsigned char *raw = malloc(raw_len), *z = malloc(z_len);
    uint32_t a = 1, b = 0;
    FILE *f = fopen(path, "wb");
    int y;
    for (y = 0; y < h; y++) { raw[(size_t)y * (row_bytes + 1)] = 0; memcpy(raw + (size_t)y * (row_bytes + 1) + 1, rows + (size_t)y * row_bytes, (size_t)row_bytes); }
    z[o++] = 0x78; z[o++] = 0x01;
    for (i = 0; i < raw_len; i += 65535) {
        size_t n = raw_len - i < 65535 ? raw_len - i : 65535;
        z[o++] = i + n == raw_len; z[o++] = (unsigned char)n; z[o++] = (unsigned char)(n >> 8);
        z[o++] = (unsigned char)~n; z[o++] = (unsigned char)(~n >> 8);
        memcpy(z + o, raw + i, n); o += n;
    }
    for (i = 0; i < raw_len; i++) { a = (a + raw[i]) % 65521; b = (b + a) % 65521; }
    z[o++] = (unsigned char)(b >> 8); z[o++] = (unsigned char)b; z[o++] = (unsigned char)(a >> 8); z[o++] = (unsigned char)a;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    ihdr[0] = (unsigned char)(w >> 24); ihdr[1] = (unsigned char)(w >> 16); ihdr[2] = (unsigned char)(w >> 8); ihdr[3] = (unsigned char)w;
    ihdr[4] = (unsigned char)(h >> 24); ihdr[5] = (unsigned char)(h >> 16); ihdr[6] = (unsigned char)(h >> 8); ihdr[7] = (unsigned char)h;
    ihdr[8] = (unsigned char)depth; ihdr[9] = (unsigned char)color; ihdr[10] = ihdr[11] = ihdr[12] = 0;
    chunk(f, "IHDR", ihdr, 13);
    if (palette) chunk(f, "PLTE", palette, (uint32_t)(3 * n_palette));
    chunk(f, "IDAT", z, (uint32_t)o);
    chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw); free(z);
}

/* The digit used everywhere: a dark "L" on light paper, W x H; gray(x, y) in 0..1 */
#define W 50
#define H 60
static float gray_at(int x, int y)
{
    int ink = (x >= 12 && x < 20 && y >= 8 && y < 52) || (x >= 12 && x < 40 && y >= 44 && y < 52);
    return ink ? 0.1f : 0.95f;
}

/* writes the digit in one PNG flavour */
static void write_flavour(const char *name, int depth, int color)
{
    int channels = color == 0 ? 1 : color == 4 ? 2 : color == 2 ? 3 : color == 6 ? 4 : 1;
    int bytes = depth / 8 * channels, x, y, c;
    unsigned char *rows = calloc((size_t)W * H * 8, 1), palette[2 * 3];
    for (y = 0; y < H; y++)
        for (x = 0; x < W; x++) {
            float g = gray_at(x, y);
            unsigned char *p = rows + ((size_t)y * W + x) * bytes;
            if (color == 3) { p[0] = g < 0.5f; continue; } /* palette index */
            for (c = 0; c < channels; c++) {
                unsigned v16 = (unsigned)lroundf(g * 65535.0f), v8 = (unsigned)lroundf(g * 255.0f);
                if ((color == 4 && c == 1) || (color == 6 && c == 3)) { v16 = 65535; v8 = 255; } /* opaque */
                if (depth == 16) { p[2 * c] = (unsigned char)(v16 >> 8); p[2 * c + 1] = (unsigned char)v16; }
                else p[c] = (unsigned char)v8;
            }
        }
    palette[0] = palette[1] = palette[2] = (unsigned char)lroundf(0.95f * 255);
    palette[3] = palette[4] = palette[5] = (unsigned char)lroundf(0.1f * 255);
    write_png(in_dir(name), W, H, depth, color, rows, W * bytes, color == 3 ? palette : NULL, 2);
    free(rows);
}

static int setup(void **state)
{
    mlp_net *net;
    const char *bin = getenv("MLP_CLASSIFY");
    (void)state;
    if (!bin || !*bin) setenv("MLP_CLASSIFY", "build/classify", 1);
    snprintf(dir, sizeof dir, "/tmp/mlp_classify_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    /* any 784-10 model will do: predictions are compared, not judged */
    net = mlp_create_spec("784-16-10", MLP_ACT_RELU, MLP_LOSS_CE, 3);
    net->image_w = net->image_h = 28;
    net->input_scale = 1.0f / 255.0f;
    snprintf(model_path, sizeof model_path, "%s/model.mlp", dir);
    if (mlp_save(net, model_path) != 0) return -1;
    mlp_free(net);
    write_flavour("gray8.png", 8, 0);
    write_flavour("gray16.png", 16, 0);
    write_flavour("ga8.png", 8, 4);
    write_flavour("ga16.png", 16, 4);
    write_flavour("rgb8.png", 8, 2);
    write_flavour("rgb16.png", 16, 2);
    write_flavour("rgba8.png", 8, 6);
    write_flavour("rgba16.png", 16, 6);
    write_flavour("palette.png", 8, 3);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* what the library predicts for the digit's exact gray values */
static int expected_digit(float *probs)
{
    float px[W * H * 2], raw[784], x[784];
    int i, best = 0;
    mlp_net *net = mlp_load(model_path);
    const float *p;
    for (i = 0; i < W * H; i++) { px[2 * i] = gray_at(i % W, i / W); px[2 * i + 1] = 1.0f; }
    assert_int_equal(mlp_digit_preprocess(px, W, H, 2, raw), 0);
    mlp_normalize_input(net, raw, x);
    p = mlp_predict(net, x, 1);
    for (i = 0; i < 10; i++) { probs[i] = p[i]; if (p[i] > p[best]) best = i; }
    mlp_free(net);
    return best;
}

static void test_every_png_flavour(void **state)
{
    static const char *names[] = {"gray8.png", "gray16.png", "ga8.png", "ga16.png", "rgb8.png",
                                  "rgb16.png", "rgba8.png", "rgba16.png", "palette.png"};
    float probs[10];
    int digit = expected_digit(probs), i, k;
    (void)state;
    for (i = 0; i < 9; i++) {
        char cmd[512], want[64];
        const char *p;
        snprintf(cmd, sizeof cmd, CLASSIFY " --json %s %s", model_path, in_dir(names[i]));
        assert_int_equal(run(cmd), 0);
        snprintf(want, sizeof want, "\"digit\":%d,", digit);
        if (!strstr(output, want)) print_error("%s: %s", names[i], output);
        assert_non_null(strstr(output, want));
        p = strstr(output, "\"probs\":[") + 9;
        for (k = 0; k < 10; k++) { /* 8-bit rounding of 0.1 / 0.95 moves probabilities a little */
            double v = strtod(p, (char **)&p);
            assert_true(fabs(v - probs[k]) < 2e-3);
            p++;
        }
    }
}

static void test_output_formats(void **state)
{
    char cmd[512];
    int lines = 0;
    const char *s;
    (void)state;
    snprintf(cmd, sizeof cmd, CLASSIFY " %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 0);
    assert_non_null(strstr(output, "gray8.png: "));
    assert_non_null(strstr(output, "%)\n"));
    snprintf(cmd, sizeof cmd, CLASSIFY " --top 3 %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 0);
    assert_int_equal((int)(strchr(output, '\n') - output) > 0, 1);
    for (s = output; (s = strstr(s, "%)")); s++) lines++;
    assert_int_equal(lines, 3); /* three digits with probabilities on one line */
    snprintf(cmd, sizeof cmd, CLASSIFY " --show %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 0);
    /* every stage, in the order the picture flows through them, then the result */
    {
        static const char *stages[] = {"-- picture (gray)", "-- denoised (gray)", "-- background", "-- ink",
                                       "-- digit (kept components)", "-- input (28 x 28), 28x28", "gray8.png: "};
        const char *at = output;
        int k;
        for (k = 0; k < 7; k++) {
            if (!(s = strstr(at, stages[k]))) fail_msg("--show: no \"%s\" after the previous stage in:\n%s", stages[k], output);
            at = s;
        }
        /* the 28x28 input: its title, 14 rows of art (two pixel rows a line), then the result */
        for (lines = 0, s = strstr(output, "-- input (28 x 28)"); (s = strchr(s, '\n')); s++) lines++;
        assert_int_equal(lines, 16);
    }
    assert_non_null(strstr(output, "@@"));
}

/* --number: the test digit three times in a row reads as three of the
   digit the library predicts for it alone, boxed left to right */
static void test_number(void **state)
{
    enum { GAP = 20, NW = 3 * W + 2 * GAP };
    unsigned char rows[NW * H];
    char cmd[512], want[64];
    float probs[10];
    int x, y, k, d = expected_digit(probs), bx[3];
    (void)state;
    for (y = 0; y < H; y++)
        for (x = 0; x < NW; x++) {
            int tile = x / (W + GAP), tx = x % (W + GAP);
            rows[y * NW + x] = (unsigned char)(255.0f * (tile < 3 && tx < W ? gray_at(tx, y) : 0.95f) + 0.5f);
        }
    write_png(in_dir("number.png"), NW, H, 8, 0, rows, NW, NULL, 0);
    snprintf(cmd, sizeof cmd, CLASSIFY " --number %s %s", model_path, in_dir("number.png"));
    assert_int_equal(run(cmd), 0);
    snprintf(want, sizeof want, "number.png: %d%d%d (per digit ", d, d, d);
    if (!strstr(output, want)) fail_msg("expected \"%s\" in: %s", want, output);
    snprintf(cmd, sizeof cmd, CLASSIFY " --number --json %s %s", model_path, in_dir("number.png"));
    assert_int_equal(run(cmd), 0);
    snprintf(want, sizeof want, "\"number\":\"%d%d%d\"", d, d, d);
    assert_non_null(strstr(output, want));
    {   /* boxes: the L's ink starts 12 pixels into each tile */
        const char *s = output;
        for (k = 0; k < 3; k++) {
            assert_non_null(s = strstr(s, "\"box\":["));
            s += 7;
            bx[k] = atoi(s);
            assert_true(abs(bx[k] - (k * (W + GAP) + 12)) <= 1);
        }
    }
}

static void test_bad_files(void **state)
{
    char cmd[2048];
    FILE *f;
    unsigned char buf[4096];
    size_t n;
    (void)state;
    f = fopen(in_dir("text.png"), "w"); fputs("hello\n", f); fclose(f);
    f = fopen(in_dir("empty.png"), "w"); fclose(f);
    f = fopen(in_dir("gray8.png"), "rb"); n = fread(buf, 1, sizeof buf, f); fclose(f);
    f = fopen(in_dir("truncated.png"), "wb"); fwrite(buf, 1, n / 2, f); fclose(f);
    {   /* a valid header claiming 10000 x 10000 */
        unsigned char row[1] = {0};
        write_png(in_dir("huge.png"), 10000, 1, 8, 0, row, 1, NULL, 0);
        f = fopen(in_dir("huge.png"), "r+b");
        fseek(f, 16 + 4, SEEK_SET); /* height field of IHDR: make it 10000 */
        fputc(0, f); fputc(0, f); fputc(0x27, f); fputc(0x10, f);
        fseek(f, 12, SEEK_SET);
        n = fread(buf, 1, 17, f);
        fseek(f, 12 + 17, SEEK_SET);
        put32be(f, mlp_crc32(buf, 17));
        fclose(f);
    }
    {   /* a blank page */
        unsigned char rows[20 * 20];
        memset(rows, 240, sizeof rows);
        write_png(in_dir("blank.png"), 20, 20, 8, 0, rows, 20, NULL, 0);
    }
    snprintf(cmd, sizeof cmd, CLASSIFY " %s %s %s %s %s %s %s %s %s", model_path, in_dir("missing.png"), in_dir("text.png"),
             in_dir("empty.png"), in_dir("truncated.png"), in_dir("huge.png"), in_dir("blank.png"), in_dir("gray8.png"), in_dir("rgb8.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "missing.png: cannot open the file"));
    assert_non_null(strstr(output, "text.png: not a PNG file"));
    assert_non_null(strstr(output, "empty.png: "));
    assert_non_null(strstr(output, "truncated.png: "));
    if (!strstr(output, "huge.png: too large")) print_error("%s", output);
    assert_non_null(strstr(output, "huge.png: too large"));
    assert_non_null(strstr(output, "blank.png: no digit found"));
    assert_non_null(strstr(output, "gray8.png: "));   /* the good files still classified */
    assert_non_null(strstr(output, "rgb8.png: "));
}

static void test_usage_and_model_errors(void **state)
{
    char cmd[512];
    (void)state;
    assert_int_equal(run(CLASSIFY), 2);
    assert_non_null(strstr(output, "usage:"));
    snprintf(cmd, sizeof cmd, CLASSIFY " --top 0 %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof cmd, CLASSIFY " --frobnicate %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof cmd, CLASSIFY " %s %s", in_dir("gray8.png"), in_dir("gray8.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "not an mlp.h model file"));
    snprintf(cmd, sizeof cmd, CLASSIFY " --raw %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 1);
    assert_non_null(strstr(output, "--raw needs an image exactly the model's input size"));
    assert_int_equal(run(CLASSIFY " --help"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_png_flavour),
        cmocka_unit_test(test_output_formats),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_usage_and_model_errors),
    };
    return cmocka_run_group_tests_name("classify", tests, setup, teardown);
}
