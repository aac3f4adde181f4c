/*
 * Dense Inverse Search optical flow (Kroeger, Timofte, Dai, Van Gool,
 * "Fast Optical Flow using Dense Inverse Search", ECCV 2016).
 *
 * Coarse-to-fine over a factor-2 image pyramid; per scale a regular grid of
 * patches, each aligned by inverse-compositional Lucas-Kanade on the
 * mean-normalised patch, initialised from the upsampled coarser flow;
 * densification weighting overlapping patches by 1/max(1, |I1(x+u) - I0(x)|);
 * then a few fixed-point / SOR iterations of the variational refinement
 * (brightness + gradient constancy, robust smoothness).
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
    int spatial_prop;     /* try the left/upper neighbour's flow as patch init */
} VgFlowParams;

/* Fills @p (not NULL, caller-owned) with the preset's values
 * (VG_FLOW_PRESET_*; unknown presets give FAST). */
void vg_flow_default_params(VgFlowParams *p, int preset);

/*
 * Dense flow from @i0 to @i1: i1(x + u(x), y + v(x)) ~ i0(x, y).
 * @i0, @i1: w x h grayscale float images, intensities on the 8-bit scale
 * [0, 255] (the densification weights and variational constants assume it),
 * rows @stride floats apart; read only, caller-owned.
 * @p: parameters, NULL = FAST preset; read only.
 * @u, @v: caller-owned w * h floats each (row stride w), written.
 * Returns 0, VG_ERR(EINVAL) on bad arguments, VG_ERR(ENOMEM).
 */
int vg_flow_dis(const float *i0, const float *i1, int w, int h, ptrdiff_t stride,
                const VgFlowParams *p, float *u, float *v);

#endif
