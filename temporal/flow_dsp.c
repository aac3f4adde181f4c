/* Reference kernels of the DIS flow (see temporal/flow_dsp.h) and the
 * selection of the optimised ones by CPU flag. */
#include <math.h>
#include <pthread.h>

#include "temporal/flow_dsp.h"

static void patch_grad_c(const float *i0, const float *gx, const float *gy, ptrdiff_t s0,
                         const float *i1, ptrdiff_t s1, const float w[4], int ps, float out[4])
{
    float sx = 0, sy = 0, sd = 0, sq = 0;
    for (int y = 0; y < ps; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1;
        for (int x = 0; x < ps; x++) {
            float d = w[0] * r0[x] + w[1] * r0[x + 1] + w[2] * r1[x] + w[3] * r1[x + 1] -
                      i0[y * s0 + x];
            sx += d * gx[y * s0 + x];
            sy += d * gy[y * s0 + x];
            sd += d;
            sq += d * d;
        }
    }
    out[0] = sx; out[1] = sy; out[2] = sd; out[3] = sq;
}

static void patch_ssd_c(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                        const float w[4], int ps, float out[2])
{
    float sd = 0, sq = 0;
    for (int y = 0; y < ps; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1;
        for (int x = 0; x < ps; x++) {
            float d = w[0] * r0[x] + w[1] * r0[x + 1] + w[2] * r1[x] + w[3] * r1[x + 1] -
                      i0[y * s0 + x];
            sd += d;
            sq += d * d;
        }
    }
    out[0] = sd; out[1] = sq;
}

static void patch_vote_c(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                         const float w[4], int ps, int rows, float u, float v, float *acc,
                         ptrdiff_t sa)
{
    for (int y = 0; y < rows; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1;
        float *a = acc + y * s0;
        for (int x = 0; x < ps; x++) {
            float d = w[0] * r0[x] + w[1] * r0[x + 1] + w[2] * r1[x] + w[3] * r1[x + 1] -
                      i0[y * s0 + x];
            float ad = fabsf(d);
            float c = 1.f / (ad > 1.f ? ad : 1.f);
            a[x] += c * u;
            a[x + sa] += c * v;
            a[x + 2 * sa] += c;
        }
    }
}

static void scharr_row_c(const float *ru, const float *r, const float *rd, float *gx, float *gy,
                         int w)
{
    for (int x = 1; x < w - 1; x++) {
        gx[x] = (3.f * ((ru[x + 1] - ru[x - 1]) + (rd[x + 1] - rd[x - 1])) + 10.f * (r[x + 1] - r[x - 1])) * (1.f / 32.f);
        gy[x] = (3.f * ((rd[x - 1] - ru[x - 1]) + (rd[x + 1] - ru[x + 1])) + 10.f * (rd[x] - ru[x])) * (1.f / 32.f);
    }
}

static void tensor_row_c(const float *gx, const float *gy, float *col, int w)
{
    for (int x = 0; x < w; x++) {
        col[x] += gx[x] * gx[x];
        col[w + x] += gx[x] * gy[x];
        col[2 * w + x] += gy[x] * gy[x];
        col[3 * w + x] += gx[x];
        col[4 * w + x] += gy[x];
    }
}

static void divide_row_c(const float *au, const float *av, const float *aw, float *u, float *v,
                         int n)
{
    for (int x = 0; x < n; x++) {
        float r = 1.f / aw[x];
        u[x] = au[x] * r;
        v[x] = av[x] * r;
    }
}

static void down2_row_c(const float *a, const float *b, float *dst, int n)
{
    for (int x = 0; x < n; x++)
        dst[x] = 0.25f * ((a[2 * x] + b[2 * x]) + (a[2 * x + 1] + b[2 * x + 1]));
}

static void lerp_row_c(const float *a, const float *b, float t, float scale, float *dst, int n)
{
    for (int x = 0; x < n; x++)
        dst[x] = scale * (a[x] + t * (b[x] - a[x]));
}

/* Smoothness weights alpha / |grad (U + dU)| (forward differences, lagged),
 * one per pixel, put on its right and lower edges; edges leaving the image
 * weigh 0. */
static void var_smooth_c(const VgVarRow *r, ptrdiff_t pw, int w, int last_row, float alpha,
                         float eps2)
{
    for (int x = 0; x < w; x++) {
        float u0 = r->u[x] + r->du[x], v0 = r->v[x] + r->dv[x];
        float ux = 0, vx = 0, uy = 0, vy = 0;
        if (x < w - 1) {
            ux = r->u[x + 1] + r->du[x + 1] - u0;
            vx = r->v[x + 1] + r->dv[x + 1] - v0;
        }
        if (!last_row) {
            uy = r->u[x + pw] + r->du[x + pw] - u0;
            vy = r->v[x + pw] + r->dv[x + pw] - v0;
        }
        float s = alpha / sqrtf(ux * ux + uy * uy + vx * vx + vy * vy + eps2);
        r->sx[x] = x < w - 1 ? s : 0.f;
        r->sy[x] = last_row ? 0.f : s;
    }
}

