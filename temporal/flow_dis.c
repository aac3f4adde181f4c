/*
 * Dense Inverse Search optical flow, written from Kroeger et al., ECCV 2016
 * (see temporal/flow.h). The refinement constants are the paper's (alpha
 * 20, gamma 10, delta 5); the presets were chosen by measurement, see
 * vg_flow_default_params().
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "include/visgen/visgen.h"
#include "temporal/flow_int.h"

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
    p->threads = VG_FLOW_THREADS_DEFAULT;
    p->patch_size = 8;
    p->var_iter = 0;
    /* Measured (bench/flow, Middlebury and a 1280x720 synthetic pair): the
     * patch search one scale finer buys more EPE per millisecond than the
     * variational refinement, and a few LK iterations converge since the
     * steps are full Gauss-Newton ones; so no preset refines. */
    switch (preset) {
    case VG_FLOW_PRESET_ULTRAFAST:
        p->finest_scale = 1; p->patch_stride = 8; p->grad_descent_iter = 4;
        break;
    case VG_FLOW_PRESET_MEDIUM:
        p->finest_scale = 0; p->patch_size = 10; p->patch_stride = 4; p->grad_descent_iter = 4;
        break;
    default:
        p->finest_scale = 0; p->patch_stride = 8; p->grad_descent_iter = 4;
        break;
    }
}

static const char *const preset_names[] = { "ultrafast", "fast", "medium" };

int vg_flow_preset_from_name(const char *name)
{
    for (int k = 0; name && k < 3; k++)
        if (!strcmp(name, preset_names[k]))
            return k;
    return -1;
}

const char *vg_flow_preset_name(int preset)
{
    return preset >= 0 && preset < 3 ? preset_names[preset] : NULL;
}

/* Scharr gradients (3-10-3 smoothing across the central difference,
 * normalised to unit slope), borders replicated. */
static void gradients(const float *img, int w, int h, float *gx, float *gy)
{
    const VgFlowDsp *dsp = vg_flow_dsp();
    for (int y = 0; y < h; y++) {
        const float *r = img + (size_t)y * w;
        const float *ru = img + (size_t)(y > 0 ? y - 1 : y) * w;
        const float *rd = img + (size_t)(y < h - 1 ? y + 1 : y) * w;
        float *ox = gx + (size_t)y * w, *oy = gy + (size_t)y * w;
        dsp->scharr_row(ru, r, rd, ox, oy, w);
        for (int x = 0; x < w; x += w - 1 > 0 ? w - 1 : 1) {
            int xl = x > 0 ? x - 1 : x, xr = x < w - 1 ? x + 1 : x;
            ox[x] = (3.f * (ru[xr] - ru[xl] + rd[xr] - rd[xl]) + 10.f * (r[xr] - r[xl])) * (1.f / 32.f);
            oy[x] = (3.f * (rd[xl] - ru[xl] + rd[xr] - ru[xr]) + 10.f * (rd[x] - ru[x])) * (1.f / 32.f);
        }
    }
}

/* dst [sw/2, sh/2] = 2x2 box average of src [sh, sw] (area downscale). */
static void downscale(const float *src, ptrdiff_t sw, int dw, int dh, float *dst)
{
    const VgFlowDsp *dsp = vg_flow_dsp();
    for (int y = 0; y < dh; y++)
        dsp->down2_row(src + (size_t)(2 * y) * sw, src + (size_t)(2 * y + 1) * sw,
                       dst + (size_t)y * dw, dw);
}

/* Upsample a flow field by 2^k: dst [dh, dw] from src [sh, sw], pixel centres
 * aligned as the box pyramid places them, displacements scaled by 2^k.
 * Separable, horizontal first: each source row is widened once (the only
 * scalar part, 1/2^k of the output), then every output row is a vector blend
 * of two widened rows. tmp: 4 dw + 3 dw floats. */
