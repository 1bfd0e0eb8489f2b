/* The calls added or changed in mlp.h 0.3: matrices with strides and views,
   the accessors of the opaque network (dense weights, input description,
   parameter count), mlp_clone and mlp_copy_weights, mlp_predict_mat, the
   int-returning GEMM entry points, the out-parameter conventions of
   mlp_isa_from_name and mlp_loss_eval, mlp_version, a zeroed training
   configuration, the floating-point mode of the on_batch callback, the
   error message's lifetime, and mlp_init_weights.

   Expected values come from the documentation and from computations
   written here (a forward pass, products and losses in double precision,
   numbers worked out by hand), never from the code under test; where two
   networks must agree bit for bit the comparison is memcmp, since anything
   less would hide a weight or a statistic left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <float.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

/* ---- helpers -------------------------------------------------------------- */

/* three well-separated clusters in 4 dimensions (as in test_train.c) */
static void make_blobs(mlp_dataset *ds, int n, uint64_t seed)
{
    static const float centre[3][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {-1, -1, 0, 0}};
    mlp_rng rng;
    int i, j;
    memset(ds, 0, sizeof *ds);
    mlp_rng_seed(&rng, seed, 9);
    ds->n = n; ds->dim = 4; ds->n_classes = 3;
    ds->x = malloc(sizeof(float) * 4 * (size_t)n);
    ds->y = malloc(sizeof(int) * (size_t)n);
    assert_non_null(ds->x);
    assert_non_null(ds->y);
    for (i = 0; i < n; i++) {
        ds->y[i] = (int)mlp_rng_below(&rng, 3);
        for (j = 0; j < 4; j++) ds->x[i * 4 + j] = centre[ds->y[i]][j] + 1.2f * (mlp_rng_float(&rng) - 0.5f);
    }
}

/* The whole model as bytes (layers, weights, statistics, input
   description): "unchanged" means these bytes are the same. */
static unsigned char *snapshot(const mlp_net *net, size_t *size)
{
    unsigned char *buf;
    assert_int_equal(mlp_save_memory(net, NULL, 0, size), MLP_OK);
    assert_true(*size > 0);
    buf = malloc(*size);
    assert_non_null(buf);
    assert_int_equal(mlp_save_memory(net, buf, *size, size), MLP_OK);
    return buf;
}

static void assert_unchanged(const mlp_net *net, const unsigned char *before, size_t size)
{
    size_t now;
    unsigned char *after = snapshot(net, &now);
    assert_int_equal(now, size);
    assert_memory_equal(after, before, size);
    free(after);
}

/* B x n_out probabilities, copied (mlp_predict's buffer is reused) */
static float *predict_copy(mlp_net *net, const float *X, int B)
{
    const float *p = mlp_predict(net, X, B);
    size_t n = (size_t)B * (size_t)mlp_output_width(net);
    float *copy = malloc(n * sizeof(float));
    assert_non_null(p);
    assert_non_null(copy);
    memcpy(copy, p, n * sizeof(float));
    return copy;
}

static void assert_empty(mlp_mat m)
{
    assert_null(m.data);
    assert_int_equal(m.rows, 0);
    assert_int_equal(m.cols, 0);
}

/* a supported instruction set other than the one a new network picks, so
   that "keeps the kernel choice" cannot pass by coincidence */
static mlp_isa other_isa(void)
{
    mlp_net *net = mlp_create_spec("2-2", MLP_ACT_IDENTITY, MLP_LOSS_CE, 1);
    mlp_isa def, isa = MLP_ISA_AUTO;
    int i;
    assert_non_null(net);
    def = mlp_get_isa(net);
    for (i = MLP_ISA_SCALAR; i <= MLP_ISA_WASM128 && isa == MLP_ISA_AUTO; i++)
        if (mlp_isa_supported((mlp_isa)i) && (mlp_isa)i != def) isa = (mlp_isa)i;
    mlp_free(net);
    return isa; /* AUTO only if this machine has a single kernel set */
}

/* the first batchnorm layer (tests may look inside the network) */
static const mlp_layer *first_batchnorm(const mlp_net *net)
{
    int l;
    for (l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == MLP_LAYER_BATCHNORM) return &net->layers[l];
    return NULL;
}

/* ---- 1. matrices ------------------------------------------------------------ */

static void test_mat_create_and_view(void **state)
{
    mlp_mat m, v;
    float buf[12];
    int i;
    (void)state;
    assert_int_equal(mlp_mat_create(&m, 3, 5), MLP_OK);
    assert_non_null(m.data);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.cols, 5);
    assert_int_equal(m.stride, 5);  /* a new matrix is packed */
    for (i = 0; i < 15; i++) assert_true(m.data[i] == 0.0f);
    mlp_mat_free(&m);
    assert_null(m.data);
    assert_int_equal(m.rows, 0);

    v = mlp_mat_view(buf, 3, 4, 4);
    assert_ptr_equal(v.data, buf);
    assert_int_equal(v.rows, 3);
    assert_int_equal(v.cols, 4);
    assert_int_equal(v.stride, 4);
    v = mlp_mat_view(buf, 2, 3, 5); /* a wider stride is a strided view */
    assert_ptr_equal(v.data, buf);
    assert_int_equal(v.stride, 5);

    /* a bad shape gives an empty matrix, never a half-valid one */
    assert_empty(mlp_mat_view(NULL, 2, 2, 2));
    assert_empty(mlp_mat_view(buf, 0, 2, 2));
    assert_empty(mlp_mat_view(buf, 2, 0, 2));
    assert_empty(mlp_mat_view(buf, -1, 2, 2));
    assert_empty(mlp_mat_view(buf, 2, -3, 2));
    assert_empty(mlp_mat_view(buf, 2, 3, 2));  /* stride < cols: rows would overlap */
    assert_empty(mlp_mat_view(buf, 2, 3, -3));
}

/* Sizes past the address space fail with a message instead of wrapping:
   on a 32-bit host 65536 x 65536 floats are 2^34 bytes, which a size_t
   multiplication would wrap to 0; on a 64-bit host, sizes past
   MLP_MAX_ALLOC (the allocation is never tried). */
static void test_sizes_beyond_address_space(void **state)
{
    int big = sizeof(size_t) == 4 ? 65536 : 2000000000;
    char spec[64];
    mlp_mat m;
    (void)state;
    assert_int_equal(mlp_mat_create(&m, big, big), MLP_ENOMEM);
    assert_null(m.data);
    assert_non_null(strstr(mlp_error(), "out of memory"));
    snprintf(spec, sizeof spec, "%d-%d-10", big + 4464, big + 4464); /* 70000 or 2000004464 */
    mlp__error_message[0] = 0; /* so the message below is this failure's */
    assert_null(mlp_create_spec(spec, MLP_ACT_RELU, MLP_LOSS_CE, 1));
    assert_true(strlen(mlp_error()) > 0);
}

static void test_mat_rows_and_row(void **state)
{
    float buf[20];
    mlp_mat m, r;
    int i;
    (void)state;
    for (i = 0; i < 20; i++) buf[i] = (float)i;
    m = mlp_mat_view(buf, 5, 3, 4);   /* 5 x 3, one unused float after each row */

    r = mlp_mat_rows(m, 1, 2);
    assert_ptr_equal(r.data, buf + 4);
    assert_int_equal(r.rows, 2);
    assert_int_equal(r.cols, 3);
    assert_int_equal(r.stride, 4);
    r.data[r.stride + 2] = 42.0f;     /* a view: the same memory */
    assert_true(buf[4 + 4 + 2] == 42.0f);

    r = mlp_mat_rows(m, 3, 10);       /* clamped to the 2 rows left */
    assert_ptr_equal(r.data, buf + 12);
    assert_int_equal(r.rows, 2);
    r = mlp_mat_rows(m, 4, 1);
    assert_ptr_equal(r.data, buf + 16);
    assert_int_equal(r.rows, 1);
    assert_empty(mlp_mat_rows(m, 5, 1)); /* first past the end */
    assert_empty(mlp_mat_rows(m, -1, 2));
    assert_empty(mlp_mat_rows(m, 0, 0));
    assert_empty(mlp_mat_rows(mlp_mat_view(NULL, 0, 0, 0), 0, 1));

    assert_ptr_equal(mlp_mat_row(m, 0), buf);
    assert_ptr_equal(mlp_mat_row(m, 2), buf + 8);
    assert_ptr_equal(mlp_mat_row(m, 4), buf + 16);
    assert_null(mlp_mat_row(m, 5));
    assert_null(mlp_mat_row(m, -1));
    assert_null(mlp_mat_row(mlp_mat_view(NULL, 0, 0, 0), 0));
}

