/*
 * Restricted unpickler for PyTorch checkpoints. It builds only plain data
 * (None, bools, ints, floats, strings, tuples, lists, dicts) and tensors: the
 * only globals it resolves are collections.OrderedDict, torch's tensor /
 * parameter rebuild functions and the torch.*Storage types, and the only
 * persistent ids it accepts are ('storage', type, key, location, numel).
 * Nothing in the pickle is ever executed: any other global or opcode is
 * refused (VG_EREFUSED) naming it.
 */
#ifndef VG_ENGINE_IO_PICKLE_H
#define VG_ENGINE_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>
#include "engine/tensor.h"
#include "engine/weights.h"

/* Resolves storage @key (NUL-terminated) of @numel elements of @dt: sets
 * *data and *nbytes (the bytes available; must hold numel elements) to memory
 * that outlives the weight set. Returns 0 or a negative code (having logged). */
typedef int (*VgPickleStorageFn)(void *opaque, const char *key, VgDType dt, int64_t numel,
                                 const uint8_t **data, uint64_t *nbytes);

/* Unpickles @buf (len bytes, remains with the caller) and adds every tensor it
 * holds to @w, names flattened with '.' (list items by index). @fn names the
 * file in log lines. VG_EBADMODEL for a malformed pickle, VG_EREFUSED for a
 * disallowed global/opcode, VG_EUNSUPPORTED for valid but unhandled content. */
int vg_unpickle_weights(VgWeights *w, const VgCtx *c, const char *fn,
                        const uint8_t *buf, size_t len, VgPickleStorageFn storage, void *opaque);

#endif
