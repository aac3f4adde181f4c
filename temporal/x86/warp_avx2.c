/*
 * AVX2 versions of the per-pixel temporal kernels (temporal/warp.h).
 *
 * Same operations in the same order as the C references in temporal/warp.c,
 * and no FMA (the build's -std=c11 keeps GCC from contracting mul + add),
 * so the results are bit-identical to C: the threshold masks cannot differ.
 * Bilinear taps are fetched with 32-bit-offset gathers; planes whose offsets
 * do not fit in int32 (> 8 GiB) take the scalar path.
 */
#include <immintrin.h>
#include <stdint.h>

#include "temporal/warp.h"

void vg_warp_dsp_init_avx2(VgWarpDSP *dsp);

/* ------------------------------------------------ scalar (tails, huge planes) */

static inline float clamp_coord(float c, float hi)
{
    c = c > 0.0f ? c : 0.0f;
    return c < hi ? c : hi;
}

static inline float sample1(const float *p, float fx, float fy, int sw, int sh,
                            ptrdiff_t stride)
{
    const int ix = (int)fx, iy = (int)fy;
    const int ix1 = ix + 1 < sw ? ix + 1 : sw - 1;
    const int iy1 = iy + 1 < sh ? iy + 1 : sh - 1;
    const float ax = fx - (float)ix, ay = fy - (float)iy;
    const float *r0 = p + iy * stride, *r1 = p + iy1 * stride;
    const float top = r0[ix] + ax * (r0[ix1] - r0[ix]);
    const float bot = r1[ix] + ax * (r1[ix1] - r1[ix]);
    return top + ay * (bot - top);
}

static void warp_px(float *dst, const float *src, ptrdiff_t sstride, int sw, int sh,
                    const float *u, const float *v, int x0, int w, int y)
{
    const float hx = (float)(sw - 1), hy = (float)(sh - 1);
    for (int x = x0; x < w; x++)
        dst[x] = sample1(src, clamp_coord((float)x + u[x], hx), clamp_coord((float)y + v[x], hy),
                         sw, sh, sstride);
}

static void occ_px(uint8_t *occ, const float *uf, const float *vf, const float *ub,
                   const float *vb, ptrdiff_t bstride, int x0, int w, int h, int y)
{
    const float hx = (float)(w - 1), hy = (float)(h - 1);
    for (int x = x0; x < w; x++) {
        const float px = (float)x + uf[x], py = (float)y + vf[x];
        const int inside = px >= 0.0f && px <= hx && py >= 0.0f && py <= hy;
        const float cx = clamp_coord(px, hx), cy = clamp_coord(py, hy);
        const float bu = sample1(ub, cx, cy, w, h, bstride);
        const float bv = sample1(vb, cx, cy, w, h, bstride);
        const float su = uf[x] + bu, sv = vf[x] + bv;
        const float lhs = su * su + sv * sv;
        const float mf = uf[x] * uf[x] + vf[x] * vf[x];
        const float mb = bu * bu + bv * bv;
        const float rhs = 0.01f * (mf + mb) + 0.5f;
        occ[x] = !inside || !(lhs <= rhs);
    }
}

static int offsets_fit(ptrdiff_t stride, int w, int h)
{
    const int64_t s = stride < 0 ? -(int64_t)stride : (int64_t)stride;
    return s * (h - 1) + w <= INT32_MAX;
}

/* ------------------------------------------------ vector */

typedef struct Tap8 {
    __m256i o00, o01, o10, o11;
    __m256 ax, ay;
} Tap8;

/* max/min with the zero/limit as second operand: NaN -> 0, like clamp_coord */
static inline __m256 clamp8(__m256 c, __m256 hi)
{
    return _mm256_min_ps(_mm256_max_ps(c, _mm256_setzero_ps()), hi);
}