static void test_mat_fill_strided(void **state)
{
    float buf[20];
    mlp_mat v;
    int k;
    (void)state;
    for (k = 0; k < 20; k++) buf[k] = -1.0f;
    v = mlp_mat_view(buf, 3, 2, 5);   /* columns 0..1 of rows 0..2, stride 5 */
    mlp_mat_fill(&v, 7.0f);
    for (k = 0; k < 20; k++) {
        int inside = k / 5 < 3 && k % 5 < 2;
        if (inside) assert_true(buf[k] == 7.0f);
        else assert_true(buf[k] == -1.0f); /* the gaps between rows, and after the last */
    }
}

static void test_mat_copy_and_clone(void **state)
{
    float sbuf[15], dbuf[9], before[9];
    mlp_mat src, dst, c, wrong;
    int i, j;
    (void)state;
    for (i = 0; i < 15; i++) sbuf[i] = (float)(100 + i);
    for (i = 0; i < 9; i++) dbuf[i] = -1.0f;
    src = mlp_mat_view(sbuf, 3, 2, 5);
    dst = mlp_mat_view(dbuf, 3, 2, 3);
    assert_int_equal(mlp_mat_copy(&dst, &src), MLP_OK);
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 2; j++) assert_true(dbuf[i * 3 + j] == sbuf[i * 5 + j]);
        assert_true(dbuf[i * 3 + 2] == -1.0f); /* dst's gap column untouched */
    }

    /* a shape mismatch names both shapes and writes nothing */
    memcpy(before, dbuf, sizeof before);
    wrong = mlp_mat_view(dbuf, 2, 3, 3);
    assert_int_equal(mlp_mat_copy(&wrong, &src), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "3 x 2"));
    assert_non_null(strstr(mlp_error(), "2 x 3"));
    assert_memory_equal(dbuf, before, sizeof before);

    /* a clone owns a packed copy */
    assert_int_equal(mlp_mat_clone(&c, &src), MLP_OK);
    assert_true(c.data != sbuf);
    assert_int_equal(c.rows, 3);
    assert_int_equal(c.cols, 2);
    assert_int_equal(c.stride, 2);
    for (i = 0; i < 3; i++)
        for (j = 0; j < 2; j++) assert_true(c.data[i * 2 + j] == sbuf[i * 5 + j]);
    for (i = 0; i < 15; i++) sbuf[i] = 0.0f;  /* the source changes afterwards */
    for (i = 0; i < 3; i++)
        for (j = 0; j < 2; j++) assert_true(c.data[i * 2 + j] == (float)(100 + i * 5 + j));
    mlp_mat_free(&c);
    assert_true(mlp_mat_clone(&c, NULL) == MLP_EARG);
}

static void test_dataset_inputs(void **state)
{
    mlp_dataset ds;
    mlp_mat x;
    (void)state;
    make_blobs(&ds, 7, 1);
    x = mlp_dataset_inputs(&ds);
    assert_ptr_equal(x.data, ds.x);   /* a view, not a copy */
    assert_int_equal(x.rows, 7);
    assert_int_equal(x.cols, 4);
    assert_int_equal(x.stride, 4);
    assert_ptr_equal(mlp_mat_row(x, 6), ds.x + 24);
    mlp_dataset_free(&ds);
    assert_empty(mlp_dataset_inputs(NULL));
}

/* ---- 2. dense layers ---------------------------------------------------------- */

static double act_value(mlp_act act, double z)
{
    switch (act) {
    case MLP_ACT_RELU: return z > 0 ? z : 0;
    case MLP_ACT_SIGMOID: return 1.0 / (1.0 + exp(-z));
    case MLP_ACT_TANH: return tanh(z);
    default: return z;
    }
}

/* The forward pass from the views alone: z = x W + b with W(i, j) the
   weight from input i to unit j, then bn_scale (batchnorm in inference
   with its initial statistics: 1 / sqrt(1 + eps)) on hidden layers, then
   the activation. Compared with mlp_forward (logits) and mlp_predict
   (softmax, computed here too). */
static void check_forward_by_hand(mlp_net *net, const int *sizes, const mlp_act *acts, int n_dense,
                                  double bn_scale, const float *X, int B)
{
    const float *y;
    double h[2][8], logits[4][8];
    int r, d, i, j;
    for (r = 0; r < B; r++) {
        int cur = 0;
        for (i = 0; i < sizes[0]; i++) h[0][i] = X[r * sizes[0] + i];
        for (d = 0; d < n_dense; d++) {
            mlp_mat W, b;
            assert_int_equal(mlp_dense_weights(net, d, &W, &b), MLP_OK);
            for (j = 0; j < sizes[d + 1]; j++) {
                double z = b.data[j];
                for (i = 0; i < sizes[d]; i++) z += h[cur][i] * (double)mlp_mat_row(W, i)[j];
                if (d + 1 < n_dense) z *= bn_scale;
                h[1 - cur][j] = act_value(acts[d], z);
            }
            cur = 1 - cur;
        }
        for (j = 0; j < sizes[n_dense]; j++) logits[r][j] = h[cur][j];
    }
    y = mlp_forward(net, X, B);
    assert_non_null(y);
    for (r = 0; r < B; r++)
        for (j = 0; j < sizes[n_dense]; j++) assert_float_equal(y[r * sizes[n_dense] + j], logits[r][j], 1e-5);
    y = mlp_predict(net, X, B);
    assert_non_null(y);
    for (r = 0; r < B; r++) {
        double s = 0;
        for (j = 0; j < sizes[n_dense]; j++) s += exp(logits[r][j]);
        for (j = 0; j < sizes[n_dense]; j++) assert_float_equal(y[r * sizes[n_dense] + j], exp(logits[r][j]) / s, 1e-6);
    }
}

static void test_dense_weights(void **state)
{
    int sizes[4] = {3, 4, 5, 2}, labels[4] = {0, 1, 1, 0}, d, step, i, nonzero = 0;
    mlp_act acts[3] = {MLP_ACT_TANH, MLP_ACT_SIGMOID, MLP_ACT_IDENTITY};
    float X[12] = {0.5f, -1.0f, 0.25f,  1.5f, 0.0f, -0.75f,  -0.3f, 0.9f, 1.2f,  0.1f, 0.2f, -2.0f};
    float *saved[3];
    mlp_mat W, b;
    float loss;
    mlp_net *net = mlp_create(4, sizes, acts, MLP_LOSS_CE, 5);
    (void)state;
    assert_non_null(net);
    assert_int_equal(mlp_dense_count(net), 3);
    /* a few steps, so the biases are not all 0 and would be missed if ignored */
    for (step = 0; step < 5; step++) {
        assert_non_null(mlp_forward(net, X, 4));
        assert_int_equal(mlp_backward(net, labels, &loss), MLP_OK);
        assert_int_equal(mlp_sgd_step(net, 0.5f, 0.0f, 0.0f), MLP_OK);
    }
    for (d = 0; d < 3; d++) {
        assert_int_equal(mlp_dense_weights(net, d, &W, &b), MLP_OK);
        assert_int_equal(W.rows, sizes[d]);          /* n_in x n_out */
        assert_int_equal(W.cols, sizes[d + 1]);
        assert_true(W.stride >= W.cols);
        assert_int_equal(b.rows, 1);
        assert_int_equal(b.cols, sizes[d + 1]);
        for (i = 0; i < sizes[d + 1]; i++) nonzero += b.data[i] != 0.0f;
        /* keep a packed copy to compare after batchnorm re-lays the parameters */
        saved[d] = malloc(sizeof(float) * (size_t)(sizes[d] + 1) * (size_t)sizes[d + 1]);
        for (i = 0; i < sizes[d]; i++) memcpy(saved[d] + i * sizes[d + 1], mlp_mat_row(W, i), sizeof(float) * (size_t)sizes[d + 1]);
        memcpy(saved[d] + sizes[d] * sizes[d + 1], b.data, sizeof(float) * (size_t)sizes[d + 1]);
    }
    assert_true(nonzero > 0);
    check_forward_by_hand(net, sizes, acts, 3, 1.0, X, 4);

    /* out of range: the message gives the count */
    assert_int_equal(mlp_dense_weights(net, 3, &W, &b), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "has 3"));
    assert_int_equal(mlp_dense_weights(net, -1, &W, &b), MLP_EARG);
    assert_int_equal(mlp_dense_weights(NULL, 0, &W, &b), MLP_EARG);

    /* batchnorm and dropout are not dense layers; the dense weights stay */
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.5f), MLP_OK);
    assert_int_equal(mlp_dense_count(net), 3);
    for (d = 0; d < 3; d++) {
        assert_int_equal(mlp_dense_weights(net, d, &W, &b), MLP_OK);
        assert_int_equal(W.rows, sizes[d]);
        assert_int_equal(W.cols, sizes[d + 1]);
        for (i = 0; i < sizes[d]; i++)
            assert_memory_equal(mlp_mat_row(W, i), saved[d] + i * sizes[d + 1], sizeof(float) * (size_t)sizes[d + 1]);
        assert_memory_equal(b.data, saved[d] + sizes[d] * sizes[d + 1], sizeof(float) * (size_t)sizes[d + 1]);
        free(saved[d]);
    }
    assert_int_equal(mlp_dense_weights(net, 3, &W, &b), MLP_EARG);
    /* inference: dropout off, batchnorm with running mean 0, variance 1,
       gamma 1, beta 0 (eps 1e-5) */
    mlp_set_training(net, 0);
    check_forward_by_hand(net, sizes, acts, 3, 1.0 / sqrt(1.0 + 1e-5), X, 4);
    mlp_free(net);
}

