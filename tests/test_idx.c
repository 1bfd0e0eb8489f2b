/* IDX loading: golden files of every element type, and malformed files that
   must fail with the right message (never a crash, never a huge allocation). */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stored_inflate.h" /* MLP_INFLATE for gzipped IDX files */
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static unsigned char buf[4096];

static size_t put_be(unsigned char *p, uint64_t v, int bytes)
{
    int i;
    for (i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return (size_t)bytes;
}

static size_t header(int type, int ndims, const uint32_t *dims)
{
    size_t n = 0;
    int i;
    buf[n++] = 0; buf[n++] = 0; buf[n++] = (unsigned char)type; buf[n++] = (unsigned char)ndims;
    for (i = 0; i < ndims; i++) n += put_be(buf + n, dims[i], 4);
    return n;
}

/* writes len bytes of buf to a fresh temporary file; caller unlinks */
static char *write_temp(size_t len)
{
    static char path[64];
    int fd;
    FILE *f;
    snprintf(path, sizeof path, "/tmp/mlp_test_idx_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    return path;
}

/* loads buf[0..len) both from memory and from a file; both must agree */
static int load_both(mlp_idx *idx, size_t len)
{
    mlp_idx from_file;
    char *path = write_temp(len);
    int rc_file = mlp_idx_load(&from_file, path);
    char file_msg[256];
    int rc_mem;
    snprintf(file_msg, sizeof file_msg, "%s", mlp_error());
    unlink(path);
    rc_mem = mlp_idx_load_memory(idx, buf, len, "mem");
    assert_int_equal(rc_file, rc_mem);
    if (rc_mem == 0) {
        size_t i;
        assert_int_equal(from_file.count, idx->count);
        for (i = 0; i < idx->count; i++) assert_true(from_file.data[i] == idx->data[i]);
        mlp_idx_free(&from_file);
    } else {
        /* same reason, different name */
        assert_non_null(strstr(file_msg, strchr(mlp_error(), ':')));
    }
    return rc_mem;
}

static void test_ubyte_golden(void **state)
{
    uint32_t dims[3] = {2, 2, 3};
    size_t n = header(MLP_IDX_U8, 3, dims), i;
    mlp_idx idx;
    (void)state;
    for (i = 0; i < 12; i++) buf[n++] = (unsigned char)(i * 23);
    assert_int_equal(load_both(&idx, n), 0);
    assert_int_equal(idx.type, MLP_IDX_U8);
    assert_int_equal(idx.ndims, 3);
    assert_int_equal(idx.dims[2], 3);
    assert_int_equal(idx.count, 12);
    for (i = 0; i < 12; i++) assert_true(idx.data[i] == (float)(i * 23));
    mlp_idx_free(&idx);
}

static void check_type(int type, int bytes, const uint64_t *raw, const float *want, int count)
{
    uint32_t dims[1];
    size_t n;
    int i;
    mlp_idx idx;
    dims[0] = (uint32_t)count;
    n = header(type, 1, dims);
    for (i = 0; i < count; i++) n += put_be(buf + n, raw[i], bytes);
    assert_int_equal(load_both(&idx, n), 0);
    assert_int_equal(idx.type, type);
    for (i = 0; i < count; i++) {
        if (idx.data[i] != want[i]) print_error("type 0x%02x [%d]: %g != %g\n", type, i, idx.data[i], want[i]);
        assert_true(idx.data[i] == want[i]);
    }
    mlp_idx_free(&idx);
}

static void test_every_type_golden(void **state)
{
    const uint64_t s8[3] = {0x00, 0x7f, 0x80};
    const float s8w[3] = {0, 127, -128};
    const uint64_t i16[3] = {0x0102, 0xffff, 0x8000};
    const float i16w[3] = {258, -1, -32768};
    const uint64_t i32[3] = {0x00010000, 0xfffffffe, 0x7fffff00};
    const float i32w[3] = {65536, -2, 2147483392.0f};
    const uint64_t f32[3] = {0x3fc00000, 0xc0490fdb, 0x00000000};   /* 1.5, -pi, 0 */
    const float f32w[3] = {1.5f, -3.14159274f, 0};
    const uint64_t f64[3] = {0x3ff8000000000000ULL, 0xc000000000000000ULL, 0x3fb999999999999aULL};
    const float f64w[3] = {1.5f, -2.0f, 0.1f};
    (void)state;
    check_type(MLP_IDX_S8, 1, s8, s8w, 3);
    check_type(MLP_IDX_I16, 2, i16, i16w, 3);
    check_type(MLP_IDX_I32, 4, i32, i32w, 3);
    check_type(MLP_IDX_F32, 4, f32, f32w, 3);
    check_type(MLP_IDX_F64, 8, f64, f64w, 3);
}

static void expect_error(size_t len, const char *message)
{
    mlp_idx idx;
    int rc = load_both(&idx, len);
    assert_true(rc < 0);
    if (!strstr(mlp_error(), message)) print_error("got \"%s\", want \"%s\"\n", mlp_error(), message);
    assert_non_null(strstr(mlp_error(), message));
    assert_null(idx.data);
}

static void test_malformed(void **state)
{
    uint32_t dims[9] = {2, 3, 4, 1, 1, 1, 1, 1, 1}, huge[3] = {60000, 65536, 65536}, zero[2] = {5, 0};
    size_t n;
    (void)state;
    n = header(MLP_IDX_U8, 2, dims); memset(buf + n, 1, 6);
    buf[0] = 8; expect_error(n + 6, "bad magic");
    header(0x07, 2, dims); expect_error(n + 6, "unknown element type 0x07");
    header(MLP_IDX_U8, 0, dims); expect_error(4, "0 dimensions");
    header(MLP_IDX_U8, 9, dims); expect_error(40, "9 dimensions");
    expect_error(2, "truncated header");
    n = header(MLP_IDX_U8, 3, dims); expect_error(n - 2, "truncated header");
    expect_error(n + 23, "truncated body (23 of 24 bytes)");
    memset(buf + n, 0, 30); expect_error(n + 30, "6 bytes of trailing garbage");
    expect_error(n + 25, "1 bytes of trailing garbage");
    n = header(MLP_IDX_U8, 3, huge); expect_error(n + 10, "dimensions too large");
    n = header(MLP_IDX_F64, 2, zero); expect_error(n, "dimension 1 is 0");
    huge[0] = 40000; huge[1] = 50000; huge[2] = 1; /* 2e9 doubles claimed, 16 bytes present */
    n = header(MLP_IDX_F64, 3, huge); expect_error(n + 16, "truncated body");
}

/* Every truncation of a valid file, each in a buffer of exactly that many
   bytes: under ASan a header check that lets one byte too many through
   faults here instead of reading a neighbour's memory. The file loader reads
   the header into a stack array, so it gets the same cuts through real files. */
static void test_truncated_at_every_byte(void **state)
{
    uint32_t dims[3] = {2, 2, 3};
    size_t full = header(MLP_IDX_U8, 3, dims), n;   /* 16-byte header */
    char want[160];
    mlp_idx none;
    (void)state;
    for (n = 0; n < 12; n++) buf[full++] = (unsigned char)(n + 1);
    assert_int_equal(full, 28);
    for (n = 0; n < full; n++) {
        unsigned char *exact = malloc(n ? n : 1);
        mlp_idx idx;
        char *path;
        int rc;
        assert_non_null(exact);
        memcpy(exact, buf, n);
        if (n < 4) snprintf(want, sizeof want, "mem: truncated header (%lu bytes)", (unsigned long)n);
        else if (n < 16) snprintf(want, sizeof want, "mem: truncated header (%lu of 16 bytes)", (unsigned long)n);
        else snprintf(want, sizeof want, "mem: truncated body (%lu of 12 bytes)", (unsigned long)(n - 16));
        rc = mlp_idx_load_memory(&idx, exact, n, "mem");
        free(exact);
        if (rc != MLP_EFORMAT || strcmp(mlp_error(), want) != 0)
            print_error("%lu bytes: rc %d, got \"%s\", want \"%s\"\n", (unsigned long)n, rc, mlp_error(), want);
        assert_int_equal(rc, MLP_EFORMAT);
        assert_string_equal(mlp_error(), want);
        assert_null(idx.data);

        path = write_temp(n);
        rc = mlp_idx_load(&idx, path);
        unlink(path);
        /* the same text as from memory, with the path in place of "mem" */
        assert_int_equal(rc, MLP_EFORMAT);
        assert_int_equal(strncmp(mlp_error(), path, strlen(path)), 0);
        assert_string_equal(mlp_error() + strlen(path), want + 3);
        assert_null(idx.data);
    }
    /* no bytes at all, not even a buffer */
    assert_int_equal(mlp_idx_load_memory(&none, NULL, 0, "mem"), MLP_EFORMAT);
    assert_string_equal(mlp_error(), "mem: truncated header (0 bytes)");
}

static void test_missing_file(void **state)
{
    mlp_idx idx;
    (void)state;
    assert_int_equal(mlp_idx_load(&idx, "/nonexistent/t10k-images-idx3-ubyte"), MLP_EIO);
    assert_string_equal(mlp_error(), "/nonexistent/t10k-images-idx3-ubyte: cannot open");
}

/* images 3 x 2 x 2 ubyte, labels 3 of the given type and values */
static int make_dataset(mlp_dataset *ds, int label_type, int n_labels, const uint64_t *labels, int bytes)
{
    uint32_t dims[3] = {3, 2, 2}, ldims[1];
    mlp_idx images, lab;
    size_t n = header(MLP_IDX_U8, 3, dims);
    int i, rc;
    for (i = 0; i < 12; i++) buf[n++] = (unsigned char)(i == 5 ? 255 : i);
    assert_int_equal(mlp_idx_load_memory(&images, buf, n, "images"), 0);
    ldims[0] = (uint32_t)n_labels;
    n = header(label_type, 1, ldims);
    for (i = 0; i < n_labels; i++) n += put_be(buf + n, labels[i], bytes);
    assert_int_equal(mlp_idx_load_memory(&lab, buf, n, "labels"), 0);
    rc = mlp_dataset_from_idx(ds, &images, &lab);
    mlp_idx_free(&images);
    mlp_idx_free(&lab);
    return rc;
}

/* gzip around bytes[0..n) into gz (stored deflate blocks of at most 100
   bytes, so a stream has several); flags adds the optional header fields.
   Returns the length. */
static size_t gzip_stored(unsigned char *gz, const unsigned char *bytes, size_t n, int flags)
{
    size_t len = 0, i;
    uint32_t crc = mlp_crc32(bytes, n);
    unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    head[3] = (unsigned char)flags;
    memcpy(gz, head, 10); len = 10;
    if (flags & 4) { gz[len++] = 3; gz[len++] = 0; gz[len++] = 'a'; gz[len++] = 'b'; gz[len++] = 'c'; }
    if (flags & 8) { memcpy(gz + len, "name.idx", 9); len += 9; }
    if (flags & 16) { memcpy(gz + len, "a comment", 10); len += 10; }
    if (flags & 2) { gz[len++] = 0x12; gz[len++] = 0x34; }
    for (i = 0; i < n || i == 0; i += 100) {
        size_t k = n - i < 100 ? n - i : 100;
        gz[len++] = i + k >= n; gz[len++] = (unsigned char)k; gz[len++] = (unsigned char)(k >> 8);
        gz[len++] = (unsigned char)~k; gz[len++] = (unsigned char)(~k >> 8);
        memcpy(gz + len, bytes + i, k); len += k;
        if (k == 0) break;
    }
    for (i = 0; i < 4; i++) gz[len++] = (unsigned char)(crc >> (8 * i));
    for (i = 0; i < 4; i++) gz[len++] = (unsigned char)((uint32_t)n >> (8 * i));
    return len;
}

static void expect_gzip_error(const unsigned char *gz, size_t n, const char *message)
{
    mlp_idx idx;
    assert_int_equal(mlp_idx_load_memory(&idx, gz, n, "t.gz"), MLP_EFORMAT);
    if (!strstr(mlp_error(), message)) fail_msg("error \"%s\", want \"%s\"", mlp_error(), message);
    assert_null(idx.data);
}

/* A gzipped IDX file reads as the plain one, with any optional header
   fields, from memory and from a file; every damaged or lying stream is
   refused with its own message, and no prefix of a good one is accepted. */
static void test_gzip(void **state)
{
    static const int flag_sets[] = {0, 2, 4, 8, 16, 4 | 8 | 16 | 2};
    static unsigned char gz[4096], bad[4096];
    uint32_t dims[2] = {7, 30};
    unsigned char plain[4 + 8 + 210];
    size_t n_plain, n, i, k;
    mlp_idx idx;
    char *path;
    (void)state;
    n_plain = header(MLP_IDX_U8, 2, dims);
    for (i = 0; i < 210; i++) buf[n_plain + i] = (unsigned char)(i * 37 % 256);
    n_plain += 210;
    memcpy(plain, buf, n_plain);
    for (k = 0; k < sizeof flag_sets / sizeof *flag_sets; k++) {
        n = gzip_stored(gz, plain, n_plain, flag_sets[k]);
        assert_int_equal(mlp_idx_load_memory(&idx, gz, n, "t.gz"), 0);
        assert_int_equal(idx.ndims, 2);
        assert_int_equal(idx.dims[0], 7);
        assert_int_equal(idx.dims[1], 30);
        for (i = 0; i < 210; i++) assert_true(idx.data[i] == (float)(i * 37 % 256));
        mlp_idx_free(&idx);
    }
    memcpy(buf, gz, n);
    path = write_temp(n);
    assert_int_equal(mlp_idx_load(&idx, path), 0);
    assert_true(idx.count == 210 && idx.data[209] == (float)(209 * 37 % 256));
    mlp_idx_free(&idx);
    unlink(path);

    n = gzip_stored(gz, plain, n_plain, 0);
    memcpy(bad, gz, n); bad[n - 8] ^= 1;                 /* CRC */
    expect_gzip_error(bad, n, "CRC-32 mismatch");
    memcpy(bad, gz, n); bad[n - 4] += 1;                 /* size one more than the stream holds */
    expect_gzip_error(bad, n, "its trailer says");
    memcpy(bad, gz, n); bad[n - 4] -= 1;                 /* one less: the decoder runs out of room */
    expect_gzip_error(bad, n, "does not inflate");
    memcpy(bad, gz, n); bad[n - 1] = 0x70;               /* 1.9 GB from 250 bytes */
    expect_gzip_error(bad, n, "the gzip trailer claims");
    memcpy(bad, gz, n); bad[2] = 9;
    expect_gzip_error(bad, n, "compression method 9");
    memcpy(bad, gz, n); bad[3] = 0x20;
    expect_gzip_error(bad, n, "reserved gzip flags");
    memcpy(bad, gz, n); bad[13] ^= 0xff;                 /* the first block's ~LEN */
    expect_gzip_error(bad, n, "does not inflate");
    memcpy(bad, gz, n); bad[3] = 8; memset(bad + 10, 'x', n - 10); /* a name that never ends */
    expect_gzip_error(bad, n, "never ends");
    memcpy(bad, gz, n); bad[3] = 4; bad[10] = 0xff; bad[11] = 0xff; /* FEXTRA past the end */
    expect_gzip_error(bad, n, "truncated gzip stream");
    n = gzip_stored(bad, gz, n, 0);                      /* gzip of a gzip */
    expect_gzip_error(bad, n, "gzip inside gzip");
    n = gzip_stored(gz, plain, n_plain, 4 | 8 | 16 | 2);
    for (i = 0; i < n; i++) {                            /* every prefix */
        assert_true(mlp_idx_load_memory(&idx, gz, i, "t.gz") < 0);
        assert_null(idx.data);
    }
}

static void test_dataset(void **state)
{
    const uint64_t ok[3] = {0, 9, 4}, neg[3] = {1, 0xff, 2}, big[3] = {1, 70000, 2};
    mlp_dataset ds;
    mlp_net *net;
    (void)state;
    assert_int_equal(make_dataset(&ds, MLP_IDX_U8, 3, ok, 1), 0);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.dim, 4);
    assert_int_equal(ds.n_classes, 10);
    assert_true(ds.x[5] == 1.0f && ds.x[4] == (float)(4.0f / 255.0f)); /* (float): x87 keeps excess precision */
    assert_int_equal(ds.y[1], 9);
    net = mlp_create_spec("4-3-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_int_equal(mlp_dataset_check(net, &ds), 0);
    mlp_free(net);
    net = mlp_create_spec("4-3-9", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_true(mlp_dataset_check(net, &ds) < 0);
    assert_string_equal(mlp_error(), "label 9 of sample 1 is not below the network's output width 9");
    mlp_free(net);
    net = mlp_create_spec("5-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_true(mlp_dataset_check(net, &ds) < 0);
    assert_non_null(strstr(mlp_error(), "4 features per sample but the network's input width is 5"));
    mlp_free(net);
    mlp_dataset_free(&ds);

    assert_true(make_dataset(&ds, MLP_IDX_U8, 2, ok, 1) < 0);
    assert_string_equal(mlp_error(), "3 images but 2 labels");
    assert_true(make_dataset(&ds, MLP_IDX_S8, 3, neg, 1) < 0);
    assert_non_null(strstr(mlp_error(), "label -1 at index 1 is out of range"));
    assert_true(make_dataset(&ds, MLP_IDX_I32, 3, big, 4) < 0);
    assert_non_null(strstr(mlp_error(), "label 70000 at index 1 is out of range"));
    assert_null(ds.x);
}

static void test_dataset_load_names_files(void **state)
{
    mlp_dataset ds;
    (void)state;
    assert_true(mlp_dataset_load(&ds, "/nonexistent/images", "/nonexistent/labels") < 0);
    assert_string_equal(mlp_error(), "/nonexistent/images: cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ubyte_golden),
        cmocka_unit_test(test_every_type_golden),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_dataset),
        cmocka_unit_test(test_dataset_load_names_files),
    };
    return cmocka_run_group_tests_name("idx", tests, NULL, NULL);
}
