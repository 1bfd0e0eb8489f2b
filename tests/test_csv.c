/* CSV data sets (mlp.h 0.5): mlp_dataset_parse_csv / mlp_dataset_load_csv,
   mlp_csv_find_column, mlp_dataset_split, mlp_dataset_standardize, the
   per-column input normalisation and the class names, in memory and in
   model files.

   Expected values are worked out here by hand from the specification
   (notes/csv_spec.md and mlp.h's comments), never from the code under
   test. Every text is handed over in a buffer of exactly its length (no
   terminating NUL), so under ASan a parser that looks one byte past the
   end faults instead of finding a neighbour's byte. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <locale.h>
#include <unistd.h>

#define MLP_IMPLEMENTATION
#include "../mlp.h"

/* ---- helpers -------------------------------------------------------------- */

/* a copy of text[0..len) in a buffer of exactly len bytes (1 if len is 0) */
static char *exact_copy(const char *text, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len) memcpy(p, text, len);
    return p;
}

static int parse_len(mlp_dataset *ds, const char *text, size_t len, int label, int header,
                     const mlp_dataset *classes_of)
{
    char *copy = exact_copy(text, len);
    int rc = mlp_dataset_parse_csv(ds, copy, len, "t.csv", label, header, classes_of);
    free(copy);
    return rc;
}

/* parses text (which must be good) into ds */
static void parse_ok(mlp_dataset *ds, const char *text, int label, int header, const mlp_dataset *classes_of)
{
    int rc;
    memset(ds, 0x5a, sizeof *ds);
    rc = parse_len(ds, text, strlen(text), label, header, classes_of);
    if (rc != 0) fail_msg("parse of \"%s\" failed (%d): %s", text, rc, mlp_error());
    assert_true(ds->scale == 1.0f);
    assert_int_equal(ds->image_w, 0);
    assert_int_equal(ds->image_h, 0);
}

static void assert_zeroed(const mlp_dataset *ds)
{
    assert_int_equal(ds->n, 0);
    assert_int_equal(ds->dim, 0);
    assert_int_equal(ds->n_classes, 0);
    assert_int_equal(ds->image_w, 0);
    assert_int_equal(ds->image_h, 0);
    assert_true(ds->scale == 0.0f);
    assert_null(ds->x);
    assert_null(ds->y);
    assert_null(ds->class_names);
}

static void assert_x(const mlp_dataset *ds, const float *want, int count)
{
    int i;
    assert_int_equal(ds->n * ds->dim, count);
    for (i = 0; i < count; i++)
        if (!(ds->x[i] == want[i])) fail_msg("x[%d] = %.9g, want %.9g", i, ds->x[i], want[i]);
}

static void assert_y(const mlp_dataset *ds, const int *want, int count)
{
    int i;
    assert_int_equal(ds->n, count);
    for (i = 0; i < count; i++)
        if (ds->y[i] != want[i]) fail_msg("y[%d] = %d, want %d", i, ds->y[i], want[i]);
}

static void assert_names(const mlp_dataset *ds, const char *const *want, int count)
{
    int i;
    assert_int_equal(ds->n_classes, count);
    assert_non_null(ds->class_names);
    for (i = 0; i < count; i++) {
        assert_non_null(ds->class_names[i]);
        if (strcmp(ds->class_names[i], want[i]) != 0)
            fail_msg("class_names[%d] = \"%s\", want \"%s\"", i, ds->class_names[i], want[i]);
    }
}

/* A broken text: rc, the message's "t.csv: line L, column C: " prefix and
   (when given) more of it, ds left zeroed. Returns 0 when all hold, else
   prints what differs and returns 1. */
static int check_fail_len(const char *what, const char *text, size_t len, int label, int header,
                          const mlp_dataset *classes_of, int code, const char *prefix, const char *more)
{
    mlp_dataset ds;
    int rc;
    memset(&ds, 0x5a, sizeof ds);
    mlp_mat_create(NULL, 1, 1); /* a known message, so a stale one cannot pass */
    rc = parse_len(&ds, text, len, label, header, classes_of);
    if (rc == 0) {
        print_error("%s: accepted (n %d, dim %d, n_classes %d), want rc %d and \"%s%s\"\n", what, ds.n, ds.dim,
                    ds.n_classes, code, prefix, more ? more : "...");
        mlp_dataset_free(&ds);
        return 1;
    }
    if (rc != code || strncmp(mlp_error(), prefix, strlen(prefix)) != 0 || (more && !strstr(mlp_error(), more))) {
        print_error("%s: rc %d, message \"%s\"; want rc %d and \"%s%s\"\n", what, rc, mlp_error(), code, prefix,
                    more ? more : "...");
        return 1;
    }
    assert_zeroed(&ds);
    return 0;
}

static void expect_fail_len(const char *what, const char *text, size_t len, int label, int header,
                            const mlp_dataset *classes_of, int code, const char *prefix, const char *more)
{
    if (check_fail_len(what, text, len, label, header, classes_of, code, prefix, more)) fail();
}