/* ---- 3. input description ------------------------------------------------------ */

static void assert_input_equal(mlp_input a, mlp_input b)
{
    assert_memory_equal(&a.scale, &b.scale, sizeof a.scale);
    assert_memory_equal(&a.offset, &b.offset, sizeof a.offset);
    assert_int_equal(a.image_w, b.image_w);
    assert_int_equal(a.image_h, b.image_h);
}

static void test_input_description(void **state)
{
    mlp_net *net = mlp_create_spec("6-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1), *loaded;
    mlp_input in, good, bad[15];
    float raw[6] = {0, 4, 8, 255, -4, 1}, x[6];
    unsigned char *bytes;
    size_t size;
    int k;
    (void)state;
    assert_non_null(net);
    in = mlp_get_input(net);
    assert_true(in.scale == 1.0f && in.offset == 0.0f);
    assert_int_equal(in.image_w, 0);
    assert_int_equal(in.image_h, 0);

    in.scale = 0.5f; in.offset = -1.0f; in.image_w = 3; in.image_h = 2;
    assert_int_equal(mlp_set_input(net, &in), MLP_OK);
    assert_input_equal(mlp_get_input(net), in);
    in.scale = 2.0f; in.offset = 0.0f; in.image_w = 0; in.image_h = 0; /* not an image */
    assert_int_equal(mlp_set_input(net, &in), MLP_OK);
    assert_input_equal(mlp_get_input(net), in);

    /* stored in the model */
    good.scale = 1.0f / 255.0f; good.offset = -0.5f; good.image_w = 2; good.image_h = 3;
    assert_int_equal(mlp_set_input(net, &good), MLP_OK);
    bytes = snapshot(net, &size);
    loaded = mlp_load_memory(bytes, size);
    assert_non_null(loaded);
    assert_input_equal(mlp_get_input(loaded), good);
    mlp_free(loaded);

    /* each rejected, and the net left as it was */
    for (k = 0; k < 15; k++) bad[k] = good;
    bad[0].scale = 0.0f;
    bad[1].scale = -0.0f;
    bad[2].scale = NAN;
    bad[3].scale = INFINITY;
    bad[4].scale = -INFINITY;
    bad[5].offset = NAN;
    bad[6].offset = -INFINITY;
    bad[7].image_w = 2; bad[7].image_h = 2;   /* 4, the input is 6 wide */
    bad[8].image_w = 6; bad[8].image_h = 0;   /* only one of them 0 */
    bad[9].image_w = 0; bad[9].image_h = 6;
    bad[10].image_w = -2; bad[10].image_h = -3; /* negative, though the product is 6 */
    bad[11].image_w = -6; bad[11].image_h = 0;
    bad[12].image_w = 6; bad[12].image_h = -1;
    bad[13].image_w = 0; bad[13].image_h = -6;
    bad[14].image_w = 7; bad[14].image_h = 1;
    for (k = 0; k < 15; k++) {
        mlp__error_message[0] = 0;
        assert_int_equal(mlp_set_input(net, &bad[k]), MLP_EARG);
        assert_true(mlp_error()[0] != 0);
        assert_input_equal(mlp_get_input(net), good);
        assert_unchanged(net, bytes, size);
    }
    assert_int_equal(mlp_set_input(net, NULL), MLP_EARG);
    assert_int_equal(mlp_set_input(NULL, &good), MLP_EARG);
    free(bytes);

    /* mlp_normalize_input: x = raw * scale + offset, exact in float here */
    in.scale = 0.25f; in.offset = -3.0f; in.image_w = 0; in.image_h = 0;
    assert_int_equal(mlp_set_input(net, &in), MLP_OK);
    assert_int_equal(mlp_normalize_input(net, raw, x), MLP_OK);
    assert_true(x[0] == -3.0f);
    assert_true(x[1] == -2.0f);
    assert_true(x[2] == -1.0f);
    assert_true(x[3] == 60.75f);
    assert_true(x[4] == -4.0f);
    assert_true(x[5] == -2.75f);
    mlp_free(net);
}

/* ---- 4. mlp_clone ------------------------------------------------------------ */

static void test_clone(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 3), *clone;
    const mlp_layer *bn;
    mlp_input in;
    float *p_net, *p_clone, *p_later;
    int epoch, j, moved = 0;
    mlp_isa alt;
    (void)state;
    assert_non_null(net);
    make_blobs(&ds, 300, 2);
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    assert_int_equal(mlp_add_dropout(net, 0.1f, 0.3f), MLP_OK);
    in.scale = 0.5f; in.offset = 0.25f; in.image_w = 2; in.image_h = 2;
    assert_int_equal(mlp_set_input(net, &in), MLP_OK);
    c.batch = 32;
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(net, &ds, &c, epoch, NULL), MLP_OK);
    bn = first_batchnorm(net);
    assert_non_null(bn);
    for (j = 0; j < bn->n_out; j++) moved += bn->run_mean[j] != 0.0f || bn->run_var[j] != 1.0f;
    assert_true(moved > 0); /* the running statistics are not the initial ones */

    clone = mlp_clone(net);
    assert_non_null(clone);
    assert_int_equal(mlp_param_count(clone), mlp_param_count(net));
    assert_int_equal(mlp_dense_count(clone), mlp_dense_count(net));
    assert_input_equal(mlp_get_input(clone), in);
    assert_int_equal(mlp_get_isa(clone), mlp_get_isa(net));
    p_net = predict_copy(net, ds.x, 50);
    p_clone = predict_copy(clone, ds.x, 50);
    assert_memory_equal(p_clone, p_net, sizeof(float) * 50 * 3);

    /* independent: training the original leaves the clone as it was */
    assert_int_equal(mlp_train_epoch(net, &ds, &c, 2, NULL), MLP_OK);
    free(p_net);
    p_net = predict_copy(net, ds.x, 50);
    p_later = predict_copy(clone, ds.x, 50);
    assert_memory_equal(p_later, p_clone, sizeof(float) * 50 * 3);
    assert_true(memcmp(p_net, p_clone, sizeof(float) * 50 * 3) != 0);
    free(p_later);
    mlp_free(clone);

    /* the kernel choice goes with it (one thread, as documented) */
    alt = other_isa();
    if (alt != MLP_ISA_AUTO) {
        assert_int_equal(mlp_set_isa(net, alt), MLP_OK);
        assert_int_equal(mlp_set_threads(net, 2), MLP_OK);
        clone = mlp_clone(net);
        assert_non_null(clone);
        assert_int_equal(mlp_get_isa(clone), alt);
        assert_int_equal(mlp_get_threads(clone), 1);
        free(p_net); free(p_clone);
        p_net = predict_copy(net, ds.x, 50);
        p_clone = predict_copy(clone, ds.x, 50);
        assert_memory_equal(p_clone, p_net, sizeof(float) * 50 * 3);
        mlp_free(clone);
    } else {
        print_message("only one kernel set here: clone's kernel choice not tested\n");
    }
    assert_null(mlp_clone(NULL));
    assert_true(mlp_error()[0] != 0);
    free(p_net); free(p_clone);
    mlp_dataset_free(&ds);
    mlp_free(net);
}

