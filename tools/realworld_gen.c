/* realworld_gen - a reproducible set of "real-world" digit pictures: font
   glyphs and MNIST digits rendered at many sizes, positions, colours and
   polarities, then degraded the way photos, scans and drawings are.

   cc -std=c99 -O2 -o build/realworld_gen tools/realworld_gen.c -lm   (libstb-dev)
   realworld_gen [--split test|dev] [--per-category N] GLYPHDIR MNISTDIR OUTDIR

   GLYPHDIR holds TAG-D.png (D = 0..9, dark on white) for each font, as
   tools/realworld.sh renders them. Writes OUTDIR/CATEGORY/NNNN-LABEL.png and
   OUTDIR/manifest.csv. Every picture has its own random stream (split seed,
   category, index), so the same arguments give byte-identical files and a
   smaller N gives a prefix of a larger one. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 8192
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

#include "stb_image_write_impl.h"

#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define PI 3.14159265358979f
#define MAX_FONTS 64
#define MAX_NUMBER_DIGITS 6
#define MIN_SIDE 32
#define MAX_SIDE 480
#define MAX_NUMBER_WIDTH 900
#define MARGIN 0.06f                 /* of the canvas, every side: no digit is cut */

/* ---- errors and small helpers ------------------------------------------- */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "realworld_gen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory%s", "");
    return p;
}

static float uniform(mlp_rng *rng, float lo, float hi) { return lo + (hi - lo) * mlp_rng_float(rng); }
static int chance(mlp_rng *rng, float p) { return mlp_rng_float(rng) < p; }
static int between(mlp_rng *rng, int lo, int hi) { return lo + (int)mlp_rng_below(rng, (uint32_t)(hi - lo + 1)); }
static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }
static float smoothstep(float a, float b, float x) { float t = clamp01((x - a) / (b - a)); return t * t * (3 - 2 * t); }
static float luminance(const float *c) { return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2]; }

/* Box-Muller; 1 - u keeps the logarithm finite */
static float gaussian(mlp_rng *rng)
{
    float u = 1.0f - mlp_rng_float(rng), v = mlp_rng_float(rng);
    return sqrtf(-2.0f * logf(u)) * cosf(2.0f * PI * v);
}

/* ---- ink: a coverage map (0 paper .. 1 ink), the form every source takes -- */

typedef struct ink { int w, h; float *c; } ink;

static ink ink_new(int w, int h)
{
    ink m;
    m.w = w; m.h = h;
    m.c = xcalloc((size_t)w * h, sizeof *m.c);
    return m;
}

static void ink_free(ink *m) { free(m->c); m->c = NULL; }

/* Crops to the pixels with visible ink, so "digit height" means the ink's. */
static ink ink_crop(const ink *m, float threshold)
{
    int x, y, x0 = m->w, y0 = m->h, x1 = -1, y1 = -1;
    ink out;
    for (y = 0; y < m->h; y++)
        for (x = 0; x < m->w; x++)
            if (m->c[(size_t)y * m->w + x] > threshold) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    if (x1 < 0) { x0 = y0 = 0; x1 = m->w - 1; y1 = m->h - 1; }
    out = ink_new(x1 - x0 + 1, y1 - y0 + 1);
    for (y = 0; y < out.h; y++)
        memcpy(out.c + (size_t)y * out.w, m->c + (size_t)(y + y0) * m->w + x0, (size_t)out.w * sizeof *out.c);
    return out;
}

/* Area averaging along one axis: every source pixel spreads its exact overlap
   over the destination pixels, so shrinking a 160-point glyph to 12 pixels
   keeps thin strokes as gray instead of dropping them. */
static void area_resize_axis(const float *src, int n_src, int src_step, float *dst, int n_dst, int dst_step)
{
    float scale = (float)n_dst / n_src;
    int i, j;
    for (j = 0; j < n_dst; j++) dst[j * dst_step] = 0;
    for (i = 0; i < n_src; i++) {
        float a = i * scale, b = (i + 1) * scale;
        for (j = (int)a; j < n_dst && j < b; j++) {
            float lo = a > j ? a : (float)j, hi = b < j + 1 ? b : (float)(j + 1);
            if (hi > lo) dst[j * dst_step] += src[i * src_step] * (hi - lo);
        }
    }
}

static ink ink_shrink(const ink *m, int w, int h)
{
    ink tmp = ink_new(w, m->h), out = ink_new(w, h);
    int x, y;
    for (y = 0; y < m->h; y++) area_resize_axis(m->c + (size_t)y * m->w, m->w, 1, tmp.c + (size_t)y * w, w, 1);
    for (x = 0; x < w; x++) area_resize_axis(tmp.c + x, m->h, w, out.c + x, h, w);
    ink_free(&tmp);
    return out;
}

static float ink_at(const ink *m, int x, int y)
{
    return x < 0 || y < 0 || x >= m->w || y >= m->h ? 0.0f : m->c[(size_t)y * m->w + x];
}

static float catmull_rom(float p0, float p1, float p2, float p3, float t)
{
    return p1 + 0.5f * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)));
}

