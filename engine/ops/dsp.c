/* Plain-C reference element-wise kernels and the run-time kernel choice. */
#include <pthread.h>

#include "engine/ops/conv_winograd.h"
#include "engine/ops/dsp.h"
#include "engine/x86/ops.h"

static void relu_c(float *y, const float *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void leaky_c(float *y, const float *x, ptrdiff_t n, float slope)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

static void add_c(float *y, const float *a, const float *b, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

static void scale_c(float *y, const float *x, ptrdiff_t n, float s)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] * s;
}

static void bias_c(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] + bias;
}

static void bias_relu_c(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float v = x[i] + bias;
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

static void bias_leaky_c(float *y, const float *x, ptrdiff_t n, float bias, float slope)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float v = x[i] + bias;
        y[i] = v > 0.0f ? v : v * slope;
    }
}

static void conv_direct_c(float *y, ptrdiff_t ys, const VgConvDirectArgs *a, ptrdiff_t n)
{
    const float *w = a->w;
    for (int co = 0; co < a->cout; co++) {
        float *dst = y + co * ys;
        for (ptrdiff_t j = 0; j < n; j++)
            dst[j] = 0.0f;
        for (int ci = 0; ci < a->cin; ci++)
            for (int ky = 0; ky < a->kh; ky++)
                for (int kx = 0; kx < a->kw; kx++) {
                    const float *src = a->x + ci * a->xcs + ky * a->dh * a->xrs + kx * a->dw;
                    const float wv = *w++;
                    for (ptrdiff_t j = 0; j < n; j++)
                        dst[j] += wv * src[j];
                }
    }
}

void vg_ops_dsp_init_c(VgOpsDsp *d)
{
    d->isa = "c";
    d->relu = relu_c;
    d->leaky = leaky_c;
    d->add = add_c;
    d->scale = scale_c;
    d->bias_act[VG_DSP_ACT_NONE] = bias_c;
    d->bias_act[VG_DSP_ACT_RELU] = bias_relu_c;
    d->bias_act[VG_DSP_ACT_LEAKY] = bias_leaky_c;
    d->conv_direct = conv_direct_c;
    vg_wino_dsp_init_c(d);
}

static VgOpsDsp dsp;
static pthread_once_t dsp_once = PTHREAD_ONCE_INIT;

static void dsp_init(void)
{
    vg_ops_dsp_init_c(&dsp);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    {
        vg_ops_dsp_init_avx2(&dsp);
        vg_wino_dsp_init_avx2(&dsp);
    }
#endif
}

const VgOpsDsp *vg_ops_dsp(void)
{
    pthread_once(&dsp_once, dsp_init);
    return &dsp;
}
