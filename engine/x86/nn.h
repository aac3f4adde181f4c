/* AVX2 versions of the kernels in engine/ops/nn_dsp.h. */
#ifndef VG_ENGINE_X86_NN_H
#define VG_ENGINE_X86_NN_H

#include "engine/ops/nn_dsp.h"

/* Overwrites the entries of @d it has AVX2 versions of. The caller checks
 * the CPU runs AVX2, FMA and F16C. */
void vg_nn_dsp_init_avx2(VgNnDsp *d);

#endif