static char *write_temp(const char *bytes, size_t len)
{
    static char path[64];
    int fd;
    FILE *f;
    snprintf(path, sizeof path, "/tmp/mlp_test_csv_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    return path;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static unsigned char *save(const mlp_net *net, size_t *size)
{
    unsigned char *buf;
    assert_int_equal(mlp_save_memory(net, NULL, 0, size), MLP_OK);
    buf = malloc(*size);
    assert_non_null(buf);
    assert_int_equal(mlp_save_memory(net, buf, *size, size), MLP_OK);
    return buf;
}

/* ---- (a) good files ------------------------------------------------------- */

/* every allowed spelling of a number, one per line, no label column */
static void test_number_forms(void **state)
{
    static const char text[] =
        "1\n+2\n-3\n4.5\n-.5\n.25\n5.\n+6.\n1e3\n1E3\n2.5e-1\n-1.5E+2\n007\n0.000\n"
        " 8 \n\t9\t\n\"10\"\n \"12\" \n3.4e38\n1e-50\n-0\n0.1\n3.14159\n+.5\n1e0\n"
        "123456789\n0.000001\n-2.5e+0\n 	 -7.75 	\n1E-3";
    const float want[] = {1, 2, -3, 4.5f, -0.5f, 0.25f, 5, 6, 1000, 1000, 0.25f, -150, 7, 0,
                          8, 9, 10, 12, 3.4e38f, 0, 0, 0.1f, 3.14159f, 0.5f, 1,
                          123456789.0f, 0.000001f, -2.5f, -7.75f, 0.001f};
    const int n = (int)(sizeof want / sizeof *want);
    mlp_dataset ds;
    int i;
    (void)state;
    parse_ok(&ds, text, MLP_CSV_NONE, 0, NULL);
    assert_int_equal(ds.n, n);
    assert_int_equal(ds.dim, 1);
    assert_int_equal(ds.n_classes, 0);
    assert_null(ds.class_names);
    assert_x(&ds, want, n);
    for (i = 0; i < n; i++) assert_int_equal(ds.y[i], 0);
    mlp_dataset_free(&ds);
    assert_zeroed(&ds);
}

/* "1.5" is one and a half whatever the C locale says the decimal point is
   (a program may have called setlocale). Skipped when no locale with a
   decimal comma is installed; to run it anyway:
     localedef -i de_DE -f UTF-8 /tmp/mlp_locale/de_DE.UTF-8
     LOCPATH=/tmp/mlp_locale build/test_csv */
static void test_numbers_ignore_locale(void **state)
{
    static const char *const comma_locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR"};
    static const char text[] = "1.5,0\n2.25e1,1\n-.75,0\n";
    mlp_dataset ds;
    size_t k;
    int rc;
    float x[3] = {0, 0, 0};
    (void)state;
    for (k = 0; k < sizeof comma_locales / sizeof *comma_locales; k++)
        if (setlocale(LC_NUMERIC, comma_locales[k]) && localeconv()->decimal_point[0] == ',') break;
    if (k == sizeof comma_locales / sizeof *comma_locales) {
        setlocale(LC_NUMERIC, "C");
        print_message("no locale with a decimal comma installed: test_numbers_ignore_locale skipped\n");
        skip();
    }
    rc = parse_len(&ds, text, sizeof text - 1, MLP_CSV_LAST, 0, NULL);
    if (rc == 0) { x[0] = ds.x[0]; x[1] = ds.x[1]; x[2] = ds.x[2]; mlp_dataset_free(&ds); }
    setlocale(LC_NUMERIC, "C");
    if (rc != 0) fail_msg("refused under %s: %s", comma_locales[k], mlp_error());
    if (x[0] != 1.5f || x[1] != 22.5f || x[2] != -0.75f)
        fail_msg("under %s: %g %g %g, want 1.5 22.5 -0.75", comma_locales[k], x[0], x[1], x[2]);
}

/* header, BOM, quotes with "" and a comma inside, CRLF, spaces and tabs
   around fields (quoted ones too), trailing blank lines */
static void test_quotes_crlf_bom_header(void **state)
{
    static const char text[] =
        "\xEF\xBB\xBF\"x\",\"y\",\"lab,el\"\r\n"
        "1,2,\"a\"\"b\"\r\n"
        " 3 ,\t\"4\" ,  c d \r\n"
        "\"-5\",6.5,\"x,y\"\r\n"
        "\r\n\r\n";
    const float want_x[] = {1, 2, 3, 4, -5, 6.5f};
    const int want_y[] = {0, 1, 2};
    const char *const names[] = {"a\"b", "c d", "x,y"}; /* '"' 0x22 < 'c' < 'x' */
    mlp_dataset ds;
    (void)state;
    parse_ok(&ds, text, MLP_CSV_LAST, 1, NULL);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.dim, 2);
    assert_x(&ds, want_x, 6);
    assert_y(&ds, want_y, 3);
    assert_names(&ds, names, 3);
    mlp_dataset_free(&ds);
    assert_zeroed(&ds);
}

/* without a final newline; LF and CRLF mixed; trailing empty lines of both kinds */
static void test_line_ends(void **state)
{
    const float want_x[] = {1, 2, 3, 4};
    const int want_y[] = {0, 1};
    static const char *const texts[] = {
        "1,2,0\n3,4,1", "1,2,0\n3,4,1\n", "1,2,0\r\n3,4,1\r\n", "1,2,0\r\n3,4,1",
        "1,2,0\n3,4,1\r\n\n\r\n\n", "1,2,0\r\n3,4,1\n\n", "1,2,0\n3,4,1\n\n\n\n\n",
    };
    size_t k;
    (void)state;
    for (k = 0; k < sizeof texts / sizeof *texts; k++) {
        mlp_dataset ds;
        parse_ok(&ds, texts[k], MLP_CSV_LAST, 0, NULL);
        assert_int_equal(ds.dim, 2);
        assert_int_equal(ds.n_classes, 2);
        assert_null(ds.class_names);
        assert_x(&ds, want_x, 4);
        assert_y(&ds, want_y, 2);
        mlp_dataset_free(&ds);
    }
}

/* the same data with the label first, in the middle, last (both spellings) */
static void test_label_column(void **state)
{
    const float want_x[] = {1.5f, 2.5f, 3.5f, 4.5f, -1, -2};
    const int want_y[] = {7, 8, 0};
    mlp_dataset ds;
    (void)state;
    parse_ok(&ds, "7,1.5,2.5\n8,3.5,4.5\n0,-1,-2\n", 0, 0, NULL);
    assert_int_equal(ds.dim, 2);
    assert_int_equal(ds.n_classes, 9); /* largest label + 1 */
    assert_x(&ds, want_x, 6);
    assert_y(&ds, want_y, 3);
    mlp_dataset_free(&ds);

    parse_ok(&ds, "1.5,7,2.5\n3.5,8,4.5\n-1,0,-2\n", 1, 0, NULL);
    assert_int_equal(ds.dim, 2);
    assert_int_equal(ds.n_classes, 9);
    assert_x(&ds, want_x, 6);
    assert_y(&ds, want_y, 3);
    mlp_dataset_free(&ds);

    parse_ok(&ds, "1.5,2.5,7\n3.5,4.5,8\n-1,-2,0\n", MLP_CSV_LAST, 0, NULL);
    assert_int_equal(ds.dim, 2);
    assert_int_equal(ds.n_classes, 9);
    assert_x(&ds, want_x, 6);
    assert_y(&ds, want_y, 3);
    mlp_dataset_free(&ds);

    parse_ok(&ds, "1.5,2.5,7\n3.5,4.5,8\n-1,-2,0\n", 2, 0, NULL);
    assert_x(&ds, want_x, 6);
    assert_y(&ds, want_y, 3);
    mlp_dataset_free(&ds);

    /* with a header and a name label in the middle */
    parse_ok(&ds, "a,species,b\n1.5,virginica,2.5\n3.5,setosa,4.5\n-1,virginica,-2\n", 1, 1, NULL);
    {
        const int y[] = {1, 0, 1};
        const char *const names[] = {"setosa", "virginica"};
        assert_x(&ds, want_x, 6);
        assert_y(&ds, y, 3);
        assert_names(&ds, names, 2);
    }
    mlp_dataset_free(&ds);
}

/* Integer labels are indices; any non-integer label makes every label a
   name, sorted by bytes (strcmp, unsigned: UTF-8 after ASCII). */
static void test_labels_integers_and_names(void **state)
{
    mlp_dataset ds;
    (void)state;
    {
        const int y[] = {2, 0, 5, 2};
        parse_ok(&ds, "0,2\n0,0\n0, 5 \n0,2\n", MLP_CSV_LAST, 0, NULL);
        assert_int_equal(ds.n_classes, 6);
        assert_null(ds.class_names);
        assert_y(&ds, y, 4);
        mlp_dataset_free(&ds);
    }
    {
        const int y[] = {65535, 0};
        parse_ok(&ds, "1,65535\n2,0\n", MLP_CSV_LAST, 0, NULL);
        assert_int_equal(ds.n_classes, 65536);
        assert_null(ds.class_names);
        assert_y(&ds, y, 2);
        mlp_dataset_free(&ds);
    }
    {   /* 70000 is not an integer 0..65535, so every label is a name */
        const int y[] = {0, 1, 0};
        const char *const names[] = {"5", "70000"};
        parse_ok(&ds, "1,5\n2,70000\n3,5\n", MLP_CSV_LAST, 0, NULL);
        assert_y(&ds, y, 3);
        assert_names(&ds, names, 2);
        mlp_dataset_free(&ds);
    }
    {   /* a negative one too */
        const int y[] = {1, 0};
        const char *const names[] = {"-1", "1"};
        parse_ok(&ds, "1,1\n2,-1\n", MLP_CSV_LAST, 0, NULL);
        assert_y(&ds, y, 2);
        assert_names(&ds, names, 2);
        mlp_dataset_free(&ds);
    }
    {
        /* "10" < "9" < "Alpha" < "alpha" < "zeta" < "été" (0xC3...) */
        const int y[] = {4, 5, 2, 3, 4, 0, 1, 5};
        const char *const names[] = {"10", "9", "Alpha", "alpha", "zeta", "\xC3\xA9t\xC3\xA9"};
        parse_ok(&ds, "1,zeta\n2,\xC3\xA9t\xC3\xA9\n3,Alpha\n4,alpha\n5,zeta\n6,10\n7,9\n8,\"\xC3\xA9t\xC3\xA9\"\n",
                 MLP_CSV_LAST, 0, NULL);
        assert_y(&ds, y, 8);
        assert_names(&ds, names, 6);
        mlp_dataset_free(&ds);
    }
    {   /* 255 bytes is the longest name; the highest bytes are allowed */
        char text[600], name[256];
        const char *names[2];
        const int y[] = {1, 0};
        memset(name, 'n', 255); name[255] = 0;
        name[0] = '\x80'; name[254] = '\xFF';
        snprintf(text, sizeof text, "1,%s\n2,a\n", name);
        names[0] = "a"; names[1] = name;
        parse_ok(&ds, text, MLP_CSV_LAST, 0, NULL);
        assert_y(&ds, y, 2);
        assert_names(&ds, names, 2);
        assert_int_equal(strlen(ds.class_names[1]), 255);
        mlp_dataset_free(&ds);
    }
    {   /* one sample, one class */
        const char *const names[] = {"only"};
        const int y[] = {0};
        parse_ok(&ds, "3,only", MLP_CSV_LAST, 0, NULL);
        assert_y(&ds, y, 1);
        assert_names(&ds, names, 1);
        mlp_dataset_free(&ds);
    }
}

/* classes_of: the training set fixes the mapping for a test set */
static void test_classes_of(void **state)
{
    mlp_dataset train, test;
    (void)state;
    {   /* names: the test set lacks "b" and lists the others in another order */
        const int y[] = {2, 0, 2};
        const char *const names[] = {"a", "b", "c"};
        parse_ok(&train, "1,b\n2,c\n3,a\n", MLP_CSV_LAST, 0, NULL);
        parse_ok(&test, "4,c\n5,a\n6,c\n", MLP_CSV_LAST, 0, &train);
        assert_int_equal(test.dim, 1);
        assert_y(&test, y, 3);
        assert_names(&test, names, 3);
        assert_true(test.class_names != train.class_names);
        mlp_dataset_free(&train); /* the test set's names are its own */
        assert_names(&test, names, 3);
        mlp_dataset_free(&test);
    }
    {   /* the training labels are names, so integer-looking test labels are names too */
        const int y[] = {1, 0, 2};
        const char *const names[] = {"1", "2", "cat"};
        parse_ok(&train, "1,1\n2,2\n3,cat\n", MLP_CSV_LAST, 0, NULL);
        assert_names(&train, names, 3);
        parse_ok(&test, "4,2\n5,1\n6,cat\n", MLP_CSV_LAST, 0, &train);
        assert_y(&test, y, 3);
        assert_names(&test, names, 3);
        mlp_dataset_free(&test);
        mlp_dataset_free(&train);
    }
    {   /* integers: n_classes is the training set's, not this file's largest + 1 */
        const int y[] = {1, 1, 0};
        parse_ok(&train, "1,0\n2,4\n", MLP_CSV_LAST, 0, NULL);
        assert_int_equal(train.n_classes, 5);
        parse_ok(&test, "1,1\n2,1\n3,0\n", MLP_CSV_LAST, 0, &train);
        assert_y(&test, y, 3);
        assert_int_equal(test.n_classes, 5);
        assert_null(test.class_names);
        mlp_dataset_free(&test);
        parse_ok(&test, "1,4\n", MLP_CSV_LAST, 0, &train);
        assert_int_equal(test.y[0], 4);
        assert_int_equal(test.n_classes, 5);
        mlp_dataset_free(&test);
        mlp_dataset_free(&train);
    }
}

static void test_no_label(void **state)
{
    const float want_x[] = {1, 2, 3, 4, 5, 6};
    mlp_dataset ds;
    (void)state;
    parse_ok(&ds, "a,b,c\n1,2,3\n4,5,6\n", MLP_CSV_NONE, 1, NULL);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.dim, 3);
    assert_int_equal(ds.n_classes, 0);
    assert_null(ds.class_names);
    assert_non_null(ds.y);
    assert_int_equal(ds.y[0], 0);
    assert_int_equal(ds.y[1], 0);
    assert_x(&ds, want_x, 6);
    mlp_dataset_free(&ds);
}

