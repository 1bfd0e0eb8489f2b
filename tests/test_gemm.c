/* GEMM: every kernel this CPU supports against the plain triple loop, for
   all four transpose combinations, every M, N and K from 1 to 70 (the others
   odd), random larger shapes crossing the cache blocks, unaligned pointers,
   padded leading dimensions, and beta in {0, 1, other}.
   Tolerance: |got - want| <= 1e-5 (K + 1) (|alpha| + |beta|), inputs in [-1, 1]. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

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
    for (i = MLP_ISA_SCALAR; i <= MLP_ISA_NEON; i++)
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

static void test_isa_names(void **state)
{
    (void)state;
    assert_int_equal(mlp_isa_from_name("avx512"), MLP_ISA_AVX512);
    assert_int_equal(mlp_isa_from_name("scalar"), MLP_ISA_SCALAR);
    assert_true((int)mlp_isa_from_name("mmx") == -1);
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
        cmocka_unit_test(test_b1_shapes),
        cmocka_unit_test(test_alpha_beta_padding_alignment),
        cmocka_unit_test(test_beta_zero_ignores_nan),
        cmocka_unit_test(test_isa_names),
    };
    return cmocka_run_group_tests_name("gemm", tests, setup, NULL);
}
