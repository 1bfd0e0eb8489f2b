/* model_diff - how far apart two model files' weights are.

   model_diff A.mlp B.mlp TOLERANCE
   Prints the largest |a - b| over every weight and bias, and exits 0 when
   the two have the same layers and that difference is at most TOLERANCE,
   1 otherwise. The platform tests use it to compare a model trained on one
   system with the same training run on another. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

/* largest |a - b| over two views of the same shape */
static double mat_diff(mlp_mat a, mlp_mat b)
{
    double worst = 0;
    int i, j;
    for (i = 0; i < a.rows; i++)
        for (j = 0; j < a.cols; j++) {
            double d = fabs((double)a.data[(size_t)i * a.stride + j] - (double)b.data[(size_t)i * b.stride + j]);
            if (d > worst || d != d) worst = d;
        }
    return worst;
}

int main(int argc, char **argv)
{
    mlp_net *a, *b;
    double worst = 0, tolerance;
    int layer, rc = 0;
    if (argc != 4) { fprintf(stderr, "usage: model_diff A.mlp B.mlp TOLERANCE\n"); return 2; }
    tolerance = atof(argv[3]);
    if (!(a = mlp_load(argv[1]))) { fprintf(stderr, "model_diff: %s\n", mlp_error()); return 2; }
    if (!(b = mlp_load(argv[2]))) { fprintf(stderr, "model_diff: %s\n", mlp_error()); mlp_free(a); return 2; }
    if (mlp_dense_count(a) != mlp_dense_count(b) || mlp_param_count(a) != mlp_param_count(b)) {
        fprintf(stderr, "model_diff: %s and %s have different layers\n", argv[1], argv[2]);
        rc = 1;
    }
    for (layer = 0; !rc && layer < mlp_dense_count(a); layer++) {
        mlp_mat wa, ba, wb, bb;
        double d;
        if (mlp_dense_weights(a, layer, &wa, &ba) != MLP_OK || mlp_dense_weights(b, layer, &wb, &bb) != MLP_OK ||
            wa.rows != wb.rows || wa.cols != wb.cols) {
            fprintf(stderr, "model_diff: layer %d differs in shape\n", layer);
            rc = 1;
            break;
        }
        d = mat_diff(wa, wb);
        if (mat_diff(ba, bb) > d) d = mat_diff(ba, bb);
        if (d > worst || d != d) worst = d;
    }
    if (!rc) {
        printf("largest weight difference %.3g (tolerance %.3g)\n", worst, tolerance);
        rc = worst <= tolerance ? 0 : 1;
    }
    mlp_free(a); mlp_free(b);
    return rc;
}
