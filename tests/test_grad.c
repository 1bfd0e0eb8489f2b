/* Gradient checks: every layer, activation and loss, and a whole network,
   against central finite differences of an independent double-precision
   reference. Tolerance: |analytic - numeric| <= 1e-4 + 1e-3 |numeric|. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define ABS_TOL 1e-4
#define REL_TOL 1e-3
#define H 1e-5

static int close_enough(double analytic, double numeric)
{
    return fabs(analytic - numeric) <= ABS_TOL + REL_TOL * fabs(numeric);
}

static void expect_close(const char *what, int index, double analytic, double numeric)
{
    if (!close_enough(analytic, numeric)) {
        print_error("%s[%d]: analytic %.8g, numeric %.8g\n", what, index, analytic, numeric);
        fail();
    }
}

static void fill_random(float *v, int n, mlp_rng *rng, float lo, float hi)
{
    int i;
    for (i = 0; i < n; i++) v[i] = lo + (hi - lo) * mlp_rng_float(rng);
}

/* ---- double-precision references ---------------------------------------- */

static double ref_act(mlp_act act, double x)
{
    switch (act) {
    case MLP_ACT_RELU: return x > 0 ? x : 0;
    case MLP_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case MLP_ACT_TANH: return tanh(x);
    default: return x;
    }
}

/* mean loss of one output matrix Y (B x n) */
static double ref_loss(mlp_loss loss, const double *Y, const int *labels, int B, int n)
{
    double total = 0;
    int i, j;
    for (i = 0; i < B; i++) {
        const double *y = Y + i * n;
        if (loss == MLP_LOSS_CE) {
            double m = y[0], s = 0;
            for (j = 1; j < n; j++) if (y[j] > m) m = y[j];
            for (j = 0; j < n; j++) s += exp(y[j] - m);
            total += m + log(s) - y[labels[i]];
        } else {
            for (j = 0; j < n; j++) {
                double d = y[j] - (j == labels[i]);
                total += 0.5 * d * d;
            }
        }
    }
    return total / B;
}

/* ---- single activations: L = sum(r * f(x)), dL/dx = r * f'(x) ----------- */

/* every instruction set this CPU has; N = 43 leaves vector tails */
static void check_activation(mlp_act act)
{
    enum { N = 43 };
    float x[N], y[N], r[N], dx[N];
    mlp_rng rng;
    int i, isa;
    mlp_rng_seed(&rng, 7, (uint64_t)act);
    fill_random(x, N, &rng, -3, 3);
    fill_random(r, N, &rng, -1, 1);
    for (i = 0; i < N; i++) if (fabsf(x[i]) < 0.05f) x[i] = 0.5f; /* keep ReLU off its kink */
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++) {
        if (!mlp_isa_supported((mlp_isa)isa)) continue;
        mlp__act_forward(mlp__kernels_for((mlp_isa)isa), act, y, x, N);
        mlp__act_backward(mlp__kernels_for((mlp_isa)isa), act, dx, r, y, N);
        for (i = 0; i < N; i++) {
            double numeric = r[i] * (ref_act(act, x[i] + H) - ref_act(act, x[i] - H)) / (2 * H);
            assert_true(fabs(y[i] - ref_act(act, x[i])) < 1e-6);
            expect_close("dx", i, dx[i], numeric);
        }
    }
}

static void test_relu(void **state) { (void)state; check_activation(MLP_ACT_RELU); }
static void test_sigmoid(void **state) { (void)state; check_activation(MLP_ACT_SIGMOID); }
static void test_tanh(void **state) { (void)state; check_activation(MLP_ACT_TANH); }
static void test_identity(void **state) { (void)state; check_activation(MLP_ACT_IDENTITY); }

/* ---- dense layer: L = sum(r * (x W + b)) -------------------------------- */

static double ref_dense_loss(const double *x, const double *W, const double *b, const float *r,
                             int B, int n_in, int n_out)
{
    double L = 0;
    int i, j, k;
    for (i = 0; i < B; i++)
        for (j = 0; j < n_out; j++) {
            double z = b[j];
            for (k = 0; k < n_in; k++) z += x[i * n_in + k] * W[k * n_out + j];
            L += r[i * n_out + j] * z;
        }
    return L;
}

