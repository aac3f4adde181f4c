/*
 * AVX2+FMA direct convolution for few output channels (see conv_direct in
 * engine/ops/dsp.h). Registers hold the accumulators of R output channels
 * x V vectors of 8 columns; each tap loads V input vectors once and
 * broadcasts R weights, so the input is read once per R channels instead of
 * going through a column matrix and an sgemm with M = Cout (which OpenBLAS
 * blocks by 16-24 rows and runs at a few GFLOPS for Cout = 3..4).
 * R * V + V + 1 <= 16 ymm registers. Cout above 6 is split into chunks.
 */
#include <immintrin.h>
#include <stdint.h>

#include "engine/x86/ops.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m256i tail_mask(ptrdiff_t n)
{
    static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* Columns [0, 8 V) (the last vector masked by @mask when @masked) of R
 * channels whose weight rows start at @w (row length K). */
static ALWAYS_INLINE void block(float *y, ptrdiff_t ys, const VgConvDirectArgs *a,
                                const float *w, ptrdiff_t K, const float *x, int ci0, int ci1,
                                const int R, const int V, const int masked, __m256i mask)
{
    __m256 acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[r][v] = !ci0 ? _mm256_setzero_ps()
                      : masked && v == V - 1 ? _mm256_maskload_ps(y + r * ys + 8 * v, mask)
                                             : _mm256_loadu_ps(y + r * ys + 8 * v);
    w += ci0 * a->kh * a->kw;
    for (int ci = ci0; ci < ci1; ci++)
        for (int ky = 0; ky < a->kh; ky++) {
            const float *src = x + ci * a->xcs + ky * a->dh * a->xrs;
            /* ~150 input rows are live at once, too many streams for the
             * hardware prefetcher: fetch two blocks ahead */
            _mm_prefetch((const char *)(src + 16 * V), _MM_HINT_T0);
            if (V > 2)
                _mm_prefetch((const char *)(src + 16 * V + 16), _MM_HINT_T0);
            for (int kx = 0; kx < a->kw; kx++, src += a->dw, w++) {
                __m256 xv[4];
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    xv[v] = masked && v == V - 1 ? _mm256_maskload_ps(src + 8 * v, mask)
                                                 : _mm256_loadu_ps(src + 8 * v);
#pragma GCC unroll 6
                for (int r = 0; r < R; r++) {
                    const __m256 b = _mm256_broadcast_ss(w + r * K);
#pragma GCC unroll 4
                    for (int v = 0; v < V; v++)
                        acc[r][v] = _mm256_fmadd_ps(b, xv[v], acc[r][v]);
                }
            }
        }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            if (masked && v == V - 1)
                _mm256_maskstore_ps(y + r * ys + 8 * v, mask, acc[r][v]);
            else
                _mm256_storeu_ps(y + r * ys + 8 * v, acc[r][v]);
        }
}

/* Channels in slices of CI_SLICE: the partial sums go through y (same
 * order of additions), and the input rows one slice reads at once stay
 * few enough for L1 and the prefetchers. */
#define CI_SLICE 16

static ALWAYS_INLINE void rows(float *y, ptrdiff_t ys, const VgConvDirectArgs *a, const float *w,
                               ptrdiff_t n, const int R, const int V)
{
    const ptrdiff_t K = (ptrdiff_t)a->cin * a->kh * a->kw;
    const __m256i none = _mm256_setzero_si256();
    for (int ci0 = 0; ci0 < a->cin; ci0 += CI_SLICE) {
        const int ci1 = ci0 + CI_SLICE < a->cin ? ci0 + CI_SLICE : a->cin;
        ptrdiff_t j = 0;
        for (; j + 8 * V <= n; j += 8 * V)
            block(y + j, ys, a, w, K, a->x + j, ci0, ci1, R, V, 0, none);
        for (; j + 8 <= n; j += 8)
            block(y + j, ys, a, w, K, a->x + j, ci0, ci1, R, 1, 0, none);
        if (j < n)
            block(y + j, ys, a, w, K, a->x + j, ci0, ci1, R, 1, 1, tail_mask(n - j));
    }
}

#define ROWS_FN(R, V)                                                                  \
    static void rows_##R(float *y, ptrdiff_t ys, const VgConvDirectArgs *a,            \
                         const float *w, ptrdiff_t n)                                  \
    {                                                                                  \
        rows(y, ys, a, w, n, R, V);                                                    \
    }
ROWS_FN(1, 4)
ROWS_FN(2, 4)
ROWS_FN(3, 4)
ROWS_FN(4, 3)
ROWS_FN(5, 2)
ROWS_FN(6, 2)

void vg_conv_direct_avx2(float *y, ptrdiff_t ys, const VgConvDirectArgs *a, ptrdiff_t n)
{
    static void (*const fn[7])(float *, ptrdiff_t, const VgConvDirectArgs *, const float *,
                               ptrdiff_t) = { NULL, rows_1, rows_2, rows_3, rows_4, rows_5,
                                              rows_6 };
    const ptrdiff_t K = (ptrdiff_t)a->cin * a->kh * a->kw;
    /* balanced chunks of at most 6 channels */
    const int chunks = (a->cout + 5) / 6;
    for (int co = 0, c = 0; c < chunks; c++) {
        const int r = (a->cout - co + (chunks - c) - 1) / (chunks - c);
        fn[r](y + co * ys, ys, a, a->w + co * K, n);
        co += r;
    }
}
