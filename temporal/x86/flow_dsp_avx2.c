/* AVX2+FMA kernels of the DIS flow (see temporal/flow_dsp.h); the C
 * references are in temporal/flow_dsp.c. A patch row is processed 8 pixels
 * at a time, the last (ps % 8) with masked loads, so any patch size works
 * and 8 (the presets') is one vector per row. */
#include <immintrin.h>
#include <math.h>

#include "temporal/flow_dsp.h"

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i tail_mask(int n)
{
    static const int m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* d for 8 pixels at column x of row y (all lanes valid) */
#define DIFF8(x)                                                                          \
    _mm256_sub_ps(_mm256_fmadd_ps(w00, _mm256_loadu_ps(r0 + (x)),                         \
                  _mm256_fmadd_ps(w01, _mm256_loadu_ps(r0 + (x) + 1),                     \
                  _mm256_fmadd_ps(w10, _mm256_loadu_ps(r1 + (x)),                         \
                  _mm256_mul_ps(w11, _mm256_loadu_ps(r1 + (x) + 1))))),                   \
                  _mm256_loadu_ps(p0 + (x)))
/* the same for the masked tail: masked-out lanes give d = 0 */
#define DIFFM(x, m)                                                                       \
    _mm256_sub_ps(_mm256_fmadd_ps(w00, _mm256_maskload_ps(r0 + (x), m),                   \
                  _mm256_fmadd_ps(w01, _mm256_maskload_ps(r0 + (x) + 1, m),               \
                  _mm256_fmadd_ps(w10, _mm256_maskload_ps(r1 + (x), m),                   \
                  _mm256_mul_ps(w11, _mm256_maskload_ps(r1 + (x) + 1, m))))),             \
                  _mm256_maskload_ps(p0 + (x), m))

#define WEIGHTS                                                                           \
    const __m256 w00 = _mm256_set1_ps(w[0]), w01 = _mm256_set1_ps(w[1]);                  \
    const __m256 w10 = _mm256_set1_ps(w[2]), w11 = _mm256_set1_ps(w[3]);                  \
    const int full = ps & ~7;                                                             \
    const __m256i m = tail_mask(ps & 7)

/* Two sets of accumulators (even and odd rows): the sums are latency-bound
 * chains of FMAs otherwise. */
static void patch_grad_avx2(const float *i0, const float *gx, const float *gy, ptrdiff_t s0,
                            const float *i1, ptrdiff_t s1, const float w[4], int ps, float out[4])
{
    WEIGHTS;
    __m256 acc[2][4];
    for (int k = 0; k < 2; k++)
        acc[k][0] = acc[k][1] = acc[k][2] = acc[k][3] = _mm256_setzero_ps();
    for (int y = 0; y < ps; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1, *p0 = i0 + y * s0;
        const float *px = gx + y * s0, *py = gy + y * s0;
        __m256 *a = acc[y & 1];
        int x = 0;
        for (; x < full; x += 8) {
            __m256 d = DIFF8(x);
            a[0] = _mm256_fmadd_ps(d, _mm256_loadu_ps(px + x), a[0]);
            a[1] = _mm256_fmadd_ps(d, _mm256_loadu_ps(py + x), a[1]);
            a[2] = _mm256_add_ps(a[2], d);
            a[3] = _mm256_fmadd_ps(d, d, a[3]);
        }
        if (x < ps) {
            __m256 d = DIFFM(x, m);
            a[0] = _mm256_fmadd_ps(d, _mm256_maskload_ps(px + x, m), a[0]);
            a[1] = _mm256_fmadd_ps(d, _mm256_maskload_ps(py + x, m), a[1]);
            a[2] = _mm256_add_ps(a[2], d);
            a[3] = _mm256_fmadd_ps(d, d, a[3]);
        }
    }
    for (int k = 0; k < 4; k++)
        out[k] = hsum(_mm256_add_ps(acc[0][k], acc[1][k]));
}

static void patch_ssd_avx2(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                           const float w[4], int ps, float out[2])
{
    WEIGHTS;
    __m256 sd[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() }, sq[2] = { sd[0], sd[0] };
    for (int y = 0; y < ps; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1, *p0 = i0 + y * s0;
        int x = 0, k = y & 1;
        for (; x < full; x += 8) {
            __m256 d = DIFF8(x);
            sd[k] = _mm256_add_ps(sd[k], d);
            sq[k] = _mm256_fmadd_ps(d, d, sq[k]);
        }
        if (x < ps) {
            __m256 d = DIFFM(x, m);
            sd[k] = _mm256_add_ps(sd[k], d);
            sq[k] = _mm256_fmadd_ps(d, d, sq[k]);
        }
    }
    out[0] = hsum(_mm256_add_ps(sd[0], sd[1]));
    out[1] = hsum(_mm256_add_ps(sq[0], sq[1]));
}

/* Masked-out lanes of the tail vote 0 into full-width read-modify-writes:
 * masked stores are microcoded on some AMD cores and were half the vote. */
static inline void vote8(__m256 d, float *a, ptrdiff_t sa, __m256 u, __m256 v, __m256 keep)
{
    const __m256 one = _mm256_set1_ps(1.f), abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    /* reciprocal estimate + one Newton step (~1e-7 relative): a division
     * per row was a third of the vote */
    __m256 q = _mm256_max_ps(one, _mm256_and_ps(d, abs)), r = _mm256_rcp_ps(q);
    __m256 c = _mm256_and_ps(keep, _mm256_mul_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(2.f))));
    _mm256_storeu_ps(a, _mm256_fmadd_ps(c, u, _mm256_loadu_ps(a)));
    _mm256_storeu_ps(a + sa, _mm256_fmadd_ps(c, v, _mm256_loadu_ps(a + sa)));
    _mm256_storeu_ps(a + 2 * sa, _mm256_add_ps(c, _mm256_loadu_ps(a + 2 * sa)));
}

