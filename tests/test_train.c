/* Network construction, initialisation, SGD, schedules, determinism and a
   small training run that must converge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <float.h>
#include <time.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static void test_parse_spec(void **state)
{
    int sizes[8];
    (void)state;
    assert_int_equal(mlp_parse_spec("784-256-128-10", sizes, 8), 4);
    assert_int_equal(sizes[0], 784);
    assert_int_equal(sizes[3], 10);
    assert_true(mlp_parse_spec("784", sizes, 8) < 0);
    assert_non_null(strstr(mlp_error(), "at least an input and an output"));
    assert_true(mlp_parse_spec("784--10", sizes, 8) < 0);
    assert_true(mlp_parse_spec("784-0-10", sizes, 8) < 0);
    assert_true(mlp_parse_spec("784-10x", sizes, 8) < 0);
    assert_true(mlp_parse_spec("784-99999999999999999999-10", sizes, 8) < 0);
    assert_non_null(strstr(mlp_error(), "above the limit"));
    assert_true(mlp_parse_spec("1-2-3-4-5-6-7-8-9", sizes, 8) < 0);
    assert_true(mlp_parse_spec("", sizes, 8) < 0);
}

static void test_create_rejects(void **state)
{
    int sizes[3] = {4, 0, 2};
    mlp_act acts[2] = {MLP_ACT_RELU, MLP_ACT_IDENTITY};
    (void)state;
    assert_null(mlp_create(3, sizes, acts, MLP_LOSS_CE, 1));
    assert_non_null(strstr(mlp_error(), "width 0 of layer 1"));
    sizes[1] = 3;
    acts[0] = (mlp_act)17;
    assert_null(mlp_create(3, sizes, acts, MLP_LOSS_CE, 1));
    assert_non_null(strstr(mlp_error(), "unknown activation 17"));
    acts[0] = MLP_ACT_RELU;
    assert_null(mlp_create(3, sizes, acts, (mlp_loss)5, 1));
    assert_null(mlp_create(1, sizes, acts, MLP_LOSS_CE, 1));
    assert_null(mlp_create_spec("4-3-1", MLP_ACT_RELU, MLP_LOSS_CE, 1));
    assert_null(mlp_forward(NULL, NULL, 1));
    assert_true(mlp_backward(NULL, NULL, NULL) < 0);
}

static void test_structure(void **state)
{
    mlp_net *net = mlp_create_spec("5-4-3-2", MLP_ACT_SIGMOID, MLP_LOSS_MSE, 1);
    (void)state;
    assert_non_null(net);
    assert_int_equal(net->n_layers, 5); /* dense act dense act dense */
    assert_int_equal(net->layers[1].kind, MLP_LAYER_ACT);
    assert_int_equal(net->layers[1].act, MLP_ACT_SIGMOID);
    assert_int_equal(net->layers[4].kind, MLP_LAYER_DENSE);
    assert_int_equal(net->n_params, 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2);
    assert_int_equal(mlp_input_width(net), 5);
    assert_int_equal(mlp_output_width(net), 2);
    mlp_free(net);
}

static void check_init_range(mlp_init_kind kind, int n_in, int n_out, float want_bound)
{
    int sizes[2], i;
    mlp_act act = MLP_ACT_IDENTITY;
    float lo = 0, hi = 0;
    mlp_net *net;
    sizes[0] = n_in; sizes[1] = n_out;
    net = mlp_create(2, sizes, &act, MLP_LOSS_MSE, 3);
    assert_int_equal(mlp_init_weights(net, kind, 3), 0);
    for (i = 0; i < n_in * n_out; i++) {
        if (net->layers[0].W[i] < lo) lo = net->layers[0].W[i];
        if (net->layers[0].W[i] > hi) hi = net->layers[0].W[i];
    }
    for (i = 0; i < n_out; i++) assert_true(net->layers[0].b[i] == 0.0f);
    /* within the bound, and using most of it */
    assert_true(hi <= want_bound && lo >= -want_bound);
    assert_true(hi > 0.95f * want_bound && lo < -0.95f * want_bound);
    mlp_free(net);
}