/* Bicubic: enlarged MNIST strokes stay round instead of showing 28x28 steps. */
static float ink_sample(const ink *m, float u, float v)
{
    int x = (int)floorf(u), y = (int)floorf(v), j;
    float tx = u - x, ty = v - y, row[4];
    if (x < -2 || y < -2 || x > m->w || y > m->h) return 0.0f;
    for (j = 0; j < 4; j++)
        row[j] = catmull_rom(ink_at(m, x - 1, y - 1 + j), ink_at(m, x, y - 1 + j),
                             ink_at(m, x + 1, y - 1 + j), ink_at(m, x + 2, y - 1 + j), tx);
    return clamp01(catmull_rom(row[0], row[1], row[2], row[3], ty));
}

/* ---- sources: font glyphs and MNIST digits -------------------------------- */

typedef struct sources {
    int n_fonts;
    char *font_tag[MAX_FONTS];
    ink glyph[MAX_FONTS][10];
    mlp_idx images, labels;
    int n_mnist, mnist_w, mnist_h;
} sources;

/* A digit to draw: its cropped ink, its label, and whether it came from MNIST
   (whose soft 28x28 edges get sharpened when enlarged). */
typedef struct digit_src { ink ink; int label, from_mnist; } digit_src;

static ink load_glyph(const char *path)
{
    int w, h, n, i;
    unsigned char *px = stbi_load(path, &w, &h, &n, 1);
    ink full, out;
    if (!px) die("cannot read glyph %s (run tools/realworld.sh, which renders them)", path);
    full = ink_new(w, h);
    for (i = 0; i < w * h; i++) full.c[i] = 1.0f - px[i] / 255.0f;
    stbi_image_free(px);
    out = ink_crop(&full, 0.05f);
    ink_free(&full);
    return out;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Font tags are the names ending in -0.png, sorted: directory order is not
   reproducible. */
static void load_fonts(sources *s, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    int f, digit;
    if (!d) die("cannot open glyph directory %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, "-0.png") == 0) {
            if (s->n_fonts == MAX_FONTS) die("more than 64 fonts in %s", dir);
            s->font_tag[s->n_fonts] = xcalloc(len - 5, 1);
            memcpy(s->font_tag[s->n_fonts], e->d_name, len - 6);
            s->n_fonts++;
        }
    }
    closedir(d);
    if (s->n_fonts == 0) die("no glyphs (TAG-0.png) in %s: run tools/realworld.sh", dir);
    qsort(s->font_tag, (size_t)s->n_fonts, sizeof s->font_tag[0], compare_strings);
    for (f = 0; f < s->n_fonts; f++)
        for (digit = 0; digit < 10; digit++) {
            snprintf(path, sizeof path, "%s/%s-%d.png", dir, s->font_tag[f], digit);
            s->glyph[f][digit] = load_glyph(path);
        }
}

static void load_mnist(sources *s, const char *dir, const char *prefix)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    if (mlp_idx_load(&s->images, path) != MLP_OK) die("%s", mlp_error());
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    if (mlp_idx_load(&s->labels, path) != MLP_OK) die("%s", mlp_error());
    if (s->images.ndims != 3 || s->labels.ndims != 1 || s->images.dims[0] != s->labels.dims[0])
        die("%s: images and labels do not match", dir);
    s->n_mnist = (int)s->images.dims[0];
    s->mnist_h = (int)s->images.dims[1];
    s->mnist_w = (int)s->images.dims[2];
}

static void free_sources(sources *s)
{
    int f, d;
    for (f = 0; f < s->n_fonts; f++) {
        free(s->font_tag[f]);
        for (d = 0; d < 10; d++) ink_free(&s->glyph[f][d]);
    }
    mlp_idx_free(&s->images);
    mlp_idx_free(&s->labels);
}

/* MNIST is bright ink on black: its intensity is the ink coverage. */
static digit_src mnist_digit(const sources *s, int index)
{
    digit_src d;
    ink full = ink_new(s->mnist_w, s->mnist_h);
    size_t i, n = (size_t)s->mnist_w * s->mnist_h;
    for (i = 0; i < n; i++) full.c[i] = s->images.data[(size_t)index * n + i] / 255.0f;
    d.ink = ink_crop(&full, 0.02f);
    d.label = (int)s->labels.data[index];
    d.from_mnist = 1;
    ink_free(&full);
    return d;
}

static digit_src font_digit(const sources *s, int font, int digit)
{
    digit_src d;
    const ink *g = &s->glyph[font][digit];
    d.ink = ink_new(g->w, g->h);
    memcpy(d.ink.c, g->c, (size_t)g->w * g->h * sizeof *g->c);
    d.label = digit;
    d.from_mnist = 0;
    return d;
}

static digit_src random_digit(mlp_rng *rng, const sources *s)
{
    if (chance(rng, 0.5f)) return mnist_digit(s, (int)mlp_rng_below(rng, (uint32_t)s->n_mnist));
    return font_digit(s, (int)mlp_rng_below(rng, (uint32_t)s->n_fonts), (int)mlp_rng_below(rng, 10));
}

/* ---- drawing digits onto a coverage canvas ------------------------------- */

/* A digit scaled to height `height` pixels and turned by `angle`, centred at
   (cx, cy). Shrinking is done by area averaging first, so the bicubic
   sampler only ever enlarges or rotates. */
typedef struct placement { float height, angle, cx, cy; } placement;

static void rotated_box(float w, float h, float angle, float *bw, float *bh)
{
    float c = fabsf(cosf(angle)), s = fabsf(sinf(angle));
    *bw = w * c + h * s;
    *bh = w * s + h * c;
}

