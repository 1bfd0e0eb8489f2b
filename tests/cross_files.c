/* cross_files - model files, checkpoints and training across hosts of
   either byte order and word size (make test-cross).

   cross_files write DIR   trains a small net a few steps with the scalar
                           kernels and writes DIR/model.mlp, DIR/train.ckpt
                           and DIR/summary.txt: a hash of every parameter,
                           statistic and velocity value (of the numbers, not
                           of their bytes) and the loss after each step
   cross_files check DIR   on another host: both files load, hold exactly the
                           numbers the writer hashed, save again to the same
                           bytes, and this host's own run of the same steps
                           has the writer's losses within float tolerance

   Exit 0 when every check holds; the failing check is named otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

#define STEPS 5
#define BATCH 32
#define N_IN 9

/* FNV-1a over the bit patterns of n floats, read as numbers */
static uint32_t hash_floats(uint32_t h, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t bits;
        int b;
        memcpy(&bits, &x[i], 4);
        for (b = 0; b < 32; b += 8) h = (h ^ ((bits >> b) & 0xffu)) * 16777619u;
    }
    return h;
}

/* what a file holds: parameters, batchnorm running statistics (not the
   last batch's, which are scratch) and the velocity, if any */
static uint32_t hash_net(const mlp_net *net)
{
    uint32_t h = hash_floats(2166136261u, net->params, net->n_params);
    int l;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_BATCHNORM) continue;
        h = hash_floats(h, L->run_mean, (size_t)L->n_out);
        h = hash_floats(h, L->run_var, (size_t)L->n_out);
    }
    return net->velocity ? hash_floats(h, net->velocity, net->n_params) : h;
}

/* STEPS steps of SGD with momentum on a fixed synthetic problem; the net
   has batch normalisation, so the file holds every kind of record */
static mlp_net *train(float *losses)
{
    static float X[BATCH * N_IN];
    static int labels[BATCH];
    mlp_net *net = mlp_create_spec("9-7-4", MLP_ACT_TANH, MLP_LOSS_CE, 5);
    mlp_rng rng;
    int i, s;
    if (!net || mlp_add_batchnorm(net) != MLP_OK || mlp_set_isa(net, MLP_ISA_SCALAR) != MLP_OK) return NULL;
    mlp_rng_seed(&rng, 11, 0);
    for (i = 0; i < BATCH * N_IN; i++) X[i] = 2 * mlp_rng_float(&rng) - 1;
    for (i = 0; i < BATCH; i++) labels[i] = (int)mlp_rng_below(&rng, 4);
    mlp_set_training(net, 1);
    for (s = 0; s < STEPS; s++) {
        if (!mlp_forward(net, X, BATCH) || mlp_backward(net, labels, &losses[s]) != MLP_OK ||
            mlp_sgd_step(net, 0.1f, 0.9f, 0.0f) != MLP_OK) { mlp_free(net); return NULL; }
    }
    return net;
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "cross_files: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static char *in_dir(const char *dir, const char *name)
{
    static char path[2][1024];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", dir, name);
    return path[which];
}

static int write_files(const char *dir)
{
    float losses[STEPS];
    mlp_train_config cfg = mlp_train_defaults();
    mlp_net *net = train(losses), *plain;
    FILE *f;
    int s;
    if (!net) return fail("training failed", mlp_error());
    if (mlp_checkpoint_save(net, &cfg, 1, 2, in_dir(dir, "train.ckpt")) != MLP_OK) return fail("checkpoint save", mlp_error());
    if (!(plain = mlp_clone(net))) return fail("clone", mlp_error());   /* a model file has no velocity */
    if (mlp_save(plain, in_dir(dir, "model.mlp")) != MLP_OK) return fail("model save", mlp_error());
    if (!(f = fopen(in_dir(dir, "summary.txt"), "w"))) return fail("cannot write summary.txt", NULL);
    fprintf(f, "model %08lx\ncheckpoint %08lx\n", (unsigned long)hash_net(plain), (unsigned long)hash_net(net));
    for (s = 0; s < STEPS; s++) fprintf(f, "loss %.9g\n", losses[s]);
    fclose(f);
    printf("cross_files: wrote %s (model %08lx, checkpoint %08lx, last loss %.9g)\n", dir,
           (unsigned long)hash_net(plain), (unsigned long)hash_net(net), losses[STEPS - 1]);
    mlp_free(net); mlp_free(plain);
    return 0;
}

/* the file's bytes, malloc'd */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (unsigned char *)malloc((size_t)len)) && fread(buf, 1, (size_t)len, f) == (size_t)len)
        *n = (size_t)len;
    else { free(buf); buf = NULL; }
    fclose(f);
    return buf;
}

