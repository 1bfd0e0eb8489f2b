/* GEMM: every kernel this CPU supports against the plain triple loop, for
   all four transpose combinations, every M, N and K from 1 to 70 (the others
   odd), random larger shapes crossing the cache blocks, unaligned pointers,
   padded leading dimensions, and beta in {0, 1, other}.
   Tolerance: |got - want| <= 1e-5 (K + 1) (|alpha| + |beta|), inputs in [-1, 1].
   Then every kernel again with each operand flush against an inaccessible
   page, so that an access one element outside A, B or C faults. */
#if defined(__unix__) || defined(__APPLE__)
#define _DEFAULT_SOURCE /* glibc shows MAP_ANONYMOUS under -std=c99 only with this */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"
#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#define HAVE_GUARD_PAGES 1
#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
#elif defined(_WIN32)
#include <signal.h>
#include <windows.h>
#define HAVE_GUARD_PAGES 1
#endif

static mlp_isa isas[8];
static int n_isas;

static int check(mlp_isa isa, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, int misalign)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc, i;
    float *Abuf = malloc((na + 1) * sizeof(float)), *Bbuf = malloc((nb + 1) * sizeof(float));
    float *Cbuf = malloc((nc + 1) * sizeof(float)), *R = malloc(nc * sizeof(float));
    float *A = Abuf + misalign, *B = Bbuf + misalign, *C = Cbuf + misalign;
    mlp_rng rng;
    int bad = 0;
    mlp_rng_seed(&rng, (uint64_t)(M * 10007 + N * 101 + K), 1);
    for (i = 0; i < na; i++) A[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < nb; i++) B[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < nc; i++) C[i] = R[i] = 2 * mlp_rng_float(&rng) - 1;
    assert_int_equal(mlp_gemm_isa(isa, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 0);
    mlp_gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (i = 0; i < nc && !bad; i++) {
        float tol = 1e-5f * (float)(K + 1) * (fabsf(alpha) + fabsf(beta));
        if ((int)(i % (size_t)ldc) >= N) bad = C[i] != R[i]; /* padding untouched */
        else bad = !(fabsf(C[i] - R[i]) <= tol);
        if (bad) print_error("%s: ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: C[%d] = %g, want %g\n",
                             mlp_isa_name(isa), ta, tb, M, N, K, alpha, beta, pad, (int)i, C[i], R[i]);
    }
    free(Abuf); free(Bbuf); free(Cbuf); free(R);
    return !bad;
}

static int setup(void **state)
{
    int i;
    (void)state;
    for (i = MLP_ISA_SCALAR; i <= MLP_ISA_WASM128; i++)
        if (mlp_isa_supported((mlp_isa)i)) isas[n_isas++] = (mlp_isa)i;
    print_message("kernels tested: ");
    for (i = 0; i < n_isas; i++) print_message("%s ", mlp_isa_name(isas[i]));
    print_message("\n");
    return 0;
}

static void test_every_size_to_70(void **state)
{
    int s, t, d;
    (void)state;
    for (s = 0; s < n_isas; s++)
        for (t = 0; t < 4; t++)
            for (d = 1; d <= 70; d++) {
                assert_true(check(isas[s], t & 1, t >> 1, d, 37, 29, 1.0f, 0.0f, 0, 0));
                assert_true(check(isas[s], t & 1, t >> 1, 29, d, 37, 1.0f, 0.0f, 0, 0));
                assert_true(check(isas[s], t & 1, t >> 1, 37, 29, d, 1.0f, 0.0f, 0, 0));
            }
}

static void test_small_cube(void **state)
{
    static const int dims[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33};
    int nd = sizeof dims / sizeof dims[0], s, a, b, c, t;
    (void)state;
    for (s = 0; s < n_isas; s++)
        for (t = 0; t < 4; t++)
            for (a = 0; a < nd; a++)
                for (b = 0; b < nd; b++)
                    for (c = 0; c < nd; c++)
                        assert_true(check(isas[s], t & 1, t >> 1, dims[a], dims[b], dims[c], 1.0f, 0.0f, 0, 0));
}

