/* mnist_centre - prints the mean centre of mass of the digits in an IDX image
   file (pixel centres at integer coordinates), the figure mlp.h's digit
   preprocessing aligns user images to.

   cc -O2 -o mnist_centre tools/mnist_centre.c -lm
   ./mnist_centre data/mnist/train-images-idx3-ubyte */
#include <stdio.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

int main(int argc, char **argv)
{
    mlp_idx idx;
    double sx = 0, sy = 0;
    size_t i, w, h, n;
    int x, y;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: mnist_centre IMAGES.idx\n");
        return 2;
    }
    if (mlp_idx_load(&idx, argv[1]) != 0) { fprintf(stderr, "mnist_centre: %s\n", mlp_error()); return 1; }
    if (idx.ndims != 3) { fprintf(stderr, "mnist_centre: %s: need n x h x w images\n", argv[1]); mlp_idx_free(&idx); return 1; }
    n = idx.dims[0]; h = idx.dims[1]; w = idx.dims[2];
    for (i = 0; i < n; i++) {
        const float *img = idx.data + i * w * h;
        double m = 0, mx = 0, my = 0;
        for (y = 0; y < (int)h; y++)
            for (x = 0; x < (int)w; x++) {
                double v = img[y * w + x];
                m += v; mx += v * x; my += v * y;
            }
        if (m > 0) { sx += mx / m; sy += my / m; }
    }
    printf("mean centre of mass over %lu images: x %.3f y %.3f\n", (unsigned long)n, sx / n, sy / n);
    mlp_idx_free(&idx);
    return 0;
}