static void upsample_rows(const float *su, const float *sv, int sw, int sh, int k,
                          float *du, float *dv, int dw, int dh, int ya, int yb, float *tmp)
{
    const VgFlowDsp *dsp = vg_flow_dsp();
    float f = (float)(1 << k), inv = 1.f / f;
    float *wide[2][2] = { { tmp, tmp + dw }, { tmp + 2 * dw, tmp + 3 * dw } }; /* [row][channel] */
    int have[2] = { -1, -1 };
    int *xi = (int *)(tmp + 4 * dw);
    float *xf = tmp + 6 * dw;
    for (int x = 0; x < dw; x++) {
        float sx = (x + 0.5f) * inv - 0.5f;
        sx = sx < 0.f ? 0.f : sx > (float)(sw - 1) ? (float)(sw - 1) : sx;
        int x0 = (int)sx;
        xi[2 * x] = x0;
        xi[2 * x + 1] = x0 + 1 < sw ? x0 + 1 : x0;
        xf[x] = sx - x0;
    }
    for (int y = ya; y < yb; y++) {
        float sy = (y + 0.5f) * inv - 0.5f;
        sy = sy < 0.f ? 0.f : sy > (float)(sh - 1) ? (float)(sh - 1) : sy;
        int y0 = (int)sy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
        float fy = sy - y0;
        int need[2] = { y0, y1 };
        for (int r = 0; r < 2; r++) {
            int slot = have[0] == need[r] ? 0 : have[1] == need[r] ? 1 : -1;
            if (slot < 0) {
                /* the slot not holding the other needed row */
                slot = have[0] == need[1 - r] ? 1 : 0;
                for (int c = 0; c < 2; c++) {
                    const float *s = (c ? sv : su) + (size_t)need[r] * sw;
                    float *o = wide[slot][c];
                    for (int x = 0; x < dw; x++) {
                        int x0 = xi[2 * x], x1 = xi[2 * x + 1];
                        o[x] = s[x0] + xf[x] * (s[x1] - s[x0]);
                    }
                }
                have[slot] = need[r];
            }
        }
        int s0 = have[0] == y0 ? 0 : 1, s1 = have[0] == y1 ? 0 : 1;
        dsp->lerp_row(wide[s0][0], wide[s1][0], fy, f, du + (size_t)y * dw, dw);
        dsp->lerp_row(wide[s0][1], wide[s1][1], fy, f, dv + (size_t)y * dw, dw);
    }
}

typedef struct Up {
    const float *su, *sv;
    float *du, *dv, *tmp;   /* tmp: 7 dw floats per job */
    int sw, sh, k, dw, dh, n;
} Up;

static void up_job(void *ctx, int j)
{
    const Up *a = ctx;
    int ya = (int)((long)a->dh * j / a->n), yb = (int)((long)a->dh * (j + 1) / a->n);
    upsample_rows(a->su, a->sv, a->sw, a->sh, a->k, a->du, a->dv, a->dw, a->dh, ya, yb,
                  a->tmp + (size_t)7 * a->dw * j);
}

/* upsample_rows over all rows, in `jobs` row stripes (tmp: 7 dw floats each) */
static void upsample_flow(const float *su, const float *sv, int sw, int sh, int k, float *du,
                          float *dv, int dw, int dh, float *tmp, int jobs)
{
    Up a = { su, sv, du, dv, tmp, sw, sh, k, dw, dh, jobs };
    vg_flow_parallel(jobs, jobs, up_job, &a);
}

/* Pads src [h, w] by `pad` replicated pixels on every side into dst (row
 * stride w + 2 pad). */
static void pad_replicate(const float *src, int w, int h, int pad, float *dst)
{
    ptrdiff_t sp = w + 2 * pad;
    for (int y = -pad; y < h + pad; y++) {
        const float *r = src + (size_t)(y < 0 ? 0 : y >= h ? h - 1 : y) * w;
        float *o = dst + (size_t)(y + pad) * sp;
        for (int x = 0; x < pad; x++) {
            o[x] = r[0];
            o[pad + w + x] = r[w - 1];
        }
        memcpy(o + pad, r, sizeof(float) * w);
    }
}

typedef struct Pyr {
    VgFlowLevel *lv;
    int cs, fs, w, h;
    ptrdiff_t stride;
    const float *i0, *i1, *init_u, *init_v;
} Pyr;

/* job 0: the i0 pyramid and its gradients; 1: the i1 pyramid and its padded
 * copies; 2: the guess at every used scale (box-averaged, displacements
 * divided by 2^l) */
