/*
 * Variational refinement of a dense flow (the last stage of DIS, after Brox
 * et al. 2004 as used by Kroeger et al.): energy
 *   delta * Psi((I1(x+w) - I0)^2) + gamma * Psi(|grad I1(x+w) - grad I0|^2)
 *   + alpha * Psi(|grad u|^2 + |grad v|^2),   Psi(s2) = sqrt(s2 + eps^2),
 * linearised around the current flow and solved for the increment by
 * lagged-weight fixed-point iterations, each a few red-black SOR sweeps.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "include/visgen/visgen.h"
#include "temporal/flow.h"

int vg_flow_variational(const float *i0, const float *i1, int w, int h,
                        const VgFlowParams *p, float *U, float *V);

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

static void dxdy(const float *img, int w, int h, float *gx, float *gy)
{
    for (int y = 0; y < h; y++) {
        const float *r = img + (size_t)y * w;
        const float *ru = img + (size_t)(y > 0 ? y - 1 : y) * w;
        const float *rd = img + (size_t)(y < h - 1 ? y + 1 : y) * w;
        for (int x = 0; x < w; x++) {
            int xl = x > 0 ? x - 1 : x, xr = x < w - 1 ? x + 1 : x;
            if (gx) gx[(size_t)y * w + x] = 0.5f * (r[xr] - r[xl]);
            if (gy) gy[(size_t)y * w + x] = 0.5f * (rd[x] - ru[x]);
        }
    }
}

enum { A_WARP, A_WX, A_WY, A_0X, A_0Y, A_WXX, A_WXY, A_WYY, A_0XX, A_0XY, A_0YY,
       A_DU, A_DV, A_S, A_A11, A_A12, A_A22, A_B1, A_B2, A_MASK, A_N };

int vg_flow_variational(const float *i0, const float *i1, int w, int h,
                        const VgFlowParams *p, float *U, float *V)
{
    size_t n = (size_t)w * h;
    float *mem = calloc(n * A_N, sizeof(float));   // [A_N, h, w]
    if (!mem)
        return VG_ERR(ENOMEM);
    float *a[A_N];
    for (int k = 0; k < A_N; k++)
        a[k] = mem + n * k;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t o = (size_t)y * w + x;
            int in = 1;
            a[A_WARP][o] = bilin(i1, w, h, x + U[o], y + V[o], &in);
            a[A_MASK][o] = (float)in;
        }
    dxdy(a[A_WARP], w, h, a[A_WX], a[A_WY]);
    dxdy(i0, w, h, a[A_0X], a[A_0Y]);
    dxdy(a[A_WX], w, h, a[A_WXX], a[A_WXY]);
    dxdy(a[A_WY], w, h, NULL, a[A_WYY]);
    dxdy(a[A_0X], w, h, a[A_0XX], a[A_0XY]);
    dxdy(a[A_0Y], w, h, NULL, a[A_0YY]);

    const float eps2 = 1e-6f, alpha = p->var_alpha, gamma = p->var_gamma, delta = p->var_delta;
    const float omega = p->var_omega, zeta2 = p->var_zeta * p->var_zeta;
    float *du = a[A_DU], *dv = a[A_DV], *S = a[A_S];
    for (int it = 0; it < p->var_iter; it++) {
        /* lagged robust weights of the data terms, folded into the 2x2 systems */
        for (size_t o = 0; o < n; o++) {
            float Ix = 0.5f * (a[A_WX][o] + a[A_0X][o]), Iy = 0.5f * (a[A_WY][o] + a[A_0Y][o]);
            float Iz = a[A_WARP][o] - i0[o];
            float Ixx = 0.5f * (a[A_WXX][o] + a[A_0XX][o]), Ixy = 0.5f * (a[A_WXY][o] + a[A_0XY][o]);
            float Iyy = 0.5f * (a[A_WYY][o] + a[A_0YY][o]);
            float Ixz = a[A_WX][o] - a[A_0X][o], Iyz = a[A_WY][o] - a[A_0Y][o];
            float m = a[A_MASK][o];
            /* terms normalised by their gradient magnitude (zeta), so that the
             * residuals are displacement-like whatever the local contrast */
            float ni = 1.f / (Ix * Ix + Iy * Iy + zeta2);
            float ngx = 1.f / (Ixx * Ixx + Ixy * Ixy + zeta2), ngy = 1.f / (Ixy * Ixy + Iyy * Iyy + zeta2);
            float r = Iz + Ix * du[o] + Iy * dv[o];
            float pd = m * delta * ni / sqrtf(r * r * ni + eps2);
            float rx = Ixz + Ixx * du[o] + Ixy * dv[o], ry = Iyz + Ixy * du[o] + Iyy * dv[o];
            float pg = m * gamma / sqrtf(rx * rx * ngx + ry * ry * ngy + eps2);
            float pgx = pg * ngx, pgy = pg * ngy;
            a[A_A11][o] = pd * Ix * Ix + pgx * Ixx * Ixx + pgy * Ixy * Ixy;
            a[A_A12][o] = pd * Ix * Iy + pgx * Ixx * Ixy + pgy * Ixy * Iyy;
            a[A_A22][o] = pd * Iy * Iy + pgx * Ixy * Ixy + pgy * Iyy * Iyy;
            a[A_B1][o] = -pd * Ix * Iz - pgx * Ixx * Ixz - pgy * Ixy * Iyz;
            a[A_B2][o] = -pd * Iy * Iz - pgx * Ixy * Ixz - pgy * Iyy * Iyz;
        }
        /* smoothness weight of the forward differences at each pixel */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t o = (size_t)y * w + x;
                float ux = 0, uy = 0, vx = 0, vy = 0;
                if (x < w - 1) {
                    ux = U[o + 1] + du[o + 1] - U[o] - du[o];
                    vx = V[o + 1] + dv[o + 1] - V[o] - dv[o];
                }
                if (y < h - 1) {
                    uy = U[o + w] + du[o + w] - U[o] - du[o];
                    vy = V[o + w] + dv[o + w] - V[o] - dv[o];
                }
                S[o] = alpha / sqrtf(ux * ux + uy * uy + vx * vx + vy * vy + eps2);
            }
        /* fold the smoothness terms of the current flow into the systems:
         * row o reads (A + sw I) d = B + sum_n s_n (U_n - U_o) + sum_n s_n d_n */
        float *ia11 = a[A_A11], *ia22 = a[A_A22];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t o = (size_t)y * w + x;
                float sw = 0, su = 0, sv = 0, wt;
                if (x < w - 1) { wt = S[o]; sw += wt; su += wt * (U[o + 1] - U[o]); sv += wt * (V[o + 1] - V[o]); }
                if (y < h - 1) { wt = S[o]; sw += wt; su += wt * (U[o + w] - U[o]); sv += wt * (V[o + w] - V[o]); }
                if (x > 0) { wt = S[o - 1]; sw += wt; su += wt * (U[o - 1] - U[o]); sv += wt * (V[o - 1] - V[o]); }
                if (y > 0) { wt = S[o - w]; sw += wt; su += wt * (U[o - w] - U[o]); sv += wt * (V[o - w] - V[o]); }
                float a11 = ia11[o] + sw, a22 = ia22[o] + sw;
                ia11[o] = a11 > 0.f ? 1.f / a11 : 0.f;
                ia22[o] = a22 > 0.f ? 1.f / a22 : 0.f;
                a[A_B1][o] += su;
                a[A_B2][o] += sv;
            }
        const float *A12 = a[A_A12], *B1 = a[A_B1], *B2 = a[A_B2];
        /* red-black ordering: the pixels of one colour only read the other
         * colour, so each half-sweep has no serial dependency */
        for (int sor = 0; sor < 2 * p->var_sor_iter; sor++)
            for (int y = 0; y < h; y++) {
                int border_row = y == 0 || y == h - 1;
                for (int x = (y + sor) & 1; x < w; x += 2) {
                    size_t o = (size_t)y * w + x;
                    float su, sv;
                    if (!border_row && x > 0 && x < w - 1) {
                        /* edges (o, o+1), (o, o+w) carry S[o]; (o-1, o), (o-w, o) carry S[o-1], S[o-w] */
                        float s0 = S[o], sl = S[o - 1], st = S[o - w];
                        su = s0 * (du[o + 1] + du[o + w]) + sl * du[o - 1] + st * du[o - w];
                        sv = s0 * (dv[o + 1] + dv[o + w]) + sl * dv[o - 1] + st * dv[o - w];
                    } else {
                        su = sv = 0;
                        if (x < w - 1) { su += S[o] * du[o + 1]; sv += S[o] * dv[o + 1]; }
                        if (y < h - 1) { su += S[o] * du[o + w]; sv += S[o] * dv[o + w]; }
                        if (x > 0) { su += S[o - 1] * du[o - 1]; sv += S[o - 1] * dv[o - 1]; }
                        if (y > 0) { su += S[o - w] * du[o - w]; sv += S[o - w] * dv[o - w]; }
                    }
                    float nu = (B1[o] + su - A12[o] * dv[o]) * ia11[o];
                    du[o] += omega * (nu - du[o]);
                    float nv = (B2[o] + sv - A12[o] * du[o]) * ia22[o];
                    dv[o] += omega * (nv - dv[o]);
                }
            }
    }
    for (size_t o = 0; o < n; o++) {
        U[o] += du[o];
        V[o] += dv[o];
    }
    free(mem);
    return 0;
}