static void draw_digit(ink *canvas, const digit_src *d, placement p)
{
    float scale = p.height / d->ink.h, bw, bh, sharpen = 0;
    float ca = cosf(p.angle), sa = sinf(p.angle);
    ink src = d->ink, shrunk = { 0, 0, NULL };
    int x, y, x0, x1, y0, y1;
    if (scale < 1.0f) {
        int w = (int)lroundf(d->ink.w * scale), h = (int)lroundf(d->ink.h * scale);
        shrunk = ink_shrink(&d->ink, w < 1 ? 1 : w, h < 1 ? 1 : h);
        src = shrunk;
    }
    scale = p.height / src.h;
    /* an enlarged MNIST edge is scale pixels of gray ramp; a pen's is ~1.5 */
    if (d->from_mnist && scale > 1.5f) sharpen = 0.5f * 1.5f / scale < 0.08f ? 0.08f : 0.5f * 1.5f / scale;
    rotated_box(src.w * scale, src.h * scale, p.angle, &bw, &bh);
    x0 = (int)floorf(p.cx - bw / 2) - 2; x1 = (int)ceilf(p.cx + bw / 2) + 2;
    y0 = (int)floorf(p.cy - bh / 2) - 2; y1 = (int)ceilf(p.cy + bh / 2) + 2;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > canvas->w) x1 = canvas->w;
    if (y1 > canvas->h) y1 = canvas->h;
    for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++) {
            float dx = x + 0.5f - p.cx, dy = y + 0.5f - p.cy;
            float u = (ca * dx + sa * dy) / scale + src.w * 0.5f - 0.5f;
            float v = (-sa * dx + ca * dy) / scale + src.h * 0.5f - 0.5f;
            float c = ink_sample(&src, u, v);
            float *dst = &canvas->c[(size_t)y * canvas->w + x];
            if (sharpen > 0) c = smoothstep(0.5f - sharpen, 0.5f + sharpen, c);
            if (c > *dst) *dst = c;
        }
    ink_free(&shrunk);
}

/* ---- single-digit layout -------------------------------------------------- */

/* Canvas sides independent in 32..480, digit height 35-80% of the height;
   when the digit would not fit the width, the width grows (and if 480 is not
   enough, the digit shrinks). */
static ink layout_single(mlp_rng *rng, const digit_src *d, float *digit_h, int cut)
{
    int w = between(rng, MIN_SIDE, MAX_SIDE), h = between(rng, MIN_SIDE, MAX_SIDE);
    float frac = uniform(rng, 0.35f, 0.80f), angle = uniform(rng, -6, 6) * PI / 180;
    float aspect = (float)d->ink.w / d->ink.h, dh = frac * h, bw, bh, room_w, room_h;
    placement p;
    ink canvas;
    rotated_box(dh * aspect, dh, angle, &bw, &bh);
    if (bw > w * (1 - 2 * MARGIN)) {
        int need = (int)ceilf(bw / (1 - 2 * MARGIN)) + 1;
        w = need + between(rng, 0, need / 2);
        if (w > MAX_SIDE) w = MAX_SIDE;
    }
    /* shrink until the turned box fits inside the margins both ways */
    while (bw > w * (1 - 2 * MARGIN) || bh > h * (1 - 2 * MARGIN)) {
        dh *= 0.95f;
        rotated_box(dh * aspect, dh, angle, &bw, &bh);
    }
    room_w = w * (1 - 2 * MARGIN) - bw;
    room_h = h * (1 - 2 * MARGIN) - bh;
    p.height = dh; p.angle = angle;
    p.cx = w * MARGIN + bw / 2 + uniform(rng, 0, room_w);
    p.cy = h * MARGIN + bh / 2 + uniform(rng, 0, room_h);
    if (cut) {
        /* 35-55% of the digit's width or height outside one edge */
        float out = uniform(rng, 0.35f, 0.55f);
        switch (mlp_rng_below(rng, 4)) {
        case 0: p.cx = bw / 2 - out * bw; break;
        case 1: p.cx = w - bw / 2 + out * bw; break;
        case 2: p.cy = bh / 2 - out * bh; break;
        default: p.cy = h - bh / 2 + out * bh; break;
        }
    }
    canvas = ink_new(w, h);
    draw_digit(&canvas, d, p);
    *digit_h = dh;
    return canvas;
}

/* ---- numbers: 2-6 digits in a row ----------------------------------------- */

