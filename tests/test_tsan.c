/* Threads under ThreadSanitizer (make test-tsan): eight threads classify
   with one loaded model at once, each through its own mlp_clone (the
   documented rule: one network per thread; cloning only reads the
   original), and get what one thread gets; networks with a thread pool of
   their own train, evaluate and multiply, two of them at the same time,
   and give the bits one thread gives. Built with -fsanitize=thread, any
   data race fails the run. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define N_IN 20
#define N_OUT 5
#define ROWS 64
#define READERS 8

static const int batch_sizes[3] = {1, 7, ROWS};
static float inputs[ROWS * N_IN];
static float expected[3][ROWS * N_OUT]; /* one thread's answers, per batch size */

/* a trained network with batchnorm, input columns and class names: every
   part of a model a reader touches */
static mlp_net *trained_model(void)
{
    static const char *const names[N_OUT] = {"a", "b", "c", "d", "e"};
    float x[128 * N_IN], scale[N_IN], offset[N_IN];
    int y[128], i, step;
    mlp_rng rng;
    mlp_net *net = mlp_create_spec("20-32-16-5", MLP_ACT_RELU, MLP_LOSS_CE, 7);
    assert_non_null(net);
    assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    mlp_rng_seed(&rng, 3, 1);
    for (i = 0; i < 128 * N_IN; i++) x[i] = mlp_rng_float(&rng) * 2.0f - 1.0f;
    for (i = 0; i < 128; i++) y[i] = (int)mlp_rng_below(&rng, N_OUT);
    for (i = 0; i < N_IN; i++) { scale[i] = 0.5f + mlp_rng_float(&rng); offset[i] = mlp_rng_float(&rng) - 0.5f; }
    assert_int_equal(mlp_set_input_columns(net, scale, offset), MLP_OK);
    assert_int_equal(mlp_set_class_names(net, names), MLP_OK);
    mlp_set_training(net, 1);
    for (step = 0; step < 10; step++) {
        assert_non_null(mlp_forward(net, x, 128));
        assert_int_equal(mlp_backward(net, y, NULL), MLP_OK);
        assert_int_equal(mlp_sgd_step(net, 0.05f, 0.9f, 0.0f), MLP_OK);
    }
    mlp_set_training(net, 0);
    for (i = 0; i < ROWS * N_IN; i++) inputs[i] = mlp_rng_float(&rng) * 4.0f - 2.0f;
    return net;
}

/* rows of inputs, normalised as raw data is, through net */
static int predict_all(mlp_net *net, int batch, float *out)
{
    float x[ROWS * N_IN];
    int i;
    for (i = 0; i < ROWS; i++)
        if (mlp_normalize_input(net, inputs + i * N_IN, x + i * N_IN) != MLP_OK) return -1;
    for (i = 0; i < ROWS; i += batch) {
        int b = ROWS - i < batch ? ROWS - i : batch;
        const float *p = mlp_predict(net, x + i * N_IN, b);
        if (!p) return -1;
        memcpy(out + i * N_OUT, p, sizeof(float) * (size_t)b * N_OUT);
    }
    return 0;
}

typedef struct reader { const mlp_net *shared; int mismatches, failures; } reader;

static void *read_model(void *arg)
{
    reader *r = (reader *)arg;
    int round, k;
    for (round = 0; round < 5; round++) {
        mlp_net *mine = mlp_clone(r->shared); /* reads the shared network only */
        float got[ROWS * N_OUT];
        if (!mine) { r->failures++; continue; }
        for (k = 0; k < 3; k++) {
            if (predict_all(mine, batch_sizes[k], got) != 0) r->failures++;
            else if (memcmp(got, expected[k], sizeof got) != 0) r->mismatches++;
        }
        if (!mlp_class_name(r->shared, 4) || strcmp(mlp_class_name(r->shared, 4), "e") != 0) r->mismatches++;
        mlp_free(mine);
    }
    return NULL;
}

