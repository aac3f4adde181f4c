/*
 * Winograd F(4x4, 3x3) / F(2x2, 3x3) path of conv2d
 * (engine/ops/conv_winograd.c), called by engine/ops/conv.c for 3x3
 * stride-1 undilated convolutions with enough channels and pixels
 * (vg_conv_winograd_wanted).
 */
#ifndef VG_ENGINE_OPS_CONV_WINOGRAD_H
#define VG_ENGINE_OPS_CONV_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ops/dsp.h"
#include "engine/threads.h"

typedef struct VgWinoConv {
    const VgOpsDsp *dsp;
    int m;              /* output tile: 4 = F(4x4, 3x3), 2 = F(2x2, 3x3) */
    int64_t n, cin, h, w, cout, ho, wo;
    int pad_top, pad_left;
    const float *x;     /* [n, cin, h, w] */
    const float *wt;    /* [cout, cin, 3, 3] */
    const float *bias;  /* [cout] or NULL */
    int dsp_act;        /* VG_DSP_ACT_* */
    float slope;
    const float *alpha; /* PReLU slopes, [cout] or [1], or NULL */
    int64_t alpha_len;
    float *y;           /* [n, cout, ho, wo] */
} VgWinoConv;

/* Policy for tests and benchmarks (process-wide, set before converting):
 * -1 by shape, 0 never, 1 F(4x4) / 2 F(2x2) for every 3x3 stride-1
 * undilated conv. The default is -1, or the environment's
 * VG_CONV_WINOGRAD=0 / 1 / 2 (to run a network's tests through one path). */
void vg_conv_winograd_force(int mode);

/* Output tile size of the Winograd path conv2d takes for this layer (4 or
 * 2), 0 for none. */
int vg_conv_winograd_wanted(int64_t cin, int64_t cout, int64_t ho, int64_t wo, int64_t kh,
                            int64_t kw, int stride_h, int stride_w, int dil_h, int dil_w);

/* 0, or VG_ERR(ENOMEM) before anything is written to y. */
int vg_conv_winograd(VgPool *pool, const VgWinoConv *c);

/* Scratch for conv2d's paths: vg_malloc'd, or a buffer a previous call
 * returned (a few up to 64 MB are kept for the process's lifetime).
 * vg_conv_scratch_put takes @p (may be NULL) back with its size. */
float *vg_conv_scratch_get(size_t floats);
void vg_conv_scratch_put(float *p, size_t floats);

/* Installs the C references of the dsp table's wino_* entries. */
void vg_wino_dsp_init_c(VgOpsDsp *d);
/* For the AVX2 versions' tails. */
void vg_wino_weights43_c(float *u, ptrdiff_t us, const float *g, ptrdiff_t n);
void vg_wino_weights23_c(float *u, ptrdiff_t us, const float *g, ptrdiff_t n);
void vg_wino_gemm_c(float *m, ptrdiff_t ldm, const float *u, ptrdiff_t ldu, const float *v,
                    ptrdiff_t ldv, int rows, int cols, int k);

#endif
