/*
 * Test pictures through the tool's FFmpeg-based reader; see vgt_image.h.
 */
#include <stddef.h>

#include "tests/common/vgt_image.h"
#include "tools/visgen/media.h"

float *vgt_load_gray(const char *path, int *w, int *h)
{
    float *g = NULL;

    return vgm_load(path, NULL, &g, w, h) < 0 ? NULL : g;
}

int vgt_load_rgb(const char *path, VgImage *img)
{
    return vgm_load(path, img, NULL, NULL, NULL);
}

void vgt_image_free(VgImage *img)
{
    vgm_image_free(img);
}
