/* Prints every kernel table mlp.h can choose on this machine: for each
   instruction set the CPU supports, which function fills each entry, found
   by comparing the entry with every kernel function by address. `make test`
   builds this twice, plainly and with -march=native, and the two outputs
   must be the same: a program gets the same kernels whatever -march it was
   compiled with. Exits 1 if an entry holds a function this list lacks. */
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#include <stdio.h>

typedef void (*any_fn)(void);
typedef struct named { any_fn fn; const char *name; } named;
#define NAMED(f) {(any_fn)f, #f}

static const named kernels[] = {
    NAMED(mlp__relu_forward_scalar), NAMED(mlp__relu_backward_scalar),
    NAMED(mlp__sgd_scalar), NAMED(mlp__nesterov_scalar), NAMED(mlp__adam_scalar),
    NAMED(mlp__gaussian_blur_scalar),
    NAMED(mlp__bn_moments_scalar), NAMED(mlp__bn_apply_scalar), NAMED(mlp__bn_backward_scalar),
    NAMED(mlp__add_rows_scalar),
#if defined(MLP__X86_64)
    NAMED(mlp__micro_sse2), NAMED(mlp__micro_avx2), NAMED(mlp__micro_avx512), NAMED(mlp__micro_avx512_narrow),
    NAMED(mlp__micro_avx512_a), NAMED(mlp__micro_avx512_at), NAMED(mlp__micro_avx512_b), NAMED(mlp__micro_avx512_narrow_a), NAMED(mlp__micro_avx512_narrow_at),
    NAMED(mlp__pack_b_cols_avx512),
    NAMED(mlp__gemv_avx512), NAMED(mlp__narrow_avx512), NAMED(mlp__narrow_ta_avx512),
    NAMED(mlp__micro_avx2_a), NAMED(mlp__micro_avx2_at), NAMED(mlp__micro_avx2_b), NAMED(mlp__pack_b_cols_avx2), NAMED(mlp__gemv_avx2), NAMED(mlp__narrow_avx2),
    NAMED(mlp__relu_forward_sse2), NAMED(mlp__relu_backward_sse2),
    NAMED(mlp__relu_forward_avx512), NAMED(mlp__relu_backward_avx512),
    NAMED(mlp__sgd_avx2), NAMED(mlp__sgd_avx512), NAMED(mlp__nesterov_avx512), NAMED(mlp__adam_avx512),
    NAMED(mlp__gaussian_blur_avx512),
    NAMED(mlp__bn_moments_avx512), NAMED(mlp__bn_apply_avx512), NAMED(mlp__bn_backward_avx512),
    NAMED(mlp__add_rows_sse2), NAMED(mlp__add_rows_avx512),
#endif
#if defined(MLP__NEON)
    NAMED(mlp__micro_neon), NAMED(mlp__relu_forward_neon), NAMED(mlp__relu_backward_neon),
#endif
};

static int unknown;

static const char *name_of(any_fn fn)
{
    size_t i;
    if (!fn) return "-";
    for (i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (kernels[i].fn == fn) return kernels[i].name;
    unknown = 1;
    return "? (not in tests/kernel_table.c's list)";
}

static void print_micro(const char *isa, const char *entry, const mlp__kernel *m)
{
    if (!m) { printf("%-7s %-13s -\n", isa, entry); return; }
    printf("%-7s %-13s %s %dx%d, packing B^T %s, A in place %s / %s, B in place %s\n", isa, entry, name_of((any_fn)m->micro),
           m->mr, m->nr, name_of((any_fn)m->pack_b_cols), name_of((any_fn)m->micro_a),
           name_of((any_fn)m->micro_at), name_of((any_fn)m->micro_b));
}

#define ENTRY(e) printf("%-7s %-13s %s\n", isa, #e, name_of((any_fn)k->e))

int main(void)
{
    int i;
    printf("best    %s\n", mlp_isa_name(mlp_isa_best()));
    for (i = MLP_ISA_SCALAR; i <= MLP_ISA_WASM128; i++) {
        const char *isa = mlp_isa_name((mlp_isa)i);
        const mlp__kernels *k;
        if (!mlp_isa_supported((mlp_isa)i)) continue;
        k = mlp__kernels_for((mlp_isa)i);
        if (k->isa != (mlp_isa)i) { printf("%s: the table says it is %s\n", isa, mlp_isa_name(k->isa)); return 1; }
        print_micro(isa, "gemm", k->gemm);
        print_micro(isa, "gemm_narrow", k->gemm_narrow);
        ENTRY(gemv); ENTRY(narrow); ENTRY(narrow_ta);
        ENTRY(relu_forward); ENTRY(relu_backward);
        ENTRY(sgd); ENTRY(nesterov); ENTRY(adam); ENTRY(blur);
        ENTRY(bn_moments); ENTRY(bn_apply); ENTRY(bn_backward); ENTRY(add_rows);
    }
    return unknown;
}