static double numeric_partial(double *v, int i, const double *x, const double *W, const double *b,
                              const float *r, int B, int n_in, int n_out)
{
    double keep = v[i], lp, lm;
    v[i] = keep + H; lp = ref_dense_loss(x, W, b, r, B, n_in, n_out);
    v[i] = keep - H; lm = ref_dense_loss(x, W, b, r, B, n_in, n_out);
    v[i] = keep;
    return (lp - lm) / (2 * H);
}

static void test_dense(void **state)
{
    enum { B = 3, NI = 7, NO = 5 };
    float x[B * NI], W[NI * NO], b[NO], z[B * NO], r[B * NO], dx[B * NI], dW[NI * NO], db[NO];
    double xd[B * NI], Wd[NI * NO], bd[NO];
    mlp_rng rng;
    int i;
    (void)state;
    mlp_rng_seed(&rng, 3, 3);
    fill_random(x, B * NI, &rng, -1, 1);
    fill_random(W, NI * NO, &rng, -1, 1);
    fill_random(b, NO, &rng, -1, 1);
    fill_random(r, B * NO, &rng, -1, 1);
    for (i = 0; i < B * NI; i++) xd[i] = x[i];
    for (i = 0; i < NI * NO; i++) Wd[i] = W[i];
    for (i = 0; i < NO; i++) bd[i] = b[i];
    {
        mlp__engine *g = mlp__engine_new(MLP_ISA_AUTO, 1); /* the kernel training uses */
        mlp__dense_forward(g, z, x, W, b, B, NI, NO);
        mlp__dense_backward(g, dx, dW, db, r, x, W, B, NI, NO);
        mlp__engine_free(g);
    }
    for (i = 0; i < B * NI; i++) expect_close("dx", i, dx[i], numeric_partial(xd, i, xd, Wd, bd, r, B, NI, NO));
    for (i = 0; i < NI * NO; i++) expect_close("dW", i, dW[i], numeric_partial(Wd, i, xd, Wd, bd, r, B, NI, NO));
    for (i = 0; i < NO; i++) expect_close("db", i, db[i], numeric_partial(bd, i, xd, Wd, bd, r, B, NI, NO));
}

/* ---- losses -------------------------------------------------------------- */

/* N outputs: 6, and 45 for the softmax's exponentials past the ones it
   keeps for the gradient (MLP__EXPS_KEPT) */
static void check_loss(mlp_loss loss, int N)
{
    enum { B = 4, N_MAX = 45 };
    float y[B * N_MAX], dy[B * N_MAX], value;
    double yd[B * N_MAX];
    int labels[B] = {0, 0, 2, 2}, i;
    mlp_rng rng;
    assert_true(N >= 3 && N <= N_MAX);
    labels[1] = N - 1;
    mlp_rng_seed(&rng, 11, (uint64_t)loss);
    fill_random(y, B * N, &rng, -2, 2);
    for (i = 0; i < B * N; i++) yd[i] = y[i];
    assert_int_equal(mlp_loss_eval(loss, y, labels, B, N, dy, &value), MLP_OK);
    assert_true(fabs(value - ref_loss(loss, yd, labels, B, N)) < 1e-5);
    for (i = 0; i < B * N; i++) {
        double keep = yd[i], lp, lm;
        yd[i] = keep + H; lp = ref_loss(loss, yd, labels, B, N);
        yd[i] = keep - H; lm = ref_loss(loss, yd, labels, B, N);
        yd[i] = keep;
        expect_close("dy", i, dy[i], (lp - lm) / (2 * H));
    }
}

static void test_loss_ce(void **state) { (void)state; check_loss(MLP_LOSS_CE, 6); check_loss(MLP_LOSS_CE, 45); }
static void test_loss_mse(void **state) { (void)state; check_loss(MLP_LOSS_MSE, 6); check_loss(MLP_LOSS_MSE, 45); }

static void test_ce_large_logits(void **state)
{
    float z[3] = {1000.0f, -1000.0f, 999.0f}, dz[3], p[3];
    int label = 2;
    float L;
    (void)state;
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, z, &label, 1, 3, dz, &L), MLP_OK);
    assert_true(isfinite(L));
    assert_true(fabs(L - 1.3132617) < 1e-5);   /* log(1 + e) */
    assert_true(isfinite(dz[0]) && isfinite(dz[1]) && isfinite(dz[2]));
    mlp__softmax(p, z, 3);
    assert_true(fabs(p[0] + p[1] + p[2] - 1.0) < 1e-6);
    {   /* the largest logit last: 1005 + log(1 + e^-1005) = 1005 */
        float z2[2] = {-5.0f, 1000.0f}, dz2[2];
        label = 0;
        assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, z2, &label, 1, 2, dz2, &L), MLP_OK);
        assert_true(fabs(L - 1005.0) < 1e-3);
        assert_true(fabs(dz2[0] + 1.0f) < 1e-6 && fabs(dz2[1] - 1.0f) < 1e-6);
    }
}

