/* show_errors - a montage of the test digits a model gets wrong, each
   annotated "true>predicted" in a tiny built-in pixel font.

   cc -O2 -o show_errors tools/show_errors.c -lm      (stb_image_write: libstb-dev)
   show_errors [--data DIR] [--max N] MODEL.mlp OUT.png */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_image_write_impl.h"
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define ZOOM 2
#define TILE (28 * ZOOM)
#define LABEL 14                 /* height of the text strip under a digit */
#define COLS 16

/* 3 x 5 glyphs for 0-9 and '>', one row per 3-bit number, top row first */
static const unsigned char glyphs[11][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 2, 2}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {4, 2, 1, 2, 4}};

static void glyph(unsigned char *img, int w, int x0, int y0, int g, unsigned char r, unsigned char gr, unsigned char b)
{
    int x, y, s = 2; /* 2x scale: 6 x 10 pixels */
    for (y = 0; y < 5 * s; y++)
        for (x = 0; x < 3 * s; x++)
            if (glyphs[g][y / s] & (4 >> (x / s))) {
                unsigned char *p = img + ((size_t)(y0 + y) * w + x0 + x) * 3;
                p[0] = r; p[1] = gr; p[2] = b;
            }
}

int main(int argc, char **argv)
{
    const char *data = "data/mnist";
    int max = 160, a = 1, i, n = 0, w, h, k;
    char ip[4096], lp[4096];
    mlp_dataset test;
    mlp_net *net;
    unsigned char *img;
    int *wrong, *pred;
    for (; a < argc && !strncmp(argv[a], "--", 2); a++) {
        if (!strcmp(argv[a], "--help")) { printf("usage: show_errors [--data DIR] [--max N] MODEL.mlp OUT.png\n"); return 0; }
        if (a + 1 >= argc) break;
        if (!strcmp(argv[a], "--data")) data = argv[++a];
        else if (!strcmp(argv[a], "--max")) max = atoi(argv[++a]);
        else { fprintf(stderr, "show_errors: unknown option %s\n", argv[a]); return 2; }
    }
    if (argc - a != 2 || max < 1) { fprintf(stderr, "usage: show_errors [--data DIR] [--max N] MODEL.mlp OUT.png\n"); return 2; }
    if (!(net = mlp_load(argv[a]))) { fprintf(stderr, "show_errors: %s\n", mlp_error()); return 1; }
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", data);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", data);
    if (mlp_dataset_load(&test, ip, lp) != 0 || mlp_dataset_check(net, &test) != 0 || test.dim != 784) {
        fprintf(stderr, "show_errors: %s\n", test.dim != 784 && !*mlp_error() ? "need 28x28 images" : mlp_error());
        mlp_free(net);
        return 1;
    }
    wrong = (int *)malloc(sizeof(int) * (size_t)test.n);
    pred = (int *)malloc(sizeof(int) * (size_t)test.n);
    for (i = 0; i < test.n && n < max; i++) {
        const float *p = mlp_predict(net, test.x + (size_t)i * 784, 1);
        int best = 0;
        for (k = 1; k < mlp_output_width(net); k++) if (p[k] > p[best]) best = k;
        if (best != test.y[i]) { wrong[n] = i; pred[n++] = best; }
    }
    w = COLS * (TILE + 2) + 2;
    h = ((n + COLS - 1) / COLS) * (TILE + LABEL + 2) + 2;
    if (n == 0) h = TILE; /* a blank picture: nothing was wrong */
    img = (unsigned char *)calloc((size_t)w * h * 3, 1);
    for (k = 0; k < n; k++) {
        int ox = 2 + (k % COLS) * (TILE + 2), oy = 2 + (k / COLS) * (TILE + LABEL + 2), x, y;
        const float *d = test.x + (size_t)wrong[k] * 784;
        for (y = 0; y < TILE; y++)
            for (x = 0; x < TILE; x++) {
                unsigned char v = (unsigned char)(255.0f * d[(y / ZOOM) * 28 + x / ZOOM] + 0.5f);
                unsigned char *p = img + ((size_t)(oy + y) * w + ox + x) * 3;
                p[0] = p[1] = p[2] = v;
            }
        glyph(img, w, ox + 14, oy + TILE + 2, test.y[wrong[k]], 120, 230, 120); /* true, green */
        glyph(img, w, ox + 24, oy + TILE + 2, 10, 200, 200, 200);              /* > */
        glyph(img, w, ox + 34, oy + TILE + 2, pred[k], 250, 110, 110);         /* predicted, red */
    }
    k = stbi_write_png(argv[a + 1], w, h, 3, img, w * 3) ? 0 : 1;
    if (k) fprintf(stderr, "show_errors: cannot write %s\n", argv[a + 1]);
    else printf("show_errors: %d misclassified test digits (of the first %d) in %s\n", n, i, argv[a + 1]);
    free(img); free(wrong); free(pred);
    mlp_dataset_free(&test);
    mlp_free(net);
    return k;
}