static void patch_vote_avx2(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                            const float w[4], int ps, int rows, float u, float v, float *acc,
                            ptrdiff_t sa)
{
    WEIGHTS;
    const __m256 vu = _mm256_set1_ps(u), vv = _mm256_set1_ps(v);
    const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1)), keep = _mm256_castsi256_ps(m);
    for (int y = 0; y < rows; y++) {
        const float *r0 = i1 + y * s1, *r1 = r0 + s1, *p0 = i0 + y * s0;
        float *a = acc + y * s0;
        int x = 0;
        for (; x < full; x += 8)
            vote8(DIFF8(x), a + x, sa, vu, vv, all);
        if (x < ps)
            vote8(DIFFM(x, m), a + x, sa, vu, vv, keep);
    }
}

#define LD(p) _mm256_loadu_ps(p)

static void scharr_row_avx2(const float *ru, const float *r, const float *rd, float *gx,
                            float *gy, int w)
{
    const __m256 k3 = _mm256_set1_ps(3.f), k10 = _mm256_set1_ps(10.f), k32 = _mm256_set1_ps(1.f / 32.f);
    int x = 1;
    for (; x + 8 <= w - 1; x += 8) {
        __m256 dx = _mm256_add_ps(_mm256_sub_ps(LD(ru + x + 1), LD(ru + x - 1)),
                                  _mm256_sub_ps(LD(rd + x + 1), LD(rd + x - 1)));
        __m256 dy = _mm256_add_ps(_mm256_sub_ps(LD(rd + x - 1), LD(ru + x - 1)),
                                  _mm256_sub_ps(LD(rd + x + 1), LD(ru + x + 1)));
        __m256 cx = _mm256_sub_ps(LD(r + x + 1), LD(r + x - 1)), cy = _mm256_sub_ps(LD(rd + x), LD(ru + x));
        _mm256_storeu_ps(gx + x, _mm256_mul_ps(_mm256_fmadd_ps(k3, dx, _mm256_mul_ps(k10, cx)), k32));
        _mm256_storeu_ps(gy + x, _mm256_mul_ps(_mm256_fmadd_ps(k3, dy, _mm256_mul_ps(k10, cy)), k32));
    }
    for (; x < w - 1; x++) {
        gx[x] = (3.f * ((ru[x + 1] - ru[x - 1]) + (rd[x + 1] - rd[x - 1])) + 10.f * (r[x + 1] - r[x - 1])) * (1.f / 32.f);
        gy[x] = (3.f * ((rd[x - 1] - ru[x - 1]) + (rd[x + 1] - ru[x + 1])) + 10.f * (rd[x] - ru[x])) * (1.f / 32.f);
    }
}

static void tensor_row_avx2(const float *gx, const float *gy, float *col, int w)
{
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256 a = LD(gx + x), b = LD(gy + x);
        _mm256_storeu_ps(col + x, _mm256_fmadd_ps(a, a, LD(col + x)));
        _mm256_storeu_ps(col + w + x, _mm256_fmadd_ps(a, b, LD(col + w + x)));
        _mm256_storeu_ps(col + 2 * w + x, _mm256_fmadd_ps(b, b, LD(col + 2 * w + x)));
        _mm256_storeu_ps(col + 3 * w + x, _mm256_add_ps(a, LD(col + 3 * w + x)));
        _mm256_storeu_ps(col + 4 * w + x, _mm256_add_ps(b, LD(col + 4 * w + x)));
    }
    for (; x < w; x++) {
        col[x] += gx[x] * gx[x];
        col[w + x] += gx[x] * gy[x];
        col[2 * w + x] += gy[x] * gy[x];
        col[3 * w + x] += gx[x];
        col[4 * w + x] += gy[x];
    }
}

