/* mlp.h with every warning on, as C and as C++, under each compiler
   present (make test-warnings): any warning is an error. */
#define MLP_IMPLEMENTATION
#include "../mlp.h"

int main(void)
{
    return mlp_input_width(0);
}
