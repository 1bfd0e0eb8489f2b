/* Fuzz target: arbitrary bytes as a checkpoint (version 1 or 2, with the
   training loop's state and best weights); whatever loads must save, and
   what it saves must load and save again to the same bytes. The target
   reseals the checksum itself, as fuzz_model does. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../../mlp.h"
#include "fuzz_main.h"

static unsigned char *save(const mlp_net *net, const mlp_train_config *cfg, const mlp_train_state *st, size_t *n)
{
    unsigned char *buf;
    if (mlp_checkpoint_save_state_memory(net, cfg, st, NULL, 0, n) != MLP_OK) abort();
    buf = (unsigned char *)malloc(*n);
    if (!buf || mlp_checkpoint_save_state_memory(net, cfg, st, buf, *n, n) != MLP_OK) abort();
    return buf;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    unsigned char *buf, *once, *twice;
    size_t n1, n2;
    mlp_train_config cfg;
    mlp_train_state st, st2;
    mlp_net *net, *again;
    if (size < 8 || size > (1 << 20)) return 0;
    buf = fuzz_resealed(data, size);
    memset(&cfg, 0, sizeof cfg);
    net = mlp_checkpoint_load_state_memory(buf, size, &cfg, &st);
    if (net) {
        once = save(net, &cfg, &st, &n1);
        memset(&cfg, 0, sizeof cfg);
        if (!(again = mlp_checkpoint_load_state_memory(once, n1, &cfg, &st2))) abort();
        twice = save(again, &cfg, &st2, &n2);
        if (n1 != n2 || memcmp(once, twice, n1) != 0) abort();
        free(once); free(twice);
        mlp_free(st2.best); mlp_free(again);
        mlp_free(st.best); mlp_free(net);
    }
    free(buf);
    return 0;
}
