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

#endif
