/* classify as a user meets it: every PNG colour type and bit depth gives the
   prediction the library gives for the same pixels, and decodes to the
   exact pixel values written (read back through --stages); missing,
   non-PNG, truncated, oversized and blank files each get their own message
   on their own line while the other files are still classified; exit codes
   0 / 1 / 2. Needs build/classify (or $MLP_CLASSIFY). */
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
#include <sys/stat.h>
#include <sys/wait.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"
#include "run.h"

#define CLASSIFY "$MLP_CLASSIFY"
static char dir[64], model_path[128], stages_dir[128];


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

/* rows: h scanlines of row_bytes each (filter byte added here); trns: the
   palette's alpha (n_palette bytes) or NULL */
static void write_png_trns(const char *path, int w, int h, int depth, int color, const unsigned char *rows, int row_bytes,
                           const unsigned char *palette, int n_palette, const unsigned char *trns)
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
    if (trns) chunk(f, "tRNS", trns, (uint32_t)n_palette);
    chunk(f, "IDAT", z, (uint32_t)o);
    chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw); free(z);
}

static void write_png(const char *path, int w, int h, int depth, int color, const unsigned char *rows, int row_bytes,
                      const unsigned char *palette, int n_palette)
{
    write_png_trns(path, w, h, depth, color, rows, row_bytes, palette, n_palette, NULL);
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

/* -- pictures of known samples, one per PNG flavour: the first --stages
      image is the picture as classify decoded and composited it, checked
      pixel by pixel against the samples written --
   PW x PH: the shorter side is at least 128 and the area at most 320 x 320,
   so mlp__page_make keeps the page's scale at 1 and mlp__fill_page's area
   averaging sums exactly one picture pixel into each page pixel: the
   "picture (gray)" stage is the composited picture itself. */
#define PW 128
#define PH 160
#define N_PALETTE 16
typedef struct flavour { const char *name; int depth, color, trns; } flavour;
static const flavour flavours[] = {
    {"px-gray8", 8, 0, 0}, {"px-gray16", 16, 0, 0}, {"px-ga8", 8, 4, 0}, {"px-ga16", 16, 4, 0},
    {"px-rgb8", 8, 2, 0}, {"px-rgb16", 16, 2, 0}, {"px-rgba8", 8, 6, 0}, {"px-rgba16", 16, 6, 0},
    {"px-palette", 8, 3, 0}, {"px-palette-trns", 8, 3, 1}};
#define N_FLAVOURS (int)(sizeof flavours / sizeof flavours[0])

static int has_alpha(const flavour *f) { return f->color == 4 || f->color == 6 || f->trns; }
static int channels_of(int color) { return color == 0 ? 1 : color == 4 ? 2 : color == 2 ? 3 : color == 6 ? 4 : 1; }

/* the digit once more, a thick L, well inside the picture */
static int px_ink(int x, int y) { return (x >= 31 && x < 51 && y >= 21 && y < 139) || (x >= 31 && x < 102 && y >= 117 && y < 139); }
static unsigned px_hash(int x, int y) { return (unsigned)(x * 31 + y * 17) % 97; }

/* The samples written at (x, y): gray, or R, G, B; then alpha; or a palette
   index in s[0]. 16-bit samples have low bytes that matter (0x1234 + ...,
   0xfedc - ...; a decoder keeping only the high byte is off by up to 255 /
   65535), R, G and B differ (weights swapped give another gray), alpha is
   partial on many pixels (low bytes again), and the pixels alpha hides are
   dark (ignoring alpha shows them). 8-bit flavours: the high bytes. */
static void px_samples(const flavour *f, int x, int y, unsigned s[4])
{
    static const unsigned ink_alpha[5] = {0xffff, 0x8a3c, 0xc3d5, 0xffff, 0x5e71};
    unsigned h = px_hash(x, y), g, a;
    int ink = px_ink(x, y), c;
    if (f->color == 3) { s[0] = ink ? 8 + h % 8 : h % 8; return; }
    g = ink ? 0x1234 + 37 * h : 0xfedc - 41 * h;
    a = 0xffff;
    if (has_alpha(f)) { /* a dark L on a transparent background, a faint band at the top */
        a = ink ? ink_alpha[h % 5] : y < 8 ? 0x1000 + 0x123 * h : 0;
        if (!a) g = 0x4321 + 29 * h;
    }
    if (f->color == 0 || f->color == 4) { s[0] = g; s[1] = a; }
    else { s[0] = ink ? g + 0x1800 : g - 0x1800; s[1] = g; s[2] = ink ? g + 0x0900 : g - 0x0900; s[3] = a; }
    if (f->depth == 8) for (c = 0; c < 4; c++) s[c] >>= 8;
}

/* 16 colours, each with R, G, B apart: 0-7 light (paper), 8-15 dark (ink);
   with tRNS the paper is transparent but for one faint entry, the ink partly
   transparent */
static void px_palette(unsigned char pal[3 * N_PALETTE], unsigned char trns[N_PALETTE])
{
    static const unsigned char ink_alpha[8] = {0xff, 0x9c, 0xd7, 0xff, 0x63, 0xff, 0xb1, 0xff};
    int i;
    for (i = 0; i < 8; i++) {
        pal[3 * i] = (unsigned char)(0xf0 - 3 * i); pal[3 * i + 1] = (unsigned char)(0xe8 + i);
        pal[3 * i + 2] = (unsigned char)(0xfa - 5 * i);
        pal[3 * (8 + i)] = (unsigned char)(0x20 + 5 * i); pal[3 * (8 + i) + 1] = (unsigned char)(0x10 + 3 * i);
        pal[3 * (8 + i) + 2] = (unsigned char)(0x38 - 4 * i);
        trns[i] = i == 3 ? 0x40 : 0;
        trns[8 + i] = ink_alpha[i];
    }
}

static void write_px_flavour(const flavour *f)
{
    int bytes = f->depth / 8 * channels_of(f->color), x, y, c, n = channels_of(f->color);
    unsigned char *rows = malloc((size_t)PW * PH * bytes), pal[3 * N_PALETTE], trns[N_PALETTE];
    char name[64];
    for (y = 0; y < PH; y++)
        for (x = 0; x < PW; x++) {
            unsigned s[4];
            unsigned char *p = rows + ((size_t)y * PW + x) * bytes;
            px_samples(f, x, y, s);
            for (c = 0; c < n; c++) { /* big-endian samples */
                if (f->depth == 16) { p[2 * c] = (unsigned char)(s[c] >> 8); p[2 * c + 1] = (unsigned char)s[c]; }
                else p[c] = (unsigned char)s[c];
            }
        }
    px_palette(pal, trns);
    snprintf(name, sizeof name, "%s.png", f->name);
    write_png_trns(in_dir(name), PW, PH, f->depth, f->color, rows, PW * bytes, f->color == 3 ? pal : NULL, N_PALETTE,
                   f->trns ? trns : NULL);
    free(rows);
}

/* What classify must hand the library for f, computed from the samples
   written: gray and alpha as stb_image decodes them to 2 channels at the
   file's depth (gray as written; colour as stb_image's luma
   (77 R + 150 G + 29 B) >> 8; a palette index as its entry's colour and
   tRNS alpha), scaled to 0..1 by 2^depth - 1 (so 0x1234 is 0x1234 / 65535).
   px holds gray and alpha, PW x PH pairs. */
static void px_decoded(const flavour *f, double *px)
{
    unsigned char pal[3 * N_PALETTE], trns[N_PALETTE];
    double max = f->depth == 16 ? 65535.0 : 255.0;
    int x, y;
    px_palette(pal, trns);
    for (y = 0; y < PH; y++)
        for (x = 0; x < PW; x++) {
            unsigned s[4], gray, alpha;
            double *p = px + 2 * ((size_t)y * PW + x);
            px_samples(f, x, y, s);
            if (f->color == 3) {
                const unsigned char *e = pal + 3 * s[0];
                gray = (77u * e[0] + 150u * e[1] + 29u * e[2]) >> 8;
                alpha = f->trns ? trns[s[0]] : 255;
            } else if (f->color == 0 || f->color == 4) {
                gray = s[0]; alpha = f->color == 4 ? s[1] : (unsigned)max;
            } else {
                gray = (77u * s[0] + 150u * s[1] + 29u * s[2]) >> 8;
                alpha = f->color == 6 ? s[3] : (unsigned)max;
            }
            p[0] = gray / max;
            p[1] = alpha / max;
        }
}

/* The "picture (gray)" stage for f, as mlp.h documents it: v = a g +
   (1 - a) paper, the paper white when the visible ink is mostly dark
   (alpha-weighted mean gray below 1/2), black otherwise; returns the paper */
static double px_expected(const flavour *f, double *page)
{
    double *px = malloc(sizeof(double) * 2 * PW * PH), ink = 0.0, weight = 0.0, paper;
    int i;
    px_decoded(f, px);
    for (i = 0; i < PW * PH; i++) { ink += px[2 * i] * px[2 * i + 1]; weight += px[2 * i + 1]; }
    paper = weight > 0.0 && ink / weight < 0.5 ? 1.0 : 0.0;
    for (i = 0; i < PW * PH; i++) page[i] = px[2 * i + 1] * px[2 * i] + (1.0 - px[2 * i + 1]) * paper;
    free(px);
    return paper;
}

/* a 16-bit binary PGM (P5, maxval 65535) as its samples, NULL if the file
   is missing or not exactly that */
static unsigned *read_pgm16(const char *path, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    unsigned *v = NULL;
    int maxval, i, ok;
    if (!f) return NULL;
    ok = fscanf(f, "P5 %d %d %d", w, h, &maxval) == 3 && maxval == 65535 && fgetc(f) == '\n' &&
         *w >= 1 && *h >= 1 && *w <= 4096 && *h <= 4096;
    if (ok && (v = malloc(sizeof(unsigned) * (size_t)*w * *h)) != NULL) {
        for (i = 0; ok && i < *w * *h; i++) {
            int hi = fgetc(f), lo = fgetc(f);
            ok = lo != EOF;
            v[i] = (unsigned)hi << 8 | (unsigned)lo;
        }
        ok = ok && fgetc(f) == EOF; /* nothing after the samples */
    }
    fclose(f);
    if (!ok) { free(v); v = NULL; }
    return v;
}

static int setup(void **state)
{
    mlp_net *net;
    int i;
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
    for (i = 0; i < N_FLAVOURS; i++) write_px_flavour(&flavours[i]);
    snprintf(stages_dir, sizeof stages_dir, "%s/stages", dir);
    if (mkdir(stages_dir, 0700) != 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(dir);
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

/* the stage file DIR/NAME-K-STAGE.pgm's samples, checked to be w x h */
static unsigned *stage_image(const char *name, int k, const char *stage, int w, int h)
{
    char path[512];
    unsigned *v;
    int gw, gh;
    snprintf(path, sizeof path, "%s/%s-%02d-%s.pgm", stages_dir, name, k, stage);
    if (!(v = read_pgm16(path, &gw, &gh))) fail_msg("%s: missing, or not a 16-bit PGM", path);
    if (gw != w || gh != h) fail_msg("%s: %d x %d, expected %d x %d", path, gw, gh, w, h);
    return v;
}

/* f's picture through classify --stages: the first stage image is the
   picture decoded and composited, pixel for pixel as the samples written
   say. Returns the number of pixels that are not (0 when all are), saying
   which is furthest off. */
static int decoded_wrongly(const flavour *f)
{
    char cmd[1024], png[64];
    double *want = malloc(sizeof(double) * PW * PH), paper;
    unsigned *got;
    int i, bad = 0, worst = -1;
    snprintf(png, sizeof png, "%s.png", f->name);
    snprintf(cmd, sizeof cmd, CLASSIFY " --stages %s %s %s", stages_dir, model_path, in_dir(png));
    run(cmd); /* its exit status and output: check_stages */
    paper = px_expected(f, want);
    if (has_alpha(f)) assert_true(paper == 1.0); /* the picture is what it means to be: a dark L on a transparent page */
    got = stage_image(f->name, 1, "picture", PW, PH);
    for (i = 0; i < PW * PH; i++) /* rounding to 1/65535 is at most half a step off; float arithmetic adds far less than 0.1 */
        if (fabs((double)got[i] - 65535.0 * want[i]) > 0.6) {
            if (worst < 0 || fabs((double)got[i] - 65535.0 * want[i]) > fabs((double)got[worst] - 65535.0 * want[worst])) worst = i;
            bad++;
        }
    if (bad) print_error("%s: %d of %d pixels decoded wrongly; worst (%d, %d): %u / 65535, expected %.2f / 65535\n", png, bad,
                         PW * PH, worst % PW, worst / PW, got[worst], 65535.0 * want[worst]);
    free(got);
    free(want);
    return bad;
}

/* f's picture through classify --stages once more: classified, the output
   is the one without --stages, the stages are written in order, and
   (8-bit flavours, whose decoded floats the library can be given bit for
   bit) the last is the library's own 28 x 28 input */
static void check_stages(const flavour *f)
{
    static const char *first[] = {"picture", "denoised", "background", "ink", "digit"};
    char cmd[1024], png[64], path[512], *plain;
    unsigned *got;
    int i, k, last;
    FILE *probe;
    snprintf(png, sizeof png, "%s.png", f->name);
    snprintf(cmd, sizeof cmd, CLASSIFY " --json %s %s", model_path, in_dir(png));
    if (run(cmd) != 0) fail_msg("%s: %s", png, output);
    plain = strdup(output);
    snprintf(cmd, sizeof cmd, CLASSIFY " --json --stages %s %s %s", stages_dir, model_path, in_dir(png));
    assert_int_equal(run(cmd), 0);
    assert_string_equal(output, plain);
    free(plain);
    for (k = 1; k <= 5; k++) free(stage_image(f->name, k, first[k - 1], PW, PH));
    /* then "strokes" when they were redrawn, then the input */
    snprintf(path, sizeof path, "%s/%s-06-strokes.pgm", stages_dir, f->name);
    last = (probe = fopen(path, "rb")) != NULL ? 7 : 6;
    if (probe) fclose(probe);
    got = stage_image(f->name, last, "input", 28, 28);
    if (f->depth == 8) {
        float *px = malloc(sizeof(float) * 2 * PW * PH), raw[784];
        double *dec = malloc(sizeof(double) * 2 * PW * PH);
        px_decoded(f, dec);
        for (i = 0; i < 2 * PW * PH; i++) px[i] = (float)lround(dec[i] * 255.0) / 255.0f;
        assert_int_equal(mlp_digit_preprocess(px, PW, PH, 2, raw), 0);
        for (i = 0; i < 784; i++) if (fabs((double)got[i] - 65535.0 * raw[i] / 255.0) > 0.6)
            fail_msg("%s: input pixel %d is %u / 65535, the library's %.2f / 65535", f->name, i, got[i], 65535.0 * raw[i] / 255.0);
        free(px);
        free(dec);
    }
    free(got);
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
    /* and the pixels: every flavour decoded to the values written */
    for (i = 0, k = 0; i < N_FLAVOURS; i++) k += decoded_wrongly(&flavours[i]) != 0;
    if (k) fail_msg("%d of %d PNG flavours decoded wrongly", k, N_FLAVOURS);
    for (i = 0; i < N_FLAVOURS; i++) check_stages(&flavours[i]);
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

/* The line of output that starts with prefix (without its newline), or
   NULL; fails if two lines do */
static const char *line_starting(const char *prefix)
{
    static char line[1024];
    const char *s, *found = NULL;
    size_t n = strlen(prefix);
    for (s = output; *s; s += strcspn(s, "\n"), s += *s == '\n')
        if (!strncmp(s, prefix, n)) {
            if (found) fail_msg("two lines start with \"%s\" in:\n%s", prefix, output);
            found = s;
        }
    if (!found) return NULL;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(found, "\n"), found);
    return line;
}

/* the number of lines of output that mention text */
static int lines_mentioning(const char *text)
{
    const char *s;
    int n = 0;
    for (s = output; *s; s += strcspn(s, "\n"), s += *s == '\n') {
        const char *hit = strstr(s, text);
        if (hit && hit < s + strcspn(s, "\n")) n++;
    }
    return n;
}

/* file's one line reads "classify: FILE: " then reason, exactly (or, with
   prefix_only, begins so) */
static void expect_refused(const char *file, const char *reason, int prefix_only)
{
    char start[512];
    const char *line;
    snprintf(start, sizeof start, "classify: %s: ", file);
    if (!(line = line_starting(start))) fail_msg("no line \"%s%s\" in:\n%s", start, reason, output);
    if (prefix_only ? strncmp(line + strlen(start), reason, strlen(reason)) != 0 : strcmp(line + strlen(start), reason) != 0)
        fail_msg("%s: expected \"%s%s\", got \"%s\" in:\n%s", file, reason, prefix_only ? "..." : "", line, output);
    if (lines_mentioning(file) != 1) fail_msg("%s: mentioned on %d lines of:\n%s", file, lines_mentioning(file), output);
}

/* file's one line is its classification, "FILE: D (P%)" */
static void expect_classified(const char *file)
{
    char start[512];
    const char *line;
    snprintf(start, sizeof start, "%s: ", file);
    if (!(line = line_starting(start)) || !strstr(line, "%)")) fail_msg("%s: no classification in:\n%s", file, output);
    if (lines_mentioning(file) != 1) fail_msg("%s: mentioned on %d lines of:\n%s", file, lines_mentioning(file), output);
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
    {   /* a 20 x 20 picture whose second IDAT chunk claims 2^30 bytes:
           stb_image would grow its buffer to 2 GB before reading them */
        static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0xf8, 0x0f, 0x00, 0x01, 0x01, 0x01, 0x00};
        unsigned char rows[20 * 20];
        memset(rows, 240, sizeof rows);
        write_png(in_dir("long-chunk.png"), 20, 20, 8, 0, rows, 20, NULL, 0);
        f = fopen(in_dir("long-chunk.png"), "r+b");
        fseek(f, -12, SEEK_END); /* over IEND: an IDAT "of" 2^30 bytes, then ten */
        put32be(f, 0x40000000u); fwrite("IDAT", 1, 4, f); fwrite(idat, 1, sizeof idat, f);
        fclose(f);
    }
    {   /* gray8.png with an empty IDAT chunk first (allowed; stb_image would
           memcpy from NULL for it, so classify drops it): the same digit */
        size_t at = 8;
        f = fopen(in_dir("gray8.png"), "rb"); n = fread(buf, 1, sizeof buf, f); fclose(f);
        assert_true(n < sizeof buf);
        while (at + 8 <= n && memcmp(buf + at + 4, "IDAT", 4) != 0)
            at += 12 + ((size_t)buf[at] << 24 | (size_t)buf[at + 1] << 16 | (size_t)buf[at + 2] << 8 | buf[at + 3]);
        assert_true(at + 8 <= n);
        f = fopen(in_dir("empty-idat.png"), "wb");
        fwrite(buf, 1, at, f);
        chunk(f, "IDAT", NULL, 0);
        fwrite(buf + at, 1, n - at, f);
        fclose(f);
    }
    {   /* a blank page */
        unsigned char rows[20 * 20];
        memset(rows, 240, sizeof rows);
        write_png(in_dir("blank.png"), 20, 20, 8, 0, rows, 20, NULL, 0);
    }
    assert_int_equal(mkdir(in_dir("folder.png"), 0700), 0);
    snprintf(cmd, sizeof cmd, CLASSIFY " %s %s %s %s %s %s %s %s %s %s %s %s", model_path, in_dir("folder.png"), in_dir("missing.png"), in_dir("text.png"),
             in_dir("empty.png"), in_dir("truncated.png"), in_dir("huge.png"), in_dir("blank.png"), in_dir("gray8.png"), in_dir("rgb8.png"),
             in_dir("long-chunk.png"), in_dir("empty-idat.png"));
    assert_int_equal(run(cmd), 1);
    /* each file's reason on that file's own line */
    expect_refused(in_dir("missing.png"), "cannot open the file", 0);
    expect_refused(in_dir("folder.png"), "cannot read the file (a directory?)", 0);
    expect_refused(in_dir("text.png"), "not a PNG file", 0);
    expect_refused(in_dir("empty.png"), "not a PNG file", 0);
    expect_refused(in_dir("truncated.png"), "corrupt or truncated PNG (a chunk runs past the end of the file)", 0);
    expect_refused(in_dir("long-chunk.png"), "corrupt or truncated PNG (a chunk runs past the end of the file)", 0);
    expect_refused(in_dir("huge.png"), "too large (over 8192 pixels on a side)", 0);
    expect_refused(in_dir("blank.png"), "no digit found", 1);
    expect_classified(in_dir("gray8.png"));   /* the good files still classified */
    expect_classified(in_dir("rgb8.png"));
    expect_classified(in_dir("empty-idat.png"));
    {
        char gray[1024], prefix[512];
        snprintf(prefix, sizeof prefix, "%s: ", in_dir("gray8.png"));
        snprintf(gray, sizeof gray, "%s", line_starting(prefix) + strlen(prefix));
        snprintf(prefix, sizeof prefix, "%s: ", in_dir("empty-idat.png"));
        assert_string_equal(line_starting(prefix) + strlen(prefix), gray);
    }
}

/* --stages beside --raw, --show and a directory that is not there */
static void test_stages(void **state)
{
    unsigned char rows[28 * 28];
    char cmd[1024], *show;
    unsigned *v;
    int i;
    (void)state;
    for (i = 0; i < 28 * 28; i++) rows[i] = (unsigned char)((i % 28) * 9 + (i / 28) * 7);
    write_png(in_dir("raw28.png"), 28, 28, 8, 0, rows, 28, NULL, 0);
    /* --raw: the one stage --show prints, the network's input, byte v as 257 v */
    snprintf(cmd, sizeof cmd, CLASSIFY " --raw --stages %s %s %s", stages_dir, model_path, in_dir("raw28.png"));
    assert_int_equal(run(cmd), 0);
    expect_classified(in_dir("raw28.png"));
    v = stage_image("raw28", 1, "what-the-network-sees", 28, 28);
    for (i = 0; i < 28 * 28; i++) assert_int_equal(v[i], 257u * rows[i]);
    free(v);
    /* --show prints what it printed without --stages */
    snprintf(cmd, sizeof cmd, CLASSIFY " --show %s %s", model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 0);
    show = strdup(output);
    snprintf(cmd, sizeof cmd, CLASSIFY " --stages %s --show %s %s", stages_dir, model_path, in_dir("gray8.png"));
    assert_int_equal(run(cmd), 0);
    assert_string_equal(output, show);
    free(show);
    free(stage_image("gray8", 1, "picture", 150, 180)); /* 50 x 60 enlarged 3 times */
    /* no such directory: said once per picture, which is still classified */
    snprintf(cmd, sizeof cmd, CLASSIFY " --stages %s/nowhere %s %s %s", dir, model_path, in_dir("gray8.png"), in_dir("rgb8.png"));
    assert_int_equal(run(cmd), 1);
    {
        char file[256];
        snprintf(file, sizeof file, "%s/nowhere/gray8-01-picture.pgm", dir);
        expect_refused(file, "cannot write the stage image (does the directory exist?)", 0);
        snprintf(file, sizeof file, "%s/nowhere/rgb8-01-picture.pgm", dir);
        expect_refused(file, "cannot write the stage image (does the directory exist?)", 0);
    }
    expect_classified(in_dir("gray8.png"));
    expect_classified(in_dir("rgb8.png"));
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
        cmocka_unit_test(test_stages),
        cmocka_unit_test(test_usage_and_model_errors),
    };
    return cmocka_run_group_tests_name("classify", tests, setup, teardown);
}
