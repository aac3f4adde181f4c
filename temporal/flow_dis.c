/*
 * Dense Inverse Search optical flow, written from Kroeger et al., ECCV 2016
 * (see temporal/flow.h). Default parameters follow the paper's operating
 * points as OpenCV's DISOpticalFlow presets do (patch 8 / stride 4 / 12 and
 * 16 LK iterations for ULTRAFAST and FAST from scale 2, patch 12 / stride 8 /
 * 25 iterations from scale 1 for MEDIUM; refinement alpha 20, gamma 10,
 * delta 5, 5 fixed-point iterations).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "include/visgen/visgen.h"
#include "temporal/flow.h"

void vg_flow_default_params(VgFlowParams *p, int preset)
{
    memset(p, 0, sizeof(*p));
    p->coarsest_scale = -1;
    p->var_sor_iter = 5;
    p->var_alpha = 20.f;
    p->var_gamma = 10.f;
    p->var_delta = 5.f;
    p->var_omega = 1.6f;
    p->var_zeta = 0.1f;
    p->mean_norm = 1;
    p->spatial_prop = 1;
    switch (preset) {
    case VG_FLOW_PRESET_ULTRAFAST:
        p->finest_scale = 2; p->patch_size = 8; p->patch_stride = 4;
        p->grad_descent_iter = 12; p->var_iter = 0;
        break;
    case VG_FLOW_PRESET_MEDIUM:
        p->finest_scale = 1; p->patch_size = 12; p->patch_stride = 8;
        p->grad_descent_iter = 25; p->var_iter = 5;
        break;
    default:
        p->finest_scale = 2; p->patch_size = 8; p->patch_stride = 4;
        p->grad_descent_iter = 16; p->var_iter = 5;
        break;
    }
}

typedef struct Level {
    int w, h;
    float *mem;                  /* owns i0, i1, gx, gy (levels > 0) or gx, gy */
    const float *i0, *i1;        /* [h, w] each (level 0: the input, row stride `stride`) */
    float *gx, *gy;              /* [h, w] central-difference gradients of i0 (levels >= fs) */
} Level;

static inline int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Bilinear sample of img [h, w] at (x, y), coordinates clamped to the image. */
static inline float sample(const float *img, int w, int h, float x, float y)
{
    x = x >= 0.f ? (x <= (float)(w - 1) ? x : (float)(w - 1)) : 0.f; /* NaN -> 0 */
    y = y >= 0.f ? (y <= (float)(h - 1) ? y : (float)(h - 1)) : 0.f;
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    float fx = x - x0, fy = y - y0;
    const float *r0 = img + (size_t)y0 * w, *r1 = img + (size_t)y1 * w;
    float a = r0[x0] + fx * (r0[x1] - r0[x0]);
    float b = r1[x0] + fx * (r1[x1] - r1[x0]);
    return a + fy * (b - a);
}

/* Scharr gradients (3-10-3 smoothing across the central difference,
 * normalised to unit slope), borders replicated. */
static void gradients(const float *img, int w, int h, float *gx, float *gy)
{
    for (int y = 0; y < h; y++) {
        const float *r = img + (size_t)y * w;
        const float *ru = img + (size_t)(y > 0 ? y - 1 : y) * w;
        const float *rd = img + (size_t)(y < h - 1 ? y + 1 : y) * w;
        for (int x = 0; x < w; x++) {
            int xl = x > 0 ? x - 1 : x, xr = x < w - 1 ? x + 1 : x;
            gx[(size_t)y * w + x] = (3.f * (ru[xr] - ru[xl] + rd[xr] - rd[xl]) + 10.f * (r[xr] - r[xl])) * (1.f / 32.f);
            gy[(size_t)y * w + x] = (3.f * (rd[xl] - ru[xl] + rd[xr] - ru[xr]) + 10.f * (rd[x] - ru[x])) * (1.f / 32.f);
        }
    }
}

/* dst [sw/2, sh/2] = 2x2 box average of src [sh, sw] (area downscale). */
static void downscale(const float *src, ptrdiff_t sw, int dw, int dh, float *dst)
{
    for (int y = 0; y < dh; y++) {
        const float *a = src + (size_t)(2 * y) * sw, *b = a + sw;
        for (int x = 0; x < dw; x++)
            dst[(size_t)y * dw + x] = 0.25f * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]);
    }
}

