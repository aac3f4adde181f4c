/*
 * Named tensor sets read from model files: safetensors (mmap'd) and PyTorch
 * zip checkpoints (.pth/.ckpt, through a restricted unpickler that rebuilds
 * tensors and plain containers only). Every offset and size is checked
 * against the file; a malformed file gives VG_EBADMODEL and one log line.
 *
 * Nested containers are flattened with '.', so a .pth whose pickle is
 * {"params": {"body.0.weight": T}} yields the name "params.body.0.weight".
 * Tensors are views into the mapped file (their dtype as stored); they live
 * as long as the VgWeights.
 */
#ifndef VG_ENGINE_WEIGHTS_H
#define VG_ENGINE_WEIGHTS_H

#include <stddef.h>
#include "visgen/visgen.h"
#include "engine/tensor.h"

typedef struct VgWeights VgWeights;

/* Sniffs the format (zip magic -> PyTorch, else safetensors). @path remains
 * with the caller; @c (may be NULL) is used for logging during the call only. */
int vg_weights_open(VgWeights **out, const VgCtx *c, const char *path);
int vg_safetensors_open(VgWeights **out, const VgCtx *c, const char *path);
int vg_pth_open(VgWeights **out, const VgCtx *c, const char *path);
/* Parse safetensors bytes in memory; @buf remains with the caller and must
 * outlive the result (tensors point into it). For fuzzing and tests. */
int vg_safetensors_open_mem(VgWeights **out, const VgCtx *c, const void *buf, size_t size);
/* The same for the bytes of a PyTorch zip checkpoint (tensors point into
 * @buf or into buffers the result owns). */
int vg_pth_open_mem(VgWeights **out, const VgCtx *c, const void *buf, size_t size);

/* An empty set that vg_weights_add() fills: for formats parsed elsewhere
 * (TF.js shards). */
int vg_weights_new(VgWeights **out);
/* Adds @t under @name (copied). If @t owns its buffer, ownership passes to @w
 * (t->alloc is cleared). On failure nothing changes hands; VG_ERR(EEXIST) if
 * @name is already present. Pointers from vg_weights_at/find stay valid
 * while more tensors are added. */
int vg_weights_add(VgWeights *w, const char *name, VgTensor *t);

int vg_weights_count(const VgWeights *w);
const char *vg_weights_name(const VgWeights *w, int i);
const VgTensor *vg_weights_at(const VgWeights *w, int i);
/* NULL if absent. */
const VgTensor *vg_weights_find(const VgWeights *w, const char *name);
/* safetensors __metadata__ value for @key, or NULL. Owned by @w. */
const char *vg_weights_metadata(const VgWeights *w, const char *key);

void vg_weights_close(VgWeights **w);

#endif
