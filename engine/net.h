/*
 * A super-resolution network: one RGB picture in, one scale x larger out.
 * Each architecture file (net_tfjs.c, net_srvgg.c, net_rrdb.c) builds one
 * from loaded weights; upscale.c drives it tile by tile.
 */
#ifndef VG_ENGINE_NET_H
#define VG_ENGINE_NET_H

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/tfjs.h"
#include "engine/weights.h"

typedef struct VgNet VgNet;
struct VgNet {
    int scale;
    float in_scale;  /* network wants pixel values 0..in_scale (1 or 255) */
    int context;     /* pixels of input context one output pixel depends on (receptive radius) */
    int align;       /* tile origins must be multiples of this (pixel_unshuffle block), >= 1 */
    int64_t n_params;
    char desc[128];
    /* x [1, 3, H, W] in 0..in_scale -> y [1, 3, H*scale, W*scale], allocated
     * by forward (caller frees with vg_tensor_free). */
    int (*forward)(VgNet *n, VgCtx *c, const VgTensor *x, VgTensor *y);
    /* Peak working memory in bytes for an h x w input tile. */
    size_t (*working_set)(const VgNet *n, int h, int w);
    void (*destroy)(VgNet *n);
};

/* Ownership of @m / @w passes to the network (also on failure). */
int vg_net_tfjs_create(VgNet **out, VgCtx *c, VgTfjsModel *m);
/* Real-ESRGAN SRVGGNetCompact ("body.N.weight"), input 0..1. */
int vg_net_srvgg_create(VgNet **out, VgCtx *c, VgWeights *w, const char *prefix);
/* ESRGAN RRDBNet ("conv_first", "body.N.rdbM.convK", "conv_up1"...), input 0..1. */
int vg_net_rrdb_create(VgNet **out, VgCtx *c, VgWeights *w, const char *prefix);

void vg_net_destroy(VgNet **n);

/* ------------------------------------------------ helpers for the builders */

/* Which of "params_ema.", "params.", "" holds @probe (e.g. "body.0.weight"):
 * Real-ESRGAN prefers the EMA weights. NULL if none does. Static string. */
const char *vg_net_pick_prefix(const VgWeights *w, const char *probe);

/*
 * Contiguous F32 copy of the weight @name in @w, checked against @shape
 * (@ndim dims; an entry < 0 accepts any size). Missing key or wrong shape is
 * VG_EBADMODEL with one log line naming the key and both shapes. @out is
 * owned by the caller (vg_tensor_free).
 */
int vg_net_weight(VgCtx *c, const VgWeights *w, const char *name, int ndim,
                  const int64_t *shape, VgTensor *out);

#endif