static void test_init(void **state)
{
    mlp_net *net;
    float bound;
    (void)state;
    check_init_range(MLP_INIT_UNIFORM_FANIN, 100, 50, 0.1f);
    check_init_range(MLP_INIT_GLOROT, 100, 50, sqrtf(6.0f / 150.0f));
    check_init_range(MLP_INIT_HE, 100, 50, sqrtf(6.0f / 100.0f));
    /* AUTO: He before a ReLU, Glorot before the identity output */
    net = mlp_create_spec("600-400-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    bound = 0;
    for (size_t i = 0; i < 600 * 400; i++) bound = fmaxf(bound, fabsf(net->layers[0].W[i]));
    assert_true(bound > sqrtf(6.0f / 1000.0f) * 1.2f && bound <= sqrtf(6.0f / 600.0f));
    bound = 0;
    for (size_t i = 0; i < 400 * 10; i++) bound = fmaxf(bound, fabsf(net->layers[2].W[i]));
    assert_true(bound <= sqrtf(6.0f / 410.0f));
    mlp_free(net);
}

static void test_sgd_step_math(void **state)
{
    int sizes[2] = {1, 2};
    mlp_act act = MLP_ACT_IDENTITY;
    mlp_net *net = mlp_create(2, sizes, &act, MLP_LOSS_MSE, 1);
    (void)state;
    net->params[0] = 1.0f; net->params[1] = -2.0f;   /* W */
    net->params[2] = 0.5f; net->params[3] = 0.0f;    /* b */
    net->grads[0] = 0.1f; net->grads[1] = 0.2f; net->grads[2] = 0.3f; net->grads[3] = -0.4f;
    assert_int_equal(mlp_sgd_step(net, 0.5f, 0.9f, 0.01f), 0);
    /* v = g + wd w (weights only); w -= lr v */
    assert_float_equal(net->params[0], 1.0f - 0.5f * (0.1f + 0.01f * 1.0f), 1e-7);
    assert_float_equal(net->params[1], -2.0f - 0.5f * (0.2f - 0.02f), 1e-7);
    assert_float_equal(net->params[2], 0.5f - 0.5f * 0.3f, 1e-7);
    assert_float_equal(net->params[3], 0.0f + 0.5f * 0.4f, 1e-7);
    /* second step: v = momentum v + g + wd w */
    {
        float v0 = 0.1f + 0.01f * 1.0f, w0 = net->params[0];
        float v1 = 0.9f * v0 + 0.1f + 0.01f * w0;
        assert_int_equal(mlp_sgd_step(net, 0.5f, 0.9f, 0.01f), 0);
        assert_float_equal(net->params[0], w0 - 0.5f * v1, 1e-6);
    }
    assert_true(mlp_sgd_step(net, -1.0f, 0.9f, 0.0f) < 0);
    mlp_free(net);
}

static void make_blobs(mlp_dataset *ds, int n, uint64_t seed);

/* one weight, one bias: the optimizers' formulas by hand */
static mlp_net *one_unit(float w, float b, float gw, float gb)
{
    int sizes[2] = {1, 1};
    mlp_act act = MLP_ACT_IDENTITY;
    mlp_net *net = mlp_create(2, sizes, &act, MLP_LOSS_MSE, 1);
    net->params[0] = w; net->params[1] = b;
    net->grads[0] = gw; net->grads[1] = gb;
    return net;
}

static void test_optimizers_by_hand(void **state)
{
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net;
    float m, v, w;
    (void)state;
    /* Nesterov: v = mu v + g; w -= lr (g + mu v) */
    c.optimizer = MLP_OPT_NESTEROV; c.momentum = 0.9f; c.weight_decay = 0.1f;
    net = one_unit(2.0f, 1.0f, 0.5f, -1.0f);
    assert_int_equal(mlp_optimizer_step(net, &c, 0.1f), 0);
    assert_float_equal(net->params[0], 2.0f - 0.1f * (0.7f + 0.9f * 0.7f), 1e-6);   /* g = 0.5 + 0.1 * 2 */
    assert_float_equal(net->params[1], 1.0f - 0.1f * (-1.0f + 0.9f * -1.0f), 1e-6); /* no decay on b */
    mlp_free(net);
    /* Adam, two steps with bias correction */
    c.optimizer = MLP_OPT_ADAM; c.weight_decay = 0.0f; c.beta1 = 0.9f; c.beta2 = 0.999f; c.eps = 1e-8f;
    net = one_unit(1.0f, 0.0f, 0.2f, 0.0f);
    assert_int_equal(mlp_optimizer_step(net, &c, 0.01f), 0);
    m = 0.1f * 0.2f; v = 0.001f * 0.04f;
    w = 1.0f - 0.01f * (m / 0.1f) / (sqrtf(v / 0.001f) + 1e-8f);   /* = 1 - 0.01 */
    assert_float_equal(net->params[0], w, 1e-6);
    net->grads[0] = -0.4f;
    assert_int_equal(mlp_optimizer_step(net, &c, 0.01f), 0);
    m = 0.9f * m + 0.1f * -0.4f; v = 0.999f * v + 0.001f * 0.16f;
    w -= 0.01f * (m / (1 - 0.81f)) / (sqrtf(v / (1 - 0.998001f)) + 1e-8f);
    assert_float_equal(net->params[0], w, 1e-5);
    assert_int_equal((int)net->step, 2);
    mlp_free(net);
    /* AdamW: decay applied to w directly, not through the moments */
    c.optimizer = MLP_OPT_ADAMW; c.weight_decay = 0.5f;
    net = one_unit(1.0f, 0.0f, 0.2f, 0.0f);
    assert_int_equal(mlp_optimizer_step(net, &c, 0.01f), 0);
    assert_float_equal(net->params[0], 1.0f * (1 - 0.01f * 0.5f) - 0.01f, 1e-6);
    mlp_free(net);
    /* gradient clipping to a global norm of 1: (3, 4) -> (0.6, 0.8) */
    c = mlp_train_defaults(); c.momentum = 0.0f; c.clip_norm = 1.0f;
    net = one_unit(0.0f, 0.0f, 3.0f, 4.0f);
    assert_int_equal(mlp_optimizer_step(net, &c, 1.0f), 0);
    assert_float_equal(net->params[0], -0.6f, 1e-6);
    assert_float_equal(net->params[1], -0.8f, 1e-6);
    mlp_free(net);
    /* a norm between max^2 and max is still clipped: (0.6, 0.2), norm 0.632, to 0.5 */
    c.clip_norm = 0.5f;
    net = one_unit(0.0f, 0.0f, 0.6f, 0.2f);
    assert_int_equal(mlp_optimizer_step(net, &c, 1.0f), 0);
    assert_float_equal(net->params[0], -0.6f * 0.5f / sqrtf(0.4f), 1e-6);
    assert_float_equal(net->params[1], -0.2f * 0.5f / sqrtf(0.4f), 1e-6);
    mlp_free(net);
    /* max-norm: a column of W longer than 1 is scaled back to 1 */
    c = mlp_train_defaults(); c.momentum = 0.0f; c.max_norm = 1.0f;
    net = mlp_create_spec("2-1", MLP_ACT_RELU, MLP_LOSS_MSE, 1);
    net->params[0] = 3.0f; net->params[1] = 4.0f;
    memset(net->grads, 0, net->n_params * sizeof(float));
    assert_int_equal(mlp_optimizer_step(net, &c, 0.1f), 0);
    assert_float_equal(net->params[0], 0.6f, 1e-6);
    assert_float_equal(net->params[1], 0.8f, 1e-6);
    c.optimizer = (mlp_optimizer)9;
    assert_true(mlp_optimizer_step(net, &c, 0.1f) < 0);
    mlp_free(net);
}

/* Every optimizer's vector path against the scalar one, on odd block sizes
   (17 x 13 weights, 13 biases, 5-unit batchnorm: full vectors and tails),
   over a few steps with decay, clipping and max-norm on. */
static void test_optimizer_simd_matches_scalar(void **state)
{
    static const mlp_optimizer opts[4] = {MLP_OPT_SGD, MLP_OPT_NESTEROV, MLP_OPT_ADAM, MLP_OPT_ADAMW};
    int o, step, isa;
    size_t i;
    (void)state;
    for (isa = MLP_ISA_SSE2; isa <= MLP_ISA_WASM128; isa++) {
        if (!mlp_isa_supported((mlp_isa)isa)) continue;
        for (o = 0; o < 4; o++) {
            mlp_train_config c = mlp_train_defaults();
            mlp_net *ref = mlp_create_spec("17-13-5-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
            mlp_net *vec = mlp_create_spec("17-13-5-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
            mlp_rng rng;
            assert_int_equal(mlp_add_batchnorm(ref), 0);
            assert_int_equal(mlp_add_batchnorm(vec), 0);
            assert_int_equal(mlp_set_isa(ref, MLP_ISA_SCALAR), 0);
            assert_int_equal(mlp_set_isa(vec, (mlp_isa)isa), 0);
            c.optimizer = opts[o]; c.weight_decay = 0.01f; c.clip_norm = 2.0f; c.max_norm = 1.5f;
            mlp_rng_seed(&rng, 5, (uint64_t)o);
            for (step = 0; step < 4; step++) {
                for (i = 0; i < ref->n_params; i++) ref->grads[i] = vec->grads[i] = mlp_rng_float(&rng) - 0.5f;
                assert_int_equal(mlp_optimizer_step(ref, &c, 0.05f), 0);
                assert_int_equal(mlp_optimizer_step(vec, &c, 0.05f), 0);
            }
            for (i = 0; i < ref->n_params; i++)
                if (fabsf(ref->params[i] - vec->params[i]) > 1e-5f * (1.0f + fabsf(ref->params[i]))) {
                    print_error("%s, optimizer %d, parameter %lu: %.9g vs %.9g\n", mlp_isa_name((mlp_isa)isa), o,
                                (unsigned long)i, ref->params[i], vec->params[i]);
                    fail();
                }
            mlp_free(ref); mlp_free(vec);
        }
    }
}

/* The parameter update is split between threads in slices of 16 floats
   once the network has enough parameters; a slice bound off by one chunk
   would leave some parameters untouched on some thread counts only. So:
   a net above the threshold whose blocks all end in a ragged chunk
   (300 x 217 = 65100 = 16 * 4068 + 12, 217 = 16 * 13 + 9, 651, 3), two
   steps of every optimizer on 1, 2 and 3 threads, every parameter against
   the textbook formula in double precision. Gradients are at least 0.5 in
   size, so a skipped parameter misses the tolerance by four orders. */
static void test_threaded_update_by_hand(void **state)
{
    static const mlp_optimizer opts[4] = {MLP_OPT_SGD, MLP_OPT_NESTEROV, MLP_OPT_ADAM, MLP_OPT_ADAMW};
    static const int threads[3] = {1, 2, 3};
    enum { STEPS = 2 };
    mlp_net *probe = mlp_create_spec("300-217-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
    size_t n = probe->n_params, i;
    float *g = malloc(STEPS * n * sizeof(float)), *first = malloc(n * sizeof(float));
    double *w = malloc(n * sizeof(double)), *v = malloc(n * sizeof(double)), *s = malloc(n * sizeof(double));
    unsigned char *decays = calloc(n, 1);
    mlp_rng rng;
    int o, t, step, l;
    (void)state;
    assert_true(n % 2 == 1 && n >= MLP__PARALLEL_MIN_FMA / 4); /* else nothing is split */
    for (l = 0; l < probe->n_layers; l++)   /* weight decay: dense weights only */
        if (probe->layers[l].kind == MLP_LAYER_DENSE)
            memset(decays + (probe->layers[l].W - probe->params), 1, (size_t)probe->layers[l].n_in * probe->layers[l].n_out);
    mlp_rng_seed(&rng, 21, 2);
    for (i = 0; i < STEPS * n; i++) g[i] = (mlp_rng_float(&rng) < 0.5f ? -1.0f : 1.0f) * (0.5f + 0.5f * mlp_rng_float(&rng));
    for (o = 0; o < 4; o++) {
        mlp_train_config c = mlp_train_defaults();
        float lr = opts[o] >= MLP_OPT_ADAM ? 0.01f : 0.1f;
        double mu, b1, b2, eps, wd;
        c.optimizer = opts[o]; c.weight_decay = 0.01f;
        mu = c.momentum; b1 = c.beta1; b2 = c.beta2; eps = c.eps; wd = c.weight_decay;
        for (i = 0; i < n; i++) { w[i] = probe->params[i]; v[i] = s[i] = 0.0; }
        for (step = 0; step < STEPS; step++) {
            double c1 = 1.0 - pow(b1, step + 1), c2 = 1.0 - pow(b2, step + 1);
            for (i = 0; i < n; i++) {
                double d = decays[i] ? wd : 0.0, gi = g[step * n + i] + (opts[o] == MLP_OPT_ADAMW ? 0.0 : d * w[i]);
                switch (opts[o]) {
                case MLP_OPT_SGD: v[i] = mu * v[i] + gi; w[i] -= lr * v[i]; break;
                case MLP_OPT_NESTEROV: v[i] = mu * v[i] + gi; w[i] -= lr * (gi + mu * v[i]); break;
                default:
                    v[i] = b1 * v[i] + (1 - b1) * gi;
                    s[i] = b2 * s[i] + (1 - b2) * gi * gi;
                    if (opts[o] == MLP_OPT_ADAMW) w[i] -= lr * d * w[i];
                    w[i] -= lr * (v[i] / c1) / (sqrt(s[i] / c2) + eps);
                }
            }
        }
        for (t = 0; t < 3; t++) {
            mlp_net *net = mlp_create_spec("300-217-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
            int bad = 0;
            assert_memory_equal(net->params, probe->params, n * sizeof(float));
            assert_int_equal(mlp_set_threads(net, threads[t]), 0);
            for (step = 0; step < STEPS; step++) {
                memcpy(net->grads, g + step * n, n * sizeof(float));
                assert_int_equal(mlp_optimizer_step(net, &c, lr), 0);
            }
            for (i = 0; i < n; i++)
                if (fabs(net->params[i] - w[i]) > 2e-6 * (1.0 + fabs(w[i])) && bad++ < 5)
                    print_error("optimizer %d, %d threads, parameter %lu of %lu: %.9g, by hand %.9g\n", o, threads[t],
                                (unsigned long)i, (unsigned long)n, net->params[i], w[i]);
            assert_int_equal(bad, 0);
            if (t == 0) memcpy(first, net->params, n * sizeof(float));
            else assert_memory_equal(net->params, first, n * sizeof(float)); /* bit-identical by design */
            mlp_free(net);
        }
    }
    free(g); free(first); free(w); free(v); free(s); free(decays);
    mlp_free(probe);
}

static void test_adam_trains_and_resumes(void **state)
{
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults(), c2;
    mlp_net *a = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 3), *b, *r;
    mlp_eval ev;
    unsigned char *buf;
    size_t size;
    int e, bt, epoch;
    (void)state;
    make_blobs(&train, 600, 4);
    c.optimizer = MLP_OPT_ADAM; c.lr = 0.01f; c.batch = 32; c.schedule = MLP_SCHEDULE_COSINE;
    c.warmup_epochs = 1; c.total_epochs = 4; c.clip_norm = 5.0f;
    for (epoch = 0; epoch < 4; epoch++) assert_int_equal(mlp_train_epoch(a, &train, &c, epoch, NULL), 0);
    assert_int_equal(mlp_evaluate(a, &train, 100, &ev, NULL), 0);
    assert_true(ev.accuracy > 0.97);
    b = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 3);
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(b, &train, &c, epoch, NULL), 0);
    assert_int_equal(mlp_checkpoint_save_memory(b, &c, 2, 0, NULL, 0, &size), MLP_OK);
    buf = malloc(size);
    assert_int_equal(mlp_checkpoint_save_memory(b, &c, 2, 0, buf, size, &size), MLP_OK);
    memset(&c2, 0, sizeof c2);
    r = mlp_checkpoint_load_memory(buf, size, &c2, &e, &bt);
    assert_non_null(r);
    assert_true(c2.optimizer == MLP_OPT_ADAM && c2.schedule == MLP_SCHEDULE_COSINE && c2.total_epochs == 4 && r->step == b->step);
    for (epoch = e; epoch < 4; epoch++) assert_int_equal(mlp_train_epoch(r, &train, &c2, epoch, NULL), 0);
    assert_memory_equal(r->params, a->params, a->n_params * sizeof(float));
    free(buf);
    mlp_dataset_free(&train);
    mlp_free(a); mlp_free(b); mlp_free(r);
}

static void test_lr_schedule(void **state)
{
    mlp_train_config c = mlp_train_defaults();
    (void)state;
    c.lr = 0.1f; c.lr_decay = 0.5f; c.lr_step = 3;
    assert_float_equal(mlp_lr_at(&c, 0), 0.1f, 1e-7);
    assert_float_equal(mlp_lr_at(&c, 2), 0.1f, 1e-7);
    assert_float_equal(mlp_lr_at(&c, 3), 0.05f, 1e-7);
    assert_float_equal(mlp_lr_at(&c, 7), 0.025f, 1e-7);
    c.lr_scale = 0.5f;                        /* e.g. after a plateau */
    assert_float_equal(mlp_lr_at(&c, 0), 0.05f, 1e-7);
    c.lr_scale = 1.0f;
    c.schedule = MLP_SCHEDULE_EXP; c.lr_decay = 0.9f;
    assert_float_equal(mlp_lr_at(&c, 2), 0.1f * 0.81f, 1e-7);
    c.schedule = MLP_SCHEDULE_COSINE; c.warmup_epochs = 1; c.total_epochs = 5;
    assert_float_equal(mlp_lr_at(&c, 0), 0.05f, 1e-7);              /* warm-up: 1/2 */
    assert_float_equal(mlp_lr_at(&c, 1), 0.1f, 1e-7);               /* cosine starts at 1 */
    assert_float_equal(mlp_lr_at(&c, 3), 0.05f, 1e-6);              /* half way: 1/2 */
    assert_float_equal(mlp_lr_at(&c, 5), 0.0f, 1e-7);
}

/* Three Gaussian-ish blobs in 4-D (uniform noise around three centres). */
static void make_blobs(mlp_dataset *ds, int n, uint64_t seed)
{
    static const float centre[3][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {-1, -1, 0, 0}};
    mlp_rng rng;
    int i, j;
    mlp_rng_seed(&rng, seed, 9);
    memset(ds, 0, sizeof *ds);
    ds->n = n; ds->dim = 4; ds->n_classes = 3;
    ds->x = malloc(sizeof(float) * 4 * (size_t)n);
    ds->y = malloc(sizeof(int) * (size_t)n);
    for (i = 0; i < n; i++) {
        ds->y[i] = (int)mlp_rng_below(&rng, 3);
        for (j = 0; j < 4; j++) ds->x[i * 4 + j] = centre[ds->y[i]][j] + 1.2f * (mlp_rng_float(&rng) - 0.5f);
    }
}

static mlp_net *train_blobs_threads(mlp_loss loss, mlp_act act, uint64_t seed, mlp_eval *ev, int *confusion,
                                    const char *spec, int threads, int epochs)
{
    mlp_dataset train, test;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec(spec, act, loss, seed);
    int epoch;
    assert_int_equal(mlp_set_threads(net, threads), 0);
    make_blobs(&train, 600, 1);
    make_blobs(&test, 300, 2);
    c.batch = 32; c.lr = 0.1f; c.seed = seed;
    for (epoch = 0; epoch < epochs; epoch++) assert_int_equal(mlp_train_epoch(net, &train, &c, epoch, NULL), 0);
    assert_int_equal(mlp_evaluate(net, &test, 64, ev, confusion), 0);
    mlp_dataset_free(&train);
    mlp_dataset_free(&test);
    return net;
}

static mlp_net *train_blobs(mlp_loss loss, mlp_act act, uint64_t seed, mlp_eval *ev, int *confusion)
{
    return train_blobs_threads(loss, act, seed, ev, confusion, "4-16-8-3", 1, 20);
}

/* Wide enough layers that the work is really split between threads (and
   short: under qemu, for the NEON build, every flop is emulated). */
static void test_thread_count_does_not_change_results(void **state)
{
    mlp_eval e1, e2, e3;
    mlp_net *a, *b, *c;
    (void)state;
    a = train_blobs_threads(MLP_LOSS_CE, MLP_ACT_RELU, 3, &e1, NULL, "4-200-130-3", 1, 2);
    b = train_blobs_threads(MLP_LOSS_CE, MLP_ACT_RELU, 3, &e2, NULL, "4-200-130-3", 2, 2);
    c = train_blobs_threads(MLP_LOSS_CE, MLP_ACT_RELU, 3, &e3, NULL, "4-200-130-3", 3, 2);
#ifdef MLP__THREADS /* the build has a thread pool (not MLP_NO_THREADS, not tcc) */
    assert_int_equal(mlp_get_threads(b), 2);
#else
    assert_int_equal(mlp_get_threads(b), 1); /* accepted, run on one thread */
#endif
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_equal(a->params, c->params, a->n_params * sizeof(float));
    assert_true(e1.accuracy == e2.accuracy && e1.loss == e2.loss); /* same kernels, same data: bit-identical by design */
    assert_true(mlp_set_threads(a, 0) < 0);
    assert_true(mlp_set_threads(a, MLP_MAX_THREADS + 1) < 0);
    mlp_free(a); mlp_free(b); mlp_free(c);
}

static void test_converges(void **state)
{
    mlp_eval ev;
    int confusion[9], i, total = 0, diag = 0;
    mlp_net *net;
    (void)state;
    net = train_blobs(MLP_LOSS_CE, MLP_ACT_RELU, 1, &ev, confusion);
    assert_true(ev.accuracy > 0.98);
    assert_true(ev.loss < 0.1);
    for (i = 0; i < 9; i++) total += confusion[i];
    for (i = 0; i < 3; i++) diag += confusion[i * 4];
    assert_int_equal(total, 300);
    assert_int_equal(diag, ev.correct);
    mlp_free(net);
    net = train_blobs(MLP_LOSS_MSE, MLP_ACT_SIGMOID, 1, &ev, NULL);
    assert_true(ev.accuracy > 0.95);
    mlp_free(net);
}

static void test_xor(void **state)
{
    float X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    int y[4] = {0, 1, 1, 0}, sizes[3] = {2, 8, 2}, step, i;
    mlp_act acts[2] = {MLP_ACT_TANH, MLP_ACT_IDENTITY};
    mlp_net *net = mlp_create(3, sizes, acts, MLP_LOSS_CE, 42);
    const float *p;
    float loss = 0;
    (void)state;
    for (step = 0; step < 1000; step++) {
        assert_non_null(mlp_forward(net, X, 4));
        assert_int_equal(mlp_backward(net, y, &loss), 0);
        assert_int_equal(mlp_sgd_step(net, 0.5f, 0.9f, 0.0f), 0);
    }
    assert_true(loss < 0.01f);
    p = mlp_predict(net, X, 4);
    for (i = 0; i < 4; i++) {
        assert_true(p[2 * i + y[i]] > 0.95f);
        assert_float_equal(p[2 * i] + p[2 * i + 1], 1.0f, 1e-6);
    }
    mlp_free(net);
}

static void test_deterministic(void **state)
{
    mlp_eval e1, e2;
    mlp_net *a, *b, *c;
    (void)state;
    a = train_blobs(MLP_LOSS_CE, MLP_ACT_RELU, 7, &e1, NULL);
    b = train_blobs(MLP_LOSS_CE, MLP_ACT_RELU, 7, &e2, NULL);
    c = train_blobs(MLP_LOSS_CE, MLP_ACT_RELU, 8, &e2, NULL);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_not_equal(a->params, c->params, a->n_params * sizeof(float));
    mlp_free(a); mlp_free(b); mlp_free(c);
}

static void test_divergence_detected(void **state)
{
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_MSE, 1);
    int rc = 0, epoch;
    (void)state;
    make_blobs(&train, 200, 1);
    c.lr = 1e6f;
    for (epoch = 0; epoch < 5 && rc == 0; epoch++) rc = mlp_train_epoch(net, &train, &c, epoch, NULL);
    assert_int_equal(rc, MLP_ENUMERIC);
    assert_non_null(strstr(mlp_error(), "learning rate too high"));
    mlp_dataset_free(&train);
    mlp_free(net);
}

/* A step whose update overflows the weights but no bias (inputs of 1000,
   a learning rate of 1e37: the weight gradients reach thousands, the bias
   gradients stay below 2) must fail, also when it is the epoch's only step,
   which no later loss would catch. Every layer is 32 wide, so where the
   kernels allow it the one-region step computes and updates every weight
   matrix in one pass (mlp__fuses_update). */
static void test_step_reports_overflowing_weights(void **state)
{
    enum { N = 64, DIM = 8, CLASSES = 32 };
    float x[N * DIM];
    int y[N], i;
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("8-32-32", MLP_ACT_RELU, MLP_LOSS_CE, 3);
    mlp_rng rng;
    (void)state;
    mlp_rng_seed(&rng, 4, 0);
    for (i = 0; i < N * DIM; i++) x[i] = 500.0f + 500.0f * mlp_rng_float(&rng);
    for (i = 0; i < N; i++) y[i] = i % CLASSES;
    assert_int_equal(mlp_dataset_from_arrays(&train, x, y, N, DIM, MLP_DATASET_BORROW), MLP_OK);
    c.batch = N; c.lr = 1e37f; c.momentum = 0.0f; c.diverge_factor = -1.0f;
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), MLP_ENUMERIC);
    assert_non_null(strstr(mlp_error(), "a gradient or weight became NaN or infinite"));
    mlp_free(net);
}

