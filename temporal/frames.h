/*
 * Internal pieces of the temporal driver (include/visgen/temporal.h):
 * the per-frame record, image-plane helpers, luma, scene score, colour
 * statistics and the propagation of keyframe outputs.
 */
#ifndef VG_TEMPORAL_FRAMES_H
#define VG_TEMPORAL_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "include/visgen/temporal.h"
#include "temporal/warp.h"

/*
 * One input frame on its way through the driver. Flows live at the flow
 * size (fw x fh, rows fw floats apart); images are planar RGB, [3, h, w].
 * Shared by the queue, the keyframe slot and the ready list: refcounted.
 */
typedef struct VgTFrame {
    int refs;
    float *rgb;            /* [3, in_h, in_w] copy of the input; NULL once output */
    float *luma;           /* [fh, fw] 0..255; kept until the next frame's flow is done */
    float *bu, *bv;        /* [fh, fw] flow this -> previous input frame */
    float *fu, *fv;        /* [fh, fw] flow previous -> this */
    uint8_t *occ_b;        /* [fh, fw] pixels of this frame not visible in the previous */
    uint8_t *occ_f;        /* [fh, fw] pixels of the previous frame not visible in this */
    float *ku, *kv;        /* [fh, fw] flow this -> last keyframe (keyint > 1) */
    uint8_t *kocc;         /* [fh, fw] pixels not visible from the last keyframe */
    float *out;            /* [3, out_h, out_w] the output once made */
    float *state;          /* [state_c, state_h, state_w] the processor's carried state (keyframes) */
    VgTemporalInfo info;
} VgTFrame;

/* Scratch planes shared by the propagation steps, sized at open. */
typedef struct VgTScratch {
    float *ru, *rv;        /* [out_h, out_w] a flow resized to the output */
    uint8_t *ma, *mb;      /* [out_h, out_w] masks resized to the output */
    float *wa, *wb;        /* [3, out_h, out_w] warped images */
    float *init;           /* [3, in_h, in_w] the processor's init image */
    float *cu[2], *cv[2];  /* [fh, fw] composed flows (ping-pong) */
    uint8_t *cocc[2];      /* [fh, fw] their masks */
    float *su, *sv;        /* [state_h, state_w] a flow resized to the state grid */
    uint8_t *sm;           /* [state_h, state_w] a mask resized to the state grid */
} VgTScratch;

/* Sizes every helper below needs. */
typedef struct VgTGeom {
    int in_w, in_h, out_w, out_h, fw, fh, down;
} VgTGeom;

/* Luma of @in (0..1 RGB) on the 8-bit scale, box-shrunk by g->down into
 * @dst [fh, fw]. */
void vg_t_luma(const VgTGeom *g, const VgImage *in, float *dst);

/* Share of pixels of @cur with no match in @prev: occluded (@occ) or, after
 * warping @prev with (@u, @v), more than a fixed luma step away. @tmp: [fh, fw]. */
float vg_t_scene_score(const VgWarpDSP *dsp, const VgTGeom *g, const float *cur,
                       const float *prev, const float *u, const float *v,
                       const uint8_t *occ, float *tmp);

/* Mean |(u, v)| in input pixels and the share of set mask pixels. */
float vg_t_flow_mean(const VgTGeom *g, const float *u, const float *v);
float vg_t_mask_share(const uint8_t *m, size_t n);

/* Per-channel mean and standard deviation of a [3, h, w] image, and the
 * affine per-channel change that gives @img the statistics @mean/@sd. */
void vg_t_color_stats(const float *img, size_t n, float mean[3], float sd[3]);
void vg_t_color_match(float *img, size_t n, const float mean[3], const float sd[3]);

/*
 * Warp the [3, out_h, out_w] image @src with the flow (@u, @v) [fh, fw]
 * (from the frame being made to the frame of @src) into @dst, and resize
 * @occ into @mask (both at the output size; @mask may be NULL).
 */
void vg_t_warp_image(const VgWarpDSP *dsp, const VgTGeom *g, VgTScratch *s, float *dst,
                     uint8_t *mask, const float *src, const float *u, const float *v,
                     const uint8_t *occ);

/*
 * Carry @src [c, sh, sw] (a grid over the input frame) onto the frame the
 * flow (@u, @v) [fh, fw] starts from, by nearest neighbour: NaN where the
 * pixel is occluded (@occ, may be NULL) or comes from outside. @src NULL:
 * all NaN.
 */
void vg_t_warp_state(const VgTGeom *g, VgTScratch *s, float *dst, const float *src,
                     int c, int sw, int sh, const float *u, const float *v, const uint8_t *occ);

/*
 * Blend of two warped keyframe outputs @a (from the earlier keyframe, @wa)
 * and @b (later, @wb): visible in both -> weighted mean, in one -> that
 * one, in neither -> the one with the larger weight. [3, out_h, out_w].
 */
void vg_t_blend2(const VgTGeom *g, float *dst, const float *a, const uint8_t *ma,
                 const float *b, const uint8_t *mb, float wa, float wb);

#endif
