/* train_csv as a user meets it: flag errors exit 2, broken data exits 1
   with the line and column, a table whose classes follow a rule a person
   can state trains, the model keeps the training set's standardisation and
   class names (checked against statistics this test computes itself), and
   --predict names the class of new rows by that rule. Needs build/train_csv. */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"
#include "run.h"

#define TRAIN_CSV "$MLP_TRAIN_CSV" /* set by main; the Makefile may point it at a sanitizer build */
static char tmpdir[64];
static double mean_x1, sd_x1;       /* of the training file's first column, computed here */

static const char *path_of(const char *name)
{
    static char path[8][128]; /* several in one command line */
    static int k;
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Rows "x1,x2,class": x1 uniform in 1000..1010 (far from 0, so only a
   standardised input trains well), x2 noise in 0..1, and the class "big"
   when x1 > 1005, else "small". label_first puts the class first. */
static void write_rule_table(const char *name, int n, uint64_t seed, int label_first, double *mean, double *sd)
{
    FILE *f = fopen(path_of(name), "w");
    double sum = 0, sum2 = 0;
    mlp_rng rng;
    int i;
    assert_non_null(f);
    mlp_rng_seed(&rng, seed, 9);
    fprintf(f, label_first ? "class,x1,x2\n" : "x1,x2,class\n");
    for (i = 0; i < n; i++) {
        double x1 = 1000.0 + 10.0 * mlp_rng_float(&rng), x2 = mlp_rng_float(&rng);
        const char *c = x1 > 1005.0 ? "big" : "small";
        char row[96];
        snprintf(row, sizeof row, "%.4f,%.4f", x1, x2);
        x1 = strtod(row, NULL); /* the value as the file holds it */
        sum += x1; sum2 += x1 * x1;
        if (label_first) fprintf(f, "%s,%s\n", c, row);
        else fprintf(f, "%s,%s\n", row, c);
    }
    fclose(f);
    if (mean) *mean = sum / n;
    if (sd) *sd = sqrt(sum2 / n - (sum / n) * (sum / n));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mlp_csv_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    write_rule_table("train.csv", 400, 1, 0, &mean_x1, &sd_x1);
    write_rule_table("test.csv", 100, 2, 0, NULL, NULL);
    write_rule_table("first.csv", 400, 3, 1, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect(TRAIN_CSV, 2, "--train FILE or --predict MODEL FILE is needed");
    expect(TRAIN_CSV " --train x.csv --test-fraction 1.5", 2, "--test-fraction: expected a number between 0 and 1");
    expect(TRAIN_CSV " --train x.csv --lr x1", 2, "--lr x1: expected a number");
    expect(TRAIN_CSV " --train x.csv --optimizer rmsprop", 2, "expected sgd, nesterov, adam or adamw");
    expect(TRAIN_CSV " --train x.csv --epochs", 2, "--epochs: missing value");
    expect(TRAIN_CSV " --train x.csv --frobnicate 3", 2, "unknown flag");
    expect(TRAIN_CSV " --predict model.mlp", 2, "--predict: expected MODEL and FILE");
    expect(TRAIN_CSV " --help", 0, "--test-fraction F");
    expect(TRAIN_CSV " --help", 0, "--weight-decay"); /* the shared flags are listed too */
}

static void test_broken_data(void **state)
{
    char cmd[512];
    (void)state;
    write_text("ragged.csv", "1,2,a\n3,4,b\n5,6\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s", path_of("ragged.csv"));
    expect(cmd, 1, "ragged.csv: line 3, column 3: the line ends after 2 fields");
    write_text("word.csv", "1,2,a\n3,four,b\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s", path_of("word.csv"));
    expect(cmd, 1, "word.csv: line 2, column 2: \"four\" is not a number");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s/missing.csv", tmpdir);
    expect(cmd, 1, "missing.csv: cannot open");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --header --label colour", path_of("train.csv"));
    expect(cmd, 1, "no column named \"colour\"");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --label class", path_of("train.csv"));
    expect(cmd, 1, "--label class: expected a 0-based column number (or --header and a name)");
    /* a test file with a class the training file lacks */
    write_text("odd_test.csv", "x1,x2,class\n1001,0.5,huge\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --test %s --header --epochs 1", path_of("train.csv"), path_of("odd_test.csv"));
    expect(cmd, 1, "odd_test.csv: line 2, column 3: class \"huge\" is not one of the training data's 2 classes");
}

/* the model the training run wrote keeps the names and the standardisation */
static void check_model(const char *name)
{
    mlp_net *net = mlp_load(path_of(name));
    float scale[2], offset[2];
    assert_non_null(net);
    assert_string_equal(mlp_class_name(net, 0), "big"); /* names in byte order */
    assert_string_equal(mlp_class_name(net, 1), "small");
    assert_int_equal(mlp_get_input_columns(net, scale, offset), 1);
    assert_true(fabs(scale[0] - 1.0 / sd_x1) < 1e-4 * (1.0 / sd_x1));
    assert_true(fabs(offset[0] + mean_x1 / sd_x1) < 1e-3);
    mlp_free(net);
}

static void test_trains_and_predicts_by_the_rule(void **state)
{
    char cmd[768];
    double acc;
    const char *p;
    FILE *f;
    char line[256];
    int rows = 0;
    (void)state;
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --test %s --header --label class --layers auto-16-auto --epochs 60"
             " --seed 4 --quiet --log %s --out %s --export-c %s", path_of("train.csv"), path_of("test.csv"),
             path_of("log.csv"), path_of("rule.mlp"), path_of("rule.h"));
    expect(cmd, 0, "model saved to");
    assert_non_null(p = strstr(output, "test accuracy "));
    acc = strtod(p + strlen("test accuracy "), NULL);
    assert_true(acc >= 0.95); /* a threshold on one input: nearly every row */
    check_model("rule.mlp");

    /* rows far from the boundary, without the class column */
    write_text("new.csv", "x1,x2\n1000.5,0.5\n1009.5,0.5\n1001,0.9\n1009,0.1\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --predict %s %s --header", path_of("rule.mlp"), path_of("new.csv"));
    expect(cmd, 0, "small\nbig\nsmall\nbig\n");
    assert_string_equal(output, "small\nbig\nsmall\nbig\n");
    /* ... and with it: the class column (named by --label) is skipped */
    write_text("new_labelled.csv", "x1,x2,class\n1000.5,0.5,?\n1009.5,0.5,?\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --predict %s %s --header --label class", path_of("rule.mlp"), path_of("new_labelled.csv"));
    expect(cmd, 0, "small\nbig\n");
    assert_string_equal(output, "small\nbig\n");

    /* the log: a header and one row per epoch */
    assert_non_null(f = fopen(path_of("log.csv"), "r"));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n");
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    assert_int_equal(rows, 60);
    /* the exported header names the classes */
    snprintf(cmd, sizeof cmd, "grep -c '\"big\",' %s", path_of("rule.h"));
    expect(cmd, 0, "1");
}

static void test_label_first_and_split(void **state)
{
    char cmd[512];
    (void)state;
    /* the label in column 0 by index, the test set a seeded fifth of the file */
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --header --label 0 --layers auto-16-auto --epochs 60 --quiet --out %s",
             path_of("first.csv"), path_of("first.mlp"));
    expect(cmd, 0, "320 training and 80 test samples, 2 inputs, 2 classes");
    write_text("new_first.csv", "class,x1,x2\nbig,1009.5,0.5\nsmall,1000.5,0.5\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --predict %s %s --header --label 0", path_of("first.mlp"), path_of("new_first.csv"));
    expect(cmd, 0, "big\nsmall\n");
    assert_string_equal(output, "big\nsmall\n");
}

