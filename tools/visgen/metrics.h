/*
 * Temporal-consistency and flow-accuracy measures of `visgen metrics`, on
 * whole frames already in memory (media.h layouts).
 *
 * E_warp follows Lai et al., "Learning Blind Video Temporal Consistency"
 * (ECCV 2018), its "warping error": with O_t the output frames (RGB 0..1),
 * F the flow from input frame t to t-1, M_t = 1 - occlusion (forward-backward
 * check) and W(O_{t-1}) = O_{t-1} warped backward onto t with F,
 *   E_warp(O_t, O_{t-1}) = sum_x M_t(x) ||O_t(x) - W(O_{t-1})(x)||^2 / sum_x M_t(x)
 * (squared norm over the 3 channels); the video's value is the mean over t.
 * Flow and mask come from the INPUT video, so a method is measured against
 * the motion actually there, not against its own output's.
 */
#ifndef VG_TOOLS_VISGEN_METRICS_H
#define VG_TOOLS_VISGEN_METRICS_H

#include <stdint.h>

#include "visgen/visgen.h"
#include "temporal/warp.h"

/*
 * E_warp(@cur, @prev): both w x h images (read only); @u, @v the flow from
 * t to t-1 and @occ the occlusion mask (1 = occluded), all w x h with rows
 * w apart; @scratch w * h floats. *@valid (may be NULL) gets the unoccluded
 * fraction. NaN when every pixel is occluded.
 */
double vgx_ewarp(const VgWarpDSP *dsp, const VgImage *cur, const VgImage *prev,
                 const float *u, const float *v, const uint8_t *occ, float *scratch,
                 double *valid);

/* Flicker between consecutive frames of one video (same size, read only):
 * *@mad = mean |cur - prev| over pixels and channels, *@dluma = |mean luma
 * of cur - mean luma of prev| (0.299 R + 0.587 G + 0.114 B), both 0..255. */
void vgx_flicker(const VgImage *cur, const VgImage *prev, double *mad, double *dluma);

/* Average endpoint error of (u, v) against the ground truth (gu, gv), all
 * @n floats, over the known ground-truth vectors (their count in *@known).
 * NaN when none is known. */
double vgx_epe(const float *u, const float *v, const float *gu, const float *gv, long n,
               long *known);

#endif
