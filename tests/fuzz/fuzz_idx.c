/* Fuzz target: arbitrary bytes as an IDX file (plain or gzipped: the gzip
   framing is mlp.h's, the inflating a stored-blocks decoder of the tests'
   own), then as images + labels. */
#include <stddef.h>
#include "../stored_inflate.h"
#define MLP_IMPLEMENTATION
#include "../../mlp.h"
#include "fuzz_main.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    mlp_idx idx, labels;
    mlp_dataset ds;
    if (mlp_idx_load_memory(&idx, data, size, "fuzz") != 0) return 0;
    /* the same bytes as labels: count must match, values in range */
    if (mlp_idx_load_memory(&labels, data, size, "fuzz") == 0) {
        if (mlp_dataset_from_idx(&ds, &idx, &labels) == 0) mlp_dataset_free(&ds);
        mlp_idx_free(&labels);
    }
    mlp_idx_free(&idx);
    return 0;
}
