/*
 * Public upscaling API: resolves a model name or path to a network and runs
 * it tile by tile. Each tile is grown by an overlap margin on every side that
 * is not a picture border, and only its centre is pasted into the result, so
 * with overlap >= the network's context the tiled result equals an untiled
 * run (up to float summation order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "engine/net.h"
#include "engine/tfjs.h"
#include "engine/weights.h"

#ifndef VG_MODEL_DIR_BUILD
#define VG_MODEL_DIR_BUILD ""
#endif
#ifndef VG_MODEL_DIR_INSTALL
#define VG_MODEL_DIR_INSTALL ""
#endif

#define AUTO_TILE_BUDGET ((size_t)512 << 20)
#define MAX_AUTO_OVERLAP 32

struct VgUpscaler {
    VgCtx *ctx;
    VgNet *net;
    int tile, overlap;  /* as requested (0 / -1 = automatic) */
    int last_tile;      /* tile size of the previous run, for logging changes */
    char desc[256];
};

void vg_upscale_default_settings(VgUpscaleSettings *s)
{
    memset(s, 0, sizeof(*s));
    s->model = "default";
    s->tile_overlap = -1;
}

static int is_file(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int has_suffix(const char *s, const char *suf)
{
    const size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

/* Built-in names: model.json relative to a model folder, for @scale (0 = default). */
static int builtin_path(VgCtx *c, const char *name, int *scale, char *rel, size_t size)
{
    static const char *const esrgan[] = { "esrgan-slim", "esrgan-medium", "esrgan-thick" };
    if (!strcmp(name, "default")) {
        if (*scale == 0)
            *scale = 2;
        if (*scale != 2) {
            vg_log(c, VG_LOG_ERROR, "upscale: model 'default' is x2 only (scale %d asked)\n", *scale);
            return VG_ERR(EINVAL);
        }
        snprintf(rel, size, "default/model.json");
        return 1;
    }
    for (size_t i = 0; i < VG_ARRAY_SIZE(esrgan); i++)
        if (!strcmp(name, esrgan[i])) {
            if (*scale == 0)
                *scale = 4;
            if (*scale != 2 && *scale != 3 && *scale != 4 && *scale != 8) {
                vg_log(c, VG_LOG_ERROR, "upscale: %s has x2, x3, x4, x8 (scale %d asked)\n", name,
                       *scale);
                return VG_ERR(EINVAL);
            }
            snprintf(rel, size, "%s/x%d/model.json", name, *scale);
            return 1;
        }
    return 0;
}

static int open_builtin(VgCtx *c, const VgUpscaleSettings *s, const char *rel, VgNet **net)
{
    const char *env = getenv("VISGEN_MODEL_DIR");
    const char *dirs[3];
    int n = 0;
    char path[4096];
    VgTfjsModel *m = NULL;
    int ret;

    if (s->model_dir)
        dirs[n++] = s->model_dir;
    else {
        if (env && *env)
            dirs[n++] = env;
        dirs[n++] = VG_MODEL_DIR_INSTALL;
        dirs[n++] = VG_MODEL_DIR_BUILD;
    }
    for (int i = 0; i < n; i++) {
        if (!*dirs[i])
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirs[i], rel);
        if (!is_file(path))
            continue;
        vg_log(c, VG_LOG_VERBOSE, "upscale: model '%s' is %s\n", s->model, path);
        if ((ret = vg_tfjs_open(&m, c, path)) < 0)
            return ret;
        return vg_net_tfjs_create(net, c, m);
    }
    vg_log(c, VG_LOG_ERROR, "upscale: model '%s' (%s) not found in %s%s%s%s%s (run 'make models' "
           "or set VISGEN_MODEL_DIR)\n", s->model, rel, dirs[0], n > 1 ? ", " : "",
           n > 1 ? dirs[1] : "", n > 2 ? ", " : "", n > 2 ? dirs[2] : "");
    return VG_ERR(ENOENT);
}

static int open_weights(VgCtx *c, const char *path, VgNet **net)
{
    VgWeights *w = NULL;
    int ret = vg_weights_open(&w, c, path);
    if (ret < 0)
        return ret;
    if (vg_net_pick_prefix(w, "body.0.weight") && vg_net_pick_prefix(w, "body.1.weight")) {
        const char *pre = vg_net_pick_prefix(w, "body.0.weight");
        char name[64];
        snprintf(name, sizeof(name), "%sbody.1.weight", pre);
        const VgTensor *t = vg_weights_find(w, name);
        if (t && t->ndim == 1) /* PReLU after the first conv */
            return vg_net_srvgg_create(net, c, w, pre);
    }
    if (vg_net_pick_prefix(w, "conv_first.weight") || vg_net_pick_prefix(w, "model.0.weight"))
        return vg_net_rrdb_create(net, c, w, NULL);
    vg_log(c, VG_LOG_ERROR, "upscale: %s holds neither an SRVGGNetCompact ('body.0.weight', "
           "'body.1.weight') nor an RRDBNet ('conv_first.weight' / 'model.0.weight')\n", path);
    vg_weights_close(&w);
    return VG_EUNSUPPORTED;
}

int vg_upscale_open(VgUpscaler **out, VgCtx *ctx, const VgUpscaleSettings *s)
{
    VgUpscaler *u;
    VgNet *net = NULL;
    char rel[256];
    int scale, ret;

    VG_VALIDATE(out && ctx && s, VG_ERR(EINVAL));
    *out = NULL;
    if (!s->model || !*s->model) {
        vg_log(ctx, VG_LOG_ERROR, "upscale: no model given\n");
        return VG_ERR(EINVAL);
    }
    if (s->scale < 0 || s->tile < 0 || s->tile_overlap < -1) {
        vg_log(ctx, VG_LOG_ERROR, "upscale: scale %d / tile %d / tile_overlap %d out of range\n",
               s->scale, s->tile, s->tile_overlap);
        return VG_ERR(EINVAL);
    }
    if (s->tile > 0 && s->tile < 8) {
        vg_log(ctx, VG_LOG_ERROR, "upscale: tile %d too small (at least 8 pixels)\n", s->tile);
        return VG_ERR(EINVAL);
    }
    scale = s->scale;
    if ((ret = builtin_path(ctx, s->model, &scale, rel, sizeof(rel))) < 0)
        return ret;
    if (ret > 0) {
        ret = open_builtin(ctx, s, rel, &net);
    } else if (is_dir(s->model) || has_suffix(s->model, ".json")) {
        VgTfjsModel *m = NULL;
        if ((ret = vg_tfjs_open(&m, ctx, s->model)) >= 0)
            ret = vg_net_tfjs_create(&net, ctx, m);
    } else if (has_suffix(s->model, ".pth") || has_suffix(s->model, ".ckpt") ||
               has_suffix(s->model, ".safetensors")) {
        ret = open_weights(ctx, s->model, &net);
    } else {
        vg_log(ctx, VG_LOG_ERROR, "upscale: model '%s' is neither a built-in name (default, "
               "esrgan-slim, esrgan-medium, esrgan-thick) nor a model.json / folder / .pth / "
               ".ckpt / .safetensors path\n", s->model);
        return is_file(s->model) ? VG_EUNSUPPORTED : VG_ERR(ENOENT);
    }
    if (ret < 0)
        return ret;
    if (scale && scale != net->scale) {
        vg_log(ctx, VG_LOG_ERROR, "upscale: %s upscales x%d, scale %d asked\n", s->model,
               net->scale, scale);
        vg_net_destroy(&net);
        return VG_ERR(EINVAL);
    }
    if (!(u = calloc(1, sizeof(*u)))) {
        vg_net_destroy(&net);
        return VG_ERR(ENOMEM);
    }
    u->ctx = ctx;
    u->net = net;
    u->tile = s->tile;
    u->overlap = s->tile_overlap;
    {
        const char *base = strrchr(s->model, '/');
        base = base && base[1] ? base + 1 : s->model;
        snprintf(u->desc, sizeof(u->desc), "%s x%d (%s)", base, net->scale, net->desc);
    }
    vg_log(ctx, VG_LOG_VERBOSE, "upscale: loaded %s: %.3fM parameters, input 0..%g, context %d px\n",
           u->desc, net->n_params / 1e6, net->in_scale, net->context);
    *out = u;
    return 0;
}

int vg_upscale_get_scale(const VgUpscaler *u)
{
    return u->net->scale;
}

const char *vg_upscale_describe(const VgUpscaler *u)
{
    return u->desc;
}

static int round_up(int v, int a)
{
    return (v + a - 1) / a * a;
}

/* Largest square tile (multiple of the net's alignment) whose padded working
 * set fits the budget; working_set is O(1), so a linear search is cheap. */
static int auto_tile(const VgNet *n, int W, int H, int ov)
{
    const int a = n->align, lo = round_up(16, a);
    int t = round_up(VG_MAX(W, H), a);
    while (t > lo && n->working_set(n, VG_MIN(H, t + 2 * ov), VG_MIN(W, t + 2 * ov)) > AUTO_TILE_BUDGET)
        t -= a;
    return t;
}

int vg_upscale_run(VgUpscaler *u, const VgImage *in, VgImage *out)
{
    VgCtx *c;
    VgNet *n;
    VgTensor x = { 0 }, y = { 0 };
    int ret = 0, W, H, S, tile, ov, a;

    VG_VALIDATE(u && in && out, VG_ERR(EINVAL));
    c = u->ctx;
    n = u->net;
    W = in->width;
    H = in->height;
    S = n->scale;
    a = n->align;
    if (W < 1 || H < 1 || W > 65536 || H > 65536) {
        vg_log(c, VG_LOG_ERROR, "upscale: input size %dx%d invalid\n", W, H);
        return VG_ERR(EINVAL);
    }
    if (out->width != W * S || out->height != H * S) {
        vg_log(c, VG_LOG_ERROR, "upscale: output is %dx%d, x%d of %dx%d needs %dx%d\n", out->width,
               out->height, S, W, H, W * S, H * S);
        return VG_ERR(EINVAL);
    }
    for (int p = 0; p < 3; p++)
        if (!in->data[p] || !out->data[p] || in->stride[p] < (ptrdiff_t)(W * sizeof(float)) ||
            out->stride[p] < (ptrdiff_t)(W * S * sizeof(float))) {
            vg_log(c, VG_LOG_ERROR, "upscale: plane %d missing or its stride too small\n", p);
            return VG_ERR(EINVAL);
        }

    ov = u->overlap >= 0 ? u->overlap : VG_MIN(n->context, MAX_AUTO_OVERLAP);
    ov = round_up(ov, a);
    tile = u->tile > 0 ? round_up(u->tile, a) : auto_tile(n, W, H, ov);
    {
        /* spread the picture evenly over the tiles so none is a thin sliver */
        const int nx = (W + tile - 1) / tile, ny = (H + tile - 1) / tile;
        const int tw = round_up((W + nx - 1) / nx, a), th = round_up((H + ny - 1) / ny, a);
        if (tile != u->last_tile)
            vg_log(c, VG_LOG_VERBOSE, "upscale: %dx%d in %dx%d tiles of %dx%d + %d overlap "
                   "(%.0f MB working set)\n", W, H, nx, ny, tw, th, ov,
                   n->working_set(n, VG_MIN(H, th + 2 * ov), VG_MIN(W, tw + 2 * ov)) / 1048576.0);
        u->last_tile = tile;

        for (int ty = 0; ty < H && ret >= 0; ty += th)
            for (int tx = 0; tx < W && ret >= 0; tx += tw) {
                const int x0 = VG_MAX(0, tx - ov), y0 = VG_MAX(0, ty - ov);
                const int x1 = VG_MIN(W, tx + tw + ov), y1 = VG_MIN(H, ty + th + ov);
                const int cw = VG_MIN(tw, W - tx), ch = VG_MIN(th, H - ty);
                const int ew = x1 - x0, eh = y1 - y0;
                if ((ret = vg_tensor_alloc4(&x, 1, 3, eh, ew)) < 0)  // [1, 3, eh, ew]
                    break;
                for (int p = 0; p < 3; p++)
                    for (int yy = 0; yy < eh; yy++) {
                        const float *s = (const float *)((const uint8_t *)in->data[p] +
                                                         (y0 + yy) * in->stride[p]) + x0;
                        float *d = (float *)x.data + ((size_t)p * eh + yy) * ew;
                        for (int xx = 0; xx < ew; xx++)
                            d[xx] = s[xx] * n->in_scale;
                    }
                ret = n->forward(n, c, &x, &y);  // y [1, 3, eh*S, ew*S]
                vg_tensor_free(&x);
                if (ret < 0)
                    break;
                if (y.ne[2] != (int64_t)eh * S || y.ne[3] != (int64_t)ew * S) {
                    vg_log(c, VG_LOG_ERROR, "upscale: network returned %lldx%lld for %dx%d\n",
                           (long long)y.ne[3], (long long)y.ne[2], ew, eh);
                    ret = VG_ERR(EINVAL);
                    break;
                }
                const float inv = 1.f / n->in_scale;
                const int ox = (tx - x0) * S, oy = (ty - y0) * S;
                for (int p = 0; p < 3; p++)
                    for (int yy = 0; yy < ch * S; yy++) {
                        const float *s = (const float *)y.data + ((size_t)p * eh * S + oy + yy) * ew * S + ox;
                        float *d = (float *)((uint8_t *)out->data[p] + (ty * S + yy) * out->stride[p]) + tx * S;
                        for (int xx = 0; xx < cw * S; xx++) {
                            const float v = s[xx] * inv;
                            d[xx] = v > 0.f ? (v < 1.f ? v : 1.f) : 0.f; /* NaN -> 0 */
                        }
                    }
                vg_tensor_free(&y);
            }
    }
    vg_tensor_free(&x);
    vg_tensor_free(&y);
    return ret;
}

void vg_upscale_close(VgUpscaler **pu)
{
    VgUpscaler *u = pu ? *pu : NULL;
    if (!u)
        return;
    vg_net_destroy(&u->net);
    free(u);
    *pu = NULL;
}