/* softmax over 45 outputs, wider than the exponentials it keeps, against
   exp(z_j) / sum exp(z) in double */
static void test_softmax_wide(void **state)
{
    enum { N = 45 };
    float z[N], p[N];
    double sum = 0.0;
    int j;
    mlp_rng rng;
    (void)state;
    mlp_rng_seed(&rng, 12, 0);
    fill_random(z, N, &rng, -3, 3);
    for (j = 0; j < N; j++) sum += exp((double)z[j]);
    mlp__softmax(p, z, N);
    for (j = 0; j < N; j++) expect_close("p", j, p[j], exp((double)z[j]) / sum);
}

static void test_loss_rejects_bad_label(void **state)
{
    float z[2] = {0, 0}, value = 42.0f;
    int label = 2;
    (void)state;
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, z, &label, 1, 2, NULL, &value), MLP_EARG);
    assert_true(value == 42.0f);                      /* left alone */
    assert_non_null(strstr(mlp_error(), "label 2"));
}

/* ---- a whole network: every parameter of a 3-layer net ------------------ */

static double ref_net_loss(const mlp_net *net, const double *params, const float *X, const int *labels, int B)
{
    double a[64 * 8], z[64 * 8];
    int l, i, j, k, width = mlp_input_width(net);
    for (i = 0; i < B * width; i++) a[i] = X[i];
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind == MLP_LAYER_DENSE) {
            const double *W = params + (L->W - net->params), *b = params + (L->b - net->params);
            for (i = 0; i < B; i++)
                for (j = 0; j < L->n_out; j++) {
                    double s = b[j];
                    for (k = 0; k < L->n_in; k++) s += a[i * L->n_in + k] * W[k * L->n_out + j];
                    z[i * L->n_out + j] = s;
                }
        } else if (L->kind == MLP_LAYER_BATCHNORM) {
            const double *gamma = params + (L->W - net->params), *beta = params + (L->b - net->params);
            for (j = 0; j < L->n_out; j++) {
                double mean = 0, var = 0;
                if (net->batch_stats) {
                    for (i = 0; i < B; i++) mean += a[i * L->n_out + j] / B;
                    for (i = 0; i < B; i++) var += (a[i * L->n_out + j] - mean) * (a[i * L->n_out + j] - mean) / B;
                } else {
                    mean = L->run_mean[j]; var = L->run_var[j];
                }
                for (i = 0; i < B; i++)
                    z[i * L->n_out + j] = gamma[j] * (a[i * L->n_out + j] - mean) / sqrt(var + L->eps) + beta[j];
            }
        } else if (L->kind == MLP_LAYER_DROPOUT) {  /* the mask the library drew */
            for (i = 0; i < B * L->n_out; i++) z[i] = net->training ? a[i] * net->aux[l][i] : a[i];
        } else {
            for (i = 0; i < B * L->n_out; i++) z[i] = ref_act(L->act, a[i]);
        }
        memcpy(a, z, sizeof(double) * (size_t)(B * L->n_out));
    }
    return ref_loss(net->loss, a, labels, B, mlp_output_width(net));
}

/* each parameter's analytic gradient (net->grads, from the last backward)
   against the central difference of the double-precision reference loss */
static void check_every_parameter(const mlp_net *net, double *params, const float *X, const int *labels, int B)
{
    size_t p;
    for (p = 0; p < net->n_params; p++) {
        double keep = params[p], lp, lm;
        params[p] = keep + H; lp = ref_net_loss(net, params, X, labels, B);
        params[p] = keep - H; lm = ref_net_loss(net, params, X, labels, B);
        params[p] = keep;
        expect_close("param", (int)p, net->grads[p], (lp - lm) / (2 * H));
    }
}

/* forward and backward through net on (X, labels), then the loss and every
   parameter's gradient against the double-precision reference */