/* ---- 5. mlp_copy_weights ------------------------------------------------------- */

static void expect_copy_refused(mlp_net *dst, const mlp_net *src)
{
    size_t size;
    unsigned char *before = snapshot(dst, &size);
    mlp__error_message[0] = 0;
    assert_int_equal(mlp_copy_weights(dst, src), MLP_EARG);
    assert_true(mlp_error()[0] != 0);
    assert_unchanged(dst, before, size);
    free(before);
}

static mlp_net *with_batchnorm(mlp_net *net)
{
    assert_non_null(net);
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    return net;
}

static void test_copy_weights(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *a = with_batchnorm(mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 1));
    mlp_net *b = with_batchnorm(mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 2));
    mlp_net *wider = with_batchnorm(mlp_create_spec("4-9-3", MLP_ACT_RELU, MLP_LOSS_CE, 2));
    mlp_net *plain = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    /* 2-8-3 and 4-6-3 have the same layer count and 51 parameters each:
       only the layers' widths tell them apart */
    mlp_net *p51a = mlp_create_spec("2-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_net *p51b = mlp_create_spec("4-6-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    /* dense, ReLU, dense against dropout, dense, dense: the same widths
       layer by layer and the same parameters: only the kinds differ */
    int sizes[3] = {4, 4, 2};
    mlp_act ident[2] = {MLP_ACT_IDENTITY, MLP_ACT_IDENTITY};
    mlp_net *k1 = mlp_create_spec("4-4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_net *k2 = mlp_create(3, sizes, ident, MLP_LOSS_CE, 1);
    float *pa, *pb;
    int epoch;
    (void)state;
    assert_non_null(plain); assert_non_null(p51a); assert_non_null(p51b);
    assert_non_null(k1); assert_non_null(k2);
    assert_int_equal(mlp_add_dropout(k2, 0.2f, 0.0f), MLP_OK);
    assert_int_equal(mlp_param_count(p51a), mlp_param_count(p51b));
    assert_int_equal(mlp_param_count(k1), mlp_param_count(k2));
    make_blobs(&ds, 300, 3);
    c.batch = 32;
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(a, &ds, &c, epoch, NULL), MLP_OK);

    pa = predict_copy(a, ds.x, 60);
    pb = predict_copy(b, ds.x, 60);
    assert_true(memcmp(pa, pb, sizeof(float) * 60 * 3) != 0);
    free(pb);
    assert_int_equal(mlp_copy_weights(b, a), MLP_OK);
    /* inference uses the weights, gamma, beta and the running statistics:
       all must have come across */
    pb = predict_copy(b, ds.x, 60);
    assert_memory_equal(pb, pa, sizeof(float) * 60 * 3);
    assert_int_equal(mlp_copy_weights(b, b), MLP_OK);

    expect_copy_refused(wider, a);
    expect_copy_refused(a, wider);
    expect_copy_refused(plain, a);   /* batchnorm in one only */
    expect_copy_refused(a, plain);
    expect_copy_refused(p51a, p51b);
    expect_copy_refused(k1, k2);
    expect_copy_refused(k2, k1);
    assert_int_equal(mlp_copy_weights(NULL, a), MLP_EARG);
    assert_int_equal(mlp_copy_weights(a, NULL), MLP_EARG);

    free(pa); free(pb);
    mlp_dataset_free(&ds);
    mlp_free(a); mlp_free(b); mlp_free(wider); mlp_free(plain);
    mlp_free(p51a); mlp_free(p51b); mlp_free(k1); mlp_free(k2);
}

/* ---- 6. mlp_param_count ---------------------------------------------------------- */

static void test_param_count(void **state)
{
    mlp_net *net = mlp_create_spec("784-16-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    (void)state;
    assert_non_null(net);
    assert_int_equal(mlp_param_count(net), 784 * 16 + 16 + 16 * 10 + 10);
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.5f), MLP_OK);   /* no parameters */
    assert_int_equal(mlp_param_count(net), 784 * 16 + 16 + 16 * 10 + 10);
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);             /* gamma and beta per hidden unit */
    assert_int_equal(mlp_param_count(net), 784 * 16 + 16 + 16 * 10 + 10 + 2 * 16);
    mlp_free(net);
    net = mlp_create_spec("3-4-5-2", MLP_ACT_TANH, MLP_LOSS_MSE, 1);
    assert_non_null(net);
    assert_int_equal(mlp_param_count(net), 3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2);
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    assert_int_equal(mlp_param_count(net), 3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2 + 2 * (4 + 5));
    mlp_free(net);
    assert_int_equal(mlp_param_count(NULL), 0);
}

/* ---- 7. mlp_predict_mat ---------------------------------------------------------- */

static void test_predict_mat(void **state)
{
    mlp_net *net = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
    mlp_net *mse = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_MSE, 4);
    float X[20], Xs[30], *want;
    mlp_mat x, p, before;
    mlp_rng rng;
    int i, j;
    (void)state;
    assert_non_null(net); assert_non_null(mse);
    mlp_rng_seed(&rng, 8, 1);
    for (i = 0; i < 20; i++) X[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < 30; i++) Xs[i] = i % 6 < 4 ? X[(i / 6) * 4 + i % 6] : 0.0f;

    want = predict_copy(net, X, 5);
    x = mlp_mat_view(X, 5, 4, 4);
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_OK);
    assert_int_equal(p.rows, 5);
    assert_int_equal(p.cols, 3);
    for (i = 0; i < 5; i++) {
        double s = 0;
        assert_memory_equal(mlp_mat_row(p, i), want + i * 3, 3 * sizeof(float));
        for (j = 0; j < 3; j++) s += mlp_mat_row(p, i)[j];
        assert_float_equal(s, 1.0, 1e-6); /* probabilities */
    }
    free(want);
    x = mlp_mat_rows(x, 1, 2);   /* a packed block of rows is fine */
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_OK);
    assert_int_equal(p.rows, 2);
    want = predict_copy(net, X + 4, 2);
    for (i = 0; i < 2; i++) assert_memory_equal(mlp_mat_row(p, i), want + i * 3, 3 * sizeof(float));
    free(want);

    /* MSE: the raw outputs */
    want = predict_copy(mse, X, 5);
    x = mlp_mat_view(X, 5, 4, 4);
    assert_int_equal(mlp_predict_mat(mse, &x, &p), MLP_OK);
    for (i = 0; i < 5; i++) assert_memory_equal(mlp_mat_row(p, i), want + i * 3, 3 * sizeof(float));
    free(want);

    /* refused: a strided X (the network reads packed rows), a wrong width,
       an empty matrix, NULL */
    before = p;
    x = mlp_mat_view(Xs, 5, 4, 6);
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_EARG);
    x = mlp_mat_view(X, 4, 5, 5);
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "input width 4"));
    x = mlp_mat_view(X, 10, 2, 2);
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_EARG);
    x = mlp_mat_view(NULL, 0, 0, 0);
    assert_int_equal(mlp_predict_mat(net, &x, &p), MLP_EARG);
    x = mlp_mat_view(X, 5, 4, 4);
    assert_int_equal(mlp_predict_mat(net, &x, NULL), MLP_EARG);
    assert_int_equal(mlp_predict_mat(NULL, &x, &p), MLP_EARG);
    assert_memory_equal(&p, &before, sizeof p);  /* P untouched on failure */
    mlp_free(net); mlp_free(mse);
}

/* ---- 8. GEMM entry points --------------------------------------------------------- */