/* only len bytes are read: what follows is not part of the text */
static void test_len_is_respected(void **state)
{
    static const char text[] = "1,2,0\n3,4,1\nabc,def";
    const float want_x[] = {1, 2, 3, 4};
    mlp_dataset ds;
    (void)state;
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(parse_len(&ds, text, 12, MLP_CSV_LAST, 0, NULL), 0);
    assert_x(&ds, want_x, 4);
    mlp_dataset_free(&ds);
    assert_int_equal(parse_len(&ds, text, 11, MLP_CSV_LAST, 0, NULL), 0); /* "...,1" without its newline */
    assert_x(&ds, want_x, 4);
    assert_int_equal(ds.y[1], 1);
    mlp_dataset_free(&ds);
    /* "3,4,": the label field is empty */
    expect_fail_len("cut", text, 10, MLP_CSV_LAST, 0, NULL, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL);
}

/* ---- (b) broken files ----------------------------------------------------- */

#define NOT_A_NUMBER(s) "\"" s "\" is not a number"

typedef struct broken_case {
    const char *what, *text;
    size_t len;        /* 0: strlen(text) */
    int label, header;
    int classes;       /* classes_of: 0 none, 1 names {cat, dog}, 2 integers (n_classes 3) */
    int code;
    const char *prefix, *more;
} broken_case;