static void test_random_large_shapes(void **state)
{
    mlp_rng rng;
    int s, i;
    (void)state;
    mlp_rng_seed(&rng, 2026, 3);
    for (s = 0; s < n_isas; s++)
        for (i = 0; i < 12; i++) {
            int M = 1 + (int)mlp_rng_below(&rng, 300), N = 1 + (int)mlp_rng_below(&rng, 700);
            int K = 1 + (int)mlp_rng_below(&rng, 600), t = (int)mlp_rng_below(&rng, 4);
            assert_true(check(isas[s], t & 1, t >> 1, M, N, K, 1.0f, i % 3 == 0 ? 0.5f : 0.0f, i % 2, i % 2));
        }
}

static void test_b1_shapes(void **state)
{
    int s;
    (void)state;
    for (s = 0; s < n_isas; s++) {
        assert_true(check(isas[s], 0, 0, 64, 256, 784, 1.0f, 1.0f, 0, 0));  /* forward */
        assert_true(check(isas[s], 1, 0, 784, 256, 64, 1.0f, 0.0f, 0, 0));  /* dW = x^T dz */
        assert_true(check(isas[s], 0, 1, 64, 784, 256, 1.0f, 0.0f, 0, 0));  /* dx = dz W^T */
        assert_true(check(isas[s], 0, 0, 64, 10, 128, 1.0f, 1.0f, 0, 0));
        assert_true(check(isas[s], 0, 0, 130, 1100, 520, 1.0f, 0.0f, 0, 0)); /* crosses MC, NC, KC */
    }
}

/* The streaming paths: one or two rows (inference at batch 1) across
   every 16-lane and 256-column boundary, and narrow products (N <= 16, the
   output layer) with A plain or transposed; beta, padding and misaligned
   pointers included. */
static void test_batch1_and_narrow_paths(void **state)
{
    static const int wide[] = {1, 15, 16, 17, 63, 64, 65, 100, 255, 256, 257, 300, 513};
    static const int deep[] = {1, 7, 64, 300};
    int s, n, k, m, t;
    (void)state;
    for (s = 0; s < n_isas; s++)
        for (n = 0; n < (int)(sizeof wide / sizeof wide[0]); n++)
            for (k = 0; k < 4; k++)
                for (m = 1; m <= 2; m++) {
                    assert_true(check(isas[s], 0, 0, m, wide[n], deep[k], 1.0f, 0.0f, 0, 0));
                    assert_true(check(isas[s], 0, 0, m, wide[n], deep[k], 0.5f, 1.0f, 3, 1));
                }
    for (s = 0; s < n_isas; s++)
        for (n = 1; n <= 17; n++)
            for (k = 0; k < 4; k++)
                for (t = 0; t < 2; t++)
                    for (m = 1; m <= 25; m += 3) {
                        assert_true(check(isas[s], t, 0, m, n, deep[k], 1.0f, 0.0f, 0, 0));
                        assert_true(check(isas[s], t, 0, m + 64, n, deep[k], -0.5f, 1.0f, 2, 1));
                    }
}

/* The batch-1 kernels skip the rows of B whose factor in A is exactly 0
   (most pixels of a digit, half of a ReLU layer's outputs): the result is
   the full product's, and a NaN weight in a skipped row is not read. */
