/* Plain-C reference kernels for engine/nn.h and the run-time kernel choice. */
#include <math.h>
#include <pthread.h>

#include "engine/ops/nn_dsp.h"
#include "engine/tensor.h"
#include "engine/x86/nn.h"

static void f16_c(float *dst, const uint16_t *src, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = vg_f16_to_f32(src[i]);
}

static void bf16_c(float *dst, const uint16_t *src, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = vg_bf16_to_f32(src[i]);
}

static void silu_c(float *y, const float *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

static inline float gelu1(float v)
{
    return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
}

static void gelu_c(float *y, const float *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = gelu1(x[i]);
}

static void quick_gelu_c(float *y, const float *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

static void geglu_c(float *y, const float *a, const float *g, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = a[i] * gelu1(g[i]);
}

static void mul_c(float *y, const float *a, const float *b, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

static void affine_c(float *y, const float *x, ptrdiff_t n, float m, float s, float t)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = (x[i] - m) * s + t;
}

static void norm_row_c(float *y, const float *x, ptrdiff_t n, float mean, float rstd,
                       const float *gamma, const float *beta)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

static void sum_sq_c(const float *x, ptrdiff_t n, float shift, double *sum, double *sq)
{
    double s = 0.0, q = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const double d = (double)x[i] - shift;
        s += x[i];
        q += d * d;
    }
    *sum += s;
    *sq += q;
}

static float max_c(const float *x, ptrdiff_t n)
{
    float m = x[0];
    for (ptrdiff_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_c(float *x, ptrdiff_t n, float m)
{
    float s = 0.0f;
    for (ptrdiff_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void scale_c(float *y, const float *x, ptrdiff_t n, float s)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] * s;
}

void vg_nn_dsp_init_c(VgNnDsp *d)
{
    d->isa = "c";
    d->f16_to_f32 = f16_c;
    d->bf16_to_f32 = bf16_c;
    d->f16_to_f32_stream = f16_c;
    d->silu = silu_c;
    d->gelu = gelu_c;
    d->quick_gelu = quick_gelu_c;
    d->geglu = geglu_c;
    d->mul = mul_c;
    d->affine = affine_c;
    d->norm_row = norm_row_c;
    d->sum_sq = sum_sq_c;
    d->max = max_c;
    d->exp_sum = exp_sum_c;
    d->scale = scale_c;
}

static VgNnDsp dsp;
static pthread_once_t dsp_once = PTHREAD_ONCE_INIT;

static void dsp_init(void)
{
    vg_nn_dsp_init_c(&dsp);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        vg_nn_dsp_init_avx2(&dsp);
#endif
}

const VgNnDsp *vg_nn_dsp(void)
{
    pthread_once(&dsp_once, dsp_init);
    return &dsp;
}