static ink layout_number(mlp_rng *rng, const sources *s, char *label, float *digit_h)
{
    digit_src d[MAX_NUMBER_DIGITS];
    float angle[MAX_NUMBER_DIGITS], rel_h[MAX_NUMBER_DIGITS], bw[MAX_NUMBER_DIGITS], bh[MAX_NUMBER_DIGITS];
    float gap[MAX_NUMBER_DIGITS], jitter[MAX_NUMBER_DIGITS];
    int n = between(rng, 2, MAX_NUMBER_DIGITS), i, w, h, font = -1;
    float frac = uniform(rng, 0.30f, 0.70f), dh = uniform(rng, 14, 200), margin = uniform(rng, MARGIN, 0.15f);
    float total, max_glyph_h = 0, x, baseline;
    ink canvas;
    if (chance(rng, 0.5f)) font = (int)mlp_rng_below(rng, (uint32_t)s->n_fonts);
    for (i = 0; i < n; i++) {
        d[i] = font >= 0 ? font_digit(s, font, (int)mlp_rng_below(rng, 10))
                         : mnist_digit(s, (int)mlp_rng_below(rng, (uint32_t)s->n_mnist));
        label[i] = (char)('0' + d[i].label);
        if (d[i].ink.h > max_glyph_h) max_glyph_h = (float)d[i].ink.h;
        angle[i] = uniform(rng, -4, 4) * PI / 180;
        gap[i] = uniform(rng, 0.05f, 0.40f);
        jitter[i] = uniform(rng, -0.03f, 0.03f);
    }
    label[n] = '\0';
    /* one font keeps its own digit heights (all share a scale); MNIST digits
       were each normalised to the same box, so each gets the full height */
    for (i = 0; i < n; i++) rel_h[i] = font >= 0 ? d[i].ink.h / max_glyph_h : 1.0f;
    for (;;) {
        total = 0;
        for (i = 0; i < n; i++) {
            rotated_box(dh * rel_h[i] * d[i].ink.w / d[i].ink.h, dh * rel_h[i], angle[i], &bw[i], &bh[i]);
            total += bw[i] + (i ? gap[i] * (bw[i] + bw[i - 1]) / 2 : 0);
        }
        w = (int)ceilf(total / (1 - 2 * margin));
        h = (int)ceilf(dh * 1.15f / frac);
        if (w <= MAX_NUMBER_WIDTH && h <= MAX_SIDE) break;
        dh *= 0.9f;
    }
    if (w < MIN_SIDE) w = MIN_SIDE;
    if (h < MIN_SIDE) h = MIN_SIDE;
    canvas = ink_new(w, h);
    x = (w - total) / 2;
    /* the row needs 1.15 dh: turned digits are up to 1.07 dh tall, plus jitter */
    baseline = h * MARGIN + uniform(rng, 0, h * (1 - 2 * MARGIN) - dh * 1.15f) + dh * 1.1f;
    for (i = 0; i < n; i++) {
        placement p;
        if (i) x += gap[i] * (bw[i] + bw[i - 1]) / 2;
        p.height = dh * rel_h[i];
        p.angle = angle[i];
        p.cx = x + bw[i] / 2;
        p.cy = baseline - bh[i] / 2 + jitter[i] * dh;
        draw_digit(&canvas, &d[i], p);
        x += bw[i];
        ink_free(&d[i].ink);
    }
    *digit_h = dh;
    return canvas;
}

/* ---- reject: no readable digit -------------------------------------------- */

static void draw_specks(mlp_rng *rng, ink *canvas)
{
    int n = between(rng, 2, 8), i, x, y;
    float side = (float)(canvas->w < canvas->h ? canvas->w : canvas->h);
    for (i = 0; i < n; i++) {
        float r = uniform(rng, 0.004f, 0.015f) * side + 0.5f;
        float cx = uniform(rng, 0, (float)canvas->w), cy = uniform(rng, 0, (float)canvas->h);
        for (y = (int)(cy - r - 1); y <= (int)(cy + r + 1); y++)
            for (x = (int)(cx - r - 1); x <= (int)(cx + r + 1); x++) {
                float dist;
                if (x < 0 || y < 0 || x >= canvas->w || y >= canvas->h) continue;
                dist = sqrtf((x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy));
                if (clamp01(r + 0.5f - dist) > canvas->c[(size_t)y * canvas->w + x])
                    canvas->c[(size_t)y * canvas->w + x] = clamp01(r + 0.5f - dist);
            }
    }
}

/* ---- perspective (photo) --------------------------------------------------- */

/* Solves the 8 unknowns of the homography taking the canvas corners to the
   moved ones (Gaussian elimination with partial pivoting). */
static void homography(float from[4][2], float to[4][2], float hm[9])
{
    double a[8][9];
    int i, j, k;
    for (i = 0; i < 4; i++) {
        double x = from[i][0], y = from[i][1], u = to[i][0], v = to[i][1];
        double r0[9] = { x, y, 1, 0, 0, 0, -u * x, -u * y, u };
        double r1[9] = { 0, 0, 0, x, y, 1, -v * x, -v * y, v };
        memcpy(a[2 * i], r0, sizeof r0);
        memcpy(a[2 * i + 1], r1, sizeof r1);
    }
    for (i = 0; i < 8; i++) {
        int best = i;
        for (k = i + 1; k < 8; k++) if (fabs(a[k][i]) > fabs(a[best][i])) best = k;
        for (j = 0; j < 9; j++) { double t = a[i][j]; a[i][j] = a[best][j]; a[best][j] = t; }
        for (k = 0; k < 8; k++) {
            double f;
            if (k == i) continue;
            f = a[k][i] / a[i][i];
            for (j = i; j < 9; j++) a[k][j] -= f * a[i][j];
        }
    }
    for (i = 0; i < 8; i++) hm[i] = (float)(a[i][8] / a[i][i]);
    hm[8] = 1;
}

static int ink_inside_margin(const ink *m, float margin)
{
    int x, y, mx = (int)(m->w * margin), my = (int)(m->h * margin);
    for (y = 0; y < m->h; y++)
        for (x = 0; x < m->w; x++)
            if (m->c[(size_t)y * m->w + x] > 0.02f && (x < mx || y < my || x >= m->w - mx || y >= m->h - my))
                return 0;
    return 1;
}

/* Output pixel -> where it was on the flat paper: corners moved by up to 8%.
   Retried smaller if the tilted digit comes closer than 4% to an edge. */
