/*
 * Variational refinement of a dense flow (the last stage of DIS, after Brox
 * et al. 2004 as used by Kroeger et al.): energy
 *   delta * Psi((I1(x+w) - I0)^2) + gamma * Psi(|grad I1(x+w) - grad I0|^2)
 *   + alpha * Psi(|grad u|^2 + |grad v|^2),   Psi(s2) = sqrt(s2 + eps^2),
 * linearised around the current flow and solved for the increment by
 * lagged-weight fixed-point iterations, each a few red-black SOR sweeps.
 * Data terms are normalised by their gradient magnitude (zeta), so that the
 * residuals are displacement-like whatever the local contrast.
 *
 * Layout: every plane has a one-pixel zero border (rows pw = w + 2 apart),
 * so the kernels (temporal/flow_dsp.h) never test for the image edge: edges
 * leaving the image simply have smoothness weight 0. The SOR half-sweeps are
 * pipelined over rows, sweep k two rows behind sweep k - 1, which is the
 * same computation as whole sweeps one after the other (a red-black update of
 * row y only reads rows y - 1 .. y + 1) but keeps the working set in cache.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "include/visgen/visgen.h"
#include "temporal/flow_int.h"

static inline float bilin(const float *img, int w, int h, float x, float y, int *inside)
{
    if (!(x >= 0.f && y >= 0.f && x <= (float)(w - 1) && y <= (float)(h - 1)))
        *inside = 0;
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

/* central differences of img [h, w] (row stride si), borders replicated,
 * into gx, gy (row stride so; either may be NULL) */
static void dxdy(const float *img, ptrdiff_t si, int w, int h, float *gx, float *gy, ptrdiff_t so)
{
    for (int y = 0; y < h; y++) {
        const float *r = img + y * si;
        const float *ru = img + (y > 0 ? y - 1 : y) * si;
        const float *rd = img + (y < h - 1 ? y + 1 : y) * si;
        for (int x = 0; x < w; x++) {
            int xl = x > 0 ? x - 1 : x, xr = x < w - 1 ? x + 1 : x;
            if (gx) gx[y * so + x] = 0.5f * (r[xr] - r[xl]);
            if (gy) gy[y * so + x] = 0.5f * (rd[x] - ru[x]);
        }
    }
}

enum { P_IX, P_IY, P_IZ, P_IXX, P_IXY, P_IYY, P_IXZ, P_IYZ, P_NI, P_DM, P_GM, P_NGX, P_NGY,
       P_U, P_V, P_DU, P_DV, P_SX, P_SY, P_A12, P_B1, P_B2, P_IA11, P_IA22, P_N };
/* scratch planes of the warped image's and i0's derivatives (packed, [h, w]) */
enum { T_WARP, T_WX, T_WY, T_0X, T_0Y, T_WXX, T_WXY, T_WYY, T_0XX, T_0XY, T_0YY, T_N };