/* Upsample a flow field by 2^k: dst [dh, dw] from src [sh, sw], pixel centres
 * aligned as the box pyramid places them, displacements scaled by 2^k.
 * Returns VG_ERR(ENOMEM) or 0. */
static int upsample_flow(const float *su, const float *sv, int sw, int sh, int k,
                         float *du, float *dv, int dw, int dh)
{
    float f = (float)(1 << k), inv = 1.f / f;
    int *xi = malloc(sizeof(int) * (size_t)dw * 2);
    float *xf = malloc(sizeof(float) * (size_t)dw);
    if (!xi || !xf) {
        free(xi); free(xf);
        return VG_ERR(ENOMEM);
    }
    for (int x = 0; x < dw; x++) {
        float sx = (x + 0.5f) * inv - 0.5f;
        sx = sx < 0.f ? 0.f : sx > (float)(sw - 1) ? (float)(sw - 1) : sx;
        int x0 = (int)sx;
        xi[2 * x] = x0;
        xi[2 * x + 1] = x0 + 1 < sw ? x0 + 1 : x0;
        xf[x] = f * (sx - x0);
    }
    for (int y = 0; y < dh; y++) {
        float sy = (y + 0.5f) * inv - 0.5f;
        sy = sy < 0.f ? 0.f : sy > (float)(sh - 1) ? (float)(sh - 1) : sy;
        int y0 = (int)sy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
        float fy = sy - y0;
        for (int c = 0; c < 2; c++) {
            const float *s = c ? sv : su;
            const float *r0 = s + (size_t)y0 * sw, *r1 = s + (size_t)y1 * sw;
            float *o = (c ? dv : du) + (size_t)y * dw;
            for (int x = 0; x < dw; x++) {
                int x0 = xi[2 * x], x1 = xi[2 * x + 1];
                /* f * bilinear, with f folded into the weights */
                float a0 = f * r0[x0] + xf[x] * (r0[x1] - r0[x0]);
                float a1 = f * r1[x0] + xf[x] * (r1[x1] - r1[x0]);
                o[x] = a0 + fy * (a1 - a0);
            }
        }
    }
    free(xi); free(xf);
    return 0;
}

/* ------------------------------------------------------------ patch search */

typedef struct PatchCtx {
    const Level *L;
    int ps, iters, mean_norm;
    float *tmpl, *pgx, *pgy, *warp; /* [ps * ps] each */
    float h11, h12, h22;            /* Hessian of the template patch */
} PatchCtx;

/* Template, gradients (mean-subtracted when mean_norm) and Hessian of the
 * i0 patch at (px, py). */
static void patch_prepare(PatchCtx *c, int px, int py)
{
    const Level *L = c->L;
    int ps = c->ps, n = ps * ps;
    double mt = 0, mx = 0, my = 0;
    for (int y = 0; y < ps; y++)
        for (int x = 0; x < ps; x++) {
            size_t o = (size_t)(py + y) * L->w + px + x;
            int k = y * ps + x;
            c->tmpl[k] = L->i0[o];
            c->pgx[k] = L->gx[o];
            c->pgy[k] = L->gy[o];
            mt += c->tmpl[k]; mx += c->pgx[k]; my += c->pgy[k];
        }
    if (c->mean_norm) {
        float a = (float)(mt / n), bx = (float)(mx / n), by = (float)(my / n);
        for (int k = 0; k < n; k++) {
            c->tmpl[k] -= a; c->pgx[k] -= bx; c->pgy[k] -= by;
        }
    }
    double h11 = 0, h12 = 0, h22 = 0;
    for (int k = 0; k < n; k++) {
        h11 += c->pgx[k] * c->pgx[k];
        h12 += c->pgx[k] * c->pgy[k];
        h22 += c->pgy[k] * c->pgy[k];
    }
    c->h11 = (float)h11 + 1e-3f * n; /* keeps flat patches invertible */
    c->h12 = (float)h12;
    c->h22 = (float)h22 + 1e-3f * n;
}