static void test_batch1_skips_rows_of_zero_inputs(void **state)
{
    static const int wide[] = {16, 257};
    int s, m, n, i, k, K = 300;
    (void)state;
    for (s = 0; s < n_isas; s++)
        for (m = 1; m <= 2; m++)
            for (n = 0; n < 2; n++) {
                int N = wide[n], skips = mlp__kernels_for(isas[s])->gemv != NULL;
                float *A = malloc(sizeof(float) * (size_t)m * K), *B = malloc(sizeof(float) * (size_t)K * N);
                float *B0 = malloc(sizeof(float) * (size_t)K * N), *C = malloc(sizeof(float) * (size_t)m * N);
                float *R = malloc(sizeof(float) * (size_t)m * N);
                mlp_rng rng;
                mlp_rng_seed(&rng, (uint64_t)(m * 31 + N), 5);
                for (i = 0; i < m; i++)
                    for (k = 0; k < K; k++) A[i * K + k] = k % 3 == 1 ? 2 * mlp_rng_float(&rng) - 1 : 0.0f;
                for (k = 0; k < K; k++)
                    for (i = 0; i < N; i++) {
                        B0[k * N + i] = k % 3 == 1 ? 2 * mlp_rng_float(&rng) - 1 : 0.0f;
                        B[k * N + i] = k % 3 == 1 ? B0[k * N + i] : skips ? NAN : 5.0f;
                    }
                assert_int_equal(mlp_gemm_isa(isas[s], 0, 0, m, N, K, 1.0f, A, K, B, N, 0.0f, C, N), 0);
                mlp_gemm_ref(0, 0, m, N, K, 1.0f, A, K, B0, N, 0.0f, R, N);
                for (i = 0; i < m * N; i++) assert_true(fabsf(C[i] - R[i]) <= 1e-5f * (float)(K + 1));
                free(A); free(B); free(B0); free(C); free(R);
            }
}

/* A product of at most 64 rows with op(B) over 512 wide (z = x W, dz W^T in a
   training step) is computed as its transpose, the weights read in place.
   For beta 0 and 1 its bits must be the direct product's: the same rows
   taken from a 65-row product (past the limit, so computed directly) are
   compared bit for bit, and every result against the triple loop. Beta 0.3
   is checked against the triple loop only: there a clipped tile rounds
   alpha c + beta C twice and a whole one once, so even the direct product's
   bits depend on where a row falls among the tiles. Sizes cross the
   32-wide panels, the 256-deep K blocks and the 1536 columns of one pass. */
static void check_by_transpose(mlp_isa isa, int tb, int M, int N, int K, float beta, int pad)
{
    int ldb = tb ? K : N;
    size_t nb = (size_t)(tb ? N : K) * (size_t)ldb, i;
    float *A = malloc(sizeof(float) * 65 * (size_t)K), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * 65 * (size_t)N), *D = malloc(sizeof(float) * 65 * (size_t)N);
    mlp_rng rng;
    mlp_rng_seed(&rng, (uint64_t)(M * 7919 + N * 31 + K), 7);
    for (i = 0; i < 65 * (size_t)K; i++) A[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < nb; i++) B[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < 65 * (size_t)N; i++) C[i] = D[i] = 2 * mlp_rng_float(&rng) - 1;
    assert_int_equal(mlp_gemm_isa(isa, 0, tb, M, N, K, 1.0f, A, K, B, ldb, beta, C, N), 0);
    assert_int_equal(mlp_gemm_isa(isa, 0, tb, 65, N, K, 1.0f, A, K, B, ldb, beta, D, N), 0);
    if ((M > 2 || tb) && beta != 0.3f) /* 1 or 2 rows of a plain product: the batch-1 kernels */
        for (i = 0; i < (size_t)M * N; i++)
            if (memcmp(&C[i], &D[i], sizeof(float)) != 0)
                fail_msg("%s: tb=%d M=%d N=%d K=%d beta=%g: C[%d] = %.9g, the direct product's %.9g",
                         mlp_isa_name(isa), tb, M, N, K, beta, (int)i, C[i], D[i]);
    free(A); free(B); free(C); free(D);
    assert_true(check(isa, 0, tb, M, N, K, 1.0f, beta, pad, pad & 1));
}

