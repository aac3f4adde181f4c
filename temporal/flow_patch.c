/*
 * DIS patch search and densification of one pyramid level (Kroeger et al.,
 * ECCV 2016, sections 2.1-2.2). Per grid patch, inverse-compositional
 * Lucas-Kanade on the mean-normalised patch. Mean normalisation is folded
 * into sums instead of normalised copies of the patches: with d = I1(x+u) -
 * I0(x) over n pixels,
 *   b   = sum d g - (sum d)(sum g) / n       (gradient of the normalised SSD)
 *   H   = sum g g^T - (sum g)(sum g)^T / n   (its Gauss-Newton Hessian)
 *   SSD = sum d^2 - (sum d)^2 / n,
 * so one pass over the pixels per iteration does all the work, and H, sum g
 * come from box sums over the gradient images computed once per level.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "include/visgen/visgen.h"
#include "temporal/flow_int.h"

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

typedef struct Grid {
    const VgFlowLevel *L;
    const VgFlowDsp *dsp;
    int ps, nx, ny, iters, passes, prop, mean_norm, stripes;
    const int *xs, *ys;
    float *su, *sv;                 /* [ny, nx] sparse flow */
    float *ih;                      /* [ny, nx, 5] inverse Hessian 11 12 22, sum gx, sum gy */
    float *acc;                     /* densification sums (wu, wv, w) per band */
    float *col;                     /* [stripes, 5, w] column sums of the tensor */
} Grid;

/* Integer top-left and bilinear weights of the patch at (px, py) displaced by
 * (u, v) in the padded i1; positions far outside are pulled back to the pad,
 * where every sample is an edge replica anyway (NaN goes to the corner). */
static inline const float *place(const VgFlowLevel *L, int ps, int px, int py, float u, float v,
                                 float w[4])
{
    float hi_x = (float)(L->w + 2 * L->pad - ps - 1), hi_y = (float)(L->h + 2 * L->pad - ps - 1);
    float bx = px + u + L->pad, by = py + v + L->pad;
    bx = bx > 0.f ? (bx < hi_x ? bx : hi_x) : 0.f;
    by = by > 0.f ? (by < hi_y ? by : hi_y) : 0.f;
    int ix = (int)bx, iy = (int)by;
    float fx = bx - ix, fy = by - iy;
    w[0] = (1.f - fx) * (1.f - fy);
    w[1] = fx * (1.f - fy);
    w[2] = (1.f - fx) * fy;
    w[3] = fx * fy;
    return L->i1p + (ptrdiff_t)(iy - L->pad) * L->sp + (ix - L->pad);
}

static inline float patch_cost(const Grid *g, int px, int py, float u, float v)
{
    const VgFlowLevel *L = g->L;
    float w[4], s[2];
    const float *p1 = place(L, g->ps, px, py, u, v, w);
    g->dsp->patch_ssd(L->i0 + (size_t)py * L->w + px, L->w, p1, L->sp, w, g->ps, s);
    float n = (float)(g->ps * g->ps);
    return g->mean_norm ? s[1] - s[0] * s[0] / n : s[1];
}

/* Box sums of the structure tensor and the gradient over every grid patch,
 * inverted once: the Hessian of inverse-compositional LK never changes. */
