/* stb_png.h - stb_image (Debian: apt-get install libstb-dev), set up as the
   examples use it: PNG only, pictures over 8192 pixels a side refused, and
   its zlib decoder, which also inflates gzip-compressed IDX files for mlp.h
   (MLP_INFLATE). Include it in one file, before mlp.h. */
#ifndef MLP_EXAMPLES_STB_PNG_H
#define MLP_EXAMPLES_STB_PNG_H
#define STBI_ONLY_PNG
#define STBI_MAX_DIMENSIONS 8192     /* larger images are refused, not decoded */
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  /* stb_image is not ours to lint */
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
/* Debian and Ubuntu (libstb-dev) install stb/stb_image.h; vcpkg, Homebrew
   or a copy beside this file may put stb_image.h anywhere on the include
   path. -DMLP_STB_INCLUDE='<stb_image.h>' (any header name) says where. */
#if defined(MLP_STB_INCLUDE)
#include MLP_STB_INCLUDE
#elif defined(__has_include)
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#else
#include "stb_image.h"
#endif
#else
#include <stb/stb_image.h>
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* raw deflate into a buffer of exactly the size the gzip trailer states */
#define MLP_INFLATE(dst, cap, src, len) stbi_zlib_decode_noheader_buffer(dst, cap, src, len)
#endif