static void test_few_rows_by_transpose(void **state)
{
    static const int rows[] = {1, 3, 8, 9, 31, 33, 64};
    static const int deep[] = {64, 77, 300};
    static const float betas[] = {0.0f, 1.0f, 0.3f};
    int s, tb, m, k, b;
    (void)state;
    for (s = 0; s < n_isas; s++) {
        const mlp__kernel *kern = mlp__kernels_for(isas[s])->gemm;
        if (!kern || !kern->micro_a || !kern->micro_at) continue; /* no in-place kernels: never transposed */
        for (tb = 0; tb < 2; tb++) {
            for (m = 0; m < (int)(sizeof rows / sizeof rows[0]); m++)
                for (k = 0; k < 3; k++)
                    for (b = 0; b < 3; b++) check_by_transpose(isas[s], tb, rows[m], 800, deep[k], betas[b], b);
            for (b = 0; b < 3; b++) { /* a second pass of 1536 columns */
                check_by_transpose(isas[s], tb, 9, 1601, 64, betas[b], 0);
                check_by_transpose(isas[s], tb, 64, 1601, 77, betas[b], 1);
            }
            check_by_transpose(isas[s], tb, 33, 513, 300, 1.0f, 0); /* just over the width limit */
        }
    }
}

static void test_alpha_beta_padding_alignment(void **state)
{
    int s, t;
    (void)state;
    for (s = 0; s < n_isas; s++)
        for (t = 0; t < 4; t++) {
            assert_true(check(isas[s], t & 1, t >> 1, 13, 19, 23, 1.0f, 1.0f, 3, 1));
            assert_true(check(isas[s], t & 1, t >> 1, 13, 19, 23, -0.5f, 0.25f, 1, 1));
            assert_true(check(isas[s], t & 1, t >> 1, 9, 40, 300, 2.0f, 0.0f, 7, 1));
            assert_true(check(isas[s], t & 1, t >> 1, 1, 1, 1, 1.0f, 0.0f, 0, 1));
        }
}

static void test_beta_zero_ignores_nan(void **state)
{
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 0, 0, 1}, C[4];
    int i, s;
    (void)state;
    for (s = 0; s < n_isas; s++) {
        for (i = 0; i < 4; i++) C[i] = NAN;
        assert_int_equal(mlp_gemm_isa(isas[s], 0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2), 0);
        for (i = 0; i < 4; i++) assert_true(C[i] == A[i]);
    }
}

#ifdef HAVE_GUARD_PAGES
/* The checks above miss reads just outside an operand: their blocks have a
   spare float, ASan does not see the AVX-512 gathers (nor, under gcc, the
   masked loads), and a read one row too far can jump a redzone into a
   neighbouring block. Here each operand sits flush against pages the process
   may not touch, wider than any row below, so such a read faults wherever
   it lands. */
#define GUARD_BYTES ((size_t)1 << 16)

/* Under AddressSanitizer a kernel call costs about 2 ms (its packing
   buffers are one large block, mapped and poisoned anew each call), and ASan
   does not watch these mmap'd operands anyway: there every 61st product is
   run (a prime, so the sample does not follow the loops' periods). */
#if defined(__SANITIZE_ADDRESS__)
#define GUARD_SAMPLE 61
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUARD_SAMPLE 61
#endif
#endif
#ifndef GUARD_SAMPLE
#define GUARD_SAMPLE 1
#endif

typedef struct guarded { char *map; size_t bytes, n; float *lo, *hi; } guarded;
static guarded gA, gB, gC;

/* The product running, so that a fault can say which one it was. */
static struct { mlp_isa isa; int ta, tb, M, N, K, pad, at_end; } running;
static void (*cmocka_on_segv)(int), (*cmocka_on_bus)(int);

/* Names the product, then hands over to cmocka, which fails the test. Not
   async-signal-safe, but the fault is always inside the GEMM, never stdio. */
static void on_fault(int sig)
{
    void (*next)(int) = sig == SIGSEGV ? cmocka_on_segv : cmocka_on_bus;
    print_error("fault (signal %d): %s, operands %s a guard: ta=%d tb=%d M=%d N=%d K=%d pad=%d\n", sig,
                mlp_isa_name(running.isa), running.at_end ? "ending at" : "starting after",
                running.ta, running.tb, running.M, running.N, running.K, running.pad);
    if (next == SIG_DFL || next == SIG_IGN || next == SIG_ERR) { signal(sig, SIG_DFL); raise(sig); return; }
    next(sig);
}

/* Room for n floats between two guards: lo is the first float after the
   leading guard, hi is one past the last float before the trailing one. */
