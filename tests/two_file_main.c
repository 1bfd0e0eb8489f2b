/* The other half of two_file_impl.c: includes mlp.h without
   MLP_IMPLEMENTATION and uses the library through its declarations alone
   (make test-warnings links it with two_file_impl.c's object, and with the
   shared library built from it). Trains XOR and prints mlp_version(). */
#include <stdio.h>
#include <string.h>
#include "../mlp.h"

int main(void)
{
    static const float X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const int y[4] = {0, 1, 1, 0};
    float loss = 1.0f;
    const float *p;
    int step, i, learned = 1;
    const char *version = mlp_version();
    mlp_net *net = mlp_create_spec("2-8-2", MLP_ACT_TANH, MLP_LOSS_CE, 42);

    if (!net) { fprintf(stderr, "two_file: mlp_create_spec: %s\n", mlp_error()); return 1; }
    for (step = 0; step < 300; step++)
        if (!mlp_forward(net, X, 4) || mlp_backward(net, y, &loss) != MLP_OK
            || mlp_sgd_step(net, 0.5f, 0.9f, 0.0f) != MLP_OK) {
            fprintf(stderr, "two_file: training step %d: %s\n", step, mlp_error());
            mlp_free(net);
            return 1;
        }
    if (!(p = mlp_predict(net, X, 4))) { fprintf(stderr, "two_file: mlp_predict: %s\n", mlp_error()); return 1; }
    for (i = 0; i < 4; i++)
        if ((p[2 * i + 1] > p[2 * i]) != (y[i] == 1)) learned = 0;
    mlp_free(net);
    if (!learned || !(loss < 0.1f)) { fprintf(stderr, "two_file: XOR not learned (loss %g)\n", loss); return 1; }
#if defined(MLP_VERSION_MAJOR) && defined(MLP_VERSION_MINOR) && defined(MLP_VERSION_PATCH)
    {   /* the library linked in is the one these declarations describe */
        char expect[64];
        snprintf(expect, sizeof expect, "%d.%d.%d", MLP_VERSION_MAJOR, MLP_VERSION_MINOR, MLP_VERSION_PATCH);
        if (!version || strcmp(version, expect) != 0) {
            fprintf(stderr, "two_file: mlp_version() is \"%s\", the header says %s\n", version ? version : "(null)", expect);
            return 1;
        }
    }
#endif
    printf("two_file: mlp %s, XOR learned in %d steps (loss %.4f)\n", version ? version : "(null)", step, loss);
    return 0;
}
