/* export_run.c - an exported model on its own (no mlp.h): the other side of
   `make test-export` (tests/test_export.sh). Built once per exported header:

     cc -std=c99 -DEXPORTED='"DIR/NAME.h"' -DNAME=NAME -DUPPER=NAME_IN_CAPITALS tests/export_run.c -lm

   export_run PREFIX reads PREFIX.in (raw inputs) and PREFIX.ref (mlp.h's
   mlp_predict on them, from tests/export_gen.c) and checks that NAME_predict
   picks the same class for every row and gives every output within 1e-5;
   it prints the largest difference. Exit 0 when all agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include EXPORTED

#define GLUE(a, b) a##b
#define JOIN(a, b) GLUE(a, b)
#define PREDICT JOIN(NAME, _predict)

static float *read_floats(const char *prefix, const char *ext, int *rows, int *width)
{
    char path[512];
    int head[2];
    float *v = NULL;
    FILE *f;
    snprintf(path, sizeof path, "%s%s", prefix, ext);
    if (!(f = fopen(path, "rb")) || fread(head, sizeof head, 1, f) != 1 || head[0] < 1 || head[1] < 1 ||
        !(v = (float *)malloc(sizeof(float) * (size_t)head[0] * (size_t)head[1])) ||
        fread(v, sizeof(float), (size_t)head[0] * (size_t)head[1], f) != (size_t)head[0] * (size_t)head[1]) {
        fprintf(stderr, "export_run: cannot read %s\n", path);
        if (f) fclose(f);
        free(v);
        return NULL;
    }
    fclose(f);
    *rows = head[0]; *width = head[1];
    return v;
}

static int argmax(const float *v, int n)
{
    int j, best = 0;
    for (j = 1; j < n; j++) if (v[j] > v[best]) best = j;
    return best;
}

int main(int argc, char **argv)
{
    int rows, n_in, ref_rows, w, i, j, wrong = 0;
    float *raw, *ref, probs[4096];
    double worst = 0.0;
    if (argc != 2) { fprintf(stderr, "usage: export_run PREFIX\n"); return 2; }
    if (!(raw = read_floats(argv[1], ".in", &rows, &n_in)) || !(ref = read_floats(argv[1], ".ref", &ref_rows, &w))) return 1;
    if (ref_rows != rows || n_in != JOIN(UPPER, _INPUTS) || w != JOIN(UPPER, _OUTPUTS) || w > 4096) {
        fprintf(stderr, "export_run: %d x %d inputs and %d x %d outputs for a %d-input, %d-output model\n",
                rows, n_in, ref_rows, w, JOIN(UPPER, _INPUTS), JOIN(UPPER, _OUTPUTS));
        return 1;
    }
    for (i = 0; i < rows; i++) {
        const float *want = ref + (size_t)i * w;
        int got = PREDICT(raw + (size_t)i * n_in, probs), got_bare = PREDICT(raw + (size_t)i * n_in, NULL);
        if (got != argmax(want, w) || got_bare != got) {
            if (wrong++ < 5) fprintf(stderr, "export_run: row %d: class %d (without probs %d), mlp_predict's %d\n", i, got, got_bare, argmax(want, w));
        }
        for (j = 0; j < w; j++) {
            double d = fabs((double)probs[j] - (double)want[j]);
            if (!(d <= worst)) worst = d; /* NaN counts as worst */
        }
    }
    printf("%s: %d rows, %d classes differ, largest output difference %.3g\n", argv[1], rows, wrong, worst);
    free(raw); free(ref);
    return wrong || !(worst <= 1e-5);
}