static void check_net_gradients(mlp_net *net, const float *X, const int *labels, int B)
{
    double *params = malloc(net->n_params * sizeof(double));
    float L;
    size_t p;
    assert_non_null(params);
    for (p = 0; p < net->n_params; p++) params[p] = net->params[p];
    assert_non_null(mlp_forward(net, X, B));
    assert_int_equal(mlp_backward(net, labels, &L), 0);
    assert_true(fabs(L - ref_net_loss(net, params, X, labels, B)) < 1e-5);
    check_every_parameter(net, params, X, labels, B);
    free(params);
}

static void check_network(mlp_loss loss)
{
    enum { B = 5 };
    int sizes[4] = {6, 8, 7, 4}, labels[B] = {0, 3, 1, 2, 3};
    mlp_act acts[3] = {MLP_ACT_TANH, MLP_ACT_SIGMOID, MLP_ACT_IDENTITY};
    float X[B * 6];
    mlp_rng rng;
    mlp_net *net = mlp_create(4, sizes, acts, loss, 5);
    assert_non_null(net);
    assert_int_equal(net->n_params, 6 * 8 + 8 + 8 * 7 + 7 + 7 * 4 + 4);
    mlp_rng_seed(&rng, 1, 2);
    fill_random(X, B * 6, &rng, -1, 1);
    fill_random(net->params, (int)net->n_params, &rng, -0.8f, 0.8f); /* biases too */
    check_net_gradients(net, X, labels, B);
    mlp_free(net);
}

static void test_network_ce(void **state) { (void)state; check_network(MLP_LOSS_CE); }
static void test_network_mse(void **state) { (void)state; check_network(MLP_LOSS_MSE); }

/* ReLU network: the data is fixed, so a kink crossing would show up as a
   deterministic failure, not a flaky one. */
static void test_network_relu(void **state)
{
    enum { B = 4 };
    int sizes[4] = {5, 8, 6, 3}, labels[B] = {2, 0, 1, 2};
    mlp_act acts[3] = {MLP_ACT_RELU, MLP_ACT_RELU, MLP_ACT_IDENTITY};
    float X[B * 5];
    mlp_rng rng;
    mlp_net *net = mlp_create(4, sizes, acts, MLP_LOSS_CE, 9);
    (void)state;
    assert_non_null(net);
    mlp_rng_seed(&rng, 4, 4);
    fill_random(X, B * 5, &rng, -1, 1);
    check_net_gradients(net, X, labels, B);
    mlp_free(net);
}

/* Dropout in training mode: with the mask held fixed, every parameter's
   gradient matches the finite difference of the masked reference. */
static void test_network_dropout(void **state)
{
    enum { B = 5 };
    int sizes[4] = {6, 8, 7, 4}, labels[B] = {0, 3, 1, 2, 3}, dropped = 0, i;
    mlp_act acts[3] = {MLP_ACT_TANH, MLP_ACT_SIGMOID, MLP_ACT_IDENTITY};
    float X[B * 6];
    mlp_rng rng;
    mlp_net *net = mlp_create(4, sizes, acts, MLP_LOSS_CE, 5);
    (void)state;
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.5f), 0);
    assert_int_equal(net->n_layers, 8); /* drop dense tanh drop dense sigmoid drop dense */
    mlp_rng_seed(&rng, 1, 2);
    fill_random(X, B * 6, &rng, -1, 1);
    mlp_set_training(net, 1);
    mlp_rng_seed(&net->dropout_rng, 77, 1);
    check_net_gradients(net, X, labels, B);
    for (i = 0; i < B * 8; i++) dropped += net->aux[3][i] == 0.0f;
    assert_true(dropped > 5 && dropped < 35);  /* about half of 40 */
    mlp_set_training(net, 0); /* inference: dropout is the identity */
    mlp_free(net);
}

/* BatchNorm with batch statistics: each input moves the batch's mean and
   variance, so every gradient (dense weights below it, gamma, beta) goes
   through the full normalisation; then with the running statistics. The
   reference recomputes the statistics in double from the same batch. */
