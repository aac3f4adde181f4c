/*
 * Reuse of activation buffers within one network forward.
 *
 * A forward allocates and frees the same few shapes over and over; a fresh
 * multi-MB block comes from mmap and costs a page fault and a zeroing per
 * 4 KB on every first touch (SD's UNet: ~190k faults, ~0.5 s of system
 * time per evaluation at 64x64; TAESD at 512x512: ~30 ms per 64 MB
 * activation). A VgActCache keeps the blocks its owner frees, up to a byte
 * budget, and hands them out again for requests of exactly the same size.
 * Blocks handed out are NOT zeroed: callers write every element.
 *
 * Not thread-safe: one cache per network object, used by the thread that
 * runs the forward. The UNet and TAESD keep their blocks while they are
 * open, because a video's frames (and a sampler's steps) repeat the same
 * shapes and a fresh block costs faults and zeroing every time; the budget
 * bounds what stays allocated between calls. The owner calls vg_act_forget
 * when a forward ends, so a block that left the network (its result) is
 * never mistaken later for one of the cache's own.
 */
#ifndef VG_ENGINE_ACT_CACHE_H
#define VG_ENGINE_ACT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

#define VG_ACT_CACHE_SLOTS 32
/* blocks handed out whose size is remembered: a freed tensor may be a
 * reshaped or narrowed view, so its own shape does not tell the size */
#define VG_ACT_CACHE_OUT 64

typedef struct VgActBlock {
    void *p;
    size_t n;
} VgActBlock;

typedef struct VgActCache {
    VgActBlock slot[VG_ACT_CACHE_SLOTS]; /* kept, free for reuse */
    VgActBlock out[VG_ACT_CACHE_OUT];    /* handed out */
    size_t bytes, max_bytes;             /* bytes kept, and the most to keep */
} VgActCache;

/* An empty cache that keeps at most @max_bytes of freed blocks. */
void vg_act_cache_init(VgActCache *c, size_t max_bytes);

/* *t = a new F32 tensor of @shape (@ndim dims; shape read only), from a
 * kept block of the same size or vg_malloc; contents undefined. @c may be
 * NULL (plain allocation). 0, VG_ERR(EINVAL) for a bad shape or
 * VG_ERR(ENOMEM); *t is left empty on failure. */
int vg_act_alloc(VgActCache *c, VgTensor *t, int ndim, const int64_t *shape);
int vg_act_alloc4(VgActCache *c, VgTensor *t, int64_t n0, int64_t n1, int64_t n2, int64_t n3);

/* Takes t's buffer (if it owns one: from vg_act_alloc, vg_malloc or
 * vg_tensor_alloc) into the cache when it came from vg_act_alloc on this
 * cache since the last vg_act_forget, dropping kept blocks of other sizes
 * to make room within the budget; else frees it. *t is emptied. */
void vg_act_free(VgActCache *c, VgTensor *t);

/* The forward is over: blocks handed out and not returned are their
 * holders' now (to free with vg_tensor_free / vg_free). */
void vg_act_forget(VgActCache *c);

/* Frees every kept block and forgets the ones handed out (they are freed
 * when returned). */
void vg_act_flush(VgActCache *c);

#endif