static void hessians(const Grid *g, float *col, int j0, int j1)
{
    const VgFlowLevel *L = g->L;
    int w = L->w, ps = g->ps;
    float n = (float)(ps * ps);
    const float *cxx = col, *cxy = col + w, *cyy = col + 2 * w, *cx = col + 3 * w, *cy = col + 4 * w;
    for (int j = j0; j < j1; j++) {
        memset(col, 0, sizeof(float) * 5 * w);
        for (int y = g->ys[j]; y < g->ys[j] + ps; y++)
            g->dsp->tensor_row(L->gx + (size_t)y * w, L->gy + (size_t)y * w, col, w);
        for (int i = 0; i < g->nx; i++) {
            double hxx = 0, hxy = 0, hyy = 0, sx = 0, sy = 0;
            for (int x = g->xs[i]; x < g->xs[i] + ps; x++) {
                hxx += cxx[x]; hxy += cxy[x]; hyy += cyy[x]; sx += cx[x]; sy += cy[x];
            }
            if (g->mean_norm) {
                hxx -= sx * sx / n; hxy -= sx * sy / n; hyy -= sy * sy / n;
            }
            /* keeps flat patches invertible (gradients are unit slope on 0..255) */
            hxx += 1e-3 * n;
            hyy += 1e-3 * n;
            double det = hxx * hyy - hxy * hxy;
            float *o = g->ih + ((size_t)j * g->nx + i) * 5;
            o[0] = (float)(hyy / det);
            o[1] = (float)(-hxy / det);
            o[2] = (float)(hxx / det);
            o[3] = (float)sx;
            o[4] = (float)sy;
        }
    }
}

/* The sums of one evaluation at (u, v): {sum d gx, sum d gy, sum d, sum d^2}. */
static inline void patch_sums(const Grid *g, int i, int j, float u, float v, float s[4])
{
    const VgFlowLevel *L = g->L;
    int px = g->xs[i], py = g->ys[j];
    size_t o = (size_t)py * L->w + px;
    float w[4];
    const float *p1 = place(L, g->ps, px, py, u, v, w);
    g->dsp->patch_grad(L->i0 + o, L->gx + o, L->gy + o, L->w, p1, L->sp, w, g->ps, s);
}

/* Gauss-Newton from (*u, *v) for up to `iters` steps (fewer once a step is
 * negligible); the end point replaces the start unless it costs more.
 * Measured against the alternatives on Middlebury Venus (patch 8, stride 8):
 * stopping at the first rise of the cost loses on its low-texture regions
 * (0.51 vs 0.46 EPE at full resolution), where the cost is flat and noisy;
 * taking the cheapest point of the path lets patches slide to cheap wrong
 * matches (0.80 vs 0.67 from scale 1).
 * @s0: the sums at the start when the caller has them (from choosing among
 * candidates), else NULL. */
static void patch_lk(const Grid *g, int i, int j, float *u, float *v, int iters,
                     const float *s0)
{
    int ps = g->ps, px = g->xs[i], py = g->ys[j];
    const float *h = g->ih + ((size_t)j * g->nx + i) * 5;
    float n = (float)(ps * ps);
    float uu = *u, vv = *v, start = INFINITY, last = INFINITY;
    int converged = 0;
    for (int t = 0; t < iters; t++) {
        float s[4];
        if (t == 0 && s0) {
            s[0] = s0[0]; s[1] = s0[1]; s[2] = s0[2]; s[3] = s0[3];
        } else {
            patch_sums(g, i, j, uu, vv, s);
        }
        float b1 = s[0], b2 = s[1], ssd = s[3];
        if (g->mean_norm) {
            b1 -= s[2] * h[3] / n;
            b2 -= s[2] * h[4] / n;
            ssd -= s[2] * s[2] / n;
        }
        if (t == 0)
            start = ssd;
        last = ssd;
        float dx = h[0] * b1 + h[1] * b2, dy = h[1] * b1 + h[2] * b2;
        uu -= dx;
        vv -= dy;
        if (!(dx * dx + dy * dy >= 1e-4f)) {
            converged = 1;  /* (or NaN, which the caller rejects) */
            break;
        }
    }
    /* after a negligible last step the cost just evaluated stands for the
     * end point's, which saves a pass over the patch */
    float end = converged ? last : iters > 0 ? patch_cost(g, px, py, uu, vv) : INFINITY;
    if (end <= start) {
        *u = uu;
        *v = vv;
    }
}

/* Patch rows of one stripe; pass 0 runs top-left to bottom-right, pass 1
 * (spatial_prop 2) back, each trying its predecessors' flow (spatial_prop
 * >= 1). The stripes do not propagate into each other, which keeps them
 * independent. */