static inline Tap8 tap8(__m256 fx, __m256 fy, __m256i lastx, __m256i lasty, __m256i stride)
{
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i ix = _mm256_cvttps_epi32(fx), iy = _mm256_cvttps_epi32(fy);
    const __m256i ix1 = _mm256_min_epi32(_mm256_add_epi32(ix, one), lastx);
    const __m256i iy1 = _mm256_min_epi32(_mm256_add_epi32(iy, one), lasty);
    const __m256i r0 = _mm256_mullo_epi32(iy, stride), r1 = _mm256_mullo_epi32(iy1, stride);
    Tap8 t;
    t.o00 = _mm256_add_epi32(r0, ix);
    t.o01 = _mm256_add_epi32(r0, ix1);
    t.o10 = _mm256_add_epi32(r1, ix);
    t.o11 = _mm256_add_epi32(r1, ix1);
    t.ax = _mm256_sub_ps(fx, _mm256_cvtepi32_ps(ix));
    t.ay = _mm256_sub_ps(fy, _mm256_cvtepi32_ps(iy));
    return t;
}

static inline __m256 sample8(const float *p, const Tap8 *t)
{
    const __m256 p00 = _mm256_i32gather_ps(p, t->o00, 4);
    const __m256 p01 = _mm256_i32gather_ps(p, t->o01, 4);
    const __m256 p10 = _mm256_i32gather_ps(p, t->o10, 4);
    const __m256 p11 = _mm256_i32gather_ps(p, t->o11, 4);
    const __m256 top = _mm256_add_ps(p00, _mm256_mul_ps(t->ax, _mm256_sub_ps(p01, p00)));
    const __m256 bot = _mm256_add_ps(p10, _mm256_mul_ps(t->ax, _mm256_sub_ps(p11, p10)));
    return _mm256_add_ps(top, _mm256_mul_ps(t->ay, _mm256_sub_ps(bot, top)));
}

static void warp_row_avx2(float *dst, const float *src, ptrdiff_t sstride, int sw, int sh,
                          const float *u, const float *v, int w, int y)
{
    int x = 0;
    if (offsets_fit(sstride, sw, sh)) {
        const __m256 hx = _mm256_set1_ps((float)(sw - 1)), hy = _mm256_set1_ps((float)(sh - 1));
        const __m256i lastx = _mm256_set1_epi32(sw - 1), lasty = _mm256_set1_epi32(sh - 1);
        const __m256i stride = _mm256_set1_epi32((int32_t)sstride);
        const __m256 fy0 = _mm256_set1_ps((float)y), step = _mm256_set1_ps(8.0f);
        __m256 xs = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
        for (; x + 8 <= w; x += 8) {
            const __m256 fx = clamp8(_mm256_add_ps(xs, _mm256_loadu_ps(u + x)), hx);
            const __m256 fy = clamp8(_mm256_add_ps(fy0, _mm256_loadu_ps(v + x)), hy);
            const Tap8 t = tap8(fx, fy, lastx, lasty, stride);
            _mm256_storeu_ps(dst + x, sample8(src, &t));
            xs = _mm256_add_ps(xs, step); /* exact: x < 2^24 */
        }
    }
    warp_px(dst, src, sstride, sw, sh, u, v, x, w, y);
}

