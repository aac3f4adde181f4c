/*
 * Dense Inverse Search optical flow (Kroeger, Timofte, Dai, Van Gool,
 * "Fast Optical Flow using Dense Inverse Search", ECCV 2016).
 *
 * Coarse-to-fine over a factor-2 image pyramid; per scale a regular grid of
 * patches, each aligned by inverse-compositional Lucas-Kanade on the
 * mean-normalised patch, initialised from the upsampled coarser flow, its
 * neighbours' flow and optionally a caller's guess; densification weighting
 * overlapping patches by 1/max(1, |I1(x+u) - I0(x)|); then optionally a few
 * fixed-point / SOR iterations of the variational refinement (brightness +
 * gradient constancy, robust smoothness).
 *
 * Presets, RubberWhale 584x388 EPE / ms, one thread, AVX2 (make bench-flow,
 * same run; OpenCV 4.6's ULTRAFAST / FAST / MEDIUM: 0.537 / 3.1, 0.445 / 6.4,
 * 0.222 / 28.7):
 *   ULTRAFAST  search down to scale 1, patch 8, stride 8      0.357 / 1.2
 *   FAST       search down to scale 0, patch 8, stride 8      0.185 / 4.1
 *   MEDIUM     search down to scale 0, patch 10, stride 4     0.167 / 14.5
 * None uses the variational refinement: at equal time the finer patch
 * search wins (see vg_flow_default_params()).
 *
 * The temporal/ layer is plain C: it includes no engine header, only the
 * error codes of include/visgen/visgen.h.
 */
#ifndef VG_TEMPORAL_FLOW_H
#define VG_TEMPORAL_FLOW_H

#include <stddef.h>

enum {
    VG_FLOW_PRESET_ULTRAFAST = 0,
    VG_FLOW_PRESET_FAST      = 1,
    VG_FLOW_PRESET_MEDIUM    = 2,
};

typedef struct VgFlowParams {
    int finest_scale;     /* pyramid level the patch search stops at (0 = full res) */
    int coarsest_scale;   /* < 0: automatic from the image size and patch size */
    int patch_size;       /* patch edge in pixels (>= 4) */
    int patch_stride;     /* grid step (1 .. patch_size) */
    int grad_descent_iter;/* inverse-compositional LK iterations per patch */
    int var_iter;         /* variational refinement fixed-point iterations (0 = off) */
    int var_sor_iter;     /* SOR sweeps per fixed-point iteration */
    float var_alpha;      /* smoothness weight */
    float var_gamma;      /* gradient constancy weight */
    float var_delta;      /* brightness constancy weight */
    float var_omega;      /* SOR relaxation factor */
    float var_zeta;       /* data-term normalisation: residual^2 / (|grad|^2 + zeta^2) */
    int mean_norm;        /* mean-normalise patches (robust to brightness change) */
    int spatial_prop;     /* neighbours' flow as patch init candidates: 0 = off, 1 = one
                           * sweep from the top left, 2 = that sweep then one back from
                           * the bottom right (OpenCV's way), grad_descent_iter split
                           * between the two */
    int threads;          /* threads per call (>= 1; 0 = VG_FLOW_THREADS_DEFAULT): patch
                           * rows and densification bands are split, levels under
                           * 40000 pixels stay serial. Results depend on it slightly
                           * (spatial propagation stops at stripe seams). */
} VgFlowParams;

/* 2: measured fastest on the 2-core build machine even while shared with other
 * jobs (RubberWhale FAST 4.1 -> 3.4 ms, MEDIUM 14.5 -> 13.0 ms; bench/flow). */
#define VG_FLOW_THREADS_DEFAULT 2

/* Fills @p (not NULL, caller-owned) with the preset's values
 * (VG_FLOW_PRESET_*; unknown presets give FAST). */
void vg_flow_default_params(VgFlowParams *p, int preset);

/* "ultrafast", "fast", "medium" -> VG_FLOW_PRESET_*, anything else (NULL
 * included) -> -1. The filter and the CLI parse their flow_preset option
 * with it. */
int vg_flow_preset_from_name(const char *name);

/* VG_FLOW_PRESET_* -> static name, NULL when unknown. */
const char *vg_flow_preset_name(int preset);

/*
 * Dense flow from @i0 to @i1: i1(x + u(x), y + v(x)) ~ i0(x, y).
 * @i0, @i1: w x h grayscale float images, intensities on the 8-bit scale
 * [0, 255] (the densification weights and variational constants assume it),
 * rows @stride floats apart; read only, caller-owned.
 * @p: parameters, NULL = FAST preset; read only.
 * @u, @v: caller-owned w * h floats each (row stride w), written.
 * Returns 0, VG_ERR(EINVAL) on bad arguments, VG_ERR(ENOMEM).
 * Thread-safe. Reuses one process-wide scratch context when it is free (kept
 * until exit), temporary buffers otherwise; vg_flow_dis2() with a context of
 * one's own avoids both the sharing and the fallback.
 */
int vg_flow_dis(const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
                const VgFlowParams *p, float *u, float *v);

/* Reusable state of the flow: scratch buffers kept from one call to the
 * next, so that a video pipeline neither allocates nor page-faults per frame
 * (FAST at 584x388: 13 ms with fresh buffers, 5 ms without). One context
 * per concurrent caller. */
typedef struct VgFlowCtx VgFlowCtx;

/* *pctx (not NULL) = a new context. 0, VG_ERR(EINVAL) or VG_ERR(ENOMEM). */
int vg_flow_ctx_open(VgFlowCtx **pctx);

/* Frees *pctx and sets it to NULL; pctx or *pctx NULL: no-op. */
void vg_flow_ctx_close(VgFlowCtx **pctx);

/*
 * vg_flow_dis() with a context and an optional initial flow, typically the
 * previous frame pair's result (video: flow t-1 -> t as the guess for
 * t -> t+1).
 * @ctx: NULL (temporary buffers) or a context from vg_flow_ctx_open(),
 * caller-owned, used by this call only while it runs.
 * @init_u, @init_v: NULL (none; then identical to vg_flow_dis) or w * h
 * floats each, row stride w, full-resolution pixels; read only,
 * caller-owned; may alias @u, @v (they are read before @u, @v are written).
 * The guess is not trusted blindly: at every pyramid level it is one more
 * candidate per patch, next to the coarser level's and the neighbours'
 * estimates, and wins only where its patch matches better. A wrong guess
 * thus mostly costs time, and a right one lets motions be found that the
 * pyramid alone would miss (tests/check_flow.c: a 45 px pan on 160x120).
 */
int vg_flow_dis2(VgFlowCtx *ctx, const float *i0, const float *i1, int w, int h,
                 ptrdiff_t stride, const VgFlowParams *p, const float *init_u,
                 const float *init_v, float *u, float *v);

#endif
