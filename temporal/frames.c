/*
 * Image-plane helpers of the temporal driver (temporal/frames.h).
 */
#include <math.h>

#include "temporal/frames.h"

void vg_t_luma(const VgTGeom *g, const VgImage *in, float *dst)
{
    const int d = g->down;
    /* BT.601 weights on the 8-bit scale: the DIS constants assume it */
    const float k = 255.f / (float)(d * d);

    for (int y = 0; y < g->fh; y++) {
        float *o = dst + (size_t)y * g->fw;
        for (int x = 0; x < g->fw; x++)
            o[x] = 0.f;
        for (int dy = 0; dy < d; dy++) {
            int sy = y * d + dy;
            const float *r = (const float *)((const char *)in->data[0] + sy * in->stride[0]);
            const float *gg = (const float *)((const char *)in->data[1] + sy * in->stride[1]);
            const float *b = (const float *)((const char *)in->data[2] + sy * in->stride[2]);
            for (int x = 0; x < g->fw; x++)
                for (int dx = 0; dx < d; dx++) {
                    int sx = x * d + dx;
                    o[x] += 0.299f * r[sx] + 0.587f * gg[sx] + 0.114f * b[sx];
                }
        }
        for (int x = 0; x < g->fw; x++)
            o[x] *= k;
    }
}

float vg_t_scene_score(const VgWarpDSP *dsp, const VgTGeom *g, const float *cur,
                       const float *prev, const float *u, const float *v,
                       const uint8_t *occ, float *tmp)
{
    /* A luma step of 24/255 after motion compensation is far beyond noise
     * and compression error but within what a new shot gives nearly
     * everywhere. */
    const float step = 24.f;
    size_t n = (size_t)g->fw * g->fh, bad = 0;

    vg_warp_plane(dsp, tmp, g->fw, prev, g->fw, g->fw, g->fh, u, v, g->fw, g->fw, g->fh);
    for (size_t i = 0; i < n; i++)
        bad += occ[i] || fabsf(cur[i] - tmp[i]) > step;
    return n ? (float)bad / (float)n : 0.f;
}

float vg_t_flow_mean(const VgTGeom *g, const float *u, const float *v)
{
    size_t n = (size_t)g->fw * g->fh;
    double s = 0.;

    for (size_t i = 0; i < n; i++)
        s += sqrtf(u[i] * u[i] + v[i] * v[i]);
    return n ? (float)(s / n * g->down) : 0.f;
}

float vg_t_mask_share(const uint8_t *m, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += m[i] != 0;
    return n ? (float)c / (float)n : 0.f;
}

void vg_t_color_stats(const float *img, size_t n, float mean[3], float sd[3])
{
    for (int c = 0; c < 3; c++) {
        const float *p = img + c * n;
        double s = 0., s2 = 0.;
        for (size_t i = 0; i < n; i++) {
            s += p[i];
            s2 += (double)p[i] * p[i];
        }
        double m = n ? s / n : 0., var = n ? s2 / n - m * m : 0.;
        mean[c] = (float)m;
        sd[c] = (float)sqrt(var > 0. ? var : 0.);
    }
}

void vg_t_color_match(float *img, size_t n, const float mean[3], const float sd[3])
{
    float m[3], s[3];

    vg_t_color_stats(img, n, m, s);
    for (int c = 0; c < 3; c++) {
        /* a flat channel has no spread to rescale: only shift it */
        float gain = s[c] > 1e-4f ? sd[c] / s[c] : 1.f;
        float *p = img + c * n;
        for (size_t i = 0; i < n; i++) {
            float x = mean[c] + (p[i] - m[c]) * gain;
            p[i] = x < 0.f ? 0.f : x > 1.f ? 1.f : x;
        }
    }
}

void vg_t_warp_image(const VgWarpDSP *dsp, const VgTGeom *g, VgTScratch *s, float *dst,
                     uint8_t *mask, const float *src, const float *u, const float *v,
                     const uint8_t *occ)
{
    const int w = g->out_w, h = g->out_h;
    size_t n = (size_t)w * h;
    const float *ru = u, *rv = v;

    if (w != g->fw || h != g->fh) {
        vg_flow_resize(s->ru, s->rv, w, w, h, u, v, g->fw, g->fw, g->fh);
        ru = s->ru;
        rv = s->rv;
    }
    for (int c = 0; c < 3; c++)
        vg_warp_plane(dsp, dst + c * n, w, src + c * n, w, w, h, ru, rv, w, w, h);
    if (mask)
        vg_mask_resize(mask, w, h, occ, g->fw, g->fh);
}

void vg_t_warp_state(const VgTGeom *g, VgTScratch *s, float *dst, const float *src,
                     int c, int sw, int sh, const float *u, const float *v, const uint8_t *occ)
{
    size_t n = (size_t)sw * sh;

    if (!src || !u) {
        for (size_t i = 0; i < (size_t)c * n; i++)
            dst[i] = NAN;
        return;
    }
    vg_flow_resize(s->su, s->sv, sw, sw, sh, u, v, g->fw, g->fw, g->fh);
    if (occ)
        vg_mask_resize(s->sm, sw, sh, occ, g->fw, g->fh);
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++) {
            size_t i = (size_t)y * sw + x;
            float fx = x + s->su[i], fy = y + s->sv[i];
            /* negated test: NaN flow lands outside too */
            int in = fx > -0.5f && fx < sw - 0.5f && fy > -0.5f && fy < sh - 0.5f;
            long sx = in ? lrintf(fx) : 0, sy = in ? lrintf(fy) : 0;
            for (int k = 0; k < c; k++)
                dst[k * n + i] = in && !(occ && s->sm[i]) ? src[k * n + (size_t)sy * sw + sx] : NAN;
        }
}

void vg_t_blend2(const VgTGeom *g, float *dst, const float *a, const uint8_t *ma,
                 const float *b, const uint8_t *mb, float wa, float wb)
{
    size_t n = (size_t)g->out_w * g->out_h;
    float ka = wa / (wa + wb), kb = wb / (wa + wb);

    for (int c = 0; c < 3; c++) {
        const float *pa = a + c * n, *pb = b + c * n;
        float *o = dst + c * n;
        for (size_t i = 0; i < n; i++) {
            int va = !ma[i], vb = !mb[i];
            if (va && vb)
                o[i] = ka * pa[i] + kb * pb[i];
            else if (va || vb)
                o[i] = va ? pa[i] : pb[i];
            else
                o[i] = wa >= wb ? pa[i] : pb[i];
        }
    }
}