static void occlusion_row_avx2(uint8_t *occ, const float *uf, const float *vf,
                               const float *ub, const float *vb, ptrdiff_t bstride,
                               int w, int h, int y)
{
    int x = 0;
    if (offsets_fit(bstride, w, h)) {
        const __m256 zero = _mm256_setzero_ps();
        const __m256 hx = _mm256_set1_ps((float)(w - 1)), hy = _mm256_set1_ps((float)(h - 1));
        const __m256i lastx = _mm256_set1_epi32(w - 1), lasty = _mm256_set1_epi32(h - 1);
        const __m256i stride = _mm256_set1_epi32((int32_t)bstride);
        const __m256 fy0 = _mm256_set1_ps((float)y), step = _mm256_set1_ps(8.0f);
        const __m256 k001 = _mm256_set1_ps(0.01f), k05 = _mm256_set1_ps(0.5f);
        __m256 xs = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
        for (; x + 8 <= w; x += 8) {
            const __m256 u = _mm256_loadu_ps(uf + x), v = _mm256_loadu_ps(vf + x);
            const __m256 px = _mm256_add_ps(xs, u), py = _mm256_add_ps(fy0, v);
            /* ordered compares: NaN is not inside */
            __m256 in = _mm256_and_ps(_mm256_cmp_ps(px, zero, _CMP_GE_OQ),
                                      _mm256_cmp_ps(px, hx, _CMP_LE_OQ));
            in = _mm256_and_ps(in, _mm256_and_ps(_mm256_cmp_ps(py, zero, _CMP_GE_OQ),
                                                 _mm256_cmp_ps(py, hy, _CMP_LE_OQ)));
            const Tap8 t = tap8(clamp8(px, hx), clamp8(py, hy), lastx, lasty, stride);
            const __m256 bu = sample8(ub, &t), bv = sample8(vb, &t);
            const __m256 su = _mm256_add_ps(u, bu), sv = _mm256_add_ps(v, bv);
            const __m256 lhs = _mm256_add_ps(_mm256_mul_ps(su, su), _mm256_mul_ps(sv, sv));
            const __m256 mf = _mm256_add_ps(_mm256_mul_ps(u, u), _mm256_mul_ps(v, v));
            const __m256 mb = _mm256_add_ps(_mm256_mul_ps(bu, bu), _mm256_mul_ps(bv, bv));
            const __m256 rhs = _mm256_add_ps(_mm256_mul_ps(k001, _mm256_add_ps(mf, mb)), k05);
            const __m256 ok = _mm256_and_ps(in, _mm256_cmp_ps(lhs, rhs, _CMP_LE_OQ));
            /* occluded = not ok; narrow the 32-bit lane masks to bytes of 0/1 */
            const __m256i occ32 = _mm256_castps_si256(
                _mm256_andnot_ps(ok, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
            const __m128i o16 = _mm_packs_epi32(_mm256_castsi256_si128(occ32),
                                                _mm256_extracti128_si256(occ32, 1));
            const __m128i o8 = _mm_and_si128(_mm_packs_epi16(o16, o16), _mm_set1_epi8(1));
            _mm_storel_epi64((__m128i *)(occ + x), o8);
            xs = _mm256_add_ps(xs, step);
        }
    }
    occ_px(occ, uf, vf, ub, vb, bstride, x, w, h, y);
}

static void fuse_row_avx2(float *dst, const float *cur, const float *prev,
                          const uint8_t *mask, float weight, int w)
{
    const float keep = 1.0f - weight;
    const __m256 wt = _mm256_set1_ps(weight), kp = _mm256_set1_ps(keep);
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        const __m256 c = _mm256_loadu_ps(cur + x), p = _mm256_loadu_ps(prev + x);
        const __m256 f = _mm256_add_ps(_mm256_mul_ps(kp, c), _mm256_mul_ps(wt, p));
        const __m128i m8 = _mm_loadl_epi64((const __m128i *)(mask + x));
        const __m256i m = _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(m8), _mm256_setzero_si256());
        /* m set where mask == 0: take the fused value there */
        _mm256_storeu_ps(dst + x, _mm256_blendv_ps(c, f, _mm256_castsi256_ps(m)));
    }
    for (; x < w; x++)
        dst[x] = mask[x] ? cur[x] : keep * cur[x] + weight * prev[x];
}

void vg_warp_dsp_init_avx2(VgWarpDSP *dsp)
{
    dsp->warp_row = warp_row_avx2;
    dsp->occlusion_row = occlusion_row_avx2;
    dsp->fuse_row = fuse_row_avx2;
}
