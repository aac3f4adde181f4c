/*
 * Element-wise float kernels behind the ops, chosen once per process by CPU
 * flag (dav1d style): vg_ops_dsp_init_c() installs the plain-C reference,
 * then an ISA file (x86/ops_avx2.c) overwrites what it accelerates.
 * Kernels take any alignment and any length n >= 0; y may equal x (or a/b).
 *
 * Semantics all versions keep (tests/check_dsp.c compares them):
 *   relu(v)   = v < 0 ? 0 : v             (NaN passes through)
 *   leaky(v)  = v > 0 ? v : v * slope     (NaN passes through)
 *   bias_act[act](v) = act(v + bias), act = none / relu / leaky(slope)
 */
#ifndef VG_ENGINE_OPS_DSP_H
#define VG_ENGINE_OPS_DSP_H

#include <stddef.h>

enum VgDspAct { VG_DSP_ACT_NONE, VG_DSP_ACT_RELU, VG_DSP_ACT_LEAKY, VG_DSP_ACT_N };

typedef void (*VgBiasActFn)(float *y, const float *x, ptrdiff_t n, float bias, float slope);

typedef struct VgOpsDsp {
    const char *isa; /* "c", "avx2" */
    void (*relu)(float *y, const float *x, ptrdiff_t n);
    void (*leaky)(float *y, const float *x, ptrdiff_t n, float slope);
    void (*add)(float *y, const float *a, const float *b, ptrdiff_t n);
    void (*scale)(float *y, const float *x, ptrdiff_t n, float s);
    VgBiasActFn bias_act[VG_DSP_ACT_N];
} VgOpsDsp;

/* The table for this CPU, filled on first use (thread-safe, then constant). */
const VgOpsDsp *vg_ops_dsp(void);

/* Fill @d with the C reference. For tests and the ISA initialisers. */
void vg_ops_dsp_init_c(VgOpsDsp *d);

#endif
