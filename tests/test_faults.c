/* Allocation failure everywhere: MLP_MALLOC fails its Nth call, for every N
   until a scenario runs through without a failure. The scenarios load a
   model and a checkpoint, create and train a network (batchnorm, dropout,
   Adam, two threads), save, parse CSV and IDX data, standardise, clone,
   export C source. Each failure must come back as an error code with a
   message (never a crash, never a success that lost something), and every
   allocation made must be freed (counted here; make test-faults also runs
   this under AddressSanitizer). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long fault_calls, fault_at, fault_live; /* calls so far, the one to fail (0: none), blocks alive */

/* A worker thread frees its start-up block while the caller allocates:
   the count of live blocks changes atomically (a plain ++ and -- from two
   threads lost an update now and then: "1 blocks left"). */
static void *fault_malloc(size_t size)
{
    void *p;
    if (++fault_calls == fault_at) return NULL;
    if ((p = malloc(size))) __atomic_add_fetch(&fault_live, 1, __ATOMIC_SEQ_CST);
    return p;
}

static void fault_free(void *p)
{
    if (p) __atomic_sub_fetch(&fault_live, 1, __ATOMIC_SEQ_CST);
    free(p);
}

#define MLP_MALLOC(sz) fault_malloc(sz)
#define MLP_FREE(p)    fault_free(p)
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static char dir[64];
static unsigned char model_bytes[1 << 16], ckpt_bytes[1 << 17];
static size_t model_size, ckpt_size;

/* each returns 0 when every call succeeded, 1 when one failed cleanly
   (error code and message), and fails the test on anything else */
typedef int (*scenario_fn)(void);

static int failed_cleanly(int rc)
{
    if (rc == MLP_OK) return 0;
    assert_true(rc < 0);
    assert_true(mlp_error()[0] != 0);
    return 1;
}

static int load_model_and_checkpoint(void)
{
    mlp_train_config cfg;
    int epoch, batch;
    mlp_net *net = mlp_load_memory(model_bytes, model_size);
    if (!net) return failed_cleanly(MLP_ENOMEM);
    mlp_free(net);
    memset(&cfg, 0, sizeof cfg);
    if (!(net = mlp_checkpoint_load_memory(ckpt_bytes, ckpt_size, &cfg, &epoch, &batch))) return failed_cleanly(MLP_ENOMEM);
    assert_int_equal(epoch, 1);
    mlp_free(net);
    return 0;
}

static const char csv_text[] =
    "a,b,c,label\n1,2,3,cat\n4,5,6,dog\n7,8,9,cat\n1.5,2.5,3.5,bird\n0,1,0,dog\n2,2,2,bird\n3,1,4,cat\n1,5,9,dog\n";

/* CSV in, standardised, a network created from the shared flags, trained
   with batchnorm, dropout and Adam on two threads, evaluated, cloned,
   saved to memory and to a file, exported as C (float and int8) */
static int train_and_save(void)
{
    mlp_dataset train, held;
    mlp_cli cli = mlp_cli_defaults();
    mlp_net *net = NULL, *copy = NULL;
    mlp_eval ev;
    size_t size;
    char path[128];
    void *buf = NULL;
    int rc;
    memset(&train, 0, sizeof train);
    if ((rc = mlp_dataset_parse_csv(&train, csv_text, sizeof csv_text - 1, "t.csv", MLP_CSV_LAST, 1, NULL)) != MLP_OK)
        return failed_cleanly(rc);
    if ((rc = mlp_dataset_split(&train, &held, 2, 1)) != MLP_OK) goto done;
    cli.layers = "auto-6-auto";
    cli.batchnorm = 1;
    cli.dropout = 0.2f;
    cli.threads = 2;
    cli.train.optimizer = MLP_OPT_ADAM;
    cli.train.batch = 3;
    if (!(net = mlp_cli_create(&cli, train.dim, train.n_classes))) { rc = MLP_ENOMEM; goto done; }
    if ((rc = mlp_dataset_standardize(net, &train, &held)) != MLP_OK ||
        (rc = mlp_set_class_names(net, (const char *const *)train.class_names)) != MLP_OK ||
        (rc = mlp_train_epoch(net, &train, &cli.train, 0, NULL)) != MLP_OK ||
        (rc = mlp_evaluate(net, &held, 4, &ev, NULL)) != MLP_OK) goto done;
    if (!(copy = mlp_clone(net))) { rc = MLP_ENOMEM; goto done; }
    if ((rc = mlp_save_memory(copy, NULL, 0, &size)) != MLP_OK) goto done;
    if (!(buf = fault_malloc(size))) { rc = MLP_ENOMEM; mlp__fail(rc, "the test's own buffer"); goto done; }
    if ((rc = mlp_save_memory(copy, buf, size, &size)) != MLP_OK) goto done;
    snprintf(path, sizeof path, "%s/m.mlp", dir);
    if ((rc = mlp_save(net, path)) != MLP_OK) goto done;
    snprintf(path, sizeof path, "%s/m.h", dir);
    if ((rc = mlp_export_c(net, path, "m")) != MLP_OK) goto done;
    snprintf(path, sizeof path, "%s/m8.h", dir);
    if ((rc = mlp_export_c_int8(net, path, "m8")) != MLP_OK) goto done;
    rc = mlp_quantize_int8(copy);
done:
    fault_free(buf);
    mlp_free(copy);
    mlp_free(net);
    mlp_dataset_free(&train);
    return failed_cleanly(rc);
}

