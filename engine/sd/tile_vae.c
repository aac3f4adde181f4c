/*
 * Tiled VAE encode / decode with linearly blended overlaps.
 *
 * Positions are counted in latent pixels ("units"); the image side is the
 * same grid times the VAE factor f (8). Along each axis tiles of @tile units
 * start every (tile - overlap) units, the last one moved back to end at the
 * border, so consecutive tiles overlap by at least @overlap units.
 * Every tile runs through the whole network; its output is weighted by a
 * separable ramp that rises linearly over the overlap width from each edge
 * shared with another tile (edges on the picture border keep weight 1), and
 * the accumulated sum is divided by the accumulated weights: a linear
 * cross-fade where two tiles meet, whatever the actual overlap.
 *
 * Defaults: tile 64 units (512 image pixels, the size SD's VAE was trained
 * at, about 1.2 GB peak for the SD decoder) and overlap 16 (128 pixels:
 * the decoder's receptive field is a few dozen latent pixels; a wider fade
 * hides the differences GroupNorm's per-tile statistics cause).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/vae.h"

#define DEFAULT_TILE 64
#define DEFAULT_OVERLAP 16

typedef int (*VaeFn)(VgVae *v, const VgTensor *x, VgTensor *y);

/* Tile starts along an axis of @n units; returns the count. */
static int tile_starts(int n, int tile, int overlap, int *starts, int max)
{
    const int stride = tile - overlap;
    int k = 0;
    for (int s = 0;; s += stride) {
        if (k == max)
            return -1;
        starts[k++] = VG_MIN(s, n - tile);
        if (s + tile >= n)
            break;
    }
    return k;
}

/* weight of output pixel @i (0..len-1) of a tile whose low/high edges fade */
static float ramp(int i, int len, int fade, int lo, int hi)
{
    float w = 1.f;
    if (lo && i < fade)
        w = VG_MIN(w, (i + 0.5f) / fade);
    if (hi && len - 1 - i < fade)
        w = VG_MIN(w, (len - 1 - i + 0.5f) / fade);
    return w;
}

/* copy x[:, :, y0:y0+h, x0:x0+w] into a new contiguous F32 tensor */
static int crop(const VgTensor *x, int64_t y0, int64_t x0, int64_t h, int64_t w, VgTensor *t)
{
    const int64_t B = x->ne[0], C = x->ne[1], H = x->ne[2], W = x->ne[3];
    int ret = vg_tensor_alloc4(t, B, C, h, w);  // [B, C, h, w]
    if (ret < 0)
        return ret;
    for (int64_t p = 0; p < B * C; p++)
        for (int64_t r = 0; r < h; r++)
            memcpy((float *)t->data + (p * h + r) * w,
                   (const float *)x->data + (p * H + y0 + r) * W + x0, (size_t)w * sizeof(float));
    return 0;
}