/* Lagged robust weights of the data terms and the smoothness terms of the
 * current flow folded into one 2x2 system per pixel:
 * (A + sw I) d = B + sum_n s_n (U_n - U) + sum_n s_n d_n. */
static void var_data_c(const VgVarRow *r, ptrdiff_t pw, int w, float eps2)
{
    for (int x = 0; x < w; x++) {
        float du = r->du[x], dv = r->dv[x];
        float Ix = r->ix[x], Iy = r->iy[x], Ixx = r->ixx[x], Ixy = r->ixy[x], Iyy = r->iyy[x];
        float ngx = r->ngx[x], ngy = r->ngy[x];
        float rr = r->iz[x] + Ix * du + Iy * dv;
        float pd = r->dm[x] / sqrtf(rr * rr * r->ni[x] + eps2);
        float rx = r->ixz[x] + Ixx * du + Ixy * dv, ry = r->iyz[x] + Ixy * du + Iyy * dv;
        float pg = r->gm[x] / sqrtf(rx * rx * ngx + ry * ry * ngy + eps2);
        float pgx = pg * ngx, pgy = pg * ngy;
        float sr = r->sx[x], sl = r->sx[x - 1], sd = r->sy[x], su = r->sy[x - pw];
        const float *u = r->u + x, *v = r->v + x;
        float sw = sr + sl + sd + su;
        float fu = sr * (u[1] - u[0]) + sl * (u[-1] - u[0]) + sd * (u[pw] - u[0]) + su * (u[-pw] - u[0]);
        float fv = sr * (v[1] - v[0]) + sl * (v[-1] - v[0]) + sd * (v[pw] - v[0]) + su * (v[-pw] - v[0]);
        float a11 = pd * Ix * Ix + pgx * Ixx * Ixx + pgy * Ixy * Ixy + sw;
        float a22 = pd * Iy * Iy + pgx * Ixy * Ixy + pgy * Iyy * Iyy + sw;
        r->a12[x] = pd * Ix * Iy + pgx * Ixx * Ixy + pgy * Ixy * Iyy;
        r->b1[x] = fu - pd * Ix * r->iz[x] - pgx * Ixx * r->ixz[x] - pgy * Ixy * r->iyz[x];
        r->b2[x] = fv - pd * Iy * r->iz[x] - pgx * Ixy * r->ixz[x] - pgy * Iyy * r->iyz[x];
        r->ia11[x] = a11 > 0.f ? 1.f / a11 : 0.f;
        r->ia22[x] = a22 > 0.f ? 1.f / a22 : 0.f;
    }
}

static void sor_row_c(const VgVarRow *r, ptrdiff_t pw, int w, int parity, float omega)
{
    float *du = r->du, *dv = r->dv;
    const float *sx = r->sx, *sy = r->sy;
    for (int x = parity; x < w; x += 2) {
        float su = sx[x] * du[x + 1] + sx[x - 1] * du[x - 1] + sy[x] * du[x + pw] + sy[x - pw] * du[x - pw];
        float sv = sx[x] * dv[x + 1] + sx[x - 1] * dv[x - 1] + sy[x] * dv[x + pw] + sy[x - pw] * dv[x - pw];
        float nu = (r->b1[x] + su - r->a12[x] * dv[x]) * r->ia11[x];
        float u = du[x] + omega * (nu - du[x]);
        du[x] = u;
        float nv = (r->b2[x] + sv - r->a12[x] * u) * r->ia22[x];
        dv[x] += omega * (nv - dv[x]);
    }
}

void vg_flow_dsp_init_c(VgFlowDsp *d)
{
    d->patch_grad = patch_grad_c;
    d->patch_ssd = patch_ssd_c;
    d->patch_vote = patch_vote_c;
    d->scharr_row = scharr_row_c;
    d->tensor_row = tensor_row_c;
    d->divide_row = divide_row_c;
    d->down2_row = down2_row_c;
    d->lerp_row = lerp_row_c;
    d->var_smooth = var_smooth_c;
    d->var_data = var_data_c;
    d->sor_row = sor_row_c;
}

static VgFlowDsp dsp;
static pthread_once_t dsp_once = PTHREAD_ONCE_INIT;

static void dsp_select(void)
{
    vg_flow_dsp_init_c(&dsp);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        vg_flow_dsp_init_avx2(&dsp);
#endif
}

const VgFlowDsp *vg_flow_dsp(void)
{
    pthread_once(&dsp_once, dsp_select);
    return &dsp;
}
