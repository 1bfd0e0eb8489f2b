// C++ smoke test: mlp.h with its implementation compiles as C++ and works.
#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static void test_xor_in_cpp(void **)
{
    float X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    int y[4] = {0, 1, 1, 0};
    mlp_net *net = mlp_create_spec("2-8-2", MLP_ACT_TANH, MLP_LOSS_CE, 42);
    assert_non_null(net);
    for (int step = 0; step < 1000; step++) {
        float loss;
        assert_non_null(mlp_forward(net, X, 4));
        assert_int_equal(mlp_backward(net, y, &loss), 0);
        assert_int_equal(mlp_sgd_step(net, 0.5f, 0.9f, 0.0f), 0);
    }
    const float *p = mlp_predict(net, X, 4);
    for (int i = 0; i < 4; i++) assert_true(p[2 * i + y[i]] > 0.9f);
    mlp_free(net);
}

static void test_error_message_in_cpp(void **)
{
    assert_null(mlp_create_spec("2", MLP_ACT_TANH, MLP_LOSS_CE, 1));
    assert_non_null(strstr(mlp_error(), "layer spec"));
}

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor_in_cpp),
        cmocka_unit_test(test_error_message_in_cpp),
    };
    return cmocka_run_group_tests_name("c++", tests, NULL, NULL);
}
