/* Integration: the default network on the real MNIST, 2 epochs, must reach
   97% test accuracy (measured: 0.9765). Data from tools/fetch_mnist.sh (dir: $MLP_MNIST_DIR or
   data/mnist). Skipped when the data is absent, unless MLP_REQUIRE_MNIST=1
   (as in CI), which turns absence into a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static void test_mnist_two_epochs(void **state)
{
    const char *dir = getenv("MLP_MNIST_DIR"), *require = getenv("MLP_REQUIRE_MNIST");
    char p[4][512];
    mlp_dataset train, test;
    mlp_train_config cfg = mlp_train_defaults();
    mlp_eval ev;
    mlp_net *net;
    int epoch;
    (void)state;
    memset(&ev, 0, sizeof ev);
    if (!dir) dir = "data/mnist";
    snprintf(p[0], sizeof p[0], "%s/train-images-idx3-ubyte", dir);
    snprintf(p[1], sizeof p[1], "%s/train-labels-idx1-ubyte", dir);
    snprintf(p[2], sizeof p[2], "%s/t10k-images-idx3-ubyte", dir);
    snprintf(p[3], sizeof p[3], "%s/t10k-labels-idx1-ubyte", dir);
    if (mlp_dataset_load(&train, p[0], p[1]) != 0) {
        if (require && *require == '1') fail_msg("MNIST required but not loadable: %s", mlp_error());
        print_message("MNIST not found (%s); run tools/fetch_mnist.sh. Skipping.\n", mlp_error());
        skip();
    }
    assert_int_equal(mlp_dataset_load(&test, p[2], p[3]), 0);
    assert_int_equal(train.n, 60000);
    assert_int_equal(test.n, 10000);
    assert_int_equal(train.n_classes, 10);
    cfg.lr_decay = 0.3f; /* 0.05 then 0.015: settles in two epochs */
    cfg.lr_step = 1;
    net = mlp_create_spec("784-256-128-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    assert_non_null(net);
    for (epoch = 0; epoch < 2; epoch++) assert_int_equal(mlp_train_epoch(net, &train, &cfg, epoch, NULL), 0);
    assert_int_equal(mlp_evaluate(net, &test, 500, &ev, NULL), 0);
    print_message("MNIST 784-256-128-10, 2 epochs: test accuracy %.4f\n", ev.accuracy);
    assert_true(ev.accuracy >= 0.97);
    mlp_free(net);
    mlp_dataset_free(&train);
    mlp_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_mnist_two_epochs) };
    return cmocka_run_group_tests_name("mnist", tests, NULL, NULL);
}
