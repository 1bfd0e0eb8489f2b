/* Digit preprocessing: a bar and a ring whose results are known by hand,
   and invariance: the same digit
   translated, scaled 2-10x, inverted, drawn on a transparent background,
   lit unevenly, shadowed, noisy, with specks and stray marks, or drawn with
   a hairline or a bold pen gives nearly the same 28x28 input; pictures
   with no digit or a cut one are refused; numbers split into their digits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define SIDE MLP_DIGIT_SIDE

typedef struct canvas { int w, h, channels; float *px; } canvas;

static canvas blank(int w, int h, int channels, float gray, float alpha)
{
    canvas c;
    int i;
    c.w = w; c.h = h; c.channels = channels;
    c.px = malloc(sizeof(float) * (size_t)w * h * channels);
    for (i = 0; i < w * h; i++) {
        c.px[i * channels] = gray;
        if (channels == 2) c.px[i * 2 + 1] = alpha;
    }
    return c;
}

/* a thick anti-aliased line from (x0,y0) to (x1,y1) in units of the canvas
   scale s: coverage by distance to the segment, ink value "ink" */
static void line(canvas *c, float s, float ox, float oy, float x0, float y0, float x1, float y1, float thick, float ink)
{
    int x, y;
    x0 = ox + s * x0; y0 = oy + s * y0; x1 = ox + s * x1; y1 = oy + s * y1; thick *= s;
    for (y = 0; y < c->h; y++)
        for (x = 0; x < c->w; x++) {
            float dx = x1 - x0, dy = y1 - y0, t = ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), d, cov;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            d = hypotf(x - (x0 + t * dx), y - (y0 + t * dy));
            cov = thick / 2 + 0.5f - d;
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            if (cov > 0) {
                float *p = &c->px[((size_t)y * c->w + x) * c->channels];
                if (c->channels == 2) { /* ink colour with alpha = coverage, over what is there */
                    p[0] = ink; p[1] = p[1] > cov ? p[1] : cov;
                } else p[0] = p[0] * (1 - cov) + ink * cov;
            }
        }
}

/* a "7" about 10 x 14 units, with its top-left at (ox, oy) */
static canvas seven(int w, int h, float s, float ox, float oy, int inverted, int alpha)
{
    float paper = inverted ? 0.0f : 1.0f, ink = inverted ? 1.0f : 0.0f;
    canvas c = alpha ? blank(w, h, 2, 1.0f, 0.0f) : blank(w, h, 1, paper, 1.0f);
    line(&c, s, ox, oy, 0, 0, 10, 0, 1.6f, ink);
    line(&c, s, ox, oy, 10, 0, 3, 14, 1.6f, ink);
    line(&c, s, ox, oy, 3, 7, 9, 7, 1.2f, ink);
    return c;
}

static void run(const canvas *c, float *out)
{
    int rc = mlp_digit_preprocess(c->px, c->w, c->h, c->channels, out);
    if (rc) print_error("%s\n", mlp_error());
    assert_int_equal(rc, 0);
}

static void centre_of_mass(const float *img, double *cx, double *cy)
{
    double m = 0, mx = 0, my = 0;
    int x, y;
    for (y = 0; y < SIDE; y++)
        for (x = 0; x < SIDE; x++) { m += img[y * SIDE + x]; mx += img[y * SIDE + x] * x; my += img[y * SIDE + x] * y; }
    *cx = mx / m; *cy = my / m;
}

static void test_rectangle_by_hand(void **state)
{
    canvas c = blank(200, 200, 1, 1.0f, 1.0f);
    float out[SIDE * SIDE];
    int x, y, x0 = SIDE, x1 = -1, y0 = SIDE, y1 = -1;
    double cx, cy;
    (void)state;
    /* 12 x 80, black on white: a stroke 0.15 of its length wide, inside
       MNIST's range, so it is only scaled (by 1/4: exact area averages) */
    for (y = 50; y < 130; y++) for (x = 70; x < 82; x++) c.px[y * 200 + x] = 0.0f;
    run(&c, out);
    for (y = 0; y < SIDE; y++)
        for (x = 0; x < SIDE; x++)
            if (out[y * SIDE + x] > 0) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                /* a solid block stays solid, but for its corners: the
                   median filter rounds a corner pixel (4 of its 9) away,
                   1/16 of an output pixel */
                assert_true(out[y * SIDE + x] >= 255.0f * 15 / 16 - 0.01f);
            }
    assert_true(out[(y0 + 5) * SIDE + x0 + 1] == 255.0f);
    assert_int_equal(x1 - x0 + 1, 3);    /* longer side 20, aspect 12:80 kept */
    assert_int_equal(y1 - y0 + 1, 20);
    centre_of_mass(out, &cx, &cy);
    assert_true(fabs(cx - 14.01) <= 0.5 && fabs(cy - 14.00) <= 0.5);
    free(c.px);
}

/* An elliptical ring on gray paper with faint noise, the expected result
   derived by hand: the ring's outer box is 62.4 x 48 pixels (radius 24 =
   20 + 4, x stretched 1.3), so it becomes 20 x 15.4 pixels; its stroke is
   0.13 of its width, inside MNIST's range, so only scaled; its ink is full
   for |d - 20| <= 3 with a one-pixel ramp on each side, as much as a full
   band from radius 16.5 to 23.5: pi 1.3 (23.5^2 - 16.5^2) = 1143 pixels,
   times (20 / 62.4)^2 = 117 after scaling (less a little: preprocessing
   drops the faintest 15% of an anti-aliased edge); it is hollow and
   left-right symmetric. */