static ink perspective(mlp_rng *rng, const ink *flat)
{
    float from[4][2], to[4][2], hm[9], amount = 0.08f;
    int attempt, i, x, y;
    ink out = ink_new(flat->w, flat->h);
    for (attempt = 0; attempt < 12; attempt++, amount *= 0.7f) {
        for (i = 0; i < 4; i++) {
            from[i][0] = (i == 1 || i == 2) ? (float)flat->w : 0;
            from[i][1] = (i >= 2) ? (float)flat->h : 0;
            to[i][0] = from[i][0] + uniform(rng, -amount, amount) * flat->w;
            to[i][1] = from[i][1] + uniform(rng, -amount, amount) * flat->h;
        }
        homography(from, to, hm);
        for (y = 0; y < flat->h; y++)
            for (x = 0; x < flat->w; x++) {
                float px = x + 0.5f, py = y + 0.5f, q = hm[6] * px + hm[7] * py + hm[8];
                float u = (hm[0] * px + hm[1] * py + hm[2]) / q - 0.5f;
                float v = (hm[3] * px + hm[4] * py + hm[5]) / q - 0.5f;
                out.c[(size_t)y * out.w + x] = ink_sample(flat, u, v);
            }
        if (ink_inside_margin(&out, 0.04f)) break;
    }
    if (attempt == 12) memcpy(out.c, flat->c, (size_t)flat->w * flat->h * sizeof *out.c);
    return out;
}

/* ---- appearance: paper, ink, polarity, colour, transparency -------------- */

enum { GRAY = 1, GRAY_ALPHA = 2, RGB = 3, RGBA = 4 };

typedef struct style { float paper[3], ink[3], under[3]; int channels, transparent; } style;

/* A picture: planar channels 0..2 colour (equal for gray), 3 alpha. */
typedef struct picture { int w, h, channels; float *ch[4]; } picture;

static picture picture_new(int w, int h, int channels)
{
    picture p;
    int i;
    p.w = w; p.h = h; p.channels = channels;
    for (i = 0; i < 4; i++) p.ch[i] = xcalloc((size_t)w * h, sizeof(float));
    return p;
}

static void picture_free(picture *p)
{
    int i;
    for (i = 0; i < 4; i++) { free(p->ch[i]); p->ch[i] = NULL; }
}

static int has_alpha(const picture *p) { return p->channels == GRAY_ALPHA || p->channels == RGBA; }
static int colour_planes(const picture *p) { return p->channels >= RGB ? 3 : 1; }

static void gray_colour(float *c, float lum) { c[0] = c[1] = c[2] = lum; }

/* A random hue with exactly luminance lum: a random colour scaled towards
   black, or mixed towards white, until its luminance is lum. */
static void colour_with_luminance(mlp_rng *rng, float *c, float lum)
{
    float y;
    int k;
    c[0] = mlp_rng_float(rng); c[1] = mlp_rng_float(rng); c[2] = mlp_rng_float(rng);
    y = luminance(c);
    for (k = 0; k < 3; k++) {
        if (y > lum) c[k] *= lum / y;
        else c[k] += (1 - c[k]) * (lum - y) / (1 - y + 1e-6f);
        c[k] = clamp01(c[k]);
    }
}

/* Paper and ink luminances for a wanted contrast range: dark ink on light
   paper (70%) or light on dark (chalk, screens). */
static void choose_luminances(mlp_rng *rng, float cmin, float cmax, int dark_ink, float *paper, float *ink_l)
{
    float contrast = uniform(rng, cmin, cmax);
    float p = uniform(rng, contrast, 1.0f);          /* room for the ink below */
    if (!dark_ink) p = 1.0f - p;
    *paper = p;
    *ink_l = dark_ink ? p - contrast : p + contrast;
}

static void paint_with_luminance(mlp_rng *rng, float *c, float lum, int colour)
{
    if (colour) colour_with_luminance(rng, c, lum);
    else gray_colour(c, lum);
}

static style choose_style(mlp_rng *rng, int allow_alpha, float cmin, float cmax)
{
    style st;
    float mode = mlp_rng_float(rng), paper_l, ink_l;
    int dark_ink = chance(rng, 0.7f), colour;
    memset(&st, 0, sizeof st);
    st.transparent = allow_alpha && mode >= 0.40f && mode < 0.55f;
    colour = mode < 0.40f || (st.transparent && chance(rng, 0.5f));
    st.channels = st.transparent ? (colour ? RGBA : GRAY_ALPHA) : (colour ? RGB : GRAY);
    choose_luminances(rng, cmin, cmax, dark_ink, &paper_l, &ink_l);
    paint_with_luminance(rng, st.paper, paper_l, colour);
    paint_with_luminance(rng, st.ink, ink_l, colour);
    /* paint programs store either black or the paper colour under alpha 0 */
    if (chance(rng, 0.5f)) gray_colour(st.under, 0);
    else memcpy(st.under, st.paper, sizeof st.under);
    return st;
}

/* Low-frequency value noise in [-1, 1]: grid values smoothly interpolated. */
static void paper_texture(mlp_rng *rng, float *out, int w, int h)
{
    int gx = between(rng, 2, 6), gy = between(rng, 2, 6), x, y;
    float grid[8][8];
    for (y = 0; y <= gy; y++)
        for (x = 0; x <= gx; x++) grid[y][x] = uniform(rng, -1, 1);
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            float fx = (x + 0.5f) / w * gx, fy = (y + 0.5f) / h * gy;
            int ix = (int)fx, iy = (int)fy;
            float tx = smoothstep(0, 1, fx - ix), ty = smoothstep(0, 1, fy - iy);
            float top = grid[iy][ix] * (1 - tx) + grid[iy][ix + 1] * tx;
            float bottom = grid[iy + 1][ix] * (1 - tx) + grid[iy + 1][ix + 1] * tx;
            out[(size_t)y * w + x] = top * (1 - ty) + bottom * ty;
        }
}

