/*
 * vgbench layers: the layer shapes the upscaling networks spend their time
 * in, each timed alone through the engine's ops on a whole 640x360 frame
 * (no tiling), so a slow network can be traced to a layer type. The same
 * list is timed in PyTorch by torch_peer.py --layers (keep both in sync).
 */
#include <stdio.h>
#include <string.h>

#include "engine/ops.h"
#include "engine/ops/conv_winograd.h"
#include "bench/bench_layers.h"
#include "bench/bench_util.h"

static const VgbLayer layers[] = {
    /* name                               kind      cin cout k  up */
    { "conv3x3 3->64 (first conv)",        VGB_CONV,   3, 64, 3, 1 },
    { "conv3x3 64->64 (body)",             VGB_CONV,  64, 64, 3, 1 },
    { "conv3x3 64->4 (slim dense growth)", VGB_CONV,  64,  4, 3, 1 },
    { "conv1x1 128->64 (fusion)",          VGB_CONV, 128, 64, 1, 1 },
    { "conv3x3 64->48 (to 3*4*4)",         VGB_CONV,  64, 48, 3, 1 },
    { "upsample nearest x4, 48 ch",        VGB_UPSAMPLE, 48, 48, 0, 4 },
    { "conv3x3 48->3 at x4 (slim SR)",     VGB_CONV,  48,  3, 3, 4 },
    { "depth_to_space x4, 48 ch",          VGB_D2S,   48,  3, 0, 4 },
};

const VgbLayer *vgb_layers(int *n)
{
    *n = (int)(sizeof(layers) / sizeof(layers[0]));
    return layers;
}

double vgb_layer_flops(const VgbLayer *l, int w, int h)
{
    if (l->kind != VGB_CONV)
        return 0;
    return 2.0 * l->cout * l->cin * l->k * l->k * (double)w * l->up * h * l->up;
}

/* Best-of-@reps ms of one layer on a [1, cin, h*up, w*up] input (conv) or
 * [1, cin, h, w] input (upsample, depth_to_space). < 0: error code. */
