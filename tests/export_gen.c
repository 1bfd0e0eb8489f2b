/* export_gen.c - the mlp.h side of `make test-export` (tests/test_export.sh).

   export_gen DIR
       networks of every layer kind and activation, with random weights,
       biases and batchnorm statistics, each as DIR/NAME.h (mlp_export_c)
       with DIR/NAME.in (random raw inputs) and DIR/NAME.ref (mlp_predict's
       outputs for them): the reference the exported header must match.
       Each also as DIR/NAME_int8.h (mlp_export_c_int8), whose reference
       is mlp_predict after mlp_quantize_int8.
   export_gen --model MODEL.mlp IMAGES.idx PREFIX
   export_gen --model-int8 MODEL.mlp IMAGES.idx PREFIX
       PREFIX.in (every image of an IDX file, raw pixels 0-255) and
       PREFIX.ref (MODEL's mlp_predict on them; its int8 rounding's).

   .in and .ref: int32 rows, int32 width, then rows x width floats (this
   machine's byte order: written and read here only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static int write_floats(const char *path, const float *v, int rows, int width)
{
    FILE *f = fopen(path, "wb");
    int32_t head[2];
    int ok;
    head[0] = rows; head[1] = width;
    if (!f) { fprintf(stderr, "export_gen: cannot write %s\n", path); return 1; }
    ok = fwrite(head, sizeof head, 1, f) == 1 && fwrite(v, sizeof(float), (size_t)rows * width, f) == (size_t)rows * width;
    if (fclose(f) != 0 || !ok) { fprintf(stderr, "export_gen: error writing %s\n", path); return 1; }
    return 0;
}

/* raw inputs and mlp_predict's answers for them (and PREFIX.names, one
   class name a line, when the network has names) */
static int write_case(mlp_net *net, const float *raw, int rows, const char *prefix)
{
    char path[512];
    int n_in = mlp_input_width(net), w = mlp_output_width(net), i;
    if (mlp_class_name(net, 0)) {
        FILE *f;
        snprintf(path, sizeof path, "%s.names", prefix);
        if (!(f = fopen(path, "w"))) return 1;
        for (i = 0; i < w; i++) fprintf(f, "%s\n", mlp_class_name(net, i));
        if (fclose(f) != 0) return 1;
    }
    float *x = (float *)malloc(sizeof(float) * (size_t)rows * n_in);
    const float *p;
    if (!x) return 1;
    for (i = 0; i < rows; i++) mlp_normalize_input(net, raw + (size_t)i * n_in, x + (size_t)i * n_in);
    p = mlp_predict(net, x, rows);
    free(x);
    if (!p) { fprintf(stderr, "export_gen: %s\n", mlp_error()); return 1; }
    snprintf(path, sizeof path, "%s.in", prefix);
    if (write_floats(path, raw, rows, n_in)) return 1;
    snprintf(path, sizeof path, "%s.ref", prefix);
    return write_floats(path, p, rows, w);
}

/* a network with nothing at its defaults: every parameter and statistic drawn */
static void randomise(mlp_net *net, mlp_rng *rng)
{
    int l, j;
    size_t i;
    for (i = 0; i < net->n_params; i++) net->params[i] = 1.5f * (mlp_rng_float(rng) - 0.5f);
    for (l = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_BATCHNORM) continue;
        for (j = 0; j < L->n_out; j++) {
            L->W[j] = 0.5f + mlp_rng_float(rng);
            L->run_mean[j] = mlp_rng_float(rng) - 0.5f;
            L->run_var[j] = 0.05f + 2.0f * mlp_rng_float(rng);
        }
    }
}

typedef struct gen_case {
    const char *name, *spec;
    mlp_act act;
    mlp_loss loss;
    int batchnorm;
    float dropout, scale, offset;
    int columns; /* per-column normalisation and class names, as train_csv's models have */
} gen_case;

/* random per-column scales (either sign) and offsets, and names that need
   escaping in C: a quote, a backslash, a question mark, UTF-8 */
static int add_columns_and_names(mlp_net *net, mlp_rng *rng)
{
    static const char *const names[] = {"setosa", "say \"hi\"", "back\\slash?\?=", "\303\274ber", "x", "y", "z", "w"};
    float scale[64], offset[64];
    int j;
    for (j = 0; j < mlp_input_width(net); j++) {
        scale[j] = (0.1f + 3.0f * mlp_rng_float(rng)) * (mlp_rng_float(rng) < 0.3f ? -1.0f : 1.0f);
        offset[j] = 4.0f * mlp_rng_float(rng) - 2.0f;
    }
    return mlp_set_input_columns(net, scale, offset) || mlp_set_class_names(net, names);
}

