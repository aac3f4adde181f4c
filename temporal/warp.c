/*
 * Plain C references of the per-pixel temporal kernels (temporal/warp.h)
 * and the whole-plane helpers over the dispatch table.
 *
 * The AVX2 versions (temporal/x86/warp_avx2.c) repeat the arithmetic below
 * operation for operation, without FMA, so both agree bit for bit; change
 * one and the other together.
 */
#include <stdint.h>
#include <string.h>

#include "temporal/warp.h"

void vg_warp_dsp_init_avx2(VgWarpDSP *dsp);

/* NaN goes to 0 and +-Inf or huge values to the nearest edge before any
 * float -> int conversion, so no input can index outside the plane. */
static inline float clamp_coord(float c, float hi)
{
    c = c > 0.0f ? c : 0.0f;
    return c < hi ? c : hi;
}

typedef struct Tap {
    ptrdiff_t o00, o01, o10, o11; /* offsets of the 4 neighbours */
    float ax, ay;                 /* fractional position inside the cell */
} Tap;

/* @fx, @fy already clamped to [0, sw-1] x [0, sh-1]; the right/bottom
 * neighbour is clamped too, so x = sw-1 reads no further than the row end. */
static inline Tap make_tap(float fx, float fy, int sw, int sh, ptrdiff_t stride)
{
    const int ix = (int)fx, iy = (int)fy;
    const int ix1 = ix + 1 < sw ? ix + 1 : sw - 1;
    const int iy1 = iy + 1 < sh ? iy + 1 : sh - 1;
    Tap t;
    t.o00 = iy * stride + ix;
    t.o01 = iy * stride + ix1;
    t.o10 = iy1 * stride + ix;
    t.o11 = iy1 * stride + ix1;
    t.ax = fx - (float)ix;
    t.ay = fy - (float)iy;
    return t;
}

/* a + t (b - a) rather than (1 - t) a + t b: exact for t = 0 and for
 * linear data (a ramp is reproduced without rounding). */
static inline float sample(const float *p, const Tap *t)
{
    const float top = p[t->o00] + t->ax * (p[t->o01] - p[t->o00]);
    const float bot = p[t->o10] + t->ax * (p[t->o11] - p[t->o10]);
    return top + t->ay * (bot - top);
}

static void warp_row_c(float *dst, const float *src, ptrdiff_t sstride, int sw, int sh,
                       const float *u, const float *v, int w, int y)
{
    const float hx = (float)(sw - 1), hy = (float)(sh - 1);
    for (int x = 0; x < w; x++) {
        const float fx = clamp_coord((float)x + u[x], hx);
        const float fy = clamp_coord((float)y + v[x], hy);
        const Tap t = make_tap(fx, fy, sw, sh, sstride);
        dst[x] = sample(src, &t);
    }
}

static void occlusion_row_c(uint8_t *occ, const float *uf, const float *vf,
                            const float *ub, const float *vb, ptrdiff_t bstride,
                            int w, int h, int y)
{
    const float hx = (float)(w - 1), hy = (float)(h - 1);
    for (int x = 0; x < w; x++) {
        const float px = (float)x + uf[x], py = (float)y + vf[x];
        /* written so that NaN positions count as outside */
        const int inside = px >= 0.0f && px <= hx && py >= 0.0f && py <= hy;
        const Tap t = make_tap(clamp_coord(px, hx), clamp_coord(py, hy), w, h, bstride);
        const float bu = sample(ub, &t), bv = sample(vb, &t);
        const float su = uf[x] + bu, sv = vf[x] + bv;
        const float lhs = su * su + sv * sv;
        const float mf = uf[x] * uf[x] + vf[x] * vf[x];
        const float mb = bu * bu + bv * bv;
        const float rhs = 0.01f * (mf + mb) + 0.5f;
        /* !(<=) so a NaN anywhere marks the pixel occluded */
        occ[x] = !inside || !(lhs <= rhs);
    }
}

/* (1 - w) cur + w prev rather than cur + w (prev - cur): exact at both
 * weight 0 and weight 1. */
static void fuse_row_c(float *dst, const float *cur, const float *prev,
                       const uint8_t *mask, float weight, int w)
{
    const float keep = 1.0f - weight;
    for (int x = 0; x < w; x++)
        dst[x] = mask[x] ? cur[x] : keep * cur[x] + weight * prev[x];
}

void vg_warp_dsp_init(VgWarpDSP *dsp, int cpu_avx2)
{
    dsp->warp_row = warp_row_c;
    dsp->occlusion_row = occlusion_row_c;
    dsp->fuse_row = fuse_row_c;
    if (cpu_avx2)
        vg_warp_dsp_init_avx2(dsp);
}

int vg_warp_cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void vg_warp_plane(const VgWarpDSP *dsp, float *dst, ptrdiff_t dstride,
                   const float *src, ptrdiff_t sstride, int sw, int sh,
                   const float *u, const float *v, ptrdiff_t fstride, int w, int h)
{
    for (int y = 0; y < h; y++)
        dsp->warp_row(dst + y * dstride, src, sstride, sw, sh,
                      u + y * fstride, v + y * fstride, w, y);
}

