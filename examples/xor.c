/* xor.c - the smallest mlp.h program: learn XOR with one hidden layer.

   cc -O2 -o xor examples/xor.c -lm && ./xor
*/
#include <stdio.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

int main(void)
{
    float X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    int y[4] = {0, 1, 1, 0};
    const float *p;
    int step, i, wrong = 0;
    /* 2 inputs, 8 tanh units, 2 outputs (the classes 0 and 1); seed 42 */
    mlp_net *net = mlp_create_spec("2-8-2", MLP_ACT_TANH, MLP_LOSS_CE, 42);
    if (!net) { fprintf(stderr, "xor: %s\n", mlp_error()); return 1; }

    for (step = 0; step < 2000; step++) {
        float loss;
        mlp_forward(net, X, 4);
        mlp_backward(net, y, &loss);
        mlp_sgd_step(net, 0.5f, 0.9f, 0.0f);
        if (step % 500 == 0) printf("step %4d  loss %.5f\n", step, loss);
    }
    p = mlp_predict(net, X, 4); /* 4 x 2 class probabilities */
    for (i = 0; i < 4; i++) {
        int guess = p[2 * i + 1] > p[2 * i];
        printf("%d xor %d = %d  (p = %.3f)\n", (int)X[2 * i], (int)X[2 * i + 1], guess, p[2 * i + guess]);
        wrong += guess != y[i];
    }
    mlp_free(net);
    return wrong != 0;
}