static void check_batchnorm(int training)
{
    enum { B = 6 };
    int sizes[4] = {5, 8, 7, 4}, labels[B] = {0, 3, 1, 2, 3, 0}, j;
    mlp_act acts[3] = {MLP_ACT_TANH, MLP_ACT_SIGMOID, MLP_ACT_IDENTITY};
    float X[B * 5];
    mlp_rng rng;
    mlp_net *net = mlp_create(4, sizes, acts, MLP_LOSS_CE, 5);
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(net->n_layers, 7); /* dense bn tanh dense bn sigmoid dense */
    assert_int_equal(net->layers[1].kind, MLP_LAYER_BATCHNORM);
    assert_int_equal(net->n_params, 5 * 8 + 8 + 2 * 8 + 8 * 7 + 7 + 2 * 7 + 7 * 4 + 4);
    mlp_rng_seed(&rng, 3, 7);
    fill_random(X, B * 5, &rng, -1, 1);
    fill_random(net->params, (int)net->n_params, &rng, -0.8f, 0.8f); /* gamma, beta too */
    for (j = 0; j < 8; j++) { net->layers[1].run_mean[j] = 0.1f * j - 0.3f; net->layers[1].run_var[j] = 0.2f + 0.05f * j; }
    mlp_set_training(net, training);
    check_net_gradients(net, X, labels, B);
    assert_int_equal(net->batch_stats, training);
    mlp_free(net);
}

/* Batchnorm's kernels of every instruction set this CPU has, against the
   formulas in double, on B rows of n units inside rows of ld floats (the
   columns a thread owns): odd widths cross the 16-unit vectors, and the
   floats beyond n in each row must stay untouched. */
static void check_bn_kernels(const mlp__kernels *k, int B, int n, int ld)
{
    size_t size = (size_t)B * (size_t)ld;
    float *x = malloc(size * sizeof(float)), *y = malloc(size * sizeof(float)), *h = malloc(size * sizeof(float));
    float *dy = malloc(size * sizeof(float)), *dx = malloc(size * sizeof(float));
    float *mean = malloc((size_t)n * sizeof(float)), *sq = malloc((size_t)n * sizeof(float)), *inv = malloc((size_t)n * sizeof(float));
    float *gamma = malloc((size_t)n * sizeof(float)), *beta = malloc((size_t)n * sizeof(float));
    float *dg = malloc((size_t)n * sizeof(float)), *db = malloc((size_t)n * sizeof(float)), rb = 1.0f / (float)B;
    mlp_rng rng;
    int i, j, stats;
    mlp_rng_seed(&rng, (uint64_t)(B * 1000 + n), 11);
    fill_random(x, (int)size, &rng, -2, 3);
    fill_random(dy, (int)size, &rng, -1, 1);
    fill_random(gamma, n, &rng, 0.5f, 1.5f);
    fill_random(beta, n, &rng, -1, 1);
    for (i = 0; i < (int)size; i++) y[i] = h[i] = dx[i] = 7.0f; /* the padding's marker */
    k->bn_moments(mean, sq, x, (size_t)ld, B, (size_t)n, rb);
    for (j = 0; j < n; j++) {
        double m = 0, q = 0;
        for (i = 0; i < B; i++) m += x[i * ld + j];
        m /= B;
        for (i = 0; i < B; i++) q += (x[i * ld + j] - m) * (x[i * ld + j] - m);
        expect_close("mean", j, mean[j], m);
        assert_true(fabs(sq[j] - q) <= 1e-5 * (q + 1));
        inv[j] = 1.0f / sqrtf(sq[j] * rb + 1e-5f);
    }
    k->bn_apply(y, h, x, (size_t)ld, B, (size_t)n, mean, inv, gamma, beta);
    for (i = 0; i < B; i++)
        for (j = 0; j < ld; j++) {
            double want;
            if (j >= n) { assert_true(h[i * ld + j] == 7.0f && y[i * ld + j] == 7.0f); continue; }
            want = ((double)x[i * ld + j] - mean[j]) * inv[j];
            expect_close("xhat", i * ld + j, h[i * ld + j], want);
            expect_close("y", i * ld + j, y[i * ld + j], gamma[j] * want + beta[j]);
        }
    for (stats = 0; stats < 2; stats++) {
        k->bn_backward(dx, dg, db, dy, h, (size_t)ld, B, (size_t)n, gamma, inv, rb, stats);
        for (j = 0; j < n; j++) {
            double sdb = 0, sdg = 0;
            for (i = 0; i < B; i++) { sdb += dy[i * ld + j]; sdg += (double)dy[i * ld + j] * h[i * ld + j]; }
            expect_close("dbeta", j, db[j], sdb);
            expect_close("dgamma", j, dg[j], sdg);
            for (i = 0; i < B; i++) {
                double g = (double)gamma[j] * inv[j];
                expect_close("dx", i * ld + j, dx[i * ld + j], stats ? g * (dy[i * ld + j] - (sdb + h[i * ld + j] * sdg) / B) : g * dy[i * ld + j]);
            }
        }
        for (i = 0; i < B; i++)
            for (j = n; j < ld; j++) assert_true(dx[i * ld + j] == 7.0f);
    }
    k->bn_backward(NULL, dg, db, dy, h, (size_t)ld, B, (size_t)n, gamma, inv, rb, 1); /* no dx wanted */
    free(x); free(y); free(h); free(dy); free(dx); free(mean); free(sq); free(inv); free(gamma); free(beta); free(dg); free(db);
}