typedef int (*gemm_fn)(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

static int call_gemm(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)ctx;
    return mlp_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int call_gemm_ref(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)ctx;
    return mlp_gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int call_gemm_net(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    return mlp_gemm_net((mlp_net *)ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* One product, checked against a double-precision loop written here.
   Leading dimensions are padded by 3 and the padding must stay as it was;
   with beta 0, C starts as NaN (C is not read). */
static void check_gemm(gemm_fn f, void *ctx, int ta, int tb, int M, int N, int K, float alpha, float beta)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 3, ldc = N + 3, i, j, k;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
    float *C = malloc(nc * sizeof(float)), *C0 = malloc(nc * sizeof(float));
    mlp_rng rng;
    assert_true(A && B && C && C0);
    mlp_rng_seed(&rng, (uint64_t)(M * 7919 + N * 31 + K), 2);
    for (i = 0; i < (int)na; i++) A[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < (int)nb; i++) B[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < (int)nc; i++) C[i] = C0[i] = beta == 0.0f && i % ldc < N ? NAN : 2 * mlp_rng_float(&rng) - 1;
    assert_int_equal(f(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), MLP_OK);
    for (i = 0; i < M; i++) {
        for (j = 0; j < N; j++) {
            double s = 0, mag = 0, want;
            for (k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            want = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)C0[(size_t)i * ldc + j]);
            if (!(fabs(C[(size_t)i * ldc + j] - want) <= 1e-5 * (fabs(alpha) * mag + fabs(beta) + 1.0)))
                fail_msg("ta=%d tb=%d %d x %d x %d: C[%d][%d] = %g, want %g", ta, tb, M, N, K, i, j,
                         C[(size_t)i * ldc + j], want);
        }
        for (j = N; j < ldc; j++) assert_true(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
    }
    free(A); free(B); free(C); free(C0);
}

static void check_gemm_shapes(gemm_fn f, void *ctx)
{
    /* odd sizes; then shapes big enough to be split between 2 threads:
       the blocked kernel, a narrow output (N <= 16) and batch 1 */
    static const int shapes[][3] = {{37, 29, 53}, {150, 130, 70}, {200, 10, 150}, {1, 300, 300}, {2, 77, 64}};
    int s, ta, tb;
    for (s = 0; s < 5; s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++) {
                check_gemm(f, ctx, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.75f, -0.5f);
                check_gemm(f, ctx, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
            }
}

/* Bad arguments: MLP_EARG, C exactly as it was. */
static void check_gemm_refuses(gemm_fn f, void *ctx)
{
    float A[64], B[64], C[64], C0[64];
    int i;
    for (i = 0; i < 64; i++) { A[i] = (float)i; B[i] = (float)(64 - i); C[i] = C0[i] = -7.0f; }
    assert_int_equal(f(ctx, 0, 0, 4, 4, 4, 1, NULL, 4, B, 4, 0, C, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, 4, 4, 4, 1, A, 4, NULL, 4, 0, C, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, 4, 4, 4, 1, A, 4, B, 4, 0, NULL, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, -1, 4, 4, 1, A, 4, B, 4, 0, C, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, 4, -1, 4, 1, A, 4, B, 4, 0, C, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, 4, 4, -1, 1, A, 4, B, 4, 0, C, 4), MLP_EARG);
    assert_int_equal(f(ctx, 0, 0, 4, 4, 5, 1, A, 4, B, 4, 0, C, 4), MLP_EARG); /* lda < K */
    assert_int_equal(f(ctx, 1, 0, 5, 4, 4, 1, A, 4, B, 4, 0, C, 5), MLP_EARG); /* op(A) = A^T: lda < M */
    assert_int_equal(f(ctx, 0, 0, 4, 5, 4, 1, A, 4, B, 4, 0, C, 5), MLP_EARG); /* ldb < N */
    assert_int_equal(f(ctx, 0, 1, 4, 4, 5, 1, A, 5, B, 4, 0, C, 4), MLP_EARG); /* op(B) = B^T: ldb < K */
    assert_int_equal(f(ctx, 0, 0, 4, 5, 4, 1, A, 4, B, 5, 0, C, 4), MLP_EARG); /* ldc < N */
    assert_memory_equal(C, C0, sizeof C);
    assert_true(strstr(mlp_error(), "leading dimension") != NULL);
    /* an empty product is not an error, and writes nothing */
    assert_int_equal(f(ctx, 0, 0, 0, 4, 4, 1, A, 4, B, 4, 0, C, 4), MLP_OK);
    assert_memory_equal(C, C0, sizeof C);
}

static void test_gemm_entry_points(void **state)
{
    mlp_net *net = mlp_create_spec("2-2", MLP_ACT_IDENTITY, MLP_LOSS_CE, 1);
    float A[4] = {1, 2, 3, 4}, C[4] = {9, 9, 9, 9};
    (void)state;
    assert_non_null(net);
    check_gemm_shapes(call_gemm_ref, NULL);
    check_gemm_shapes(call_gemm, NULL);
    check_gemm_shapes(call_gemm_net, net);
    assert_int_equal(mlp_set_threads(net, 2), MLP_OK);
    check_gemm_shapes(call_gemm_net, net);
    check_gemm_refuses(call_gemm_ref, NULL);
    check_gemm_refuses(call_gemm, NULL);
    check_gemm_refuses(call_gemm_net, net);
    assert_int_equal(mlp_gemm_net(NULL, 0, 0, 2, 2, 2, 1, A, 2, A, 2, 0, C, 2), MLP_EARG);
    assert_true(C[0] == 9 && C[3] == 9);
    mlp_free(net);
}

/* ---- 9. mlp_isa_from_name ---------------------------------------------------------- */

static void test_isa_from_name(void **state)
{
    static const char *unknown[] = {"avx3", "", "sse", "scalar ", "unknown"};
    mlp_isa isa;
    int i;
    (void)state;
    for (i = MLP_ISA_AUTO; i <= MLP_ISA_WASM128; i++) {
        isa = (mlp_isa)77;
        assert_int_equal(mlp_isa_from_name(mlp_isa_name((mlp_isa)i), &isa), MLP_OK);
        assert_int_equal(isa, i);
    }
    assert_string_equal(mlp_isa_name(MLP_ISA_NEON), "neon");
    assert_string_equal(mlp_isa_name(MLP_ISA_WASM128), "wasm128");
    for (i = 0; i < 5; i++) {
        char quoted[32];
        isa = (mlp_isa)77;
        assert_int_equal(mlp_isa_from_name(unknown[i], &isa), MLP_EARG);
        assert_int_equal(isa, 77);
        snprintf(quoted, sizeof quoted, "\"%s\"", unknown[i]);
        assert_non_null(strstr(mlp_error(), quoted));
    }
    isa = (mlp_isa)77;
    mlp__error_message[0] = 0;
    assert_int_equal(mlp_isa_from_name(NULL, &isa), MLP_EARG);
    assert_int_equal(isa, 77);
    assert_true(mlp_error()[0] != 0);
}

/* ---- 9b. which instruction sets this CPU has ---------------------------------------- */

/* mlp.h asks the CPU itself (cpuid, xgetbv), so that MSVC builds share the
   answer; GCC's and clang's own runtime check (which also asks whether the
   OS saves the registers) is the independent answer to compare with. */
static void test_isa_detection(void **state)
{
    (void)state;
    assert_true(mlp_isa_supported(MLP_ISA_SCALAR));
#if defined(__x86_64__) && !defined(MLP_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    assert_true(mlp_isa_supported(MLP_ISA_SSE2));
    assert_int_equal(mlp_isa_supported(MLP_ISA_AVX2),
                     __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    assert_int_equal(mlp_isa_supported(MLP_ISA_AVX512), !!__builtin_cpu_supports("avx512f"));
    assert_false(mlp_isa_supported(MLP_ISA_NEON));
    assert_false(mlp_isa_supported(MLP_ISA_WASM128));
#elif !defined(__aarch64__)
    assert_false(mlp_isa_supported(MLP_ISA_AVX2) || mlp_isa_supported(MLP_ISA_AVX512));
#endif
}

/* ---- 10. mlp_loss_eval ------------------------------------------------------------ */

static void test_loss_eval(void **state)
{
    /* CE: row 0 logits (0, 0, 0), label 2: p = 1/3 each, loss ln 3;
       row 1 logits (ln 2, 0, 0), label 0: p = (1/2, 1/4, 1/4), loss ln 2.
       The mean is ln 6 / 2; dL/dY = (p - onehot) / B. */
    float Y[6] = {0, 0, 0, (float)log(2.0), 0, 0}, dY[6], value;
    int labels[2] = {2, 0}, bad[2] = {2, 3}, neg[2] = {-1, 0};
    const double ce_grad[6] = {1 / 3.0 / 2, 1 / 3.0 / 2, -2 / 3.0 / 2, -0.5 / 2, 0.25 / 2, 0.25 / 2};
    /* MSE: 1/2 ||y - onehot||^2 per row, averaged. Row 0 (0.5, 0.25, 0),
       label 1: d = (0.5, -0.75, 0), 0.5 * 0.8125 = 0.40625; row 1 (1, 0, 1),
       label 0: d = (0, 0, 1), 0.5. Mean 0.453125; dL/dY = d / B. */
    float M[6] = {0.5f, 0.25f, 0, 1, 0, 1};
    int mlabels[2] = {1, 0};
    const double mse_grad[6] = {0.25, -0.375, 0, 0, 0, 0.5};
    float dY0[6];
    int i;
    (void)state;
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, Y, labels, 2, 3, dY, &value), MLP_OK);
    assert_float_equal(value, log(6.0) / 2, 1e-6);
    for (i = 0; i < 6; i++) assert_float_equal(dY[i], ce_grad[i], 1e-6);
    value = 0;
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, Y, labels, 2, 3, NULL, &value), MLP_OK);
    assert_float_equal(value, log(6.0) / 2, 1e-6);

    assert_int_equal(mlp_loss_eval(MLP_LOSS_MSE, M, mlabels, 2, 3, dY, &value), MLP_OK);
    assert_float_equal(value, 0.453125, 1e-7);
    for (i = 0; i < 6; i++) assert_float_equal(dY[i], mse_grad[i], 1e-7);

    /* a label out of range: MLP_EARG, value and dY untouched */
    for (i = 0; i < 6; i++) dY[i] = dY0[i] = 5.0f;
    value = 123.0f;
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, Y, bad, 2, 3, dY, &value), MLP_EARG);
    assert_true(value == 123.0f);
    assert_non_null(strstr(mlp_error(), "label 3"));
    assert_int_equal(mlp_loss_eval(MLP_LOSS_MSE, M, neg, 2, 3, dY, &value), MLP_EARG);
    assert_true(value == 123.0f);
    assert_memory_equal(dY, dY0, sizeof dY);
    assert_int_equal(mlp_loss_eval(MLP_LOSS_CE, Y, labels, 2, 3, dY, NULL), MLP_EARG);
    assert_memory_equal(dY, dY0, sizeof dY);
}