/* Divergence that stays finite: ReLU keeps a network's values finite while
   a learning rate of 1e6 ruins it (the loss reached 1e17 in the report that
   asked for this); the watch stops it in the first epoch. A dead network
   (every hidden unit off) is stopped at its first batch; the watch's
   threshold is diverge_factor times log(classes); negative switches it off. */
static void test_divergence_watch(void **state)
{
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-32-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_mat W, b;
    mlp_eval ev;
    int j;
    (void)state;
    make_blobs(&train, 200, 1);
    c.lr = 1e6f;
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), MLP_ENUMERIC);
    assert_non_null(strstr(mlp_error(), "training diverged in epoch 1, batch "));
    assert_non_null(strstr(mlp_error(), "learning rate too high"));

    /* dead: every hidden bias far below anything the inputs can lift */
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 1), 0);
    assert_int_equal(mlp_dense_weights(net, 0, &W, &b), 0);
    for (j = 0; j < 32; j++) b.data[j] = -1000.0f;
    c.lr = 0.01f;
    {
        mlp_net *before = mlp_clone(net);             /* a stopped batch takes no step */
        assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), MLP_ENUMERIC);
        assert_memory_equal(net->params, before->params, net->n_params * sizeof(float));
        mlp_free(before);
    }
    assert_non_null(strstr(mlp_error(), "training diverged in epoch 1, batch 1: all 32 units of hidden layer 1 (ReLU) are inactive"));
    c.diverge_factor = -1.0f;                     /* off: the dead network trains on */
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, &ev), MLP_OK);
    assert_int_equal(ev.n, 200);

    /* the threshold: log(3) = 1.0986 times the factor; a healthy start's
       loss is about log(3), so a factor of 0.5 stops it at once and 2 not */
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 1), 0);
    c.diverge_factor = 0.5f;
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), MLP_ENUMERIC);
    assert_non_null(strstr(mlp_error(), "training diverged in epoch 1, batch 1: the running loss"));
    assert_non_null(strstr(mlp_error(), "over 0.5 times what guessing costs (1.1)"));
    assert_int_equal(mlp_init_weights(net, MLP_INIT_AUTO, 1), 0);
    c.diverge_factor = 2.0f;
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, &ev), MLP_OK);
    assert_true(ev.loss < 2.0 * log(3.0));
    c.diverge_factor = NAN;
    assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), MLP_EARG);
    mlp_dataset_free(&train);
    mlp_free(net);
}

static void test_sgd_detects_bad_gradients(void **state)
{
    mlp_net *net = mlp_create_spec("40-30-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    (void)state;
    assert_int_equal(mlp_sgd_step(net, 0.1f, 0.9f, 0.0f), 0);
    net->grads[17] = NAN;
    assert_int_equal(mlp_sgd_step(net, 0.1f, 0.9f, 0.0f), MLP_ENUMERIC);
    assert_non_null(strstr(mlp_error(), "NaN or infinite"));
    net->grads[17] = 0.0f;
    net->grads[net->n_params - 1] = INFINITY; /* a bias, in a vector tail */
    assert_int_equal(mlp_sgd_step(net, 0.1f, 0.9f, 0.0f), MLP_ENUMERIC);
    net->grads[net->n_params - 1] = 0.0f;
    memset(net->velocity, 0, net->n_params * sizeof(float));
    net->grads[5] = 1e30f;                      /* finite gradient, weight overflows */
    assert_int_equal(mlp_sgd_step(net, 1e30f, 0.0f, 0.0f), MLP_ENUMERIC);
    mlp_free(net);
}

/* Stops at batch 5 of epoch 1 through the callback, as Ctrl-C does. */
static int stop_at_5(void *user, const mlp_batch_info *info)
{
    (void)user;
    return info->epoch == 1 && info->batch == 4;
}

/* A checkpoint taken mid-epoch, saved and loaded, continues to exactly the
   weights of an uninterrupted run. */
static void check_resume(int batchnorm)
{
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults(), c2;
    mlp_net *straight = mlp_create_spec("4-16-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 5), *first, *resumed;
    mlp_eval ev;
    size_t size;
    unsigned char *buf;
    int epoch, e, b;
    if (batchnorm) assert_int_equal(mlp_add_batchnorm(straight), 0);
    make_blobs(&train, 600, 1);
    c.batch = 32; c.seed = 11; c.lr_decay = 0.5f; c.lr_step = 1;
    for (epoch = 0; epoch < 3; epoch++) assert_int_equal(mlp_train_epoch(straight, &train, &c, epoch, NULL), 0);

    first = mlp_create_spec("4-16-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 5);
    if (batchnorm) assert_int_equal(mlp_add_batchnorm(first), 0);
    c.on_batch = stop_at_5;
    assert_int_equal(mlp_train_epoch(first, &train, &c, 0, NULL), 0);
    assert_int_equal(mlp_train_epoch(first, &train, &c, 1, &ev), MLP_EINTR);
    assert_int_equal(ev.n, 5 * 32);
    assert_int_equal(mlp_checkpoint_save_memory(first, &c, 1, 5, NULL, 0, &size), MLP_OK);
    buf = malloc(size);
    assert_int_equal(mlp_checkpoint_save_memory(first, &c, 1, 5, buf, size, &size), MLP_OK);
    memset(&c2, 0, sizeof c2);
    resumed = mlp_checkpoint_load_memory(buf, size, &c2, &e, &b);
    assert_non_null(resumed);
    assert_true(e == 1 && b == 5 && c2.seed == 11 && c2.batch == 32 && c2.lr_step == 1);
    for (epoch = e; epoch < 3; epoch++) {
        c2.start_batch = epoch == e ? b : 0;
        assert_int_equal(mlp_train_epoch(resumed, &train, &c2, epoch, NULL), 0);
    }
    assert_memory_equal(resumed->params, straight->params, straight->n_params * sizeof(float));
    assert_int_equal(resumed->n_stats, straight->n_stats);
    if (batchnorm) assert_memory_equal(resumed->stats, straight->stats, straight->n_stats * sizeof(float));
    buf[size / 2] ^= 1; /* and a damaged checkpoint is refused */
    assert_null(mlp_checkpoint_load_memory(buf, size, &c2, &e, &b));
    assert_non_null(strstr(mlp_error(), "checksum"));
    free(buf);
    mlp_dataset_free(&train);
    mlp_free(straight); mlp_free(first); mlp_free(resumed);
}

static void test_checkpoint_resume_bit_identical(void **state) { (void)state; check_resume(0); }
static void test_checkpoint_resume_batchnorm(void **state) { (void)state; check_resume(1); }

/* BatchNorm in training: it learns the blobs, its running averages end
   near the statistics of the whole training set, it keeps the dense
   weights it was given, and weight decay leaves gamma and beta alone. */
static void test_batchnorm_training(void **state)
{
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 3), *plain;
    mlp_eval ev;
    float W0[4 * 16];
    int epoch, i, j;
    (void)state;
    memcpy(W0, net->layers[0].W, sizeof W0);
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_add_batchnorm(net), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "already has batch normalisation"));
    assert_int_equal(net->n_layers, 7);
    assert_memory_equal(net->layers[0].W, W0, sizeof W0);
    for (j = 0; j < 16; j++) assert_true(net->layers[1].W[j] == 1.0f && net->layers[1].b[j] == 0.0f && net->layers[1].run_var[j] == 1.0f);

    make_blobs(&train, 600, 1);
    c.batch = 32; c.lr = 0.1f; c.seed = 3; c.lr_step = 100;
    for (epoch = 0; epoch < 10; epoch++) assert_int_equal(mlp_train_epoch(net, &train, &c, epoch, NULL), 0);
    assert_int_equal(mlp_evaluate(net, &train, 600, &ev, NULL), 0); /* inference mode: running statistics */
    assert_true(ev.accuracy > 0.95);
    {   /* the whole set's mean and variance of the first dense layer's outputs */
        const float *z = net->out[0];
        for (j = 0; j < 16; j++) {
            double m = 0, v = 0;
            for (i = 0; i < 600; i++) m += z[i * 16 + j] / 600.0;
            for (i = 0; i < 600; i++) v += (z[i * 16 + j] - m) * (z[i * 16 + j] - m) / 600.0;
            if (fabs(net->layers[1].run_mean[j] - m) > 0.25 * sqrt(v) + 1e-3 || fabs(net->layers[1].run_var[j] / v - 1) > 0.35)
                print_error("unit %d: running %g %g, data %g %g\n", j, net->layers[1].run_mean[j], net->layers[1].run_var[j], m, v);
            assert_true(fabs(net->layers[1].run_mean[j] - m) <= 0.25 * sqrt(v) + 1e-3);
            assert_true(fabs(net->layers[1].run_var[j] / v - 1) <= 0.35);
        }
    }
    memset(net->grads, 0, net->n_params * sizeof(float));
    memcpy(W0, net->layers[1].W, 16 * sizeof(float));
    {
        float w = net->layers[0].W[0], want = w - 0.1f * 0.5f * w;
        assert_int_equal(mlp_sgd_step(net, 0.1f, 0.0f, 0.5f), 0);
        /* the vector kernels fuse w - lr v into one rounding, this
           expression rounds twice: they may differ in the last bit */
        assert_true(fabsf(net->layers[0].W[0] - want) <= 2 * FLT_EPSILON * fabsf(want));
        assert_memory_equal(net->layers[1].W, W0, 16 * sizeof(float));
    }
    plain = mlp_create_spec("4-3", MLP_ACT_RELU, MLP_LOSS_CE, 3); /* no hidden layer: nothing to add */
    assert_int_equal(mlp_add_batchnorm(plain), 0);
    assert_int_equal(plain->n_layers, 1);
    mlp_dataset_free(&train);
    mlp_free(net); mlp_free(plain);
}

