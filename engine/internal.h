/* Library context internals and logging, shared by every engine file. */
#ifndef VG_ENGINE_INTERNAL_H
#define VG_ENGINE_INTERNAL_H

#include "visgen/visgen.h"
#include "engine/threads.h"

struct VgCtx {
    VgSettings s;
    int n_threads;
    char blas_kernel[32];
    VgPool *pool;  /* worker threads for non-BLAS kernels */
    /* Grow-only buffer the nn ops widen large F16/BF16 weights into: a fresh
     * allocation per call cost the UNet 12% in page faults and munmap. One
     * weight at a time is widened per context (engine/ops/nn.c). */
    float *wscratch;
    size_t wscratch_n;
    int wscratch_busy;
    /* profiling (vg_unet_set_profile): widening time and values, when set */
    double *prof_widen_s;
    int64_t *prof_widen_n;
};

#ifdef __GNUC__
#define VG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VG_PRINTF(a, b)
#endif

/* @c may be NULL (silent). */
void vg_log(const VgCtx *c, int level, const char *fmt, ...) VG_PRINTF(3, 4);

#define VG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VG_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Argument checks for public entry points: a caller bug, not bad data. */
#define VG_VALIDATE(x, r) do { if (!(x)) return (r); } while (0)

#endif
