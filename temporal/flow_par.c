/* Fork-join helper of the DIS flow: plain pthreads per call, because the
 * temporal/ layer has no engine pool and the jobs (a few per level) are long
 * compared with a thread start (~20 us). */
#include <pthread.h>

#include "temporal/flow_int.h"

typedef struct Job {
    void (*fn)(void *ctx, int k);
    void *ctx;
    int t, nt, n;
} Job;

static void *run(void *arg)
{
    Job *j = arg;
    for (int k = j->t; k < j->n; k += j->nt)
        j->fn(j->ctx, k);
    return NULL;
}

void vg_flow_parallel(int threads, int n, void (*fn)(void *ctx, int k), void *ctx)
{
    enum { MAXT = 16 };
    if (n <= 0)
        return;
    int nt = threads < 1 ? 1 : threads > MAXT ? MAXT : threads;
    if (nt > n)
        nt = n;
    pthread_t th[MAXT];
    Job jobs[MAXT];
    int started[MAXT] = { 0 };
    for (int t = 0; t < nt; t++)
        jobs[t] = (Job){ fn, ctx, t, nt, n };
    for (int t = 1; t < nt; t++)
        started[t] = !pthread_create(&th[t], NULL, run, &jobs[t]);
    run(&jobs[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            run(&jobs[t]); /* could not start: do its share here */
    }
}