/* ---- 11. mlp_version --------------------------------------------------------------- */

static void test_version(void **state)
{
    char want[32];
    (void)state;
    snprintf(want, sizeof want, "%d.%d.%d", MLP_VERSION_MAJOR, MLP_VERSION_MINOR, MLP_VERSION_PATCH);
    assert_string_equal(mlp_version(), want);
}

/* ---- 12. a zeroed training configuration ------------------------------------------- */

static void test_zeroed_config(void **state)
{
    mlp_dataset ds;
    mlp_train_config d = mlp_train_defaults(), z;
    mlp_net *a = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    mlp_net *b = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    mlp_eval first, last;
    int epoch;
    (void)state;
    assert_non_null(a); assert_non_null(b);
    make_blobs(&ds, 200, 5);

    /* momentum keeps its zero (plain SGD) and so does seed (0 is a seed
       like any other): set those two as the defaults have them; every
       other zero must mean the default */
    memset(&z, 0, sizeof z);
    z.momentum = d.momentum;
    z.seed = d.seed;
    assert_int_equal(mlp_train_epoch(a, &ds, &d, 0, NULL), MLP_OK);
    assert_int_equal(mlp_train_epoch(b, &ds, &z, 0, NULL), MLP_OK);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    /* and with Adam, where beta1, beta2 and eps come from the defaults too */
    d.optimizer = z.optimizer = MLP_OPT_ADAM;
    assert_int_equal(mlp_train_epoch(a, &ds, &d, 1, NULL), MLP_OK);
    assert_int_equal(mlp_train_epoch(b, &ds, &z, 1, NULL), MLP_OK);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    d.optimizer = MLP_OPT_SGD;

    /* zeroed and nothing else: trains, and learns */
    mlp_free(b);
    b = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    assert_non_null(b);
    memset(&z, 0, sizeof z);
    assert_int_equal(mlp_train_epoch(b, &ds, &z, 0, &first), MLP_OK);
    for (epoch = 1; epoch < 5; epoch++) assert_int_equal(mlp_train_epoch(b, &ds, &z, epoch, &last), MLP_OK);
    assert_int_equal(first.n, 200);
    assert_true(last.loss < 0.8 * first.loss);

    /* the schedule of a zeroed config is the defaults': lr 0.05, halved every
       3 epochs */
    for (epoch = 0; epoch < 8; epoch++) {
        assert_true(mlp_lr_at(&z, epoch) == mlp_lr_at(&d, epoch));
        assert_float_equal(mlp_lr_at(&z, epoch), 0.05 * pow(0.5, epoch / 3), 1e-8);
    }
    mlp_dataset_free(&ds);
    mlp_free(a); mlp_free(b);
}

/* ---- 13. the callback's floating-point mode ----------------------------------------- */

typedef struct { int calls, flushed; } fp_probe;

/* 1e-30 * 1e-10 = 1e-40 is subnormal in float: it comes out 0 only when
   flush-to-zero is on */
static int subnormal_survives(void)
{
    volatile float a = 1e-30f, b = 1e-10f;
    float c = a * b;
    return c != 0.0f;
}

static int probe_fp_mode(void *user, const mlp_batch_info *info)
{
    fp_probe *p = (fp_probe *)user;
    (void)info;
    p->calls++;
    p->flushed += !subnormal_survives();
    return 0;
}

static void test_callback_fp_mode(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    fp_probe probe = {0, 0};
    (void)state;
    assert_non_null(net);
    assert_true(subnormal_survives()); /* the C default: no flush-to-zero */
    make_blobs(&ds, 64, 6);
    c.batch = 16;
    c.on_batch = probe_fp_mode;
    c.user = &probe;
    assert_int_equal(mlp_train_epoch(net, &ds, &c, 0, NULL), MLP_OK);
    assert_int_equal(probe.calls, 4);
    assert_int_equal(probe.flushed, 0);  /* the callback ran in the caller's mode */
    assert_true(subnormal_survives());   /* and training gave the mode back */
    mlp_dataset_free(&ds);
    mlp_free(net);
}

/* ---- 14. mlp_error ------------------------------------------------------------------- */

/* The documented contract: the message of the most recent failure; a
   successful call does not clear it. */
static void test_error_message_lifetime(void **state)
{
    mlp_net *net = mlp_create_spec("2-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    float x[2] = {0.5f, -0.5f};
    char want[32];
    (void)state;
    assert_non_null(net);
    assert_int_equal(mlp_set_threads(net, 0), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "thread count 0"));
    assert_int_equal(mlp_set_threads(net, 1), MLP_OK);
    assert_non_null(mlp_predict(net, x, 1));
    assert_non_null(strstr(mlp_error(), "thread count 0"));  /* not cleared */
    assert_int_equal(mlp_set_threads(net, MLP_MAX_THREADS + 1), MLP_EARG); /* replaced */
    snprintf(want, sizeof want, "thread count %d", MLP_MAX_THREADS + 1);
    assert_null(strstr(mlp_error(), "thread count 0"));
    assert_non_null(strstr(mlp_error(), want));
    mlp_free(net);
}

/* ---- 15. mlp_init_weights ------------------------------------------------------------ */

/* dense layer 0's weights, packed n_in x n_out */
static float *copy_first_weights(const mlp_net *net, int *count)
{
    mlp_mat W;
    float *w;
    int i;
    assert_int_equal(mlp_dense_weights(net, 0, &W, NULL), MLP_OK);
    w = malloc(sizeof(float) * (size_t)W.rows * (size_t)W.cols);
    assert_non_null(w);
    for (i = 0; i < W.rows; i++) memcpy(w + i * W.cols, mlp_mat_row(W, i), sizeof(float) * (size_t)W.cols);
    *count = W.rows * W.cols;
    return w;
}

