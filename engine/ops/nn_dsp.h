/*
 * Float kernels behind engine/nn.h, chosen once per process by CPU flag
 * (the same scheme as engine/ops/dsp.h): vg_nn_dsp_init_c() installs the
 * plain-C reference, x86/nn_avx2.c overwrites what it accelerates.
 * Kernels take any alignment and any n >= 0; y may equal x.
 *
 * The AVX2 versions use their own exp / erf approximations (relative error
 * of exp ~1e-7, absolute error of erf ~3e-7), so they match the C reference
 * (libm expf / erff) to ~1e-6, not bit for bit; tests/check_nn.c compares.
 */
#ifndef VG_ENGINE_OPS_NN_DSP_H
#define VG_ENGINE_OPS_NN_DSP_H

#include <stddef.h>
#include <stdint.h>

typedef struct VgNnDsp {
    const char *isa; /* "c", "avx2" */
    /* weight widening: dst[i] = (float)src[i] */
    void (*f16_to_f32)(float *dst, const uint16_t *src, ptrdiff_t n);
    void (*bf16_to_f32)(float *dst, const uint16_t *src, ptrdiff_t n);
    /* the same as f16_to_f32, with stores that bypass the caches where the
     * ISA has them: for weights larger than the last-level cache, which
     * regular stores would first read into it (~40% faster at 60 MB) */
    void (*f16_to_f32_stream)(float *dst, const uint16_t *src, ptrdiff_t n);
    /* activations */
    void (*silu)(float *y, const float *x, ptrdiff_t n);       /* x * sigmoid(x) */
    void (*gelu)(float *y, const float *x, ptrdiff_t n);       /* 0.5 x (1 + erf(x / sqrt 2)) */
    void (*quick_gelu)(float *y, const float *x, ptrdiff_t n); /* x * sigmoid(1.702 x) */
    /* y = a * gelu(g); y may equal a */
    void (*geglu)(float *y, const float *a, const float *g, ptrdiff_t n);
    void (*mul)(float *y, const float *a, const float *b, ptrdiff_t n);
    /* y = (x - m) * s + t (subtracting first keeps a group norm exact when
     * |mean| >> std) */
    void (*affine)(float *y, const float *x, ptrdiff_t n, float m, float s, float t);
    /* y = (x - mean) * rstd * gamma[i] + beta[i] (layer norm row) */
    void (*norm_row)(float *y, const float *x, ptrdiff_t n, float mean, float rstd,
                     const float *gamma, const float *beta);
    /* *sum += sum x[i], *sq += sum (x[i] - shift)^2; partial sums in float over
     * short runs, accumulated in double by the caller-visible results */
    void (*sum_sq)(const float *x, ptrdiff_t n, float shift, double *sum, double *sq);
    /* softmax helpers: max over x[0..n) (n >= 1); and x[i] = exp(x[i] - m)
     * in place, returning the sum of the results */
    float (*max)(const float *x, ptrdiff_t n);
    float (*exp_sum)(float *x, ptrdiff_t n, float m);
    /* y = x * s */
    void (*scale)(float *y, const float *x, ptrdiff_t n, float s);
} VgNnDsp;

const VgNnDsp *vg_nn_dsp(void);
void vg_nn_dsp_init_c(VgNnDsp *d);

#endif
