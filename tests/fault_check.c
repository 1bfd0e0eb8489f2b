/* fault_check FILE...: loads each file as a model or (by its magic) a
   checkpoint; exit 0 when all load, 1 with mlp.h's message otherwise. For
   tests/test_faults.sh, which checks what a kill -9 leaves behind. */
#include <stdio.h>
#include <string.h>
#define MLP_IMPLEMENTATION
#include "../mlp.h"

static int is_checkpoint(const char *path)
{
    unsigned char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(magic, 1, 8, f) : 0;
    if (f) fclose(f);
    return n == 8 && memcmp(magic, "\x89MLPCK\r\n", 8) == 0;
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        mlp_train_config cfg;
        int epoch, batch;
        mlp_net *net = is_checkpoint(argv[i]) ? mlp_checkpoint_load(argv[i], &cfg, &epoch, &batch) : mlp_load(argv[i]);
        if (!net) { fprintf(stderr, "fault_check: %s\n", mlp_error()); return 1; }
        mlp_free(net);
    }
    return 0;
}