static double time_layer(VgCtx *c, const VgbLayer *l, int w, int h, int reps)
{
    VgTensor x = { 0 }, y = { 0 }, wt = { 0 }, b = { 0 };
    double best = -1;
    int ret;
    const int64_t ih = l->kind == VGB_CONV ? (int64_t)h * l->up : h;
    const int64_t iw = l->kind == VGB_CONV ? (int64_t)w * l->up : w;
    const int64_t oh = l->kind == VGB_CONV ? ih : ih * l->up;
    const int64_t ow = l->kind == VGB_CONV ? iw : iw * l->up;
    const int64_t bs[1] = { l->cout };
    if ((ret = vg_tensor_alloc4(&x, 1, l->cin, ih, iw)) < 0 ||
        (ret = vg_tensor_alloc4(&y, 1, l->cout, oh, ow)) < 0)
        goto end;
    float *xd = x.data;
    for (int64_t i = 0; i < vg_tensor_nelem(&x); i++)
        xd[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    if (l->kind == VGB_CONV) {
        if ((ret = vg_tensor_alloc4(&wt, l->cout, l->cin, l->k, l->k)) < 0 ||
            (ret = vg_tensor_alloc(&b, VG_DT_F32, 1, bs)) < 0)
            goto end;
        float *wd = wt.data;
        for (int64_t i = 0; i < vg_tensor_nelem(&wt); i++)
            wd[i] = (float)((i * 40503u) % 200) * 1e-4f - 0.01f;
    }
    for (int r = 0; r <= reps; r++) {   /* r == 0: warm-up */
        VgConvParams p;
        double t0 = vgb_now();
        switch (l->kind) {
        case VGB_CONV:
            vg_conv_params_default(&p);
            p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = l->k / 2;
            ret = vg_conv2d_act(c, &x, &wt, &b, &p, VG_ACT_RELU, 0, NULL, &y);
            break;
        case VGB_UPSAMPLE:
            ret = vg_upsample_nearest(c, &x, l->up, &y);
            break;
        default:
            ret = vg_depth_to_space(c, &x, l->up, VG_D2S_DCR, &y);
            break;
        }
        double ms = (vgb_now() - t0) * 1e3;
        if (ret < 0)
            goto end;
        if (r && (best < 0 || ms < best))
            best = ms;
    }
end:
    vg_tensor_free(&x);
    vg_tensor_free(&y);
    vg_tensor_free(&wt);
    vg_tensor_free(&b);
    return ret < 0 ? ret : best;
}

int vgb_run_layers(VgCtx *c, int w, int h, int reps)
{
    int n;
    const VgbLayer *ls = vgb_layers(&n);
    printf("{\"width\": %d, \"height\": %d, \"reps\": %d, \"layers\": [", w, h, reps);
    for (int i = 0; i < n; i++) {
        double ms = time_layer(c, &ls[i], w, h, reps);
        if (ms < 0) {
            fprintf(stderr, "vgbench layers: %s: %s\n", ls[i].name, vg_strerror((int)ms));
            return 1;
        }
        double fl = vgb_layer_flops(&ls[i], w, h);
        printf("%s{\"name\": ", i ? ", " : "");
        vgb_json_str(ls[i].name);
        printf(", \"kind\": %d, \"cin\": %d, \"cout\": %d, \"k\": %d, \"up\": %d, \"ms\": %.2f, "
               "\"gflops\": %.2f}", ls[i].kind, ls[i].cin, ls[i].cout, ls[i].k, ls[i].up, ms,
               fl > 0 ? fl / (ms * 1e6) : 0.0);
        fflush(stdout);
    }
    printf("]}\n");
    return 0;
}

/* ------------------------------------------------------------------ SD */

/* 3x3 convs of the SD2.1 UNet at a 64x64 latent and of TAESD at 512x512,
 * each timed through the im2col + sgemm path and both Winograd variants
 * (F(4x4, 3x3), F(2x2, 3x3)). GFLOPS count the direct convolution's
 * 2 * Cout * Cin * 9 * H * W for all three, so they compare as speed. */
static const struct { const char *name; int cin, cout, size; } sd_layers[] = {
    { "unet 320->320 64x64",     320,  320, 64 },
    { "unet 640->640 64x64 (up)", 640, 640, 64 },
    { "unet 640->640 32x32",     640,  640, 32 },
    { "unet 1920->640 32x32",    1920, 640, 32 },
    { "unet 1280->1280 32x32 (up)", 1280, 1280, 32 },
    { "unet 1280->1280 16x16",   1280, 1280, 16 },
    { "unet 2560->1280 16x16",   2560, 1280, 16 },
    { "unet 1280->1280 8x8",     1280, 1280, 8 },
    { "taesd 64->64 512x512",    64,   64,   512 },
    { "taesd 64->64 256x256",    64,   64,   256 },
    { "taesd 64->64 64x64",      64,   64,   64 },
};

int vgb_run_sd_layers(VgCtx *c, int reps)
{
    const int n = (int)(sizeof(sd_layers) / sizeof(sd_layers[0]));
    printf("{\"reps\": %d, \"layers\": [", reps);
    for (int i = 0; i < n; i++) {
        const VgbLayer l = { sd_layers[i].name, VGB_CONV, sd_layers[i].cin, sd_layers[i].cout, 3,
                             1 };
        const int s = sd_layers[i].size;
        static const char *const names[3] = { "direct", "f4x4", "f2x2" };
        double ms[3];
        for (int v = 0; v < 3; v++) {
            vg_conv_winograd_force(v);
            if ((ms[v] = time_layer(c, &l, s, s, reps)) < 0) {
                vg_conv_winograd_force(-1);
                fprintf(stderr, "vgbench sd-layers: %s (%s): %s\n", l.name, names[v],
                        vg_strerror((int)ms[v]));
                return 1;
            }
        }
        vg_conv_winograd_force(-1);
        const int m = vg_conv_winograd_wanted(l.cin, l.cout, s, s, 3, 3, 1, 1, 1, 1);
        const double fl = vgb_layer_flops(&l, s, s);
        printf("%s{\"name\": ", i ? ", " : "");
        vgb_json_str(l.name);
        for (int v = 0; v < 3; v++)
            printf(", \"%s_ms\": %.2f, \"%s_gflops\": %.1f", names[v], ms[v], names[v],
                   fl / (ms[v] * 1e6));
        printf(", \"auto\": \"%s\"}", names[m == 4 ? 1 : m == 2 ? 2 : 0]);
        fflush(stdout);
    }
    printf("]}\n");
    return 0;
}