static void test_ring_by_hand(void **state)
{
    canvas c = blank(90, 70, 1, 0.9f, 1.0f);
    float out[SIDE * SIDE];
    int x, y, x0 = SIDE, x1 = -1, y0 = SIDE, y1 = -1;
    double ink = 0, asym = 0, cx, cy;
    (void)state;
    for (y = 0; y < 70; y++)
        for (x = 0; x < 90; x++) {
            float d = hypotf((x - 40) / 1.3f, y - 33.0f), cov = 4.0f - fabsf(d - 20.0f);
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            c.px[y * 90 + x] = 0.9f - 0.8f * cov + 0.02f * (float)((x * 7 + y * 13) % 5) / 5.0f; /* faint noise */
        }
    run(&c, out);
    for (y = 0; y < SIDE; y++)
        for (x = 0; x < SIDE; x++)
            if (out[y * SIDE + x] > 0) {
                ink += out[y * SIDE + x] / 255.0;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    print_message("ring: %d x %d, ink %.1f\n", x1 - x0 + 1, y1 - y0 + 1, ink);
    assert_int_equal(x1 - x0 + 1, 20);
    assert_true(y1 - y0 + 1 >= 15 && y1 - y0 + 1 <= 16);
    assert_true(fabs(ink - 117.0) < 0.12 * 117.0);
    assert_true(out[((y0 + y1) / 2) * SIDE + (x0 + x1) / 2] == 0.0f); /* hollow */
    for (y = y0; y <= y1; y++)
        for (x = x0; x <= x1; x++) asym += fabs(out[y * SIDE + x] - out[y * SIDE + (x0 + x1 - x)]) / 255.0;
    assert_true(asym < 0.1 * 2 * ink);
    centre_of_mass(out, &cx, &cy);
    assert_true(fabs(cx - 14.01) <= 0.5 && fabs(cy - 14.00) <= 0.5);
    free(c.px);
}

/* mean absolute difference, as a fraction of full scale */
static double difference(const float *a, const float *b)
{
    double d = 0;
    int i;
    for (i = 0; i < SIDE * SIDE; i++) d += fabs(a[i] - b[i]);
    return d / (SIDE * SIDE * 255.0);
}

static void test_invariance(void **state)
{
    float base[SIDE * SIDE], other[SIDE * SIDE];
    double bx, by, cx, cy;
    canvas c = seven(60, 60, 3.0f, 15, 9, 0, 0);
    int scale;
    (void)state;
    run(&c, base); free(c.px);
    centre_of_mass(base, &bx, &by);
    /* translated */
    c = seven(200, 150, 3.0f, 120, 90, 0, 0); run(&c, other); free(c.px);
    assert_true(difference(base, other) < 0.01);
    /* inverted: light ink on dark paper */
    c = seven(60, 60, 3.0f, 15, 9, 1, 0); run(&c, other); free(c.px);
    assert_true(difference(base, other) < 0.01);
    /* dark ink on a transparent background */
    c = seven(60, 60, 3.0f, 15, 9, 0, 1); run(&c, other); free(c.px);
    assert_true(difference(base, other) < 0.01);
    /* scaled 2x .. 10x relative to a small drawing */
    for (scale = 2; scale <= 10; scale += 4) {
        c = seven(20 * scale, 20 * scale, 1.0f * scale, 5.0f * scale, 3.0f * scale, 0, 0);
        run(&c, other); free(c.px);
        centre_of_mass(other, &cx, &cy);
        print_message("scale %d: difference %.4f\n", scale, difference(base, other));
        if (difference(base, other) >= 0.06) print_error("scale %d: difference %.3f\n", scale, difference(base, other));
        assert_true(difference(base, other) < 0.06);
        assert_true(fabs(cx - bx) < 0.6 && fabs(cy - by) < 0.6);
    }
}

static void test_no_digit(void **state)
{
    canvas c = blank(50, 40, 1, 0.97f, 1.0f);
    float out[SIDE * SIDE];
    int i;
    (void)state;
    assert_true(mlp_digit_preprocess(c.px, c.w, c.h, 1, out) < 0);
    assert_string_equal(mlp_error(), "no digit found (the image is blank)");
    for (i = 0; i < 50 * 40; i++) c.px[i] = 0.5f + 0.04f * (float)(i % 3); /* faint noise only */
    assert_true(mlp_digit_preprocess(c.px, c.w, c.h, 1, out) < 0);
    free(c.px);
    c = blank(50, 40, 2, 0.0f, 0.0f); /* fully transparent */
    assert_true(mlp_digit_preprocess(c.px, c.w, c.h, 2, out) < 0);
    free(c.px);
}

static void test_bad_arguments(void **state)
{
    float px[4] = {0, 1, 0, 1}, out[SIDE * SIDE];
    (void)state;
    assert_true(mlp_digit_preprocess(px, 2, 2, 3, out) < 0);
    assert_true(mlp_digit_preprocess(px, 0, 2, 1, out) < 0);
    assert_true(mlp_digit_preprocess(px, 1 << 20, 1 << 20, 1, out) < 0);
    assert_non_null(strstr(mlp_error(), "outside 1.."));
    assert_true(mlp_digit_preprocess(NULL, 2, 2, 1, out) < 0);
    /* two pixels of ink touching the edge: refused with a reason, not a crash */
    assert_true(mlp_digit_preprocess(px, 2, 2, 1, out) < 0);
    assert_true(strstr(mlp_error(), "no digit found") || strstr(mlp_error(), "cut by"));
    {   /* values outside 0..1 (a caller passing 0..255, or NaN) are clamped, not indexed with */
        float wild[6] = {255.0f, -3.0f, NAN, 1e30f, 0.5f, 255.0f};
        (void)mlp_digit_preprocess(wild, 3, 2, 1, out);
    }
    {   /* ink running off the bottom-right corner, at sizes whose scale factors round up: cut */
        int w, h, i;
        for (w = 21; w < 90; w += 7)
            for (h = 19; h < 70; h += 5) {
                float *img = malloc(sizeof(float) * (size_t)w * h);
                for (i = 0; i < w * h; i++) img[i] = (i % w) > w / 3 && (i / w) > h / 4 ? 0.0f : 1.0f;
                assert_true(mlp_digit_preprocess(img, w, h, 1, out) < 0); /* cut, or too small to be a digit */
                assert_true(strstr(mlp_error(), "cut by the picture's edge") || strstr(mlp_error(), "no digit found"));
                free(img);
            }
    }
}

/* deterministic noise for the tests: our own generator, not rand() */
static float noise_uniform(mlp_rng *rng) { return mlp_rng_float(rng); }
static float noise_gauss(mlp_rng *rng)
{
    float u = noise_uniform(rng) + 1e-7f, v = noise_uniform(rng);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static void expect_close(const canvas *c, const float *base, double limit, const char *what)
{
    float other[SIDE * SIDE];
    double d;
    run(c, other);
    d = difference(base, other);
    print_message("%s: difference %.4f\n", what, d);
    if (d >= limit) fail_msg("%s: difference %.4f (limit %.3f)", what, d, limit);
}

static void expect_refused(const canvas *c, const char *why)
{
    float out[SIDE * SIDE];
    assert_true(mlp_digit_preprocess(c->px, c->w, c->h, c->channels, out) < 0);
    if (!strstr(mlp_error(), why)) fail_msg("expected \"%s\", got \"%s\"", why, mlp_error());
}

/* Lighting: brightness falling across the page to 55%, or a shadow over
   half of it at 60%, multiplies every pixel (ink and paper alike). The old
   single background level turned the dark side into ink. */
static void test_uneven_light(void **state)
{
    float base[SIDE * SIDE];
    canvas c = seven(160, 120, 5.0f, 55, 25, 0, 0);
    int x, y;
    (void)state;
    run(&c, base);
    for (y = 0; y < c.h; y++)
        for (x = 0; x < c.w; x++) c.px[y * c.w + x] *= 1.0f - 0.45f * (float)x / (float)(c.w - 1);
    expect_close(&c, base, 0.02, "gradient to 55%");
    free(c.px);
    c = seven(160, 120, 5.0f, 55, 25, 0, 0);
    for (y = 0; y < c.h; y++)
        for (x = 0; x < c.w; x++) {
            float t = (float)(x + y - 150) / 40.0f; /* a soft-edged shadow over a corner, across the 7's stem */
            float shade = t < 0 ? 1.0f : t > 1 ? 0.6f : 1.0f - 0.4f * t;
            c.px[y * c.w + x] *= shade;
        }
    expect_close(&c, base, 0.03, "shadow at 60%");
    free(c.px);
}

/* Sensor noise: Gaussian (sigma 0.12) on every pixel plus 3% salt and
   pepper. The old threshold let specks stretch the box over the picture. */
static void test_noise(void **state)
{
    float base[SIDE * SIDE];
    canvas c = seven(160, 120, 5.0f, 55, 25, 0, 0);
    mlp_rng rng;
    int i;
    (void)state;
    run(&c, base);
    mlp_rng_seed(&rng, 11, 1);
    for (i = 0; i < c.w * c.h; i++) {
        float v = c.px[i] + 0.12f * noise_gauss(&rng), u = noise_uniform(&rng);
        c.px[i] = u < 0.015f ? 0.0f : u < 0.03f ? 1.0f : v;
    }
    expect_close(&c, base, 0.06, "noise");
    free(c.px);
}

/* Specks, a smudge and a second mark away from the digit are dropped; a
   stroke broken in two stays one digit. */
static void test_stray_marks(void **state)
{
    float base[SIDE * SIDE];
    canvas c = seven(200, 160, 5.0f, 70, 40, 0, 0);
    int x, y;
    (void)state;
    run(&c, base);
    for (y = 10; y < 13; y++) for (x = 10; x < 13; x++) c.px[y * c.w + x] = 0.0f;      /* specks */
    for (y = 140; y < 142; y++) for (x = 180; x < 183; x++) c.px[y * c.w + x] = 0.0f;
    line(&c, 1.0f, 0, 0, 150, 130, 185, 150, 3.0f, 0.0f);                               /* a mark far off */
    expect_close(&c, base, 0.01, "specks and a far mark");
    free(c.px);
    c = seven(200, 160, 5.0f, 70, 40, 0, 0);
    for (y = 60; y < 70; y++) for (x = 0; x < c.w; x++) c.px[y * c.w + x] = 1.0f;      /* a gap across the stem */
    {
        float out[SIDE * SIDE];
        mlp_digit_box box;
        assert_int_equal(mlp_digit_preprocess_ex(c.px, c.w, c.h, 1, out, &box, NULL, NULL), 0);
        /* the whole 7 (about 50 x 70 pixels from (70, 40)), not just its top */
        assert_true(box.y <= 42 && box.y + box.h >= 108);
    }
    free(c.px);
}

/* Pen width: a ring drawn with a hairline (1.5 pixels on a 240-pixel
   picture) or a bold pen (50) comes out with MNIST's stroke, 0.11 of the
   digit's 20 pixels (2.2 pixels); a pen inside MNIST's range (12 pixels,
   0.07 of the ring's 172) is only scaled: 12 x 20 / 172 = 1.4 pixels. The
   ink (sum of intensities) is about the centre line's length times that. */
static void test_stroke_width(void **state)
{
    static const float pens[3] = {1.5f, 50.0f, 12.0f};
    float out[3][SIDE * SIDE];
    int k, x, y;
    (void)state; /* the centre line of a bold ring lies further inside its box: compare widths, not pictures */
    for (k = 0; k < 3; k++) {
        canvas c = blank(260, 260, 1, 1.0f, 1.0f);
        double ink = 0, width = k < 2 ? 2.2 : 12.0 * 20.0 / 172.0, radius = 10.0 - width / 2, expected;
        for (y = 0; y < c.h; y++)
            for (x = 0; x < c.w; x++) {
                float d = fabsf(hypotf(x - 130.0f, y - 130.0f) - 80.0f), cov = pens[k] / 2 + 0.5f - d;
                c.px[y * c.w + x] = 1.0f - (cov < 0 ? 0 : cov > 1 ? 1 : cov);
            }
        run(&c, out[k]);
        for (x = 0; x < SIDE * SIDE; x++) ink += out[k][x] / 255.0;
        expected = 2 * 3.14159265 * radius * width;
        print_message("pen %.1f: ink %.1f, expected about %.1f\n", pens[k], ink, expected);
        if (fabs(ink - expected) > 0.3 * expected) fail_msg("pen %.1f: ink %.1f, expected %.1f +- 30%%", pens[k], ink, expected);
        free(c.px);
    }
}

/* The stroke width estimate on bars of known width: W = 4 mean(d) - 2 for a
   chamfer distance d that is 1 on the stroke's edge pixels. */
static void test_stroke_estimate(void **state)
{
    int widths[4] = {2, 3, 6, 11}, k, x, y, dist[(20 + 2) * (200 + 2)];
    (void)state;
    for (k = 0; k < 4; k++) {
        float v[20 * 200];
        for (y = 0; y < 200; y++) for (x = 0; x < 20; x++) v[y * 20 + x] = x >= 2 && x < 2 + widths[k] ? 1.0f : 0.0f;
        float w;
        w = mlp__stroke_width(v, 20, 0, 0, 20, 200, dist);
        print_message("bar %d: estimate %.2f\n", widths[k], w);
        assert_true(fabsf(w - (float)widths[k]) < 0.1f * widths[k] + 0.2f);
    }
}

/* Clear refusals instead of confident guesses. */
static void test_refusals(void **state)
{
    canvas c = seven(120, 100, 5.0f, 90, 20, 0, 0); /* x 90..140 on a canvas 120 wide */
    mlp_rng rng;
    int i, x, y;
    (void)state;
    expect_refused(&c, "cut by the picture's edge");
    free(c.px);
    c = blank(200, 150, 1, 0.9f, 1.0f);
    mlp_rng_seed(&rng, 5, 5);
    for (i = 0; i < c.w * c.h; i++) c.px[i] += 0.1f * noise_gauss(&rng);
    expect_refused(&c, "no digit found");
    for (i = 0; i < 6; i++) { /* a few isolated specks, 2x2 */
        x = 10 + (int)mlp_rng_below(&rng, 180); y = 10 + (int)mlp_rng_below(&rng, 130);
        c.px[y * c.w + x] = c.px[y * c.w + x + 1] = c.px[(y + 1) * c.w + x] = c.px[(y + 1) * c.w + x + 1] = 0.0f;
    }
    expect_refused(&c, "no digit found");
    free(c.px);
    c = blank(200, 150, 1, 1.0f, 1.0f);
    for (y = 70; y < 74; y++) for (x = 20; x < 180; x++) c.px[y * c.w + x] = 0.0f; /* a rule, not a digit */
    expect_refused(&c, "a line or a smudge");
    free(c.px);
    c = blank(200, 150, 1, 1.0f, 1.0f);
    for (y = 65; y < 85; y++) for (x = 40; x < 160; x++) c.px[y * c.w + x] = 0.0f; /* a bar 6 times as wide as tall */
    expect_refused(&c, "a line or a smudge");
    free(c.px);
}

/* Connected components by definition: 8-connected (a diagonal chain is one
   component), numbered in scan order, ink below the threshold left out,
   and each one's box, area, ink and border pixels counted. */
static void test_components_by_definition(void **state)
{
    enum { W = 7, H = 5 };
    static float ink[W * H] = {1, 0, 0, 0, 0, 0, 0,
                               0, 1, 0, 0, 0, 1, 1,
                               0, 0, 1, 0, 0, 0, 1,
                               0, 0, 0, 0, 0, 0, 0,
                               0.5f, 0, 0, 0, 0, 0, 0.2f};
    static const int want_label[W * H] = {0, -1, -1, -1, -1, -1, -1,
                                          -1, 0, -1, -1, -1, 1, 1,
                                          -1, -1, 0, -1, -1, -1, 1,
                                          -1, -1, -1, -1, -1, -1, -1,
                                          2, -1, -1, -1, -1, -1, -1};
    static const int want_box[3][4] = {{0, 0, 2, 2}, {5, 1, 6, 2}, {0, 4, 0, 4}}, want_area[3] = {3, 3, 1}, want_border[3] = {1, 2, 1};
    static const double want_mass[3] = {3.0, 3.0, 0.5};
    int label[W * H], i;
    mlp__page p;
    mlp__component *c = NULL;
    (void)state;
    memset(&p, 0, sizeof p);
    p.w = W; p.h = H; p.ink = ink; p.label = label; p.threshold = 0.3f;
    assert_int_equal(mlp__find_components(&p, &c), 3);
    for (i = 0; i < W * H; i++)
        if (label[i] != want_label[i]) fail_msg("pixel (%d,%d): component %d, want %d", i % W, i / W, label[i], want_label[i]);
    for (i = 0; i < 3; i++) {
        assert_true(c[i].x0 == want_box[i][0] && c[i].y0 == want_box[i][1] && c[i].x1 == want_box[i][2] && c[i].y1 == want_box[i][3]);
        assert_int_equal(c[i].area, want_area[i]);
        assert_int_equal(c[i].on_border, want_border[i]);
        assert_true(fabs(c[i].mass - want_mass[i]) < 1e-6);
    }
    free(c);
}

/* The digit is the heaviest component plus the pieces of at least 3% of its
   ink that reach into its box grown by a quarter of its size. */
static void test_select_digit_by_definition(void **state)
{
    /* main: 40 x 80 (margin 20); a 10% piece 3 pixels right of it and above
       it joins; a 2% piece inside is too light; a heavy far one stays out */
    mlp__component c[4];
    int box[4];
    (void)state;
    memset(c, 0, sizeof c);
    c[0].x0 = 20;  c[0].y0 = 20;  c[0].x1 = 59;  c[0].y1 = 99;  c[0].mass = 100.0;
    c[1].x0 = 62;  c[1].y0 = 10;  c[1].x1 = 70;  c[1].y1 = 18;  c[1].mass = 10.0;
    c[2].x0 = 30;  c[2].y0 = 30;  c[2].x1 = 32;  c[2].y1 = 32;  c[2].mass = 2.0;
    c[3].x0 = 200; c[3].y0 = 200; c[3].x1 = 240; c[3].y1 = 280; c[3].mass = 50.0;
    assert_int_equal(mlp__select_digit(c, 4, box), 2);
    assert_true(c[0].keep && c[1].keep && !c[2].keep && !c[3].keep);
    assert_true(box[0] == 20 && box[1] == 10 && box[2] == 70 && box[3] == 99);
}

static int page_w, page_h;
static void first_stage_size(void *user, const char *name, const float *v, int w, int h)
{
    (void)v;
    if (!strcmp(name, "picture (gray)")) { page_w = w; page_h = h; *(int *)user += 1; }
}

/* A small picture is enlarged by the smallest whole factor that brings its
   shorter side to 128 pixels: 28 x 28 by 5, 50 x 60 by 3; 200 x 150 as it is. */
static void test_page_size(void **state)
{
    static const int sizes[3][4] = {{28, 28, 140, 140}, {50, 60, 150, 180}, {200, 150, 200, 150}};
    float out[SIDE * SIDE];
    int k, calls;
    (void)state;
    for (k = 0; k < 3; k++) {
        float s = (float)(sizes[k][0] < sizes[k][1] ? sizes[k][0] : sizes[k][1]) / 20.0f;
        canvas c = seven(sizes[k][0], sizes[k][1], s, sizes[k][0] / 5.0f, sizes[k][1] / 8.0f, 0, 0);
        calls = 0;
        mlp_digit_preprocess_ex(c.px, c.w, c.h, 1, out, NULL, first_stage_size, &calls);
        assert_int_equal(calls, 1);
        if (page_w != sizes[k][2] || page_h != sizes[k][3])
            fail_msg("%d x %d: page %d x %d, want %d x %d", sizes[k][0], sizes[k][1], page_w, page_h, sizes[k][2], sizes[k][3]);
        {   /* the box comes back in the picture's pixels: the seven's lines
               (x 0..10, y 0..14 units) and half its pen (0.8 units) */
            float ox = sizes[k][0] / 5.0f, oy = sizes[k][1] / 8.0f;
            mlp_digit_box box;
            assert_int_equal(mlp_digit_preprocess_ex(c.px, c.w, c.h, 1, out, &box, NULL, NULL), 0);
            if (fabsf(box.x - (ox - 0.8f * s)) > 1.5f || fabsf(box.y - (oy - 0.8f * s)) > 1.5f ||
                fabsf(box.w - 11.6f * s) > 2.5f || fabsf(box.h - 15.6f * s) > 2.5f)
                fail_msg("%d x %d: box %d,%d %dx%d", sizes[k][0], sizes[k][1], box.x, box.y, box.w, box.h);
        }
        free(c.px);
    }
}

/* Two pieces one above the other, overlapping in x by two thirds of the
   narrower (less than half the wider: a 5's flag over its body, a broken
   stroke) are one digit. */
static void test_number_pieces_over_one_another(void **state)
{
    float *out = malloc(sizeof(float) * 4 * SIDE * SIDE);
    mlp_digit_box boxes[4];
    canvas c = blank(300, 150, 1, 1.0f, 1.0f);
    int n;
    (void)state;
    line(&c, 1.0f, 0, 0, 124, 24, 160, 24, 8, 0.0f);   /* top piece, x 120..164 */
    line(&c, 1.0f, 0, 0, 128, 24, 128, 60, 8, 0.0f);
    line(&c, 1.0f, 0, 0, 85, 80, 145, 80, 8, 0.0f);    /* bottom piece, x 81..149, 16 pixels lower */
    line(&c, 1.0f, 0, 0, 145, 80, 145, 120, 8, 0.0f);
    line(&c, 1.0f, 0, 0, 145, 120, 85, 120, 8, 0.0f);
    n = mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 4, NULL, NULL);
    if (n < 0) fail_msg("%s", mlp_error());
    assert_int_equal(n, 1);
    assert_true(abs(boxes[0].y - 20) <= 2 && abs(boxes[0].y + boxes[0].h - 125) <= 2);
    free(c.px); free(out);
}

/* Numbers: three sevens in a row read as three digits, left to right, each
   boxed where it was drawn and preprocessed like a single seven. */
static void test_number(void **state)
{
    float base[SIDE * SIDE], *out = malloc(sizeof(float) * 4 * SIDE * SIDE);
    mlp_digit_box boxes[4];
    canvas one = seven(80, 100, 5.0f, 15, 15, 0, 0), c = blank(300, 100, 1, 1.0f, 1.0f);
    int k, x, y, n;
    (void)state;
    run(&one, base);
    for (k = 0; k < 3; k++) /* the same 80 x 100 tile at x = 10, 110, 210 */
        for (y = 0; y < 100; y++) for (x = 0; x < 80; x++) c.px[y * 300 + 10 + 100 * k + x] = one.px[y * 80 + x];
    n = mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 4, NULL, NULL);
    if (n < 0) fail_msg("%s", mlp_error());
    assert_int_equal(n, 3);
    for (k = 0; k < 3; k++) {
        /* the seven's lines run x 15..65, y 15..85 of its tile, and its pen
           (1.6 x 5 = 8 pixels) reaches 4 pixels beyond: x 11..69, y 11..89 */
        print_message("digit %d: box %d,%d %dx%d\n", k, boxes[k].x, boxes[k].y, boxes[k].w, boxes[k].h);
        assert_true(abs(boxes[k].x - (10 + 100 * k + 11)) <= 2 && abs(boxes[k].y - 11) <= 2);
        assert_true(abs(boxes[k].w - 59) <= 3 && abs(boxes[k].h - 79) <= 3);
        assert_true(difference(base, out + k * SIDE * SIDE) < 0.01);
    }
    assert_true(mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 2, NULL, NULL) < 0); /* more than allowed */
    assert_non_null(strstr(mlp_error(), "3 digits found"));
    /* a mark under two fifths of the digits' height (a hyphen, a dot) is no digit */
    for (y = 44; y < 66; y++) for (x = 94; x < 104; x++) c.px[y * 300 + x] = 0.0f;
    n = mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 4, NULL, NULL);
    assert_int_equal(n, 3);
    assert_true(abs(boxes[1].x - 121) <= 2);
    free(one.px); free(c.px); free(out);
}

