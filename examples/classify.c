/* classify.c - read handwritten or printed digits from PNG files with a model
   trained by train_mnist.

   cc -O2 -o classify examples/classify.c -lm
   ./classify model.mlp my_digit.png            ->  my_digit.png: 7 (99.3%)
   ./classify --number model.mlp house.png      ->  house.png: 2026 (per digit 99.1% 97.3% 99.8% 98.0%)
   ./classify --stages out model.mlp seven.png  ->  seven.png: 7 (99.3%), and out/seven-01-picture.pgm,
                                                    out/seven-02-denoised.pgm, ... out/seven-06-input.pgm

   PNGs are decoded by stb_image (Debian: apt-get install libstb-dev); every
   size, bit depth and colour type is accepted, and mlp_digit_preprocess turns
   the picture into the 28 x 28 input MNIST digits look like. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_png.h"

#define MLP_IMPLEMENTATION
#include "../mlp.h"

typedef struct options { int top, json, raw, show, number; const char *stages; } options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: classify [options] MODEL.mlp IMAGE.png...\n"
        "  --top K    also list the K most likely digits with their probabilities\n"
        "  --json     one JSON object per image: file, digit, confidence, probs\n"
        "  --raw      the image already is a 28x28 MNIST-style input (bright ink on\n"
        "             black): no preprocessing\n"
        "  --number   the picture holds a whole number: read its digits left to right\n"
        "             (--json adds each digit's box: x, y, width, height in pixels)\n"
        "  --show     print every preprocessing stage and the 28x28 input the network\n"
        "             sees, as ASCII art, to see why a digit was misread\n"
        "  --stages DIR  write each stage --show prints as a 16-bit PGM image file\n"
        "             (P5, maxval 65535, sample = the stage's value 0..1 x 65535:\n"
        "             gray levels for picture and denoised, 0 paper .. 1 ink after\n"
        "             them) to inspect the preprocessing at full precision, named\n"
        "             DIR/NAME-K-STAGE.pgm: NAME the image's file name without its\n"
        "             directory and extension, K the stage's number (01, 02, ...),\n"
        "             STAGE its title up to any \"(\" with spaces as dashes (picture,\n"
        "             denoised, background, ink, digit, strokes, input). DIR must\n"
        "             exist; files of the same names are replaced\n"
        "Pictures with no digit, only specks, or a digit cut by the edge are refused\n"
        "with a message rather than guessed.\n"
        "Exit status: 0 all classified, 1 some file failed, 2 bad usage.\n");
}

/* Why stb_image refused a file's header (its own reason is overwritten by
   "unknown image type" once every enabled format has declined). */
static const char *png_header_problem(const unsigned char *h, size_t size)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned long width, height;
    if (size < 8 || memcmp(h, signature, 8) != 0) return "not a PNG file";
    if (size < 24 || memcmp(h + 12, "IHDR", 4) != 0) return "corrupt PNG (no IHDR header)";
    width = (unsigned long)h[16] << 24 | (unsigned long)h[17] << 16 | (unsigned long)h[18] << 8 | h[19];
    height = (unsigned long)h[20] << 24 | (unsigned long)h[21] << 16 | (unsigned long)h[22] << 8 | h[23];
    if (width > STBI_MAX_DIMENSIONS || height > STBI_MAX_DIMENSIONS) return "too large (over 8192 pixels on a side)";
    return "corrupt PNG header";
}

#define MAX_PNG_BYTES ((size_t)1 << 30) /* stb_image takes an int size */

/* The whole file at path (NULL with *why set), read in growing blocks (a
   pipe has no size to ask for): its chunks are checked before stb_image
   sees them. */
static unsigned char *read_file(const char *path, size_t *size, const char **why)
{
    size_t cap = 1 << 16, n = 0, got;
    unsigned char *data = NULL, *grown;
    FILE *f = fopen(path, "rb");
    if (!f) { *why = "cannot open the file"; return NULL; }
    *why = NULL;
    while (!*why) {
        if (!(grown = (unsigned char *)realloc(data, cap))) { *why = "out of memory"; break; }
        data = grown;
        n += got = fread(data + n, 1, cap - n, f);
        if (n < cap) { if (ferror(f)) *why = "cannot read the file (a directory?)"; break; }
        if (cap >= MAX_PNG_BYTES) *why = "too large a file (over 1 GiB)";
        cap *= 2;
    }
    fclose(f);
    if (*why) { free(data); return NULL; }
    *size = n;
    return data;
}

/* Decodes path as gray + alpha floats in 0..255 (2 channels; 8-bit values
   exactly, so --raw input matches the IDX bytes bit for bit); NULL on
   failure with the reason in *why. */
