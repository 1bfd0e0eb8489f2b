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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
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
    m = mlp_save_memory(net, NULL, 0);
    assert_int_equal(m, n);
    again = malloc(m);
    assert_int_equal(mlp_save_memory(net, again, m), m);
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
    edit(92, 12, "activation record of 12 bytes");
    /* second dense layer at 104: n_in must chain */
    load_golden(); put32(112, 5); put32(116, 1); reseal(); /* 5 x 1 + 1: same byte count */
    expect_reject("dense input 5 does not match the previous width 2");
    /* a weight that is NaN */
    edit(56, 0x7fc00000, "parameter 0 is not finite");
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

static void test_truncation_at_every_byte(void **state)
{
    size_t cut;
    (void)state;
    load_golden();
    for (cut = 0; cut < model_len; cut++) {
        mlp_net *net = mlp_load_memory(model, cut);
        assert_null(net);
    }
    assert_non_null(strstr(mlp_error(), "checksum mismatch"));
    assert_null(mlp_load_memory(model, 5));
    assert_non_null(strstr(mlp_error(), "too short"));
}

static void test_flipped_bits(void **state)
{
    size_t bit;
    (void)state;
    load_golden();
    for (bit = 0; bit < model_len * 8; bit++) {
        mlp_net *net;
        model[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        net = mlp_load_memory(model, model_len);
        assert_null(net);
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

/* A file-size limit makes the write fail part way, as a full disk would. */
static void test_disk_full_keeps_previous_file(void **state)
{
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
}

/* net through mlp_save_memory and mlp_load_memory; *buf (malloc'd) keeps
   the bytes for further edits */
static mlp_net *save_and_load(const mlp_net *net, unsigned char **buf, size_t *n)
{
    mlp_net *back;
    *n = mlp_save_memory(net, NULL, 0);
    *buf = malloc(*n);
    assert_int_equal(mlp_save_memory(net, *buf, *n), *n);
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
    assert_true(back->layers[0].rate == 0.2f && back->layers[3].rate == 0.5f);
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
    assert_true(back->layers[1].eps == 1e-5f && back->layers[1].momentum == 0.1f);
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
    put32(find_record(2) - 8, 4); reseal(); expect_reject("batchnorm");
    free(buf);
    mlp_free(net); mlp_free(back);
}

static void test_memory_api(void **state)
{
    mlp_net *net = trained_net(), *back;
    size_t need = mlp_save_memory(net, NULL, 0);
    unsigned char *buf = malloc(need);
    (void)state;
    assert_true(need > 40);
    assert_int_equal(mlp_save_memory(net, buf, need - 1), need); /* too small: nothing written */
    assert_int_equal(mlp_save_memory(net, buf, need), need);
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
    snprintf(dir, sizeof dir, "/tmp/mlp_model_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bit_exact),
        cmocka_unit_test(test_golden_file),
        cmocka_unit_test(test_each_field_checked),
        cmocka_unit_test(test_structure_rules),
        cmocka_unit_test(test_truncation_at_every_byte),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_save_into_missing_directory),
        cmocka_unit_test(test_disk_full_keeps_previous_file),
        cmocka_unit_test(test_dropout_round_trip),
        cmocka_unit_test(test_batchnorm_round_trip),
        cmocka_unit_test(test_memory_api),
    };
    return cmocka_run_group_tests_name("model files", tests, setup, teardown);
}