/* Samples i1 on the patch displaced by (u, v) into c->warp (mean-subtracted
 * when mean_norm); returns the SSD to the template. */
static float patch_warp(PatchCtx *c, int px, int py, float u, float v)
{
    const Level *L = c->L;
    int ps = c->ps, n = ps * ps, w = L->w, h = L->h;
    float bx = px + u, by = py + v;
    /* outside the image every sample is a clamped border one: bound the
     * position so that the integer conversion below stays defined */
    bx = bx > -(float)ps - 2.f ? bx : -(float)ps - 2.f;
    bx = bx < (float)w + 2.f ? bx : (float)w + 2.f;
    by = by > -(float)ps - 2.f ? by : -(float)ps - 2.f;
    by = by < (float)h + 2.f ? by : (float)h + 2.f;
    int ix = (int)floorf(bx), iy = (int)floorf(by);
    float fx = bx - ix, fy = by - iy;
    double m = 0;
    for (int y = 0; y < ps; y++) {
        int y0 = clampi(iy + y, 0, h - 1), y1 = clampi(iy + y + 1, 0, h - 1);
        const float *r0 = L->i1 + (size_t)y0 * w, *r1 = L->i1 + (size_t)y1 * w;
        float *o = c->warp + y * ps;
        if (ix >= 0 && ix + ps < w) {
            for (int x = 0; x < ps; x++) {
                int x0 = ix + x;
                float a = r0[x0] + fx * (r0[x0 + 1] - r0[x0]);
                float b = r1[x0] + fx * (r1[x0 + 1] - r1[x0]);
                o[x] = a + fy * (b - a);
                m += o[x];
            }
        } else {
            for (int x = 0; x < ps; x++) {
                int x0 = clampi(ix + x, 0, w - 1), x1 = clampi(ix + x + 1, 0, w - 1);
                float a = r0[x0] + fx * (r0[x1] - r0[x0]);
                float b = r1[x0] + fx * (r1[x1] - r1[x0]);
                o[x] = a + fy * (b - a);
                m += o[x];
            }
        }
    }
    float mean = c->mean_norm ? (float)(m / n) : 0.f;
    double ssd = 0;
    for (int k = 0; k < n; k++) {
        c->warp[k] -= mean;
        float d = c->warp[k] - c->tmpl[k];
        ssd += d * d;
    }
    return (float)ssd;
}

/* Inverse-compositional Lucas-Kanade from (*u, *v); keeps the start when the
 * result is worse or wandered off by more than a patch size. */
static void patch_lk(PatchCtx *c, int px, int py, float *u, float *v, float ssd0)
{
    int ps = c->ps, n = ps * ps;
    float u0 = *u, v0 = *v, uu = u0, vv = v0;
    float det = c->h11 * c->h22 - c->h12 * c->h12;
    float i11 = c->h22 / det, i12 = -c->h12 / det, i22 = c->h11 / det;
    float ssd = ssd0;
    for (int it = 0; it < c->iters; it++) {
        if (it > 0)
            ssd = patch_warp(c, px, py, uu, vv);
        (void)ssd;
        float b1 = 0, b2 = 0;
        for (int k = 0; k < n; k++) {
            float r = c->warp[k] - c->tmpl[k];
            b1 += c->pgx[k] * r;
            b2 += c->pgy[k] * r;
        }
        float dx = i11 * b1 + i12 * b2, dy = i12 * b1 + i22 * b2;
        uu -= dx;
        vv -= dy;
        if (dx * dx + dy * dy < 1e-4f)
            break;
    }
    float du = uu - u0, dv = vv - v0;
    if (du * du + dv * dv > (float)(ps * ps) || !isfinite(uu) || !isfinite(vv))
        return;
    if (patch_warp(c, px, py, uu, vv) > ssd0)
        return;
    *u = uu;
    *v = vv;
}

/* Grid positions along an axis of length len: 0, s, 2s, ... and a last patch
 * flush with the end so that every pixel is covered. Returns the count. */
static int grid_positions(int len, int ps, int st, int *pos)
{
    int n = 0;
    for (int p = 0; p + ps <= len; p += st)
        pos[n++] = p;
    if (n == 0 || pos[n - 1] + ps < len)
        pos[n++] = len - ps;
    return n;
}

