/* Aligned allocation: every buffer a SIMD kernel may touch comes from here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/mem.h"

/* Blocks of this size and up (activations, GEMM and Winograd scratch) are
 * 2 MB aligned and asked to be backed by transparent huge pages: their
 * first touch then costs one fault per 2 MB instead of per 4 KB (a TAESD
 * activation at 512x512 is 64 MB: 16384 faults, ~25 ms). glibc serves
 * these from their own mmap (its dynamic mmap threshold stops at 32 MB), so
 * the advice dies with the block and never marks heap that small
 * allocations reuse. Where THP is disabled or "never" the advice has no
 * effect. */
#define HUGE_MIN ((size_t)32 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

void *vg_malloc(size_t size)
{
    void *p = NULL;
    /* Refuse sizes that cannot be real allocations (catches negative
     * int64 -> size_t conversions from bad shapes). */
    if (size > (SIZE_MAX >> 1))
        return NULL;
    const int huge = size >= HUGE_MIN;
    if (posix_memalign(&p, huge ? HUGE_ALIGN : VG_ALIGN, size ? size : 1))
        return NULL;
#ifdef MADV_HUGEPAGE
    if (huge)
        madvise(p, size & ~(HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
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