/* how many of the count weights are equal in a and b */
static int equal_weights(const float *a, const float *b, int count)
{
    int i, same = 0;
    for (i = 0; i < count; i++) same += a[i] == b[i];
    return same;
}

static void test_init_weights(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = with_batchnorm(mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 1));
    mlp_net *other = with_batchnorm(mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 99));
    float *trained, *fresh, *again;
    size_t n = mlp_param_count(net) * sizeof(float);
    unsigned char *first;
    size_t size;
    const mlp_layer *bn;
    mlp_mat W, b;
    int d, j, count;
    (void)state;
    make_blobs(&ds, 200, 7);
    assert_int_equal(mlp_train_epoch(net, &ds, &c, 0, NULL), MLP_OK); /* biases, gamma, beta move */
    trained = copy_first_weights(net, &count);

    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 11), MLP_OK);
    for (d = 0; d < mlp_dense_count(net); d++) {
        assert_int_equal(mlp_dense_weights(net, d, &W, &b), MLP_OK);
        for (j = 0; j < b.cols; j++) assert_true(b.data[j] == 0.0f);
    }
    bn = first_batchnorm(net);
    assert_non_null(bn);
    for (j = 0; j < bn->n_out; j++) assert_true(bn->W[j] == 1.0f && bn->b[j] == 0.0f);
    /* fresh weights: (almost) every one differs from the trained value */
    fresh = copy_first_weights(net, &count);
    assert_true(equal_weights(fresh, trained, count) < 2);
    first = snapshot(net, &size);

    /* deterministic in the seed, whatever came before */
    assert_int_equal(mlp_train_epoch(net, &ds, &c, 1, NULL), MLP_OK);
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 11), MLP_OK);
    assert_unchanged(net, first, size);
    assert_int_equal(mlp_init_weights(other, MLP_INIT_AUTO, 11), MLP_OK);
    assert_unchanged(other, first, size);
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 12), MLP_OK);
    again = copy_first_weights(net, &count);
    assert_true(equal_weights(again, fresh, count) < 2);
    /* a network created with seed s starts as mlp_init_weights(AUTO, s) leaves it */
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 99), MLP_OK);
    mlp_free(other);
    other = with_batchnorm(mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 99));
    assert_int_equal(mlp_param_count(other) * sizeof(float), n);
    free(first);
    first = snapshot(other, &size);
    assert_unchanged(net, first, size);
    free(trained); free(fresh); free(again); free(first);
    mlp_dataset_free(&ds);
    mlp_free(net); mlp_free(other);
}

/* mlp_dataset_from_arrays: a copy is the data set's own (the caller's
   arrays may change or go; mlp_dataset_free releases it), a borrow is a
   view of the caller's arrays (here on the stack) and is dropped, not
   freed; every input and label is checked. */
static void test_dataset_from_arrays(void **state)
{
    float x[6 * 2] = {0, 0, 0, 1, 1, 0, 1, 1, 0.5f, 0.5f, 2, 2};
    int y[6] = {0, 1, 1, 0, 2, 2};
    float bad_x[2] = {1.0f, 0.0f};
    int bad_y[1] = {0};
    volatile float zero = 0.0f;
    mlp_dataset ds;
    mlp_eval ev;
    mlp_net *net = mlp_create_spec("2-8-3", MLP_ACT_TANH, MLP_LOSS_CE, 3);
    mlp_train_config cfg = mlp_train_defaults();
    (void)state;
    assert_int_equal(mlp_dataset_from_arrays(&ds, x, y, 6, 2, MLP_DATASET_COPY), MLP_OK);
    assert_true(ds.x != x && ds.y != y);
    x[0] = 9.0f; y[0] = 1;                       /* the copy does not see this */
    assert_true(ds.x[0] == 0.0f && ds.y[0] == 0);
    assert_int_equal(ds.n, 6);
    assert_int_equal(ds.dim, 2);
    assert_int_equal(ds.n_classes, 3);
    assert_true(ds.scale == 1.0f && ds.image_w == 0 && ds.image_h == 0);
    assert_int_equal(mlp_dataset_check(net, &ds), MLP_OK);
    cfg.batch = 4;
    assert_int_equal(mlp_train_epoch(net, &ds, &cfg, 0, &ev), MLP_OK);
    assert_int_equal(ev.n, 6);
    mlp_dataset_free(&ds);
    assert_null(ds.x);

    assert_int_equal(mlp_dataset_from_arrays(&ds, x, y, 6, 2, MLP_DATASET_BORROW), MLP_OK);
    assert_ptr_equal(ds.x, x);
    assert_ptr_equal(ds.y, y);
    x[1] = 7.0f;                                 /* the borrow does */
    assert_true(ds.x[1] == 7.0f);
    assert_int_equal(mlp_evaluate(net, &ds, 4, &ev, NULL), MLP_OK);
    assert_int_equal(ev.n, 6);
    assert_true(x[1] == 7.0f && y[5] == 2);      /* read, never written */

    bad_x[1] = zero / zero;
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 2, MLP_DATASET_COPY), MLP_EFORMAT);
    assert_non_null(strstr(mlp_error(), "input 1 of row 0 is ")); /* nan, -nan or -nan(ind) by the C library */
    assert_null(ds.x);
    bad_x[1] = 1.0f; bad_y[0] = -1;
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 2, MLP_DATASET_COPY), MLP_EFORMAT);
    assert_non_null(strstr(mlp_error(), "label -1 at index 0 is out of range"));
    bad_y[0] = 65536;
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 2, MLP_DATASET_BORROW), MLP_EFORMAT);
    bad_y[0] = 65535;
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 2, MLP_DATASET_BORROW), MLP_OK);
    assert_int_equal(ds.n_classes, 65536);
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 0, 2, MLP_DATASET_COPY), MLP_EARG);
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 0, MLP_DATASET_COPY), MLP_EARG);
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, MLP_MAX_WIDTH + 1, MLP_DATASET_COPY), MLP_EARG);
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, bad_y, 1, 2, 2), MLP_EARG);
    assert_int_equal(mlp_dataset_from_arrays(&ds, NULL, bad_y, 1, 2, MLP_DATASET_COPY), MLP_EARG);
    assert_int_equal(mlp_dataset_from_arrays(&ds, bad_x, NULL, 1, 2, MLP_DATASET_COPY), MLP_EARG);
    assert_true(mlp_dataset_from_arrays(NULL, bad_x, bad_y, 1, 2, MLP_DATASET_COPY) < 0);
    mlp_free(net);
}

/* Built without MLP_INFLATE, a gzipped IDX file is named for what it is
   and the way out is given. */
static void test_gzip_without_inflate(void **state)
{
    static const unsigned char gz[20] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0};
    mlp_idx idx;
    (void)state;
    assert_int_equal(mlp_idx_load_memory(&idx, gz, sizeof gz, "x.gz"), MLP_EFORMAT);
    assert_non_null(strstr(mlp_error(), "x.gz: gzip-compressed (1f 8b): gunzip it first, or build with MLP_INFLATE"));
    assert_null(idx.data);
}

/* The shared flags: each sets what it names, values out of range fail with
   the flag in the message, and --layers' "auto" takes the data's widths. */
static int cli(mlp_cli *o, const char *a, const char *b)
{
    char *argv[4];
    int i = 1, rc;
    argv[0] = (char *)"prog"; argv[1] = (char *)a; argv[2] = (char *)b; argv[3] = NULL;
    rc = mlp_cli_flag(o, b ? 3 : 2, argv, &i);
    if (rc == 1) assert_int_equal(i, b ? 2 : 1); /* moved past the value, if any */
    return rc;
}