/* pixel = paper * (1 - c) + ink * c; transparent pictures keep the ink colour
   and carry the coverage in alpha. */
static picture compose(mlp_rng *rng, const ink *cov, const style *st)
{
    picture p = picture_new(cov->w, cov->h, st->channels);
    float amp = uniform(rng, 0.01f, 0.03f);
    size_t i, n = (size_t)cov->w * cov->h;
    int k;
    paper_texture(rng, p.ch[3], cov->w, cov->h);     /* alpha plane as scratch */
    for (i = 0; i < n; i++) {
        float c = cov->c[i], t = 1 + amp * p.ch[3][i];
        for (k = 0; k < 3; k++) {
            if (st->transparent) p.ch[k][i] = c > 0.004f ? st->ink[k] : st->under[k];
            else p.ch[k][i] = clamp01(st->paper[k] * t) * (1 - c) + st->ink[k] * c;
        }
        p.ch[3][i] = st->transparent ? c : 1.0f;
    }
    return p;
}

/* ---- degradations ------------------------------------------------------------ */

/* one line of n values spaced `stride` apart, convolved with kernel[0..2r]
   (edge values repeated outward); line holds n floats of scratch */
static void blur_line(float *v, int n, size_t stride, const float *kernel, int r, float *line)
{
    int i, k;
    for (i = 0; i < n; i++) line[i] = v[(size_t)i * stride];
    for (i = 0; i < n; i++) {
        float acc = 0;
        for (k = -r; k <= r; k++) acc += kernel[k + r] * line[i + k < 0 ? 0 : i + k >= n ? n - 1 : i + k];
        v[(size_t)i * stride] = acc;
    }
}

static void gaussian_blur_plane(float *v, int w, int h, float sigma)
{
    int r = (int)ceilf(3 * sigma), x, y, k;
    float *kernel = xcalloc((size_t)2 * r + 1, sizeof(float)), *line = xcalloc((size_t)(w > h ? w : h), sizeof(float)), sum = 0;
    for (k = -r; k <= r; k++) sum += kernel[k + r] = expf(-0.5f * k * k / (sigma * sigma));
    for (k = 0; k <= 2 * r; k++) kernel[k] /= sum;
    for (y = 0; y < h; y++) blur_line(v + (size_t)y * w, w, 1, kernel, r, line);
    for (x = 0; x < w; x++) blur_line(v + x, h, (size_t)w, kernel, r, line);
    free(kernel);
    free(line);
}

/* Gray pictures keep three equal planes: blur one and copy it. */
static void blur(picture *p, float sigma)
{
    int k, planes = colour_planes(p);
    for (k = 0; k < planes; k++) gaussian_blur_plane(p->ch[k], p->w, p->h, sigma);
    for (k = planes; k < 3; k++) memcpy(p->ch[k], p->ch[0], (size_t)p->w * p->h * sizeof(float));
    if (has_alpha(p)) gaussian_blur_plane(p->ch[3], p->w, p->h, sigma);
}

/* A lamp to one side: brightness falls linearly from 100% to `low` across
   the picture in a random direction; optionally a soft shadow (a half-plane
   or an ellipse) darkened to 60-80%. */
