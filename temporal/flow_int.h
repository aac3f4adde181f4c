/* Internals shared by temporal/flow_*.c (not installed, not for callers). */
#ifndef VG_TEMPORAL_FLOW_INT_H
#define VG_TEMPORAL_FLOW_INT_H

#include <stddef.h>

#include "temporal/flow.h"
#include "temporal/flow_dsp.h"

/* One pyramid level. The padded copy of i1 lets the patch kernels sample
 * displaced patches without per-pixel clamping: its border (pad >= patch + 1)
 * replicates the edge, which is what clamped coordinates would read. */
typedef struct VgFlowLevel {
    int w, h;
    const float *i0, *i1;   /* [h, w] packed */
    const float *i1p;       /* [h + 2 pad, w + 2 pad], row stride sp; points at (0, 0) */
    ptrdiff_t sp;
    int pad;
    const float *gx, *gy;   /* [h, w] gradients of i0 (unit slope) */
    const float *iu, *iv;   /* [h, w] initial-flow candidates at this scale, or NULL */
} VgFlowLevel;

/* The k-th call since vg_flow_scratch_reset() returns the k-th buffer of
 * the context, grown to @bytes if needed (contents undefined), or NULL. */
void *vg_flow_scratch(VgFlowCtx *c, size_t bytes);
void vg_flow_scratch_reset(VgFlowCtx *c);

/* Below this many pixels a level's work is shorter than starting threads
 * (~20 us each): such levels run on the caller's thread alone. */
#define VG_FLOW_PAR_MIN 40000

/* Runs fn(ctx, k) for k in [0, n) on up to `threads` threads (the caller's
 * included); returns once all are done. Falls back to serial if a thread
 * cannot be started. */
void vg_flow_parallel(int threads, int n, void (*fn)(void *ctx, int k), void *ctx);

/* Patch search and densification of one level: (U, V) [h, w] is the
 * initial flow, (outU, outV) [h, w] receive the dense result (may be U, V).
 * 0 or VG_ERR(ENOMEM). */
int vg_flow_patch_level(VgFlowCtx *c, const VgFlowLevel *L, const VgFlowParams *p, int ps,
                        const float *U, const float *V, float *outU, float *outV);

/* Variational refinement of (U, V) [h, w] in place. 0 or VG_ERR(ENOMEM). */
int vg_flow_variational(VgFlowCtx *c, const float *i0, const float *i1, int w, int h,
                        const VgFlowParams *p, float *U, float *V);

#endif
