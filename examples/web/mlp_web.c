/* mlp_web.c - the page's C side: mlp.h compiled to WebAssembly by Emscripten
   (make web prints the emcc line). app.js calls these through the module's
   exports; every pointer is into the module's memory.

   Classify: web_load(model bytes), then web_classify(picture) as often as
   the drawing changes. Train in the tab: web_train_begin(IDX images, IDX
   labels, samples, layers), then web_train(batches) until web_train_done(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <emscripten.h>

#define MLP_IMPLEMENTATION
#include "../../mlp.h"

static mlp_net *net;                 /* the network the page classifies with */
static mlp_dataset train;            /* web_train_begin's samples */
static mlp_train_config cfg;
static int epoch, batch, epochs, batches_asked, batches_run;
static double loss_sum;
static int loss_n;

static const char *why; /* the page's own reason, when mlp.h has none */

EMSCRIPTEN_KEEPALIVE const char *web_error(void) { return why ? why : mlp_error(); }
EMSCRIPTEN_KEEPALIVE const char *web_isa(void) { return mlp_isa_name(net ? mlp_get_isa(net) : mlp_isa_best()); }

/* A model file in memory becomes the page's network; 0 or an MLP_E* code. */
EMSCRIPTEN_KEEPALIVE int web_load(const unsigned char *bytes, int n)
{
    mlp_net *loaded = mlp_load_memory(bytes, (size_t)n);
    why = NULL;
    if (!loaded) return MLP_EFORMAT;
    if (mlp_input_width(loaded) != MLP_DIGIT_SIDE * MLP_DIGIT_SIDE || mlp_output_width(loaded) != 10) {
        mlp_free(loaded);
        why = "not a digit model: it must take 784 (28 x 28) inputs and give 10 outputs";
        return MLP_EARG;
    }
    mlp_free(net);
    net = loaded;
    return 0;
}

/* A w x h picture (gray and alpha, 0..1, row major; classify passes a PNG's
   bytes / 255) through the same preprocessing: input gets the 28 x 28
   image the network sees
   (0..255), probs the ten probabilities; returns the digit, or -1 when the
   picture holds no digit (web_error says why). */
EMSCRIPTEN_KEEPALIVE int web_classify(const float *pixels, int w, int h, float *input, float *probs)
{
    float x[MLP_DIGIT_SIDE * MLP_DIGIT_SIDE];
    const float *p;
    int k, best = 0;
    why = net ? NULL : "no model loaded";
    if (!net || mlp_digit_preprocess(pixels, w, h, 2, input) != MLP_OK) return -1;
    if (mlp_normalize_input(net, input, x) != MLP_OK || !(p = mlp_predict(net, x, 1))) return -1;
    for (k = 0; k < 10; k++) {
        probs[k] = p[k];
        if (p[k] > p[best]) best = k;
    }
    return best;
}

static int after_batch(void *user, const mlp_batch_info *b)
{
    (void)user;
    batch = b->batch + 1;
    loss_sum += b->loss;
    loss_n++;
    return ++batches_run >= batches_asked; /* stop here: the page draws */
}

/* Trains a fresh network (layers like "784-64-10") on the first n samples
   of the IDX files in memory, for epochs epochs; 0 or an MLP_E* code. */
EMSCRIPTEN_KEEPALIVE int web_train_begin(const unsigned char *images, int n_images, const unsigned char *labels,
                                         int n_labels, int n, const char *layers, int n_epochs)
{
    mlp_idx im, lb;
    mlp_input in;
    int rc;
    mlp_dataset_free(&train);
    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    if ((rc = mlp_idx_load_memory(&im, images, (size_t)n_images, "images")) != MLP_OK ||
        (rc = mlp_idx_load_memory(&lb, labels, (size_t)n_labels, "labels")) != MLP_OK ||
        (rc = mlp_dataset_from_idx(&train, &im, &lb)) != MLP_OK) {
        mlp_idx_free(&im); mlp_idx_free(&lb);
        return rc;
    }
    mlp_idx_free(&im); mlp_idx_free(&lb);
    if (n > 0 && n < train.n) train.n = n;
    mlp_free(net);
    if (!(net = mlp_create_spec(layers, MLP_ACT_RELU, MLP_LOSS_CE, 1))) return MLP_EARG;
    in = mlp_get_input(net);
    in.scale = train.scale; in.image_w = train.image_w; in.image_h = train.image_h;
    if ((rc = mlp_set_input(net, &in)) != MLP_OK || (rc = mlp_dataset_check(net, &train)) != MLP_OK) return rc;
    cfg = mlp_train_defaults();
    cfg.on_batch = after_batch;
    epoch = batch = 0;
    epochs = n_epochs;
    return MLP_OK;
}

/* Up to k more batches; returns their mean loss (negative: an MLP_E* code). */
EMSCRIPTEN_KEEPALIVE double web_train(int k)
{
    int rc;
    batches_asked = k; batches_run = 0; loss_sum = 0.0; loss_n = 0;
    while (epoch < epochs && batches_run < batches_asked) {
        cfg.start_batch = batch;
        rc = mlp_train_epoch(net, &train, &cfg, epoch, NULL);
        if (rc == MLP_OK) { epoch++; batch = 0; }
        else if (rc != MLP_EINTR) return rc;
        else if (batch * cfg.batch >= train.n) { epoch++; batch = 0; } /* stopped in the last batch */
    }
    return loss_n ? loss_sum / loss_n : 0.0;
}

EMSCRIPTEN_KEEPALIVE double web_train_progress(void)
{
    int per_epoch = (train.n + cfg.batch - 1) / cfg.batch;
    return epochs ? (epoch + (double)batch / per_epoch) / epochs : 1.0;
}

EMSCRIPTEN_KEEPALIVE int web_train_done(void) { return epoch >= epochs; }

/* Accuracy of the page's network on the first n samples of IDX files in memory. */
EMSCRIPTEN_KEEPALIVE double web_accuracy(const unsigned char *images, int n_images, const unsigned char *labels, int n_labels, int n)
{
    mlp_idx im, lb;
    mlp_dataset ds;
    mlp_eval ev;
    double acc = -1.0;
    memset(&im, 0, sizeof im); memset(&lb, 0, sizeof lb); memset(&ds, 0, sizeof ds);
    if (net && mlp_idx_load_memory(&im, images, (size_t)n_images, "images") == MLP_OK &&
        mlp_idx_load_memory(&lb, labels, (size_t)n_labels, "labels") == MLP_OK &&
        mlp_dataset_from_idx(&ds, &im, &lb) == MLP_OK) {
        if (n > 0 && n < ds.n) ds.n = n;
        if (mlp_evaluate(net, &ds, 500, &ev, NULL) == MLP_OK) acc = ev.accuracy;
    }
    mlp_idx_free(&im); mlp_idx_free(&lb); mlp_dataset_free(&ds);
    return acc;
}