static void search_stripe(void *ctx, int k)
{
    Grid *g = ctx;
    const VgFlowLevel *L = g->L;
    int j0 = (int)((long)g->ny * k / g->stripes), j1 = (int)((long)g->ny * (k + 1) / g->stripes);
    int it = g->iters / g->passes > 0 ? g->iters / g->passes : 1;
    hessians(g, g->col + (size_t)5 * L->w * k, j0, j1);
    int ps = g->ps, nx = g->nx, half = ps / 2;
    float n = (float)(ps * ps);
    for (int pass = 0; pass < g->passes; pass++) {
        int dir = pass & 1 ? -1 : 1;
        int ja = dir > 0 ? j0 : j1 - 1, jb = dir > 0 ? j1 : j0 - 1;
        int ia = dir > 0 ? 0 : nx - 1, ib = dir > 0 ? nx : -1;
        for (int j = ja; j != jb; j += dir)
            for (int i = ia; i != ib; i += dir) {
                int px = g->xs[i], py = g->ys[j];
                size_t o = (size_t)j * nx + i;
                float cu[4], cv[4];
                int nc = 0;
                cu[nc] = g->su[o]; cv[nc++] = g->sv[o];
                if (pass == 0 && L->iu) {
                    size_t c = (size_t)(py + half) * L->w + px + half;
                    if (isfinite(L->iu[c]) && isfinite(L->iv[c])) {
                        cu[nc] = L->iu[c]; cv[nc++] = L->iv[c];
                    }
                }
                if (g->prop) {
                    if (i != ia) { cu[nc] = g->su[o - dir]; cv[nc++] = g->sv[o - dir]; }
                    if (j != ja) { cu[nc] = g->su[o - dir * nx]; cv[nc++] = g->sv[o - dir * nx]; }
                }
                /* the candidates' costs come with the gradient sums, so
                 * the winner's first Gauss-Newton step needs no new pass */
                float bu = cu[0], bv = cv[0], bs[4], s[4];
                if (nc > 1) {
                    patch_sums(g, i, j, bu, bv, bs);
                    float best = bs[3] - (g->mean_norm ? bs[2] * bs[2] / n : 0.f);
                    for (int c = 1; c < nc; c++) {
                        if (cu[c] == bu && cv[c] == bv)
                            continue;
                        patch_sums(g, i, j, cu[c], cv[c], s);
                        float cost = s[3] - (g->mean_norm ? s[2] * s[2] / n : 0.f);
                        if (cost < best) {
                            best = cost; bu = cu[c]; bv = cv[c];
                            memcpy(bs, s, sizeof(bs));
                        }
                    }
                }
                float u = bu, v = bv;
                patch_lk(g, i, j, &u, &v, it, nc > 1 ? bs : NULL);
                /* a patch that drifted further than its own size has locked
                 * onto something else: keep the candidate (paper, sec. 2.1) */
                float du = u - bu, dv = v - bv;
                if (du * du + dv * dv <= (float)(ps * ps) && isfinite(u) && isfinite(v)) {
                    g->su[o] = u;
                    g->sv[o] = v;
                } else {
                    g->su[o] = bu;
                    g->sv[o] = bv;
                }
            }
    }
}

/* Each patch votes for its pixels with weight 1 / max(1, |I1(x+u) - I0(x)|)
 * (paper, eq. 3), band by band of `band` pixel rows so that the sums stay in
 * cache: a band's patches add their rows inside it, then the band is
 * normalised into (U, V). */
typedef struct Dense { const Grid *g; float *U, *V; int band; } Dense;