static float *load_png(const char *path, int *w, int *h, const char **why)
{
    int n, x, y, i;
    float *px;
    size_t size;
    unsigned char *png = read_file(path, &size, why);
    if (!png) return NULL;
    if (!stbi_info_from_memory(png, (int)size, w, h, &n)) {
        *why = png_header_problem(png, size);
        free(png);
        return NULL;
    }
    if ((*why = png_chunk_problem(png, size)) != NULL) { free(png); return NULL; }
    png_drop_empty_idat(png, &size);
    px = (float *)malloc((size_t)*w * (size_t)*h * 2 * sizeof(float));
    if (!px) { free(png); *why = "out of memory"; return NULL; }
    if (stbi_is_16_bit_from_memory(png, (int)size)) {
        stbi_us *d = stbi_load_16_from_memory(png, (int)size, &x, &y, &n, 2);
        if (d) for (i = 0; i < x * y * 2; i++) px[i] = d[i] / 257.0f;
        if (!d) { free(px); px = NULL; }
        stbi_image_free(d);
    } else {
        stbi_uc *d = stbi_load_from_memory(png, (int)size, &x, &y, &n, 2);
        if (d) for (i = 0; i < x * y * 2; i++) px[i] = (float)d[i];
        if (!d) { free(px); px = NULL; }
        stbi_image_free(d);
    }
    free(png);
    if (!px) {
        static char reason[128];
        snprintf(reason, sizeof reason, "corrupt or truncated PNG (stb_image: %s)", stbi_failure_reason());
        *why = reason;
    }
    return px;
}

/* ASCII art of a stage image (0 paper .. 1 ink), at most 64 characters wide */
static void show_stage(void *user, const char *stage, const float *img, int w, int h)
{
    static const char ramp[] = " .:-=+*#%@";
    int step = (w + 31) / 32, x, y;
    (void)user;
    printf("-- %s, %dx%d%s\n", stage, w, h, step > 1 ? " (shrunk)" : "");
    for (y = 0; y < h; y += 2 * step) { /* one line per two pixel rows ... */
        for (x = 0; x < w; x += step) {
            float v = 0.0f;
            int i, j, n = 0;
            char c;
            for (j = y; j < y + 2 * step && j < h; j++)
                for (i = x; i < x + step && i < w; i++) { v += img[j * w + i]; n++; }
            v = v / (float)n * 10.0f;
            c = ramp[v < 0.0f ? 0 : v > 9.0f ? 9 : (int)v];
            putchar(c); /* ... and two characters per pixel column: about square */
            putchar(c);
        }
        putchar('\n');
    }
}

/* Where the stages of one picture go: --show prints them, --stages writes
   each to DIR/NAME-K-STAGE.pgm. path holds "DIR/NAME-" and room for the rest. */
typedef struct stage_sink {
    const options *o;
    char *path;
    size_t prefix;   /* strlen("DIR/NAME-") */
    int k;           /* stages seen so far */
    int failed;      /* a stage file could not be written (reported once) */
} stage_sink;

#define STAGE_NAME_MAX 40

/* Starts the stages of picture: the sink's path is DIR/NAME- with NAME the
   file name without directory and extension; 0 when out of memory */
static int stage_begin(stage_sink *s, const char *picture)
{
    const char *name = strrchr(picture, '/'), *dot;
    size_t dir_len, name_len;
    s->k = 0;
    s->failed = 0;
    if (!s->o->stages) return 1;
    name = name ? name + 1 : picture;
    dot = strrchr(name, '.');
    name_len = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    dir_len = strlen(s->o->stages);
    free(s->path);
    s->path = (char *)malloc(dir_len + name_len + 16 + STAGE_NAME_MAX + 8);
    if (!s->path) return 0;
    memcpy(s->path, s->o->stages, dir_len);
    s->path[dir_len] = '/';
    memcpy(s->path + dir_len + 1, name, name_len);
    s->path[dir_len + 1 + name_len] = '-';
    s->prefix = dir_len + name_len + 2;
    return 1;
}

/* One stage as a 16-bit binary PGM: "P5 w h 65535", then w h big-endian
   samples, value 0..1 -> 0..65535 (rounded; outside 0..1 clamped, NaN 0) */