/* Touching digits: the same sevens 52 pixels apart, so each one's bar runs
   into the next one's (one component), are cut apart at the necks; a single
   wide ring (a 0 wider than tall) has no neck and stays one digit. */
static void test_touching_digits(void **state)
{
    float *out = malloc(sizeof(float) * 4 * SIDE * SIDE);
    mlp_digit_box boxes[4];
    canvas one = seven(80, 100, 5.0f, 15, 15, 0, 0), c = blank(260, 100, 1, 1.0f, 1.0f);
    int k, x, y, n;
    (void)state;
    for (k = 0; k < 3; k++)
        for (y = 0; y < 100; y++)
            for (x = 0; x < 80; x++) {
                float *p = &c.px[y * 260 + 20 + 52 * k + x];
                *p = fminf(*p, one.px[y * 80 + x]);
            }
    n = mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 4, NULL, NULL);
    if (n < 0) fail_msg("%s", mlp_error());
    for (k = 0; k < n; k++) print_message("touching digit %d: box %d,%d %dx%d\n", k, boxes[k].x, boxes[k].y, boxes[k].w, boxes[k].h);
    assert_int_equal(n, 3);
    for (k = 0; k < 3; k++) /* each box starts near its seven's left end, 20 + 52 k + 11 */
        assert_true(abs(boxes[k].x - (31 + 52 * k)) <= 6);
    free(c.px);
    c = blank(200, 100, 1, 1.0f, 1.0f);
    for (y = 0; y < c.h; y++)
        for (x = 0; x < c.w; x++) {
            float d = fabsf(hypotf((x - 100) / 1.6f, y - 50.0f) - 36.0f), cov = 4.5f - d;
            c.px[y * c.w + x] = 1.0f - (cov < 0 ? 0 : cov > 1 ? 1 : cov);
        }
    n = mlp_number_preprocess(c.px, c.w, c.h, 1, out, boxes, 4, NULL, NULL);
    assert_int_equal(n, 1);
    free(one.px); free(c.px); free(out);
}

