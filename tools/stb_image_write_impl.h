/* The tools' one way to get stb_image_write (Debian: libstb-dev): its
   implementation compiled into the tool, with the warnings of code that is
   not ours to lint switched off around it. */
#ifndef MLP_TOOLS_STB_IMAGE_WRITE_IMPL_H
#define MLP_TOOLS_STB_IMAGE_WRITE_IMPL_H
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