static const broken_case broken[] = {
    /* ragged rows */
    {"short row", "1,2,0\n3,4\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"short row, CRLF, line 5", "1,2,0\r\n1,2,0\r\n1,2,0\r\n1,2,0\r\n1\r\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT,
     "t.csv: line 5, column 2: ", NULL},
    {"short last row without newline", "1,2,0\n3,4", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"long row", "1,2,0\n3,4,1,9\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 4: ", NULL},
    {"long row after a header", "a,b\n1,2,0\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"short row after a header", "a,b,c\n1,2\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    /* not numbers */
    {"abc", "1,2,0\n1,abc,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 2: ", NOT_A_NUMBER("abc")},
    {"1.2.3", "1.2.3,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("1.2.3")},
    {"nan", "1,2,0\n3,4,1\nnan,5,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 3, column 1: ", NOT_A_NUMBER("nan")},
    {"NaN", "1,NaN,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("NaN")},
    {"inf", "1,inf,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("inf")},
    {"-inf", "1,-inf,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("-inf")},
    {"Infinity", "1,Infinity,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("Infinity")},
    {"0x10", "0x10,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("0x10")},
    {"0x1p3", "0x1p3,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("0x1p3")},
    {"1e", "1e,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("1e")},
    {"1e+", "1,1e+,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("1e+")},
    {"e5", "e5,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("e5")},
    {".", ".,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER(".")},
    {"-", "1,-,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NOT_A_NUMBER("-")},
    {"+", "+,1,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("+")},
    {"--1", "--1,1,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("--1")},
    {"1 2", "1 2,1,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("1 2")},
    {"1f", "1,2,0\n1f,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 1: ", NOT_A_NUMBER("1f")},
    {"1,5 decimal comma (quoted)", "\"1,5\",2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ",
     NOT_A_NUMBER("1,5")},
    {"1e5.5", "1e5.5,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NOT_A_NUMBER("1e5.5")},
    {"a word with no label column", "1,2,cat\n", 0, MLP_CSV_NONE, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 3: ",
     NOT_A_NUMBER("cat")},
    {"a header without has_header", "a,b,c\n1,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ",
     NOT_A_NUMBER("a")},
    {"label first, a word in column 3", "0,1,x\n", 0, 0, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 3: ", NOT_A_NUMBER("x")},
    {"a BOM only at the start", "1,2,0\n\xEF\xBB\xBF" "1,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT,
     "t.csv: line 2, column 1: ", NULL},
    {"a NUL byte in a number", "1,2,0\n3,4\0,1\n", 13, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 2: ", NULL},
    {"a CR alone inside a line", "1,2\r3,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    /* not finite as a float */
    {"1e999", "1,1e999,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"3.5e38", "1,2,0\n3.5e38,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL},
    {"-1e39", "1,-1e39,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"400 digits", "1,1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000,0\n",
     0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    /* empty fields */
    {"empty middle field", "1,,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"empty first field", "1,2,0\n,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL},
    {"blank field", "1, \t ,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"quoted empty field", "\"\",2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"empty label", "1,2,a\n1,2,\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"empty integer label", "1,2,0\n1,2,\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"empty label, label first", ",2,3\n", 0, 0, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    /* no data */
    {"empty file", "", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"empty file, no label", "", 0, MLP_CSV_NONE, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"a BOM only", "\xEF\xBB\xBF", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    /* (where "no data" is, the specification leaves open) */
    {"blank lines only", "\n\r\n\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line ", ", column 1: "},
    {"header only", "a,b,c\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line ", ", column 1: "},
    {"header only, no newline", "a,b,c", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line ", ", column 1: "},
    {"header and blank lines", "a,b,c\r\n\r\n\r\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line ", ", column 1: "},
    /* quotes */
    {"unterminated quote", "1,2,0\n1,\"2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 2: ", NULL},
    {"unterminated quote at the end", "1,2,0\n1,2,\"0", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"a lone quote", "\"", 0, MLP_CSV_NONE, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"newline inside quotes", "1,\"2\n\",0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"CRLF inside quotes", "1,2,\"a\r\nb\"\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 3: ", NULL},
    {"newline inside a quoted header", "a,\"b\nc\",d\n1,2,0\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT,
     "t.csv: line 1, column 2: ", NULL},
    /* blank lines before data */
    {"blank line before data", "1,2,0\n\n1,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL},
    {"blank CRLF line before data", "1,2,0\r\n3,4,1\r\n\r\n5,6,0\r\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT,
     "t.csv: line 3, column 1: ", NULL},
    {"blank first line", "\n1,2,0\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"blank line after the header", "a,b,c\n\n1,2,0\n", 0, MLP_CSV_LAST, 1, 0, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL},
    /* label names */
    {"a 256-byte name", "1,2,0\n1,2,"
     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
     "nnnnnnnnnnnnnnnn\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"a control byte in a name", "1,2,a\n1,2,a\001b\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 2, column 3: ", NULL},
    {"DEL in a name", "1,2,a\x7f" "b\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 3: ", NULL},
    {"a tab inside a name", "1,a\tb,2\n", 0, 1, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"a NUL in a name", "1,2,a\0b\n", 8, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 3: ", NULL},
    {"NUL in names a\\0b, a\\0c", "1,a\0b\n2,a\0c\n", 12, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"a NUL after an integer label", "1,5\0\n", 5, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    {"a NUL before a number", "1,\0" "2,0\n", 6, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column 2: ", NULL},
    /* classes_of */
    {"a name the training set lacks", "1,cat\n2,dog\n3,emu\n", 0, MLP_CSV_LAST, 0, 1, MLP_EFORMAT,
     "t.csv: line 3, column 2: ", NULL},
    {"an integer label when the training set has names", "1,cat\n2,1\n", 0, MLP_CSV_LAST, 0, 1, MLP_EFORMAT,
     "t.csv: line 2, column 2: ", NULL},
    {"a label >= the training set's n_classes", "1,0\n2,2\n3,3\n", 0, MLP_CSV_LAST, 0, 2, MLP_EFORMAT,
     "t.csv: line 3, column 2: ", NULL},
    {"a label >= n_classes, label first", "7,1\n", 0, 0, 0, 2, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL},
    {"a name when the training set has integers", "1,0\n2,cat\n", 0, MLP_CSV_LAST, 0, 2, MLP_EFORMAT,
     "t.csv: line 2, column 2: ", NULL},
    /* label column out of range: the file has 3 columns (which column to blame is left open) */
    {"label column 3 of 3", "1,2,0\n", 0, 3, 0, 0, MLP_EFORMAT, "t.csv: line 1, column ", NULL},
    {"label column 3 of 3, header", "a,b,c\n1,2,0\n", 0, 3, 1, 0, MLP_EFORMAT, "t.csv: line 1, column ", NULL},
    {"label column 100", "1,2,0\n", 0, 100, 0, 0, MLP_EFORMAT, "t.csv: line 1, column ", NULL},
    {"only a label column", "1\n2\n", 0, MLP_CSV_LAST, 0, 0, MLP_EFORMAT, "t.csv: line 1, column ", NULL},
    {"label column -3", "1,2,0\n", 0, -3, 0, 0, MLP_EARG, "", NULL},
};

static void test_broken_table(void **state)
{
    mlp_dataset names, ints;
    size_t k;
    int failures = 0;
    (void)state;
    parse_ok(&names, "0,dog\n0,cat\n", MLP_CSV_LAST, 0, NULL);
    parse_ok(&ints, "0,0\n0,2\n", MLP_CSV_LAST, 0, NULL);
    assert_int_equal(ints.n_classes, 3);
    for (k = 0; k < sizeof broken / sizeof *broken; k++) {
        const broken_case *c = &broken[k];
        failures += check_fail_len(c->what, c->text, c->len ? c->len : strlen(c->text), c->label, c->header,
                                   c->classes == 1 ? &names : c->classes == 2 ? &ints : NULL, c->code, c->prefix,
                                   c->more);
    }
    mlp_dataset_free(&names);
    mlp_dataset_free(&ints);
    if (failures) fail_msg("%d of %d broken texts not refused as specified", failures, (int)k);
}

/* A line of MLP_CSV_MAX_LINE bytes is read; one byte more is refused. The
   long field is zeros (a finite number), so only the length can be blamed. */
static void test_long_lines(void **state)
{
    const size_t max = MLP_CSV_MAX_LINE;
    char *text = malloc(2 * max + 64);
    size_t n, i;
    mlp_dataset ds;
    (void)state;
    assert_non_null(text);
    /* "5\n" then max - 2 zeros and "\r\n": max bytes with the line end */
    memcpy(text, "5\n", 2);
    memset(text + 2, '0', max - 2);
    memcpy(text + max, "\r\n", 2);
    n = max + 2;
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(parse_len(&ds, text, n, MLP_CSV_NONE, 0, NULL), 0);
    assert_int_equal(ds.n, 2);
    assert_true(ds.x[0] == 5.0f && ds.x[1] == 0.0f);
    mlp_dataset_free(&ds);

    /* max + 1 bytes before the newline */
    memset(text + 2, '0', max + 1);
    text[2 + max + 1] = '\n';
    n = 2 + max + 2;
    expect_fail_len("a long line", text, n, MLP_CSV_NONE, 0, NULL, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL);
    expect_fail_len("a long last line", text, n - 1, MLP_CSV_NONE, 0, NULL, MLP_EFORMAT, "t.csv: line 2, column 1: ", NULL);
    /* the same as the first line */
    expect_fail_len("a long first line", text + 2, n - 2, MLP_CSV_NONE, 0, NULL, MLP_EFORMAT,
                    "t.csv: line 1, column 1: ", NULL);
    /* and as a header */
    expect_fail_len("a long header", text + 2, n - 2, MLP_CSV_NONE, 1, NULL, MLP_EFORMAT, "t.csv: line 1, column 1: ", NULL);

    /* many fields: "0,0,...,0,1\n" twice, just under the limit: (max - 2) / 2 inputs */
    n = 0;
    for (i = 0; i < 2; i++) {
        size_t start = n, k;
        for (k = 0; k < (max - 2) / 2; k++) { text[n++] = k % 7 ? '0' : '1'; text[n++] = ','; }
        text[n++] = (char)('0' + (int)i);
        assert_true(n - start <= max);
        text[n++] = '\n';
    }
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(parse_len(&ds, text, n, MLP_CSV_LAST, 0, NULL), 0);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.dim, (int)((max - 2) / 2));
    assert_int_equal(ds.n_classes, 2);
    assert_int_equal(ds.y[1], 1);
    for (i = 0; i < (size_t)ds.dim; i++) assert_true(ds.x[ds.dim + i] == (i % 7 ? 0.0f : 1.0f));
    mlp_dataset_free(&ds);
    free(text);
}

/* many rows (growth of the arrays) */
static void test_many_rows(void **state)
{
    const int rows = 100000;
    char *text = malloc((size_t)rows * 24);
    size_t n = 0;
    mlp_dataset ds;
    int i;
    (void)state;
    assert_non_null(text);
    for (i = 0; i < rows; i++) n += (size_t)sprintf(text + n, "%d,%d.5,%d\r\n", i, -i, i % 10);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(parse_len(&ds, text, n, MLP_CSV_LAST, 0, NULL), 0);
    assert_int_equal(ds.n, rows);
    assert_int_equal(ds.dim, 2);
    assert_int_equal(ds.n_classes, 10);
    for (i = 0; i < rows; i++) {
        if (ds.x[2 * i] != (float)i || ds.x[2 * i + 1] != (float)(-i) - 0.5f * (i ? 1 : -1) || ds.y[i] != i % 10)
            fail_msg("row %d: %g %g %d", i, ds.x[2 * i], ds.x[2 * i + 1], ds.y[i]);
    }
    mlp_dataset_free(&ds);
    free(text);
}

static void test_bad_arguments(void **state)
{
    mlp_dataset ds;
    (void)state;
    assert_int_equal(mlp_dataset_parse_csv(NULL, "1,0\n", 4, "t.csv", MLP_CSV_LAST, 0, NULL), MLP_EARG);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_parse_csv(&ds, NULL, 4, "t.csv", MLP_CSV_LAST, 0, NULL), MLP_EARG);
    assert_zeroed(&ds);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_parse_csv(&ds, "1,0\n", 4, "t.csv", -3, 0, NULL), MLP_EARG);
    assert_zeroed(&ds);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_parse_csv(&ds, "1,0\n", 4, "t.csv", -1000, 0, NULL), MLP_EARG);
    assert_zeroed(&ds);
    /* name may be NULL */
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_parse_csv(&ds, "1,0\n", 4, NULL, MLP_CSV_LAST, 0, NULL), 0);
    assert_int_equal(ds.n, 1);
    mlp_dataset_free(&ds);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_parse_csv(&ds, "1,x,0\n", 6, NULL, MLP_CSV_LAST, 0, NULL), MLP_EFORMAT);
    assert_non_null(strstr(mlp_error(), "line 1, column 2: " NOT_A_NUMBER("x")));
    assert_zeroed(&ds);
    /* an empty text without a buffer */
    memset(&ds, 0x5a, sizeof ds);
    assert_true(mlp_dataset_parse_csv(&ds, NULL, 0, "t.csv", MLP_CSV_LAST, 0, NULL) < 0);
    assert_zeroed(&ds);
    /* mlp_dataset_free on a zeroed set and on NULL */
    memset(&ds, 0, sizeof ds);
    mlp_dataset_free(&ds);
    mlp_dataset_free(NULL);
}

/* ---- (c) files ------------------------------------------------------------ */

static void test_load_csv_file(void **state)
{
    static const char text[] = "\xEF\xBB\xBF" "f1, \"f 2\" ,class\r\n1,2,b\r\n3,4,a\r\n";
    static const char bad[] = "f1,f2,class\n1,2,b\n3,x,a\n";
    const float want_x[] = {1, 2, 3, 4};
    const int want_y[] = {1, 0};
    const char *const names[] = {"a", "b"};
    mlp_dataset ds, test;
    char *path, want[128];
    (void)state;
    path = write_temp(text, sizeof text - 1);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_load_csv(&ds, path, MLP_CSV_LAST, 1, NULL), 0);
    assert_x(&ds, want_x, 4);
    assert_y(&ds, want_y, 2);
    assert_names(&ds, names, 2);
    /* the same file as a test set of itself */
    assert_int_equal(mlp_dataset_load_csv(&test, path, 2, 1, &ds), 0);
    assert_y(&test, want_y, 2);
    mlp_dataset_free(&test);

    assert_int_equal(mlp_csv_find_column(path, "f1"), 0);    /* after the BOM */
    assert_int_equal(mlp_csv_find_column(path, "f 2"), 1);   /* quoted, spaces around */
    assert_int_equal(mlp_csv_find_column(path, "class"), 2); /* before the CR */
    assert_true(mlp_csv_find_column(path, "f") < 0);
    assert_true(mlp_csv_find_column(path, "class\r") < 0);
    assert_true(mlp_csv_find_column(path, "1") < 0);          /* the second line is not the header */
    assert_true(mlp_csv_find_column(path, "") < 0);
    unlink(path);
    mlp_dataset_free(&ds);

    /* errors from a file name the file */
    path = write_temp(bad, sizeof bad - 1);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_load_csv(&ds, path, MLP_CSV_LAST, 1, NULL), MLP_EFORMAT);
    snprintf(want, sizeof want, "%s: line 3, column 2: " NOT_A_NUMBER("x"), path);
    assert_string_equal(mlp_error(), want);
    assert_zeroed(&ds);
    unlink(path);

    /* an empty file */
    path = write_temp("", 0);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_load_csv(&ds, path, MLP_CSV_LAST, 0, NULL), MLP_EFORMAT);
    assert_zeroed(&ds);
    assert_true(mlp_csv_find_column(path, "a") < 0);
    unlink(path);

    /* missing */
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_load_csv(&ds, "/nonexistent/iris.csv", MLP_CSV_LAST, 1, NULL), MLP_EIO);
    assert_int_equal(strncmp(mlp_error(), "/nonexistent/iris.csv", 21), 0);
    assert_zeroed(&ds);
    assert_true(mlp_csv_find_column("/nonexistent/iris.csv", "a") < 0);
    /* a directory cannot be read as a file */
    memset(&ds, 0x5a, sizeof ds);
    assert_true(mlp_dataset_load_csv(&ds, "/tmp", MLP_CSV_LAST, 1, NULL) < 0);
    assert_zeroed(&ds);
    memset(&ds, 0x5a, sizeof ds);
    assert_int_equal(mlp_dataset_load_csv(&ds, NULL, MLP_CSV_LAST, 1, NULL), MLP_EARG);
    assert_zeroed(&ds);
}

static void test_find_column_header_forms(void **state)
{
    static const char lf[] = "a,b,c\n1,2,3\n";
    static const char one_line[] = "x,\"y,z\",\"q\"\"r\"";
    char *path;
    (void)state;
    path = write_temp(lf, sizeof lf - 1);
    assert_int_equal(mlp_csv_find_column(path, "c"), 2);
    assert_int_equal(mlp_csv_find_column(path, "a"), 0);
    assert_true(mlp_csv_find_column(path, "3") < 0);
    assert_true(mlp_csv_find_column(path, NULL) < 0);
    unlink(path);
    path = write_temp(one_line, sizeof one_line - 1);
    assert_int_equal(mlp_csv_find_column(path, "y,z"), 1);
    assert_int_equal(mlp_csv_find_column(path, "q\"r"), 2);
    assert_true(mlp_csv_find_column(path, "y") < 0);
    unlink(path);
}


/* a first line too long: refused with a message whose column counts from 1 */
static void test_find_column_long_line(void **state)
{
    char *path, *long_line, want[128];
    (void)state;
    long_line = malloc(MLP_CSV_MAX_LINE + 16);
    assert_non_null(long_line);
    memset(long_line, 'x', MLP_CSV_MAX_LINE + 1);
    memcpy(long_line + MLP_CSV_MAX_LINE + 1, ",c\n", 3);
    path = write_temp(long_line, MLP_CSV_MAX_LINE + 4);
    free(long_line);
    assert_true(mlp_csv_find_column(path, "c") < 0);
    snprintf(want, sizeof want, "%s: line 1, column ", path);
    unlink(path);
    if (strncmp(mlp_error(), want, strlen(want)) != 0 || mlp_error()[strlen(want)] < '1' || mlp_error()[strlen(want)] > '9')
        fail_msg("message \"%s\", want \"%s\" and a column counted from 1", mlp_error(), want);
}

/* a header with a 0 byte is refused as the loader refuses it (a header
   name "a\0b" must never pass for "a") */
static void test_find_column_nul(void **state)
{
    static const char nul[] = "a\0b,c\n1,2\n";
    char *path = write_temp(nul, sizeof nul - 1);
    int a, c;
    (void)state;
    c = mlp_csv_find_column(path, "c");
    assert_true(c < 0);
    assert_non_null(strstr(mlp_error(), "line 1, column 1: a 0 byte"));
    a = mlp_csv_find_column(path, "a");
    unlink(path);
    if (a >= 0) fail_msg("\"a\" found as column %d of the header \"a\\0b,c\"", a);
}

/* ---- (d) split, standardise, columns, names, model files ------------------ */

/* 20 rows "i, 2i, label" */
static void make_rows(mlp_dataset *ds, int names)
{
    static const char *const words[3] = {"red", "green", "blue"};
    char text[1024];
    size_t n = 0;
    int i;
    for (i = 0; i < 20; i++) {
        if (names) n += (size_t)sprintf(text + n, "%d,%d,%s\n", i, 2 * i, words[i % 3]);
        else n += (size_t)sprintf(text + n, "%d,%d,%d\n", i, 2 * i, i % 3);
    }
    parse_ok(ds, text, MLP_CSV_LAST, 0, NULL);
    assert_int_equal(ds->n, 20);
}

/* which samples (by id = x[0]) held_out holds, as a bit mask */
static uint32_t held_mask(const mlp_dataset *held)
{
    uint32_t m = 0;
    int i;
    for (i = 0; i < held->n; i++) m |= 1u << (int)held->x[i * held->dim];
    return m;
}

static void test_split(void **state)
{
    /* red 0 -> 2, green 1 -> 1, blue 2 -> 0 in byte order (blue < green < red) */
    static const int name_index[3] = {2, 1, 0};
    mlp_dataset ds, held, again, again_held;
    int seen[20], i, names, counts[20];
    uint32_t first, seed;
    int differs = 0;
    (void)state;
    for (names = 0; names < 2; names++) {
        make_rows(&ds, names);
        memset(&held, 0x5a, sizeof held);
        assert_int_equal(mlp_dataset_split(&ds, &held, 5, 42), 0);
        assert_int_equal(ds.n, 15);
        assert_int_equal(held.n, 5);
        assert_int_equal(ds.dim, 2);
        assert_int_equal(held.dim, 2);
        assert_int_equal(ds.n_classes, 3);
        assert_int_equal(held.n_classes, 3);
        assert_ptr_equal(held.class_names, ds.class_names);
        assert_true(held.scale == 1.0f);
        /* the held-out samples are the last five of ds's memory */
        assert_ptr_equal(held.x, ds.x + 15 * 2);
        assert_ptr_equal(held.y, ds.y + 15);
        /* every sample exactly once, its label and inputs together */
        memset(seen, 0, sizeof seen);
        for (i = 0; i < 20; i++) {
            int id = (int)ds.x[2 * i];
            assert_true(id >= 0 && id < 20 && (float)id == ds.x[2 * i]);
            assert_true(ds.x[2 * i + 1] == (float)(2 * id));
            assert_int_equal(ds.y[i], names ? name_index[id % 3] : id % 3);
            seen[id]++;
        }
        for (i = 0; i < 20; i++) assert_int_equal(seen[i], 1);

        /* the same seed, the same split */
        make_rows(&again, names);
        assert_int_equal(mlp_dataset_split(&again, &again_held, 5, 42), 0);
        assert_memory_equal(again.x, ds.x, 40 * sizeof(float));
        assert_memory_equal(again.y, ds.y, 20 * sizeof(int));
        mlp_dataset_free(&again);
        mlp_dataset_free(&ds); /* never held */
    }

    /* other seeds, other samples; over many seeds every sample is held out some time */
    make_rows(&ds, 0);
    assert_int_equal(mlp_dataset_split(&ds, &held, 5, 42), 0);
    first = held_mask(&held);
    mlp_dataset_free(&ds);
    memset(counts, 0, sizeof counts);
    for (seed = 0; seed < 200; seed++) {
        uint32_t m;
        make_rows(&ds, 0);
        assert_int_equal(mlp_dataset_split(&ds, &held, 5, seed), 0);
        m = held_mask(&held);
        assert_int_equal(held.n, 5);
        for (i = 0; i < 20; i++) counts[i] += (int)(m >> i & 1);
        differs += m != first;
        mlp_dataset_free(&ds);
    }
    assert_true(differs > 150);
    for (i = 0; i < 20; i++) if (counts[i] < 10) fail_msg("sample %d held out %d times in 200 splits", i, counts[i]);

    /* bad counts leave ds as it was */
    make_rows(&ds, 0);
    assert_true(mlp_dataset_split(&ds, &held, -1, 1) < 0);
    assert_int_equal(ds.n, 20);
    assert_true(mlp_dataset_split(&ds, &held, 21, 1) < 0);
    assert_int_equal(ds.n, 20);
    for (i = 0; i < 20; i++) assert_true(ds.x[2 * i] == (float)i);
    assert_true(mlp_dataset_split(NULL, &held, 1, 1) < 0);
    assert_true(mlp_dataset_split(&ds, NULL, 1, 1) < 0);
    assert_int_equal(ds.n, 20);
    mlp_dataset_free(&ds);
}

static int close_to(float got, double want)
{
    return fabs((double)got - want) <= 1e-6 * (1.0 + fabs(want));
}

static void assert_close(const float *got, const double *want, int n, const char *what)
{
    int i;
    for (i = 0; i < n; i++)
        if (!close_to(got[i], want[i])) fail_msg("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i]);
}

/* Worked by hand: columns (0 0 4 4) mean 2, standard deviation 2 (over n:
   sqrt((4+4+4+4)/4)); (-1 5 -1 5) mean 2, deviation 3; (7 7 7 7) constant:
   mean 0 only. */
static void test_standardize(void **state)
{
    static const char train_text[] = "0,-1,7,a\n0,5,7,b\n4,-1,7,a\n4,5,7,b\n";
    static const char other_text[] = "2,8,7,b\n6,-4,7,a\n";
    const double want_train[12] = {-1, -1, 0, -1, 1, 0, 1, -1, 0, 1, 1, 0};
    const double want_other[6] = {0, 2, 0, 2, -2, 0};
    const double want_scale[3] = {0.5, 1.0 / 3.0, 1.0}, want_offset[3] = {-1, -2.0 / 3.0, -7};
    const float raw_train[12] = {0, -1, 7, 0, 5, 7, 4, -1, 7, 4, 5, 7};
    const float raw_other[6] = {2, 8, 7, 6, -4, 7};
    float scale[3], offset[3], x[3];
    mlp_dataset train, other;
    mlp_net *net, *narrow;
    mlp_input in;
    int i;
    (void)state;
    parse_ok(&train, train_text, MLP_CSV_LAST, 0, NULL);
    parse_ok(&other, other_text, MLP_CSV_LAST, 0, &train);
    net = mlp_create_spec("3-4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_non_null(net);
    assert_int_equal(mlp_get_input_columns(net, NULL, NULL), 0);

    /* the wrong width: nothing changes */
    narrow = mlp_create_spec("4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_true(mlp_dataset_standardize(narrow, &train, &other) < 0);
    assert_memory_equal(train.x, raw_train, sizeof raw_train);
    assert_memory_equal(other.x, raw_other, sizeof raw_other);
    assert_int_equal(mlp_get_input_columns(narrow, NULL, NULL), 0);
    mlp_free(narrow);
    assert_true(mlp_dataset_standardize(NULL, &train, &other) < 0);
    assert_true(mlp_dataset_standardize(net, NULL, &other) < 0);

    assert_int_equal(mlp_dataset_standardize(net, &train, &other), 0);
    assert_close(train.x, want_train, 12, "train");
    assert_close(other.x, want_other, 6, "other");
    assert_int_equal(mlp_get_input_columns(net, scale, offset), 1);
    assert_close(scale, want_scale, 3, "scale");
    assert_close(offset, want_offset, 3, "offset");
    in = mlp_get_input(net); /* the whole-input normalisation is left alone */
    assert_true(in.scale == 1.0f && in.offset == 0.0f);
    /* inference on raw rows does the same */
    for (i = 0; i < 4; i++) {
        assert_int_equal(mlp_normalize_input(net, raw_train + 3 * i, x), 0);
        assert_close(x, want_train + 3 * i, 3, "normalized train row");
    }
    for (i = 0; i < 2; i++) {
        assert_int_equal(mlp_normalize_input(net, raw_other + 3 * i, x), 0);
        assert_close(x, want_other + 3 * i, 3, "normalized other row");
    }
    /* labels untouched */
    assert_int_equal(train.y[1], 1);
    assert_int_equal(other.y[1], 0);
    mlp_dataset_free(&other);

    /* other is optional */
    mlp_dataset_free(&train);
    parse_ok(&train, train_text, MLP_CSV_LAST, 0, NULL);
    assert_int_equal(mlp_dataset_standardize(net, &train, NULL), 0);
    assert_close(train.x, want_train, 12, "train alone");
    mlp_dataset_free(&train);
    mlp_free(net);
}

/* after a split: the statistics are the 15 training rows' only (computed
   here in double), the held-out rows get them too */
static void test_split_then_standardize(void **state)
{
    mlp_dataset ds, held;
    float raw[40], scale[2], offset[2], x[2];
    double mean[2] = {0, 0}, sd[2] = {0, 0};
    mlp_net *net;
    int i, j;
    (void)state;
    make_rows(&ds, 1);
    assert_int_equal(mlp_dataset_split(&ds, &held, 5, 7), 0);
    memcpy(raw, ds.x, sizeof raw);
    for (i = 0; i < 15; i++) for (j = 0; j < 2; j++) mean[j] += raw[2 * i + j] / 15.0;
    for (i = 0; i < 15; i++) for (j = 0; j < 2; j++) sd[j] += (raw[2 * i + j] - mean[j]) * (raw[2 * i + j] - mean[j]) / 15.0;
    sd[0] = sqrt(sd[0]); sd[1] = sqrt(sd[1]);
    net = mlp_create_spec("2-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_int_equal(mlp_dataset_standardize(net, &ds, &held), 0);
    for (i = 0; i < 20; i++)
        for (j = 0; j < 2; j++) {
            double want = (raw[2 * i + j] - mean[j]) / sd[j];
            if (!close_to(ds.x[2 * i + j], want)) fail_msg("row %d col %d: %g, want %g", i, j, ds.x[2 * i + j], want);
        }
    assert_int_equal(mlp_get_input_columns(net, scale, offset), 1);
    for (j = 0; j < 2; j++) {
        assert_true(close_to(scale[j], 1.0 / sd[j]));
        assert_true(close_to(offset[j], -mean[j] / sd[j]));
    }
    assert_int_equal(mlp_normalize_input(net, raw + 36, x), 0);
    assert_true(close_to(x[0], held.x[6]) && close_to(x[1], held.x[7]));
    mlp_free(net);
    mlp_dataset_free(&ds);
}

static void test_input_columns(void **state)
{
    const float scale[3] = {2, 0.5f, -1}, offset[3] = {1, 0, 3}, raw[3] = {1, 2, 3};
    const float nan = (float)NAN, inf = (float)INFINITY;
    float s[3], o[3], x[3], bad[3];
    mlp_input in;
    mlp_net *net = mlp_create_spec("3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    (void)state;
    assert_non_null(net);
    assert_int_equal(mlp_get_input_columns(net, s, o), 0);
    assert_int_equal(mlp_set_input_columns(net, scale, offset), 0);
    memset(s, 0, sizeof s); memset(o, 0, sizeof o);
    assert_int_equal(mlp_get_input_columns(net, s, o), 1);
    assert_memory_equal(s, scale, sizeof s);
    assert_memory_equal(o, offset, sizeof o);
    assert_int_equal(mlp_get_input_columns(net, NULL, NULL), 1);
    assert_int_equal(mlp_get_input_columns(net, s, NULL), 1);
    /* (raw * 1 + 0) * scale + offset */
    assert_int_equal(mlp_normalize_input(net, raw, x), 0);
    assert_true(x[0] == 3.0f && x[1] == 1.0f && x[2] == 0.0f);
    /* after the whole-input normalisation: (1 2 3) * 2 + 1 = (3 5 7) */
    in = mlp_get_input(net);
    in.scale = 2; in.offset = 1;
    assert_int_equal(mlp_set_input(net, &in), 0);
    assert_int_equal(mlp_normalize_input(net, raw, x), 0);
    assert_true(x[0] == 7.0f && x[1] == 2.5f && x[2] == -4.0f);
    in.scale = 1; in.offset = 0;
    assert_int_equal(mlp_set_input(net, &in), 0);

    /* refused, and the columns stay */
    memcpy(bad, scale, sizeof bad); bad[1] = 0;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), MLP_EARG);
    bad[1] = nan;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), MLP_EARG);
    bad[1] = inf;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), MLP_EARG);
    bad[1] = -inf;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), MLP_EARG);
    memcpy(bad, offset, sizeof bad); bad[2] = nan;
    assert_int_equal(mlp_set_input_columns(net, scale, bad), MLP_EARG);
    bad[2] = -inf;
    assert_int_equal(mlp_set_input_columns(net, scale, bad), MLP_EARG);
    assert_int_equal(mlp_set_input_columns(net, scale, NULL), MLP_EARG);
    assert_int_equal(mlp_set_input_columns(net, NULL, offset), MLP_EARG);
    assert_int_equal(mlp_set_input_columns(NULL, scale, offset), MLP_EARG);
    assert_int_equal(mlp_get_input_columns(net, s, o), 1);
    assert_memory_equal(s, scale, sizeof s);
    assert_memory_equal(o, offset, sizeof o);
    /* a negative zero scale is zero too; a tiny one is fine */
    memcpy(bad, scale, sizeof bad); bad[0] = -0.0f;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), MLP_EARG);
    bad[0] = 1e-30f;
    assert_int_equal(mlp_set_input_columns(net, bad, offset), 0);

    /* NULL, NULL removes them */
    assert_int_equal(mlp_set_input_columns(net, NULL, NULL), 0);
    assert_int_equal(mlp_get_input_columns(net, s, o), 0);
    assert_int_equal(mlp_normalize_input(net, raw, x), 0);
    assert_true(x[0] == 1.0f && x[1] == 2.0f && x[2] == 3.0f);
    assert_int_equal(mlp_get_input_columns(NULL, s, o), 0);
    mlp_free(net);
}

static void test_class_names(void **state)
{
    const char *const iris[3] = {"setosa", "versicolor", "virginica"};
    char buf[3][300];
    const char *names[3];
    mlp_net *net = mlp_create_spec("4-3", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    (void)state;
    assert_non_null(net);
    assert_null(mlp_class_name(net, 0));
    /* copied: the caller's strings may change afterwards */
    strcpy(buf[0], "setosa"); strcpy(buf[1], "versicolor"); strcpy(buf[2], "virginica");
    names[0] = buf[0]; names[1] = buf[1]; names[2] = buf[2];
    assert_int_equal(mlp_set_class_names(net, names), 0);
    memset(buf, 'z', sizeof buf);
    assert_string_equal(mlp_class_name(net, 0), "setosa");
    assert_string_equal(mlp_class_name(net, 1), "versicolor");
    assert_string_equal(mlp_class_name(net, 2), "virginica");
    assert_null(mlp_class_name(net, 3));
    assert_null(mlp_class_name(net, -1));
    assert_null(mlp_class_name(NULL, 0));

    /* refused, and the names stay */
#define REFUSED(a, b, c) do { names[0] = a; names[1] = b; names[2] = c; \
        assert_int_equal(mlp_set_class_names(net, names), MLP_EARG); \
        assert_string_equal(mlp_class_name(net, 1), "versicolor"); } while (0)
    REFUSED("a", "b", "a");
    REFUSED("a", "", "c");
    REFUSED("a", NULL, "c");
    REFUSED("a", "b\x1f", "c");
    REFUSED("a", "b", "\x7f");
    REFUSED("\tx", "b", "c");
    memset(buf[0], 'n', 256); buf[0][256] = 0;
    REFUSED(buf[0], "b", "c");
#undef REFUSED
    assert_int_equal(mlp_set_class_names(NULL, iris), MLP_EARG);

    /* 255 bytes, UTF-8, spaces and quotes are names */
    buf[0][255] = 0;
    names[0] = buf[0]; names[1] = "caf\xC3\xA9 \"au lait\""; names[2] = " ";
    assert_int_equal(mlp_set_class_names(net, names), 0);
    assert_int_equal(strlen(mlp_class_name(net, 0)), 255);
    assert_string_equal(mlp_class_name(net, 1), "caf\xC3\xA9 \"au lait\"");
    assert_string_equal(mlp_class_name(net, 2), " ");

    /* NULL removes them */
    assert_int_equal(mlp_set_class_names(net, NULL), 0);
    assert_null(mlp_class_name(net, 0));
    assert_int_equal(mlp_set_class_names(net, iris), 0);
    assert_string_equal(mlp_class_name(net, 2), "virginica");
    mlp_free(net);
}

/* records of a saved model: offsets of each record's kind field */
static int walk_records(const unsigned char *buf, size_t size, size_t *at, int max)
{
    uint32_t count = get_u32(buf + 36), k;
    size_t p = 40;
    assert_true(count <= (uint32_t)max);
    for (k = 0; k < count; k++) {
        assert_true(p + 8 <= size - 4);
        at[k] = p;
        p += 8 + get_u32(buf + p + 4);
    }
    assert_int_equal(p, size - 4);
    return (int)count;
}

static void fix_crc(unsigned char *buf, size_t size)
{
    put_u32(buf + size - 4, mlp_crc32(buf, size - 4));
}

static void expect_load_fails(const unsigned char *buf, size_t size, const char *what)
{
    mlp_net *net = mlp_load_memory(buf, size);
    if (net) { mlp_free(net); fail_msg("%s: loaded", what); }
}

static void test_model_round_trip(void **state)
{
    const float scale[3] = {2, 0.5f, -1}, offset[3] = {1, 0, 3};
    const char *const names[2] = {"no", "yes"};
    unsigned char *plain, *full, *again, *bad;
    size_t plain_size, full_size, again_size, at[300], pat[300];
    float s[3], o[3];
    int n_plain, n_full, k;
    mlp_net *net = mlp_create_spec("3-4-2", MLP_ACT_RELU, MLP_LOSS_CE, 1), *loaded;
    (void)state;
    assert_non_null(net);
    plain = save(net, &plain_size);
    n_plain = walk_records(plain, plain_size, pat, 300);
    for (k = 0; k < n_plain; k++) {
        assert_true(get_u32(plain + pat[k]) != 5);
        assert_true(get_u32(plain + pat[k]) != 6);
    }
    assert_int_equal(mlp_set_input_columns(net, scale, offset), 0);
    assert_int_equal(mlp_set_class_names(net, names), 0);
    full = save(net, &full_size);
    /* + kind 5 (8 + 4 + 8 * 3) + kind 6 (8 + 4 + 4 + 2 + 4 + 3) */
    assert_int_equal(full_size, plain_size + 36 + 25);
    n_full = walk_records(full, full_size, at, 300);
    assert_int_equal(n_full, n_plain + 2);
    assert_memory_equal(full, plain, 36);       /* header: scale 1 offset 0 too */
    assert_int_equal(at[0], 40);
    assert_int_equal(get_u32(full + 40), 5);
    assert_int_equal(get_u32(full + 44), 28);
    assert_int_equal(get_u32(full + 48), 3);
    for (k = 0; k < 3; k++) {
        assert_true(get_f32(full + 52 + 4 * k) == scale[k]);
        assert_true(get_f32(full + 64 + 4 * k) == offset[k]);
    }
    /* the layers' records unchanged in between */
    assert_memory_equal(full + 76, plain + 40, plain_size - 44);
    {
        const unsigned char *r = full + at[n_full - 1];
        assert_int_equal(get_u32(r), 6);
        assert_int_equal(get_u32(r + 4), 17);
        assert_int_equal(get_u32(r + 8), 2);
        assert_int_equal(get_u32(r + 12), 2);
        assert_memory_equal(r + 16, "no", 2);
        assert_int_equal(get_u32(r + 18), 3);
        assert_memory_equal(r + 22, "yes", 3);
    }
    assert_int_equal(get_u32(full + full_size - 4), mlp_crc32(full, full_size - 4));

    loaded = mlp_load_memory(full, full_size);
    assert_non_null(loaded);
    assert_int_equal(mlp_get_input_columns(loaded, s, o), 1);
    assert_memory_equal(s, scale, sizeof s);
    assert_memory_equal(o, offset, sizeof o);
    assert_string_equal(mlp_class_name(loaded, 0), "no");
    assert_string_equal(mlp_class_name(loaded, 1), "yes");
    assert_null(mlp_class_name(loaded, 2));
    again = save(loaded, &again_size);
    assert_int_equal(again_size, full_size);
    assert_memory_equal(again, full, full_size);
    free(again);
    mlp_free(loaded);

    /* a model without them loads without them */
    loaded = mlp_load_memory(plain, plain_size);
    assert_non_null(loaded);
    assert_int_equal(mlp_get_input_columns(loaded, NULL, NULL), 0);
    assert_null(mlp_class_name(loaded, 0));
    mlp_free(loaded);

    /* the loader trusts none of it */
    bad = malloc(full_size + 64);
    assert_non_null(bad);
#define MUTATE(what, stmt) do { memcpy(bad, full, full_size); stmt; fix_crc(bad, full_size); \
        expect_load_fails(bad, full_size, what); } while (0)
    MUTATE("columns: n 4", put_u32(bad + 48, 4));
    MUTATE("columns: scale 0", put_u32(bad + 52, 0));
    MUTATE("columns: scale -0", put_u32(bad + 56, 0x80000000u));
    MUTATE("columns: scale NaN", put_u32(bad + 56, 0x7fc00000u));
    MUTATE("columns: scale inf", put_u32(bad + 60, 0x7f800000u));
    MUTATE("columns: offset NaN", put_u32(bad + 64, 0x7fc00000u));
    MUTATE("columns: offset -inf", put_u32(bad + 72, 0xff800000u));
    MUTATE("columns: P 27", put_u32(bad + 44, 27));
    MUTATE("names: n 3", put_u32(bad + at[n_full - 1] + 8, 3));
    MUTATE("names: n 1", put_u32(bad + at[n_full - 1] + 8, 1));
    MUTATE("names: control byte", bad[at[n_full - 1] + 17] = 0x1f);
    MUTATE("names: DEL", bad[at[n_full - 1] + 23] = 0x7f);
    MUTATE("names: NUL", bad[at[n_full - 1] + 16] = 0);
    MUTATE("names: duplicate", memcpy(bad + at[n_full - 1] + 22, "no\0", 3); put_u32(bad + at[n_full - 1] + 18, 2));
    MUTATE("names: L 0", put_u32(bad + at[n_full - 1] + 12, 0));
    MUTATE("names: L past P", put_u32(bad + at[n_full - 1] + 18, 4));
    MUTATE("names: P 16", put_u32(bad + at[n_full - 1] + 4, 16));
    /* kind 5 after a dense record: swap the first two records */
    {
        size_t len0 = at[1] - at[0], len1 = at[2] - at[1];
        MUTATE("columns second", memcpy(bad + 40, full + at[1], len1); memcpy(bad + 40 + len1, full + at[0], len0));
    }
    /* kind 6 before the last layer record: swap the last two */
    {
        size_t a = at[n_full - 2], b = at[n_full - 1], la = b - a, lb = full_size - 4 - b;
        MUTATE("names not last", memcpy(bad + a, full + b, lb); memcpy(bad + a + lb, full + a, la));
    }
    /* a second kind 5 / a second kind 6 */
    memcpy(bad, full, 76);
    memcpy(bad + 76, full + 40, 36);
    memcpy(bad + 112, full + 76, full_size - 76);
    put_u32(bad + 36, (uint32_t)n_full + 1);
    fix_crc(bad, full_size + 36);
    expect_load_fails(bad, full_size + 36, "two column records");
    {
        size_t b = at[n_full - 1], lb = full_size - 4 - b;
        memcpy(bad, full, full_size - 4);
        memcpy(bad + full_size - 4, full + b, lb);
        put_u32(bad + 36, (uint32_t)n_full + 1);
        fix_crc(bad, full_size + lb);
        expect_load_fails(bad, full_size + lb, "two name records");
    }
#undef MUTATE
    /* our own unmutated copy still loads (the mutations are what failed) */
    memcpy(bad, full, full_size);
    loaded = mlp_load_memory(bad, full_size);
    assert_non_null(loaded);
    mlp_free(loaded);
    free(bad);

    /* only one of the two */
    assert_int_equal(mlp_set_class_names(net, NULL), 0);
    again = save(net, &again_size);
    assert_int_equal(again_size, plain_size + 36);
    free(again);
    assert_int_equal(mlp_set_input_columns(net, NULL, NULL), 0);
    assert_int_equal(mlp_set_class_names(net, names), 0);
    again = save(net, &again_size);
    assert_int_equal(again_size, plain_size + 25);
    loaded = mlp_load_memory(again, again_size);
    assert_non_null(loaded);
    assert_string_equal(mlp_class_name(loaded, 1), "yes");
    assert_int_equal(mlp_get_input_columns(loaded, NULL, NULL), 0);
    mlp_free(loaded);
    free(again);
    free(plain);
    free(full);
    mlp_free(net);
}

/* the most records a model can have: 64 dense layers with batchnorm,
   activations and dropout everywhere, plus the columns and the names */
static void test_model_most_records(void **state)
{
    int sizes[MLP_MAX_LAYERS + 1], i, n_plain, n_full;
    mlp_act acts[MLP_MAX_LAYERS];
    const float scale[2] = {3, 4}, offset[2] = {-1, 1};
    const char *const names[2] = {"left", "right"};
    unsigned char *plain, *full;
    size_t plain_size, full_size, at[300];
    mlp_net *net, *loaded;
    float s[2], o[2];
    (void)state;
    for (i = 0; i <= MLP_MAX_LAYERS; i++) sizes[i] = 2;
    for (i = 0; i < MLP_MAX_LAYERS; i++) acts[i] = i + 1 < MLP_MAX_LAYERS ? MLP_ACT_RELU : MLP_ACT_IDENTITY;
    net = mlp_create(MLP_MAX_LAYERS + 1, sizes, acts, MLP_LOSS_CE, 3);
    assert_non_null(net);
    assert_int_equal(mlp_add_batchnorm(net), 0);
    assert_int_equal(mlp_add_dropout(net, 0.25f, 0.5f), 0);
    plain = save(net, &plain_size);
    n_plain = walk_records(plain, plain_size, at, 300);
    assert_int_equal(mlp_set_input_columns(net, scale, offset), 0);
    assert_int_equal(mlp_set_class_names(net, names), 0);
    full = save(net, &full_size);
    n_full = walk_records(full, full_size, at, 300);
    assert_int_equal(n_full, n_plain + 2);
    assert_true(n_full <= 4 * MLP_MAX_LAYERS + 2);
    assert_int_equal(get_u32(full + at[0]), 5);
    assert_int_equal(get_u32(full + at[n_full - 1]), 6);
    loaded = mlp_load_memory(full, full_size);
    if (!loaded) fail_msg("a model of %d records does not load: %s", n_full, mlp_error());
    assert_int_equal(mlp_get_input_columns(loaded, s, o), 1);
    assert_memory_equal(s, scale, sizeof s);
    assert_memory_equal(o, offset, sizeof o);
    assert_string_equal(mlp_class_name(loaded, 1), "right");
    mlp_free(loaded);
    free(plain);
    free(full);
    mlp_free(net);
}

/* the whole way: a CSV with names, standardised, names set from the data
   set, saved and loaded, and a raw row normalised by the loaded model */
static void test_csv_to_model(void **state)
{
    static const char text[] = "h1,h2,kind\n0,-1,b\n0,5,a\n4,-1,b\n4,5,a\n";
    const float raw[2] = {2, 8};
    unsigned char *bytes;
    size_t size;
    float x[2];
    mlp_dataset ds;
    mlp_net *net, *loaded;
    (void)state;
    parse_ok(&ds, text, MLP_CSV_LAST, 1, NULL);
    net = mlp_create_spec("2-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_int_equal(mlp_dataset_check(net, &ds), 0);
    assert_int_equal(mlp_dataset_standardize(net, &ds, NULL), 0);
    assert_int_equal(mlp_set_class_names(net, (const char *const *)ds.class_names), 0);
    bytes = save(net, &size);
    loaded = mlp_load_memory(bytes, size);
    assert_non_null(loaded);
    assert_string_equal(mlp_class_name(loaded, 0), "a");
    assert_string_equal(mlp_class_name(loaded, 1), "b");
    assert_int_equal(mlp_normalize_input(loaded, raw, x), 0);
    assert_true(close_to(x[0], 0.0) && close_to(x[1], 2.0));
    mlp_free(loaded);
    free(bytes);
    mlp_free(net);
    mlp_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_numbers_ignore_locale),
        cmocka_unit_test(test_quotes_crlf_bom_header),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_label_column),
        cmocka_unit_test(test_labels_integers_and_names),
        cmocka_unit_test(test_classes_of),
        cmocka_unit_test(test_no_label),
        cmocka_unit_test(test_len_is_respected),
        cmocka_unit_test(test_broken_table),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_load_csv_file),
        cmocka_unit_test(test_find_column_header_forms),
        cmocka_unit_test(test_find_column_long_line),
        cmocka_unit_test(test_find_column_nul),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_standardize),
        cmocka_unit_test(test_split_then_standardize),
        cmocka_unit_test(test_input_columns),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_model_round_trip),
        cmocka_unit_test(test_model_most_records),
        cmocka_unit_test(test_csv_to_model),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