/* Odd shapes are bounded and safe: long strips, one pixel, huge sides. */
static void test_extreme_shapes(void **state)
{
    static const int shapes[][2] = {{1, 1}, {1, 5000}, {5000, 1}, {8000, 40}, {40, 8000}, {3, 3}};
    float out[SIDE * SIDE];
    int s, i;
    (void)state;
    for (s = 0; s < 6; s++) {
        int w = shapes[s][0], h = shapes[s][1];
        float *px = malloc(sizeof(float) * (size_t)w * h);
        for (i = 0; i < w * h; i++) px[i] = ((unsigned)i * 7919u) % 13u < 3 ? 0.0f : 1.0f;
        (void)mlp_digit_preprocess(px, w, h, 1, out); /* a digit or a refusal; never a crash */
        free(px);
    }
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The filters against their definitions, on odd shapes: the 3x3 median
   (edge pixels stand in for missing neighbours) against sorting the nine
   values; the square max and min (van Herk's three passes, rows then the
   transpose) against scanning the whole square, outside counting as nothing. */
static void test_filters_by_definition(void **state)
{
    static const int shapes[][3] = {{1, 1, 1}, {7, 3, 2}, {13, 29, 3}, {40, 17, 5}, {5, 64, 9}};
    mlp_rng rng;
    int s;
    (void)state;
    mlp_rng_seed(&rng, 21, 2);
    for (s = 0; s < 5; s++) {
        int w = shapes[s][0], h = shapes[s][1], r = shapes[s][2], x, y, i, j, take_max, n = w * h;
        float *src = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * n);
        float *buf = malloc(sizeof(float) * 3 * ((w > h ? w : h) + 2 * r + 1));
        for (i = 0; i < n; i++) src[i] = mlp_rng_float(&rng);
        mlp__median3x3(got, src, w, h);
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++) {
                float v[9];
                int k = 0;
                for (j = -1; j <= 1; j++)
                    for (i = -1; i <= 1; i++) {
                        int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i, yy = y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j;
                        v[k++] = src[yy * w + xx];
                    }
                qsort(v, 9, sizeof(float), compare_floats);
                if (got[y * w + x] != v[4]) fail_msg("median %dx%d at (%d,%d): %g, sorted %g", w, h, x, y, got[y * w + x], v[4]);
            }
        for (take_max = 0; take_max <= 1; take_max++) {
            memcpy(got, src, sizeof(float) * n);
            mlp__square_extreme(got, w, h, r, take_max, tmp, buf);
            for (y = 0; y < h; y++)
                for (x = 0; x < w; x++) {
                    float e = src[y * w + x];
                    for (j = y - r; j <= y + r; j++)
                        for (i = x - r; i <= x + r; i++)
                            if (i >= 0 && j >= 0 && i < w && j < h) e = take_max ? fmaxf(e, src[j * w + i]) : fminf(e, src[j * w + i]);
                    if (got[y * w + x] != e) fail_msg("%s r %d, %dx%d at (%d,%d): %g, scan %g", take_max ? "max" : "min", r, w, h, x, y, got[y * w + x], e);
                }
        }
        free(src); free(got); free(tmp); free(buf);
    }
}

