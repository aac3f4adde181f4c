/*
 * AVX2+FMA Winograd transforms (wino_* in engine/ops/dsp.h), 8 tiles per
 * vector. F(4x4): tiles sit 4 columns apart in a row, so a 4x8 in-lane
 * transpose turns the 32 floats under 8 tiles into "column c of every tile"
 * vectors (and back for the output); with the two 128-bit halves loaded as
 * tiles 0-3 | 4-7 the lanes come out in tile order and the transformed
 * values store contiguously. F(2x2): the same with an even/odd split.
 */
#include <immintrin.h>
#include <stdint.h>

#include "engine/ops/conv_winograd.h"
#include "engine/x86/ops.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m256i lane_mask(int n)
{
    static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

static ALWAYS_INLINE __m256 load2(const float *lo, const float *hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}

/* k[c] = row[4 t + c] for tiles t = 0..7, c < 4 */
static ALWAYS_INLINE void columns(__m256 k[4], const float *row)
{
    const __m256 a0 = load2(row, row + 16), a1 = load2(row + 4, row + 20);
    const __m256 a2 = load2(row + 8, row + 24), a3 = load2(row + 12, row + 28);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    k[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    k[1] = _mm256_shuffle_ps(t0, t2, 0xee);
    k[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    k[3] = _mm256_shuffle_ps(t1, t3, 0xee);
}

/* o = BT d */
static ALWAYS_INLINE void bt6(__m256 o[6], const __m256 d[6])
{
    const __m256 c2 = _mm256_set1_ps(2.0f), c4 = _mm256_set1_ps(4.0f);
    const __m256 c5 = _mm256_set1_ps(5.0f);
    const __m256 s34 = _mm256_add_ps(d[3], d[4]), d43 = _mm256_sub_ps(d[4], d[3]);
    const __m256 s12 = _mm256_add_ps(d[1], d[2]), d12 = _mm256_sub_ps(d[1], d[2]);
    const __m256 d42 = _mm256_sub_ps(d[4], d[2]), d31 = _mm256_sub_ps(d[3], d[1]);
    o[0] = _mm256_fmadd_ps(c4, d[0], _mm256_fnmadd_ps(c5, d[2], d[4]));
    o[1] = _mm256_fnmadd_ps(c4, s12, s34);
    o[2] = _mm256_fmadd_ps(c4, d12, d43);
    o[3] = _mm256_fmadd_ps(c2, d31, d42);
    o[4] = _mm256_fnmadd_ps(c2, d31, d42);
    o[5] = _mm256_fmadd_ps(c4, d[1], _mm256_fnmadd_ps(c5, d[3], d[5]));
}

/* o = AT m */
static ALWAYS_INLINE void at6(__m256 o[4], const __m256 m0, const __m256 m1, const __m256 m2,
                              const __m256 m3, const __m256 m4, const __m256 m5)
{
    const __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2);
    const __m256 c = _mm256_add_ps(m3, m4), d = _mm256_sub_ps(m3, m4);
    o[0] = _mm256_add_ps(_mm256_add_ps(m0, a), c);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), m5);
}

/* o = G (a, b, d) */
static ALWAYS_INLINE void g6(__m256 o[6], const __m256 a, const __m256 b, const __m256 d)
{
    const __m256 s6 = _mm256_set1_ps(-1.0f / 6), s12 = _mm256_set1_ps(1.0f / 12);
    const __m256 s24 = _mm256_set1_ps(1.0f / 24), d6 = _mm256_mul_ps(d, _mm256_set1_ps(1.0f / 6));
    const __m256 ad = _mm256_add_ps(a, d);
    o[0] = _mm256_mul_ps(a, _mm256_set1_ps(0.25f));
    o[1] = _mm256_mul_ps(_mm256_add_ps(ad, b), s6);
    o[2] = _mm256_mul_ps(_mm256_sub_ps(ad, b), s6);
    o[3] = _mm256_fmadd_ps(a, s24, _mm256_fmadd_ps(b, s12, d6));
    o[4] = _mm256_fmadd_ps(a, s24, _mm256_fnmadd_ps(b, s12, d6));
    o[5] = d;
}

/* 8 kernels per step: a gather reads tap e of each (kernels are 9 floats
 * apart), which is cheaper than a 9x8 shuffle transpose. */