void vg_occlusion(const VgWarpDSP *dsp, uint8_t *occ, ptrdiff_t mstride,
                  const float *uf, const float *vf, const float *ub, const float *vb,
                  ptrdiff_t fstride, int w, int h)
{
    for (int y = 0; y < h; y++)
        dsp->occlusion_row(occ + y * mstride, uf + y * fstride, vf + y * fstride,
                           ub, vb, fstride, w, h, y);
}

/* Derivative along one axis: central inside, one-sided at the border, 0 when
 * the axis has a single sample. @d is the distance to the next sample. */
static inline float deriv(const float *p, int i, int n, ptrdiff_t d)
{
    if (n < 2)
        return 0.0f;
    if (i == 0)
        return p[d] - p[0];
    if (i == n - 1)
        return p[0] - p[-d];
    return 0.5f * (p[d] - p[-d]);
}

void vg_motion_boundary(uint8_t *mb, ptrdiff_t mstride, const float *u, const float *v,
                        ptrdiff_t fstride, int w, int h)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const float *pu = u + y * fstride + x, *pv = v + y * fstride + x;
            const float ux = deriv(pu, x, w, 1), uy = deriv(pu, y, h, fstride);
            const float vx = deriv(pv, x, w, 1), vy = deriv(pv, y, h, fstride);
            const float g = ux * ux + uy * uy + vx * vx + vy * vy;
            mb[y * mstride + x] = g > 0.01f * (pu[0] * pu[0] + pv[0] * pv[0]) + 0.002f;
        }
    }
}

void vg_mask_resize(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh)
{
    if (dw == sw && dh == sh) {
        memcpy(dst, src, (size_t)dw * dh);
        return;
    }
    for (int y = 0; y < dh; y++) {
        int sy = (int)(((double)y + 0.5) * sh / dh);
        const uint8_t *r = src + (size_t)(sy < sh ? sy : sh - 1) * sw;
        uint8_t *o = dst + (size_t)y * dw;
        for (int x = 0; x < dw; x++) {
            int sx = (int)(((double)x + 0.5) * sw / dw);
            o[x] = r[sx < sw ? sx : sw - 1];
        }
    }
}

void vg_flow_resize(float *du, float *dv, ptrdiff_t dstride, int dw, int dh,
                    const float *su, const float *sv, ptrdiff_t sstride, int sw, int sh)
{
    const float rx = (float)sw / (float)dw, ry = (float)sh / (float)dh;
    const float scale_u = (float)dw / (float)sw, scale_v = (float)dh / (float)sh;
    const float hx = (float)(sw - 1), hy = (float)(sh - 1);
    for (int y = 0; y < dh; y++) {
        const float fy = clamp_coord(((float)y + 0.5f) * ry - 0.5f, hy);
        for (int x = 0; x < dw; x++) {
            const float fx = clamp_coord(((float)x + 0.5f) * rx - 0.5f, hx);
            const Tap t = make_tap(fx, fy, sw, sh, sstride);
            du[y * dstride + x] = sample(su, &t) * scale_u;
            dv[y * dstride + x] = sample(sv, &t) * scale_v;
        }
    }
}

void vg_flow_compose(float *cu, float *cv, uint8_t *cocc,
                     const float *au, const float *av, const uint8_t *aocc,
                     const float *bu, const float *bv, const uint8_t *bocc,
                     ptrdiff_t fstride, ptrdiff_t mstride, int w, int h)
{
    const float hx = (float)(w - 1), hy = (float)(h - 1);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const ptrdiff_t i = y * fstride + x, m = y * mstride + x;
            const float fx = clamp_coord((float)x + au[i], hx);
            const float fy = clamp_coord((float)y + av[i], hy);
            const Tap t = make_tap(fx, fy, w, h, fstride);
            cu[i] = au[i] + sample(bu, &t);
            cv[i] = av[i] + sample(bv, &t);
            if (cocc) {
                /* clamped again: past 2^23, + 0.5f can round up to w */
                int nx = (int)(fx + 0.5f), ny = (int)(fy + 0.5f);
                nx = nx < w ? nx : w - 1;
                ny = ny < h ? ny : h - 1;
                const int b = bocc && bocc[(ptrdiff_t)ny * mstride + nx];
                cocc[m] = (aocc && aocc[m]) || b;
            }
        }
    }
}

void vg_fuse_plane(const VgWarpDSP *dsp, float *dst, ptrdiff_t dstride,
                   const float *cur, ptrdiff_t cstride, const float *prev, ptrdiff_t pstride,
                   const uint8_t *mask, ptrdiff_t mstride, float weight, int w, int h)
{
    for (int y = 0; y < h; y++)
        dsp->fuse_row(dst + y * dstride, cur + y * cstride, prev + y * pstride,
                      mask + y * mstride, weight, w);
}
