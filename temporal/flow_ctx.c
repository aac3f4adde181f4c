/* Scratch buffers of the DIS flow kept between calls. A call asks for its
 * buffers in the same order every time, so the k-th request reuses the k-th
 * buffer of the previous call: no allocation (nor the page faults of fresh
 * mmap'd memory, ~20% of a 584x388 call) once the frame size is stable. */
#include <errno.h>
#include <stdlib.h>

#include "include/visgen/visgen.h"
#include "temporal/flow_int.h"

struct VgFlowCtx {
    struct { void *p; size_t size; } *slot;
    int nslot, next;
};

int vg_flow_ctx_open(VgFlowCtx **pctx)
{
    if (!pctx)
        return VG_ERR(EINVAL);
    *pctx = calloc(1, sizeof(**pctx));
    return *pctx ? 0 : VG_ERR(ENOMEM);
}

void vg_flow_ctx_close(VgFlowCtx **pctx)
{
    if (!pctx || !*pctx)
        return;
    for (int k = 0; k < (*pctx)->nslot; k++)
        free((*pctx)->slot[k].p);
    free((*pctx)->slot);
    free(*pctx);
    *pctx = NULL;
}

void vg_flow_scratch_reset(VgFlowCtx *c)
{
    c->next = 0;
}

void *vg_flow_scratch(VgFlowCtx *c, size_t bytes)
{
    if (c->next == c->nslot) {
        int n = c->nslot ? 2 * c->nslot : 32;
        void *s = realloc(c->slot, sizeof(*c->slot) * n);
        if (!s)
            return NULL;
        c->slot = s;
        for (int k = c->nslot; k < n; k++) {
            c->slot[k].p = NULL;
            c->slot[k].size = 0;
        }
        c->nslot = n;
    }
    if (c->slot[c->next].size < bytes) {
        free(c->slot[c->next].p);
        c->slot[c->next].p = malloc(bytes ? bytes : 1);
        c->slot[c->next].size = c->slot[c->next].p ? bytes : 0;
        if (!c->slot[c->next].p)
            return NULL;
    }
    return c->slot[c->next++].p;
}