static void guarded_new(guarded *g, size_t n)
{
#ifdef _WIN32
    SYSTEM_INFO si;
    DWORD was;
    size_t page, guard, body;
    GetSystemInfo(&si);
    page = si.dwPageSize;
#else
    size_t page = (size_t)sysconf(_SC_PAGESIZE), guard, body;
#endif
    guard = (GUARD_BYTES + page - 1) / page * page;
    body = (n * sizeof(float) + page - 1) / page * page;
    g->bytes = body + 2 * guard; g->n = n;
#ifdef _WIN32
    g->map = (char *)VirtualAlloc(NULL, g->bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_non_null(g->map);
    assert_true(VirtualProtect(g->map, guard, PAGE_NOACCESS, &was));
    assert_true(VirtualProtect(g->map + guard + body, guard, PAGE_NOACCESS, &was));
#else
    g->map = (char *)mmap(NULL, g->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map, guard, PROT_NONE), 0);
    assert_int_equal(mprotect(g->map + guard + body, guard, PROT_NONE), 0);
#endif
    g->lo = (float *)(void *)(g->map + guard);
    g->hi = (float *)(void *)(g->map + guard + body);
}

static void guarded_free(guarded *g)
{
#ifdef _WIN32
    VirtualFree(g->map, 0, MEM_RELEASE);
#else
    munmap(g->map, g->bytes);
#endif
}

static void guards_new(size_t n)
{
    guarded_new(&gA, n); guarded_new(&gB, n); guarded_new(&gC, n);
    cmocka_on_segv = signal(SIGSEGV, on_fault);
#ifdef SIGBUS
    cmocka_on_bus = signal(SIGBUS, on_fault); /* some systems report a PROT_NONE page so */
#endif
}

static void guards_free(void)
{
    signal(SIGSEGV, cmocka_on_segv);
#ifdef SIGBUS
    signal(SIGBUS, cmocka_on_bus);
#endif
    guarded_free(&gA); guarded_free(&gB); guarded_free(&gC);
}

/* A rows x cols matrix with leading dimension ld ends at element
   (rows - 1) ld + cols - 1: the last row has no padding after it. */
