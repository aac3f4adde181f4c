/* Shared by the op files: argument checks and splitting work over the pool. */
#ifndef VG_ENGINE_OPS_COMMON_H
#define VG_ENGINE_OPS_COMMON_H

#include <stdint.h>

#include "engine/internal.h"
#include "engine/tensor.h"

static inline VgPool *vg_ops_pool(VgCtx *c)
{
    return c ? c->pool : NULL;
}

/* 0 if @t is a contiguous F32 tensor with @ndim dims (ndim 0 = any), else
 * logs "@op: @what ... " and returns VG_ERR(EINVAL). */
int vg_ops_check_f32(const VgCtx *c, const char *op, const char *what, const VgTensor *t,
                     int ndim);
/* 0 if @a and @b have the same shape, else logs both and VG_ERR(EINVAL). */
int vg_ops_check_same(const VgCtx *c, const char *op, const char *wa, const VgTensor *a,
                      const char *wb, const VgTensor *b);

/*
 * Calls fn(arg, plane, start, len) over a flat array of @planes * @plane_len
 * floats cut into pool jobs of a few tens of KB; a segment never crosses a
 * plane boundary, so per-plane (per-channel) parameters stay constant
 * within one call. start is the flat element index.
 */
typedef void (*VgSegFn)(void *arg, int64_t plane, int64_t start, int64_t len);
void vg_ops_for_segments(VgCtx *c, int64_t planes, int64_t plane_len, VgSegFn fn, void *arg);

#endif
