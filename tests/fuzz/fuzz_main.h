/* Shared by the fuzz targets (included after mlp.h): fuzz_resealed, and
   without libFuzzer (MLP_FUZZ_REPLAY) a main that feeds every file of the
   given directories to LLVMFuzzerTestOneInput, so `make test` replays the
   committed corpus on any compiler. */
#if defined(__GNUC__) || defined(__clang__)
#define FUZZ_MAYBE_UNUSED __attribute__((unused)) /* not every target reseals */
#else
#define FUZZ_MAYBE_UNUSED
#endif
/* The model and checkpoint targets' copy of the input with a fresh CRC-32
   in its last 4 bytes: the checksum would stop almost every mutation at the
   door, and the fuzzer is to reach the fields behind it. Free it. */
FUZZ_MAYBE_UNUSED static unsigned char *fuzz_resealed(const unsigned char *data, size_t size)
{
    unsigned char *buf = (unsigned char *)malloc(size);
    uint32_t crc;
    if (!buf) abort();
    memcpy(buf, data, size);
    crc = mlp_crc32(buf, size - 4);
    buf[size - 4] = (unsigned char)crc; buf[size - 3] = (unsigned char)(crc >> 8);
    buf[size - 2] = (unsigned char)(crc >> 16); buf[size - 1] = (unsigned char)(crc >> 24);
    return buf;
}

#ifdef MLP_FUZZ_REPLAY
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (unsigned char *)malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return -1; }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int i, files = 0;
    for (i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        if (!d) { if (replay_file(argv[i]) == 0) files++; continue; }
        while ((e = readdir(d))) {
            char path[4096];
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (replay_file(path) != 0) { fprintf(stderr, "cannot read %s\n", path); closedir(d); return 1; }
            files++;
        }
        closedir(d);
    }
    printf("replayed %d inputs without a crash\n", files);
    return files > 0 ? 0 : 1;
}
#endif