static void wino_weights43_avx2(float *u, ptrdiff_t us, const float *g, ptrdiff_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    ptrdiff_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 e[9], t[3][6];
        for (int i = 0; i < 9; i++)
            e[i] = _mm256_i32gather_ps(g + 9 * k + i, idx, 4);
        for (int c = 0; c < 3; c++)
            g6(t[c], e[c], e[3 + c], e[6 + c]); /* column c of G g */
        for (int i = 0; i < 6; i++) {
            __m256 o[6];
            g6(o, t[0][i], t[1][i], t[2][i]);
            for (int j = 0; j < 6; j++)
                _mm256_storeu_ps(u + (i * 6 + j) * us + k, o[j]);
        }
    }
    if (k < n)
        vg_wino_weights43_c(u + k, us, g + 9 * k, n - k);
}

static void wino_in43_avx2(float *v, ptrdiff_t vs, const float *x, ptrdiff_t xrs, int n)
{
    for (int t0 = 0; t0 < n; t0 += 8) {
        __m256 h[6][6];
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            const float *row = x + r * xrs + 4 * t0;
            __m256 d[6], k[4];
            columns(d, row);
            columns(k, row + 4);
            d[4] = k[0];
            d[5] = k[1];
            bt6(h[r], d);
        }
        const int full = n - t0 >= 8;
        const __m256i mask = lane_mask(full ? 8 : n - t0);
        /* unrolled so that h and o stay in registers or plain spills (a
         * loop copying h columns through the stack stalled on it) */
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) {
            const __m256 d[6] = { h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j] };
            __m256 o[6];
            bt6(o, d);
            float *dst = v + j * vs + t0;
            if (full) {
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    _mm256_storeu_ps(dst + i * 6 * vs, o[i]);
            } else {
                for (int i = 0; i < 6; i++)
                    _mm256_maskstore_ps(dst + i * 6 * vs, mask, o[i]);
            }
        }
    }
}

static void wino_out43_avx2(float *y, ptrdiff_t ys, const float *m, ptrdiff_t ms, int n, int rows,
                          int cols, float bias)
{
    const __m256 vb = _mm256_set1_ps(bias);
    for (int t0 = 0; t0 < n; t0 += 8) {
        const int nt = n - t0 < 8 ? n - t0 : 8;
        const __m256i mask = lane_mask(nt);
        __m256 s[6][4];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256 mi[6];
#pragma GCC unroll 6
            for (int j = 0; j < 6; j++) {
                const float *src = m + (i * 6 + j) * ms + t0;
                mi[j] = nt == 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask);
            }
            at6(s[i], mi[0], mi[1], mi[2], mi[3], mi[4], mi[5]);
        }
        __m256 o[4][4]; /* o[l][k]: column l, row k */
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
            at6(o[l], s[0][l], s[1][l], s[2][l], s[3][l], s[4][l], s[5][l]);
        /* columns this block writes in every row */
        const int c0 = 4 * t0, width = cols - c0 < 4 * nt ? cols - c0 : 4 * nt;
        for (int k = 0; k < rows; k++) {
            const __m256 o0 = _mm256_add_ps(o[0][k], vb), o1 = _mm256_add_ps(o[1][k], vb);
            const __m256 o2 = _mm256_add_ps(o[2][k], vb), o3 = _mm256_add_ps(o[3][k], vb);
            const __m256 t0v = _mm256_unpacklo_ps(o0, o1), t1v = _mm256_unpackhi_ps(o0, o1);
            const __m256 t2v = _mm256_unpacklo_ps(o2, o3), t3v = _mm256_unpackhi_ps(o2, o3);
            const __m256 r0 = _mm256_shuffle_ps(t0v, t2v, 0x44); /* tiles 0 | 4 */
            const __m256 r1 = _mm256_shuffle_ps(t0v, t2v, 0xee); /* 1 | 5 */
            const __m256 r2 = _mm256_shuffle_ps(t1v, t3v, 0x44); /* 2 | 6 */
            const __m256 r3 = _mm256_shuffle_ps(t1v, t3v, 0xee); /* 3 | 7 */
            const __m256 q0 = _mm256_permute2f128_ps(r0, r1, 0x20);
            const __m256 q1 = _mm256_permute2f128_ps(r2, r3, 0x20);
            const __m256 q2 = _mm256_permute2f128_ps(r0, r1, 0x31);
            const __m256 q3 = _mm256_permute2f128_ps(r2, r3, 0x31);
            float *dst = y + k * ys + c0;
            if (width == 32) {
                _mm256_storeu_ps(dst, q0);
                _mm256_storeu_ps(dst + 8, q1);
                _mm256_storeu_ps(dst + 16, q2);
                _mm256_storeu_ps(dst + 24, q3);
            } else {
                float buf[32];
                _mm256_storeu_ps(buf, q0);
                _mm256_storeu_ps(buf + 8, q1);
                _mm256_storeu_ps(buf + 16, q2);
                _mm256_storeu_ps(buf + 24, q3);
                for (int c = 0; c < width; c++)
                    dst[c] = buf[c];
            }
        }
    }
}