int vg_flow_variational(VgFlowCtx *c, const float *i0, const float *i1, int w, int h,
                        const VgFlowParams *p, float *U, float *V)
{
    const VgFlowDsp *dsp = vg_flow_dsp();
    ptrdiff_t pw = w + 2;
    size_t np = (size_t)pw * (h + 2), n = (size_t)w * h;
    float *mem = vg_flow_scratch(c, sizeof(float) * (np * P_N + n * T_N));   // [P_N, h + 2, w + 2], [T_N, h, w]
    if (!mem)
        return VG_ERR(ENOMEM);
    /* the zero border of the planes read at neighbours, and the initial
     * increment (the other planes are only read inside) */
    for (int k = P_U; k <= P_SY; k++) {
        float *b = mem + np * k;
        if (k == P_DU || k == P_DV) {
            memset(b, 0, sizeof(float) * np);
            continue;
        }
        memset(b, 0, sizeof(float) * pw);
        memset(b + np - pw, 0, sizeof(float) * pw);
        for (int y = 1; y <= h; y++)
            b[y * pw] = b[y * pw + w + 1] = 0.f;
    }
    float *pl[P_N], *t[T_N];
    for (int k = 0; k < P_N; k++)
        pl[k] = mem + np * k + pw + 1;     /* at (0, 0) inside the border */
    for (int k = 0; k < T_N; k++)
        t[k] = mem + np * P_N + n * k;

    float *mask = t[T_0XX]; /* borrowed until the second derivatives */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t o = (size_t)y * w + x;
            int in = 1;
            t[T_WARP][o] = bilin(i1, w, h, x + U[o], y + V[o], &in);
            mask[o] = (float)in;
            pl[P_U][y * pw + x] = U[o];
            pl[P_V][y * pw + x] = V[o];
        }
    const float delta = p->var_delta, gamma = p->var_gamma, zeta2 = p->var_zeta * p->var_zeta;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            pl[P_DM][y * pw + x] = mask[(size_t)y * w + x] * delta;   /* times ni below */
    dxdy(t[T_WARP], w, w, h, t[T_WX], t[T_WY], w);
    dxdy(i0, w, w, h, t[T_0X], t[T_0Y], w);
    dxdy(t[T_WX], w, w, h, t[T_WXX], t[T_WXY], w);
    dxdy(t[T_WY], w, w, h, NULL, t[T_WYY], w);
    dxdy(t[T_0X], w, w, h, t[T_0XX], t[T_0XY], w);
    dxdy(t[T_0Y], w, w, h, NULL, t[T_0YY], w);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t o = (size_t)y * w + x;
            ptrdiff_t q = y * pw + x;
            float Ix = 0.5f * (t[T_WX][o] + t[T_0X][o]), Iy = 0.5f * (t[T_WY][o] + t[T_0Y][o]);
            float Ixx = 0.5f * (t[T_WXX][o] + t[T_0XX][o]), Ixy = 0.5f * (t[T_WXY][o] + t[T_0XY][o]);
            float Iyy = 0.5f * (t[T_WYY][o] + t[T_0YY][o]);
            float ni = 1.f / (Ix * Ix + Iy * Iy + zeta2);
            pl[P_IX][q] = Ix; pl[P_IY][q] = Iy; pl[P_IZ][q] = t[T_WARP][o] - i0[o];
            pl[P_IXX][q] = Ixx; pl[P_IXY][q] = Ixy; pl[P_IYY][q] = Iyy;
            pl[P_IXZ][q] = t[T_WX][o] - t[T_0X][o];
            pl[P_IYZ][q] = t[T_WY][o] - t[T_0Y][o];
            pl[P_NI][q] = ni;
            pl[P_GM][q] = (pl[P_DM][q] != 0.f) * gamma;
            pl[P_DM][q] *= ni;
            pl[P_NGX][q] = 1.f / (Ixx * Ixx + Ixy * Ixy + zeta2);
            pl[P_NGY][q] = 1.f / (Ixy * Ixy + Iyy * Iyy + zeta2);
        }

    const float eps2 = 1e-6f, alpha = p->var_alpha, omega = p->var_omega;
    int sweeps = 2 * p->var_sor_iter;
    for (int it = 0; it < p->var_iter; it++) {
        VgVarRow r;
        for (int pass = 0; pass < 2; pass++)
            for (int y = 0; y < h; y++) {
                ptrdiff_t q = y * pw;
                r = (VgVarRow){
                    pl[P_IX] + q, pl[P_IY] + q, pl[P_IZ] + q, pl[P_IXX] + q, pl[P_IXY] + q,
                    pl[P_IYY] + q, pl[P_IXZ] + q, pl[P_IYZ] + q, pl[P_NI] + q, pl[P_DM] + q,
                    pl[P_GM] + q, pl[P_NGX] + q, pl[P_NGY] + q, pl[P_U] + q, pl[P_V] + q,
                    pl[P_DU] + q, pl[P_DV] + q, pl[P_SX] + q, pl[P_SY] + q, pl[P_A12] + q,
                    pl[P_B1] + q, pl[P_B2] + q, pl[P_IA11] + q, pl[P_IA22] + q };
                if (pass == 0)
                    dsp->var_smooth(&r, pw, w, y == h - 1, alpha, eps2);
                else
                    dsp->var_data(&r, pw, w, eps2);
            }
        /* sweep k at row s - 2k: rows y - 1 .. y + 1 have had sweep k - 1
         * and not yet sweep k + 1, as in whole sweeps one after the other */
        for (int s = 0; s < h + 2 * (sweeps - 1); s++)
            for (int k = 0; k < sweeps; k++) {
                int y = s - 2 * k;
                if (y < 0 || y >= h)
                    continue;
                ptrdiff_t q = y * pw;
                VgVarRow rr = { .u = pl[P_U] + q, .v = pl[P_V] + q, .du = pl[P_DU] + q,
                                .dv = pl[P_DV] + q, .sx = pl[P_SX] + q, .sy = pl[P_SY] + q,
                                .a12 = pl[P_A12] + q, .b1 = pl[P_B1] + q, .b2 = pl[P_B2] + q,
                                .ia11 = pl[P_IA11] + q, .ia22 = pl[P_IA22] + q };
                dsp->sor_row(&rr, pw, w, (y + k) & 1, omega);
            }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            U[(size_t)y * w + x] += pl[P_DU][y * pw + x];
            V[(size_t)y * w + x] += pl[P_DV][y * pw + x];
        }
    return 0;
}
