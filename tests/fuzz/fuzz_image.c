/* Fuzz target: PNG bytes -> classify's checks -> stb_image (as classify
   configures it) -> digit
   preprocessing (single digit and whole number, every stage shown to a
   callback that reads each pixel) -> a forward pass of a small fixed network. */
#include <stddef.h>
#include <stdlib.h>
#include "../../examples/stb_png.h" /* stb_image as classify sets it up */
#define MLP_IMPLEMENTATION
#include "../../mlp.h"
#include "fuzz_main.h"

/* reads every pixel of every stage, so a stage image too small for its
   stated size shows up under AddressSanitizer */
static void touch_stage(void *user, const char *stage, const float *img, int w, int h)
{
    float *sum = (float *)user;
    int i;
    (void)stage;
    for (i = 0; i < w * h; i++) *sum += img[i];
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static mlp_net *net; /* one fixed network for the whole run */
    int w, h, n, i;
    stbi_uc *px;
    unsigned char *png;
    float *f, raw[784], x[784], digits[4 * 784], sum = 0.0f;
    mlp_digit_box boxes[4];
    if (size > (1 << 22)) return 0;
    if (!stbi_info_from_memory(data, (int)size, &w, &h, &n)) return 0;
    if (png_chunk_problem(data, size)) return 0; /* as classify refuses it */
    if ((double)w * h > 4e6) return 0; /* classify would decode it; the fuzzer need not */
    if (!(png = (unsigned char *)malloc(size))) return 0;
    memcpy(png, data, size);
    png_drop_empty_idat(png, &size); /* as classify does */
    px = stbi_load_from_memory(png, (int)size, &w, &h, &n, 2);
    free(png);
    if (!px) return 0;
    f = (float *)malloc(sizeof(float) * (size_t)w * h * 2);
    for (i = 0; i < w * h * 2; i++) f[i] = px[i] / 255.0f;
    stbi_image_free(px);
    if (!net) {
        net = mlp_create_spec("784-32-10", MLP_ACT_RELU, MLP_LOSS_CE, 1);
        net->image_w = net->image_h = 28;
        net->input_scale = 1.0f / 255.0f;
    }
    if (mlp_digit_preprocess_ex(f, w, h, 2, raw, boxes, touch_stage, &sum) == 0) {
        mlp_normalize_input(net, raw, x);
        mlp_predict(net, x, 1);
    }
    n = mlp_number_preprocess(f, w, h, 2, digits, boxes, 4, NULL, NULL);
    for (i = 0; i < n; i++) /* boxes inside the picture */
        if (boxes[i].x < 0 || boxes[i].y < 0 || boxes[i].x + boxes[i].w > w || boxes[i].y + boxes[i].h > h) abort();
    free(f);
    return 0;
}