/* One scale: patch search initialised from the dense (U, V) (level size),
 * then densification back into (U, V). */
static int patch_scale(const Level *L, const VgFlowParams *p, int ps, float *U, float *V)
{
    int w = L->w, h = L->h, st = p->patch_stride < 1 ? 1 : p->patch_stride;
    if (st > ps)
        st = ps;
    int *xs = malloc(sizeof(int) * (size_t)(w / st + 2));
    int *ys = malloc(sizeof(int) * (size_t)(h / st + 2));
    float *buf = malloc(sizeof(float) * (size_t)ps * ps * 4);
    int nx = 0, ny = 0;
    float *pu = NULL, *pv = NULL, *acc = NULL;
    int ret = VG_ERR(ENOMEM);
    if (!xs || !ys || !buf)
        goto end;
    nx = grid_positions(w, ps, st, xs);
    ny = grid_positions(h, ps, st, ys);
    pu = malloc(sizeof(float) * (size_t)nx * ny * 2);   // [ny, nx] u, then v
    acc = calloc((size_t)w * h * 3, sizeof(float));      // [3, h, w] sum wu, wv, w
    if (!pu || !acc)
        goto end;
    pv = pu + (size_t)nx * ny;

    PatchCtx c = { .L = L, .ps = ps, .iters = p->grad_descent_iter, .mean_norm = p->mean_norm,
                   .tmpl = buf, .pgx = buf + ps * ps, .pgy = buf + 2 * ps * ps,
                   .warp = buf + 3 * ps * ps };
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            int px = xs[i], py = ys[j];
            size_t cidx = (size_t)(py + ps / 2) * w + px + ps / 2;
            float u = U[cidx], v = V[cidx];
            if (!isfinite(u) || !isfinite(v)) /* non-finite input pixels upstream */
                u = v = 0.f;
            patch_prepare(&c, px, py);
            float best = patch_warp(&c, px, py, u, v);
            if (p->spatial_prop) {
                float cu[2], cv[2];
                int nc = 0;
                if (i > 0) { cu[nc] = pu[(size_t)j * nx + i - 1]; cv[nc++] = pv[(size_t)j * nx + i - 1]; }
                if (j > 0) { cu[nc] = pu[(size_t)(j - 1) * nx + i]; cv[nc++] = pv[(size_t)(j - 1) * nx + i]; }
                for (int k = 0; k < nc; k++) {
                    float s = patch_warp(&c, px, py, cu[k], cv[k]);
                    if (s < best) { best = s; u = cu[k]; v = cv[k]; }
                }
                patch_warp(&c, px, py, u, v); /* leave c.warp at the chosen start */
            }
            patch_lk(&c, px, py, &u, &v, best);
            pu[(size_t)j * nx + i] = u;
            pv[(size_t)j * nx + i] = v;
        }

    /* densification: each patch votes for its pixels with 1/max(1, |I1(x+u)-I0(x)|) */
    float *au = acc, *av = acc + (size_t)w * h, *aw = acc + (size_t)2 * w * h;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            int px = xs[i], py = ys[j];
            float u = pu[(size_t)j * nx + i], v = pv[(size_t)j * nx + i];
            for (int y = py; y < py + ps; y++)
                for (int x = px; x < px + ps; x++) {
                    size_t o = (size_t)y * w + x;
                    float d = fabsf(sample(L->i1, w, h, x + u, y + v) - L->i0[o]);
                    float wt = 1.f / (d > 1.f ? d : 1.f);
                    au[o] += wt * u;
                    av[o] += wt * v;
                    aw[o] += wt;
                }
        }
    for (size_t o = 0; o < (size_t)w * h; o++) {
        U[o] = au[o] / aw[o];
        V[o] = av[o] / aw[o];
    }
    ret = 0;
end:
    free(xs); free(ys); free(buf); free(pu); free(acc);
    return ret;
}

int vg_flow_variational(const float *i0, const float *i1, int w, int h,
                        const VgFlowParams *p, float *U, float *V);

