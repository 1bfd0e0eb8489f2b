/* show_weights - the first layer's weight vectors of a model as a grid of
   images (28x28 for MNIST), one per hidden unit, each normalised on its own
   and drawn in diverging colours: blue negative, white zero, red positive.
   For a 784-10 model these are the ten class templates.

   cc -O2 -o show_weights tools/show_weights.c -lm      (stb_image_write: libstb-dev)
   show_weights [--max N] [--zoom Z] MODEL.mlp OUT.png */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_image_write_impl.h"
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: show_weights [--max N] [--zoom Z] MODEL.mlp OUT.png\n"
               "  --max N    draw at most N units (default 100)\n"
               "  --zoom Z   pixels per weight, 1..16 (default 3)\n");
}

/* diverging colour for v in [-1, 1] */
static void colour(float v, unsigned char *rgb)
{
    float a = v < 0 ? -v : v;
    unsigned char fade = (unsigned char)(255.0f * (1.0f - (a > 1 ? 1 : a)));
    rgb[0] = v < 0 ? fade : 255; rgb[1] = fade; rgb[2] = v < 0 ? 255 : fade;
}

int main(int argc, char **argv)
{
    int max_units = 100, zoom = 3, a = 1, units, cols, rows, w, h, side_w, side_h, u, x, y, rc;
    unsigned char *img;
    mlp_net *net;
    mlp_input input;
    mlp_mat W;
    for (; a < argc && !strncmp(argv[a], "--", 2); a++) {
        if (!strcmp(argv[a], "--help")) { usage(stdout); return 0; }
        if (a + 1 >= argc) { usage(stderr); return 2; }
        if (!strcmp(argv[a], "--max")) max_units = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--zoom")) zoom = atoi(argv[++a]);
        else { fprintf(stderr, "show_weights: unknown option %s\n", argv[a]); return 2; }
    }
    if (argc - a != 2 || max_units < 1 || zoom < 1 || zoom > 16) { usage(stderr); return 2; }
    if (!(net = mlp_load(argv[a]))) { fprintf(stderr, "show_weights: %s\n", mlp_error()); return 1; }
    input = mlp_get_input(net);
    if (!input.image_w) { fprintf(stderr, "show_weights: %s: the model's input is not an image\n", argv[a]); mlp_free(net); return 1; }
    mlp_dense_weights(net, 0, &W, NULL); /* W: n_in x n_out, column u = unit u's filter */
    side_w = input.image_w; side_h = input.image_h;
    units = W.cols < max_units ? W.cols : max_units;
    cols = (int)ceil(sqrt((double)units));
    rows = (units + cols - 1) / cols;
    w = cols * (side_w * zoom + 2) + 2;
    h = rows * (side_h * zoom + 2) + 2;
    img = (unsigned char *)malloc((size_t)w * h * 3);
    memset(img, 64, (size_t)w * h * 3); /* dark grey frame between tiles */
    for (u = 0; u < units; u++) {
        float peak = 1e-12f;
        int ox = 2 + (u % cols) * (side_w * zoom + 2), oy = 2 + (u / cols) * (side_h * zoom + 2);
        for (x = 0; x < W.rows; x++) peak = fmaxf(peak, fabsf(mlp_mat_row(W, x)[u])); /* column u */
        for (y = 0; y < side_h * zoom; y++)
            for (x = 0; x < side_w * zoom; x++)
                colour(mlp_mat_row(W, (y / zoom) * side_w + x / zoom)[u] / peak,
                       img + ((size_t)(oy + y) * w + ox + x) * 3);
    }
    rc = stbi_write_png(argv[a + 1], w, h, 3, img, w * 3) ? 0 : 1;
    if (rc) fprintf(stderr, "show_weights: cannot write %s\n", argv[a + 1]);
    else printf("show_weights: %d units of %s drawn in %s (%dx%d)\n", units, argv[a], argv[a + 1], w, h);
    free(img);
    mlp_free(net);
    return rc;
}
