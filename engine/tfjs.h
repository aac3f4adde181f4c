/*
 * TF.js "layers-model" reader: model.json (Keras functional topology and a
 * weights manifest) plus its binary weight shards. Only what the parser knows
 * is accepted; any other layer class or option is VG_EUNSUPPORTED naming it.
 * Kernels stay in TF layout ([kh, kw, Cin, Cout]); the network builder
 * converts them.
 */
#ifndef VG_ENGINE_TFJS_H
#define VG_ENGINE_TFJS_H

#include <stddef.h>
#include "visgen/visgen.h"
#include "engine/weights.h"

typedef enum VgTfjsLayerType {
    VG_TFL_INPUT,
    VG_TFL_CONV2D,
    VG_TFL_ACTIVATION,
    VG_TFL_CONCAT,
    VG_TFL_ADD,
    VG_TFL_UPSAMPLE,      /* UpSampling2D, nearest */
    VG_TFL_MULTIPLY_BETA, /* custom layer MultiplyBeta: x * beta */
    VG_TFL_PIXEL_SHUFFLE, /* custom layers PixelShuffle{2,3,4,8}x: tf depth_to_space */
} VgTfjsLayerType;

typedef enum VgTfjsAct {
    VG_TFA_LINEAR, VG_TFA_RELU,
} VgTfjsAct;

#define VG_TFJS_MAX_INPUTS 16

typedef struct VgTfjsLayer {
    VgTfjsLayerType type;
    char name[128];
    int n_inputs;
    int inputs[VG_TFJS_MAX_INPUTS]; /* indices of earlier layers */
    /* Conv2D */
    int filters, kh, kw, stride_h, stride_w, dil_h, dil_w;
    int pad_same;                   /* 1 = "same", 0 = "valid" */
    int use_bias;
    VgTfjsAct act;                  /* Conv2D activation or Activation layer */
    const VgTensor *kernel;         /* [kh, kw, Cin, Cout], in the weight set */
    const VgTensor *bias;           /* [Cout] or NULL */
    int axis;                       /* Concatenate (-1 or 3 = channels) */
    int size_h, size_w;             /* UpSampling2D */
    float beta;                     /* MultiplyBeta */
    int scale;                      /* PixelShuffle */
} VgTfjsLayer;

typedef struct VgTfjsModel {
    VgTfjsLayer *layers;  /* topological order: inputs precede users */
    int n_layers;
    int input, output;    /* layer indices */
    int in_channels;      /* from the input layer's batch_input_shape */
    VgWeights *weights;   /* owns the tensors the layers point to */
} VgTfjsModel;

/* @path: model.json, or a folder holding one. Shards are read from the same
 * folder. @c (may be NULL) logs during the call. */
int vg_tfjs_open(VgTfjsModel **out, const VgCtx *c, const char *path);
/* Parse from memory: @json (len bytes) and the concatenated shard bytes
 * @bin (bin_len). Buffers remain with the caller; weights are copied. */
int vg_tfjs_open_mem(VgTfjsModel **out, const VgCtx *c, const char *json, size_t len,
                     const void *bin, size_t bin_len);
void vg_tfjs_close(VgTfjsModel **m);

#endif