static void divide_row_avx2(const float *au, const float *av, const float *aw, float *u, float *v,
                            int n)
{
    const __m256 one = _mm256_set1_ps(1.f);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 r = _mm256_div_ps(one, LD(aw + x));
        _mm256_storeu_ps(u + x, _mm256_mul_ps(LD(au + x), r));
        _mm256_storeu_ps(v + x, _mm256_mul_ps(LD(av + x), r));
    }
    for (; x < n; x++) {
        float r = 1.f / aw[x];
        u[x] = au[x] * r;
        v[x] = av[x] * r;
    }
}

static void down2_row_avx2(const float *a, const float *b, float *dst, int n)
{
    const __m256 q = _mm256_set1_ps(0.25f);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 s0 = _mm256_add_ps(LD(a + 2 * x), LD(b + 2 * x));          /* pixels 2x .. 2x+7 */
        __m256 s1 = _mm256_add_ps(LD(a + 2 * x + 8), LD(b + 2 * x + 8));  /* 2x+8 .. 2x+15 */
        /* pairwise sums, lanes (0 1 4 5 | 2 3 6 7) of the 8 outputs, then in order */
        __m256 h = _mm256_hadd_ps(s0, s1);
        h = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(h), 0xd8));
        _mm256_storeu_ps(dst + x, _mm256_mul_ps(q, h));
    }
    for (; x < n; x++)
        dst[x] = 0.25f * ((a[2 * x] + b[2 * x]) + (a[2 * x + 1] + b[2 * x + 1]));
}

static void lerp_row_avx2(const float *a, const float *b, float t, float scale, float *dst, int n)
{
    const __m256 vt = _mm256_set1_ps(t), vs = _mm256_set1_ps(scale);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 va = LD(a + x);
        _mm256_storeu_ps(dst + x, _mm256_mul_ps(vs, _mm256_fmadd_ps(vt, _mm256_sub_ps(LD(b + x), va), va)));
    }
    for (; x < n; x++)
        dst[x] = scale * (a[x] + t * (b[x] - a[x]));
}

/* @r seen from column @x on: the reference kernels then run the tails. */
static VgVarRow row_at(const VgVarRow *r, int x)
{
    return (VgVarRow){ r->ix + x, r->iy + x, r->iz + x, r->ixx + x, r->ixy + x, r->iyy + x,
                       r->ixz + x, r->iyz + x, r->ni + x, r->dm + x, r->gm + x, r->ngx + x,
                       r->ngy + x, r->u + x, r->v + x, r->du + x, r->dv + x, r->sx + x,
                       r->sy + x, r->a12 + x, r->b1 + x, r->b2 + x, r->ia11 + x, r->ia22 + x };
}

static void var_smooth_avx2(const VgVarRow *r, ptrdiff_t pw, int w, int last_row, float alpha,
                            float eps2)
{
    const __m256 va = _mm256_set1_ps(alpha), ve = _mm256_set1_ps(eps2);
    const __m256 ym = last_row ? _mm256_setzero_ps() : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    int x = 0;
    for (; x + 8 <= w - 1; x += 8) {
        __m256 u0 = _mm256_add_ps(LD(r->u + x), LD(r->du + x));
        __m256 v0 = _mm256_add_ps(LD(r->v + x), LD(r->dv + x));
        __m256 ux = _mm256_sub_ps(_mm256_add_ps(LD(r->u + x + 1), LD(r->du + x + 1)), u0);
        __m256 vx = _mm256_sub_ps(_mm256_add_ps(LD(r->v + x + 1), LD(r->dv + x + 1)), v0);
        __m256 uy = _mm256_and_ps(ym, _mm256_sub_ps(_mm256_add_ps(LD(r->u + x + pw), LD(r->du + x + pw)), u0));
        __m256 vy = _mm256_and_ps(ym, _mm256_sub_ps(_mm256_add_ps(LD(r->v + x + pw), LD(r->dv + x + pw)), v0));
        __m256 q = _mm256_fmadd_ps(ux, ux, _mm256_fmadd_ps(uy, uy, _mm256_fmadd_ps(vx, vx,
                   _mm256_fmadd_ps(vy, vy, ve))));
        __m256 sw = _mm256_div_ps(va, _mm256_sqrt_ps(q));
        _mm256_storeu_ps(r->sx + x, sw);
        _mm256_storeu_ps(r->sy + x, _mm256_and_ps(ym, sw));
    }
    if (x < w) {
        /* the tail through the reference code: its "last column" test is
         * relative to the width it is given, which stays the row's end */
        VgVarRow t = row_at(r, x);
        VgFlowDsp c;
        vg_flow_dsp_init_c(&c);
        c.var_smooth(&t, pw, w - x, last_row, alpha, eps2);
    }
}