static size_t span(int rows, int cols, int ld)
{
    return (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
}

/* Values in [-1, 1], and pad between the rows: NaN there makes a kernel that
   computes with the padding show it in C, where no guard page can be. */
static void fill(float *x, int rows, int cols, int ld, float pad, mlp_rng *rng)
{
    size_t i, n = span(rows, cols, ld);
    for (i = 0; i < n; i++) x[i] = (int)(i % (size_t)ld) < cols ? 2 * mlp_rng_float(rng) - 1 : pad;
}

/* One product on every kernel, twice: first with A, B and C each ending on
   the last float before a guard, then each starting on the first float after
   one. The operands are made and the reference computed once per shape. */
static int check_guarded(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta)
{
    static unsigned long n_products;
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad, s, at_end, bad = 0;
    size_t na = span(ta ? K : M, ta ? M : K, lda), nb = span(tb ? N : K, tb ? K : N, ldb), nc = span(M, N, ldc), i;
    float *A0, *B0, *C0, *R;
    float tol = 1e-5f * (float)(K + 1) * (fabsf(alpha) + fabsf(beta));
    mlp_rng rng;
    if (n_products++ % GUARD_SAMPLE) return 1;
    A0 = malloc(na * sizeof(float)); B0 = malloc(nb * sizeof(float));
    C0 = malloc(nc * sizeof(float)); R = malloc(nc * sizeof(float));
    assert_true(na <= gA.n && nb <= gB.n && nc <= gC.n);
    mlp_rng_seed(&rng, (uint64_t)(M * 10007 + N * 101 + K), 5);
    fill(A0, ta ? K : M, ta ? M : K, lda, NAN, &rng);
    fill(B0, tb ? N : K, tb ? K : N, ldb, NAN, &rng);
    fill(C0, M, N, ldc, 7.0f, &rng);
    memcpy(R, C0, nc * sizeof(float));
    mlp_gemm_ref(ta, tb, M, N, K, alpha, A0, lda, B0, ldb, beta, R, ldc);
    for (s = 0; s < n_isas && !bad; s++)
        for (at_end = 1; at_end >= 0 && !bad; at_end--) {
            float *A = at_end ? gA.hi - na : gA.lo, *B = at_end ? gB.hi - nb : gB.lo, *C = at_end ? gC.hi - nc : gC.lo;
            memcpy(A, A0, na * sizeof(float));
            memcpy(B, B0, nb * sizeof(float));
            memcpy(C, C0, nc * sizeof(float));
            running.isa = isas[s]; running.ta = ta; running.tb = tb; running.M = M; running.N = N; running.K = K; running.pad = pad; running.at_end = at_end;
            assert_int_equal(mlp_gemm_isa(isas[s], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 0);
            for (i = 0; i < nc && !bad; i++) {
                if ((int)(i % (size_t)ldc) >= N) bad = C[i] != R[i]; /* padding untouched */
                else bad = !(fabsf(C[i] - R[i]) <= tol);
                if (bad) print_error("%s, operands %s a guard: ta=%d tb=%d M=%d N=%d K=%d pad=%d: C[%d] = %g, want %g\n",
                                     mlp_isa_name(isas[s]), at_end ? "ending at" : "starting after",
                                     ta, tb, M, N, K, pad, (int)i, C[i], R[i]);
            }
        }
    free(A0); free(B0); free(C0); free(R);
    return !bad;
}
#endif

/* Every pair of M, N and K from 1 to 33 (past each kernel's tile height and
   width: 4, 6 and 8 rows; 8, 16 and 32 columns; the 16-lane vectors of the
   streaming paths; the AVX-512 packing's pairs of k), the third dimension
   picked to reach each path: M = 1 and 2 stream B (batch 1), N <= 16 reads A
   and B in place, N = 17 and 33 pack. The full cube would take seconds;
   an out-of-bounds access depends on the two dimensions of the operand. */
static void test_guard_pages_small_pairs(void **state)
{
#ifdef HAVE_GUARD_PAGES
    static const int third_k[] = {1, 2, 33}, third_n[] = {5, 16, 17, 33}, third_m[] = {1, 2, 9};
    static const float beta[] = {0.0f, 1.0f, 0.5f, 0.0f};
    int t, a, b, q;
    (void)state;
    guards_new(1 << 12);
    for (t = 0; t < 4; t++)
        for (a = 1; a <= 33; a++)
            for (b = 1; b <= 33; b++) {
                for (q = 0; q < 3; q++) /* C: M x N */
                    assert_true(check_guarded(t & 1, t >> 1, a, b, third_k[q], 0, 1.0f, beta[q]));
                for (q = 0; q < 4; q++) /* A: M x K */
                    assert_true(check_guarded(t & 1, t >> 1, a, third_n[q], b, 0, 1.0f, beta[q]));
                for (q = 0; q < 3; q++) /* B: K x N */
                    assert_true(check_guarded(t & 1, t >> 1, third_m[q], a, b, 0, 1.0f, beta[q]));
            }
    guards_free();
#else
    (void)state;
    skip();
#endif
}

/* Padded leading dimensions: the last row's padding lies beyond the guard,
   the other rows' padding holds NaN, and C's must come back unchanged. */
static void test_guard_pages_padded(void **state)
{
#ifdef HAVE_GUARD_PAGES
    static const int dims[] = {1, 2, 3, 7, 8, 9, 16, 17, 33};
    int nd = sizeof dims / sizeof dims[0], t, a, b, c;
    (void)state;
    guards_new(1 << 12);
    for (t = 0; t < 4; t++)
        for (a = 0; a < nd; a++)
            for (b = 0; b < nd; b++)
                for (c = 0; c < nd; c++)
                    assert_true(check_guarded(t & 1, t >> 1, dims[a], dims[b], dims[c], 1 + (a + b + c) % 4,
                                              -0.5f, (a + b + c) % 2 ? 0.25f : 0.0f));
    guards_free();
#else
    (void)state;
    skip();
#endif
}

/* One large dimension (across 48 = 8 AVX2 tiles, the 64- and 128-wide
   panels, MC = 96, KC = 256, the 256-column blocks of the batch-1 path,
   NC = 512) with small ones that keep every path in reach, then a few
   products large in every dimension, K past KC included. */
static void test_guard_pages_large(void **state)
{
#ifdef HAVE_GUARD_PAGES
    static const int big[] = {47, 48, 49, 63, 64, 65, 95, 96, 97, 127, 128, 129, 193, 255, 256, 257, 300, 511, 513};
    static const int small[] = {1, 2, 9, 17};
    static const int shapes[][3] = {{97, 65, 257}, {193, 129, 300}, {9, 513, 257}, {2, 513, 300}, {1, 257, 513},
                                    {129, 16, 300}, {97, 17, 257}, {257, 33, 65}, {65, 600, 40}};
    int nb = sizeof big / sizeof big[0], t, d, i, j;
    (void)state;
    guards_new(1 << 18);
    for (t = 0; t < 4; t++)
        for (d = 0; d < nb; d++)
            for (i = 0; i < 4; i++)
                for (j = 0; j < 4; j++) {
                    float beta = (d + i + j) % 3 == 0 ? 0.5f : 0.0f;
                    assert_true(check_guarded(t & 1, t >> 1, big[d], small[i], small[j], 0, 1.0f, beta));
                    assert_true(check_guarded(t & 1, t >> 1, small[i], big[d], small[j], 0, 1.0f, beta));
                    assert_true(check_guarded(t & 1, t >> 1, small[i], small[j], big[d], 0, 1.0f, beta));
                }
    for (t = 0; t < 4; t++)
        for (i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++)
            assert_true(check_guarded(t & 1, t >> 1, shapes[i][0], shapes[i][1], shapes[i][2], i % 2 * 3, 1.0f, i % 3 ? 0.0f : 1.0f));
    guards_free();
#else
    (void)state;
    skip();
#endif
}

static void test_isa_names(void **state)
{
    (void)state;
    mlp_isa isa = MLP_ISA_NEON;
    assert_int_equal(mlp_isa_from_name("avx512", &isa), MLP_OK);
    assert_int_equal(isa, MLP_ISA_AVX512);
    assert_int_equal(mlp_isa_from_name("scalar", &isa), MLP_OK);
    assert_int_equal(isa, MLP_ISA_SCALAR);
    assert_int_equal(mlp_isa_from_name("mmx", &isa), MLP_EARG);
    assert_int_equal(isa, MLP_ISA_SCALAR);           /* left alone */
    assert_non_null(strstr(mlp_error(), "\"mmx\""));
    assert_int_equal(mlp_isa_from_name(NULL, &isa), MLP_EARG);
    assert_true(mlp_isa_supported(MLP_ISA_SCALAR));
    assert_true(mlp_isa_supported(mlp_isa_best()));
#if defined(__x86_64__)
    assert_false(mlp_isa_supported(MLP_ISA_NEON));
    assert_true(mlp_gemm_isa(MLP_ISA_NEON, 0, 0, 1, 1, 1, 1, NULL, 1, NULL, 1, 0, NULL, 1) < 0);
    assert_non_null(strstr(mlp_error(), "neon is not available"));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size_to_70),
        cmocka_unit_test(test_small_cube),
        cmocka_unit_test(test_random_large_shapes),
        cmocka_unit_test(test_batch1_and_narrow_paths),
        cmocka_unit_test(test_batch1_skips_rows_of_zero_inputs),
        cmocka_unit_test(test_b1_shapes),
        cmocka_unit_test(test_few_rows_by_transpose),
        cmocka_unit_test(test_alpha_beta_padding_alignment),
        cmocka_unit_test(test_beta_zero_ignores_nan),
        cmocka_unit_test(test_guard_pages_small_pairs),
        cmocka_unit_test(test_guard_pages_padded),
        cmocka_unit_test(test_guard_pages_large),
        cmocka_unit_test(test_isa_names),
    };
    return cmocka_run_group_tests_name("gemm", tests, setup, NULL);
}