static void lighting(mlp_rng *rng, picture *p, float low_min, float low_max, int allow_shadow)
{
    float dir = uniform(rng, 0, 2 * PI), dx = cosf(dir), dy = sinf(dir), low = uniform(rng, low_min, low_max);
    float lo = 1e30f, hi = -1e30f, corners[4][2] = { { 0, 0 }, { 1, 0 }, { 0, 1 }, { 1, 1 } };
    int shadow = allow_shadow && chance(rng, 0.5f), ellipse = chance(rng, 0.5f), x, y, i, k;
    float depth = uniform(rng, 0.60f, 0.80f), soft = uniform(rng, 0.05f, 0.15f);
    float sx = uniform(rng, 0, 1), sy = uniform(rng, 0, 1), sdir = uniform(rng, 0, 2 * PI);
    float ra = uniform(rng, 0.2f, 0.5f), rb = uniform(rng, 0.2f, 0.5f);
    for (i = 0; i < 4; i++) {
        float t = corners[i][0] * p->w * dx + corners[i][1] * p->h * dy;
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    for (y = 0; y < p->h; y++)
        for (x = 0; x < p->w; x++) {
            float t = ((x + 0.5f) * dx + (y + 0.5f) * dy - lo) / (hi - lo), f = 1 - (1 - low) * t;
            if (shadow) {
                float u = (x + 0.5f) / p->w - sx, v = (y + 0.5f) / p->h - sy, inside;
                if (ellipse) inside = 1 - sqrtf((u * u) / (ra * ra) + (v * v) / (rb * rb));
                else inside = u * cosf(sdir) + v * sinf(sdir);
                f *= 1 - (1 - depth) * smoothstep(-soft, soft, inside);
            }
            for (k = 0; k < 3; k++) p->ch[k][(size_t)y * p->w + x] *= f;
        }
}

static void add_noise(mlp_rng *rng, picture *p, float sigma, float salt_pepper)
{
    size_t i, n = (size_t)p->w * p->h;
    int k, planes = colour_planes(p);
    for (i = 0; i < n; i++) {
        for (k = 0; k < planes; k++) p->ch[k][i] = clamp01(p->ch[k][i] + sigma * gaussian(rng));
        if (planes == 1) p->ch[1][i] = p->ch[2][i] = p->ch[0][i];
        if (mlp_rng_float(rng) < salt_pepper) {
            float v = chance(rng, 0.5f) ? 1.0f : 0.0f;
            for (k = 0; k < 3; k++) p->ch[k][i] = v;
        }
    }
}

static unsigned char to_byte(float v) { return (unsigned char)lroundf(clamp01(v) * 255.0f); }

/* Interleaved 8-bit pixels in the picture's own channel layout. */
static unsigned char *interleave(const picture *p)
{
    size_t i, n = (size_t)p->w * p->h;
    int c = p->channels, planes = colour_planes(p), k;
    unsigned char *px = xcalloc(n * c, 1);
    for (i = 0; i < n; i++) {
        for (k = 0; k < planes; k++) px[i * c + k] = to_byte(p->ch[k][i]);
        if (has_alpha(p)) px[i * c + c - 1] = to_byte(p->ch[3][i]);
    }
    return px;
}

typedef struct buffer { unsigned char *data; size_t n, cap; } buffer;

static void append_bytes(void *context, void *data, int size)
{
    buffer *b = context;
    if (b->n + (size_t)size > b->cap) {
        b->cap = (b->n + (size_t)size) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) die("out of memory%s", "");
    }
    memcpy(b->data + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

/* JPEG has no alpha, so only opaque pictures get here; the decoded pixels
   replace the picture's (classify reads PNG, so they are saved as PNG). */
static void jpeg_round_trip(picture *p, int quality)
{
    buffer b = { NULL, 0, 0 };
    unsigned char *px = interleave(p), *back;
    int w, h, n, planes = colour_planes(p), k;
    size_t i, count = (size_t)p->w * p->h;
    if (!stbi_write_jpg_to_func(append_bytes, &b, p->w, p->h, planes, px, quality)) die("JPEG encoding failed%s", "");
    back = stbi_load_from_memory(b.data, (int)b.n, &w, &h, &n, planes);
    if (!back || w != p->w || h != p->h) die("JPEG decoding failed: %s", stbi_failure_reason());
    for (i = 0; i < count; i++)
        for (k = 0; k < 3; k++) p->ch[k][i] = back[i * planes + (planes == 3 ? k : 0)] / 255.0f;
    stbi_image_free(back);
    free(px);
    free(b.data);
}

/* ---- categories ---------------------------------------------------------------- */

enum { CLEAN, JPEG, BLUR, LOWCONTRAST, LIGHTING, NOISE, PHOTO, NUMBERS, REJECT, N_CATEGORIES };
static const char *const category_name[N_CATEGORIES] = {
    "clean", "jpeg", "blur", "lowcontrast", "lighting", "noise", "photo", "numbers", "reject"
};

/* Camera and scanner pictures are never transparent. */
static int category_allows_alpha(int category)
{
    return category == CLEAN || category == BLUR || category == NUMBERS || category == REJECT;
}

static picture single_digit_picture(mlp_rng *rng, const sources *s, int category, char *label)
{
    digit_src d = random_digit(rng, s);
    float dh;
    ink cov = layout_single(rng, &d, &dh, 0);
    style st;
    picture p;
    snprintf(label, 8, "%d", d.label);
    ink_free(&d.ink);
    if (category == PHOTO) {
        ink tilted = perspective(rng, &cov);
        ink_free(&cov);
        cov = tilted;
    }
    if (category == LOWCONTRAST) st = choose_style(rng, 0, 0.12f, 0.30f);   /* alpha would carry full contrast */
    else st = choose_style(rng, category_allows_alpha(category), 0.45f, 0.95f);
    p = compose(rng, &cov, &st);
    ink_free(&cov);
    switch (category) {
    case JPEG: jpeg_round_trip(&p, between(rng, 8, 35)); break;
    case BLUR: { float sigma = uniform(rng, 0.02f, 0.06f) * dh; blur(&p, sigma < 1 ? 1 : sigma); } break;
    case LIGHTING: lighting(rng, &p, 0.55f, 0.80f, 1); break;
    case NOISE: add_noise(rng, &p, uniform(rng, 0.05f, 0.15f), uniform(rng, 0.01f, 0.04f)); break;
    case PHOTO:
        lighting(rng, &p, 0.70f, 0.90f, 0);
        blur(&p, uniform(rng, 0.8f, 1.2f));
        add_noise(rng, &p, uniform(rng, 0.02f, 0.05f), 0);
        jpeg_round_trip(&p, between(rng, 30, 60));
        break;
    default: break;
    }
    return p;
}

/* 30% get half-strength lighting or noise (never on transparent ones). */
static picture number_picture(mlp_rng *rng, const sources *s, char *label)
{
    float dh;
    ink cov = layout_number(rng, s, label, &dh);
    style st = choose_style(rng, 1, 0.45f, 0.95f);
    picture p = compose(rng, &cov, &st);
    ink_free(&cov);
    if (!st.transparent && chance(rng, 0.3f)) {
        if (chance(rng, 0.5f)) lighting(rng, &p, 0.775f, 0.90f, 0);
        else add_noise(rng, &p, uniform(rng, 0.025f, 0.075f), uniform(rng, 0.005f, 0.02f));
    }
    return p;
}

enum { BLANK, BLANK_LIT, BLANK_NOISY, NOISE_ONLY, SPECKS, CUT_DIGIT, N_REJECT_KINDS };

/* index % 6 picks the kind, so every kind gets its share of any N. */
static picture reject_picture(mlp_rng *rng, const sources *s, int index, char *label)
{
    int kind = index % N_REJECT_KINDS, opaque = kind == BLANK_LIT || kind == BLANK_NOISY || kind == NOISE_ONLY;
    float dh;
    ink cov;
    style st;
    picture p;
    strcpy(label, "reject");
    if (kind == CUT_DIGIT) {
        digit_src d = random_digit(rng, s);
        cov = layout_single(rng, &d, &dh, 1);
        ink_free(&d.ink);
    } else {
        cov = ink_new(between(rng, MIN_SIDE, MAX_SIDE), between(rng, MIN_SIDE, MAX_SIDE));
        if (kind == SPECKS) draw_specks(rng, &cov);
    }
    st = choose_style(rng, !opaque, 0.45f, 0.95f);
    p = compose(rng, &cov, &st);
    ink_free(&cov);
    if (kind == BLANK_LIT) lighting(rng, &p, 0.55f, 0.80f, 1);
    if (kind == BLANK_NOISY) add_noise(rng, &p, uniform(rng, 0.05f, 0.15f), uniform(rng, 0.01f, 0.04f));
    if (kind == NOISE_ONLY) add_noise(rng, &p, uniform(rng, 0.25f, 0.5f), uniform(rng, 0.0f, 0.1f));
    return p;
}

/* ---- output -------------------------------------------------------------------- */

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) die("cannot create directory %s", path);
}

