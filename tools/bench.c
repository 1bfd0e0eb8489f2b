/* bench.c - the reference workloads of tools/bench_workloads.md, side by side with OpenBLAS.
   B3: GEMM GFLOP/s at the B1 shapes and 1024^3, each of our kernels and
   OpenBLAS cblas_sgemm (the reference; mlp.h never uses it), 1 and 2 threads.
   B1: training seconds per epoch, B2: inference throughput and latency,
   Aug: one epoch of augmentation beside one epoch of the augmented recipe.
   Medians of at least 3 runs; ratios are computed within this one run.

   Built and run by `make bench`, which unsets OPENBLAS_CORETYPE and
   OPENBLAS_L2_SIZE for this process only so OpenBLAS picks its own kernels. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

char *openblas_get_corename(void);
void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct shape { const char *name; int ta, tb, M, N, K; } shape;

/* The products one B1 training batch performs (784-256-128-10, batch 64). */
static const shape b1_shapes[] = {
    {"fwd1 64x784 . 784x256", 0, 0, 64, 256, 784},
    {"fwd2 64x256 . 256x128", 0, 0, 64, 128, 256},
    {"fwd3 64x128 . 128x10", 0, 0, 64, 10, 128},
    {"dW1 784x64 . 64x256", 1, 0, 784, 256, 64},
    {"dW2 256x64 . 64x128", 1, 0, 256, 128, 64},
    {"dW3 128x64 . 64x10", 1, 0, 128, 10, 64},
    {"dx2 64x128 . 128x256", 0, 1, 64, 256, 128},
    {"dx3 64x10 . 10x128", 0, 1, 64, 128, 10},
};
static const shape big_shape = {"1024^3", 0, 0, 1024, 1024, 1024};
#define N_B1 (int)(sizeof b1_shapes / sizeof b1_shapes[0])

typedef struct operands { float *A, *B, *C; int lda, ldb; } operands;

static operands make_operands(const shape *s)
{
    operands o;
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, i;
    o.A = malloc(na * sizeof(float)); o.B = malloc(nb * sizeof(float));
    o.C = calloc((size_t)s->M * s->N, sizeof(float));
    for (i = 0; i < na; i++) o.A[i] = (float)(i % 17) * 0.01f;
    for (i = 0; i < nb; i++) o.B[i] = (float)(i % 13) * 0.01f;
    o.lda = s->ta ? s->M : s->K;
    o.ldb = s->tb ? s->K : s->N;
    return o;
}

static void free_operands(operands *o) { free(o->A); free(o->B); free(o->C); }

/* GFLOP/s of one backend: the median of 5 timings, each at least 40 ms */
static double gemm_gflops(const shape *s, const operands *o, mlp_net *ctx_net, int use_blas)
{
    double t[5], flop = 2.0 * s->M * s->N * s->K;
    int r;
    for (r = 0; r < 5; r++) {
        long reps = 0;
        double t0 = now(), dt;
        do {
            if (use_blas)
                cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                            s->M, s->N, s->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, s->N);
            else
                mlp_gemm_net(ctx_net, s->ta, s->tb, s->M, s->N, s->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, s->N);
            reps++;
        } while ((dt = now() - t0) < 0.04);
        t[r] = flop * reps / dt * 1e-9;
    }
    return median(t, 5);
}

/* B3 row: every kernel of ours, then OpenBLAS; returns OpenBLAS GFLOP/s */
static double gemm_row(const shape *s, mlp_net *net, int threads)
{
    operands o = make_operands(s);
    double best = 0, ob;
    int isa;
    printf("%-22s", s->name);
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++) {
        double g;
        if (!mlp_isa_supported((mlp_isa)isa)) continue;
        if (isa == MLP_ISA_SCALAR && s->M * s->N * (double)s->K > 1e8) { printf("%9s", "-"); continue; }
        mlp_set_isa(net, (mlp_isa)isa);
        mlp_set_threads(net, threads);
        g = gemm_gflops(s, &o, net, 0);
        if (g > best) best = g;
        printf("%9.1f", g);
        fflush(stdout);
    }
    ob = gemm_gflops(s, &o, net, 1);
    printf("%9.1f %8.0f%%\n", ob, 100.0 * best / ob);
    free_operands(&o);
    return ob;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* The core's own ceiling: 12 independent FMA chains of the widest vectors
   the CPU has, nothing else (enough chains to cover the FMA latency on two
   FMA ports). Returns GFLOP/s. */
