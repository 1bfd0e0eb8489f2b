/* Fuzz target: arbitrary bytes as a CSV file. The first byte says how it
   is read (the rest is the text):
     bits 0-1  label column: 0 the last, 1 column 0, 2 column 1, 3 none
     bit  2    has_header
     bits 3-4  classes_of: 0 none, 1 a training set with names {cat, dog,
               emu}, 2 one with integer labels (n_classes 4), 3 none
   A refusal must leave the data set zeroed with a "fuzz: line L, column
   C: ..." message; a data set read must hold what the specification
   promises (finite inputs, labels below n_classes, sorted distinct names
   of 1..255 bytes without control bytes, the training set's mapping), and
   must survive mlp_dataset_split, mlp_dataset_standardize and, with names,
   mlp_set_class_names and a model file round trip. (-DMLP_FUZZ_CSV_ALLOW_NUL
   turns off the one check a NUL byte in a field trips.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../../mlp.h"
#include "fuzz_main.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_csv: %s:%d: %s fails (%s)\n", __FILE__, __LINE__, \
                                                #cond, mlp_error()); abort(); } } while (0)

static mlp_dataset train_names, train_ints;

static void setup(void)
{
    static int ready;
    static const char names[] = "1,dog\n2,emu\n3,cat\n", ints[] = "1,0\n2,3\n";
    if (ready) return;
    CHECK(mlp_dataset_parse_csv(&train_names, names, sizeof names - 1, "names", MLP_CSV_LAST, 0, NULL) == 0);
    CHECK(train_names.n_classes == 3 && train_names.class_names);
    CHECK(mlp_dataset_parse_csv(&train_ints, ints, sizeof ints - 1, "ints", MLP_CSV_LAST, 0, NULL) == 0);
    CHECK(train_ints.n_classes == 4 && !train_ints.class_names);
    ready = 1;
}

static void check_zeroed(const mlp_dataset *ds)
{
    CHECK(ds->n == 0 && ds->dim == 0 && ds->n_classes == 0 && ds->image_w == 0 && ds->image_h == 0);
    CHECK(ds->scale == 0.0f && !ds->x && !ds->y && !ds->class_names);
}

static void check_name(const char *s)
{
    size_t n = strlen(s), i;
    CHECK(n >= 1 && n <= MLP_MAX_NAME);
    for (i = 0; i < n; i++) CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] != 0x7f);
}

/* split off one sample, standardise, and with names a model keeps them */
static void use(mlp_dataset *ds, size_t size)
{
    mlp_dataset held;
    char spec[64];
    float scale[64], offset[64];
    mlp_net *net;
    int n = ds->n, i, j, outs = ds->n_classes >= 2 && ds->n_classes <= 64 ? ds->n_classes : 2;
    if (n < 2 || ds->dim > 64) return;
    CHECK(mlp_dataset_split(ds, &held, 1, (uint64_t)size) == 0);
    CHECK(ds->n == n - 1 && held.n == 1 && held.dim == ds->dim && held.n_classes == ds->n_classes);
    CHECK(held.x == ds->x + (size_t)(n - 1) * (size_t)ds->dim && held.class_names == ds->class_names);
    snprintf(spec, sizeof spec, "%d-%d", ds->dim, outs);
    net = mlp_create_spec(spec, MLP_ACT_RELU, MLP_LOSS_CE, 1);
    CHECK(net != NULL);
    CHECK(mlp_dataset_standardize(net, ds, &held) == 0);
    CHECK(mlp_get_input_columns(net, scale, offset) == 1);
    for (j = 0; j < ds->dim; j++) CHECK(isfinite(scale[j]) && scale[j] != 0.0f && isfinite(offset[j]));
    for (i = 0; i < ds->n * ds->dim; i++) CHECK(isfinite(ds->x[i]));
    if (ds->class_names && ds->n_classes == outs) {
        unsigned char *bytes;
        size_t len;
        mlp_net *loaded;
        CHECK(mlp_set_class_names(net, (const char *const *)ds->class_names) == 0);
        CHECK(mlp_save_memory(net, NULL, 0, &len) == 0);
        bytes = (unsigned char *)malloc(len);
        CHECK(bytes && mlp_save_memory(net, bytes, len, &len) == 0);
        loaded = mlp_load_memory(bytes, len);
        CHECK(loaded != NULL);
        for (j = 0; j < outs; j++) CHECK(strcmp(mlp_class_name(loaded, j), ds->class_names[j]) == 0);
        CHECK(mlp_get_input_columns(loaded, NULL, NULL) == 1);
        mlp_free(loaded);
        free(bytes);
    }
    mlp_free(net);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const int labels[4] = {MLP_CSV_LAST, 0, 1, MLP_CSV_NONE};
    const mlp_dataset *classes_of;
    mlp_dataset ds;
    int mode, label, header, rc, i, largest = -1;
    size_t k;
    if (size < 1) return 0;
    setup();
    mode = data[0];
    label = labels[mode & 3];
    header = mode >> 2 & 1;
    classes_of = (mode >> 3 & 3) == 1 ? &train_names : (mode >> 3 & 3) == 2 ? &train_ints : NULL;
    memset(&ds, 0xa5, sizeof ds);
    rc = mlp_dataset_parse_csv(&ds, (const char *)data + 1, size - 1, "fuzz", label, header, classes_of);
    if (rc != 0) {
        CHECK(rc == MLP_EFORMAT || rc == MLP_ENOMEM);
        if (rc == MLP_EFORMAT) {
            CHECK(strncmp(mlp_error(), "fuzz: line ", 11) == 0);
            CHECK(strstr(mlp_error(), ", column ") != NULL);
        }
        check_zeroed(&ds);
        return 0;
    }
#ifndef MLP_FUZZ_CSV_ALLOW_NUL
    /* without a header every field is a number or a label name, and
       neither may hold a NUL byte (names: none below 0x20) */
    CHECK(header || !memchr(data + 1, 0, size - 1));
#endif
    CHECK(ds.n >= 1 && ds.dim >= 1 && ds.dim <= MLP_MAX_WIDTH + 1 && ds.x && ds.y);
    CHECK(ds.scale == 1.0f && ds.image_w == 0 && ds.image_h == 0);
    /* each line of data has at least dim + 1 bytes ("1" or "1,1,...") */
    CHECK((size_t)ds.n * (size_t)ds.dim <= size);
    for (k = 0; k < (size_t)ds.n * (size_t)ds.dim; k++) CHECK(isfinite(ds.x[k]));
    if (label == MLP_CSV_NONE) {
        CHECK(ds.n_classes == 0 && !ds.class_names);
        for (i = 0; i < ds.n; i++) CHECK(ds.y[i] == 0);
    } else {
        CHECK(ds.n_classes >= 1);
        for (i = 0; i < ds.n; i++) {
            CHECK(ds.y[i] >= 0 && ds.y[i] < ds.n_classes);
            if (ds.y[i] > largest) largest = ds.y[i];
        }
        if (classes_of) {
            CHECK(ds.n_classes == classes_of->n_classes);
            if (classes_of->class_names) {
                CHECK(ds.class_names && ds.class_names != classes_of->class_names);
                for (i = 0; i < ds.n_classes; i++) CHECK(strcmp(ds.class_names[i], classes_of->class_names[i]) == 0);
            } else {
                CHECK(!ds.class_names);
            }
        } else if (ds.class_names) {
            /* names: sorted, distinct, every one used */
            char *used = (char *)calloc((size_t)ds.n_classes, 1);
            CHECK(used != NULL);
            for (i = 0; i < ds.n; i++) used[ds.y[i]] = 1;
            for (i = 0; i < ds.n_classes; i++) {
                CHECK(used[i]);
                check_name(ds.class_names[i]);
                if (i) CHECK(strcmp(ds.class_names[i - 1], ds.class_names[i]) < 0);
            }
            free(used);
        } else {
            CHECK(ds.n_classes == largest + 1 && ds.n_classes <= 65536);
        }
    }
    use(&ds, size);
    mlp_dataset_free(&ds);
    check_zeroed(&ds);
    return 0;
}