/* Augmentation by its properties: every image of an epoch gets its own
   distortion; a shift of up to 2 pixels moves each image's centre of mass
   by at most 2 pixels in x and in y, independently; thickening adds a pixel
   of plus-shaped pen, thinning removes one, a fraction blends. */
static void com_of(const float *img, int w, double *cx, double *cy)
{
    double m = 0, x = 0, y = 0;
    int i;
    for (i = 0; i < w * w; i++) { m += img[i]; x += img[i] * (i % w); y += img[i] * (i / w); }
    *cx = x / m; *cy = y / m;
}

static void test_augmentation_properties(void **state)
{
    enum { N = 60, W = 28 };
    mlp_dataset ds;
    mlp_augment aug;
    float *a = malloc(sizeof(float) * N * W * W), img[5 * 5], tmp[5 * 5];
    int i, j, apart = 0, distant = 0;
    double cx0, cy0;
    (void)state;
    memset(&ds, 0, sizeof ds);
    ds.n = N; ds.dim = W * W; ds.image_w = ds.image_h = W; ds.n_classes = 1;
    ds.x = malloc(sizeof(float) * N * W * W);
    ds.y = calloc(N, sizeof(int));
    for (i = 0; i < N * W * W; i++) { int x = i % W, y = (i / W) % W; ds.x[i] = (x > 9 && x < 18 && y > 5 && y < 22) ? 1.0f : 0.0f; }
    com_of(ds.x, W, &cx0, &cy0);
    memset(&aug, 0, sizeof aug);
    aug.rotate = 10; aug.elastic_alpha = 34; aug.elastic_sigma = 4;
    assert_int_equal(mlp_augment_dataset(NULL, &ds, &aug, 7, 0, a), 0);
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            if (!memcmp(a + (size_t)i * W * W, a + (size_t)j * W * W, sizeof(float) * W * W)) fail_msg("images %d and %d distorted alike", i, j);
    memset(&aug, 0, sizeof aug);
    aug.shift = 2;
    assert_int_equal(mlp_augment_dataset(NULL, &ds, &aug, 7, 0, a), 0);
    for (i = 0; i < N; i++) {
        double cx, cy;
        com_of(a + (size_t)i * W * W, W, &cx, &cy);
        if (!(fabs(cx - cx0) <= 2.001 && fabs(cy - cy0) <= 2.001)) fail_msg("image %d moved by (%g, %g)", i, cx - cx0, cy - cy0);
        apart += fabs((cx - cx0) - (cy - cy0)) > 0.5;
        distant += fabs(cx - cx0) > 1.0 || fabs(cy - cy0) > 1.0;
    }
    assert_true(apart > N / 4 && distant > N / 4);
    free(a); free(ds.x); free(ds.y);
    /* strokes: a dot grows into a plus; a 3x3 square shrinks to its centre */
    for (i = 0; i < 25; i++) img[i] = i == 12 ? 1.0f : 0.0f;
    mlp__change_thickness(img, tmp, 5, 5, 1.0f);
    for (i = 0; i < 25; i++) assert_true(img[i] == (i == 12 || i == 7 || i == 11 || i == 13 || i == 17 ? 1.0f : 0.0f));
    for (i = 0; i < 25; i++) img[i] = i == 12 ? 1.0f : 0.0f;
    mlp__change_thickness(img, tmp, 5, 5, 0.5f);
    for (i = 0; i < 25; i++) assert_true(img[i] == (i == 12 ? 1.0f : i == 7 || i == 11 || i == 13 || i == 17 ? 0.5f : 0.0f));
    for (i = 0; i < 25; i++) img[i] = (i % 5 >= 1 && i % 5 <= 3 && i / 5 >= 1 && i / 5 <= 3) ? 1.0f : 0.0f;
    mlp__change_thickness(img, tmp, 5, 5, -1.0f);
    for (i = 0; i < 25; i++) assert_true(img[i] == (i == 12 ? 1.0f : 0.0f));
}

