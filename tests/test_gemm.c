/* GEMM: the dispatched kernel against the plain triple loop, for all three
   transpose combinations backprop uses (and the fourth), odd shapes, padded
   leading dimensions, and beta in {0, 1, other}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

/* |got - want| <= 1e-5 * (K + 1) * scale, scale = sum |a_ik b_kj| bound */
static int check_shape(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc, i;
    float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
    float *C = malloc(nc * sizeof(float)), *R = malloc(nc * sizeof(float));
    mlp_rng rng;
    int bad = 0;
    mlp_rng_seed(&rng, (uint64_t)(M * 10007 + N * 101 + K), 1);
    for (i = 0; i < na; i++) A[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < nb; i++) B[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < nc; i++) C[i] = R[i] = 2 * mlp_rng_float(&rng) - 1;
    mlp_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    mlp_gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (i = 0; i < nc; i++) {
        int col = (int)(i % (size_t)ldc);
        float tol = 1e-5f * (float)(K + 1) * (fabsf(alpha) + fabsf(beta));
        if (col >= N) { if (C[i] != R[i]) bad = 1; continue; } /* padding untouched */
        if (!(fabsf(C[i] - R[i]) <= tol)) bad = 1;
    }
    if (bad) print_error("mismatch: ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d\n", ta, tb, M, N, K, alpha, beta, pad);
    free(A); free(B); free(C); free(R);
    return !bad;
}

static void test_small_shapes(void **state)
{
    static const int dims[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 65};
    int nd = sizeof dims / sizeof dims[0], a, b, c, t;
    (void)state;
    for (t = 0; t < 4; t++)
        for (a = 0; a < nd; a++)
            for (b = 0; b < nd; b++)
                for (c = 0; c < nd; c++)
                    assert_true(check_shape(t & 1, t >> 1, dims[a], dims[b], dims[c], 1.0f, 0.0f, 0));
}

static void test_named_shapes(void **state)
{
    (void)state;
    assert_true(check_shape(0, 0, 1, 1, 1, 1.0f, 0.0f, 0));
    assert_true(check_shape(0, 0, 1, 100, 3, 1.0f, 0.0f, 0));
    assert_true(check_shape(0, 0, 17, 33, 5, 1.0f, 0.0f, 0));
    assert_true(check_shape(0, 1, 64, 784, 256, 1.0f, 0.0f, 0));
    assert_true(check_shape(1, 0, 784, 256, 64, 1.0f, 0.0f, 0));
    assert_true(check_shape(0, 0, 64, 256, 784, 1.0f, 0.0f, 0));
}

static void test_alpha_beta_and_padding(void **state)
{
    int t;
    (void)state;
    for (t = 0; t < 4; t++) {
        assert_true(check_shape(t & 1, t >> 1, 13, 19, 23, 1.0f, 1.0f, 3));
        assert_true(check_shape(t & 1, t >> 1, 13, 19, 23, -0.5f, 0.25f, 1));
        assert_true(check_shape(t & 1, t >> 1, 9, 4, 30, 2.0f, 0.0f, 7));
    }
}

static void test_beta_zero_ignores_nan(void **state)
{
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 0, 0, 1}, C[4] = {NAN, NAN, NAN, NAN};
    int i;
    (void)state;
    mlp_gemm(0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    for (i = 0; i < 4; i++) assert_true(C[i] == A[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_shapes),
        cmocka_unit_test(test_named_shapes),
        cmocka_unit_test(test_alpha_beta_and_padding),
        cmocka_unit_test(test_beta_zero_ignores_nan),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