static void pyramid_job(void *ctx, int k)
{
    Pyr *P = ctx;
    for (int l = 0; l <= P->cs; l++) {
        VgFlowLevel *L = &P->lv[l];
        int used = l >= P->fs;
        if (k < 2) {
            const float *src = k ? P->i1 : P->i0;
            float *dst = (float *)(k ? L->i1 : L->i0);
            if (dst != src) {
                if (l == 0) {
                    for (int y = 0; y < P->h; y++)
                        memcpy(dst + (size_t)y * P->w, src + (size_t)y * P->stride,
                               sizeof(float) * P->w);
                } else {
                    const VgFlowLevel *F = &P->lv[l - 1];
                    ptrdiff_t ss = F->i0 == P->i0 ? P->stride : F->w;
                    downscale(k ? F->i1 : F->i0, ss, L->w, L->h, dst);
                }
            }
            if (used && k == 0)
                gradients(L->i0, L->w, L->h, (float *)L->gx, (float *)L->gy);
            if (used && k == 1)
                pad_replicate(L->i1, L->w, L->h, L->pad,
                              (float *)L->i1p - (size_t)L->pad * L->sp - L->pad);
            continue;
        }
        if (!used)
            continue;
        float *iu = (float *)L->iu, *iv = (float *)L->iv;
        const VgFlowLevel *F = l > 0 ? &P->lv[l - 1] : NULL;
        if (!F || !F->iu) {
            /* from full resolution in one box of 2^l x 2^l */
            int f = 1 << l;
            float s = 1.f / ((float)f * f * f);
            for (int y = 0; y < L->h; y++)
                for (int x = 0; x < L->w; x++) {
                    float a = 0, b = 0;
                    for (int yy = y * f; yy < y * f + f; yy++)
                        for (int xx = x * f; xx < x * f + f; xx++) {
                            a += P->init_u[(size_t)yy * P->w + xx];
                            b += P->init_v[(size_t)yy * P->w + xx];
                        }
                    iu[(size_t)y * L->w + x] = a * s;
                    iv[(size_t)y * L->w + x] = b * s;
                }
        } else {
            downscale(F->iu, F->w, L->w, L->h, iu);
            downscale(F->iv, F->w, L->w, L->h, iv);
            for (size_t o = 0; o < (size_t)L->w * L->h; o++) {
                iu[o] *= 0.5f;
                iv[o] *= 0.5f;
            }
        }
    }
}

/* vg_flow_dis() has no context argument, yet fresh buffers cost more than
 * the flow itself at full resolution (page faults: 13 vs 5 ms for FAST at
 * 584x388). So it borrows one process-wide context when no other call holds
 * it; it is kept until exit (reachable, sized by the largest frame seen). */
static VgFlowCtx *shared_ctx;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

int vg_flow_dis(const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
                const VgFlowParams *pp, float *u, float *v)
{
    if (pthread_mutex_trylock(&shared_lock))
        return vg_flow_dis2(NULL, i0, i1, w, h, stride, pp, NULL, NULL, u, v);
    if (!shared_ctx)
        vg_flow_ctx_open(&shared_ctx);   /* on failure: temporary buffers below */
    int ret = vg_flow_dis2(shared_ctx, i0, i1, w, h, stride, pp, NULL, NULL, u, v);
    pthread_mutex_unlock(&shared_lock);
    return ret;
}

static int dis(VgFlowCtx *c, const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
               const VgFlowParams *pp, const float *init_u, const float *init_v, float *u, float *v);

int vg_flow_dis2(VgFlowCtx *ctx, const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
                 const VgFlowParams *p, const float *init_u, const float *init_v,
                 float *u, float *v)
{
    VgFlowCtx *tmp = NULL;
    if (!ctx) {
        int ret = vg_flow_ctx_open(&tmp);
        if (ret < 0)
            return ret;
        ctx = tmp;
    }
    vg_flow_scratch_reset(ctx);
    int ret = dis(ctx, i0, i1, w, h, stride, p, init_u, init_v, u, v);
    vg_flow_ctx_close(&tmp);
    return ret;
}

