/* Shared by the engine/nn.h op files: weights of any float dtype as F32. */
#ifndef VG_ENGINE_OPS_NN_COMMON_H
#define VG_ENGINE_OPS_NN_COMMON_H

#include "engine/ops/common.h"
#include "engine/tensor.h"

/* F32 view of a weight: @p points into the tensor itself (contiguous F32)
 * or into @owned, a widened copy that vg_nn_weight_release frees. */
typedef struct VgNnWeight {
    const float *p;
    float *owned;
    VgCtx *ctx; /* set while p is the context's widening scratch */
    int64_t n;  /* elements */
} VgNnWeight;

/*
 * Checks that @t is present (unless @optional and NULL: then out->p = NULL),
 * has a float dtype (F32/F16/BF16) and @ndim dims (0 = any), and widens it
 * (on the ctx pool when large). Logs "@op: @what ..." and returns a negative
 * error code otherwise.
 */
int vg_nn_weight(VgCtx *ctx, const char *op, const char *what, const VgTensor *t, int ndim,
                 int optional, VgNnWeight *out);
void vg_nn_weight_release(VgNnWeight *w);

#endif