static int synthetic(const char *dir)
{
    static const gen_case cases[] = {
        {"relu_ce", "20-33-17-5", MLP_ACT_RELU, MLP_LOSS_CE, 0, 0.0f, 1.0f / 255.0f, 0.0f, 0},
        {"bn_dropout", "12-40-24-7", MLP_ACT_RELU, MLP_LOSS_CE, 1, 0.3f, 0.01f, -0.5f, 0},
        {"sigmoid_mse", "7-9-3", MLP_ACT_SIGMOID, MLP_LOSS_MSE, 0, 0.0f, 2.0f, -1.0f, 0},
        {"tanh_bn", "5-11-13-4", MLP_ACT_TANH, MLP_LOSS_CE, 1, 0.0f, 0.5f, 0.25f, 0},
        {"one_layer", "9-10", MLP_ACT_RELU, MLP_LOSS_CE, 0, 0.0f, 1.0f, 0.0f, 0},
        {"columns_names", "6-15-8", MLP_ACT_TANH, MLP_LOSS_CE, 0, 0.0f, 0.5f, 1.0f, 1},
        {"columns_bn_mse", "10-12-8", MLP_ACT_RELU, MLP_LOSS_MSE, 1, 0.2f, 1.0f, 0.0f, 1},
    };
    const int rows = 500;
    size_t c;
    int i;
    mlp_rng rng;
    mlp_rng_seed(&rng, 2026, 12);
    for (c = 0; c < sizeof cases / sizeof *cases; c++) {
        const gen_case *g = &cases[c];
        char path[512], name8[64];
        mlp_net *net = mlp_create_spec(g->spec, g->act, g->loss, 7 + c);
        mlp_input in;
        float *raw;
        int n_in, rc;
        if (!net || (g->batchnorm && mlp_add_batchnorm(net)) || (g->dropout > 0.0f && mlp_add_dropout(net, 0.0f, g->dropout)) ||
            (g->columns && add_columns_and_names(net, &rng))) {
            fprintf(stderr, "export_gen: %s\n", mlp_error());
            return 1;
        }
        in = mlp_get_input(net);
        in.scale = g->scale; in.offset = g->offset;
        mlp_set_input(net, &in);
        randomise(net, &rng);
        n_in = mlp_input_width(net);
        raw = (float *)malloc(sizeof(float) * (size_t)rows * n_in);
        if (!raw) return 1;
        for (i = 0; i < rows * n_in; i++) raw[i] = (mlp_rng_float(&rng) * 2.0f - 0.5f) / g->scale;
        snprintf(path, sizeof path, "%s/%s.h", dir, g->name);
        if (mlp_export_c(net, path, g->name) != 0) { fprintf(stderr, "export_gen: %s\n", mlp_error()); return 1; }
        snprintf(path, sizeof path, "%s/%s", dir, g->name);
        rc = write_case(net, raw, rows, path);
        snprintf(name8, sizeof name8, "%s_int8", g->name);
        snprintf(path, sizeof path, "%s/%s.h", dir, name8);
        if (!rc && (mlp_export_c_int8(net, path, name8) != 0)) {
            fprintf(stderr, "export_gen: %s\n", mlp_error());
            rc = 1;
        }
        snprintf(path, sizeof path, "%s/%s_int8", dir, g->name);
        if (!rc) rc = mlp_quantize_int8(net) != 0 || write_case(net, raw, rows, path);
        free(raw);
        mlp_free(net);
        if (rc) return 1;
    }
    return 0;
}

static int from_model(const char *model, const char *images, const char *prefix, int int8)
{
    mlp_net *net = mlp_load(model);
    mlp_idx idx;
    int rc;
    if (!net || (int8 && mlp_quantize_int8(net) != 0)) { fprintf(stderr, "export_gen: %s\n", mlp_error()); mlp_free(net); return 1; }
    if (mlp_idx_load(&idx, images) != 0) { fprintf(stderr, "export_gen: %s\n", mlp_error()); mlp_free(net); return 1; }
    if (idx.count / idx.dims[0] != (size_t)mlp_input_width(net)) {
        fprintf(stderr, "export_gen: %s has %lu values per row, %s takes %d\n", images,
                (unsigned long)(idx.count / idx.dims[0]), model, mlp_input_width(net));
        mlp_idx_free(&idx);
        mlp_free(net);
        return 1;
    }
    rc = write_case(net, idx.data, (int)idx.dims[0], prefix);
    mlp_idx_free(&idx);
    mlp_free(net);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--model")) return from_model(argv[2], argv[3], argv[4], 0);
    if (argc == 5 && !strcmp(argv[1], "--model-int8")) return from_model(argv[2], argv[3], argv[4], 1);
    if (argc == 2) return synthetic(argv[1]);
    fprintf(stderr, "usage: export_gen DIR | export_gen --model[-int8] MODEL.mlp IMAGES.idx PREFIX\n");
    return 2;
}
