/*
 * AVX2 + FMA + F16C kernels for engine/ops/nn_dsp.h.
 *
 * exp: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts so n ln2 is
 * exact enough), e^r by its Taylor series to degree 7 (truncation error
 * r^8 / 8! < 6e-9 relative), times 2^n built in the exponent bits. Inputs are
 * clamped to [-87.3, 88.3] so 2^n stays a normal float.
 * erf: Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7) on |x|, using
 * the exp above; sign restored afterwards.
 * Tails (n % 8) run the same vector code on a masked load / store.
 */
/* F16C for the F16 widening; every AVX2 CPU has it and the dispatcher checks. */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "engine/x86/nn.h"

static inline __m256i tail_mask(ptrdiff_t n)
{
    static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

static inline __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                         _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 erf8(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 s = _mm256_and_ps(x, sign);
    const __m256 a = _mm256_andnot_ps(sign, x);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), a));
    const __m256 r = _mm256_fnmadd_ps(p, e, one);
    return _mm256_or_ps(r, s);
}

static inline __m256 gelu8(__m256 v)
{
    const __m256 e = erf8(_mm256_mul_ps(v, _mm256_set1_ps((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* v * sigmoid(k v) = v / (1 + exp(-k v)) */
static inline __m256 sigmul8(__m256 v, float k)
{
    const __m256 e = exp8(_mm256_mul_ps(v, _mm256_set1_ps(-k)));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
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

#define BINARY_LOOP(expr)                                             \
    ptrdiff_t i = 0;                                                  \
    for (; i + 8 <= n; i += 8) {                                      \
        const __m256 va = _mm256_loadu_ps(a + i);                     \
        const __m256 vb = _mm256_loadu_ps(b + i);                     \
        _mm256_storeu_ps(y + i, (expr));                              \
    }                                                                 \
    if (i < n) {                                                      \
        const __m256i m = tail_mask(n - i);                           \
        const __m256 va = _mm256_maskload_ps(a + i, m);               \
        const __m256 vb = _mm256_maskload_ps(b + i, m);               \
        _mm256_maskstore_ps(y + i, m, (expr));                        \
    }

static void f16_avx2(float *dst, const uint16_t *src, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

static void f16_stream_avx2(float *dst, const uint16_t *src, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31); i++)  /* to a 32-byte boundary */
        dst[i] = _cvtsh_ss(src[i]);
    for (; i + 8 <= n; i += 8)
        _mm256_stream_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
    _mm_sfence();
}

static void bf16_avx2(float *dst, const uint16_t *src, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++) {
        const uint32_t u = (uint32_t)src[i] << 16;
        union { uint32_t u; float f; } c = { u };
        dst[i] = c.f;
    }
}

static void silu_avx2(float *y, const float *x, ptrdiff_t n)
{
    UNARY_LOOP(sigmul8(v, 1.0f))
}

static void quick_gelu_avx2(float *y, const float *x, ptrdiff_t n)
{
    UNARY_LOOP(sigmul8(v, 1.702f))
}

static void gelu_avx2(float *y, const float *x, ptrdiff_t n)
{
    UNARY_LOOP(gelu8(v))
}

static void geglu_avx2(float *y, const float *a, const float *b, ptrdiff_t n)
{
    BINARY_LOOP(_mm256_mul_ps(va, gelu8(vb)))
}

static void mul_avx2(float *y, const float *a, const float *b, ptrdiff_t n)
{
    BINARY_LOOP(_mm256_mul_ps(va, vb))
}

static void affine_avx2(float *y, const float *x, ptrdiff_t n, float m, float s, float t)
{
    const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s), vt = _mm256_set1_ps(t);
    UNARY_LOOP(_mm256_fmadd_ps(_mm256_sub_ps(v, vm), vs, vt))
}

static void scale_avx2(float *y, const float *x, ptrdiff_t n, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    UNARY_LOOP(_mm256_mul_ps(v, vs))
}

static void norm_row_avx2(float *y, const float *x, ptrdiff_t n, float mean, float rstd,
                          const float *gamma, const float *beta)
{
    const __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(gamma + i),
                                                _mm256_loadu_ps(beta + i)));
    }
    for (; i < n; i++)
        y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

static inline double hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Float partial sums over runs of at most 512 elements (64 per lane), each
 * run's total accumulated in double: the rounding error stays ~1e-7 relative
 * whatever n is. */
static void sum_sq_avx2(const float *x, ptrdiff_t n, float shift, double *sum, double *sq)
{
    const __m256 vsh = _mm256_set1_ps(shift);
    double s = 0.0, q = 0.0;
    ptrdiff_t i = 0;
    while (i + 8 <= n) {
        __m256 as = _mm256_setzero_ps(), aq = _mm256_setzero_ps();
        const ptrdiff_t end = i + 512 < n ? i + 512 : n;
        for (; i + 8 <= end; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            const __m256 d = _mm256_sub_ps(v, vsh);
            as = _mm256_add_ps(as, v);
            aq = _mm256_fmadd_ps(d, d, aq);
        }
        s += hsum(as);
        q += hsum(aq);
    }
    for (; i < n; i++) {
        const double d = (double)x[i] - shift;
        s += x[i];
        q += d * d;
    }
    *sum += s;
    *sq += q;
}

static float max_avx2(const float *x, ptrdiff_t n)
{
    float m = x[0];
    ptrdiff_t i = 0;
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        m = _mm_cvtss_f32(s);
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_avx2(float *x, ptrdiff_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        const __m256i k = tail_mask(n - i);
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm)),
                                       _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(x + i, k, e);
        acc = _mm256_add_ps(acc, e);
    }
    return (float)hsum(acc);
}

void vg_nn_dsp_init_avx2(VgNnDsp *d)
{
    d->isa = "avx2";
    d->f16_to_f32 = f16_avx2;
    d->bf16_to_f32 = bf16_avx2;
    d->f16_to_f32_stream = f16_stream_avx2;
    d->silu = silu_avx2;
    d->gelu = gelu_avx2;
    d->quick_gelu = quick_gelu_avx2;
    d->geglu = geglu_avx2;
    d->mul = mul_avx2;
    d->affine = affine_avx2;
    d->norm_row = norm_row_avx2;
    d->sum_sq = sum_sq_avx2;
    d->max = max_avx2;
    d->exp_sum = exp_sum_avx2;
    d->scale = scale_avx2;
}