static void test_eight_readers_one_model(void **state)
{
    mlp_net *model = trained_model(), *shared, *one;
    unsigned char buf[16384];
    size_t size;
    pthread_t t[READERS];
    reader r[READERS];
    int i, k;
    (void)state;
    assert_int_equal(mlp_save_memory(model, buf, sizeof buf, &size), MLP_OK);
    assert_non_null(shared = mlp_load_memory(buf, size)); /* "a loaded model" */
    assert_non_null(one = mlp_clone(shared));
    for (k = 0; k < 3; k++) assert_int_equal(predict_all(one, batch_sizes[k], expected[k]), 0);
    for (i = 0; i < READERS; i++) {
        r[i].shared = shared;
        r[i].mismatches = r[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, read_model, &r[i]), 0);
    }
    for (i = 0; i < READERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].failures, 0);
        assert_int_equal(r[i].mismatches, 0);
    }
    mlp_free(one); mlp_free(shared); mlp_free(model);
}

/* blobs: 3 classes around 3 centres in 8 dimensions */
static void blobs(float *x, int *y, int n, uint64_t seed)
{
    mlp_rng rng;
    int i, j;
    mlp_rng_seed(&rng, seed, 2);
    for (i = 0; i < n; i++) {
        y[i] = (int)mlp_rng_below(&rng, 3);
        for (j = 0; j < 8; j++) x[i * 8 + j] = (j % 3 == y[i] ? 1.0f : 0.0f) + 0.8f * (mlp_rng_float(&rng) - 0.5f);
    }
}

typedef struct pool_run { int threads; float params[8 * 64 + 64 + 64 * 3 + 3]; double loss; float product[300 * 200]; } pool_run;

/* training, evaluation (shared-rows inference: 600 rows on the threads)
   and a product, all on a network with its own pool of `threads` */
static void *train_with_pool(void *arg)
{
    pool_run *run = (pool_run *)arg;
    static float x[600 * 8], a[300 * 150], b[150 * 200];
    static int y[600], ready;
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    mlp_dataset ds;
    mlp_train_config cfg = mlp_train_defaults();
    mlp_eval ev;
    mlp_net *net = mlp_create_spec("8-64-3", MLP_ACT_TANH, MLP_LOSS_CE, 5);
    mlp_mat W, bias;
    int epoch, i;
    pthread_mutex_lock(&once); /* the shared inputs, made by whichever run comes first */
    if (!ready) {
        blobs(x, y, 600, 9);
        for (i = 0; i < 300 * 150; i++) a[i] = (float)((i * 7) % 13) - 6.0f;
        for (i = 0; i < 150 * 200; i++) b[i] = (float)((i * 5) % 11) * 0.25f;
        ready = 1;
    }
    pthread_mutex_unlock(&once);
    if (!net || mlp_set_threads(net, run->threads) != MLP_OK ||
        mlp_dataset_from_arrays(&ds, x, y, 600, 8, MLP_DATASET_BORROW) != MLP_OK) { run->loss = -1; return NULL; }
    cfg.batch = 16; cfg.seed = 3;
    for (epoch = 0; epoch < 2; epoch++)
        if (mlp_train_epoch(net, &ds, &cfg, epoch, NULL) != MLP_OK) { run->loss = -1; mlp_free(net); return NULL; }
    if (mlp_evaluate(net, &ds, 600, &ev, NULL) != MLP_OK ||
        mlp_gemm_net(net, 0, 0, 300, 200, 150, 1.0f, a, 150, b, 200, 0.0f, run->product, 200) != MLP_OK) run->loss = -1;
    else run->loss = ev.loss;
    mlp_dense_weights(net, 0, &W, &bias);
    memcpy(run->params, W.data, sizeof(float) * 8 * 64);
    memcpy(run->params + 8 * 64, bias.data, sizeof(float) * 64);
    mlp_dense_weights(net, 1, &W, &bias);
    memcpy(run->params + 8 * 64 + 64, W.data, sizeof(float) * 64 * 3);
    memcpy(run->params + 8 * 64 + 64 + 64 * 3, bias.data, sizeof(float) * 3);
    mlp_free(net);
    return NULL;
}