/* One training step's effect on BatchNorm's running statistics, by hand.
   The dense layer before it is the identity, so the batch it normalises is
   the input: columns {1, 2, 3, 6} (mean 3, squared deviations 4 + 1 + 0 + 9
   = 14) and {-4, 0, 0, 4} (mean 0, 32). The running variance estimates the
   population's: 14 / 3 and 32 / 3, not the batch's 14 / 4 and 32 / 4. With
   momentum 0.1 from (mean 0, variance 1): running = 0.9 old + 0.1 batch. */
static void test_batchnorm_running_stats_by_hand(void **state)
{
    float x[8] = {1, -4, 2, 0, 3, 0, 6, 4}, probe[2] = {5, -1};
    int y[4] = {0, 1, 0, 1}, sizes[3] = {2, 2, 2}, epoch, j;
    mlp_act acts[2] = {MLP_ACT_IDENTITY, MLP_ACT_IDENTITY};
    const double mean[2] = {3.0, 0.0}, var[2] = {14.0 / 3.0, 32.0 / 3.0};
    double rm[2] = {0.0, 0.0}, rv[2] = {1.0, 1.0};
    mlp_net *net = mlp_create(3, sizes, acts, MLP_LOSS_CE, 1);
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    const mlp_layer *bn;
    (void)state;
    assert_int_equal(mlp_add_batchnorm(net), 0);
    bn = &net->layers[1];
    assert_int_equal(bn->kind, MLP_LAYER_BATCHNORM);
    assert_true(bn->momentum == (float)0.1f /* x87: constants carry excess precision */);
    net->layers[0].W[0] = 1; net->layers[0].W[1] = 0; net->layers[0].W[2] = 0; net->layers[0].W[3] = 1;
    net->layers[0].b[0] = net->layers[0].b[1] = 0;
    memset(&ds, 0, sizeof ds);
    ds.n = 4; ds.dim = 2; ds.n_classes = 2; ds.x = x; ds.y = y;
    c.batch = 4; c.lr = 1e-30f; /* nothing learns (0 would mean the default): the second step sees the same batch */
    for (epoch = 0; epoch < 2; epoch++) {
        assert_int_equal(mlp_train_epoch(net, &ds, &c, epoch, NULL), 0);
        for (j = 0; j < 2; j++) {
            rm[j] = 0.9 * rm[j] + 0.1 * mean[j];
            rv[j] = 0.9 * rv[j] + 0.1 * var[j];
            if (fabs(bn->run_mean[j] - rm[j]) > 1e-6 * (1 + fabs(rm[j])) || fabs(bn->run_var[j] / rv[j] - 1) > 1e-6)
                print_error("step %d, unit %d: running mean %.9g variance %.9g, by hand %.9g %.9g\n", epoch + 1, j,
                            bn->run_mean[j], bn->run_var[j], rm[j], rv[j]);
            assert_true(fabs(bn->run_mean[j] - rm[j]) <= 1e-6 * (1 + fabs(rm[j])));
            assert_true(fabs(bn->run_var[j] / rv[j] - 1) <= 1e-6);
        }
    }
    /* inference normalises with the running statistics (gamma 1, beta 0) */
    assert_non_null(mlp_forward(net, probe, 1));
    for (j = 0; j < 2; j++)
        assert_true(fabs(net->out[1][j] - (probe[j] - rm[j]) / sqrt(rv[j] + 1e-5)) <= 1e-6);
    {   /* training normalises with the batch's (biased) variance plus eps under
           the root; unit 0's variance, 3e-6, is smaller than eps */
        float tiny[8] = {0, 1, 0, 2, 0, 3, 0.004f, 6};
        const double m2[2] = {0.001, 3.0}, v2[2] = {3e-6, 3.5};
        int i;
        mlp_set_training(net, 1);
        assert_non_null(mlp_forward(net, tiny, 4));
        mlp_set_training(net, 0);
        for (i = 0; i < 4; i++)
            for (j = 0; j < 2; j++) {
                double want = (tiny[2 * i + j] - m2[j]) / sqrt(v2[j] + 1e-5);
                assert_true(fabs(net->out[1][2 * i + j] - want) <= 1e-4 * (1 + fabs(want)));
            }
    }
    mlp_free(net);
}

/* mlp_batch_info carries no sample indices, but net->x points at the
   batch being trained while on_batch runs: samples whose only feature is
   their index make the order readable. */
typedef struct order_log {
    const mlp_net *net;
    int *order, filled;
} order_log;

static int log_order(void *user, const mlp_batch_info *info)
{
    order_log *log = (order_log *)user;
    int i;
    for (i = 0; log->filled + i < info->samples_done; i++) log->order[log->filled + i] = (int)log->net->x[i];
    log->filled = info->samples_done;
    return 0;
}

/* the order in which one epoch visits ds (whose x[i] = i) */
static void epoch_order(mlp_net *net, const mlp_dataset *ds, uint64_t seed, int batch, int epoch, int *order)
{
    mlp_train_config c = mlp_train_defaults();
    order_log log;
    log.net = net; log.order = order; log.filled = 0;
    c.seed = seed; c.batch = batch; c.lr = 1e-30f; c.on_batch = log_order; c.user = &log;
    assert_int_equal(mlp_train_epoch(net, ds, &c, epoch, NULL), 0);
    assert_int_equal(log.filled, ds->n);
}

static void make_indexed(mlp_dataset *ds, float *x, int *y, int n)
{
    int i;
    memset(ds, 0, sizeof *ds);
    for (i = 0; i < n; i++) { x[i] = (float)i; y[i] = i % 2; }
    ds->n = n; ds->dim = 1; ds->n_classes = 2; ds->x = x; ds->y = y;
}

static void test_shuffle_order(void **state)
{
    enum { N = 23, EPOCHS = 3, SMALL = 4, ROUNDS = 480 };
    float x[N];
    int y[N], order[EPOCHS][N], again[N], seen[N], hits[SMALL][SMALL], sizes[2] = {1, 2}, e, i, k;
    mlp_act act = MLP_ACT_IDENTITY;
    mlp_net *net = mlp_create(2, sizes, &act, MLP_LOSS_CE, 1), *other = mlp_create(2, sizes, &act, MLP_LOSS_CE, 9);
    mlp_dataset ds;
    (void)state;
    make_indexed(&ds, x, y, N);
    for (e = 0; e < EPOCHS; e++) {
        int identity = 1;
        epoch_order(net, &ds, 5, 4, e, order[e]);  /* 23 = 5 x 4 + 3: a short last batch */
        memset(seen, 0, sizeof seen);
        for (i = 0; i < N; i++) {
            assert_true(order[e][i] >= 0 && order[e][i] < N && !seen[order[e][i]]);
            seen[order[e][i]] = 1;
            identity &= order[e][i] == i;
        }
        assert_false(identity);
        for (k = 0; k < e; k++) assert_memory_not_equal(order[k], order[e], sizeof order[e]);
    }
    /* a function of (seed, epoch) only: another net, another batch size,
       the epochs out of order, the same order; another seed, another */
    for (e = EPOCHS - 1; e >= 0; e--) {
        epoch_order(other, &ds, 5, 7, e, again);
        assert_memory_equal(again, order[e], sizeof again);
    }
    epoch_order(other, &ds, 6, 4, 0, again);
    assert_memory_not_equal(again, order[0], sizeof again);
    /* every sample lands in every place about equally often (480 orders of
       4: 120 each, sd 9.5); a shuffle that never leaves a sample in place
       (Sattolo's, j < i) or never moves one fails here */
    make_indexed(&ds, x, y, SMALL);
    memset(hits, 0, sizeof hits);
    for (e = 0; e < ROUNDS; e++) {
        epoch_order(net, &ds, 5, SMALL, e, again);
        for (i = 0; i < SMALL; i++) hits[again[i]][i]++;
    }
    for (k = 0; k < SMALL; k++)
        for (i = 0; i < SMALL; i++) {
            if (hits[k][i] < 80 || hits[k][i] > 160) print_error("sample %d at place %d %d times of %d\n", k, i, hits[k][i], ROUNDS);
            assert_true(hits[k][i] >= 80 && hits[k][i] <= 160);
        }
    mlp_free(net); mlp_free(other);
}

/* n inputs straight to n outputs: the logits are the input */
static mlp_net *identity_net(int n, mlp_loss loss)
{
    int sizes[2], i;
    mlp_act act = MLP_ACT_IDENTITY;
    mlp_net *net;
    sizes[0] = sizes[1] = n;
    net = mlp_create(2, sizes, &act, loss, 1);
    for (i = 0; i < n * n; i++) net->layers[0].W[i] = i % (n + 1) == 0 ? 1.0f : 0.0f;
    for (i = 0; i < n; i++) net->layers[0].b[i] = 0.0f;
    return net;
}

/* Predictions known by construction (the hot input wins), so every cell of
   the confusion matrix is known; no cell equals its mirror image. */
static void test_confusion_by_hand(void **state)
{
    enum { N = 11 };
    static const int truth[N] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
    static const int guess[N] = {0, 1, 0, 2, 1, 2, 2, 0, 2, 2, 2};
    static const int want[3][3] = {{2, 1, 1},   /* row: true label, column: prediction */
                                   {0, 1, 2},
                                   {1, 0, 3}};
    static const int batches[3] = {1, 4, 64};
    float x[N * 3];
    int y[N], confusion[9], i, b;
    mlp_net *net = identity_net(3, MLP_LOSS_CE);
    mlp_dataset ds;
    mlp_eval ev;
    (void)state;
    memset(&ds, 0, sizeof ds);
    for (i = 0; i < N; i++) {
        x[i * 3] = x[i * 3 + 1] = x[i * 3 + 2] = 0.1f * (float)i;
        x[i * 3 + guess[i]] += 2.0f;
        y[i] = truth[i];
    }
    ds.n = N; ds.dim = 3; ds.n_classes = 3; ds.x = x; ds.y = y;
    for (b = 0; b < 3; b++) {
        for (i = 0; i < 9; i++) confusion[i] = 99; /* overwritten, not added to */
        assert_int_equal(mlp_evaluate(net, &ds, batches[b], &ev, confusion), 0);
        for (i = 0; i < 9; i++) {
            if (confusion[i] != want[i / 3][i % 3])
                print_error("batch %d: confusion[true %d][predicted %d] = %d, by hand %d\n", batches[b], i / 3, i % 3,
                            confusion[i], want[i / 3][i % 3]);
            assert_int_equal(confusion[i], want[i / 3][i % 3]);
        }
        assert_int_equal(ev.n, N);
        assert_int_equal(ev.correct, 6);
        assert_true(fabs(ev.accuracy - 6.0 / N) < 1e-12);
    }
    mlp_free(net);
}

/* The mean loss over a data set does not depend on how it is cut into
   batches: a short last batch weighs by its size. Per-sample losses differ
   widely (confident right, confident wrong, unsure), each by hand:
   cross-entropy log(sum exp z) - z[y], Euclidean 1/2 |z - onehot(y)|^2. */