static int load_idx(void)
{
    /* 3 images of 2 x 2 unsigned bytes, and their labels */
    static const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 1};
    mlp_idx im, lb;
    mlp_dataset ds;
    int rc;
    if ((rc = mlp_idx_load_memory(&im, images, sizeof images, "images")) != MLP_OK) return failed_cleanly(rc);
    if ((rc = mlp_idx_load_memory(&lb, labels, sizeof labels, "labels")) != MLP_OK) { mlp_idx_free(&im); return failed_cleanly(rc); }
    rc = mlp_dataset_from_idx(&ds, &im, &lb);
    if (rc == MLP_OK) mlp_dataset_free(&ds);
    mlp_idx_free(&im);
    mlp_idx_free(&lb);
    return failed_cleanly(rc);
}

/* Runs the scenario with the 1st, 2nd, ... allocation failing until it
   runs through: every run must fail cleanly and leave nothing allocated. */
static void every_allocation_fails_once(scenario_fn scenario, const char *what)
{
    long n;
    for (n = 1;; n++) {
        int failed;
        fault_calls = 0; fault_live = 0; fault_at = n;
        failed = scenario();
        if (fault_live != 0) fail_msg("%s: %ld blocks left when allocation %ld failed", what, fault_live, n);
        if (!failed && fault_calls >= n) fail_msg("%s: allocation %ld failed, yet every call succeeded", what, n);
        if (!failed) break;
        if (fault_calls < n) fail_msg("%s: reported a failure though allocation %ld never happened: %s", what, n, mlp_error());
    }
    printf("  %s: %ld allocations, each failing once: clean errors, nothing leaked\n", what, n - 1);
}

static void test_load(void **state) { (void)state; every_allocation_fails_once(load_model_and_checkpoint, "model and checkpoint loads"); }
static void test_train_and_save(void **state) { (void)state; every_allocation_fails_once(train_and_save, "CSV, train, save, export"); }
static void test_idx(void **state) { (void)state; every_allocation_fails_once(load_idx, "IDX data set"); }

static int setup(void **state)
{
    mlp_net *net = mlp_create_spec("4-5-3", MLP_ACT_RELU, MLP_LOSS_CE, 2);
    mlp_train_config cfg = mlp_train_defaults();
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mlp_faults_XXXXXX");
    if (!mkdtemp(dir) || !net || mlp_add_batchnorm(net) != MLP_OK || mlp_add_dropout(net, 0.1f, 0.2f) != MLP_OK) return -1;
    if (mlp_save_memory(net, model_bytes, sizeof model_bytes, &model_size) != MLP_OK) return -1;
    cfg.optimizer = MLP_OPT_ADAM;
    if (mlp_checkpoint_save_memory(net, &cfg, 1, 0, ckpt_bytes, sizeof ckpt_bytes, &ckpt_size) != MLP_OK) return -1;
    mlp_free(net);
    return 0;
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
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_idx),
        cmocka_unit_test(test_train_and_save),
    };
    return cmocka_run_group_tests_name("allocation failures", tests, setup, teardown);
}