static void var_data_avx2(const VgVarRow *r, ptrdiff_t pw, int w, float eps2)
{
    const __m256 ve = _mm256_set1_ps(eps2), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256 du = LD(r->du + x), dv = LD(r->dv + x);
        __m256 Ix = LD(r->ix + x), Iy = LD(r->iy + x), Iz = LD(r->iz + x);
        __m256 Ixx = LD(r->ixx + x), Ixy = LD(r->ixy + x), Iyy = LD(r->iyy + x);
        __m256 Ixz = LD(r->ixz + x), Iyz = LD(r->iyz + x), ngx = LD(r->ngx + x), ngy = LD(r->ngy + x);
        __m256 rr = _mm256_fmadd_ps(Iy, dv, _mm256_fmadd_ps(Ix, du, Iz));
        __m256 pd = _mm256_div_ps(LD(r->dm + x),
                    _mm256_sqrt_ps(_mm256_fmadd_ps(_mm256_mul_ps(rr, rr), LD(r->ni + x), ve)));
        __m256 rx = _mm256_fmadd_ps(Ixy, dv, _mm256_fmadd_ps(Ixx, du, Ixz));
        __m256 ry = _mm256_fmadd_ps(Iyy, dv, _mm256_fmadd_ps(Ixy, du, Iyz));
        __m256 pg = _mm256_div_ps(LD(r->gm + x), _mm256_sqrt_ps(_mm256_fmadd_ps(_mm256_mul_ps(rx, rx), ngx,
                    _mm256_fmadd_ps(_mm256_mul_ps(ry, ry), ngy, ve))));
        __m256 pgx = _mm256_mul_ps(pg, ngx), pgy = _mm256_mul_ps(pg, ngy);
        __m256 sr = LD(r->sx + x), sl = LD(r->sx + x - 1), sd = LD(r->sy + x), su = LD(r->sy + x - pw);
        __m256 sw = _mm256_add_ps(_mm256_add_ps(sr, sl), _mm256_add_ps(sd, su));
        const float *u = r->u + x, *v = r->v + x;
        __m256 u0 = LD(u), v0 = LD(v);
        __m256 fu = _mm256_fmadd_ps(sr, _mm256_sub_ps(LD(u + 1), u0), _mm256_fmadd_ps(sl, _mm256_sub_ps(LD(u - 1), u0),
                    _mm256_fmadd_ps(sd, _mm256_sub_ps(LD(u + pw), u0), _mm256_mul_ps(su, _mm256_sub_ps(LD(u - pw), u0)))));
        __m256 fv = _mm256_fmadd_ps(sr, _mm256_sub_ps(LD(v + 1), v0), _mm256_fmadd_ps(sl, _mm256_sub_ps(LD(v - 1), v0),
                    _mm256_fmadd_ps(sd, _mm256_sub_ps(LD(v + pw), v0), _mm256_mul_ps(su, _mm256_sub_ps(LD(v - pw), v0)))));
        __m256 pdx = _mm256_mul_ps(pd, Ix), pdy = _mm256_mul_ps(pd, Iy);
        __m256 gxx = _mm256_mul_ps(pgx, Ixx), gxy = _mm256_mul_ps(pgy, Ixy);   /* pgx Ixx, pgy Ixy */
        __m256 hxy = _mm256_mul_ps(pgx, Ixy), hyy = _mm256_mul_ps(pgy, Iyy);   /* pgx Ixy, pgy Iyy */
        __m256 a11 = _mm256_add_ps(_mm256_fmadd_ps(pdx, Ix, _mm256_fmadd_ps(gxx, Ixx, _mm256_mul_ps(gxy, Ixy))), sw);
        __m256 a22 = _mm256_add_ps(_mm256_fmadd_ps(pdy, Iy, _mm256_fmadd_ps(hxy, Ixy, _mm256_mul_ps(hyy, Iyy))), sw);
        _mm256_storeu_ps(r->a12 + x, _mm256_fmadd_ps(pdx, Iy, _mm256_fmadd_ps(gxx, Ixy, _mm256_mul_ps(gxy, Iyy))));
        _mm256_storeu_ps(r->b1 + x, _mm256_fnmadd_ps(pdx, Iz, _mm256_fnmadd_ps(gxx, Ixz, _mm256_fnmadd_ps(gxy, Iyz, fu))));
        _mm256_storeu_ps(r->b2 + x, _mm256_fnmadd_ps(pdy, Iz, _mm256_fnmadd_ps(hxy, Ixz, _mm256_fnmadd_ps(hyy, Iyz, fv))));
        _mm256_storeu_ps(r->ia11 + x, _mm256_and_ps(_mm256_cmp_ps(a11, zero, _CMP_GT_OQ), _mm256_div_ps(one, a11)));
        _mm256_storeu_ps(r->ia22 + x, _mm256_and_ps(_mm256_cmp_ps(a22, zero, _CMP_GT_OQ), _mm256_div_ps(one, a22)));
    }
    if (x < w) {
        /* the tail through the reference code on shifted pointers */
        VgVarRow t = row_at(r, x);
        VgFlowDsp c;
        vg_flow_dsp_init_c(&c);
        c.var_data(&t, pw, w - x, eps2);
    }
}

