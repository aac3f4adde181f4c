/*
 * AVX2 element-wise kernels; same results as the C reference in
 * engine/ops/dsp.c, bit for bit (no FMA contraction: v + bias and v * slope
 * round as in C). Tails use masked loads/stores so no scalar loop and no
 * reads past the end. conv_direct (engine/x86/conv_avx2.c) is the exception:
 * it uses FMA and differs from C by rounding.
 */
#include <immintrin.h>
#include <stdint.h>

#include "engine/x86/ops.h"

static inline __m256i tail_mask(ptrdiff_t n)
{
    static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* relu: max(0, v) with v as the second operand, so NaN (and -0) pass
 * through as the C `v < 0 ? 0 : v` does. */
static inline __m256 do_relu(__m256 v)
{
    return _mm256_max_ps(_mm256_setzero_ps(), v);
}

static inline __m256 do_leaky(__m256 v, __m256 slope)
{
    const __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, pos);
}

#define UNARY_LOOP(expr)                                              \
    ptrdiff_t i = 0;                                                  \
    for (; i + 8 <= n; i += 8) {                                      \
        const __m256 v = _mm256_loadu_ps(x + i);                      \
        _mm256_storeu_ps(y + i, (expr));                              \
    }                                                                 \
    if (i < n) {                                                      \
        const __m256i m = tail_mask(n - i);                           \
        const __m256 v = _mm256_maskload_ps(x + i, m);                \
        _mm256_maskstore_ps(y + i, m, (expr));                        \
    }

static void relu_avx2(float *y, const float *x, ptrdiff_t n)
{
    UNARY_LOOP(do_relu(v))
}

static void leaky_avx2(float *y, const float *x, ptrdiff_t n, float slope)
{
    const __m256 s = _mm256_set1_ps(slope);
    UNARY_LOOP(do_leaky(v, s))
}

static void scale_avx2(float *y, const float *x, ptrdiff_t n, float scale)
{
    const __m256 s = _mm256_set1_ps(scale);
    UNARY_LOOP(_mm256_mul_ps(v, s))
}

static void bias_avx2(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    const __m256 b = _mm256_set1_ps(bias);
    UNARY_LOOP(_mm256_add_ps(v, b))
}

static void bias_relu_avx2(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    const __m256 b = _mm256_set1_ps(bias);
    UNARY_LOOP(do_relu(_mm256_add_ps(v, b)))
}

static void bias_leaky_avx2(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    const __m256 b = _mm256_set1_ps(bias), s = _mm256_set1_ps(slope);
    UNARY_LOOP(do_leaky(_mm256_add_ps(v, b), s))
}

static void add_avx2(float *y, const float *a, const float *b, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(a + i, m),
                                                    _mm256_maskload_ps(b + i, m)));
    }
}

void vg_ops_dsp_init_avx2(VgOpsDsp *d)
{
    d->isa = "avx2";
    d->relu = relu_avx2;
    d->leaky = leaky_avx2;
    d->add = add_avx2;
    d->scale = scale_avx2;
    d->bias_act[VG_DSP_ACT_NONE] = bias_avx2;
    d->bias_act[VG_DSP_ACT_RELU] = bias_relu_avx2;
    d->bias_act[VG_DSP_ACT_LEAKY] = bias_leaky_avx2;
    d->conv_direct = vg_conv_direct_avx2;
}