/* ------------------------------------------------------------ F(2x2, 3x3) */

static void wino_weights23_avx2(float *u, ptrdiff_t us, const float *g, ptrdiff_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256 half = _mm256_set1_ps(0.5f);
    ptrdiff_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 e[9], t[4][3];
        for (int i = 0; i < 9; i++)
            e[i] = _mm256_i32gather_ps(g + 9 * k + i, idx, 4);
        for (int c = 0; c < 3; c++) {
            const __m256 a = e[c], b = e[3 + c], d = e[6 + c], ad = _mm256_add_ps(a, d);
            t[0][c] = a;
            t[1][c] = _mm256_mul_ps(_mm256_add_ps(ad, b), half);
            t[2][c] = _mm256_mul_ps(_mm256_sub_ps(ad, b), half);
            t[3][c] = d;
        }
        for (int i = 0; i < 4; i++) {
            const __m256 a = t[i][0], b = t[i][1], d = t[i][2], ad = _mm256_add_ps(a, d);
            float *ui = u + i * 4 * us + k;
            _mm256_storeu_ps(ui, a);
            _mm256_storeu_ps(ui + us, _mm256_mul_ps(_mm256_add_ps(ad, b), half));
            _mm256_storeu_ps(ui + 2 * us, _mm256_mul_ps(_mm256_sub_ps(ad, b), half));
            _mm256_storeu_ps(ui + 3 * us, d);
        }
    }
    if (k < n)
        vg_wino_weights23_c(u + k, us, g + 9 * k, n - k);
}

/* o = BT d, 4 points */
static ALWAYS_INLINE void bt4(__m256 o[4], const __m256 d0, const __m256 d1, const __m256 d2,
                              const __m256 d3)
{
    o[0] = _mm256_sub_ps(d0, d2);
    o[1] = _mm256_add_ps(d1, d2);
    o[2] = _mm256_sub_ps(d2, d1);
    o[3] = _mm256_sub_ps(d1, d3);
}

static void wino_in23_avx2(float *v, ptrdiff_t vs, const float *x, ptrdiff_t xrs, int n)
{
    for (int t0 = 0; t0 < n; t0 += 8) {
        __m256 h[4][4];
        for (int r = 0; r < 4; r++) {
            const float *row = x + r * xrs + 2 * t0;
            /* halves as columns 0-3 | 8-11 and 4-7 | 12-15: the even/odd
             * split then lists tiles 0..7 in order */
            const __m256 a = load2(row, row + 8), b = load2(row + 4, row + 12);
            const __m256 c = load2(row + 2, row + 10), d = load2(row + 6, row + 14);
            bt4(h[r], _mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xdd),
                _mm256_shuffle_ps(c, d, 0x88), _mm256_shuffle_ps(c, d, 0xdd));
        }
        const int full = n - t0 >= 8;
        const __m256i mask = lane_mask(full ? 8 : n - t0);
        for (int j = 0; j < 4; j++) {
            __m256 o[4];
            bt4(o, h[0][j], h[1][j], h[2][j], h[3][j]);
            for (int i = 0; i < 4; i++) {
                float *dst = v + (i * 4 + j) * vs + t0;
                if (full)
                    _mm256_storeu_ps(dst, o[i]);
                else
                    _mm256_maskstore_ps(dst, mask, o[i]);
            }
        }
    }
}

