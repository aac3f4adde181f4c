/*
 * What visgen flow and visgen metrics share: their usage text, usage errors
 * and the flow computation with a preset.
 */
#include <stdio.h>
#include <stdlib.h>

#include "visgen/visgen.h"
#include "temporal/flow.h"
#include "tools/visgen/media.h"
#include "tools/visgen/temporal_cmds.h"

const char *const vg_temporal_usage_text =
    "       visgen flow [--preset P] [--warp OUT.png] A B OUT.flo\n"
    "  flow: dense optical flow from picture A to B (DIS; anything FFmpeg decodes, the\n"
    "    first frame of a video) as Middlebury .flo: B(x + u, y + v) ~ A(x, y).\n"
    "    --preset ultrafast|fast|medium [fast]; --warp: B warped onto A, as a PNG\n"
    "       visgen metrics [--preset P] [--plot OUT.svg] [--label NAME ...] INPUT OUTPUT...\n"
    "       visgen metrics --flo GT.flo [--preset P] (FLOW.flo | A B)\n"
    "  metrics: per frame and overall, for each OUTPUT video made from the INPUT video:\n"
    "    E_warp (Lai et al. 2018): masked mean of |O_t - warp(O_t-1)|^2 (RGB 0..1,\n"
    "      summed over channels) with the flow t -> t-1 and the forward-backward\n"
    "      occlusion mask computed on INPUT [--preset medium]; an OUTPUT of another size\n"
    "      (e.g. an upscaler's, 4x) gets the flow resized bilinearly (vectors scaled)\n"
    "      and the mask by nearest neighbour\n"
    "    flicker: mean |O_t - O_t-1| over pixels and channels, and |difference of mean\n"
    "      luma|, both 0..255. Frame counts must match.\n"
    "    --label: legend names of the outputs, in order [file names]; --plot: SVG chart\n"
    "    --flo: average endpoint error of FLOW.flo, or of the flow A -> B computed\n"
    "      here, against GT.flo (components > 1e9 are unknown and skipped)\n";

int vg_cli_flow(const float *a, const float *b, int w, int h, int preset, float *u, float *v)
{
    VgFlowParams p;
    int ret;

    vg_flow_default_params(&p, preset);
    if ((ret = vg_flow_dis(a, b, w, h, w, &p, u, v)) < 0) {
        fprintf(stderr, "visgen: optical flow on %dx%d failed: %s\n", w, h, vg_strerror(ret));
        return -1;
    }
    return 0;
}

int vg_temporal_usage(const char *fmt, const char *arg)
{
    fputs("visgen: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage:\n", stderr);
    fputs(vg_temporal_usage_text, stderr);
    return 2;
}

int vg_cli_flow_files(const char *pa, const char *pb, int preset, float **u, float **v,
                      int *w, int *h)
{
    float *a = NULL, *b = NULL;
    int w1, h1, ret = -1;

    *u = *v = NULL;
    if (vgm_load(pa, NULL, &a, w, h) < 0 || vgm_load(pb, NULL, &b, &w1, &h1) < 0)
        goto end;
    if (*w != w1 || *h != h1) {
        fprintf(stderr, "visgen: flow needs pictures of one size: %s is %dx%d, %s is %dx%d\n",
                pa, *w, *h, pb, w1, h1);
        goto end;
    }
    if (!(*u = malloc(sizeof(float) * *w * *h)) || !(*v = malloc(sizeof(float) * *w * *h))) {
        fprintf(stderr, "visgen: out of memory for %dx%d flow\n", *w, *h);
        goto end;
    }
    ret = vg_cli_flow(a, b, *w, *h, preset, *u, *v);
end:
    if (ret < 0) {
        free(*u);
        free(*v);
        *u = *v = NULL;
    }
    free(a);
    free(b);
    return ret;
}