#define FMA_PROBE(NAME, TARGET, VEC, SET1, FMADD, ADD, STORE, LANES)                              \
__attribute__((target(TARGET), noinline)) static double NAME(long iters)                          \
{                                                                                                  \
    VEC b = SET1(0.9999999f), c = SET1(1e-7f), s;                                                  \
    VEC a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);        \
    VEC a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);    \
    float out[LANES];                                                                              \
    double t = now();                                                                              \
    long n;                                                                                        \
    for (n = 0; n < iters; n++) {                                                                  \
        a0 = FMADD(a0, b, c); a1 = FMADD(a1, b, c); a2 = FMADD(a2, b, c); a3 = FMADD(a3, b, c);    \
        a4 = FMADD(a4, b, c); a5 = FMADD(a5, b, c); a6 = FMADD(a6, b, c); a7 = FMADD(a7, b, c);    \
        a8 = FMADD(a8, b, c); a9 = FMADD(a9, b, c); a10 = FMADD(a10, b, c); a11 = FMADD(a11, b, c);\
    }                                                                                              \
    t = now() - t;                                                                                 \
    s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                         \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                   \
    STORE(out, s);                                                                                 \
    if (out[0] == 1234.5f) printf(" ");                                                            \
    return (double)iters * 12 * 2 * LANES / t / 1e9;                                               \
}
FMA_PROBE(fma_peak_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
FMA_PROBE(fma_peak_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
#endif

/* one core's FMA ceiling, GFLOP/s, with the widest FMA the CPU has (0 where
   we have no probe); *isa names it */
static double fma_peak(const char **isa)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    double best = 0, t;
    int r, wide = mlp_isa_supported(MLP_ISA_AVX512);
    *isa = wide ? "AVX-512" : "AVX2";
    if (!wide && !mlp_isa_supported(MLP_ISA_AVX2)) return 0;
    for (r = 0; r < 5; r++) { /* a ceiling: the best of 5, not the median */
        t = wide ? fma_peak_avx512(50000000) : fma_peak_avx2(50000000);
        if (t > best) best = t;
    }
    return best;
#else
    *isa = "none";
    return 0;
#endif
}

#include <pthread.h>
static void *fma_peak_thread(void *out)
{
    const char *isa;
    *(double *)out = fma_peak(&isa);
    return NULL;
}

/* the ceiling of `threads` cores probed at once (they may share a clock or
   a power budget): the sum of their figures */
static double fma_peak_cores(int threads)
{
    pthread_t th[8];
    double g[8], sum = 0;
    int i;
    if (threads > 8) threads = 8;
    for (i = 1; i < threads; i++) pthread_create(&th[i], NULL, fma_peak_thread, &g[i]);
    fma_peak_thread(&g[0]);
    for (i = 1; i < threads; i++) pthread_join(th[i], NULL);
    for (i = 0; i < threads; i++) sum += g[i];
    return sum;
}

/* B3; also returns, per thread count, the seconds OpenBLAS would spend on
   one B1 epoch's products (938 batches of the shapes above) */
static void bench_gemm(int threads, double *openblas_epoch)
{
    int i, isa;
    double sec = 0;
    mlp_net *net = mlp_create_spec("2-2", MLP_ACT_RELU, MLP_LOSS_CE, 1); /* holds a GEMM context */
    openblas_set_num_threads(threads);
    printf("\nB3 GEMM, %d thread%s, GFLOP/s (median of 5 timings)\n", threads, threads > 1 ? "s" : "");
    printf("%-22s", "shape");
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa++)
        if (mlp_isa_supported((mlp_isa)isa)) printf("%9s", mlp_isa_name((mlp_isa)isa));
    printf("%9s %9s\n", "OpenBLAS", "best/OB");
    for (i = 0; i < N_B1; i++) {
        const shape *s = &b1_shapes[i];
        double ob = gemm_row(s, net, threads);
        sec += 2.0 * s->M * s->N * s->K / (ob * 1e9);
    }
    gemm_row(&big_shape, net, threads);
    *openblas_epoch = sec * 938;
    mlp_free(net);
}

