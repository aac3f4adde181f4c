/*
 * A small fork-join pool: vg_pool_run(pool, n, fn, arg) calls fn(arg, i, tid)
 * for i in [0, n) spread over the pool's threads and returns when all are done.
 * The caller's thread works too, so a pool of 1 thread runs inline.
 */
#ifndef VG_ENGINE_THREADS_H
#define VG_ENGINE_THREADS_H

typedef struct VgPool VgPool;
typedef void (*VgPoolFn)(void *arg, int i, int tid);

/* @out receives a pool owned by the caller (vg_pool_close). */
int vg_pool_open(VgPool **out, int n_threads);
int vg_pool_threads(const VgPool *p);
/* @p may be NULL: then fn runs inline on the calling thread. */
void vg_pool_run(VgPool *p, int n, VgPoolFn fn, void *arg);
void vg_pool_close(VgPool **p);

#endif
