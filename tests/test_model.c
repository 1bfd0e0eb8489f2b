/* Model files: bit-exact round trips, a golden file written by an
   independent implementation of the documented format (tests/data/
   golden-3-2-2.mlp, made with Python's struct and zlib), every kind of
   corruption rejected with its own message, and saves that never destroy
   the previous file. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setrlimit */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#include <direct.h> /* _mkdir */
#include <io.h>     /* _access, _mktemp */
#define access _access
#define F_OK 0
#else
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#define HAVE_RLIMIT 1
#endif
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static char dir[64];

static char *path_in_dir(const char *name)
{
    static char p[2][128];
    static int which;
    which ^= 1;
    snprintf(p[which], sizeof p[which], "%s/%s", dir, name);
    return p[which];
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long len;
    assert_non_null(f);
    fseek(f, 0, SEEK_END); len = ftell(f); fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static mlp_net *trained_net(void)
{
    int sizes[4] = {6, 9, 5, 3};
    mlp_act acts[3] = {MLP_ACT_RELU, MLP_ACT_SIGMOID, MLP_ACT_IDENTITY};
    mlp_net *net = mlp_create(4, sizes, acts, MLP_LOSS_CE, 4);
    float X[6 * 4];
    int y[4] = {0, 1, 2, 1}, i;
    for (i = 0; i < 24; i++) X[i] = (float)((i * 7) % 11) / 11.0f;
    for (i = 0; i < 20; i++) { /* a few steps, so no weight is a round number */
        mlp_forward(net, X, 4);
        mlp_backward(net, y, NULL);
        mlp_sgd_step(net, 0.1f, 0.9f, 0.0f);
    }
    net->input_scale = 1.0f / 255.0f;
    net->image_w = 3; net->image_h = 2;
    return net;
}

static void test_round_trip_bit_exact(void **state)
{
    mlp_net *a = trained_net(), *b;
    size_t n1, n2;
    unsigned char *f1, *f2;
    float X[6] = {0.1f, 0.9f, 0.3f, 0.0f, 0.5f, 0.7f}, p1[3];
    (void)state;
    assert_int_equal(mlp_save(a, path_in_dir("a.mlp")), 0);
    b = mlp_load(path_in_dir("a.mlp"));
    assert_non_null(b);
    assert_int_equal(b->n_params, a->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(b->n_layers, a->n_layers);
    assert_int_equal(b->layers[3].act, MLP_ACT_SIGMOID);
    assert_true(b->input_scale == a->input_scale && b->image_w == 3 && b->image_h == 2);
    memcpy(p1, mlp_predict(a, X, 1), sizeof p1);
    assert_memory_equal(p1, mlp_predict(b, X, 1), sizeof p1);
    assert_int_equal(mlp_save(b, path_in_dir("b.mlp")), 0);
    f1 = read_file(path_in_dir("a.mlp"), &n1);
    f2 = read_file(path_in_dir("b.mlp"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, n1);
    assert_int_equal(access(path_in_dir("a.mlp.tmp"), F_OK), -1); /* no leftovers */
    free(f1); free(f2);
    mlp_free(a); mlp_free(b);
}

/* The golden file was written from the format description alone. */
static void test_golden_file(void **state)
{
    size_t n, m;
    unsigned char *golden = read_file("tests/data/golden-3-2-2.mlp", &n), *again;
    mlp_net *net = mlp_load("tests/data/golden-3-2-2.mlp");
    int k;
    (void)state;
    if (!net) print_error("%s\n", mlp_error());
    assert_non_null(net);
    assert_int_equal(mlp_input_width(net), 3);
    assert_int_equal(mlp_output_width(net), 2);
    assert_int_equal(net->loss, MLP_LOSS_CE);
    assert_int_equal(net->layers[1].act, MLP_ACT_TANH);
    for (k = 0; k < 6; k++) assert_true(net->layers[0].W[k] == k / 8.0f - 1.0f);
    assert_true(net->layers[0].b[1] == -0.5f);
    assert_true(net->layers[2].W[3] == 3.0f && net->layers[2].b[1] == 0.0625f);
    /* and our writer produces the same bytes on this host */
    assert_int_equal(mlp_save_memory(net, NULL, 0, &m), MLP_OK);
    assert_int_equal(m, n);
    again = malloc(m);
    assert_int_equal(mlp_save_memory(net, again, m, &m), MLP_OK);
    assert_memory_equal(again, golden, n);
    free(golden); free(again);
    mlp_free(net);
}

static unsigned char model[4096];
static size_t model_len;

/* the small model's bytes, with a fresh checksum after edits */
static void reseal(void)
{
    uint32_t crc = mlp_crc32(model, model_len - 4);
    model[model_len - 4] = (unsigned char)crc; model[model_len - 3] = (unsigned char)(crc >> 8);
    model[model_len - 2] = (unsigned char)(crc >> 16); model[model_len - 1] = (unsigned char)(crc >> 24);
}

static void put32(size_t at, uint32_t v)
{
    model[at] = (unsigned char)v; model[at + 1] = (unsigned char)(v >> 8);
    model[at + 2] = (unsigned char)(v >> 16); model[at + 3] = (unsigned char)(v >> 24);
}

static void expect_reject(const char *message)
{
    mlp_net *net = mlp_load_memory(model, model_len);
    if (net || !strstr(mlp_error(), message)) print_error("got \"%s\", want \"%s\"\n", net ? "(loaded)" : mlp_error(), message);
    assert_null(net);
    assert_non_null(strstr(mlp_error(), message));
}

static void load_golden(void)
{
    FILE *f = fopen("tests/data/golden-3-2-2.mlp", "rb");
    assert_non_null(f);
    model_len = fread(model, 1, sizeof model, f);
    fclose(f);
}

static void edit(size_t at, uint32_t v, const char *message)
{
    load_golden();
    put32(at, v);
    reseal();
    expect_reject(message);
}

/* A model with dropout on its input keeps that record's width; one that
   does not match the input width is refused (a file that loaded anyway
   would save back different bytes). Found by tools/mlp.py's own checks. */
static void test_input_dropout_width_checked(void **state)
{
    mlp_net *net = mlp_create_spec("3-4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1), *back;
    (void)state;
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.0f), MLP_OK);
    assert_int_equal(mlp_save_memory(net, model, sizeof model, &model_len), MLP_OK);
    assert_non_null(back = mlp_load_memory(model, model_len));
    mlp_free(back);
    /* record 0 at 40: kind 3, size 8, rate, width */
    assert_int_equal(model[40], 3);
    put32(52, 4);
    reseal();
    expect_reject("layer record 0: input dropout width 4 does not match the input width 3");
    mlp_free(net);
}

static void test_each_field_checked(void **state)
{
    (void)state;
    /* header: 8 version, 12 flags, 16 loss, 20/24 image, 28/32 scale/offset, 36 records */
    edit(8, 2, "model format version 2; this mlp.h reads version 1");
    edit(12, 1, "unknown flags 0x1");
    edit(16, 7, "unknown loss 7");
    edit(20, 3, "bad image size 3 x 0");
    load_golden(); put32(20, 3); put32(24, 3); reseal(); expect_reject("image size 3 x 3 does not match the input width 3");
    edit(28, 0x7fc00000, "bad input normalisation");
    edit(28, 0, "bad input normalisation");
    edit(36, 0, "0 layer records");
    edit(36, 1000, "1000 layer records");
    edit(36, 4, "layer record 3: truncated");
    edit(36, 2, "unexpected bytes after the last layer");
    /* the second dense record at 104 is the last: its payload of 32 bytes
       ends where the checksum starts, so one byte more is one too many */
    edit(108, 33, "layer record 2: 33 bytes claimed, 32 left");
    /* first record at 40: kind, size, n_in, n_out */
    edit(40, 9, "unknown layer kind 9");
    edit(44, 0xfffffff0u, "bytes claimed");
    edit(44, 36, "needs 40 bytes, record has 36");
    edit(48, 0, "dense size 0 x 2");
    edit(48, 0x40000000u, "dense size 1073741824 x 2 outside");
    edit(52, 3, "dense 3 x 3 needs 56 bytes, record has 40");
    /* activation record at 88: kind, size, function, width */
    edit(96, 0, "unknown activation function 0");
    edit(96, 4, "unknown activation function 4");
    edit(100, 5, "activation width 5 does not match 2");
    edit(92, 12, "layer record 1: activation record of 12 bytes (expected 8)");
    /* second dense layer at 104: n_in must chain */
    load_golden(); put32(112, 5); put32(116, 1); reseal(); /* 5 x 1 + 1: same byte count */
    expect_reject("dense input 5 does not match the previous width 2");
    /* a weight that is NaN */
    edit(56, 0x7fc00000, "parameter 0 is not finite");
}

/* Each header field at both sides of every bound the format sets: the
   value just inside passes that check (and fails later, or loads), the
   value just outside fails with the field's own message. */
static void test_header_bounds(void **state)
{
    mlp_net *net;
    char want[128];
    (void)state;
    edit(8, 0, "model format version 0; this mlp.h reads version 1");
    edit(12, 0x80000000u, "unknown flags 0x80000000");
    edit(16, 2, "unknown loss 2");
    load_golden(); put32(16, 1); reseal();          /* 1 is the Euclidean loss */
    net = mlp_load_memory(model, model_len);
    assert_non_null(net);
    assert_int_equal(net->loss, MLP_LOSS_MSE);
    mlp_free(net);
    edit(28, 0x7f800000u, "bad input normalisation");   /* +inf scale */
    edit(28, 0xff800000u, "bad input normalisation");   /* -inf scale */
    edit(32, 0x7fc00000u, "bad input normalisation");   /* NaN offset */
    edit(32, 0x7f800000u, "bad input normalisation");   /* +inf offset */
    /* 1 .. 4 * MLP_MAX_LAYERS + 2 records (the layers, input columns, class
       names); 258 passes the count, then runs out */
    edit(36, 4 * MLP_MAX_LAYERS + 2, "layer record 3: truncated");
    snprintf(want, sizeof want, "%d layer records (need 1..%d)", 4 * MLP_MAX_LAYERS + 3, 4 * MLP_MAX_LAYERS + 2);
    edit(36, 4 * MLP_MAX_LAYERS + 3, want);
    /* image sizes: both 0 or both set, each at most MLP_MAX_WIDTH (1 << 20),
       the product equal to the input width (3) */
    edit(24, 3, "bad image size 0 x 3");
    load_golden(); put32(20, (1u << 20) + 1); put32(24, 1); reseal(); expect_reject("bad image size 1048577 x 1");
    load_golden(); put32(20, 1); put32(24, (1u << 20) + 1); reseal(); expect_reject("bad image size 1 x 1048577");
    load_golden(); put32(20, 1u << 20); put32(24, 1); reseal();
    expect_reject("image size 1048576 x 1 does not match the input width 3");
    load_golden(); put32(20, 1); put32(24, 1u << 20); reseal();
    expect_reject("image size 1 x 1048576 does not match the input width 3");
    /* 11185 x 767987 = 2 * 2^32 + 3: taken in 32 bits the product would
       wrap to exactly the input width */
    load_golden(); put32(20, 11185); put32(24, 767987); reseal();
    expect_reject("image size 11185 x 767987 does not match the input width 3");
    load_golden(); put32(20, 1); put32(24, 3); reseal();
    net = mlp_load_memory(model, model_len);
    assert_non_null(net);
    assert_true(net->image_w == 1 && net->image_h == 3);
    mlp_free(net);
    /* the layer count field: 7 bytes after the last record are not a record
       header, 8 are (an activation record of 0 bytes) */
    load_golden(); put32(36, 4);
    memset(model + model_len - 4, 0, 11); model_len += 7; reseal();
    expect_reject("layer record 3: truncated");
    load_golden(); put32(36, 4);
    memset(model + model_len - 4, 0, 12); put32(model_len - 4, 2); model_len += 8; reseal();
    expect_reject("layer record 3: activation record of 0 bytes (expected 8)");
}

/* Softmax cross-entropy needs two classes; the same file with one output
   loads under the Euclidean loss. */
static void test_one_output_needs_euclidean_loss(void **state)
{
    mlp_net *net = mlp_create_spec("3-1", MLP_ACT_RELU, MLP_LOSS_MSE, 1), *back;
    (void)state;
    assert_int_equal(mlp_save_memory(net, NULL, 0, &model_len), MLP_OK);
    assert_true(model_len <= sizeof model);
    assert_int_equal(mlp_save_memory(net, model, sizeof model, &model_len), MLP_OK);
    back = mlp_load_memory(model, model_len);
    assert_non_null(back);
    mlp_free(back);
    put32(16, 0); reseal();
    expect_reject("cross-entropy model with one output");
    mlp_free(net);
}

static void test_structure_rules(void **state)
{
    (void)state;
    /* an activation first: turn record 0 into an activation of the right size? make
       the first record kind 2 with size 8 and let the rest be garbage */
    load_golden();
    put32(40, 2); put32(44, 8); put32(48, 1); put32(52, 3);
    reseal();
    expect_reject("an activation must follow a dense layer");
}

/* Each cut in a buffer of exactly its length, so that under ASan a size
   check one byte too lax faults instead of reading past the end. Which
   message is due follows from the layout: 8 bytes of magic, 4 of version,
   a 40-byte header, a 4-byte checksum. */
static void test_truncation_at_every_byte(void **state)
{
    size_t cut;
    char want[96];
    (void)state;
    load_golden();
    assert_int_equal(model_len, 148);
    for (cut = 0; cut < model_len; cut++) {
        unsigned char *exact = malloc(cut ? cut : 1);
        mlp_net *net;
        assert_non_null(exact);
        memcpy(exact, model, cut);
        net = mlp_load_memory(exact, cut);
        free(exact);
        if (cut < 8) snprintf(want, sizeof want, "too short to be a model file (%lu bytes)", (unsigned long)cut);
        else if (cut < 12) snprintf(want, sizeof want, "not an mlp.h model file");
        else if (cut < 44) snprintf(want, sizeof want, "truncated header (%lu bytes)", (unsigned long)cut);
        else snprintf(want, sizeof want, "checksum mismatch");
        if (net || !strstr(mlp_error(), want)) print_error("cut %lu: got \"%s\", want \"%s\"\n", (unsigned long)cut, net ? "(loaded)" : mlp_error(), want);
        assert_null(net);
        assert_non_null(strstr(mlp_error(), want));
    }
}

/* CRC-32 catches every single-bit error; the magic and version are read
   before the checksum, so those bytes get their own messages. */
static void test_flipped_bits(void **state)
{
    size_t bit;
    (void)state;
    load_golden();
    for (bit = 0; bit < model_len * 8; bit++) {
        mlp_net *net;
        const char *want = bit < 64 ? "not an mlp.h model file (bad magic)"
                         : bit < 96 ? "model format version" : "checksum mismatch";
        model[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        net = mlp_load_memory(model, model_len);
        if (net || !strstr(mlp_error(), want)) print_error("bit %lu: got \"%s\", want \"%s\"\n", (unsigned long)bit, net ? "(loaded)" : mlp_error(), want);
        assert_null(net);
        assert_non_null(strstr(mlp_error(), want));
        model[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    {
        mlp_net *intact = mlp_load_memory(model, model_len); /* restored: loads again */
        assert_non_null(intact);
        mlp_free(intact);
    }
}

static void test_file_errors(void **state)
{
    FILE *f;
    (void)state;
    assert_null(mlp_load(path_in_dir("missing.mlp")));
    assert_non_null(strstr(mlp_error(), "missing.mlp: cannot open"));
    f = fopen(path_in_dir("text.mlp"), "w");
    fputs("this is not a model\n", f);
    fclose(f);
    assert_null(mlp_load(path_in_dir("text.mlp")));
    assert_non_null(strstr(mlp_error(), "text.mlp: not an mlp.h model file"));
}

static void test_save_into_missing_directory(void **state)
{
    mlp_net *net = trained_net();
    (void)state;
    assert_true(mlp_save(net, path_in_dir("no/such/dir/m.mlp")) < 0);
    assert_non_null(strstr(mlp_error(), "cannot create"));
    mlp_free(net);
}

/* A save over an existing file replaces it whole (rename() on POSIX,
   MoveFileEx on Windows, where rename() would refuse), leaving no .tmp. */
static void test_save_replaces_previous_file(void **state)
{
    mlp_net *first = mlp_create_spec("4-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    mlp_net *second = mlp_create_spec("5-6-3", MLP_ACT_TANH, MLP_LOSS_CE, 2), *back;
    (void)state;
    assert_int_equal(mlp_save(first, path_in_dir("again.mlp")), 0);
    assert_int_equal(mlp_save(second, path_in_dir("again.mlp")), 0);
    back = mlp_load(path_in_dir("again.mlp"));
    assert_non_null(back);
    assert_int_equal(back->n_params, second->n_params);
    assert_memory_equal(back->params, second->params, second->n_params * sizeof(float));
    assert_int_equal(access(path_in_dir("again.mlp.tmp"), F_OK), -1);
    mlp_free(first); mlp_free(second); mlp_free(back);
}

/* A file-size limit makes the write fail part way, as a full disk would.
   (Windows has no such limit: skipped there.) */
static void test_disk_full_keeps_previous_file(void **state)
{
#ifdef HAVE_RLIMIT
    mlp_net *small = trained_net(), *big = mlp_create_spec("300-300-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    struct rlimit old, lim;
    unsigned char *before, *after;
    size_t n1, n2;
    (void)state;
    assert_int_equal(mlp_save(small, path_in_dir("keep.mlp")), 0);
    before = read_file(path_in_dir("keep.mlp"), &n1);
    signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_true(mlp_save(big, path_in_dir("keep.mlp")) < 0);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_non_null(strstr(mlp_error(), "write failed"));
    after = read_file(path_in_dir("keep.mlp"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    assert_int_equal(access(path_in_dir("keep.mlp.tmp"), F_OK), -1);
    free(before); free(after);
    mlp_free(small); mlp_free(big);
#else
    (void)state;
    skip();
#endif
}

/* net through mlp_save_memory and mlp_load_memory; *buf (malloc'd) keeps
   the bytes for further edits */
static mlp_net *save_and_load(const mlp_net *net, unsigned char **buf, size_t *n)
{
    mlp_net *back;
    assert_int_equal(mlp_save_memory(net, NULL, 0, n), MLP_OK);
    *buf = malloc(*n);
    assert_int_equal(mlp_save_memory(net, *buf, *n, n), MLP_OK);
    back = mlp_load_memory(*buf, *n);
    if (!back) print_error("%s\n", mlp_error());
    assert_non_null(back);
    assert_int_equal(back->n_layers, net->n_layers);
    return back;
}

static void test_dropout_round_trip(void **state)
{
    mlp_net *net = trained_net(), *back;
    size_t n;
    unsigned char *buf;
    (void)state;
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.5f), 0);
    back = save_and_load(net, &buf, &n);
    assert_int_equal(back->layers[0].kind, MLP_LAYER_DROPOUT);
    assert_true(back->layers[0].rate == (float)0.2f /* (float): x87 evaluates float constants with excess precision */ && back->layers[3].rate == 0.5f);
    assert_memory_equal(back->params, net->params, net->n_params * sizeof(float));
    /* rate out of range: record 0 is the input dropout, its rate at byte 48 */
    memcpy(model, buf, n); model_len = n;
    put32(48, 0x3f800000u); reseal(); expect_reject("dropout rate 1 outside (0, 1)");
    free(buf);
    mlp_free(net); mlp_free(back);
}

/* offset of the payload of the first record of this kind in model[] */
static size_t find_record(uint32_t kind)
{
    size_t off = 40;
    while (off + 8 <= model_len - 4) {
        uint32_t k = mlp__get_u32(model + off), size = mlp__get_u32(model + off + 4);
        if (k == kind) return off + 8;
        off += 8 + size;
    }
    fail_msg("no record of kind %u", kind);
    return 0;
}

/* BatchNorm (with dropout beside it) survives a save and load bit for bit,
   running statistics included, and predicts the same; a damaged record is
   refused with a message that names the problem. */
static void test_batchnorm_round_trip(void **state)
{
    mlp_net *net = trained_net(), *back;
    float X[6 * 4];
    const float *y;
    float want[3 * 4];
    size_t n, at;
    unsigned char *buf;
    int i, y4[4] = {0, 1, 2, 1};
    (void)state;
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_add_dropout(net, 0.0f, 0.3f), 0);
    for (i = 0; i < 24; i++) X[i] = (float)((i * 5) % 7) / 7.0f;
    mlp_set_training(net, 1);
    for (i = 0; i < 5; i++) { /* moves gamma, beta and the running statistics */
        mlp_forward(net, X, 4);
        mlp_backward(net, y4, NULL);
        mlp_sgd_step(net, 0.1f, 0.9f, 0.0f);
    }
    mlp_set_training(net, 0);
    memcpy(want, mlp_forward(net, X, 4), sizeof want);
    back = save_and_load(net, &buf, &n);
    for (i = 0; i < net->n_layers; i++) assert_int_equal(back->layers[i].kind, net->layers[i].kind);
    assert_int_equal(back->layers[1].kind, MLP_LAYER_BATCHNORM);
    assert_memory_equal(back->params, net->params, net->n_params * sizeof(float));
    assert_true(back->layers[1].eps == (float)1e-5f && back->layers[1].momentum == (float)0.1f);
    assert_memory_equal(back->layers[1].run_mean, net->layers[1].run_mean, 9 * sizeof(float));
    assert_memory_equal(back->layers[1].run_var, net->layers[1].run_var, 9 * sizeof(float));
    assert_true(net->layers[1].run_var[0] != 1.0f);
    y = mlp_forward(back, X, 4);
    assert_memory_equal(y, want, sizeof want);

    memcpy(model, buf, n); model_len = n;
    at = find_record(4);
    put32(at + 4, 0); reseal(); expect_reject("batchnorm eps 0 or momentum");
    memcpy(model, buf, n);
    put32(at + 12 + 4 * (3 * 9 + 3), 0xbf800000u); reseal(); expect_reject("running statistics of unit 3");
    memcpy(model, buf, n);
    put32(at, 8); reseal(); expect_reject("batchnorm must follow a dense layer of the same width");
    memcpy(model, buf, n);
    put32(at - 4, 12 + 16 * 9 - 4); reseal(); expect_reject("batchnorm of width 9 needs");
    memcpy(model, buf, n);  /* a batchnorm record where an activation should be */
    put32(find_record(2) - 8, 4); reseal(); expect_reject("layer record 2: batchnorm record of 8 bytes");
    free(buf);
    mlp_free(net); mlp_free(back);
}

/* model[] := a file with a record of every kind. Layers of trained_net
   (6-9-5-3) with batchnorm and dropout 0.2 / 0.3, so the records are:
     0 dropout 0.2 (width 6)   1 dense 6 x 9   2 batchnorm 9   3 ReLU 9
     4 dropout 0.3 (9)         5 dense 9 x 5   6 batchnorm 5   7 sigmoid 5
     8 dropout 0.3 (5)         9 dense 5 x 3 */
static void every_record_model(void)
{
    mlp_net *net = trained_net(), *back;
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_add_dropout(net, 0.2f, 0.3f), 0);
    assert_int_equal(mlp_save_memory(net, NULL, 0, &model_len), MLP_OK);
    assert_true(model_len <= sizeof model);
    assert_int_equal(mlp_save_memory(net, model, sizeof model, &model_len), MLP_OK);
    back = mlp_load_memory(model, model_len);
    if (!back) print_error("%s\n", mlp_error());
    assert_non_null(back);
    mlp_free(back);
    mlp_free(net);
    assert_int_equal(mlp__get_u32(model + 36), 10);
}

/* Replaces the old_len bytes at model[at] by new_len bytes (zeros, or the
   first new_len of the old ones), moving the rest of the file along. */
static void splice(size_t at, size_t old_len, size_t new_len)
{
    memmove(model + at + new_len, model + at + old_len, model_len - at - old_len);
    if (new_len > old_len) memset(model + at + old_len, 0, new_len - old_len);
    model_len = model_len - old_len + new_len;
    assert_true(model_len <= sizeof model);
}

/* Gives the record whose payload starts at model[at] a payload of size
   bytes, cut or zero-padded at its end; its length field, the records after
   it and the checksum all stay consistent, so the record's own size check
   is the only thing left to object. */
static void resize_record(size_t at, uint32_t size)
{
    uint32_t old = mlp__get_u32(model + at - 4);
    splice(at + (size < old ? size : old), old - (size < old ? size : old), size > old ? size - old : 0);
    put32(at - 4, size);
    reseal();
}

static void expect_resized(uint32_t kind, uint32_t size, const char *message)
{
    every_record_model();
    resize_record(find_record(kind), size);
    expect_reject(message);
}

/* Every record kind's size check, on both sides: one byte and one float
   short and long of what the format says (P in the layout), and for the
   kinds whose size depends on fields, around the fixed part read first. */
static void test_record_sizes(void **state)
{
    static const uint32_t sizes8[] = {0, 4, 7, 9, 12, 16};
    char want[128];
    size_t i;
    (void)state;
    every_record_model();
    assert_int_equal(mlp__get_u32(model + find_record(3) - 4), 8);
    assert_int_equal(mlp__get_u32(model + find_record(1) - 4), 260);   /* 8 + 4 (6*9 + 9) */
    assert_int_equal(mlp__get_u32(model + find_record(4) - 4), 156);   /* 12 + 16 * 9 */
    assert_int_equal(mlp__get_u32(model + find_record(2) - 4), 8);

    /* dropout and activation: P = 8 exactly */
    for (i = 0; i < sizeof sizes8 / sizeof sizes8[0]; i++) {
        snprintf(want, sizeof want, "layer record 0: dropout record of %u bytes (expected 8)", sizes8[i]);
        expect_resized(3, sizes8[i], want);
        snprintf(want, sizeof want, "layer record 3: activation record of %u bytes (expected 8)", sizes8[i]);
        expect_resized(2, sizes8[i], want);
    }
    /* dense 6 x 9: n_in and n_out need 8 bytes, then P = 260 */
    expect_resized(1, 0, "layer record 1: dense record of 0 bytes");
    expect_resized(1, 7, "layer record 1: dense record of 7 bytes");
    expect_resized(1, 8, "layer record 1: dense 6 x 9 needs 260 bytes, record has 8");
    expect_resized(1, 256, "layer record 1: dense 6 x 9 needs 260 bytes, record has 256");
    expect_resized(1, 259, "layer record 1: dense 6 x 9 needs 260 bytes, record has 259");
    expect_resized(1, 261, "layer record 1: dense 6 x 9 needs 260 bytes, record has 261");
    expect_resized(1, 264, "layer record 1: dense 6 x 9 needs 260 bytes, record has 264");
    /* batchnorm of width 9: width, eps and momentum need 12 bytes, then P = 156 */
    expect_resized(4, 0, "layer record 2: batchnorm record of 0 bytes");
    expect_resized(4, 11, "layer record 2: batchnorm record of 11 bytes");
    expect_resized(4, 12, "layer record 2: batchnorm of width 9 needs 156 bytes, record has 12");
    expect_resized(4, 152, "layer record 2: batchnorm of width 9 needs 156 bytes, record has 152");
    expect_resized(4, 155, "layer record 2: batchnorm of width 9 needs 156 bytes, record has 155");
    expect_resized(4, 157, "layer record 2: batchnorm of width 9 needs 156 bytes, record has 157");
    expect_resized(4, 160, "layer record 2: batchnorm of width 9 needs 156 bytes, record has 160");
    /* and the unchanged size loads: resize_record itself breaks nothing */
    every_record_model();
    resize_record(find_record(4), 156);
    {
        mlp_net *net = mlp_load_memory(model, model_len);
        assert_non_null(net);
        mlp_free(net);
    }
}

/* The order rules for dropout and dense layers, each broken alone by
   cutting or duplicating whole records (n_records and the checksum follow). */
static void remove_record(size_t payload)
{
    splice(payload - 8, 8 + mlp__get_u32(model + payload - 4), 0);
    put32(36, mlp__get_u32(model + 36) - 1);
    reseal();
}

/* payload offset of the next record of this kind after the one at payload */
static size_t next_record(size_t payload, uint32_t kind)
{
    size_t off = payload + mlp__get_u32(model + payload - 4);
    while (off + 8 <= model_len - 4) {
        if (mlp__get_u32(model + off) == kind) return off + 8;
        off += 8 + mlp__get_u32(model + off + 4);
    }
    fail_msg("no further record of kind %u", kind);
    return 0;
}

static void test_dropout_rules(void **state)
{
    size_t at;
    (void)state;
    every_record_model();                        /* record 8: the second hidden dropout */
    at = next_record(next_record(find_record(3), 3), 3);
    put32(at, 0x3ecccccdu); reseal();             /* 0.4f */
    expect_reject("layer record 8: hidden dropout rates differ (0.3, 0.4)");
    every_record_model();
    remove_record(at);
    expect_reject("dropout after 1 of 2 hidden activations (all or none)");
    every_record_model();                        /* without record 3 (ReLU) record 4 follows a batchnorm */
    remove_record(find_record(2));
    expect_reject("layer record 3: dropout must follow the input or an activation of the same width");
    every_record_model();                        /* the input dropout twice */
    splice(40, 0, 16); memcpy(model + 40, model + 56, 16);
    put32(36, 11); reseal();
    expect_reject("layer record 1: two dropout layers in a row");
    every_record_model();                        /* nothing but the input dropout */
    model_len = 40 + 16 + 4; put32(36, 1); reseal();
    expect_reject("no dense layer");
    /* golden (dense, tanh, dense) + sigmoid + dropout: the one dropout
       matches the one activation that feeds a dense layer, so only its
       place is wrong */
    load_golden();
    splice(model_len - 4, 0, 32);
    put32(144, 2); put32(148, 8); put32(152, 2); put32(156, 2);
    put32(160, 3); put32(164, 8); put32(168, 0x3e99999au); put32(172, 2);   /* 0.3f */
    put32(36, 5); reseal();
    expect_reject("a dropout layer cannot come last");
}

/* -- input columns (kind 5) and class names (kind 6), built by hand from
   the layout in mlp.h around the golden 3-2-2 model: columns first
   (scale 2, -0.5, 4; offset 1, 0, -3), names last ("cat", "bird"). */
static void put_float(size_t at, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(at, u);
}

static size_t columns_and_names_model(void)
{
    static const float scale[3] = {2.0f, -0.5f, 4.0f}, offset[3] = {1.0f, 0.0f, -3.0f};
    size_t at;
    int j;
    load_golden();
    splice(40, 0, 36);                      /* kind 5: 8 + 4 + 24 bytes */
    put32(40, 5); put32(44, 28); put32(48, 3);
    for (j = 0; j < 3; j++) { put_float(52 + 4 * j, scale[j]); put_float(64 + 4 * j, offset[j]); }
    at = model_len - 4;                     /* kind 6 before the checksum: 8 + 4 + 7 + 8 */
    splice(at, 0, 27);
    put32(at, 6); put32(at + 4, 19); put32(at + 8, 2);
    put32(at + 12, 3); memcpy(model + at + 16, "cat", 3);
    put32(at + 19, 4); memcpy(model + at + 23, "bird", 4);
    put32(36, 5);
    reseal();
    return at;                              /* where the names record starts */
}

static void test_columns_and_names_records(void **state)
{
    unsigned char again[sizeof model];
    float scale[3], offset[3], raw[3] = {10.0f, 20.0f, 30.0f}, x[3];
    size_t names_at, n;
    mlp_net *net;
    char big[300];
    (void)state;
    names_at = columns_and_names_model();
    net = mlp_load_memory(model, model_len);
    if (!net) print_error("%s\n", mlp_error());
    assert_non_null(net);
    assert_int_equal(mlp_get_input_columns(net, scale, offset), 1);
    assert_true(scale[0] == 2.0f && scale[1] == -0.5f && scale[2] == 4.0f);
    assert_true(offset[0] == 1.0f && offset[1] == 0.0f && offset[2] == -3.0f);
    assert_string_equal(mlp_class_name(net, 0), "cat");
    assert_string_equal(mlp_class_name(net, 1), "bird");
    assert_null(mlp_class_name(net, 2));
    assert_null(mlp_class_name(net, -1));
    /* golden's input scale is 1, offset 0: x = raw * column scale + column offset */
    assert_int_equal(mlp_normalize_input(net, raw, x), MLP_OK);
    assert_true(x[0] == 21.0f && x[1] == -10.0f && x[2] == 117.0f);
    /* the writer lays the records out the same way */
    assert_int_equal(mlp_save_memory(net, again, sizeof again, &n), MLP_OK);
    assert_int_equal(n, model_len);
    assert_memory_equal(again, model, n);
    /* removing them gives the golden file back */
    assert_int_equal(mlp_set_input_columns(net, NULL, NULL), MLP_OK);
    assert_int_equal(mlp_set_class_names(net, NULL), MLP_OK);
    assert_int_equal(mlp_get_input_columns(net, scale, offset), 0);
    assert_int_equal(mlp_save_memory(net, again, sizeof again, &n), MLP_OK);
    assert_int_equal(n, 148);
    mlp_free(net);

    /* kind 5's rules */
    columns_and_names_model(); put32(48, 2); put32(44, 20); splice(68, 8, 0); put32(60, 0x3f800000u); reseal();
    expect_reject("2 input columns for an input width of 3");
    columns_and_names_model(); put32(44, 24); splice(72, 4, 0); reseal();
    expect_reject("record 0: 3 input columns need 28 bytes, record has 24");
    columns_and_names_model(); put32(44, 2); splice(50, 26, 0); reseal();
    expect_reject("record 0: input columns record of 2 bytes");
    columns_and_names_model(); put_float(56, 0.0f); reseal();
    expect_reject("record 0: input column 1 has scale 0");
    columns_and_names_model(); put32(64, 0x7fc00000u); reseal();
    expect_reject("record 0: input column 0 has scale 2, offset nan");
    columns_and_names_model(); put32(52, 0x7f800000u); reseal();
    expect_reject("record 0: input column 0 has scale inf");
    columns_and_names_model();                 /* moved behind the first dense record */
    memmove(big, model + 40, 36); memmove(model + 40, model + 76, 48); memcpy(model + 88, big, 36); reseal();
    expect_reject("record 1: input columns must be the first record");

    /* kind 6's rules */
    names_at = columns_and_names_model(); put32(names_at + 8, 3); put32(names_at + 4, 19 + 5); splice(names_at + 27, 0, 5);
    put32(names_at + 27, 1); model[names_at + 31] = 'x'; reseal();
    expect_reject("3 class names for an output width of 2");
    names_at = columns_and_names_model(); put32(names_at + 8, 0); reseal();
    expect_reject("record 4: 0 class names");
    names_at = columns_and_names_model(); put32(names_at + 19, 0); put32(names_at + 4, 15); splice(names_at + 23, 4, 0); reseal();
    expect_reject("record 4: class name 1 is empty, longer than 255 bytes or has a control character");
    names_at = columns_and_names_model(); model[names_at + 17] = '\t'; reseal();
    expect_reject("record 4: class name 0 is empty");
    names_at = columns_and_names_model(); model[names_at + 24] = 0x7f; reseal();
    expect_reject("record 4: class name 1 is empty");
    names_at = columns_and_names_model(); put32(names_at + 19, 256); put32(names_at + 4, 19 + 252); splice(names_at + 27, 0, 252);
    memset(model + names_at + 23, 'b', 256); reseal();
    expect_reject("record 4: class name 1 is empty, longer than 255 bytes");
    names_at = columns_and_names_model(); put32(names_at + 19, 255); put32(names_at + 4, 19 + 251); splice(names_at + 27, 0, 251);
    memset(model + names_at + 23, 'b', 255); reseal();  /* 255 bytes: fine */
    net = mlp_load_memory(model, model_len);
    assert_non_null(net);
    assert_int_equal(strlen(mlp_class_name(net, 1)), 255);
    mlp_free(net);
    names_at = columns_and_names_model(); put32(names_at + 19, 5); reseal();
    expect_reject("record 4: class name 1 is cut off");
    names_at = columns_and_names_model(); put32(names_at + 4, 17); splice(names_at + 25, 2, 0); reseal();
    expect_reject("record 4: class name 1 is cut off");
    names_at = columns_and_names_model(); put32(names_at + 4, 21); splice(names_at + 27, 0, 2); reseal();
    expect_reject("record 4: 2 bytes after the last class name");
    names_at = columns_and_names_model(); put32(names_at + 4, 2); splice(names_at + 10, 17, 0); reseal();
    expect_reject("record 4: class names record of 2 bytes");
    names_at = columns_and_names_model(); put32(names_at + 19, 3); memcpy(model + names_at + 23, "cat", 3);
    put32(names_at + 4, 18); splice(names_at + 26, 1, 0); reseal();
    expect_reject("class name \"cat\" is there twice");
    names_at = columns_and_names_model();      /* moved before the last dense record */
    memcpy(big, model + names_at, 27); memmove(model + 140 + 27, model + 140, names_at - 140); memcpy(model + 140, big, 27); reseal();
    expect_reject("record 3: class names must be the last record");
    (void)names_at;

    /* the setters refuse what the loader refuses */
    net = mlp_load("tests/data/golden-3-2-2.mlp");
    assert_non_null(net);
    {
        const char *dup[2] = {"a", "a"}, *ctl[2] = {"a", "b\n"}, *empty[2] = {"a", ""}, *ok[2] = {"a", "b"};
        float zero_scale[3] = {1, 0, 1}, inf_offset[3] = {0, 0, 1.0f / 0.0f};
        assert_int_equal(mlp_set_class_names(net, dup), MLP_EARG);
        assert_non_null(strstr(mlp_error(), "\"a\" is there twice"));
        assert_int_equal(mlp_set_class_names(net, ctl), MLP_EARG);
        assert_int_equal(mlp_set_class_names(net, empty), MLP_EARG);
        assert_int_equal(mlp_set_class_names(net, ok), MLP_OK);
        assert_int_equal(mlp_set_input_columns(net, zero_scale, offset), MLP_EARG);
        assert_int_equal(mlp_set_input_columns(net, scale, inf_offset), MLP_EARG);
        assert_int_equal(mlp_set_input_columns(net, scale, NULL), MLP_EARG);
        assert_int_equal(mlp_get_input_columns(net, NULL, NULL), 0);
    }
    mlp_free(net);
}

/* mlp_quantize_int8 against rounding done here: unit j's weights over
   max |w| / 127, rounded to the nearest integer (halves up) */
static void test_quantize_int8(void **state)
{
    static const float col0[4] = {1.0f, 0.5f, -0.26f, 0.001f}, col1[4] = {-2.0f, 0.7f, 0.0f, 1.9921875f};
    int sizes[2] = {4, 2}, i;
    mlp_act acts[1] = {MLP_ACT_IDENTITY};
    mlp_net *net = mlp_create(2, sizes, acts, MLP_LOSS_CE, 1);
    mlp_layer *L;
    (void)state;
    assert_non_null(net);
    L = &net->layers[0];
    for (i = 0; i < 4; i++) { L->W[i * 2] = col0[i]; L->W[i * 2 + 1] = col1[i]; }
    L->b[0] = 0.3f; L->b[1] = -0.1f;
    assert_int_equal(mlp_quantize_int8(net), MLP_OK);
    /* column 0: scale 1/127: 127, 63.5 -> 64, -33.02 -> -33, 0.127 -> 0 */
    assert_true(fabsf(L->W[0] - 127.0f / 127.0f) < 1e-6f);
    assert_true(fabsf(L->W[2] - 64.0f / 127.0f) < 1e-6f);
    assert_true(fabsf(L->W[4] + 33.0f / 127.0f) < 1e-6f);
    assert_true(L->W[6] == 0.0f);
    /* column 1: scale 2/127: -127, 44.45 -> 44, 0, 126.5 -> 127 */
    assert_true(fabsf(L->W[1] + 2.0f) < 1e-6f);
    assert_true(fabsf(L->W[3] - 44.0f * 2.0f / 127.0f) < 1e-6f);
    assert_true(L->W[5] == 0.0f);
    assert_true(fabsf(L->W[7] - 2.0f) < 1e-6f);
    assert_true(L->b[0] == (float)0.3 && L->b[1] == (float)-0.1); /* biases stay floats */
    assert_int_equal(mlp_quantize_int8(NULL), MLP_EARG);
    mlp_free(net);
}

/* -- checkpoints: model[] holds one; the fields are at the offsets of the
   layout in mlp.h (epoch 12, batch 16, batch size 28, lr step 48, state
   blocks 52, model bytes 56, optimizer 64, schedule 88, warm-up 92,
   total epochs 96), the checksum over everything before the last 4 bytes. */
static mlp_train_config ck_cfg;

static void load_checkpoint_into_model(void)
{
    mlp_net *net = trained_net();   /* SGD with momentum: one state block */
    ck_cfg = mlp_train_defaults();
    assert_int_equal(mlp_checkpoint_save_memory(net, &ck_cfg, 2, 0, NULL, 0, &model_len), MLP_OK);
    assert_true(model_len <= sizeof model);
    assert_int_equal(mlp_checkpoint_save_memory(net, &ck_cfg, 2, 0, model, sizeof model, &model_len), MLP_OK);
    mlp_free(net);
}

static mlp_net *ck_load(int *epoch, int *batch)
{
    mlp_train_config cfg;
    memset(&cfg, 0, sizeof cfg);
    return mlp_checkpoint_load_memory(model, model_len, &cfg, epoch, batch);
}

static void ck_edit(size_t at, uint32_t v, const char *message)
{
    int e, b;
    mlp_net *net;
    load_checkpoint_into_model();
    put32(at, v);
    reseal();
    net = ck_load(&e, &b);
    if (net || !strstr(mlp_error(), message)) print_error("got \"%s\", want \"%s\"\n", net ? "(loaded)" : mlp_error(), message);
    assert_null(net);
    assert_non_null(strstr(mlp_error(), message));
}

/* the value just inside a bound loads and comes back as written */
static void ck_accept(size_t at, uint32_t v)
{
    int e = -1, b = -1;
    mlp_net *net;
    load_checkpoint_into_model();
    put32(at, v);
    reseal();
    net = ck_load(&e, &b);
    if (!net) print_error("field at %lu = %u: %s\n", (unsigned long)at, v, mlp_error());
    assert_non_null(net);
    if (at == 12) assert_int_equal(e, (int)v);
    if (at == 16) assert_int_equal(b, (int)v);
    mlp_free(net);
}

static void test_checkpoint_header_bounds(void **state)
{
    char want[160];
    size_t present;
    (void)state;
    ck_edit(8, 0, "checkpoint version 0; this mlp.h reads versions 1 and 2");
    ck_edit(8, 3, "checkpoint version 3; this mlp.h reads versions 1 and 2");
    ck_accept(12, 1000000);
    ck_edit(12, 1000001, "checkpoint header out of range (epoch 1000001");
    ck_accept(16, 1u << 30);
    ck_edit(16, (1u << 30) + 1, "checkpoint header out of range (epoch 2, batch 1073741825,");
    ck_accept(28, 1);
    ck_edit(28, 0, "batch size 0, lr step 3)");
    /* the header allows 1 << 24, training allows MLP_MAX_BATCH (1 << 20) */
    ck_edit(28, 1u << 24, "batch size 16777216 is outside 1..1048576");
    ck_edit(28, (1u << 24) + 1, "checkpoint header out of range (epoch 2, batch 0, batch size 16777217, lr step 3)");
    ck_accept(48, 1);
    ck_accept(48, 1000000);
    ck_edit(48, 0, "checkpoint header out of range (epoch 2, batch 0, batch size 64, lr step 0)");
    ck_edit(48, 1000001, "lr step 1000001)");
    /* 0, 1 or 2 state blocks of 4 * 131 bytes (131 parameters: 6*9+9 +
       9*5+5 + 5*3+3); a count within range but not matching the bytes
       present is a size mismatch */
    load_checkpoint_into_model();
    snprintf(want, sizeof want, "checkpoint size %lu does not match its contents (%lu)", (unsigned long)model_len, (unsigned long)model_len - 524);
    ck_edit(52, 0, want);
    snprintf(want, sizeof want, "checkpoint size %lu does not match its contents (%lu)", (unsigned long)model_len, (unsigned long)model_len + 524);
    ck_edit(52, 2, want);
    ck_edit(52, 3, "checkpoint header out of range");
    /* the embedded model may be as long as what lies between header and
       checksum (then its own checksum fails), not a byte longer */
    load_checkpoint_into_model();
    present = model_len - 112 - 4;
    ck_edit(56, (uint32_t)present, "checksum mismatch (stored");
    snprintf(want, sizeof want, "checkpoint model of %lu bytes, %lu present", (unsigned long)present + 1, (unsigned long)present);
    ck_edit(56, (uint32_t)present + 1, want);
    ck_edit(60, 1, "checkpoint model of 4294967");   /* the high word counts too */
    ck_accept(92, 1000000);
    ck_edit(92, 1000001, "checkpoint schedule epochs out of range");
    ck_accept(96, 1000000);
    ck_edit(96, 1000001, "checkpoint schedule epochs out of range");
    ck_edit(64, 99, "unknown optimizer 99");
    ck_edit(88, 99, "unknown schedule 99");
    ck_edit(32, 0xbf800000u, "learning rate, momentum and weight decay must be >= 0");   /* lr -1 */
}

/* A checkpoint with the training loop's state: st below, its best weights
   a second trained network with one weight moved. */
static mlp_train_state st_written;

static void save_state_into_model(mlp_net *net, mlp_net *best)
{
    mlp_eval so_far = {0.25, 0.75, 400, 300}, best_train = {0.5, 0.875, 8, 7};
    memset(&st_written, 0, sizeof st_written);
    st_written.epoch = 7; st_written.batch = 123; st_written.so_far = so_far;
    st_written.best_loss = 0.125; st_written.best_epoch = 5; st_written.bad_epochs = 2;
    st_written.best_train = best_train; st_written.best = best;
    ck_cfg = mlp_train_defaults();
    assert_int_equal(mlp_checkpoint_save_state_memory(net, &ck_cfg, &st_written, model, sizeof model, &model_len), MLP_OK);
}

static uint32_t get32(size_t at)
{
    return (uint32_t)model[at] | (uint32_t)model[at + 1] << 8 | (uint32_t)model[at + 2] << 16 | (uint32_t)model[at + 3] << 24;
}

/* edits the field `at` bytes before the checksum's end and expects message */
static void st_edit(size_t from_end, uint32_t v, const char *message)
{
    mlp_net *net = trained_net(), *best = trained_net(), *got;
    mlp_train_state st;
    mlp_train_config cfg;
    save_state_into_model(net, best);
    put32(model_len - from_end, v);
    reseal();
    memset(&cfg, 0, sizeof cfg);
    got = mlp_checkpoint_load_state_memory(model, model_len, &cfg, &st);
    if (got || !strstr(mlp_error(), message)) print_error("got \"%s\", want \"%s\"\n", got ? "(loaded)" : mlp_error(), message);
    assert_null(got);
    assert_null(st.best);
    assert_non_null(strstr(mlp_error(), message));
    mlp_free(net); mlp_free(best);
}

/* The loop's state comes back as written, at the places the format
   comment gives (read here byte by byte); version 1 files (no state) still
   load; a state that no run can have is refused. */
static void test_checkpoint_state(void **state)
{
    mlp_net *net = trained_net(), *best = trained_net(), *back, *dropped;
    mlp_train_state st;
    mlp_train_config cfg;
    mlp_eval a = {0.5, 0.5, 2, 1}, b = {0.25, 0.5, 6, 3}, m;
    unsigned char best_bytes[2048];
    size_t best_len, S;
    char want[160];
    int e, bt;
    (void)state;
    best->params[0] += 0.5f;
    assert_int_equal(mlp_save_memory(best, best_bytes, sizeof best_bytes, &best_len), MLP_OK);
    save_state_into_model(net, best);
    S = model_len - 60;
    assert_int_equal(get32(8), 2);
    assert_int_equal(get32(12), 7);
    assert_int_equal(get32(16), 123);
    assert_int_equal(get32(S), 0); assert_int_equal(get32(S + 4), 0x3FD00000u);        /* 0.25 */
    assert_int_equal(get32(S + 8), 400); assert_int_equal(get32(S + 12), 300);
    assert_int_equal(get32(S + 16), 0); assert_int_equal(get32(S + 20), 0x3FC00000u);  /* 0.125 */
    assert_int_equal(get32(S + 24), 5); assert_int_equal(get32(S + 28), 2);
    assert_int_equal(get32(S + 32), 0); assert_int_equal(get32(S + 36), 0x3FE00000u);  /* 0.5 */
    assert_int_equal(get32(S + 40), 8); assert_int_equal(get32(S + 44), 7);
    assert_int_equal(get32(S + 48), (uint32_t)best_len); assert_int_equal(get32(S + 52), 0);
    assert_memory_equal(model + S - best_len, best_bytes, best_len);

    memset(&cfg, 0, sizeof cfg);
    back = mlp_checkpoint_load_state_memory(model, model_len, &cfg, &st);
    assert_non_null(back);
    assert_int_equal(st.epoch, 7); assert_int_equal(st.batch, 123);
    assert_true(st.so_far.loss == 0.25); assert_int_equal(st.so_far.n, 400); assert_int_equal(st.so_far.correct, 300);
    assert_true(st.so_far.accuracy == 0.75);
    assert_true(st.best_loss == 0.125); assert_int_equal(st.best_epoch, 5); assert_int_equal(st.bad_epochs, 2);
    assert_true(st.best_train.loss == 0.5); assert_int_equal(st.best_train.n, 8); assert_int_equal(st.best_train.correct, 7);
    assert_non_null(st.best);
    assert_memory_equal(st.best->params, best->params, best->n_params * sizeof(float));
    assert_memory_equal(back->params, net->params, net->n_params * sizeof(float));
    mlp_free(st.best);
    mlp_free(back);
    /* the plain loader reads it too, and drops the state */
    back = mlp_checkpoint_load_memory(model, model_len, &cfg, &e, &bt);
    assert_non_null(back);
    assert_int_equal(e, 7); assert_int_equal(bt, 123);
    mlp_free(back);

    /* version 1: the same file without the state */
    load_checkpoint_into_model();
    assert_int_equal(get32(model_len - 12), 0);  /* no best weights */
    memmove(model + model_len - 60, model + model_len - 4, 4);
    model_len -= 56;
    put32(8, 1);
    reseal();
    back = mlp_checkpoint_load_state_memory(model, model_len, &cfg, &st);
    assert_non_null(back);
    assert_int_equal(st.epoch, 2); assert_int_equal(st.batch, 0);
    assert_int_equal(st.so_far.n, 0); assert_int_equal(st.best_epoch, 0); assert_null(st.best);
    mlp_free(back);

    st_edit(60 - 8, 0x80000000u, "checkpoint training statistics out of range");   /* samples */
    st_edit(60 - 12, 401, "checkpoint training statistics out of range");          /* correct > samples */
    st_edit(60 - 4, 0xBFF00000u, "checkpoint training statistics out of range");   /* loss -1 */
    st_edit(60 - 36, 0x7FF80000u, "checkpoint training statistics out of range");  /* best epoch's loss NaN */
    st_edit(60 - 44, 9, "checkpoint training statistics out of range");
    st_edit(60 - 20, 0x7FF80000u, "early-stopping state out of range");            /* best loss NaN */
    st_edit(60 - 24, 8, "early-stopping state out of range (best epoch 8, 2 bad epochs, after 7)");
    st_edit(60 - 28, 8, "early-stopping state out of range (best epoch 5, 8 bad epochs, after 7)");
    snprintf(want, sizeof want, "checkpoint size %lu does not match its contents (%lu)", (unsigned long)model_len, (unsigned long)model_len + 1);
    st_edit(60 - 48, (uint32_t)best_len + 1, want);
    st_edit(60 - 52, 1, "does not match its contents");
    st_edit(60 - 48, (uint32_t)best_len - 1, "does not match its contents");

    /* best weights of another shape: refused when saved and when loaded */
    dropped = mlp_create_spec("6-4-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    st_written.best = dropped;
    assert_int_equal(mlp_checkpoint_save_state_memory(net, &ck_cfg, &st_written, model, sizeof model, &model_len), MLP_EARG);
    mlp_free(dropped);
    dropped = trained_net();                 /* same parameters, one layer more */
    assert_int_equal(mlp_add_dropout(dropped, 0.0f, 0.5f), MLP_OK);
    save_state_into_model(net, dropped);
    back = mlp_checkpoint_load_state_memory(model, model_len, &cfg, &st);
    assert_null(back);
    assert_null(st.best);
    assert_non_null(strstr(mlp_error(), "checkpoint best weights have other layers than its network"));
    mlp_free(dropped);

    m = mlp_eval_merge(&a, &b);              /* (0.5*2 + 0.25*6) / 8 */
    assert_true(m.loss == 0.3125); assert_int_equal(m.n, 8); assert_int_equal(m.correct, 4); assert_true(m.accuracy == 0.5);
    mlp_free(net); mlp_free(best);
}

/* Each cut of a checkpoint in a buffer of exactly its length: 116 bytes
   (header and checksum) at the least, and past that the checksum fails. */
static void test_checkpoint_truncation(void **state)
{
    size_t cut, full;
    int e, b;
    mlp_train_config cfg;
    (void)state;
    load_checkpoint_into_model();
    full = model_len;
    for (cut = 0; cut < full; cut++) {
        unsigned char *exact = malloc(cut ? cut : 1);
        const char *want = cut < 116 ? "not an mlp.h checkpoint" : "checkpoint checksum mismatch";
        mlp_net *net;
        assert_non_null(exact);
        memcpy(exact, model, cut);
        net = mlp_checkpoint_load_memory(exact, cut, &cfg, &e, &b);
        free(exact);
        if (net || !strstr(mlp_error(), want)) print_error("cut %lu: got \"%s\", want \"%s\"\n", (unsigned long)cut, net ? "(loaded)" : mlp_error(), want);
        assert_null(net);
        assert_non_null(strstr(mlp_error(), want));
    }
}

/* The input normalisation a model carries, x = raw scale + offset, is what
   mlp_normalize_input applies, before and after a round trip. */
/* mlp_export_c's arguments: every refusal is an error code and no file. */
static void test_export_c_refusals(void **state)
{
    static const char *bad_names[] = {"", "9lives", "a-b", "with space", "x.y",
        "an_identifier_of_sixty_five_characters_which_is_one_more_than_64_", NULL};
    mlp_net *net = mlp_create_spec("3-4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    const char *path = path_in_dir("refused.h");
    volatile float zero = 0.0f;
    int i;
    (void)state;
    assert_true(mlp_export_c(NULL, path, "m") < 0);
    assert_true(mlp_export_c(net, NULL, "m") < 0);
    for (i = 0; bad_names[i]; i++) {
        assert_int_equal(mlp_export_c(net, path, bad_names[i]), MLP_EARG);
        assert_non_null(strstr(mlp_error(), "C identifier"));
    }
    assert_int_equal(access(path, F_OK), -1);
    assert_true(mlp_export_c(net, path_in_dir("no/such/dir/m.h"), "m") < 0);
    net->params[3] = zero / zero;
    assert_int_equal(mlp_export_c(net, path, "m"), MLP_ENUMERIC);
    assert_int_equal(access(path, F_OK), -1);
    net->params[3] = 1.0f;
    assert_int_equal(mlp_export_c(net, path, "a_name_of_exactly_sixty_four_characters_which_is_the_longest_ok"), MLP_OK);
    assert_int_equal(remove(path), 0);
    mlp_free(net);
}

/* The array NAME[] = {...} of an exported header, read back with strtof. */
static int parse_array(const char *text, const char *name, float *out, int n)
{
    const char *p = strstr(text, name);
    int i;
    if (!p || !(p = strchr(p, '{'))) return -1;
    p++;
    for (i = 0; i < n; i++) {
        char *end;
        out[i] = strtof(p, &end);
        if (end == p || *end != 'f') return -1;
        p = end + 1;
        while (*p == ',' || *p == ' ' || *p == '\n') p++;
    }
    return *p == '}' ? 0 : -1;
}

/* Weights printed with 9 significant digits read back as the same floats
   (and integral values, which %g prints without a point, as float
   literals); the default name, mlp_model. */
static void test_export_c_weights_exact(void **state)
{
    mlp_net *net = mlp_create_spec("5-7-3", MLP_ACT_RELU, MLP_LOSS_CE, 11);
    const char *path = path_in_dir("exact.h");
    mlp_mat W, b;
    float got[35];
    size_t n;
    char *text;
    (void)state;
    assert_int_equal(mlp_dense_weights(net, 0, &W, &b), 0);
    W.data[0] = 2.0f; W.data[1] = -3.0f; W.data[2] = 1e-30f; W.data[3] = 3.4e38f; W.data[4] = 1.17549435e-38f;
    b.data[0] = 0.1f; b.data[1] = -0.0f;
    assert_int_equal(mlp_export_c(net, path, NULL), MLP_OK);
    assert_non_null(text = (char *)read_file(path, &n));
    text = (char *)realloc(text, n + 1);
    text[n] = 0;
    assert_non_null(strstr(text, "static inline int mlp_model_predict(const float *raw, float *probs)"));
    assert_non_null(strstr(text, "#define MLP_MODEL_INPUTS 5"));
    assert_non_null(strstr(text, "#define MLP_MODEL_OUTPUTS 3"));
    assert_int_equal(parse_array(text, "mlp_model_w1[35]", got, 35), 0);
    assert_memory_equal(got, W.data, sizeof got);
    assert_int_equal(parse_array(text, "mlp_model_b1[7]", got, 7), 0);
    assert_memory_equal(got, b.data, 7 * sizeof(float));
    assert_int_equal(mlp_dense_weights(net, 1, &W, &b), 0);
    assert_int_equal(parse_array(text, "mlp_model_w2[21]", got, 21), 0);
    assert_memory_equal(got, W.data, 21 * sizeof(float));
    free(text);
    assert_int_equal(remove(path), 0);
    mlp_free(net);
}

static void test_input_normalisation(void **state)
{
    static const float raw[3] = {0.0f, 2.0f, 4.0f}, want[3] = {-1.0f, 0.0f, 1.0f};
    mlp_net *net = mlp_create_spec("3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1), *back;
    size_t need;
    unsigned char *buf;
    float x[3];
    int round, i;
    (void)state;
    net->input_scale = 0.5f; net->input_offset = -1.0f;
    assert_int_equal(mlp_save_memory(net, NULL, 0, &need), MLP_OK);
    buf = malloc(need);
    assert_int_equal(mlp_save_memory(net, buf, need, &need), MLP_OK);
    assert_non_null(back = mlp_load_memory(buf, need));
    for (round = 0; round < 2; round++) {
        assert_int_equal(mlp_normalize_input(round ? back : net, raw, x), 0);
        for (i = 0; i < 3; i++) assert_true(x[i] == want[i]);
    }
    free(buf); mlp_free(net); mlp_free(back);
}

static void test_memory_api(void **state)
{
    mlp_net *net = trained_net(), *back;
    size_t need = 0, got = 0;
    unsigned char *buf;
    (void)state;
    assert_int_equal(mlp_save_memory(net, NULL, 0, &need), MLP_OK);
    buf = malloc(need);
    assert_true(need > 40);
    memset(buf, 0xAB, need);
    assert_int_equal(mlp_save_memory(net, buf, need - 1, &got), MLP_EARG); /* too small: nothing written */
    assert_int_equal(got, need);
    assert_true(buf[0] == 0xAB && buf[need - 1] == 0xAB);
    assert_non_null(strstr(mlp_error(), "needed"));
    assert_int_equal(mlp_save_memory(net, buf, need, &got), MLP_OK);
    back = mlp_load_memory(buf, need);
    assert_non_null(back);
    assert_memory_equal(back->params, net->params, net->n_params * sizeof(float));
    assert_int_equal(mlp_crc32("123456789", 9), 0xCBF43926u); /* the standard check value */
    free(buf);
    mlp_free(net); mlp_free(back);
}

static int setup(void **state)
{
    (void)state;
#ifdef _WIN32
    snprintf(dir, sizeof dir, "mlp_model_XXXXXX");
    return _mktemp(dir) && _mkdir(dir) == 0 ? 0 : -1;
#else
    snprintf(dir, sizeof dir, "/tmp/mlp_model_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
#endif
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
#ifdef _WIN32
    snprintf(cmd, sizeof cmd, "rmdir /s /q %s", dir);
#else
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
#endif
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bit_exact),
        cmocka_unit_test(test_input_dropout_width_checked),
        cmocka_unit_test(test_export_c_refusals),
        cmocka_unit_test(test_export_c_weights_exact),
        cmocka_unit_test(test_golden_file),
        cmocka_unit_test(test_each_field_checked),
        cmocka_unit_test(test_header_bounds),
        cmocka_unit_test(test_one_output_needs_euclidean_loss),
        cmocka_unit_test(test_structure_rules),
        cmocka_unit_test(test_truncation_at_every_byte),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_save_into_missing_directory),
        cmocka_unit_test(test_save_replaces_previous_file),
        cmocka_unit_test(test_disk_full_keeps_previous_file),
        cmocka_unit_test(test_dropout_round_trip),
        cmocka_unit_test(test_batchnorm_round_trip),
        cmocka_unit_test(test_record_sizes),
        cmocka_unit_test(test_dropout_rules),
        cmocka_unit_test(test_columns_and_names_records),
        cmocka_unit_test(test_quantize_int8),
        cmocka_unit_test(test_checkpoint_header_bounds),
        cmocka_unit_test(test_checkpoint_truncation),
        cmocka_unit_test(test_checkpoint_state),
        cmocka_unit_test(test_memory_api),
        cmocka_unit_test(test_input_normalisation),
    };
    return cmocka_run_group_tests_name("model files", tests, setup, teardown);
}