static int load_mnist(mlp_dataset *train, mlp_dataset *test)
{
    const char *dir = getenv("MLP_MNIST_DIR");
    char p[4][512];
    if (!dir) dir = "data/mnist";
    snprintf(p[0], sizeof p[0], "%s/train-images-idx3-ubyte", dir);
    snprintf(p[1], sizeof p[1], "%s/train-labels-idx1-ubyte", dir);
    snprintf(p[2], sizeof p[2], "%s/t10k-images-idx3-ubyte", dir);
    snprintf(p[3], sizeof p[3], "%s/t10k-labels-idx1-ubyte", dir);
    if (mlp_dataset_load(train, p[0], p[1]) || mlp_dataset_load(test, p[2], p[3])) {
        fprintf(stderr, "bench: %s (run make data)\n", mlp_error());
        return -1;
    }
    return 0;
}

/* B1: 5 epochs; median seconds per epoch and the final test accuracy */
static void bench_train(const mlp_dataset *train, const mlp_dataset *test, int threads,
                        double openblas_epoch)
{
    mlp_net *net = mlp_create_spec("784-256-128-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_train_config cfg = mlp_train_defaults();
    double t[5];
    mlp_eval ev;
    int e;
    cfg.lr = 0.05f; cfg.momentum = 0.9f; cfg.batch = 64; cfg.lr_decay = 1.0f;
    memset(&ev, 0, sizeof ev);
    mlp_set_threads(net, threads);
    for (e = 0; e < 5; e++) {
        double t0 = now();
        mlp_train_epoch(net, train, &cfg, e, NULL);
        t[e] = now() - t0;
    }
    mlp_evaluate(net, test, 1000, &ev, NULL);
    printf("B1 train  %d thread%s  %s  %6.3f s/epoch  (%5.1f GFLOP/s)  test acc %.4f",
           threads, threads > 1 ? "s" : " ", mlp_isa_name(mlp_get_isa(net)), median(t, 5),
           60.4 / median(t, 5), ev.accuracy);
    if (openblas_epoch > 0) /* measured in this run's B3 */
        printf("   OpenBLAS products alone: %6.3f s  ratio %.2f", openblas_epoch, median(t, 5) / openblas_epoch);
    printf("\n");
    mlp_free(net);
}

/* B2: forward passes over the test set; images per second at batch 256 and
   microseconds per image at batch 1, medians of 5 */
static void infer_figures(const mlp_dataset *test, int threads, double *per_s, double *us)
{
    mlp_net *net = mlp_create_spec("784-256-128-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    double t256[5], t1[5];
    int r, i;
    mlp_set_threads(net, threads);
    for (r = 0; r < 5; r++) {
        double t0 = now();
        for (i = 0; i < test->n; i += 256)
            mlp_forward(net, test->x + (size_t)i * test->dim, test->n - i < 256 ? test->n - i : 256);
        t256[r] = now() - t0;
        t0 = now();
        for (i = 0; i < 2000; i++) mlp_forward(net, test->x + (size_t)i * test->dim, 1);
        t1[r] = (now() - t0) / 2000;
    }
    *per_s = test->n / median(t256, 5);
    *us = 1e6 * median(t1, 5);
    mlp_free(net);
}

static void bench_infer(const mlp_dataset *test, int threads)
{
    double per_s, us;
    infer_figures(test, threads, &per_s, &us);
    printf("B2 infer  %d thread%s  batch 256: %9.0f images/s   batch 1: %6.2f us/image\n",
           threads, threads > 1 ? "s" : " ", per_s, us);
}

/* #6's cost of augmentation: one epoch of fresh distorted images (the
   augmented recipe's settings) beside one epoch of training its network
   (784-800-800-10 with batchnorm, SGD, batch 64); medians of 3. */
static void bench_augment(const mlp_dataset *train, int threads)
{
    mlp_net *net = mlp_create_spec("784-800-800-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_train_config cfg = mlp_train_defaults();
    mlp_augment aug;
    mlp_dataset distorted = *train;
    double ta[3], tt[3];
    int r;
    memset(&aug, 0, sizeof aug);
    aug.shift = 2; aug.rotate = 8; aug.scale = 0.08f; aug.shear = 0.08f;
    aug.elastic_alpha = 34; aug.elastic_sigma = 4;
    cfg.lr = 0.1f; cfg.lr_decay = 1.0f;
    distorted.x = (float *)malloc(sizeof(float) * (size_t)train->n * train->dim);
    if (!distorted.x || mlp_add_batchnorm(net) || mlp_set_threads(net, threads)) { fprintf(stderr, "bench: %s\n", mlp_error()); exit(1); }
    for (r = 0; r < 3; r++) {
        double t0 = now();
        mlp_augment_dataset(net, train, &aug, 1, r, distorted.x);
        ta[r] = now() - t0;
        t0 = now();
        mlp_train_epoch(net, &distorted, &cfg, r, NULL);
        tt[r] = now() - t0;
    }
    printf("Aug       %d thread%s  augmentation %5.2f s/epoch   training 784-800-800-10 (batchnorm) %5.2f s/epoch   (%.0f%%)\n",
           threads, threads > 1 ? "s" : " ", median(ta, 3), median(tt, 3), 100.0 * median(ta, 3) / median(tt, 3));
    free(distorted.x);
    mlp_free(net);
}

/* A 400 x 300 photo-like picture: test digit `first` (and the next ones
   for a number) enlarged 6x, dark on paper lit from one side, with noise. */
static void make_picture(float *px, int w, int h, const mlp_dataset *test, int first, int digits)
{
    mlp_rng rng;
    int x, y, k;
    mlp_rng_seed(&rng, 3, 3);
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            float light = 1.0f - 0.4f * (float)x / (float)w, ink = 0.0f;
            for (k = 0; k < digits; k++) { /* digit k's 168-pixel tile (ink in its middle 120), tiles 130 apart */
                int left = w / 2 - 65 * digits + 130 * k - 19, top = h / 2 - 84;
                if (x >= left && x < left + 168 && y >= top && y < top + 168)
                    ink = fmaxf(ink, test->x[(size_t)(first + k) * 784 + (y - top) / 6 * 28 + (x - left) / 6]);
            }
            px[y * w + x] = light * (0.9f - 0.8f * ink) + 0.04f * (mlp_rng_float(&rng) - 0.5f);
        }
}

/* Preprocessing time for a 400 x 300 picture: one digit, and a 3-digit
   number; medians of 5 timings of 50 pictures each. */
static void bench_preprocess(const mlp_dataset *test)
{
    enum { W = 400, H = 300, REPS = 50 };
    float *px = malloc(sizeof(float) * W * H), out[3 * 784];
    double t1[5], t3[5];
    int r, i, ok = 1;
    for (r = 0; r < 5; r++) {
        double t;
        make_picture(px, W, H, test, 0, 1);
        t = now();
        for (i = 0; i < REPS; i++) ok &= mlp_digit_preprocess(px, W, H, 1, out) == 0;
        t1[r] = (now() - t) / REPS;
        make_picture(px, W, H, test, 1, 3);
        t = now();
        for (i = 0; i < REPS; i++) ok &= mlp_number_preprocess(px, W, H, 1, out, NULL, 3, NULL, NULL) == 3;
        t3[r] = (now() - t) / REPS;
    }
    printf("Pre       400x300 picture: one digit %.2f ms, a 3-digit number %.2f ms (mlp_digit_preprocess, "
           "mlp_number_preprocess)%s\n", 1e3 * median(t1, 5), 1e3 * median(t3, 5), ok ? "" : "  (FAILED to read)");
    free(px);
}

/* --sharing: what it costs two cores to update one weight matrix (B1's
   784 x 256, the momentum step's three arrays) when each core owns a
   contiguous half, when each owns half of every row's columns (the split
   the forward product uses), and when each owns a contiguous half but the
   other core has just read it all. Memory-bound passes whose halves
   interleave, or whose lines change cores every step, are what keeps two
   threads from helping B1 on some machines; this measures it there. */
#define SHARING_ROWS 784
#define SHARING_COLS 256
typedef struct sharing_job {
    float *w, *dw, *v;
    int mode, read_first, threads, t;
    pthread_barrier_t *bar;
    double seconds[2000], sink;
} sharing_job;

/* the momentum step, 8 floats at a time where the CPU has AVX2 (a scalar
   loop would time the arithmetic, not the memory) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2,fma")))
static size_t momentum8(float *w, const float *dw, float *v, size_t n)
{
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 vi = _mm256_fmadd_ps(_mm256_set1_ps(0.9f), _mm256_loadu_ps(v + i), _mm256_loadu_ps(dw + i));
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(w + i, _mm256_fnmadd_ps(_mm256_set1_ps(1e-6f), vi, _mm256_loadu_ps(w + i)));
    }
    return i;
}
#endif

static void momentum(float *w, const float *dw, float *v, size_t n)
{
    size_t i = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) i = momentum8(w, dw, v, n);
#endif
    for (; i < n; i++) { v[i] = 0.9f * v[i] + dw[i]; w[i] -= 1e-6f * v[i]; }
}

/* mode 0: contiguous halves; mode 1: column halves of every row */
static void sharing_update(sharing_job *j)
{
    size_t size = (size_t)SHARING_ROWS * SHARING_COLS, part = size / (size_t)j->threads, begin = part * (size_t)j->t;
    int r, cols = SHARING_COLS / j->threads, c0 = cols * j->t;
    if (j->mode == 0) { momentum(j->w + begin, j->dw + begin, j->v + begin, part); return; }
    for (r = 0; r < SHARING_ROWS; r++) {
        size_t o = (size_t)r * SHARING_COLS + (size_t)c0;
        momentum(j->w + o, j->dw + o, j->v + o, (size_t)cols);
    }
}

static void *sharing_thread(void *arg)
{
    sharing_job *j = (sharing_job *)arg;
    int i;
    for (i = 0; i < 2000; i++) {
        double t0;
        if (j->read_first) { /* every line of w, as the next product's packing would */
            size_t k;
            for (k = 0; k < (size_t)SHARING_ROWS * SHARING_COLS; k += 16) j->sink += j->w[k];
        }
        if (j->bar) pthread_barrier_wait(j->bar);
        t0 = now();
        sharing_update(j);
        if (j->bar) pthread_barrier_wait(j->bar);
        j->seconds[i] = now() - t0;
    }
    return NULL;
}

/* the median microseconds per update (thread 0's view, barriers included) */
static double sharing_us(float *w, float *dw, float *v, int threads, int mode, int read_first)
{
    static sharing_job jobs[2];
    pthread_t other;
    pthread_barrier_t bar;
    int t;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (t = 0; t < threads; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].w = w; jobs[t].dw = dw; jobs[t].v = v; jobs[t].mode = mode; jobs[t].read_first = read_first;
        jobs[t].threads = threads; jobs[t].t = t; jobs[t].bar = threads > 1 ? &bar : NULL;
    }
    if (threads > 1) pthread_create(&other, NULL, sharing_thread, &jobs[1]);
    sharing_thread(&jobs[0]);
    if (threads > 1) pthread_join(other, NULL);
    pthread_barrier_destroy(&bar);
    return median(jobs[0].seconds, 2000) * 1e6;
}

/* A cache line passed back and forth between two threads, as a barrier
   passes its count from core to core: one round trip, in ns. A line that
   one core wants from the other waits on half of one. */
#define PINGPONG_TRIPS 100000
static long pingpong_buf[32];

static volatile long *pingpong_line(void)
{
    return (volatile long *)(((uintptr_t)pingpong_buf + 63) & ~(uintptr_t)63);
}

static void *pingpong_answer(void *arg)
{
    volatile long *line = pingpong_line();
    long i;
    (void)arg;
    for (i = 0; i < PINGPONG_TRIPS; i++) {
        while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != 2 * i + 1) {}
        __atomic_store_n(line, 2 * i + 2, __ATOMIC_RELEASE);
    }
    return NULL;
}