/* saved again on this host, net gives exactly the file's bytes */
static int same_bytes_again(const char *path, const mlp_net *net, const mlp_train_config *cfg, int epoch, int batch)
{
    size_t n_file = 0, n_again = 0;
    unsigned char *file = slurp(path, &n_file), *again;
    int same;
    if (!file) return 0;
    if (cfg) mlp_checkpoint_save_memory(net, cfg, epoch, batch, NULL, 0, &n_again);
    else mlp_save_memory(net, NULL, 0, &n_again);
    again = (unsigned char *)malloc(n_again ? n_again : 1);
    if (cfg) mlp_checkpoint_save_memory(net, cfg, epoch, batch, again, n_again, &n_again);
    else mlp_save_memory(net, again, n_again, &n_again);
    same = n_again == n_file && !memcmp(file, again, n_file);
    free(file); free(again);
    return same;
}

static int check_files(const char *dir)
{
    unsigned long want_model, want_ckpt;
    float want_loss[STEPS], losses[STEPS];
    mlp_train_config cfg;
    mlp_net *model, *ckpt, *mine;
    int s, epoch, batch, bad = 0;
    FILE *f = fopen(in_dir(dir, "summary.txt"), "r");
    if (!f) return fail("cannot read summary.txt in", dir);
    if (fscanf(f, "model %lx checkpoint %lx", &want_model, &want_ckpt) != 2) bad = 1;
    for (s = 0; s < STEPS && !bad; s++) bad = fscanf(f, " loss %f", &want_loss[s]) != 1;
    fclose(f);
    if (bad) return fail("summary.txt is malformed in", dir);

    if (!(model = mlp_load(in_dir(dir, "model.mlp")))) return fail("model.mlp does not load", mlp_error());
    if (hash_net(model) != (uint32_t)want_model) return fail("model.mlp loads other numbers than were saved", dir);
    if (!same_bytes_again(in_dir(dir, "model.mlp"), model, NULL, 0, 0)) return fail("model.mlp saves again to other bytes", dir);
    if (!(ckpt = mlp_checkpoint_load(in_dir(dir, "train.ckpt"), &cfg, &epoch, &batch))) return fail("train.ckpt does not load", mlp_error());
    if (epoch != 1 || batch != 2) return fail("train.ckpt: wrong position", dir);
    if (hash_net(ckpt) != (uint32_t)want_ckpt) return fail("train.ckpt loads other numbers than were saved", dir);
    if (!same_bytes_again(in_dir(dir, "train.ckpt"), ckpt, &cfg, epoch, batch)) return fail("train.ckpt saves again to other bytes", dir);

    if (!(mine = train(losses))) return fail("training failed", mlp_error());
    for (s = 0; s < STEPS; s++)
        if (!(fabsf(losses[s] - want_loss[s]) <= 1e-5f * (1 + fabsf(want_loss[s])))) {
            char msg[128];
            snprintf(msg, sizeof msg, "step %d: %.9g here, %.9g there", s + 1, losses[s], want_loss[s]);
            return fail("training differs", msg);
        }
    printf("cross_files: %s loads bit-identically; losses agree to %g (last %.9g here, %.9g there)\n",
           dir, 1e-5, losses[STEPS - 1], want_loss[STEPS - 1]);
    mlp_free(model); mlp_free(ckpt); mlp_free(mine);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "write")) return write_files(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "check")) return check_files(argv[2]);
    fprintf(stderr, "usage: cross_files write DIR | cross_files check DIR\n");
    return 2;
}
