/* The WebAssembly SIMD128 kernels against the scalar ones and a product in
   double, on odd shapes, every transposition; run under Node by make
   test-web (built with emcc -msimd128). Also prints the benchmark line:
   GFLOP/s of both kernels on a 256 x 256 x 256 product. Built without
   -msimd128 it only times the scalar kernel (the page's fallback build).
   Exit 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <emscripten.h> /* emscripten_get_now: milliseconds, finer than clock() */
#define MLP_IMPLEMENTATION
#include "../../mlp.h"

static int failures;

static float value(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* C = op(A) op(B) (+ C0) in double */
static double reference(int ta, int tb, int K, const float *A, int lda, const float *B, int ldb, int i, int j)
{
    double sum = 0.0;
    int k;
    for (k = 0; k < K; k++)
        sum += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
    return sum;
}

static void check_shape(int ta, int tb, int M, int N, int K, float beta)
{
    int lda = ta ? M : K, ldb = tb ? K : N, i, j, isa;
    unsigned seed = (unsigned)(M * 131 + N * 17 + K + ta * 7 + tb * 3);
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N);
    float *C0 = malloc(sizeof(float) * (size_t)M * N), *C = malloc(sizeof(float) * (size_t)M * N);
    for (i = 0; i < M * K; i++) A[i] = value(&seed);
    for (i = 0; i < K * N; i++) B[i] = value(&seed);
    for (i = 0; i < M * N; i++) C0[i] = value(&seed);
    for (isa = MLP_ISA_SCALAR; isa <= MLP_ISA_WASM128; isa += MLP_ISA_WASM128 - MLP_ISA_SCALAR) {
        memcpy(C, C0, sizeof(float) * (size_t)M * N);
        if (mlp_gemm_isa((mlp_isa)isa, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C, N) != MLP_OK) {
            printf("FAIL %s %dx%dx%d: %s\n", mlp_isa_name((mlp_isa)isa), M, N, K, mlp_error());
            failures++;
            continue;
        }
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                double want = 0.5 * reference(ta, tb, K, A, lda, B, ldb, i, j) + beta * (double)C0[i * N + j];
                if (fabs(C[i * N + j] - want) > 1e-5 * (K + 1)) {
                    printf("FAIL %s ta=%d tb=%d %dx%dx%d at (%d,%d): %g, want %g\n", mlp_isa_name((mlp_isa)isa),
                           ta, tb, M, N, K, i, j, C[i * N + j], want);
                    failures++;
                    i = M; break;
                }
            }
    }
    free(A); free(B); free(C0); free(C);
}

static void check_relu(void)
{
    const mlp__kernels *s = mlp__kernels_for(MLP_ISA_SCALAR), *w = mlp__kernels_for(MLP_ISA_WASM128);
    float x[37], dy[37], y1[37], y2[37], d1[37], d2[37];
    unsigned seed = 5;
    int i;
    for (i = 0; i < 37; i++) { x[i] = value(&seed); dy[i] = value(&seed); }
    x[3] = 0.0f; x[4] = -0.0f;
    s->relu_forward(y1, x, 37); w->relu_forward(y2, x, 37);
    s->relu_backward(d1, dy, y1, 37); w->relu_backward(d2, dy, y2, 37);
    if (memcmp(y1, y2, sizeof y1) || memcmp(d1, d2, sizeof d1)) { printf("FAIL relu: wasm128 differs from scalar\n"); failures++; }
}

static double gflops(mlp_isa isa)
{
    enum { S = 256 };
    static float A[S * S], B[S * S], C[S * S];
    double best = 0.0;
    int rep, i;
    for (i = 0; i < S * S; i++) { A[i] = (float)(i % 7) * 0.1f; B[i] = (float)(i % 5) * 0.1f; }
    for (rep = 0; rep < 5; rep++) { /* the best of 5 timings of 20 products each */
        double t0 = emscripten_get_now(), sec;
        for (i = 0; i < 20; i++) mlp_gemm_isa(isa, 0, 0, S, S, S, 1.0f, A, S, B, S, 0.0f, C, S);
        sec = (emscripten_get_now() - t0) / 1e3;
        if (sec > 0 && 20 * 2.0 * S * S * S / sec / 1e9 > best) best = 20 * 2.0 * S * S * S / sec / 1e9;
    }
    return best;
}

int main(void)
{
    static const int sizes[] = {1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 17, 31, 33, 64, 65, 100};
    int ta, tb, a, b, c;
    double scalar, simd;
    if (!mlp_isa_supported(MLP_ISA_WASM128)) { /* the build for browsers without SIMD128 */
        printf("no-SIMD build GEMM 256^3: scalar %.2f GFLOP/s\n", gflops(MLP_ISA_SCALAR));
        return mlp_isa_best() == MLP_ISA_SCALAR ? 0 : 1;
    }
    if (mlp_isa_best() != MLP_ISA_WASM128) {
        printf("FAIL: SIMD128 is there but the best kernels are %s\n", mlp_isa_name(mlp_isa_best()));
        return 1;
    }
    for (ta = 0; ta < 2; ta++)
        for (tb = 0; tb < 2; tb++)
            for (a = 0; a < 16; a += 3)
                for (b = 1; b < 16; b += 4)
                    for (c = 2; c < 16; c += 5)
                        check_shape(ta, tb, sizes[a], sizes[b], sizes[c], (a + b + c) % 2 ? 0.0f : 0.75f);
    check_shape(0, 0, 300, 257, 513, 1.0f);   /* more than one block of each kind */
    check_relu();
    scalar = gflops(MLP_ISA_SCALAR);
    simd = gflops(MLP_ISA_WASM128);
    printf("wasm128 GEMM 256^3: scalar %.2f GFLOP/s, wasm128 %.2f GFLOP/s (%.1fx)\n", scalar, simd, simd / scalar);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