static void test_evaluate_loss_any_batch(void **state)
{
    enum { N = 10 };
    static const float x[N * 3] = {4, 0, 0,  0, 3, 1,  -2, 0, 5,  1, 1.5f, 1,  0, 0.25f, 0,
                                   3, -1, 2,  0.5f, 2, -3,  -1, -1, 4,  2, 2.5f, 0,  6, 1, -2};
    static const int batches[6] = {1, 3, 4, 7, 10, 64};
    int y[N] = {0, 0, 2, 1, 2, 1, 1, 0, 0, 0}, i, j, b, l;
    mlp_dataset ds;
    (void)state;
    memset(&ds, 0, sizeof ds);
    ds.n = N; ds.dim = 3; ds.n_classes = 3; ds.x = (float *)x; ds.y = y;
    for (l = 0; l < 2; l++) {
        mlp_loss loss = l ? MLP_LOSS_MSE : MLP_LOSS_CE;
        mlp_net *net = identity_net(3, loss);
        double want = 0.0;
        int correct = 0;
        for (i = 0; i < N; i++) {
            const float *z = x + i * 3;
            double s = 0.0;
            int best = 0;
            for (j = 0; j < 3; j++) {
                double d = z[j] - (j == y[i]);
                s += loss == MLP_LOSS_CE ? exp(z[j]) : 0.5 * d * d;
                if (z[j] > z[best]) best = j;
            }
            want += loss == MLP_LOSS_CE ? log(s) - z[y[i]] : s;
            correct += best == y[i];
        }
        want /= N;
        for (b = 0; b < 6; b++) {
            mlp_eval ev;
            assert_int_equal(mlp_evaluate(net, &ds, batches[b], &ev, NULL), 0);
            if (fabs(ev.loss / want - 1) > 1e-6)
                print_error("loss %d, batch %d: %.9g, by hand %.9g\n", l, batches[b], ev.loss, want);
            assert_true(fabs(ev.loss / want - 1) <= 1e-6);
            assert_int_equal(ev.correct, correct);
            assert_true(ev.accuracy == (double)correct / N);
        }
        for (b = 1; b < 4; b++) {  /* a training epoch that learns nothing reports the same, every sample counted */
            mlp_train_config c = mlp_train_defaults();
            mlp_eval ev;
            c.batch = batches[b]; c.lr = 1e-30f; /* too small to move a weight; 0 means the default */
            assert_int_equal(mlp_train_epoch(net, &ds, &c, 0, &ev), 0);
            assert_int_equal(ev.n, N);
            assert_int_equal(ev.correct, correct);
            if (fabs(ev.loss / want - 1) > 1e-6)
                print_error("training, loss %d, batch %d: %.9g, by hand %.9g\n", l, batches[b], ev.loss, want);
            assert_true(fabs(ev.loss / want - 1) <= 1e-6);
        }
        mlp_free(net);
    }
}

/* Equal outputs predict the lowest class (as numpy.argmax does): a network
   that outputs zeros everywhere predicts class 0 for every sample. */
