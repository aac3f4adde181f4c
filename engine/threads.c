/*
 * Fork-join pool. Workers sleep on a condition variable between jobs (they
 * never spin, so they do not steal the CPU from OpenBLAS's own threads) and
 * take job indices from a shared atomic counter, so uneven items balance.
 *
 * One job at a time: concurrent vg_pool_run calls from different threads are
 * serialised by run_lock. A vg_pool_run issued from inside a job of the same
 * pool runs inline on that thread with that thread's tid (no deadlock, and
 * per-tid scratch buffers stay private).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "visgen/visgen.h"
#include "engine/threads.h"

struct VgPool {
    int n_threads;          /* including the caller */
    pthread_t *tids;        /* n_threads - 1 workers */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_mutex_t run_lock;
    unsigned gen;           /* bumped for every job; workers wait for a change */
    int quit;
    int busy;               /* workers still inside the current job */
    VgPoolFn fn;
    void *arg;
    int n;
    atomic_int next;
};

typedef struct WorkerArg { VgPool *p; int tid; } WorkerArg;

/* Which pool (if any) this thread is currently running a job for. */
static _Thread_local const VgPool *tls_pool;
static _Thread_local int tls_tid;

static void run_items(VgPool *p, int tid)
{
    const VgPool *prev = tls_pool;
    int prev_tid = tls_tid;
    tls_pool = p;
    tls_tid = tid;
    for (;;) {
        int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n)
            break;
        p->fn(p->arg, i, tid);
    }
    tls_pool = prev;
    tls_tid = prev_tid;
}

static void *worker(void *a)
{
    VgPool *p = ((WorkerArg *)a)->p;
    const int tid = ((WorkerArg *)a)->tid;
    free(a);
    unsigned seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->lock);
        run_items(p, tid);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int vg_pool_open(VgPool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return VG_ERR(EINVAL);
    VgPool *p = calloc(1, sizeof(*p));
    if (!p)
        return VG_ERR(ENOMEM);
    p->n_threads = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->tids = calloc(n_threads, sizeof(*p->tids));
    if (!p->tids)
        goto fail;
    for (int t = 1; t < n_threads; t++) {
        WorkerArg *wa = malloc(sizeof(*wa));
        if (!wa)
            goto fail;
        wa->p = p;
        wa->tid = t;
        if (pthread_create(&p->tids[t - 1], NULL, worker, wa)) {
            free(wa);
            goto fail;
        }
        p->n_threads++;
    }
    *out = p;
    return 0;
fail:
    vg_pool_close(&p);
    return VG_ERR(ENOMEM);
}

int vg_pool_threads(const VgPool *p)
{
    return p ? p->n_threads : 1;
}

void vg_pool_run(VgPool *p, int n, VgPoolFn fn, void *arg)
{
    if (n <= 0)
        return;
    if (!p || p->n_threads == 1 || n == 1 || tls_pool == p) {
        const int tid = (p && tls_pool == p) ? tls_tid : 0;
        for (int i = 0; i < n; i++)
            fn(arg, i, tid);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    run_items(p, 0);

    pthread_mutex_lock(&p->lock);
    while (p->busy)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->run_lock);
}

void vg_pool_close(VgPool **pp)
{
    VgPool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int t = 1; t < p->n_threads; t++)
        pthread_join(p->tids[t - 1], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
    *pp = NULL;
}