static void test_integer_labels(void **state)
{
    char cmd[512];
    (void)state;
    /* class 1 when the first number is the larger: printed as numbers */
    write_text("int.csv", "0,1,1\n1,0,0\n0.2,0.9,1\n0.9,0.1,0\n0.3,0.8,1\n0.8,0.3,0\n0.1,0.6,1\n0.6,0.1,0\n"
                          "0.4,0.9,1\n0.9,0.4,0\n0.2,0.5,1\n0.5,0.2,0\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --train %s --test %s --layers auto-8-auto --epochs 300 --batch 4 --lr 0.01 --quiet --out %s",
             path_of("int.csv"), path_of("int.csv"), path_of("int.mlp"));
    expect(cmd, 0, "test accuracy 1.0000 (12/12)");
    write_text("int_new.csv", "0,1\n1,0\n");
    snprintf(cmd, sizeof cmd, TRAIN_CSV " --predict %s %s", path_of("int.mlp"), path_of("int_new.csv"));
    expect(cmd, 0, "1\n0\n");
    assert_string_equal(output, "1\n0\n");
}

int main(void)
{
    const char *bin = getenv("MLP_TRAIN_CSV");
    if (!bin || !*bin) setenv("MLP_TRAIN_CSV", "build/train_csv", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_broken_data),
        cmocka_unit_test(test_trains_and_predicts_by_the_rule),
        cmocka_unit_test(test_label_first_and_split),
        cmocka_unit_test(test_integer_labels),
    };
    return cmocka_run_group_tests_name("csv_cli", tests, setup, teardown);
}
