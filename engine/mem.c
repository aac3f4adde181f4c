/* Aligned allocation: every buffer a SIMD kernel may touch comes from here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem.h"

void *vg_malloc(size_t size)
{
    void *p = NULL;
    /* Refuse sizes that cannot be real allocations (catches negative
     * int64 -> size_t conversions from bad shapes). */
    if (size > (SIZE_MAX >> 1))
        return NULL;
    if (posix_memalign(&p, VG_ALIGN, size ? size : 1))
        return NULL;
    return p;
}

void *vg_calloc(size_t n, size_t size)
{
    if (size && n > (SIZE_MAX >> 1) / size)
        return NULL;
    void *p = vg_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void vg_free(void *p)
{
    free(p);
}

void vg_freep(void *pp)
{
    void **p = pp;
    free(*p);
    *p = NULL;
}