static void test_thread_pools(void **state)
{
    static pool_run one, three, side_a, side_b;
    pthread_t ta, tb;
    (void)state;
    one.threads = 1;
    train_with_pool(&one);
    three.threads = 3;
    train_with_pool(&three);
    assert_true(one.loss > 0 && three.loss > 0);
    assert_memory_equal(one.params, three.params, sizeof one.params); /* any thread count, the same bits */
    assert_true(one.loss == three.loss);
    assert_memory_equal(one.product, three.product, sizeof one.product);
    /* two networks, each with its own pool, side by side */
    side_a.threads = 2; side_b.threads = 2;
    assert_int_equal(pthread_create(&ta, NULL, train_with_pool, &side_a), 0);
    assert_int_equal(pthread_create(&tb, NULL, train_with_pool, &side_b), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_memory_equal(side_a.params, one.params, sizeof one.params);
    assert_memory_equal(side_b.params, one.params, sizeof one.params);
}

/* A training step in one parallel region (gather, every layer forward and
   back, the update, with barriers between): wide enough that the threads
   share it, on 2 and 3 threads; the same bits as one. With batchnorm the
   threads share the hidden layers by columns, without it by rows of the
   batch. The 600 inputs are three K blocks, so the first product is split
   by inputs (on 2 threads, one thread's two blocks wait in buffers). */
#define REGION_IN 600
static void train_region(int threads, int batchnorm, float *params, size_t n_params)
{
    static float x[256 * REGION_IN];
    static int y[256];
    mlp_dataset ds;
    mlp_train_config cfg = mlp_train_defaults();
    mlp_net *net = mlp_create_spec("600-256-96-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    mlp_rng rng;
    size_t n;
    int i, epoch;
    mlp_rng_seed(&rng, 4, 4);
    for (i = 0; i < 256 * REGION_IN; i++) x[i] = mlp_rng_float(&rng);
    for (i = 0; i < 256; i++) y[i] = (int)(x[i * REGION_IN] * 3.0f);
    assert_non_null(net);
    if (batchnorm) assert_int_equal(mlp_add_batchnorm(net), MLP_OK);
    assert_int_equal(mlp_set_threads(net, threads), MLP_OK);
    assert_int_equal(mlp_dataset_from_arrays(&ds, x, y, 256, REGION_IN, MLP_DATASET_BORROW), MLP_OK);
    cfg.batch = 32; cfg.seed = 5;
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(net, &ds, &cfg, epoch, NULL), MLP_OK);
    assert_true(mlp_gradients(net, &n) != NULL && n == n_params);
    memcpy(params, net->params, n * sizeof(float));
    mlp_free(net); /* ds borrows x and y: nothing to free */
}

static void test_training_step_in_one_region(void **state)
{
    enum { PLAIN = REGION_IN * 256 + 256 + 256 * 96 + 96 + 96 * 3 + 3, N_PARAMS = PLAIN + 2 * 256 + 2 * 96 };
    static float one[N_PARAMS], two[N_PARAMS], three[N_PARAMS];
    int batchnorm;
    (void)state;
    for (batchnorm = 0; batchnorm < 2; batchnorm++) {
        size_t n = batchnorm ? N_PARAMS : PLAIN;
        train_region(1, batchnorm, one, n);
        train_region(2, batchnorm, two, n);
        train_region(3, batchnorm, three, n);
        assert_memory_equal(one, two, n * sizeof(float));
        assert_memory_equal(one, three, n * sizeof(float));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_readers_one_model),
        cmocka_unit_test(test_thread_pools),
        cmocka_unit_test(test_training_step_in_one_region),
    };
    return cmocka_run_group_tests_name("threads under TSan", tests, NULL, NULL);
}
