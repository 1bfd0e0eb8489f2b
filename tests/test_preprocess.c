/* Digit preprocessing: a rectangle whose result is known by hand, a golden
   28x28 output (tests/data/golden-ring.pgm), and invariance: the same digit
   translated, scaled 2-10x, inverted or drawn on a transparent background
   gives nearly the same 28x28 input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
    for (y = 50; y < 130; y++) for (x = 70; x < 110; x++) c.px[y * 200 + x] = 0.0f; /* 40 x 80, black on white */
    run(&c, out);
    for (y = 0; y < SIDE; y++)
        for (x = 0; x < SIDE; x++)
            if (out[y * SIDE + x] > 0) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                assert_true(out[y * SIDE + x] == 255.0f); /* a solid block stays solid */
            }
    assert_int_equal(x1 - x0 + 1, 10);   /* longer side 20, aspect 1:2 kept */
    assert_int_equal(y1 - y0 + 1, 20);
    centre_of_mass(out, &cx, &cy);
    assert_true(fabs(cx - 14.01) <= 0.5 && fabs(cy - 14.00) <= 0.5);
    free(c.px);
}

/* PGM P2 golden file; regenerate with MLP_WRITE_GOLDEN=1 after a deliberate change */
static void test_golden_ring(void **state)
{
    canvas c = blank(90, 70, 1, 0.9f, 1.0f);
    float out[SIDE * SIDE];
    int x, y, v, i;
    FILE *f;
    (void)state;
    for (y = 0; y < 70; y++)
        for (x = 0; x < 90; x++) {
            float d = hypotf((x - 40) / 1.3f, y - 33.0f), cov = 4.0f - fabsf(d - 20.0f);
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            c.px[y * 90 + x] = 0.9f - 0.8f * cov + 0.02f * (float)((x * 7 + y * 13) % 5) / 5.0f; /* faint noise */
        }
    run(&c, out);
    if (getenv("MLP_WRITE_GOLDEN")) {
        f = fopen("tests/data/golden-ring.pgm", "w");
        fprintf(f, "P2\n# mlp_digit_preprocess of the ring in tests/test_preprocess.c\n%d %d\n255\n", SIDE, SIDE);
        for (i = 0; i < SIDE * SIDE; i++) fprintf(f, "%d%c", (int)lroundf(out[i]), i % SIDE == SIDE - 1 ? '\n' : ' ');
        fclose(f);
    }
    f = fopen("tests/data/golden-ring.pgm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "P2 # %*[^\n] %d %d %d", &x, &y, &v), 3);
    assert_int_equal(x, SIDE);
    for (i = 0; i < SIDE * SIDE; i++) {
        assert_int_equal(fscanf(f, "%d", &v), 1);
        if (abs(v - (int)lroundf(out[i])) > 1) print_error("pixel %d: %d, golden %d\n", i, (int)lroundf(out[i]), v);
        assert_true(abs(v - (int)lroundf(out[i])) <= 1);
    }
    fclose(f);
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
    /* a single pixel of ink is a (tiny) digit, not a crash */
    assert_int_equal(mlp_digit_preprocess(px, 2, 2, 1, out), 0);
    {   /* values outside 0..1 (a caller passing 0..255, or NaN) are clamped, not indexed with */
        float wild[6] = {255.0f, -3.0f, NAN, 1e30f, 0.5f, 255.0f};
        assert_int_equal(mlp_digit_preprocess(wild, 3, 2, 1, out), 0);
    }
    {   /* ink touching the bottom-right corner, at sizes whose scale factors round up */
        int w, h, i;
        for (w = 21; w < 90; w += 7)
            for (h = 19; h < 70; h += 5) {
                float *img = malloc(sizeof(float) * (size_t)w * h);
                for (i = 0; i < w * h; i++) img[i] = (i % w) > w / 3 && (i / w) > h / 4 ? 0.0f : 1.0f;
                assert_int_equal(mlp_digit_preprocess(img, w, h, 1, out), 0);
                free(img);
            }
    }
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
        for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_NEON; isa++) { /* every path this CPU has */
            float g2[W * H];
            if (!mlp_isa_supported((mlp_isa)isa)) continue;
            memcpy(g2, f, sizeof f);
            mlp__gaussian_blur((mlp_isa)isa, g2, tmp, W, H, sigmas[s]);
            for (x = 0; x < W * H; x++)
                if (fabs(g2[x] - ref[x]) > 1e-5) fail_msg("%s, sigma %g, pixel %d: %g vs %g", mlp_isa_name((mlp_isa)isa), sigmas[s], x, g2[x], ref[x]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rectangle_by_hand),
        cmocka_unit_test(test_golden_ring),
        cmocka_unit_test(test_invariance),
        cmocka_unit_test(test_no_digit),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_augmentation),
        cmocka_unit_test(test_gaussian_blur),
    };
    return cmocka_run_group_tests_name("preprocessing", tests, NULL, NULL);
}