static void dense_band(void *ctx, int k)
{
    const Dense *D = ctx;
    const Grid *g = D->g;
    const VgFlowLevel *L = g->L;
    int w = L->w, ps = g->ps;
    int y0 = k * D->band, y1 = y0 + D->band < L->h ? y0 + D->band : L->h;
    ptrdiff_t sa = (ptrdiff_t)D->band * w;
    float *acc = g->acc + (size_t)k * (3 * sa + 8);   /* [3, band, w] + the kernel's slack */
    memset(acc, 0, sizeof(float) * 3 * sa);
    for (int j = 0; j < g->ny; j++) {
        int py = g->ys[j];
        if (py >= y1 || py + ps <= y0)
            continue;
        int ya = py > y0 ? py : y0, yb = py + ps < y1 ? py + ps : y1;
        for (int i = 0; i < g->nx; i++) {
            int px = g->xs[i];
            float u = g->su[(size_t)j * g->nx + i], v = g->sv[(size_t)j * g->nx + i], wt[4];
            const float *p1 = place(L, ps, px, py, u, v, wt) + (ptrdiff_t)(ya - py) * L->sp;
            g->dsp->patch_vote(L->i0 + (size_t)ya * w + px, w, p1, L->sp, wt, ps, yb - ya, u, v,
                               acc + (size_t)(ya - y0) * w + px, sa);
        }
    }
    size_t o = (size_t)y0 * w;
    int n = (y1 - y0) * w;
    g->dsp->divide_row(acc, acc + sa, acc + 2 * sa, D->U + o, D->V + o, n);
}

int vg_flow_patch_level(VgFlowCtx *c, const VgFlowLevel *L, const VgFlowParams *p, int ps,
                        const float *U, const float *V, float *outU, float *outV)
{
    int w = L->w, h = L->h, st = p->patch_stride < 1 ? 1 : p->patch_stride;
    if (st > ps)
        st = ps;
    int threads = p->threads > 0 ? p->threads : VG_FLOW_THREADS_DEFAULT;
    if ((long)w * h < VG_FLOW_PAR_MIN)
        threads = 1;
    int *xs = vg_flow_scratch(c, sizeof(int) * (size_t)(w / st + 2 + h / st + 2));
    float *col = vg_flow_scratch(c, sizeof(float) * 5 * (size_t)w * threads);   // [threads, 5, w]
    /* bands of about a patch stride, at least 8 rows (~3 * 8 * w floats) */
    int band = st > 8 ? st : 8, nband = (h + band - 1) / band;
    float *acc = vg_flow_scratch(c, sizeof(float) * (3 * (size_t)band * w + 8) * nband);
    // [nband, 3, band, w] + 8 floats of kernel slack per band
    Grid g = { .L = L, .dsp = vg_flow_dsp(), .ps = ps, .iters = p->grad_descent_iter,
               .passes = p->spatial_prop >= 2 ? 2 : 1, .prop = p->spatial_prop > 0,
               .mean_norm = p->mean_norm, .acc = acc };
    float *sp = NULL;
    int ret = VG_ERR(ENOMEM);
    if (!xs || !col || !acc)
        goto end;
    int *ys = xs + w / st + 2;
    g.nx = grid_positions(w, ps, st, xs);
    g.ny = grid_positions(h, ps, st, ys);
    g.xs = xs;
    g.ys = ys;
    sp = vg_flow_scratch(c, sizeof(float) * (size_t)g.nx * g.ny * 7);     // [ny, nx] u, v, then [ny, nx, 5]
    if (!sp)
        goto end;
    g.su = sp;
    g.sv = sp + (size_t)g.nx * g.ny;
    g.ih = sp + (size_t)g.nx * g.ny * 2;
    g.col = col;
    for (int j = 0; j < g.ny; j++)
        for (int i = 0; i < g.nx; i++) {
            size_t c = (size_t)(ys[j] + ps / 2) * w + xs[i] + ps / 2, o = (size_t)j * g.nx + i;
            g.su[o] = isfinite(U[c]) ? U[c] : 0.f;  /* non-finite input pixels upstream */
            g.sv[o] = isfinite(V[c]) ? V[c] : 0.f;
        }
    /* stripes of patch rows: as many as threads, at least 2 patch rows each,
     * so the result depends on the thread count only through the seams */
    g.stripes = threads < g.ny / 2 ? threads : g.ny / 2 > 0 ? g.ny / 2 : 1;
    vg_flow_parallel(threads, g.stripes, search_stripe, &g);
    Dense D = { &g, outU, outV, band };
    vg_flow_parallel(threads, nband, dense_band, &D);
    ret = 0;
end:
    return ret;
}