static void test_batchnorm_kernels(void **state)
{
    static const int widths[] = {1, 7, 15, 16, 17, 33, 100};
    static const int batches[] = {1, 3, 64};
    int isa, w, b;
    (void)state;
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++) {
        if (!mlp_isa_supported((mlp_isa)isa)) continue;
        for (w = 0; w < 7; w++)
            for (b = 0; b < 3; b++) check_bn_kernels(mlp__kernels_for((mlp_isa)isa), batches[b], widths[w], widths[w] + 5);
    }
}

/* add_rows against the plain loop, in float and in row order, so the bits
   must match exactly: rows added into rows (ldd = ld) and all into one
   (ldd = 0, a bias gradient), on odd widths inside wider rows whose
   padding must stay untouched */
static void check_add_rows(const mlp__kernels *k, int rows, int n, int ld, int into_one)
{
    size_t size = (size_t)rows * (size_t)ld, ldd = into_one ? 0 : (size_t)ld;
    float *src = malloc(size * sizeof(float)), *dst = malloc(size * sizeof(float)), *want = malloc(size * sizeof(float));
    mlp_rng rng;
    int i, j;
    mlp_rng_seed(&rng, (uint64_t)(rows * 1000 + n * 2 + into_one), 5);
    fill_random(src, (int)size, &rng, -3, 3);
    fill_random(dst, (int)size, &rng, -3, 3);
    for (i = 0; i < (int)size; i++) want[i] = dst[i];
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) want[(size_t)i * ldd + (size_t)j] += src[(size_t)i * (size_t)ld + (size_t)j];
    k->add_rows(dst, ldd, src, (size_t)ld, rows, (size_t)n);
    for (i = 0; i < (int)size; i++)
        if (memcmp(&dst[i], &want[i], sizeof(float))) {
            print_error("%s add_rows %d x %d (ld %d, into one %d) at %d: %.9g, want %.9g\n", mlp_isa_name(k->isa), rows, n, ld,
                        into_one, i, dst[i], want[i]);
            fail();
        }
    free(src); free(dst); free(want);
}

static void test_add_rows_kernels(void **state)
{
    static const int widths[] = {1, 3, 4, 5, 15, 16, 17, 33, 100};
    static const int rows[] = {1, 2, 8, 64};
    int isa, w, r, one;
    (void)state;
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++) {
        if (!mlp_isa_supported((mlp_isa)isa)) continue;
        for (w = 0; w < 9; w++)
            for (r = 0; r < 4; r++)
                for (one = 0; one < 2; one++) check_add_rows(mlp__kernels_for((mlp_isa)isa), rows[r], widths[w], widths[w] + 3, one);
    }
}

static void test_network_batchnorm_train(void **state) { (void)state; check_batchnorm(1); }
static void test_network_batchnorm_eval(void **state) { (void)state; check_batchnorm(0); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_loss_ce),
        cmocka_unit_test(test_loss_mse),
        cmocka_unit_test(test_ce_large_logits),
        cmocka_unit_test(test_softmax_wide),
        cmocka_unit_test(test_loss_rejects_bad_label),
        cmocka_unit_test(test_network_ce),
        cmocka_unit_test(test_network_mse),
        cmocka_unit_test(test_network_relu),
        cmocka_unit_test(test_network_dropout),
        cmocka_unit_test(test_batchnorm_kernels),
        cmocka_unit_test(test_add_rows_kernels),
        cmocka_unit_test(test_network_batchnorm_train),
        cmocka_unit_test(test_network_batchnorm_eval),
    };
    return cmocka_run_group_tests_name("gradients", tests, NULL, NULL);
}
