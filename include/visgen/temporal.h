/*
 * libvisgen temporal consistency: runs any per-frame processor (upscaler,
 * stylizer, ...) over a video so that its output does not flicker.
 *
 * Optical flow (Dense Inverse Search) is computed on the luma of the INPUT
 * frames, forward and backward between neighbours; their disagreement marks
 * occluded pixels (Sundaram et al. 2010). The previous output is warped onto
 * the current frame and mixed in where it is visible; with keyint > 1 the
 * processor runs on every keyint-th frame only and the frames in between are
 * the two neighbouring keyframes' outputs warped onto them and blended.
 * A scene cut (most pixels without a match in the previous frame) restarts
 * all of that.
 *
 * Frames go in with vg_temporal_send() and come out, in order and one for
 * one, from vg_temporal_receive(); with keyint > 1 they wait in a queue
 * until the next keyframe is known. vg_temporal_flush() at the end of the
 * stream (or before a discontinuity) releases what is queued.
 *
 * This layer knows nothing of networks or of FFmpeg: the processor is a
 * callback.
 */
#ifndef VISGEN_TEMPORAL_H
#define VISGEN_TEMPORAL_H

#include <stdint.h>

#include "visgen/visgen.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct VgTemporal VgTemporal;

/**
 * Runs on one frame. @src: the input frame (in_w x in_h). @init: NULL, or
 * (when VgTemporalSettings.init_blend > 0 and the previous output is
 * usable) the input frame with the warped previous output blended in where
 * it is visible, in_w x in_h, for processors that start from an image
 * (img2img); processors that do not may ignore it. NULL whenever the
 * output size differs from the input's. @state: NULL when
 * state_c is 0; else [state_c, state_h, state_w] floats of state carried
 * along the motion: on entry the previous keyframe's state warped onto this
 * frame (nearest neighbour, so values are moved, never mixed), NaN where
 * nothing could be carried (start of a shot, occluded, from outside the
 * picture); on return the state to carry on. @dst: out_w x out_h, planes
 * owned by the library, to be written. @index: the frame's number counted
 * from 0 at vg_temporal_open(). Everything remains with the library and is
 * valid during the call only. Returns 0 or a negative code, which
 * vg_temporal_send()/vg_temporal_flush() return.
 */
typedef struct VgFrameProcessor {
    void *opaque;   /* passed back, remains with the caller */
    int (*process)(void *opaque, const VgImage *src, const VgImage *init, float *state,
                   VgImage *dst, int64_t index);
    /* Optional carried state (e.g. diffusion noise): planes of a grid laid
     * over the input frame; 0 = none. */
    int state_c, state_w, state_h;
} VgFrameProcessor;

enum VgTemporalFlow {
    VG_TEMPORAL_FLOW_OFF = 0, /* every frame processed on its own, nothing queued */
    VG_TEMPORAL_FLOW_DIS = 1, /* Dense Inverse Search on the input luma */
};

enum VgFlowPreset {
    VG_FLOW_ULTRAFAST = 0,
    VG_FLOW_FAST      = 1,
    VG_FLOW_MEDIUM    = 2,
};

enum VgColorCoherence {
    VG_COLOR_OFF      = 0,
    VG_COLOR_FIRST    = 1, /* match each keyframe's colour statistics to the
                            * first output of the shot (reset at a cut) */
    VG_COLOR_KEYFRAME = 2, /* ... to the previous keyframe's output */
};

typedef struct VgTemporalSettings {
    int in_w, in_h;       /* input frame size (required) */
    int out_w, out_h;     /* processor output size (required) */
    int flow;             /* enum VgTemporalFlow */
    int flow_preset;      /* enum VgFlowPreset */
    int flow_downscale;   /* flow on the input shrunk by this factor (1 = full size) */
    float temporal;       /* 0..1: weight of the warped previous output where visible */
    float init_blend;     /* 0..1: weight of the warped previous output in the
                           * processor's init image (0 = no init image) */
    int keyint;           /* run the processor every keyint frames (1 = every frame) */
    float scenecut;       /* share of unmatched pixels (0..1) above which a frame
                           * starts a new shot; 0 = never */
    float key_occlusion;  /* keyint > 1: share of pixels not visible from the
                           * last keyframe that forces a keyframe early */
    int color_coherence;  /* enum VgColorCoherence */
    VgLogCallback log_cb; /* NULL = silent */
    void *log_cookie;     /* remains with the caller */
    int log_level;
    uint8_t reserved[32];
} VgTemporalSettings;

/** What happened to one output frame. */
typedef struct VgTemporalInfo {
    int64_t index;        /* the frame's number (send order, from 0) */
    int keyframe;         /* 1 = the processor ran on it */
    int scenecut;         /* 1 = a cut was detected here (nothing carried over; the
                           * first frame and frames after a flush are 0) */
    float flow_mean;      /* mean |flow| to the previous input frame, input pixels */
    float occluded;       /* share of pixels not visible in the previous frame */
    float scene_score;    /* share of unmatched pixels (what scenecut compares) */
} VgTemporalInfo;

/** Fill @s (owned by the caller) with the defaults: flow dis, medium preset,
 * full size, temporal 0.5, init_blend 0, keyint 1, scenecut 0.5,
 * key_occlusion 0.3, colour coherence off, silent. */
void vg_temporal_default_settings(VgTemporalSettings *s);

/**
 * @out receives a new context owned by the caller (vg_temporal_close).
 * @s is read during the call only; @proc is copied, its opaque must outlive
 * the context.
 */
int vg_temporal_open(VgTemporal **out, const VgTemporalSettings *s, const VgFrameProcessor *proc);

/**
 * Take the next input frame (@in remains with the caller and is copied;
 * in_w x in_h). Runs the processor when a frame can be decided. Outputs
 * that became ready wait for vg_temporal_receive(); at most keyint - 1
 * input frames are held back. Memory: each held frame keeps its flows and,
 * when the next keyframe comes, an output-size picture.
 * On failure this frame is dropped (no output for it) and the next one
 * starts a new shot; frames sent before it still come out.
 */
int vg_temporal_send(VgTemporal *t, const VgImage *in);

/**
 * Next output frame in input order: @out's planes point into memory owned
 * by @t, valid until the next call on @t; @info (may be NULL) is written.
 * Returns 0, or VG_ERR(EAGAIN) when no frame is ready.
 */
int vg_temporal_receive(VgTemporal *t, VgImage *out, VgTemporalInfo *info);

/**
 * End of the stream or a discontinuity: every queued frame becomes ready
 * (frames after the last keyframe are propagated from it alone) and the
 * next frame sent starts afresh, as after a scene cut.
 */
int vg_temporal_flush(VgTemporal *t);

/** Change temporal, init_blend, scenecut, key_occlusion and color_coherence
 * between frames; other fields of @s are ignored. */
int vg_temporal_update(VgTemporal *t, const VgTemporalSettings *s);

/** Processor calls made so far. */
int64_t vg_temporal_processed(const VgTemporal *t);

/** Destroy *@t (may be NULL) and set *@t to NULL. */
void vg_temporal_close(VgTemporal **t);

#ifdef __cplusplus
}
#endif

#endif /* VISGEN_TEMPORAL_H */