static int dis(VgFlowCtx *c, const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
               const VgFlowParams *pp, const float *init_u, const float *init_v, float *u, float *v)
{
    VgFlowParams def;
    if (!pp) {
        vg_flow_default_params(&def, VG_FLOW_PRESET_FAST);
        pp = &def;
    }
    if (!i0 || !i1 || !u || !v || w < 2 || h < 2 || stride < w || pp->patch_size < 2 ||
        pp->finest_scale < 0 || pp->grad_descent_iter < 0 || pp->var_iter < 0 ||
        pp->threads < 0 || !init_u != !init_v)
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
    int pad = ps + 2;
    int threads = p.threads > 0 ? p.threads : VG_FLOW_THREADS_DEFAULT;

    VgFlowLevel lv[17];
    memset(lv, 0, sizeof(lv));
    int ret = VG_ERR(ENOMEM);
    float *U = NULL, *V = NULL, *U2 = NULL, *V2 = NULL;
    /* buffers first, then the pyramids of i0 (with gradients) and i1 (with
     * its padded copy) and of the guess as independent jobs */
    Pyr py = { .lv = lv, .cs = cs, .fs = fs, .w = w, .h = h, .stride = stride,
               .i0 = i0, .i1 = i1, .init_u = init_u, .init_v = init_v };
    for (int l = 0; l <= cs; l++) {
        VgFlowLevel *L = &lv[l];
        L->w = w >> l;
        L->h = h >> l;
        size_t n = (size_t)L->w * L->h;
        int used = l >= fs;
        /* level 0 is the input itself unless the search runs on it, which
         * needs packed rows */
        int own = l > 0 || (used && stride != w);
        L->pad = pad;
        L->sp = L->w + 2 * pad;
        size_t npad = (size_t)L->sp * (L->h + 2 * pad) + 16;   /* + over-read slack */
        size_t tot = n * (2 * own + 2 * used + 2 * (used && init_u)) + npad * used + 1;
        float *m = vg_flow_scratch(c, sizeof(float) * tot);   // [k, h, w] planes, then the padded i1
        if (!m)
            goto end;
        L->i0 = own ? m : i0;
        L->i1 = own ? m + n : i1;
        m += 2 * n * own;
        if (!used)
            continue;
        L->gx = m;
        L->gy = m + n;
        m += 2 * n;
        if (init_u) {
            L->iu = m;
            L->iv = m + n;
            m += 2 * n;
        }
        L->i1p = m + (size_t)pad * L->sp + pad;
    }
    vg_flow_parallel(w * h >= VG_FLOW_PAR_MIN ? threads : 1, init_u ? 3 : 2, pyramid_job, &py);

    size_t nmax = (size_t)lv[fs].w * lv[fs].h;
    U = vg_flow_scratch(c, sizeof(float) * nmax);
    V = vg_flow_scratch(c, sizeof(float) * nmax);
    U2 = vg_flow_scratch(c, sizeof(float) * nmax);
    V2 = vg_flow_scratch(c, sizeof(float) * nmax);
    float *tmp = vg_flow_scratch(c, sizeof(float) * 7 * (size_t)w * threads);
    if (!U || !V || !U2 || !V2 || !tmp)
        goto end;
    memset(U, 0, sizeof(float) * (size_t)lv[cs].w * lv[cs].h);
    memset(V, 0, sizeof(float) * (size_t)lv[cs].w * lv[cs].h);
    for (int l = cs; l >= fs; l--) {
        const VgFlowLevel *L = &lv[l];
        if (l < cs) {
            const VgFlowLevel *C = &lv[l + 1];
            upsample_flow(U, V, C->w, C->h, 1, U2, V2, L->w, L->h, tmp,
                          L->w * L->h >= VG_FLOW_PAR_MIN ? threads : 1);
            float *t = U; U = U2; U2 = t;
            t = V; V = V2; V2 = t;
        }
        /* the full-resolution level writes the caller's planes directly */
        float *ou = l == 0 ? u : U, *ov = l == 0 ? v : V;
        if ((ret = vg_flow_patch_level(c, L, &p, ps, U, V, ou, ov)) < 0)
            goto end;
        if (p.var_iter > 0 &&
            (ret = vg_flow_variational(c, L->i0, L->i1, L->w, L->h, &p, ou, ov)) < 0)
            goto end;
    }
    if (fs > 0)
        upsample_flow(U, V, lv[fs].w, lv[fs].h, fs, u, v, w, h, tmp, w * h >= VG_FLOW_PAR_MIN ? threads : 1);
    ret = 0;
end:
    return ret;
}