static int write_pgm16(const char *path, const float *img, int w, int h)
{
    FILE *f = fopen(path, "wb");
    int i, ok;
    if (!f) return 0;
    fprintf(f, "P5\n%d %d\n65535\n", w, h);
    for (i = 0; i < w * h; i++) {
        float v = img[i];
        unsigned q = v > 0.0f ? (v < 1.0f ? (unsigned)((double)v * 65535.0 + 0.5) : 65535u) : 0u;
        putc((int)(q >> 8), f);
        putc((int)(q & 255), f);
    }
    ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* The mlp_stage_fn of classify: --show's ASCII art and --stages' files */
static void on_stage(void *user, const char *stage, const float *img, int w, int h)
{
    stage_sink *s = (stage_sink *)user;
    char *p;
    int n;
    s->k++;
    if (s->o->show) show_stage(NULL, stage, img, w, h);
    if (!s->o->stages || !s->path) return;
    p = s->path + s->prefix;
    p += sprintf(p, "%02d-", s->k);
    for (n = 0; stage[n] && stage[n] != '(' && n < STAGE_NAME_MAX; n++) /* "ink (background divided out)" -> "ink" */
        *p++ = isalnum((unsigned char)stage[n]) ? stage[n] : '-';
    while (p[-1] == '-') p--;
    strcpy(p, ".pgm");
    if (!write_pgm16(s->path, img, w, h) && !s->failed) {
        fprintf(stderr, "classify: %s: cannot write the stage image (does the directory exist?)\n", s->path);
        s->failed = 1;
    }
}

/* The network's raw 0..255 input for one image file (up to max digits with
   --number); the number of digits, or -1 with *why set */
static int image_input(const char *path, const mlp_net *net, const options *o, float *raw,
                       mlp_digit_box *boxes, int max, stage_sink *sink, const char **why)
{
    int w, h, i, rc = 1;
    float *px = load_png(path, &w, &h, why);
    if (!px) return -1;
    if (o->raw) {
        if (w != mlp_get_input(net).image_w || h != mlp_get_input(net).image_h) { *why = "--raw needs an image exactly the model's input size"; rc = -1; }
        else for (i = 0; i < w * h; i++) raw[i] = px[2 * i];
        boxes[0].x = boxes[0].y = 0; boxes[0].w = w; boxes[0].h = h;
    } else {
        mlp_stage_fn show = o->show || o->stages ? on_stage : NULL;
        for (i = 0; i < w * h * 2; i++) px[i] /= 255.0f;
        rc = o->number ? mlp_number_preprocess(px, w, h, 2, raw, boxes, max, show, sink)
                       : mlp_digit_preprocess_ex(px, w, h, 2, raw, boxes, show, sink);
        if (rc < 0) *why = mlp_error();
        else if (!o->number) rc = 1;
    }
    free(px);
    return rc < 0 ? -1 : rc;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void report(const char *path, const float *p, int n, const options *o)
{
    int order[256] = {0}, i, j;
    for (i = 0; i < n; i++) order[i] = i;
    for (i = 1; i < n; i++) /* insertion sort by probability, most likely first */
        for (j = i; j > 0 && p[order[j]] > p[order[j - 1]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
    if (o->json) {
        printf("{\"file\":"); json_string(path);
        printf(",\"digit\":%d,\"confidence\":%.6g,\"probs\":[", order[0], p[order[0]]);
        for (i = 0; i < n; i++) printf("%s%.6g", i ? "," : "", p[i]);
        printf("]}\n");
        return;
    }
    printf("%s: %d (%.1f%%)", path, order[0], 100.0 * p[order[0]]);
    for (i = 1; i < o->top && i < n; i++) printf(", %d (%.1f%%)", order[i], 100.0 * p[order[i]]);
    printf("\n");
}

/* --number: the digits read, each with its probability and box */
static void report_number(const char *path, const float *p, int n_out, int n,
                          const mlp_digit_box *box, const options *o)
{
    int i, k, digit[MLP_MAX_DIGITS];
    for (k = 0; k < n; k++)
        for (digit[k] = 0, i = 1; i < n_out; i++) if (p[k * n_out + i] > p[k * n_out + digit[k]]) digit[k] = i;
    if (o->json) {
        printf("{\"file\":"); json_string(path);
        printf(",\"number\":\"");
        for (k = 0; k < n; k++) printf("%d", digit[k]);
        printf("\",\"digits\":[");
        for (k = 0; k < n; k++)
            printf("%s{\"digit\":%d,\"confidence\":%.6g,\"box\":[%d,%d,%d,%d]}", k ? "," : "", digit[k],
                   p[k * n_out + digit[k]], box[k].x, box[k].y, box[k].w, box[k].h);
        printf("]}\n");
        return;
    }
    printf("%s: ", path);
    for (k = 0; k < n; k++) printf("%d", digit[k]);
    printf(" (per digit");
    for (k = 0; k < n; k++) printf(" %.1f%%", 100.0 * p[k * n_out + digit[k]]);
    printf(")\n");
}

int main(int argc, char **argv)
{
    options o = {1, 0, 0, 0, 0, NULL};
    stage_sink sink = {NULL, NULL, 0, 0, 0};
    int i, failed = 0, n_args = 0, only_files = 0;
    char **args = (char **)malloc(sizeof(char *) * (size_t)argc); /* MODEL IMAGE... */
    mlp_mat raw = {0, 0, 0, NULL}, x = {0, 0, 0, NULL};
    mlp_digit_box *boxes;
    int per, max, have_memory;
    mlp_net *net;
    mlp_input input;
    for (i = 1; args && i < argc; i++) {  /* options may come anywhere; "--" ends them */
        if (only_files || strncmp(argv[i], "--", 2) != 0) args[n_args++] = argv[i];
        else if (!strcmp(argv[i], "--")) only_files = 1;
        else if (!strcmp(argv[i], "--help")) { usage(stdout); free(args); return 0; }
        else if (!strcmp(argv[i], "--json")) o.json = 1;
        else if (!strcmp(argv[i], "--raw")) o.raw = 1;
        else if (!strcmp(argv[i], "--show")) o.show = 1;
        else if (!strcmp(argv[i], "--number")) o.number = 1;
        else if (!strcmp(argv[i], "--stages") && i + 1 < argc) o.stages = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            char *end;
            long k = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || k < 1 || k > 256) { fprintf(stderr, "classify: --top %s: expected 1..256\n", argv[i]); free(args); return 2; }
            o.top = (int)k;
        } else { fprintf(stderr, "classify: unknown option %s (see --help)\n", argv[i]); free(args); return 2; }
    }
    if (n_args < 2) { usage(stderr); free(args); return 2; }
    i = 0;
    if (!(net = mlp_load(args[0]))) { fprintf(stderr, "classify: %s\n", mlp_error()); free(args); return 1; }
    input = mlp_get_input(net);
    if (!input.image_w || mlp_output_width(net) > 256) {
        fprintf(stderr, "classify: %s is not an image classifier (no image size recorded)\n", args[0]);
        mlp_free(net);
        free(args);
        return 1;
    }
    if (!o.raw && (input.image_w != MLP_DIGIT_SIDE || input.image_h != MLP_DIGIT_SIDE)) {
        fprintf(stderr, "classify: %s takes %dx%d images; without --raw, images are made 28x28\n", args[0], input.image_w, input.image_h);
        mlp_free(net);
        free(args);
        return 1;
    }
    per = mlp_input_width(net);
    max = o.number && !o.raw ? MLP_MAX_DIGITS : 1;
    /* one row per digit: the picture's 28 x 28 raw values, then the network's input */
    have_memory = mlp_mat_create(&raw, max, per) == 0 && mlp_mat_create(&x, max, per) == 0;
    boxes = (mlp_digit_box *)malloc(sizeof(mlp_digit_box) * (size_t)max);
    sink.o = &o;
    for (i = 1; have_memory && boxes && i < n_args; i++) {
        const char *why = NULL;
        const float *p;
        int n = -1, k;
        if (stage_begin(&sink, args[i])) n = image_input(args[i], net, &o, raw.data, boxes, max, &sink, &why);
        else why = "out of memory";
        failed |= sink.failed;
        if (n < 0) {
            fprintf(stderr, "classify: %s: %s\n", args[i], why ? why : "unreadable");
            failed = 1;
            continue;
        }
        for (k = 0; k < n; k++) {
            if ((o.show || o.stages) && o.raw) { /* the network's input, 0..1 for the picture */
                int j;
                for (j = 0; j < per; j++) x.data[j] = mlp_mat_row(raw, k)[j] / 255.0f;
                on_stage(&sink, "what the network sees", x.data, input.image_w, input.image_h);
                failed |= sink.failed;
            }
            mlp_normalize_input(net, mlp_mat_row(raw, k), mlp_mat_row(x, k));
        }
        if (!(p = mlp_predict(net, x.data, n))) { fprintf(stderr, "classify: %s: %s\n", args[i], mlp_error()); failed = 1; continue; }
        if (o.number) report_number(args[i], p, mlp_output_width(net), n, boxes, &o);
        else report(args[i], p, mlp_output_width(net), &o);
    }
    if (!have_memory || !boxes) { fprintf(stderr, "classify: out of memory\n"); failed = 1; }
    free(sink.path);
    free(boxes);
    free(args);
    mlp_mat_free(&raw);
    mlp_mat_free(&x);
    mlp_free(net);
    return failed;
}
