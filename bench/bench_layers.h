/* Per-layer-type timings for `vgbench layers` (see bench_layers.c). */
#ifndef VG_BENCH_LAYERS_H
#define VG_BENCH_LAYERS_H

#include "visgen/visgen.h"

typedef enum VgbLayerKind { VGB_CONV, VGB_UPSAMPLE, VGB_D2S } VgbLayerKind;

typedef struct VgbLayer {
    const char *name;
    VgbLayerKind kind;
    int cin, cout, k; /* conv: channels and square kernel (padding k/2, ReLU fused) */
    int up;           /* conv: runs at the frame size times up; others: the factor */
} VgbLayer;

const VgbLayer *vgb_layers(int *n);
/* FLOPs of one layer for a w x h frame (0 for data-movement layers). */
double vgb_layer_flops(const VgbLayer *l, int w, int h);
/* Times every layer on @c; prints one JSON object. 0 or 1 (error, on stderr). */
int vgb_run_layers(VgCtx *c, int w, int h, int reps);

/* SD UNet / TAESD 3x3 conv shapes, direct and both Winograd variants; one
 * JSON object. */
int vgb_run_sd_layers(VgCtx *c, int reps);

#endif