static void wino_out23_avx2(float *y, ptrdiff_t ys, const float *m, ptrdiff_t ms, int n, int rows,
                            int cols, float bias)
{
    const __m256 vb = _mm256_set1_ps(bias);
    for (int t0 = 0; t0 < n; t0 += 8) {
        const int nt = n - t0 < 8 ? n - t0 : 8;
        const __m256i mask = lane_mask(nt);
        __m256 s[4][2];
        for (int i = 0; i < 4; i++) {
            __m256 mi[4];
            for (int j = 0; j < 4; j++) {
                const float *src = m + (i * 4 + j) * ms + t0;
                mi[j] = nt == 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask);
            }
            s[i][0] = _mm256_add_ps(_mm256_add_ps(mi[0], mi[1]), mi[2]);
            s[i][1] = _mm256_sub_ps(_mm256_sub_ps(mi[1], mi[2]), mi[3]);
        }
        const int c0 = 2 * t0, width = cols - c0 < 2 * nt ? cols - c0 : 2 * nt;
        for (int k = 0; k < rows; k++) {
            __m256 o[2];
            for (int l = 0; l < 2; l++)
                o[l] = k == 0 ? _mm256_add_ps(_mm256_add_ps(s[0][l], s[1][l]), s[2][l])
                              : _mm256_sub_ps(_mm256_sub_ps(s[1][l], s[2][l]), s[3][l]);
            o[0] = _mm256_add_ps(o[0], vb);
            o[1] = _mm256_add_ps(o[1], vb);
            const __m256 lo = _mm256_unpacklo_ps(o[0], o[1]); /* tiles 0 1 | 4 5 */
            const __m256 hi = _mm256_unpackhi_ps(o[0], o[1]); /* tiles 2 3 | 6 7 */
            const __m256 q0 = _mm256_permute2f128_ps(lo, hi, 0x20);
            const __m256 q1 = _mm256_permute2f128_ps(lo, hi, 0x31);
            float *dst = y + k * ys + c0;
            if (width == 16) {
                _mm256_storeu_ps(dst, q0);
                _mm256_storeu_ps(dst + 8, q1);
            } else {
                float buf[16];
                _mm256_storeu_ps(buf, q0);
                _mm256_storeu_ps(buf + 8, q1);
                for (int c = 0; c < width; c++)
                    dst[c] = buf[c];
            }
        }
    }
}

/* A 6 x 16 register block of m over a KC-deep slice of k: 12 accumulators,
 * two loads of v and six broadcasts of u per 12 FMAs. Slices keep the
 * 16 columns of v they stream (KC * 64 bytes) and u's rows in L1 while the
 * row blocks go by. Each slice sums from zero and is then added to m (the
 * C reference's order): error ~ (KC + k / KC) eps rather than k eps. */
#define GEMM_KC VG_WINO_GEMM_KC

static ALWAYS_INLINE void gemm_block(const int rows, float *m, ptrdiff_t ldm, const float *u,
                                     ptrdiff_t ldu, const float *v, ptrdiff_t ldv, int k,
                                     int first)
{
    __m256 a[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++)
        a[r][0] = a[r][1] = _mm256_setzero_ps();
    for (int j = 0; j < k; j++) {
        const __m256 v0 = _mm256_loadu_ps(v + j * ldv), v1 = _mm256_loadu_ps(v + j * ldv + 8);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            const __m256 b = _mm256_broadcast_ss(u + r * ldu + j);
            a[r][0] = _mm256_fmadd_ps(b, v0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(b, v1, a[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        if (!first) {
            a[r][0] = _mm256_add_ps(_mm256_loadu_ps(m + r * ldm), a[r][0]);
            a[r][1] = _mm256_add_ps(_mm256_loadu_ps(m + r * ldm + 8), a[r][1]);
        }
        _mm256_storeu_ps(m + r * ldm, a[r][0]);
        _mm256_storeu_ps(m + r * ldm + 8, a[r][1]);
    }
}

static void wino_gemm_avx2(float *m, ptrdiff_t ldm, const float *u, ptrdiff_t ldu,
                           const float *v, ptrdiff_t ldv, int rows, int cols, int k)
{
    for (int j0 = 0; j0 < k; j0 += GEMM_KC) {
        const int kc = k - j0 < GEMM_KC ? k - j0 : GEMM_KC, first = j0 == 0;
        for (int r0 = 0; r0 < rows; r0 += 6) {
            const float *ur = u + r0 * ldu + j0;
            for (int c0 = 0; c0 < cols; c0 += 16) {
                float *mb = m + r0 * ldm + c0;
                const float *vb = v + j0 * ldv + c0;
                switch (rows - r0) {
                case 1: gemm_block(1, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                case 2: gemm_block(2, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                case 3: gemm_block(3, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                case 4: gemm_block(4, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                case 5: gemm_block(5, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                default: gemm_block(6, mb, ldm, ur, ldu, vb, ldv, kc, first); break;
                }
            }
        }
    }
}

void vg_wino_dsp_init_avx2(VgOpsDsp *d)
{
    d->wino_weights[VG_WINO_F43] = wino_weights43_avx2;
    d->wino_in[VG_WINO_F43] = wino_in43_avx2;
    d->wino_out[VG_WINO_F43] = wino_out43_avx2;
    d->wino_weights[VG_WINO_F23] = wino_weights23_avx2;
    d->wino_in[VG_WINO_F23] = wino_in23_avx2;
    d->wino_out[VG_WINO_F23] = wino_out23_avx2;
    d->wino_gemm = wino_gemm_avx2;
}