static double pingpong_ns(void)
{
    volatile long *line = pingpong_line();
    double t[5];
    int r;
    for (r = 0; r < 5; r++) {
        pthread_t other;
        double t0;
        long i;
        *line = 0;
        if (pthread_create(&other, NULL, pingpong_answer, NULL)) return -1.0;
        t0 = now();
        for (i = 0; i < PINGPONG_TRIPS; i++) {
            __atomic_store_n(line, 2 * i + 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != 2 * i + 2) {}
        }
        t[r] = (now() - t0) / PINGPONG_TRIPS * 1e9;
        pthread_join(other, NULL);
    }
    return median(t, 5);
}

/* --sharing: what it costs two cores to update one weight matrix (B1's
   784 x 256: the momentum step's three arrays) when each owns a contiguous
   half, when each owns half of every row's columns (the split the forward
   product uses), and when each owns a contiguous half that the other core
   has just read. Memory-bound passes whose halves interleave, or whose
   lines change cores every step, are what keeps two threads from helping
   B1 on some machines; this measures it on the one it runs on (medians of
   2000 updates, after 2000 to warm up), and how long a cache line takes
   to go to the other core and back. */
static int sharing(void)
{
    size_t i, size = (size_t)SHARING_ROWS * SHARING_COLS;
    float *w = (float *)calloc(size, sizeof(float)), *dw = (float *)calloc(size, sizeof(float)), *v = (float *)calloc(size, sizeof(float));
    if (!w || !dw || !v) { fprintf(stderr, "bench: out of memory\n"); return 1; }
    for (i = 0; i < size; i++) dw[i] = (float)(i % 97) * 1e-3f;
    (void)sharing_us(w, dw, v, 2, 0, 0);
    printf("momentum update of a %d x %d matrix (3 arrays, %.1f MB), us per update:\n", SHARING_ROWS, SHARING_COLS, 3.0 * size * 4 / 1e6);
    printf("  1 thread                                             %8.1f\n", sharing_us(w, dw, v, 1, 0, 0));
    printf("  2 threads, contiguous halves                         %8.1f\n", sharing_us(w, dw, v, 2, 0, 0));
    printf("  2 threads, column halves of every row                %8.1f\n", sharing_us(w, dw, v, 2, 1, 0));
    printf("  2 threads, contiguous halves, both read all before   %8.1f\n", sharing_us(w, dw, v, 2, 0, 1));
    printf("a cache line's round trip between two threads: %.0f ns\n", pingpong_ns());
    free(w); free(dw); free(v);
    return 0;
}