static void test_ties_predict_the_first_class(void **state)
{
    float x[4 * 3] = {1, 2, 3,  -1, 0, 4,  0, 0, 0,  5, -5, 1};
    int y[4] = {0, 2, 1, 0}, confusion[9], i;
    mlp_dataset ds;
    mlp_eval ev;
    mlp_net *net = mlp_create_spec("3-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    (void)state;
    memset(net->params, 0, net->n_params * sizeof(float));
    memset(&ds, 0, sizeof ds);
    ds.n = 4; ds.dim = 3; ds.n_classes = 3; ds.x = x; ds.y = y;
    assert_int_equal(mlp_evaluate(net, &ds, 4, &ev, confusion), 0);
    assert_int_equal(ev.correct, 2);
    for (i = 0; i < 9; i++) assert_int_equal(confusion[i], i == 0 ? 2 : i == 3 || i == 6 ? 1 : 0);
    mlp_free(net);
}

/* Every public function given NULL, zero, negative, mismatched or absurd
   arguments: an error code (or NULL / 0) and a message, never a crash or an
   assertion. README counts these cases. */
static void test_api_misuse(void **state)
{
    float x[4] = {0}, out[784], value;
    size_t size;
    int labels[2] = {0, 1}, sizes[3] = {2, 3, 2}, n = 0;
    mlp_act acts[2] = {MLP_ACT_RELU, MLP_ACT_IDENTITY};
    mlp_net *net = mlp_create_spec("2-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_train_config c = mlp_train_defaults();
    mlp_dataset ds;
    mlp_eval ev;
    mlp_idx idx;
    mlp_mat m;
    (void)state;
#define BAD(expr) do { mlp__error_message[0] = 0; assert_true(expr); assert_true(mlp_error()[0] != 0); n++; } while (0)
    BAD(mlp_create(3, NULL, acts, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_create(0, sizes, acts, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_create(-5, sizes, acts, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_create(1000, sizes, acts, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_create_spec(NULL, MLP_ACT_RELU, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_create_spec("2-1048577-2", MLP_ACT_RELU, MLP_LOSS_CE, 1) == NULL);
    BAD(mlp_forward(net, NULL, 2) == NULL);
    BAD(mlp_forward(net, x, 0) == NULL);
    BAD(mlp_forward(net, x, -3) == NULL);
    BAD(mlp_forward(net, x, 1 << 30) == NULL);
    BAD(mlp_predict(NULL, x, 1) == NULL);
    assert_non_null(mlp_forward(net, x, 2));
    labels[1] = 7;
    BAD(mlp_backward(net, labels, NULL) == MLP_EARG);   /* label out of range */
    BAD(mlp_backward(net, NULL, NULL) < 0);
    BAD(mlp_sgd_step(NULL, 0.1f, 0.9f, 0.0f) < 0);
    BAD(mlp_sgd_step(net, NAN, 0.9f, 0.0f) < 0);
    BAD(mlp_sgd_step(net, 0.1f, -1.0f, 0.0f) < 0);
    BAD(mlp_loss_eval(MLP_LOSS_CE, NULL, labels, 2, 2, NULL, &value) == MLP_EARG);
    BAD(mlp_loss_eval(MLP_LOSS_CE, x, labels, 0, 2, NULL, &value) == MLP_EARG);
    BAD(mlp_loss_eval(MLP_LOSS_CE, x, labels, 2, 2, NULL, NULL) == MLP_EARG);
    BAD(mlp_init_weights(NULL, MLP_INIT_AUTO, 1) < 0);
    BAD(mlp_init_weights(net, (mlp_init_kind)99, 1) < 0);
    BAD(mlp_set_threads(net, -1) < 0);
    BAD(mlp_set_threads(NULL, 2) < 0);
    BAD(mlp_set_isa(net, (mlp_isa)42) < 0);
    BAD(mlp_gemm_isa(MLP_ISA_AUTO, 0, 0, -1, 2, 2, 1, x, 2, x, 2, 0, x, 2) < 0);
    BAD(mlp_gemm_isa(MLP_ISA_AUTO, 0, 0, 2, 2, 2, 1, NULL, 2, x, 2, 0, x, 2) < 0);
    BAD(mlp_gemm_isa(MLP_ISA_AUTO, 0, 0, 2, 2, 2, 1, x, 1, x, 2, 0, x, 2) < 0); /* lda < K */
    BAD(mlp_gemm_isa(MLP_ISA_AUTO, 1, 1, 2, 2, 3, 1, x, 1, x, 2, 0, x, 2) < 0); /* op(A) needs lda >= M */
    mlp__error_message[0] = 0;
    mlp_gemm(0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, NULL, 2); /* void: no crash, message set */
    assert_non_null(strstr(mlp_error(), "NULL"));
    n++;
    c.batch = 0;
    BAD(mlp_train_epoch(net, NULL, &c, 0, NULL) < 0);
    memset(&ds, 0, sizeof ds);
    BAD(mlp_train_epoch(net, &ds, &c, 0, NULL) < 0);    /* empty data set */
    BAD(mlp_evaluate(net, &ds, 10, &ev, NULL) < 0);
    BAD(mlp_evaluate(net, NULL, 0, &ev, NULL) < 0);
    BAD(mlp_dataset_check(NULL, &ds) < 0);
    BAD(mlp_dataset_from_idx(&ds, NULL, NULL) < 0);
    BAD(mlp_idx_load_memory(&idx, NULL, 10, "x") < 0);
    BAD(mlp_idx_load(NULL, "x") < 0);
    BAD(mlp_load(NULL) == NULL);
    BAD(mlp_load_memory(NULL, 10) == NULL);
    BAD(mlp_save(NULL, "x") < 0);
    BAD(mlp_save(net, NULL) < 0);
    BAD(mlp_save_memory(NULL, NULL, 0, &size) == MLP_EARG);
    BAD(mlp_save_memory(net, NULL, 0, NULL) == MLP_EARG);
    BAD(mlp_checkpoint_save_memory(net, NULL, 0, 0, NULL, 0, &size) == MLP_EARG);
    BAD(mlp_checkpoint_save_memory(net, &c, -1, 0, NULL, 0, &size) == MLP_EARG);
    BAD(mlp_checkpoint_save_memory(net, &c, 0, 0, NULL, 0, NULL) == MLP_EARG);
    BAD(mlp_checkpoint_load(NULL, &c, &n, &n) == NULL);
    BAD(mlp_digit_preprocess(x, -1, 2, 1, out) < 0);
    BAD(mlp_normalize_input(NULL, x, x) < 0);
    BAD(mlp_mat_create(&m, -1, 5) < 0);
    BAD(mlp_mat_create(NULL, 1, 5) < 0);
    BAD(mlp_parse_spec("2-3", NULL, 4) < 0);
    /* getters and helpers on NULL: neutral values */
    assert_int_equal(mlp_input_width(NULL), 0);
    assert_int_equal(mlp_output_width(NULL), 0);
    assert_int_equal(mlp_get_threads(NULL), 0);
    assert_true(mlp_lr_at(NULL, 3) == 0.0f);
    assert_int_equal(mlp_rng_u32(NULL), 0);
    assert_int_equal(mlp_crc32(NULL, 5), 0);
    mlp_free(NULL); mlp_idx_free(NULL); mlp_dataset_free(NULL); mlp_mat_free(NULL); mlp_mat_fill(NULL, 1.0f);
    print_message("%d bad API calls, each refused with a message\n", n);
#undef BAD
    mlp_free(net);
    (void)sizes;
}

static void test_dropout_layer(void **state)
{
    enum { N = 20000 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *m = malloc(N * sizeof(float));
    double sum = 0;
    int i, zeros = 0;
    mlp_rng rng;
    mlp_net *a, *b;
    mlp_dataset train;
    mlp_train_config c = mlp_train_defaults();
    (void)state;
    for (i = 0; i < N; i++) x[i] = 1.0f;
    mlp_rng_seed(&rng, 3, 3);
    mlp__dropout_forward(y, m, x, N, 0.3f, &rng);
    for (i = 0; i < N; i++) { sum += y[i]; zeros += y[i] == 0.0f; }
    assert_true(fabs(sum / N - 1.0) < 0.02);          /* inverted dropout keeps the mean */
    assert_true(abs(zeros - (int)(0.3 * N)) < 400);
    mlp__dropout_forward(y, m, x, N, 0.0f, &rng);     /* inference: identity */
    assert_memory_equal(x, y, N * sizeof(float));
    free(x); free(y); free(m);
    /* a dropout network trains, and two runs with one seed agree exactly */
    make_blobs(&train, 400, 2);
    c.batch = 32;
    a = mlp_create_spec("4-32-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
    b = mlp_create_spec("4-32-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
    assert_int_equal(mlp_add_dropout(a, 0.0f, 0.5f), 0);
    assert_int_equal(mlp_add_dropout(b, 0.0f, 0.5f), 0);
    assert_true(mlp_add_dropout(b, 0.0f, 0.5f) < 0);  /* once only */
    assert_true(mlp_add_dropout(NULL, 0.0f, 1.5f) < 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(mlp_train_epoch(a, &train, &c, i, NULL), 0);
        assert_int_equal(mlp_train_epoch(b, &train, &c, i, NULL), 0);
    }
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(a->training, 0);                  /* back in inference mode */
    mlp_dataset_free(&train);
    mlp_free(a); mlp_free(b);
}

/* Dropout masks are drawn afresh for every batch and every epoch (the
   masks of each batch, seen through on_batch, are all different), and are
   the same again for the same seed: a mask that repeated batch after batch
   would drop the same units for a whole epoch. */
typedef struct mask_log { const mlp_net *net; int layer, n, count; float masks[8][3 * 16]; } mask_log;

static int keep_mask(void *user, const mlp_batch_info *info)
{
    mask_log *log = (mask_log *)user;
    (void)info;
    if (log->count < 8) memcpy(log->masks[log->count++], log->net->aux[log->layer], (size_t)log->n * sizeof(float));
    return 0;
}

static void test_dropout_masks_per_batch(void **state)
{
    static mask_log first, again;
    mask_log *logs[2] = {&first, &again};
    mlp_dataset train;
    int run, l, a, b;
    (void)state;
    make_blobs(&train, 12, 5);  /* 4 batches of 3 per epoch */
    for (run = 0; run < 2; run++) {
        mlp_train_config c = mlp_train_defaults();
        mlp_net *net = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 4);
        mask_log *log = logs[run];
        assert_int_equal(mlp_add_dropout(net, 0.0f, 0.5f), 0);
        for (l = 0; net->layers[l].kind != MLP_LAYER_DROPOUT; l++) {}
        log->net = net; log->layer = l; log->n = 3 * 16;
        c.batch = 3; c.on_batch = keep_mask; c.user = log;
        assert_int_equal(mlp_train_epoch(net, &train, &c, 0, NULL), 0);
        assert_int_equal(mlp_train_epoch(net, &train, &c, 1, NULL), 0);
        assert_int_equal(log->count, 8);
        mlp_free(net);
    }
    for (a = 0; a < 8; a++)
        for (b = a + 1; b < 8; b++)
            if (!memcmp(first.masks[a], first.masks[b], sizeof first.masks[a]))
                fail_msg("batches %d and %d (of two epochs of 4) drew the same dropout mask", a, b);
    assert_memory_equal(first.masks, again.masks, sizeof first.masks);
    mlp_dataset_free(&train);
}

static void test_mat(void **state)
{
    mlp_mat a, b;
    (void)state;
    assert_int_equal(mlp_mat_create(&a, 3, 5), 0);
    assert_true(a.data[14] == 0.0f);
    mlp_mat_fill(&a, 2.5f);
    assert_int_equal(mlp_mat_create(&b, 3, 5), 0);
    assert_int_equal(mlp_mat_copy(&b, &a), 0);
    assert_true(b.data[7] == 2.5f);
    mlp_mat_free(&b);
    assert_int_equal(mlp_mat_create(&b, 5, 3), 0);
    assert_true(mlp_mat_copy(&b, &a) < 0);
    assert_non_null(strstr(mlp_error(), "shape 3 x 5 into 5 x 3"));
    mlp_mat_free(&a); mlp_mat_free(&b);
    assert_true(mlp_mat_create(&a, 0, 3) < 0);
    assert_true(mlp_mat_create(&a, 1 << 30, 1 << 30) < 0 || (mlp_mat_free(&a), 1));
}

static void test_rng(void **state)
{
    mlp_rng a, b;
    int i, hist[7] = {0};
    (void)state;
    mlp_rng_seed(&a, 42, 1);
    mlp_rng_seed(&b, 42, 1);
    for (i = 0; i < 100; i++) assert_int_equal(mlp_rng_u32(&a), mlp_rng_u32(&b));
    mlp_rng_seed(&b, 42, 2);
    assert_int_not_equal(mlp_rng_u32(&a), mlp_rng_u32(&b));
    for (i = 0; i < 70000; i++) hist[mlp_rng_below(&a, 7)]++;
    for (i = 0; i < 7; i++) assert_true(hist[i] > 9500 && hist[i] < 10500);
    for (i = 0; i < 1000; i++) { float f = mlp_rng_float(&a); assert_true(f >= 0.0f && f < 1.0f); }
}

/* Every product a layer runs, split over 1, 2 and 3 threads, against a plain
   double-precision computation written here: batch 1 and 2 (the streaming
   batch-1 kernel), the 10-wide output layer (the narrow kernels, forward and
   for its weight gradient) and the wide hidden layer (the blocked kernel).
   The sizes are chosen so that every one of them is large enough to be
   split between threads. */
static void test_threaded_products_by_hand(void **state)
{
    enum { N_IN = 300, HID = 256, N_OUT = 10, B = 64 };
    static float X[B * N_IN], h[B * HID], dz[B * N_OUT], dh[B * HID];
    static int labels[B];
    static const int batches[3] = {1, 2, B};
    mlp_net *net = mlp_create_spec("300-256-10", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    const mlp_layer *L1 = &net->layers[0], *L2 = &net->layers[2];
    mlp_rng rng;
    int threads, t, i, j, k;
    (void)state;
    assert_true(L1->kind == MLP_LAYER_DENSE && L2->kind == MLP_LAYER_DENSE && L2->n_in == HID);
    mlp_rng_seed(&rng, 99, 3);
    for (i = 0; i < B * N_IN; i++) X[i] = mlp_rng_float(&rng);
    for (i = 0; i < B; i++) labels[i] = (int)mlp_rng_below(&rng, N_OUT);
    /* the reference: h = relu(x W1 + b1), z = h W2 + b2, CE gradients */
    for (i = 0; i < B; i++) {
        double z[N_OUT], m, sum = 0.0;
        for (j = 0; j < HID; j++) {
            double a = L1->b[j];
            for (k = 0; k < N_IN; k++) a += (double)X[i * N_IN + k] * L1->W[k * HID + j];
            h[i * HID + j] = a > 0.0 ? (float)a : 0.0f;
        }
        for (j = 0; j < N_OUT; j++) {
            z[j] = L2->b[j];
            for (k = 0; k < HID; k++) z[j] += (double)h[i * HID + k] * L2->W[k * N_OUT + j];
        }
        for (m = z[0], j = 1; j < N_OUT; j++) if (z[j] > m) m = z[j];
        for (j = 0; j < N_OUT; j++) sum += exp(z[j] - m);
        for (j = 0; j < N_OUT; j++) dz[i * N_OUT + j] = (float)((exp(z[j] - m) / sum - (j == labels[i])) / B);
        for (k = 0; k < HID; k++) {
            double a = 0.0;
            for (j = 0; j < N_OUT; j++) a += (double)dz[i * N_OUT + j] * L2->W[k * N_OUT + j];
            dh[i * HID + k] = h[i * HID + k] > 0.0f ? (float)a : 0.0f;
        }
    }
    for (threads = 1; threads <= 3; threads++) {
        assert_int_equal(mlp_set_threads(net, threads), 0);
        for (t = 0; t < 3; t++) { /* forward: the hidden layer's output, row by row */
            assert_non_null(mlp_forward(net, X, batches[t]));
            for (i = 0; i < batches[t] * HID; i++)
                if (!(fabsf(net->out[1][i] - h[i]) <= 1e-4f * (1.0f + fabsf(h[i]))))
                    fail_msg("%d threads, batch %d: hidden value %d is %g, want %g", threads, batches[t], i, net->out[1][i], h[i]);
        }
        assert_non_null(mlp_forward(net, X, B));
        assert_int_equal(mlp_backward(net, labels, NULL), 0);
        for (k = 0; k < HID; k++)  /* dW2 = h^T dz: the narrow kernel with A transposed */
            for (j = 0; j < N_OUT; j++) {
                double want = 0.0;
                for (i = 0; i < B; i++) want += (double)h[i * HID + k] * dz[i * N_OUT + j];
                if (!(fabs(L2->dW[k * N_OUT + j] - want) <= 1e-5 * (1.0 + fabs(want))))
                    fail_msg("%d threads: dW2[%d][%d] = %g, want %g", threads, k, j, L2->dW[k * N_OUT + j], want);
            }
        for (k = 0; k < N_IN; k += 7)  /* dW1 = x^T dh: the blocked kernel, both operands transposed in turn */
            for (j = 0; j < HID; j++) {
                double want = 0.0;
                for (i = 0; i < B; i++) want += (double)X[i * N_IN + k] * dh[i * HID + j];
                if (!(fabs(L1->dW[k * HID + j] - want) <= 1e-5 * (1.0 + fabs(want))))
                    fail_msg("%d threads: dW1[%d][%d] = %g, want %g", threads, k, j, L1->dW[k * HID + j], want);
            }
    }
    mlp_free(net);
}

/* Inference on a large batch with several threads runs every layer on
   each thread's own rows in one parallel region: the result must be the
   same bits as one thread's layer-by-layer pass, and agree with the forward
   pass computed here in double, layer by layer from the parameters
   (batchnorm with running statistics, dropout off, softmax). */
static void reference_forward(const mlp_net *net, const float *X, int B, double *out)
{
    int l, i, j, k, w = net->layers[0].n_in;
    double *cur = malloc(sizeof(double) * (size_t)B * 1024), *next = malloc(sizeof(double) * (size_t)B * 1024);
    for (i = 0; i < B * w; i++) cur[i] = X[i];
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        for (i = 0; i < B; i++)
            for (j = 0; j < L->n_out; j++) {
                double v, z;
                switch (L->kind) {
                case MLP_LAYER_DENSE:
                    z = L->b[j];
                    for (k = 0; k < L->n_in; k++) z += cur[i * L->n_in + k] * L->W[(size_t)k * L->n_out + j];
                    v = z;
                    break;
                case MLP_LAYER_BATCHNORM:
                    v = (cur[i * w + j] - L->run_mean[j]) / sqrt((double)L->run_var[j] + L->eps) * L->W[j] + L->b[j];
                    break;
                case MLP_LAYER_ACT:
                    v = L->act == MLP_ACT_RELU ? (cur[i * w + j] > 0 ? cur[i * w + j] : 0.0)
                      : L->act == MLP_ACT_TANH ? tanh(cur[i * w + j]) : cur[i * w + j];
                    break;
                default: /* dropout: off at inference */
                    v = cur[i * w + j];
                }
                next[i * L->n_out + j] = v;
            }
        w = L->n_out;
        memcpy(cur, next, sizeof(double) * (size_t)B * w);
    }
    for (i = 0; i < B; i++) { /* softmax */
        double m = cur[i * w], sum = 0.0;
        for (j = 1; j < w; j++) if (cur[i * w + j] > m) m = cur[i * w + j];
        for (j = 0; j < w; j++) sum += exp(cur[i * w + j] - m);
        for (j = 0; j < w; j++) out[i * w + j] = exp(cur[i * w + j] - m) / sum;
    }
    free(cur); free(next);
}

static void test_inference_rows_shared_by_threads(void **state)
{
    static const int batches[] = {1, 2, 31, 32, 33, 47, 48, 100, 257};
    mlp_net *net = mlp_create_spec("37-53-29-7", MLP_ACT_RELU, MLP_LOSS_CE, 9);
    int n = 257, b, i, threads, l;
    float *X = malloc(sizeof(float) * 37 * (size_t)n), *one = malloc(sizeof(float) * 7 * (size_t)n);
    double *want = malloc(sizeof(double) * 7 * (size_t)n);
    mlp_rng rng;
    (void)state;
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_add_dropout(net, 0.1f, 0.3f), 0);
    mlp_rng_seed(&rng, 5, 5);
    for (i = 0; i < 37 * n; i++) X[i] = 2.0f * mlp_rng_float(&rng) - 1.0f;
    for (l = 0; l < net->n_layers; l++) /* running statistics far from 0 and 1 */
        if (net->layers[l].kind == MLP_LAYER_BATCHNORM)
            for (i = 0; i < net->layers[l].n_out; i++) {
                net->layers[l].run_mean[i] = 0.3f * mlp_rng_float(&rng) - 0.1f;
                net->layers[l].run_var[i] = 0.5f + mlp_rng_float(&rng);
                net->layers[l].W[i] = 0.5f + mlp_rng_float(&rng);
                net->layers[l].b[i] = 0.2f * mlp_rng_float(&rng) - 0.1f;
            }
    reference_forward(net, X, n, want);
    for (b = 0; b < (int)(sizeof batches / sizeof batches[0]); b++) {
        const float *p;
        assert_int_equal(mlp_set_threads(net, 1), 0);
        assert_non_null(p = mlp_predict(net, X, batches[b]));
        memcpy(one, p, sizeof(float) * 7 * (size_t)batches[b]);
        for (i = 0; i < 7 * batches[b]; i++)
            if (!(fabs(one[i] - want[i]) <= 1e-5))
                fail_msg("batch %d: probability %d is %g, in double %g", batches[b], i, one[i], want[i]);
        for (threads = 2; threads <= 3; threads++) {
            assert_int_equal(mlp_set_threads(net, threads), 0);
            assert_non_null(p = mlp_predict(net, X, batches[b]));
            assert_memory_equal(p, one, sizeof(float) * 7 * (size_t)batches[b]);
        }
    }
    free(X); free(one); free(want);
    mlp_free(net);
}

/* ---- distributed training (mlp_train_config.reduce) ------------------------ */

/* Processes played by threads: each trains its own network on its shard,
   and the reduce call sums through one shared block, in rank order, between
   two barriers (as MPI_Allreduce would, in some fixed order). */
/* a reduce for one process: the sum over one is the numbers themselves */
static int fake_identity(void *user, float *values, size_t n)
{
    (void)user; (void)values; (void)n;
    return 0;
}

#if defined(MLP__THREADS) && !defined(_WIN32)
#define FAKE_RANKS_MAX 4
#define FAKE_VALUES_MAX 4096
typedef struct fake_world {
    pthread_mutex_t lock;
    pthread_cond_t turn;
    int n_ranks, waiting, generation, fail_at;
    float values[FAKE_RANKS_MAX][FAKE_VALUES_MAX];
} fake_world;

typedef struct fake_rank {
    fake_world *world;
    int rank, rc, epochs, calls;
    mlp_net *net;
    mlp_dataset shard;
    mlp_train_config cfg;
    mlp_eval stats;
    char error[256];
} fake_rank;

/* -1 when the others have not come within 20 s (a process left waiting:
   the sum then fails, and so does the test, instead of hanging) */
static int fake_barrier(fake_world *w)
{
    int generation, rc = 0;
    struct timespec until;
    until.tv_sec = time(NULL) + 20; until.tv_nsec = 0;
    pthread_mutex_lock(&w->lock);
    generation = w->generation;
    if (++w->waiting == w->n_ranks) { w->waiting = 0; w->generation++; pthread_cond_broadcast(&w->turn); }
    else while (generation == w->generation && rc == 0) rc = pthread_cond_timedwait(&w->turn, &w->lock, &until);
    if (generation == w->generation) w->waiting--, rc = -1;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static int fake_sum(void *user, float *values, size_t n)
{
    fake_rank *r = (fake_rank *)user;
    fake_world *w = r->world;
    size_t i;
    int k;
    assert_true(n <= FAKE_VALUES_MAX);
    memcpy(w->values[r->rank], values, n * sizeof(float));
    if (fake_barrier(w) != 0) return -1;
    for (i = 0; i < n; i++) {
        float sum = 0.0f;
        for (k = 0; k < w->n_ranks; k++) sum += w->values[k][i];
        values[i] = sum;
    }
    if (fake_barrier(w) != 0) return -1;
    r->calls++; /* each its own count: every rank fails at the same call */
    return w->fail_at && r->calls >= w->fail_at ? -1 : 0;
}

static void *fake_process(void *arg)
{
    fake_rank *r = (fake_rank *)arg;
    int e;
    r->rc = 0;
    for (e = 0; e < r->epochs && r->rc == 0; e++) r->rc = mlp_train_epoch(r->net, &r->shard, &r->cfg, e, &r->stats);
    snprintf(r->error, sizeof r->error, "%s", mlp_error());
    return NULL;
}

/* Trains copies of net on n_ranks shards of ds (cfg's settings) in threads;
   ranks[k].net are the results. */
static void fake_run(fake_world *w, fake_rank *ranks, int n_ranks, const mlp_net *net, const mlp_dataset *ds,
                     const mlp_train_config *cfg, int epochs)
{
    pthread_t threads[FAKE_RANKS_MAX];
    int k;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->turn, NULL);
    w->n_ranks = n_ranks; w->waiting = 0; w->generation = 0;
    for (k = 0; k < n_ranks; k++) {
        fake_rank *r = &ranks[k];
        r->world = w; r->rank = k; r->epochs = epochs; r->calls = 0;
        assert_non_null(r->net = mlp_clone(net));
        assert_int_equal(mlp_dataset_shard(ds, &r->shard, k, n_ranks), 0);
        r->cfg = *cfg;
        r->cfg.reduce = fake_sum; r->cfg.reduce_user = r;
        assert_int_equal(pthread_create(&threads[k], NULL, fake_process, r), 0);
    }
    for (k = 0; k < n_ranks; k++) pthread_join(threads[k], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->turn);
}

static void fake_free(fake_rank *ranks, int n_ranks)
{
    int k;
    for (k = 0; k < n_ranks; k++) mlp_free(ranks[k].net);
}

static fake_world world; /* big: not on the stack */

/* Three processes, a batch (25) their shards do not divide, two epochs:
   the weights one process reaches, up to rounding, the same in every
   process bit for bit, and the whole set's statistics in each. */
static void test_shards_train_as_one(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-12-3", MLP_ACT_RELU, MLP_LOSS_CE, 7), *one;
    fake_rank ranks[3];
    mlp_eval stats;
    size_t i;
    int k, e;
    (void)state;
    make_blobs(&ds, 200, 4);
    c.batch = 25; c.lr = 0.1f; c.seed = 11;
    assert_non_null(one = mlp_clone(net));
    for (e = 0; e < 2; e++) assert_int_equal(mlp_train_epoch(one, &ds, &c, e, &stats), 0);
    fake_run(&world, ranks, 3, net, &ds, &c, 2);
    for (k = 0; k < 3; k++) {
        assert_int_equal(ranks[k].rc, 0);
        assert_memory_equal(ranks[k].net->params, ranks[0].net->params, net->n_params * sizeof(float));
        assert_int_equal(ranks[k].stats.n, 200);
        assert_int_equal(ranks[k].stats.correct, stats.correct);
        assert_float_equal(ranks[k].stats.loss, stats.loss, 1e-5);
    }
    for (i = 0; i < net->n_params; i++) assert_float_equal(ranks[0].net->params[i], one->params[i], 1e-5);
    assert_true(memcmp(one->params, net->params, net->n_params * sizeof(float)) != 0); /* it trained */
    fake_free(ranks, 3);
    mlp_free(one); mlp_free(net);
    mlp_dataset_free(&ds);
}

/* Batchnorm's running statistics: each process updates them from its own
   rows and the processes' values are averaged, so every process holds the
   same. With one batch, the whole set, split in equal halves, the average
   of the halves' means is the whole's mean: the running means are one
   process's. A reduce that fails stops every process with MLP_EIO. */
static void test_shards_batchnorm_and_failure(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 7), *one;
    fake_rank ranks[2];
    float a[32], b[32], whole[32];
    int k, j;
    (void)state;
    make_blobs(&ds, 120, 5);
    assert_int_equal(mlp_add_batchnorm(net), 0);
    c.batch = 120; c.seed = 3;
    assert_non_null(one = mlp_clone(net));
    assert_int_equal(mlp_train_epoch(one, &ds, &c, 0, NULL), 0);
    assert_int_equal(mlp_get_running_stats(one, whole), 32);
    fake_run(&world, ranks, 2, net, &ds, &c, 1);
    assert_int_equal(ranks[0].rc, 0);
    assert_int_equal(mlp_get_running_stats(ranks[0].net, a), 32);
    assert_int_equal(mlp_get_running_stats(ranks[1].net, b), 32);
    assert_memory_equal(a, b, sizeof a);
    for (j = 0; j < 16; j++) assert_float_equal(a[j], whole[j], 1e-5);
    assert_true(a[0] != 0.0f && a[16] != 1.0f); /* they moved from their start */
    fake_free(ranks, 2);
    mlp_free(one);
    world.fail_at = 2;
    fake_run(&world, ranks, 2, net, &ds, &c, 1);
    world.fail_at = 0;
    for (k = 0; k < 2; k++) {
        assert_int_equal(ranks[k].rc, MLP_EIO);
        assert_non_null(strstr(ranks[k].error, "the reduce call"));
    }
    fake_free(ranks, 2);
    mlp_free(net);
    mlp_dataset_free(&ds);
}

/* A process that cannot start (a label its shard holds is out of range)
   stops the others before the first batch instead of leaving them waiting. */
static void test_shards_one_cannot_start(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-8-3", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    fake_rank ranks[2];
    (void)state;
    make_blobs(&ds, 40, 6);
    ds.y[39] = 7;
    fake_run(&world, ranks, 2, net, &ds, &c, 1);
    assert_int_equal(ranks[0].rc, MLP_EIO);
    assert_non_null(strstr(ranks[0].error, "another process could not start the epoch"));
    assert_int_equal(ranks[1].rc, MLP_EARG);
    assert_non_null(strstr(ranks[1].error, "label 7 of sample 19"));
    assert_memory_equal(ranks[0].net->params, net->params, net->n_params * sizeof(float)); /* untouched */
    fake_free(ranks, 2);
    mlp_free(net);
    mlp_dataset_free(&ds);
}

/* A hidden layer dead in every process stops every process, as it would
   one; a layer alive in one process only is alive. */
static void test_shards_dead_layer(void **state)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    fake_rank ranks[2];
    int j, k;
    (void)state;
    make_blobs(&ds, 64, 6);
    for (j = 0; j < 16; j++) net->layers[0].b[j] = -10.0f; /* |x W| < 8 for the blobs */
    c.batch = 32; c.seed = 3;
    fake_run(&world, ranks, 2, net, &ds, &c, 1);
    for (k = 0; k < 2; k++) {
        assert_int_equal(ranks[k].rc, MLP_ENUMERIC);
        assert_non_null(strstr(ranks[k].error, "epoch 1, batch 1: all 16 units of hidden layer 1 (ReLU) are inactive"));
    }
    fake_free(ranks, 2);
    /* rank 0's samples wake one unit, rank 1's none: alive */
    for (j = 0; j < 32 * 4; j++) ds.x[j] = 10.0f;
    for (j = 0; j < 4; j++) net->layers[0].W[j * 16] = 1.0f;
    c.lr = 0.0f; c.diverge_factor = 1e6f; /* only the dead-layer watch */
    fake_run(&world, ranks, 2, net, &ds, &c, 1);
    for (k = 0; k < 2; k++) assert_int_equal(ranks[k].rc, 0);
    fake_free(ranks, 2);
    mlp_free(net);
    mlp_dataset_free(&ds);
}
#endif

/* The slices' gradients (each scaled by the global batch) add up to the
   whole batch's, and their summed losses to its mean times its size. */
static void test_backward_slices_add_up(void **state)
{
    mlp_dataset ds;
    mlp_net *net = mlp_create_spec("4-9-3", MLP_ACT_TANH, MLP_LOSS_CE, 2);
    float whole[4 * 9 + 9 + 9 * 3 + 3], first_slice[4 * 9 + 9 + 9 * 3 + 3], mean, part1, part2;
    float *g;
    size_t i, n;
    (void)state;
    make_blobs(&ds, 10, 8);
    g = mlp_gradients(net, &n);
    assert_int_equal(n, sizeof whole / sizeof whole[0]);
    assert_true(g == net->grads);
    assert_non_null(mlp_forward(net, ds.x, 10));
    assert_int_equal(mlp_backward(net, ds.y, &mean), 0);
    memcpy(whole, g, sizeof whole);
    assert_non_null(mlp_forward(net, ds.x, 4));
    assert_int_equal(mlp_backward_slice(net, ds.y, 10, &part1), 0);
    memcpy(first_slice, g, sizeof first_slice);
    assert_non_null(mlp_forward(net, ds.x + 16, 6));
    assert_int_equal(mlp_backward_slice(net, ds.y + 4, 10, &part2), 0);
    for (i = 0; i < n; i++) assert_float_equal(first_slice[i] + g[i], whole[i], 1e-6);
    assert_float_equal(part1 + part2, 10.0f * mean, 1e-5);
    assert_true(mlp_backward_slice(net, ds.y, 5, NULL) < 0); /* a global batch smaller than the slice */
    assert_non_null(strstr(mlp_error(), "a global batch of 5 rows for a slice of 6"));
    assert_null(mlp_gradients(NULL, &n));
    assert_int_equal(n, 0);
    mlp_free(net);
    mlp_dataset_free(&ds);
}

static void test_dataset_shards(void **state)
{
    mlp_dataset ds, part, held;
    mlp_net *net = mlp_create_spec("4-5-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    mlp_train_config c = mlp_train_defaults();
    int k, first[3] = {0, 3, 6}, n[3] = {3, 3, 4};
    (void)state;
    make_blobs(&ds, 10, 8);
    for (k = 0; k < 3; k++) {
        assert_int_equal(mlp_dataset_shard(&ds, &part, k, 3), 0);
        assert_int_equal(part.n, n[k]);
        assert_int_equal(part.shard_first, first[k]);
        assert_int_equal(part.shard_total, 10);
        assert_true(part.x == ds.x + 4 * first[k] && part.y == ds.y + first[k]);
    }
    assert_true(mlp_dataset_shard(&ds, &part, 3, 3) < 0);
    assert_non_null(strstr(mlp_error(), "rank 3 of 3 for 10 samples"));
    assert_true(mlp_dataset_shard(&ds, &part, 0, 0) < 0);
    assert_true(mlp_dataset_shard(&ds, &part, 0, 11) < 0);
    assert_true(mlp_dataset_shard(NULL, &part, 0, 1) < 0);
    /* a shard that claims more than its whole */
    assert_int_equal(mlp_dataset_shard(&ds, &part, 2, 3), 0);
    part.shard_total = 9;
    c.reduce = fake_identity;
    assert_int_equal(mlp_train_epoch(net, &part, &c, 0, NULL), MLP_EARG);
    assert_non_null(strstr(mlp_error(), "a shard of 4 samples from 6 in a set of 9"));
    /* a split shard is a whole set of its own */
    assert_int_equal(mlp_dataset_shard(&ds, &part, 2, 3), 0);
    assert_int_equal(mlp_dataset_split(&part, &held, 1, 1), 0);
    assert_int_equal(part.shard_total, 0);
    assert_int_equal(held.shard_total, 0);
    mlp_free(net);
    mlp_dataset_free(&ds);
}

/* One process whose reduce leaves the numbers alone trains on the whole
   set as mlp_train_epoch without reduce does, bit for bit in the weights. */
static void test_reduce_alone_is_one_process(void **state)
{
    mlp_dataset ds;
    mlp_net *a = mlp_create_spec("4-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 9), *b = mlp_clone(a);
    mlp_train_config c = mlp_train_defaults();
    mlp_eval ea, eb;
    (void)state;
    make_blobs(&ds, 100, 9);
    c.batch = 16;
    assert_int_equal(mlp_train_epoch(a, &ds, &c, 0, &ea), 0);
    c.reduce = fake_identity;
    assert_int_equal(mlp_train_epoch(b, &ds, &c, 0, &eb), 0);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(ea.correct, eb.correct);
    assert_float_equal(ea.loss, eb.loss, 1e-6);
    mlp_free(a); mlp_free(b);
    mlp_dataset_free(&ds);
}

/* n samples of dim uniform features in [0, 1), labelled by which third of
   [0, 1) the first one falls in */
static void make_wide(mlp_dataset *ds, int n, int dim, uint64_t seed)
{
    mlp_rng rng;
    int i, j;
    mlp_rng_seed(&rng, seed, 3);
    memset(ds, 0, sizeof *ds);
    ds->n = n; ds->dim = dim; ds->n_classes = 3;
    ds->x = malloc(sizeof(float) * (size_t)dim * (size_t)n);
    ds->y = malloc(sizeof(int) * (size_t)n);
    for (i = 0; i < n; i++) {
        for (j = 0; j < dim; j++) ds->x[(size_t)i * dim + j] = mlp_rng_float(&rng);
        ds->y[i] = (int)(ds->x[(size_t)i * dim] * 3.0f);
    }
}

/* Two epochs trained with batches in one parallel region each
   (mlp__step_in_one_region) on 1, 2 and 3 threads, against the
   layer-by-layer path (mlp_forward, mlp_backward, mlp_optimizer_step), which
   mlp_train_epoch takes when there is a reduce call, here one process's:
   the same weights and optimizer state to the bit. */
static mlp_net *one_region_net(const char *spec, mlp_act act, mlp_loss loss, int batchnorm)
{
    mlp_net *net = mlp_create_spec(spec, act, loss, 3);
    assert_non_null(net);
    if (batchnorm) assert_int_equal(mlp_add_batchnorm(net), 0);
    return net;
}

static void check_one_region(const char *spec, mlp_act act, mlp_loss loss, int batchnorm, mlp_optimizer opt, int n, int batch,
                             float max_norm)
{
    mlp_dataset ds;
    mlp_train_config c = mlp_train_defaults();
    mlp_net *ref = one_region_net(spec, act, loss, batchnorm);
    mlp_eval want[2], got;
    int threads, epoch;
    make_wide(&ds, n, mlp_input_width(ref), 5);
    c.batch = batch; c.lr = 0.01f; c.momentum = 0.9f; c.weight_decay = 1e-3f; c.optimizer = opt; c.max_norm = max_norm;
    c.seed = 4;
    c.reduce = fake_identity;
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(ref, &ds, &c, epoch, NULL), 0);
    c.reduce = NULL;
    { /* the layer path again without a reduce (a clipping norm never reached), for the
         losses: with a reduce they are summed in floats across the processes */
        mlp_net *plain = one_region_net(spec, act, loss, batchnorm);
        c.clip_norm = 1e30f;
        assert_false(mlp__step_fits(plain, &c, batch));
        for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(plain, &ds, &c, epoch, &want[epoch]), 0);
        assert_memory_equal(plain->params, ref->params, ref->n_params * sizeof(float));
        c.clip_norm = 0.0f;
        mlp_free(plain);
    }
    assert_int_equal(mlp__step_fits(ref, &c, batch), ref->engine->k->gemm != NULL || ref->n_layers == 1);
    for (threads = 1; threads <= 3; threads++) {
        mlp_net *net = one_region_net(spec, act, loss, batchnorm);
        assert_int_equal(mlp_set_threads(net, threads), 0);
        for (epoch = 0; epoch < 2; epoch++) {
            assert_int_equal(mlp_train_epoch(net, &ds, &c, epoch, &got), 0);
            assert_true(got.loss == want[epoch].loss); /* every batch's loss, added in the same order */
            assert_int_equal(got.correct, want[epoch].correct);
        }
        assert_memory_equal(net->params, ref->params, ref->n_params * sizeof(float));
        assert_memory_equal(net->velocity, ref->velocity, ref->n_params * sizeof(float));
        if (opt >= MLP_OPT_ADAM) assert_memory_equal(net->second, ref->second, ref->n_params * sizeof(float));
        assert_true(net->step == ref->step);
        assert_memory_equal(net->stats, ref->stats, ref->n_stats * sizeof(float)); /* batchnorm's running statistics */
        /* 64-byte lines: where two threads' columns meet, no line holds both */
        assert_true((uintptr_t)net->params % 64 == 0 && (uintptr_t)net->grads % 64 == 0);
        assert_true((uintptr_t)net->velocity % 64 == 0 && (uintptr_t)net->ws % 64 == 0);
        mlp_free(net);
    }
    mlp_free(ref);
    mlp_dataset_free(&ds);
}

static void test_step_in_one_region(void **state)
{
    mlp_net *net = mlp_create_spec("300-48-40-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_train_config c = mlp_train_defaults();
    (void)state;
    check_one_region("300-48-40-3", MLP_ACT_RELU, MLP_LOSS_CE, 0, MLP_OPT_SGD, 200, 32, 0.0f);
    check_one_region("300-64-24", MLP_ACT_TANH, MLP_LOSS_MSE, 0, MLP_OPT_NESTEROV, 150, 25, 0.0f); /* a wide output */
    check_one_region("300-40-3", MLP_ACT_SIGMOID, MLP_LOSS_CE, 0, MLP_OPT_ADAM, 120, 30, 0.5f);
    check_one_region("300-3", MLP_ACT_RELU, MLP_LOSS_CE, 0, MLP_OPT_ADAMW, 100, 20, 0.0f);
    check_one_region("300-48-3", MLP_ACT_RELU, MLP_LOSS_CE, 0, MLP_OPT_SGD, 66, 32, 0.0f);    /* last batch: 2 rows */
    check_one_region("600-48-3", MLP_ACT_RELU, MLP_LOSS_CE, 0, MLP_OPT_SGD, 51, 17, 0.0f);    /* 3 threads: a share of 1 row, the head on thread 0 */
    check_one_region("300-48-40-3", MLP_ACT_RELU, MLP_LOSS_CE, 1, MLP_OPT_SGD, 200, 32, 0.0f); /* batchnorm */
    check_one_region("600-48-3", MLP_ACT_RELU, MLP_LOSS_CE, 1, MLP_OPT_SGD, 150, 32, 0.0f); /* 3 K blocks: split by inputs on 2 and 3 threads */
    check_one_region("300-64-24", MLP_ACT_TANH, MLP_LOSS_MSE, 1, MLP_OPT_ADAM, 150, 25, 0.0f);
    /* what the region does not cover takes the layer-by-layer path (all of
       it on the scalar kernels, which share no columns, but a single layer) */
    assert_int_equal(mlp__step_fits(net, &c, 64), net->engine->k->gemm != NULL);
    /* 2 rows: the batch-1 kernel's product, where the kernel table has one */
    assert_int_equal(mlp__step_fits(net, &c, 2), net->engine->k->gemm != NULL && net->engine->k->gemv == NULL);
    c.clip_norm = 1.0f;
    assert_false(mlp__step_fits(net, &c, 64));     /* the norm of all gradients first */
    c.clip_norm = 0.0f; c.reduce = fake_identity;
    assert_false(mlp__step_fits(net, &c, 64));
    c.reduce = NULL;
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp__step_fits(net, &c, 64), net->engine->k->gemm != NULL);
    assert_int_equal(mlp_add_dropout(net, 0.0f, 0.5f), 0);
    assert_false(mlp__step_fits(net, &c, 64));     /* dropout draws its masks row by row */
    mlp_free(net);
    net = mlp_create_spec("300-16-3", MLP_ACT_RELU, MLP_LOSS_CE, 1); /* a hidden layer the narrow kernel computes */
    assert_int_equal(mlp__step_fits(net, &c, 64), net->engine->k->gemm != NULL && net->engine->k->narrow == NULL);
    mlp_free(net);
}

static void test_running_stats(void **state)
{
    mlp_net *net = mlp_create_spec("3-4-5-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    float s[18], back[18];
    int i;
    (void)state;
    assert_int_equal(mlp_get_running_stats(net, NULL), 0);
    assert_int_equal(mlp_set_running_stats(net, NULL), 0); /* nothing to set */
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_get_running_stats(net, NULL), 18); /* (4 + 5) means and variances */
    assert_int_equal(mlp_get_running_stats(net, s), 18);
    for (i = 0; i < 4; i++) { assert_true(s[i] == 0.0f); assert_true(s[4 + i] == 1.0f); }
    for (i = 0; i < 18; i++) s[i] = (float)(i + 1);
    assert_int_equal(mlp_set_running_stats(net, s), 0);
    assert_true(net->layers[1].run_var[3] == 8.0f && net->layers[4].run_mean[0] == 9.0f);
    assert_int_equal(mlp_get_running_stats(net, back), 18);
    assert_memory_equal(s, back, sizeof s);
    s[17] = -1.0f;
    assert_true(mlp_set_running_stats(net, s) < 0);
    assert_non_null(strstr(mlp_error(), "variance -1 < 0"));
    assert_true(net->layers[4].run_mean[0] == 9.0f); /* unchanged */
    s[17] = NAN;
    assert_true(mlp_set_running_stats(net, s) < 0);
    assert_true(mlp_set_running_stats(net, NULL) < 0);
    mlp_free(net);
}

/* A shard's rows are distorted as the whole set's same rows are. */
static void test_shard_augments_as_the_whole(void **state)
{
    mlp_dataset ds, part;
    mlp_augment aug;
    float whole[6 * 36], mine[3 * 36];
    int i;
    (void)state;
    make_blobs(&ds, 6, 3);
    free(ds.x);
    ds.x = malloc(sizeof whole);
    for (i = 0; i < 6 * 36; i++) ds.x[i] = (float)((i * 37) % 11) / 10.0f;
    ds.dim = 36; ds.image_w = 6; ds.image_h = 6;
    memset(&aug, 0, sizeof aug);
    aug.shift = 1.0f; aug.rotate = 20.0f;
    assert_int_equal(mlp_augment_dataset(NULL, &ds, &aug, 5, 2, whole), 0);
    assert_int_equal(mlp_dataset_shard(&ds, &part, 1, 2), 0);
    assert_int_equal(mlp_augment_dataset(NULL, &part, &aug, 5, 2, mine), 0);
    assert_memory_equal(mine, whole + 3 * 36, sizeof mine);
    assert_true(memcmp(mine, whole, sizeof mine) != 0);
    mlp_dataset_free(&ds);
}

/* One batch holding the whole set: mlp_train_epoch's step is the step of
   a forward and backward pass over the rows in their own order (the
   gradient is a sum over rows, whatever order the shuffle put them in). */
static void test_epoch_of_one_batch_is_one_step(void **state)
{
    mlp_dataset ds;
    mlp_net *a = mlp_create_spec("4-10-3", MLP_ACT_RELU, MLP_LOSS_CE, 5), *b = mlp_clone(a);
    mlp_train_config c = mlp_train_defaults();
    float loss;
    size_t i;
    (void)state;
    make_blobs(&ds, 90, 12);
    c.batch = 90; c.lr = 0.2f; c.momentum = 0.0f; c.seed = 8;
    assert_int_equal(mlp_train_epoch(a, &ds, &c, 0, NULL), 0);
    assert_non_null(mlp_forward(b, ds.x, 90));
    assert_int_equal(mlp_backward(b, ds.y, &loss), 0);
    assert_int_equal(mlp_sgd_step(b, 0.2f, 0.0f, 0.0f), 0);
    for (i = 0; i < a->n_params; i++) assert_float_equal(a->params[i], b->params[i], 1e-6);
    mlp_free(a); mlp_free(b);
    mlp_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_spec),
        cmocka_unit_test(test_threaded_products_by_hand),
        cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_sgd_step_math),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_optimizers_by_hand),
        cmocka_unit_test(test_optimizer_simd_matches_scalar),
        cmocka_unit_test(test_threaded_update_by_hand),
        cmocka_unit_test(test_adam_trains_and_resumes),
        cmocka_unit_test(test_converges),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_inference_rows_shared_by_threads),
        cmocka_unit_test(test_divergence_detected),
        cmocka_unit_test(test_divergence_watch),
        cmocka_unit_test(test_step_reports_overflowing_weights),
        cmocka_unit_test(test_sgd_detects_bad_gradients),
        cmocka_unit_test(test_checkpoint_resume_bit_identical),
        cmocka_unit_test(test_checkpoint_resume_batchnorm),
        cmocka_unit_test(test_batchnorm_training),
        cmocka_unit_test(test_batchnorm_running_stats_by_hand),
        cmocka_unit_test(test_shuffle_order),
        cmocka_unit_test(test_confusion_by_hand),
        cmocka_unit_test(test_evaluate_loss_any_batch),
        cmocka_unit_test(test_dropout_layer),
        cmocka_unit_test(test_ties_predict_the_first_class),
        cmocka_unit_test(test_dropout_masks_per_batch),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_mat),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_backward_slices_add_up),
        cmocka_unit_test(test_dataset_shards),
        cmocka_unit_test(test_reduce_alone_is_one_process),
        cmocka_unit_test(test_running_stats),
        cmocka_unit_test(test_epoch_of_one_batch_is_one_step),
        cmocka_unit_test(test_step_in_one_region),
        cmocka_unit_test(test_shard_augments_as_the_whole),
#if defined(MLP__THREADS) && !defined(_WIN32)
        cmocka_unit_test(test_shards_train_as_one),
        cmocka_unit_test(test_shards_batchnorm_and_failure),
        cmocka_unit_test(test_shards_dead_layer),
        cmocka_unit_test(test_shards_one_cannot_start),
#endif
    };
    return cmocka_run_group_tests_name("training", tests, NULL, NULL);
}
