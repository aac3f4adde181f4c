/* Writing named tensors as a .safetensors file (for `visgen forward`). */
#ifndef VG_ENGINE_IO_SAFETENSORS_WRITE_H
#define VG_ENGINE_IO_SAFETENSORS_WRITE_H

#include "visgen/visgen.h"
#include "engine/tensor.h"

/*
 * Writes @n tensors (any dtype except BOOL, any strides: copied out
 * contiguously) under @names to @path, in order, data 8-byte aligned.
 * Everything remains with the caller. Errors are logged through @c.
 */
int vg_safetensors_write(const VgCtx *c, const char *path, int n, const char *const *names,
                         const VgTensor *const *tensors);

#endif
