/* idx2png - write the images of an IDX file as PNG files, the label in each
   file's name: OUTDIR/00042-label7.png.

   cc -O2 -o idx2png tools/idx2png.c -lm      (stb_image_write: libstb-dev)
   idx2png --labels t10k-labels-idx1-ubyte --first 0 --count 100 \
           --invert --scale 5 t10k-images-idx3-ubyte out/ */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_image_write_impl.h"

#define MLP_IMPLEMENTATION
#include "../mlp.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: idx2png [options] IMAGES.idx OUTDIR\n"
        "  --labels FILE   IDX labels: put each label in the file name\n"
        "  --first N       first image to write (default 0)\n"
        "  --count N       how many images (default all)\n"
        "  --invert        dark ink on white, like a drawing (MNIST is white on black)\n"
        "  --scale S       enlarge S times, 1..64, bilinear (default 1)\n"
        "Images must be unsigned bytes, n x height x width. OUTDIR must exist.\n");
}

static long number(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < lo || v > hi) {
        fprintf(stderr, "idx2png: %s %s: expected %ld..%ld\n", flag, s, lo, hi);
        exit(2);
    }
    return v;
}

/* bilinear enlargement of a w x h byte image by s */
static void enlarge(unsigned char *dst, const float *src, int w, int h, int s, int invert)
{
    int x, y;
    for (y = 0; y < h * s; y++)
        for (x = 0; x < w * s; x++) {
            float fx = (x + 0.5f) / s - 0.5f, fy = (y + 0.5f) / s - 0.5f, v;
            int x0, y0, x1, y1;
            if (fx < 0) fx = 0;
            if (fy < 0) fy = 0;
            if (fx > w - 1) fx = (float)(w - 1);
            if (fy > h - 1) fy = (float)(h - 1);
            x0 = (int)fx; y0 = (int)fy; x1 = x0 + 1 < w ? x0 + 1 : x0; y1 = y0 + 1 < h ? y0 + 1 : y0;
            fx -= x0; fy -= y0;
            v = (1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]);
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            dst[y * w * s + x] = (unsigned char)(invert ? 255.5f - v : v + 0.5f);
        }
}

int main(int argc, char **argv)
{
    const char *labels_path = NULL;
    long first = 0, count = -1, scale = 1, i;
    int invert = 0, a, rc = 0;
    mlp_idx images, labels;
    unsigned char *out;
    int w, h;
    for (a = 1; a < argc && !strncmp(argv[a], "--", 2); a++) {
        if (!strcmp(argv[a], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[a], "--invert")) { invert = 1; continue; }
        if (a + 1 >= argc) { usage(stderr); return 2; }
        if (!strcmp(argv[a], "--labels")) labels_path = argv[++a];
        else if (!strcmp(argv[a], "--first")) first = number(argv[a], argv[a + 1], 0, 1L << 30), a++;
        else if (!strcmp(argv[a], "--count")) count = number(argv[a], argv[a + 1], 1, 1L << 30), a++;
        else if (!strcmp(argv[a], "--scale")) scale = number(argv[a], argv[a + 1], 1, 64), a++;
        else { fprintf(stderr, "idx2png: unknown option %s\n", argv[a]); return 2; }
    }
    if (argc - a != 2) { usage(stderr); return 2; }
    if (mlp_idx_load(&images, argv[a]) != 0) { fprintf(stderr, "idx2png: %s\n", mlp_error()); return 1; }
    if (images.type != MLP_IDX_U8 || images.ndims != 3) {
        fprintf(stderr, "idx2png: %s: need unsigned-byte images, n x height x width\n", argv[a]);
        mlp_idx_free(&images);
        return 1;
    }
    memset(&labels, 0, sizeof labels);
    if (labels_path && mlp_idx_load(&labels, labels_path) != 0) { fprintf(stderr, "idx2png: %s\n", mlp_error()); mlp_idx_free(&images); return 1; }
    if (labels_path && (labels.ndims != 1 || labels.dims[0] != images.dims[0])) {
        fprintf(stderr, "idx2png: %s: does not hold one label per image\n", labels_path);
        rc = 1;
    }
    h = (int)images.dims[1]; w = (int)images.dims[2];
    if (count < 0) count = (long)images.dims[0] - first;
    if (first + count > (long)images.dims[0]) { fprintf(stderr, "idx2png: only %lu images\n", (unsigned long)images.dims[0]); rc = 1; }
    out = (unsigned char *)malloc((size_t)w * h * scale * scale);
    for (i = first; !rc && out && i < first + count; i++) {
        char path[4096];
        if (labels_path) snprintf(path, sizeof path, "%s/%05ld-label%d.png", argv[a + 1], i, (int)labels.data[i]);
        else snprintf(path, sizeof path, "%s/%05ld.png", argv[a + 1], i);
        enlarge(out, images.data + (size_t)i * w * h, w, h, (int)scale, invert);
        if (!stbi_write_png(path, w * (int)scale, h * (int)scale, 1, out, w * (int)scale)) {
            fprintf(stderr, "idx2png: cannot write %s\n", path);
            rc = 1;
        }
    }
    free(out);
    mlp_idx_free(&images);
    mlp_idx_free(&labels);
    return rc;
}
