/* One small program that make test-warnings builds once per configuration of
   mlp.h, as C99 and as C++11 under gcc and clang, every warning an error,
   and then runs: it must learn XOR, so each variant is exercised, not only
   compiled. The variant is chosen on the command line:
     (nothing)          the defaults
     -DMLP_STATIC       every function static (make also checks that no mlp_
                        function is a global symbol of the program)
     -DCV_ALLOCATOR     MLP_MALLOC and MLP_FREE defined to counting wrappers of
                        malloc and free: the library must allocate only through
                        them and free all it allocated
     -DMLP_NO_STDIO     the functions taking a file path left out (mlp_save is
                        declared again below, as a variable: a clash otherwise)
     -DMLP_NO_SIMD      the scalar kernels only
     -DMLP_NO_THREADS   no thread pool: one thread whatever is asked
     -DMLP_NO_HUGE_PAGES  no madvise for 2 MiB pages on a data set's rows
   Each variant also copies a 6 MiB data set (on Linux, by default, the
   library asks for huge pages for it) and reads it back. */
#include <stdio.h>
#include <stdlib.h>

#ifdef CV_ALLOCATOR
static long cv_allocs, cv_live;
static void *cv_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) { cv_allocs++; cv_live++; }
    return p;
}
static void cv_free(void *p)
{
    if (p) cv_live--;
    free(p);
}
#define MLP_MALLOC(sz) cv_malloc(sz)
#define MLP_FREE(p)    cv_free(p)
#endif

#define MLP_IMPLEMENTATION
#include "../mlp.h"

#ifdef MLP_NO_STDIO
static const char *mlp_save = "left out"; /* an error if mlp.h declared mlp_save */
#endif

#if defined(MLP_STATIC)
#define CV_NAME "MLP_STATIC"
#elif defined(CV_ALLOCATOR)
#define CV_NAME "MLP_MALLOC/MLP_FREE"
#elif defined(MLP_NO_STDIO)
#define CV_NAME "MLP_NO_STDIO"
#elif defined(MLP_NO_SIMD)
#define CV_NAME "MLP_NO_SIMD"
#elif defined(MLP_NO_THREADS)
#define CV_NAME "MLP_NO_THREADS"
#elif defined(MLP_NO_HUGE_PAGES)
#define CV_NAME "MLP_NO_HUGE_PAGES"
#else
#define CV_NAME "defaults"
#endif

#define CV_STEPS 300
#define CV_ROWS (3 << 18) /* x 2 floats: 6 MiB, at least two whole 2 MiB pages */

/* The XOR table repeated CV_ROWS times, copied into a data set (the
   library's allocation for rows) and read back. */
static int cv_big_dataset(const float *X, const int *y)
{
    float *x = (float *)malloc((size_t)CV_ROWS * 2 * sizeof(float));
    int *labels = (int *)malloc((size_t)CV_ROWS * sizeof(int));
    mlp_dataset ds;
    int i, rc = 1;
    if (!x || !labels) { free(x); free(labels); fprintf(stderr, "config_variants (%s): out of memory\n", CV_NAME); return 1; }
    for (i = 0; i < CV_ROWS; i++) { x[2 * i] = X[2 * (i % 4)]; x[2 * i + 1] = X[2 * (i % 4) + 1]; labels[i] = y[i % 4]; }
    if (mlp_dataset_from_arrays(&ds, x, labels, CV_ROWS, 2, MLP_DATASET_COPY) != MLP_OK) {
        fprintf(stderr, "config_variants (%s): mlp_dataset_from_arrays: %s\n", CV_NAME, mlp_error());
    } else {
        for (rc = 0, i = 0; i < CV_ROWS; i += 4099)
            if (ds.x[2 * i] != X[2 * (i % 4)] || ds.x[2 * i + 1] != X[2 * (i % 4) + 1] || ds.y[i] != y[i % 4]) rc = 1;
        if (rc) fprintf(stderr, "config_variants (%s): the copied data set differs from its source\n", CV_NAME);
        mlp_dataset_free(&ds);
    }
    free(x);
    free(labels);
    return rc;
}

static int cv_fail(const char *what)
{
    fprintf(stderr, "config_variants (%s): %s: %s\n", CV_NAME, what, mlp_error());
    return 1;
}

int main(void)
{
    static const float X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const int y[4] = {0, 1, 1, 0};
    float loss = 1.0f;
    const float *p;
    int step, i, learned = 1, threads;
    mlp_isa isa;
    mlp_net *net = mlp_create_spec("2-8-2", MLP_ACT_TANH, MLP_LOSS_CE, 42);

    if (cv_big_dataset(X, y)) return 1;
    if (!net) return cv_fail("mlp_create_spec");
    if (mlp_set_threads(net, 2) != MLP_OK) return cv_fail("mlp_set_threads(2)");
    threads = mlp_get_threads(net);
    isa = mlp_get_isa(net);
#ifdef MLP_NO_THREADS
    if (threads != 1) { fprintf(stderr, "config_variants (MLP_NO_THREADS): %d threads\n", threads); return 1; }
#endif
#ifdef MLP_NO_SIMD
    if (mlp_isa_best() != MLP_ISA_SCALAR || isa != MLP_ISA_SCALAR) {
        fprintf(stderr, "config_variants (MLP_NO_SIMD): kernels %s\n", mlp_isa_name(isa));
        return 1;
    }
#endif
    for (step = 0; step < CV_STEPS; step++) {
        if (!mlp_forward(net, X, 4)) return cv_fail("mlp_forward");
        if (mlp_backward(net, y, &loss) != MLP_OK) return cv_fail("mlp_backward");
        if (mlp_sgd_step(net, 0.5f, 0.9f, 0.0f) != MLP_OK) return cv_fail("mlp_sgd_step");
    }
    if (!(p = mlp_predict(net, X, 4))) return cv_fail("mlp_predict");
    for (i = 0; i < 4; i++)
        if ((p[2 * i + 1] > p[2 * i]) != (y[i] == 1)) learned = 0;
    mlp_free(net);
    if (!learned || !(loss < 0.1f)) {
        fprintf(stderr, "config_variants (%s): XOR not learned in %d steps (loss %g)\n", CV_NAME, CV_STEPS, loss);
        return 1;
    }
#ifdef CV_ALLOCATOR
    if (cv_allocs == 0 || cv_live != 0) {
        fprintf(stderr, "config_variants (%s): %ld allocations through MLP_MALLOC, %ld not freed\n",
                CV_NAME, cv_allocs, cv_live);
        return 1;
    }
    printf("config_variants (%s): %ld allocations through MLP_MALLOC, all freed\n", CV_NAME, cv_allocs);
#endif
#ifdef MLP_NO_STDIO
    printf("config_variants (%s): mlp_save %s\n", CV_NAME, mlp_save);
#endif
    printf("config_variants (%s): XOR learned in %d steps, loss %.4f, %s kernels, %d thread%s\n",
           CV_NAME, CV_STEPS, loss, mlp_isa_name(isa), threads, threads == 1 ? "" : "s");
    return 0;
}