static void write_png(const char *path, const picture *p)
{
    unsigned char *px = interleave(p);
    if (!stbi_write_png(path, p->w, p->h, p->channels, px, p->w * p->channels)) die("cannot write %s", path);
    free(px);
}

typedef struct options { int split_dev, per_category; const char *glyphs, *mnist, *out; } options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: realworld_gen [options] GLYPHDIR MNISTDIR OUTDIR\n"
        "  --split test|dev   test: MNIST t10k digits, seed 1 (default)\n"
        "                     dev: MNIST training digits, seed 2, for tuning\n"
        "  --per-category N   pictures per category, 1..100000 (default 200)\n"
        "GLYPHDIR holds TAG-D.png font glyphs (tools/realworld.sh renders them).\n"
        "Writes OUTDIR/CATEGORY/NNNN-LABEL.png and OUTDIR/manifest.csv; categories:\n"
        "clean jpeg blur lowcontrast lighting noise photo numbers reject.\n");
}

static options parse_options(int argc, char **argv)
{
    options o = { 0, 200, NULL, NULL, NULL };
    const char *positional[3];
    int i, n = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "dev")) o.split_dev = 1;
            else if (strcmp(argv[i], "test")) die("--split %s: expected test or dev", argv[i]);
        } else if (!strcmp(argv[i], "--per-category") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 100000) die("--per-category %s: expected 1..100000", argv[i]);
            o.per_category = (int)v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage(stderr);
            die("unknown or incomplete option %s", argv[i]);
        } else if (n < 3) positional[n++] = argv[i];
        else { usage(stderr); die("too many arguments (%s)", argv[i]); }
    }
    if (n != 3) { usage(stderr); exit(1); }
    o.glyphs = positional[0]; o.mnist = positional[1]; o.out = positional[2];
    return o;
}

int main(int argc, char **argv)
{
    options o = parse_options(argc, argv);
    sources s;
    char path[4096], label[MAX_NUMBER_DIGITS + 8];
    FILE *manifest;
    int category, i;
    memset(&s, 0, sizeof s);
    stbi_write_png_compression_level = 4;   /* half the time of 8, files ~10% larger */
    load_fonts(&s, o.glyphs);
    load_mnist(&s, o.mnist, o.split_dev ? "train" : "t10k");
    make_dir(o.out);
    snprintf(path, sizeof path, "%s/manifest.csv", o.out);
    if (!(manifest = fopen(path, "w"))) die("cannot write %s", path);
    fprintf(manifest, "file,category,label\n");
    for (category = 0; category < N_CATEGORIES; category++) {
        snprintf(path, sizeof path, "%s/%s", o.out, category_name[category]);
        make_dir(path);
        for (i = 0; i < o.per_category; i++) {
            mlp_rng rng;
            picture p;
            /* one stream per picture: seed by split and category, stream by index */
            mlp_rng_seed(&rng, (o.split_dev ? 2u : 1u) * 1000u + (uint64_t)category, (uint64_t)i);
            if (category == NUMBERS) p = number_picture(&rng, &s, label);
            else if (category == REJECT) p = reject_picture(&rng, &s, i, label);
            else p = single_digit_picture(&rng, &s, category, label);
            snprintf(path, sizeof path, "%s/%s/%04d-%s.png", o.out, category_name[category], i, label);
            write_png(path, &p);
            fprintf(manifest, "%s/%04d-%s.png,%s,%s\n", category_name[category], i, label, category_name[category], label);
            picture_free(&p);
        }
    }
    if (fclose(manifest) != 0) die("cannot write %s/manifest.csv", o.out);
    free_sources(&s);
    return 0;
}
