/* stored_inflate.h - the tests' own raw-deflate decoder for mlp.h's gzip
   reader (MLP_INFLATE): stored blocks only (1 header byte, LEN, ~LEN, the
   bytes), enough to test and fuzz the gzip framing around it independently
   of any real inflater (the examples' stb_image one is tested end to end by
   test_cli). Returns the bytes written, or -1 as a decoder does for a
   corrupt stream or a full buffer. Include before mlp.h. */
#ifndef MLP_TESTS_STORED_INFLATE_H
#define MLP_TESTS_STORED_INFLATE_H
#include <string.h>

static int stored_inflate(char *dst, int cap, const char *src, int len)
{
    const unsigned char *p = (const unsigned char *)src;
    int pos = 0, out = 0, last = 0;
    while (!last) {
        int n;
        if (len - pos < 5 || (p[pos] & 0xfe) != 0) return -1;
        last = p[pos] & 1;
        n = p[pos + 1] | p[pos + 2] << 8;
        if ((p[pos + 3] | p[pos + 4] << 8) != (~n & 0xffff) || len - pos - 5 < n || cap - out < n) return -1;
        memcpy(dst + out, p + pos + 5, (size_t)n);
        out += n;
        pos += 5 + n;
    }
    return out;
}
#define MLP_INFLATE(dst, cap, src, len) stored_inflate(dst, cap, src, len)
#endif