int vg_flow_dis(const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
                const VgFlowParams *pp, float *u, float *v)
{
    VgFlowParams def;
    if (!pp) {
        vg_flow_default_params(&def, VG_FLOW_PRESET_FAST);
        pp = &def;
    }
    if (!i0 || !i1 || !u || !v || w < 2 || h < 2 || stride < w || pp->patch_size < 2 ||
        pp->finest_scale < 0 || pp->grad_descent_iter < 0 || pp->var_iter < 0)
        return VG_ERR(EINVAL);
    VgFlowParams p = *pp;
    int ps = p.patch_size;
    if (ps > w) ps = w;
    if (ps > h) ps = h;

    /* scales: automatic coarsest = round(log2(max(w, h) / (4 * patch))), the
     * rule of OpenCV's DIS (the coarsest patch then spans ~1/4 of the image);
     * no level smaller than a patch */
    int maxl = 0;
    while (((w >> (maxl + 1)) >= ps) && ((h >> (maxl + 1)) >= ps) && maxl < 16)
        maxl++;
    int cs = p.coarsest_scale;
    if (cs < 0) {
        int m = w > h ? w : h;
        cs = (int)(log2(m / (4.0 * ps)) + 0.5);
    }
    if (cs > maxl) cs = maxl;
    if (cs < 0) cs = 0;
    int fs = p.finest_scale > cs ? cs : p.finest_scale;

    Level lv[17];
    memset(lv, 0, sizeof(lv));
    int ret = VG_ERR(ENOMEM);
    float *U = NULL, *V = NULL, *U2 = NULL, *V2 = NULL;
    /* level 0 is the input itself; the patch search and refinement only
     * run on levels >= fs, which need packed rows */
    int copy0 = fs == 0 && stride != w;
    for (int l = 0; l <= cs; l++) {
        Level *L = &lv[l];
        L->w = w >> l;
        L->h = h >> l;
        size_t n = (size_t)L->w * L->h;
        int own = l > 0 || copy0;
        int grads = l >= fs;
        L->mem = malloc(sizeof(float) * n * (2 * own + 2 * grads) + 1);   // [k, h, w]
        if (!L->mem)
            goto end;
        float *m = L->mem;
        if (own) {
            float *a = m, *b = m + n;
            if (l == 0) {
                for (int y = 0; y < h; y++) {
                    memcpy(a + (size_t)y * w, i0 + (size_t)y * stride, sizeof(float) * w);
                    memcpy(b + (size_t)y * w, i1 + (size_t)y * stride, sizeof(float) * w);
                }
            } else {
                ptrdiff_t ss = l == 1 && !copy0 ? stride : lv[l - 1].w;
                downscale(lv[l - 1].i0, ss, L->w, L->h, a);
                downscale(lv[l - 1].i1, ss, L->w, L->h, b);
            }
            L->i0 = a;
            L->i1 = b;
            m += 2 * n;
        } else {
            L->i0 = i0;
            L->i1 = i1;
        }
        if (grads) {
            L->gx = m;
            L->gy = m + n;
            gradients(L->i0, L->w, L->h, L->gx, L->gy);
        }
    }

    size_t nmax = (size_t)lv[fs].w * lv[fs].h;
    U = calloc(nmax, sizeof(float));
    V = calloc(nmax, sizeof(float));
    U2 = malloc(sizeof(float) * nmax);
    V2 = malloc(sizeof(float) * nmax);
    if (!U || !V || !U2 || !V2)
        goto end;
    for (int l = cs; l >= fs; l--) {
        const Level *L = &lv[l];
        if (l < cs) {
            const Level *C = &lv[l + 1];
            if ((ret = upsample_flow(U, V, C->w, C->h, 1, U2, V2, L->w, L->h)) < 0)
                goto end;
            float *t = U; U = U2; U2 = t;
            t = V; V = V2; V2 = t;
        }
        if ((ret = patch_scale(L, &p, ps, U, V)) < 0)
            goto end;
        if (p.var_iter > 0 &&
            (ret = vg_flow_variational(L->i0, L->i1, L->w, L->h, &p, U, V)) < 0)
            goto end;
    }
    ret = upsample_flow(U, V, lv[fs].w, lv[fs].h, fs, u, v, w, h);
end:
    for (int l = 0; l <= cs; l++)
        free(lv[l].mem);
    free(U); free(V); free(U2); free(V2);
    return ret;
}