static int run_tiled(VgVae *v, const VgTensor *x, int tile, int overlap, int decode,
                     VaeFn fn, VgTensor *y)
{
    const int f = vg_vae_factor(v);
    const int in_s = decode ? 1 : f, out_s = decode ? f : 1; /* pixels per unit */
    const int64_t B = x->ne[0], nh = x->ne[2] / in_s, nw = x->ne[3] / in_s;
    enum { MAX_TILES = 1024 };
    int ys[MAX_TILES], xs[MAX_TILES], ny, nx, ret = 0;
    VgTensor in = { 0 }, t = { 0 }, o = { 0 }, wsum = { 0 };
    float *wy = NULL, *wx = NULL;

    if (!tile)
        tile = DEFAULT_TILE;
    if (overlap < 0)
        overlap = tile / 4;
    else if (!overlap)
        overlap = VG_MIN(DEFAULT_OVERLAP, tile / 4);
    if (tile < 2 || overlap >= tile) {
        vg_log(vg_vae_ctx(v), VG_LOG_ERROR, "vae: tile %d / overlap %d: the overlap must be smaller than "
               "the tile\n", tile, overlap);
        return VG_ERR(EINVAL);
    }
    if ((ret = vg_tensor_to_f32(x, &in)) < 0)  // [B, C, H, W]
        return ret;
    if (nh <= tile && nw <= tile) {
        ret = fn(v, &in, y);
        vg_tensor_free(&in);
        return ret;
    }
    ny = tile_starts((int)nh, VG_MIN(tile, (int)nh), overlap, ys, MAX_TILES);
    nx = tile_starts((int)nw, VG_MIN(tile, (int)nw), overlap, xs, MAX_TILES);
    if (ny < 0 || nx < 0) {
        ret = VG_ERR(EINVAL);
        goto end;
    }
    const int th = VG_MIN(tile, (int)nh), tw = VG_MIN(tile, (int)nw);
    vg_log(vg_vae_ctx(v), VG_LOG_VERBOSE, "vae: %s %dx%d latent as %dx%d tiles of %dx%d "
           "(overlap %d)\n", decode ? "decode" : "encode", (int)nw, (int)nh, nx, ny, tw, th,
           overlap);
    const int oh = th * out_s, ow = tw * out_s, fade = overlap * out_s;
    const int64_t H = nh * out_s, W = nw * out_s;
    if (!(wy = malloc(sizeof(float) * oh)) || !(wx = malloc(sizeof(float) * ow)) ||
        (ret = vg_tensor_alloc4(&wsum, 1, 1, H, W)) < 0) {  // [1, 1, H, W]
        ret = ret < 0 ? ret : VG_ERR(ENOMEM);
        goto end;
    }
    for (int iy = 0; iy < ny; iy++) {
        for (int ix = 0; ix < nx; ix++) {
            if ((ret = crop(&in, (int64_t)ys[iy] * in_s, (int64_t)xs[ix] * in_s,
                            (int64_t)th * in_s, (int64_t)tw * in_s, &t)) < 0 ||
                (ret = fn(v, &t, &o)) < 0)  // [B, C', oh, ow]
                goto end;
            vg_tensor_free(&t);
            if (!y->data && (ret = vg_tensor_alloc4(y, B, o.ne[1], H, W)) < 0)  // [B, C', H, W]
                goto end;
            /* fade only edges another tile overlaps */
            for (int i = 0; i < oh; i++)
                wy[i] = ramp(i, oh, fade, iy > 0, iy < ny - 1);
            for (int i = 0; i < ow; i++)
                wx[i] = ramp(i, ow, fade, ix > 0, ix < nx - 1);
            const int64_t oy = (int64_t)ys[iy] * out_s, ox = (int64_t)xs[ix] * out_s;
            for (int64_t p = 0; p < B * o.ne[1]; p++)
                for (int r = 0; r < oh; r++) {
                    float *dst = (float *)y->data + (p * H + oy + r) * W + ox;
                    const float *src = (const float *)o.data + (p * oh + r) * ow;
                    for (int c = 0; c < ow; c++)
                        dst[c] += wy[r] * wx[c] * src[c];
                }
            for (int r = 0; r < oh; r++) {
                float *dst = (float *)wsum.data + (oy + r) * W + ox;
                for (int c = 0; c < ow; c++)
                    dst[c] += wy[r] * wx[c];
            }
            vg_tensor_free(&o);
        }
    }
    for (int64_t p = 0; p < B * y->ne[1]; p++) {
        float *d = (float *)y->data + p * H * W;
        const float *ws = wsum.data;
        for (int64_t i = 0; i < H * W; i++)
            d[i] /= ws[i];
    }
end:
    if (ret < 0)
        vg_tensor_free(y);
    vg_tensor_free(&in);
    vg_tensor_free(&t);
    vg_tensor_free(&o);
    vg_tensor_free(&wsum);
    free(wy);
    free(wx);
    return ret;
}

int vg_vae_decode_tiled(VgVae *v, const VgTensor *lat, int tile, int overlap, VgTensor *img)
{
    VG_VALIDATE(v && lat && img, VG_ERR(EINVAL));
    memset(img, 0, sizeof(*img));
    if (lat->ndim != 4 || lat->ne[1] != vg_vae_get_config(v)->latent_channels)
        return vg_vae_decode(v, lat, img); /* reports the shape error */
    return run_tiled(v, lat, tile, overlap, 1, vg_vae_decode, img);
}

int vg_vae_encode_tiled(VgVae *v, const VgTensor *img, int tile, int overlap, VgTensor *mean)
{
    const int f = vg_vae_factor(v);
    VG_VALIDATE(v && img && mean, VG_ERR(EINVAL));
    memset(mean, 0, sizeof(*mean));
    if (img->ndim != 4 || img->ne[2] % f || img->ne[3] % f ||
        img->ne[1] != vg_vae_get_config(v)->in_channels)
        return vg_vae_encode(v, img, mean); /* reports the shape error */
    return run_tiled(v, img, tile, overlap, 0, vg_vae_encode, mean);
}

int vg_vae_encode_moments_tiled(VgVae *v, const VgTensor *img, int tile, int overlap,
                                VgTensor *moments)
{
    const int f = vg_vae_factor(v);
    VG_VALIDATE(v && img && moments, VG_ERR(EINVAL));
    memset(moments, 0, sizeof(*moments));
    if (img->ndim != 4 || img->ne[2] % f || img->ne[3] % f ||
        img->ne[1] != vg_vae_get_config(v)->in_channels)
        return vg_vae_encode_moments(v, img, moments); /* reports the shape error */
    return run_tiled(v, img, tile, overlap, 0, vg_vae_encode_moments, moments);
}