/* Augmentation: no-op ranges give the image back exactly; the same seed and
   epoch give the same images for 1 and 2 threads; a new epoch, new ones. */
static void test_augmentation(void **state)
{
    enum { N = 40, W = 28 };
    mlp_dataset ds;
    mlp_augment none, aug;
    float *a = malloc(sizeof(float) * N * W * W), *b = malloc(sizeof(float) * N * W * W);
    mlp_net *net = mlp_create_spec("784-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    int i;
    double moved = 0, mass_a = 0, mass_src = 0;
    (void)state;
    memset(&ds, 0, sizeof ds);
    ds.n = N; ds.dim = W * W; ds.image_w = ds.image_h = W; ds.n_classes = 1;
    ds.x = malloc(sizeof(float) * N * W * W);
    ds.y = calloc(N, sizeof(int));
    for (i = 0; i < N * W * W; i++) { int x = i % W, y = (i / W) % W; ds.x[i] = (x > 9 && x < 18 && y > 5 && y < 22) ? 1.0f : 0.0f; }
    memset(&none, 0, sizeof none);
    assert_int_equal(mlp_augment_dataset(net, &ds, &none, 1, 0, a), 0);
    assert_memory_equal(a, ds.x, sizeof(float) * N * W * W);
    memset(&aug, 0, sizeof aug);
    aug.shift = 2; aug.rotate = 10; aug.scale = 0.1f; aug.shear = 0.1f; aug.elastic_alpha = 34; aug.elastic_sigma = 4;
    assert_int_equal(mlp_augment_dataset(net, &ds, &aug, 1, 3, a), 0);
    assert_int_equal(mlp_set_threads(net, 2), 0);
    assert_int_equal(mlp_augment_dataset(net, &ds, &aug, 1, 3, b), 0);
    assert_memory_equal(a, b, sizeof(float) * N * W * W);
    assert_int_equal(mlp_augment_dataset(net, &ds, &aug, 1, 4, b), 0);
    for (i = 0; i < N * W * W; i++) { moved += fabs(a[i] - ds.x[i]); mass_a += a[i]; mass_src += ds.x[i]; }
    assert_true(memcmp(a, b, sizeof(float) * N * W * W) != 0);     /* another epoch, other images */
    assert_true(moved > 0.1 * mass_src);                            /* really distorted ... */
    assert_true(mass_a > 0.7 * mass_src && mass_a < 1.3 * mass_src); /* ... but the same ink, roughly */
    aug.scale = 1.5f;
    assert_true(mlp_augment_dataset(net, &ds, &aug, 1, 0, a) < 0);
    ds.image_w = 0;
    assert_true(mlp_augment_dataset(net, &ds, &none, 1, 0, a) < 0);
    free(a); free(b); free(ds.x); free(ds.y);
    mlp_free(net);
}

/* The elastic field's blur against the direct 2-D sum it stands for:
   sum over (u, v) of g(u) g(v) f(x + u, y + v), zero outside the field. */
static void test_gaussian_blur(void **state)
{
    enum { W = 37, H = 9 }; /* 37: two full vectors and a tail */
    static const float sigmas[3] = {0.7f, 1.5f, 4.0f};
    float f[W * H], tmp[W * H];
    double ref[W * H];
    mlp_rng rng;
    int s, x, y, u, v, isa;
    (void)state;
    mlp_rng_seed(&rng, 8, 8);
    for (s = 0; s < 3; s++) {
        int r = (int)ceil(3.0 * sigmas[s]);
        double g[64], sum = 0;
        for (u = -r; u <= r; u++) sum += g[u + r] = exp(-(double)(u * u) / (2.0 * sigmas[s] * sigmas[s]));
        for (x = 0; x < W * H; x++) f[x] = mlp_rng_float(&rng) - 0.5f;
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++) {
                double acc = 0;
                for (v = -r; v <= r; v++)
                    for (u = -r; u <= r; u++)
                        if (x + u >= 0 && x + u < W && y + v >= 0 && y + v < H)
                            acc += g[u + r] * g[v + r] / (sum * sum) * f[(y + v) * W + x + u];
                ref[y * W + x] = acc;
            }
        for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++) { /* every path this CPU has */
            float g2[W * H];
            if (!mlp_isa_supported((mlp_isa)isa)) continue;
            memcpy(g2, f, sizeof f);
            mlp__kernels_for((mlp_isa)isa)->blur(g2, tmp, W, H, sigmas[s]);
            for (x = 0; x < W * H; x++)
                if (fabs(g2[x] - ref[x]) > 1e-5) fail_msg("%s, sigma %g, pixel %d: %g vs %g", mlp_isa_name((mlp_isa)isa), sigmas[s], x, g2[x], ref[x]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rectangle_by_hand),
        cmocka_unit_test(test_ring_by_hand),
        cmocka_unit_test(test_invariance),
        cmocka_unit_test(test_no_digit),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_uneven_light),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_stray_marks),
        cmocka_unit_test(test_stroke_width),
        cmocka_unit_test(test_stroke_estimate),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_components_by_definition),
        cmocka_unit_test(test_select_digit_by_definition),
        cmocka_unit_test(test_page_size),
        cmocka_unit_test(test_number_pieces_over_one_another),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_touching_digits),
        cmocka_unit_test(test_extreme_shapes),
        cmocka_unit_test(test_filters_by_definition),
        cmocka_unit_test(test_augmentation),
        cmocka_unit_test(test_augmentation_properties),
        cmocka_unit_test(test_gaussian_blur),
    };
    return cmocka_run_group_tests_name("preprocessing", tests, NULL, NULL);
}