/* --peers: one workload of tools/bench_peers.sh, printed as one line
   `mlp WORKLOAD THREADS FIGURE UNIT [test acc A]` in the form
   tools/bench_torch.py prints PyTorch's. */
static int peers_train(const mlp_dataset *train, const mlp_dataset *test, int recipe, int threads, int epochs)
{
    mlp_net *net = mlp_create_spec(recipe ? "784-800-800-10" : "784-256-128-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_train_config cfg = mlp_train_defaults();
    double t[64];
    mlp_eval ev;
    int e;
    if (epochs > 64) epochs = 64;
    cfg.lr = recipe ? 0.1f : 0.05f; cfg.momentum = 0.9f; cfg.batch = 64; cfg.lr_decay = 1.0f;
    if (!net || (recipe && mlp_add_batchnorm(net)) || mlp_set_threads(net, threads)) {
        fprintf(stderr, "bench: %s\n", mlp_error());
        return 1;
    }
    for (e = 0; e < epochs; e++) {
        double t0 = now();
        if (mlp_train_epoch(net, train, &cfg, e, NULL)) { fprintf(stderr, "bench: %s\n", mlp_error()); return 1; }
        t[e] = now() - t0;
    }
    mlp_evaluate(net, test, 1000, &ev, NULL);
    printf("mlp %s %d %.4f s/epoch test acc %.4f\n", recipe ? "recipe" : "b1", threads, median(t, epochs), ev.accuracy);
    mlp_free(net);
    return 0;
}

static int peers(int argc, char **argv)
{
    mlp_dataset train, test;
    int threads = argc > 3 ? atoi(argv[3]) : 1, epochs = argc > 5 && !strcmp(argv[4], "--epochs") ? atoi(argv[5]) : 5;
    int rc = 0;
    if (argc < 4 || threads < 1 || epochs < 1) {
        fprintf(stderr, "usage: bench --peers b1|b2|recipe THREADS [--epochs N]\n");
        return 2;
    }
    if (load_mnist(&train, &test)) return 1;
    if (!strcmp(argv[2], "b1") || !strcmp(argv[2], "recipe")) {
        rc = peers_train(&train, &test, argv[2][0] == 'r', threads, epochs);
    } else { /* B2 as bench_infer measures it */
        double per_s, us;
        infer_figures(&test, threads, &per_s, &us);
        printf("mlp b2 %d %.0f images/s\nmlp b2-1 %d %.2f us/image\n", threads, per_s, threads, us);
    }
    mlp_dataset_free(&train);
    mlp_dataset_free(&test);
    return rc;
}

int main(int argc, char **argv)
{
    double ob_epoch[3] = {0, 0, 0}, peak;
    const char *peak_isa;
    int only_training = argc > 1 && !strcmp(argv[1], "--training");
    mlp_dataset train, test;
    int threads;
    if (argc > 1 && !strcmp(argv[1], "--peers")) return peers(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "--sharing")) return sharing();
    if (argc > 1 && !strcmp(argv[1], "--ceiling")) { /* one line per core count */
        const char *isa;
        double one = fma_peak(&isa);
        printf("ceiling 1 %.1f GFLOP/s %s\nceiling 2 %.1f GFLOP/s %s\nopenblas %s\n", one, isa, fma_peak_cores(2), isa,
               openblas_get_corename());
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--preprocess")) { /* that line alone */
        if (load_mnist(&train, &test)) return 1;
        bench_preprocess(&test);
        mlp_dataset_free(&train);
        mlp_dataset_free(&test);
        return 0;
    }
    printf("mlp.h benchmark (%s); best kernel here: %s; OpenBLAS core: %s\n",
           only_training ? "training only" : "tools/bench_workloads.md B1-B4, augmentation", mlp_isa_name(mlp_isa_best()), openblas_get_corename());
    peak = fma_peak(&peak_isa);
    if (peak > 0)
        printf("this core's %s FMA peak: %.1f GFLOP/s (12 independent FMA chains); B1 at that rate: %.3f s/epoch\n",
               peak_isa, peak, 60.4 / peak);
    if (!only_training) for (threads = 1; threads <= 2; threads++) bench_gemm(threads, &ob_epoch[threads]);
    if (load_mnist(&train, &test)) return 1;
    printf("\n");
    for (threads = 1; threads <= 2; threads++) bench_train(&train, &test, threads, ob_epoch[threads]);
    if (!only_training) for (threads = 1; threads <= 2; threads++) bench_infer(&test, threads);
    if (!only_training) for (threads = 1; threads <= 2; threads++) bench_augment(&train, threads);
    if (!only_training) bench_preprocess(&test);
    mlp_dataset_free(&train);
    mlp_dataset_free(&test);
    return 0;
}
