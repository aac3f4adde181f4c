/*
 * Helpers the readers (safetensors.c, pth.c, tfjs.c) use to fill a
 * VgWeights. Not part of the engine-wide interface.
 */
#ifndef VG_ENGINE_IO_WEIGHTS_INT_H
#define VG_ENGINE_IO_WEIGHTS_INT_H

#include "engine/weights.h"
#include "engine/io/map.h"

/* Ownership of the mapping passes to @w (also on failure, when it is
 * released). Tensors added later may point into it. */
int vg_weights_own_map(VgWeights *w, VgMap *m);
/* Ownership of @buf (malloc'd / vg_malloc'd with @free_fn) passes to @w,
 * also on failure. */
int vg_weights_own_buffer(VgWeights *w, void *buf, void (*free_fn)(void *));
/* Copies @key and @val. VG_ERR(EEXIST) if @key is already present. */
int vg_weights_set_metadata(VgWeights *w, const char *key, const char *val);

#endif
