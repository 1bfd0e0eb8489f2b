/* The implementation half of a program that uses mlp.h from two files (make
   test-warnings): this file alone compiles the library, two_file_main.c only
   includes the declarations. Built with -DMLP_SHARED -fvisibility=hidden
   -shared it is also the shared library two_file_main.c is linked against. */
#define MLP_IMPLEMENTATION
#include "../mlp.h"