static void test_cli_flags(void **state) /* (float)0.01: rounded to float even where constants are wider (x87, s390x) */
{
    mlp_cli o = mlp_cli_defaults();
    mlp_net *net;
    int sizes[4];
    mlp_mat W;
    (void)state;
    assert_string_equal(o.layers, "784-256-128-10");
    assert_int_equal(o.epochs, 10);
    assert_int_equal(o.threads, 1);
    assert_string_equal(o.out, "model.mlp");
    assert_int_equal(cli(&o, "--lr", "0.25"), 1);           assert_true(o.train.lr == (float)0.25);
    assert_int_equal(cli(&o, "--epochs", "7"), 1);          assert_int_equal(o.epochs, 7);
    assert_int_equal(cli(&o, "--batch", "5"), 1);           assert_int_equal(o.train.batch, 5);
    assert_int_equal(cli(&o, "--seed", "99"), 1);           assert_true(o.train.seed == 99);
    assert_int_equal(cli(&o, "--act", "tanh"), 1);          assert_int_equal(o.act, MLP_ACT_TANH);
    assert_int_equal(cli(&o, "--loss", "mse"), 1);          assert_int_equal(o.loss, MLP_LOSS_MSE);
    assert_int_equal(cli(&o, "--init", "glorot"), 1);       assert_int_equal(o.init, MLP_INIT_GLOROT);
    assert_int_equal(cli(&o, "--optimizer", "adamw"), 1);   assert_int_equal(o.train.optimizer, MLP_OPT_ADAMW);
    assert_int_equal(cli(&o, "--schedule", "cosine"), 1);   assert_int_equal(o.train.schedule, MLP_SCHEDULE_COSINE);
    assert_int_equal(cli(&o, "--momentum", "0.5"), 1);      assert_true(o.train.momentum == (float)0.5);
    assert_int_equal(cli(&o, "--weight-decay", "0.01"), 1); assert_true(o.train.weight_decay == (float)0.01);
    assert_int_equal(cli(&o, "--lr-decay", "0.7"), 1);      assert_true(o.train.lr_decay == (float)0.7);
    assert_int_equal(cli(&o, "--lr-step", "4"), 1);         assert_int_equal(o.train.lr_step, 4);
    assert_int_equal(cli(&o, "--warmup", "2"), 1);          assert_int_equal(o.train.warmup_epochs, 2);
    assert_int_equal(cli(&o, "--beta1", "0.8"), 1);         assert_true(o.train.beta1 == (float)0.8);
    assert_int_equal(cli(&o, "--beta2", "0.99"), 1);        assert_true(o.train.beta2 == (float)0.99);
    assert_int_equal(cli(&o, "--clip-norm", "3"), 1);       assert_true(o.train.clip_norm == (float)3.0);
    assert_int_equal(cli(&o, "--max-norm", "2"), 1);        assert_true(o.train.max_norm == (float)2.0);
    assert_int_equal(cli(&o, "--diverge-factor", "0"), 1);  assert_true(o.train.diverge_factor < 0.0f); /* 0: off */
    assert_int_equal(cli(&o, "--diverge-factor", "9"), 1);  assert_true(o.train.diverge_factor == (float)9.0);
    assert_int_equal(cli(&o, "--dropout", "0.3"), 1);       assert_true(o.dropout == (float)0.3);
    assert_int_equal(cli(&o, "--dropout-input", "0.1"), 1); assert_true(o.dropout_input == (float)0.1);
    assert_int_equal(cli(&o, "--threads", "3"), 1);         assert_int_equal(o.threads, 3);
    assert_int_equal(cli(&o, "--log", "a.csv"), 1);         assert_string_equal(o.log, "a.csv");
    assert_int_equal(cli(&o, "--out", "m.mlp"), 1);         assert_string_equal(o.out, "m.mlp");
    assert_int_equal(cli(&o, "--export-c", "m.h"), 1);      assert_string_equal(o.export_c, "m.h");
    assert_int_equal(cli(&o, "--export-name", "net_1"), 1); assert_string_equal(o.export_name, "net_1");
    assert_int_equal(cli(&o, "--quiet", NULL), 1);          assert_int_equal(o.quiet, 1);
    assert_int_equal(cli(&o, "--batchnorm", NULL), 1);      assert_int_equal(o.batchnorm, 1);
    assert_int_equal(cli(&o, "--layers", "auto-5-auto"), 1);
    /* not ours: left for the program */
    assert_int_equal(cli(&o, "--data", "dir"), 0);
    assert_int_equal(cli(&o, "file.csv", NULL), 0);
    /* bad values: the flag and the range in the message */
    assert_int_equal(cli(&o, "--lr", "0"), MLP_EARG);
    assert_string_equal(mlp_error(), "--lr 0: expected a number in 1e-12..1e+06");
    assert_int_equal(cli(&o, "--epochs", "12x"), MLP_EARG);
    assert_string_equal(mlp_error(), "--epochs 12x: expected an integer in 0..100000");
    assert_int_equal(cli(&o, "--act", "gelu"), MLP_EARG);
    assert_string_equal(mlp_error(), "--act gelu: expected relu, sigmoid or tanh");
    assert_int_equal(cli(&o, "--export-name", "9lives"), MLP_EARG);
    assert_int_equal(cli(&o, "--threads", "0"), MLP_EARG);
    assert_int_equal(cli(&o, "--seed", "-1"), MLP_EARG);
    assert_int_equal(cli(&o, "--momentum", "1.5"), MLP_EARG);
    assert_int_equal(cli(&o, "--batch", NULL), MLP_EARG);
    assert_string_equal(mlp_error(), "--batch: missing value");
    /* every flag the help lists is one mlp_cli_flag reads */
    assert_non_null(strstr(mlp_cli_help(), "--diverge-factor X"));
    assert_non_null(strstr(mlp_cli_help(), "--export-name NAME"));

    /* auto widths, tanh, batchnorm, dropout, the weights drawn from the seed */
    net = mlp_cli_create(&o, 3, 4);
    assert_non_null(net);
    assert_int_equal(mlp_input_width(net), 3);
    assert_int_equal(mlp_output_width(net), 4);
    assert_int_equal(mlp_dense_count(net), 2);
#ifdef MLP__THREADS /* the build has a thread pool */
    assert_int_equal(mlp_get_threads(net), 3);
#else
    assert_int_equal(mlp_get_threads(net), 1); /* accepted, run on one thread */
#endif
    assert_int_equal(net->layers[0].kind, MLP_LAYER_DROPOUT);   /* on the input */
    assert_int_equal(net->layers[2].kind, MLP_LAYER_BATCHNORM); /* after the first dense layer */
    assert_int_equal(mlp_dense_weights(net, 0, &W, NULL), MLP_OK);
    assert_true(W.data[0] != 0.0f);
    mlp_free(net);
    assert_null(mlp_cli_create(&o, 0, 4));
    assert_non_null(strstr(mlp_error(), "\"auto\" needs the data's widths"));
    o.layers = "5-auto-2";
    assert_null(mlp_cli_create(&o, 5, 2));
    assert_non_null(strstr(mlp_error(), "layer spec \"5-auto-2\""));
    o.layers = "auto-7";
    o.batchnorm = 0; o.dropout = o.dropout_input = 0;
    assert_non_null(net = mlp_cli_create(&o, 9, 0 + 1));
    assert_int_equal(mlp_parse_spec("9-7", sizes, 4), 2);
    assert_int_equal(mlp_input_width(net), 9);
    assert_int_equal(mlp_output_width(net), 7);
    mlp_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mat_create_and_view),
        cmocka_unit_test(test_mat_rows_and_row),
        cmocka_unit_test(test_mat_fill_strided),
        cmocka_unit_test(test_mat_copy_and_clone),
        cmocka_unit_test(test_dataset_inputs),
        cmocka_unit_test(test_dense_weights),
        cmocka_unit_test(test_input_description),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_copy_weights),
        cmocka_unit_test(test_param_count),
        cmocka_unit_test(test_predict_mat),
        cmocka_unit_test(test_gemm_entry_points),
        cmocka_unit_test(test_isa_from_name),
        cmocka_unit_test(test_loss_eval),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_zeroed_config),
        cmocka_unit_test(test_callback_fp_mode),
        cmocka_unit_test(test_error_message_lifetime),
        cmocka_unit_test(test_init_weights),
        cmocka_unit_test(test_sizes_beyond_address_space),
        cmocka_unit_test(test_isa_detection),
        cmocka_unit_test(test_gzip_without_inflate),
        cmocka_unit_test(test_dataset_from_arrays),
        cmocka_unit_test(test_cli_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
