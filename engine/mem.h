/* Aligned allocation in one place (SIMD loads want 64-byte alignment). */
#ifndef VG_ENGINE_MEM_H
#define VG_ENGINE_MEM_H

#include <stddef.h>

#define VG_ALIGN 64

/* NULL on failure or when @size would overflow. Free with vg_free. */
void *vg_malloc(size_t size);
void *vg_calloc(size_t n, size_t size);
void vg_free(void *p);
/* Frees *p and sets it to NULL. */
void vg_freep(void *pp);

#endif
