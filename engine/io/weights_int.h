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
/* A format's parser: adds the tensors of @buf (@size bytes; @fn names it in
 * errors) to @w. */
typedef int (*VgWeightsParseFn)(VgWeights *w, const VgCtx *c, const char *fn,
                                const uint8_t *buf, size_t size);
/* A new VgWeights filled by @parse from the mapped file @path, or, when @path
 * is NULL, from @buf (which remains with the caller and must outlive it). */
int vg_weights_load(VgWeights **out, const VgCtx *c, const char *path, const void *buf,
                    size_t size, VgWeightsParseFn parse);
/* Copies @key and @val. VG_ERR(EEXIST) if @key is already present. */
int vg_weights_set_metadata(VgWeights *w, const char *key, const char *val);

#endif