/* Updates all 8 pixels from the other colour's values and keeps those of
 * the colour being swept: exact, since a colour only reads the other one. */
static void sor_row_avx2(const VgVarRow *r, ptrdiff_t pw, int w, int parity, float omega)
{
    float *du = r->du, *dv = r->dv;
    const float *sx = r->sx, *sy = r->sy;
    const __m256 om = _mm256_set1_ps(omega);
    /* lanes x = 8k + lane with lane & 1 == parity */
    const __m256 keep = parity ? _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1))
                               : _mm256_castsi256_ps(_mm256_setr_epi32(-1, 0, -1, 0, -1, 0, -1, 0));
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256 s0 = LD(sx + x), sl = LD(sx + x - 1), sd = LD(sy + x), st = LD(sy + x - pw);
        __m256 u = LD(du + x), v = LD(dv + x);
        __m256 su = _mm256_fmadd_ps(s0, LD(du + x + 1), _mm256_fmadd_ps(sl, LD(du + x - 1),
                    _mm256_fmadd_ps(sd, LD(du + x + pw), _mm256_mul_ps(st, LD(du + x - pw)))));
        __m256 sv = _mm256_fmadd_ps(s0, LD(dv + x + 1), _mm256_fmadd_ps(sl, LD(dv + x - 1),
                    _mm256_fmadd_ps(sd, LD(dv + x + pw), _mm256_mul_ps(st, LD(dv + x - pw)))));
        __m256 a12 = LD(r->a12 + x);
        __m256 nu = _mm256_mul_ps(_mm256_fnmadd_ps(a12, v, _mm256_add_ps(LD(r->b1 + x), su)), LD(r->ia11 + x));
        __m256 u1 = _mm256_fmadd_ps(om, _mm256_sub_ps(nu, u), u);
        __m256 nv = _mm256_mul_ps(_mm256_fnmadd_ps(a12, u1, _mm256_add_ps(LD(r->b2 + x), sv)), LD(r->ia22 + x));
        __m256 v1 = _mm256_fmadd_ps(om, _mm256_sub_ps(nv, v), v);
        _mm256_storeu_ps(du + x, _mm256_blendv_ps(u, u1, keep));
        _mm256_storeu_ps(dv + x, _mm256_blendv_ps(v, v1, keep));
    }
    if (x < w) {
        /* the tail through the reference code on shifted pointers; x is a
         * multiple of 8, so the colour's parity is unchanged */
        VgVarRow t = row_at(r, x);
        VgFlowDsp c;
        vg_flow_dsp_init_c(&c);
        c.sor_row(&t, pw, w - x, parity, omega);
    }
}

void vg_flow_dsp_init_avx2(VgFlowDsp *d)
{
    d->patch_grad = patch_grad_avx2;
    d->patch_ssd = patch_ssd_avx2;
    d->patch_vote = patch_vote_avx2;
    d->scharr_row = scharr_row_avx2;
    d->tensor_row = tensor_row_avx2;
    d->divide_row = divide_row_avx2;
    d->down2_row = down2_row_avx2;
    d->lerp_row = lerp_row_avx2;
    d->var_smooth = var_smooth_avx2;
    d->var_data = var_data_avx2;
    d->sor_row = sor_row_avx2;
}
