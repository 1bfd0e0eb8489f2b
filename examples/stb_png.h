/* stb_png.h - stb_image (Debian: apt-get install libstb-dev), set up as the
   examples use it: PNG only, pictures over 8192 pixels a side refused, a
   check of the chunk lengths to run before it (png_chunk_problem) and a
   clean-up of empty data chunks (png_drop_empty_idat), and
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

#include <stddef.h>
#include <string.h>

/* Why a PNG file's chunks cannot be handed to stb_image, or NULL. stb_image
   grows its buffer for the compressed data by each IDAT chunk's stated
   length before it reads the chunk, so an 83-byte file claiming a long
   chunk makes it ask for 2 GB. A chunk that claims more bytes than the file
   has left is refused here first, which bounds that buffer by twice the
   file's size. (Shorter than a signature: left to stb_image's own checks.) */
static inline const char *png_chunk_problem(const unsigned char *png, size_t size)
{
    size_t at = 8; /* after the signature; at <= size throughout */
    if (size < at) return NULL;
    while (size - at >= 8) {
        size_t len = (size_t)png[at] << 24 | (size_t)png[at + 1] << 16 | (size_t)png[at + 2] << 8 | png[at + 3];
        if (len > size - at - 8 || size - at - 8 - len < 4) /* the data and its CRC */
            return "corrupt or truncated PNG (a chunk runs past the end of the file)";
        if (memcmp(png + at + 4, "IEND", 4) == 0) break;
        at += 12 + len;
    }
    return NULL;
}

/* Removes the IDAT chunks that hold no data (allowed, and meaningless),
   moving the rest of the file down; *size shrinks by 12 bytes for each.
   stb_image reads a first IDAT chunk of length 0 with memcpy(NULL, p, 0),
   undefined behaviour before C23 that UBSan reports (found by the image
   fuzz target). Run it after png_chunk_problem has passed the file. */
static inline void png_drop_empty_idat(unsigned char *png, size_t *size)
{
    size_t at = 8;
    while (*size >= at + 12) {
        size_t len = (size_t)png[at] << 24 | (size_t)png[at + 1] << 16 | (size_t)png[at + 2] << 8 | png[at + 3];
        if (len == 0 && memcmp(png + at + 4, "IDAT", 4) == 0) {
            memmove(png + at, png + at + 12, *size - at - 12);
            *size -= 12;
            continue;
        }
        if (memcmp(png + at + 4, "IEND", 4) == 0 || len > *size - at - 12) break;
        at += 12 + len;
    }
}

/* raw deflate into a buffer of exactly the size the gzip trailer states */
#define MLP_INFLATE(dst, cap, src, len) stbi_zlib_decode_noheader_buffer(dst, cap, src, len)
#endif
