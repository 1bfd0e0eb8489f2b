/* Fuzz target: arbitrary bytes as a model file; whatever loads must run a
   forward pass and save back to the same bytes. The CRC would stop almost
   every mutation at the door, so the target reseals the checksum itself. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../../mlp.h"
#include "fuzz_main.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    unsigned char *buf;
    mlp_net *net;
    if (size < 8 || size > (1 << 20)) return 0;
    buf = fuzz_resealed(data, size);
    net = mlp_load_memory(buf, size);
    if (net) {
        size_t n = 0, i;
        unsigned char *again;
        if (mlp_save_memory(net, NULL, 0, &n) != MLP_OK) abort();
        again = (unsigned char *)malloc(n);
        float *x = (float *)calloc((size_t)mlp_input_width(net), sizeof(float));
        for (i = 0; i < (size_t)mlp_input_width(net); i++) x[i] = (float)(i % 7) / 7.0f;
        if (mlp_input_width(net) <= 4096) mlp_predict(net, x, 1);
        if (mlp_save_memory(net, again, n, &n) != MLP_OK || n != size || memcmp(again, buf, n) != 0) abort();
        free(again);
        free(x);
        mlp_free(net);
    }
    free(buf);
    return 0;
}
