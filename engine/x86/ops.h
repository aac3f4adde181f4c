/* x86 versions of the element-wise kernels in engine/ops/dsp.h. */
#ifndef VG_ENGINE_X86_OPS_H
#define VG_ENGINE_X86_OPS_H

#include "engine/ops/dsp.h"

/* Overwrites the entries of @d it has AVX2 versions of. The caller checks
 * the CPU runs AVX2 and FMA. */
void vg_ops_dsp_init_avx2(VgOpsDsp *d);

/* engine/x86/conv_avx2.c: the conv_direct entry. */
void vg_conv_direct_avx2(float *y, ptrdiff_t ys, const VgConvDirectArgs *a, ptrdiff_t n);

/* engine/x86/conv_winograd_avx2.c: overwrites wino_in / wino_out. Same
 * CPU check as vg_ops_dsp_init_avx2. */
void vg_wino_dsp_init_avx2(VgOpsDsp *d);

#endif
