/* Exact-size reuse of activation buffers (engine/act_cache.h). */
#include <string.h>

#include "engine/act_cache.h"
#include "engine/internal.h"
#include "engine/mem.h"

void vg_act_cache_init(VgActCache *c, size_t max_bytes)
{
    memset(c, 0, sizeof(*c));
    c->max_bytes = max_bytes;
}

int vg_act_alloc(VgActCache *c, VgTensor *t, int ndim, const int64_t *shape)
{
    size_t n;
    void *p = NULL;
    int ret;
    memset(t, 0, sizeof(*t));
    if ((ret = vg_tensor_bytes(VG_DT_F32, ndim, shape, &n)) < 0)
        return ret;
    for (int i = 0; c && i < VG_ACT_CACHE_SLOTS && !p; i++)
        if (c->slot[i].p && c->slot[i].n == n) {
            p = c->slot[i].p;
            c->slot[i].p = NULL;
            c->bytes -= n;
        }
    if (!p && !(p = vg_malloc(n)))
        return VG_ERR(ENOMEM);
    /* an entry for p left by a block freed outside the cache is replaced */
    int free_i = -1;
    for (int i = 0; c && i < VG_ACT_CACHE_OUT; i++) {
        if (c->out[i].p == p) {
            free_i = i;
            break;
        }
        if (!c->out[i].p && free_i < 0)
            free_i = i;
    }
    if (free_i >= 0)
        c->out[free_i] = (VgActBlock){ p, n };
    vg_tensor_view(t, VG_DT_F32, p, ndim, shape);
    t->alloc = p;
    return 0;
}

int vg_act_alloc4(VgActCache *c, VgTensor *t, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    const int64_t s[4] = { n0, n1, n2, n3 };
    return vg_act_alloc(c, t, 4, s);
}

void vg_act_free(VgActCache *c, VgTensor *t)
{
    void *p = t->alloc;
    memset(t, 0, sizeof(*t));
    if (!p)
        return;
    size_t n = 0;
    for (int i = 0; c && i < VG_ACT_CACHE_OUT && !n; i++)
        if (c->out[i].p == p) {
            n = c->out[i].n;
            c->out[i].p = NULL;
        }
    if (!n || n > c->max_bytes) {
        vg_free(p);
        return;
    }
    int free_slot = -1;
    for (int i = 0; i < VG_ACT_CACHE_SLOTS && free_slot < 0; i++)
        if (!c->slot[i].p)
            free_slot = i;
    /* room by dropping kept blocks of other sizes, in slot order, as few as
     * needed: after a change of resolution the old shapes would otherwise
     * hold the budget for good */
    for (int i = 0; i < VG_ACT_CACHE_SLOTS && (free_slot < 0 || c->bytes + n > c->max_bytes);
         i++)
        if (c->slot[i].p && c->slot[i].n != n) {
            c->bytes -= c->slot[i].n;
            vg_freep(&c->slot[i].p);
            if (free_slot < 0)
                free_slot = i;
        }
    if (free_slot >= 0 && c->bytes + n <= c->max_bytes) {
        c->slot[free_slot] = (VgActBlock){ p, n };
        c->bytes += n;
    } else {
        vg_free(p);
    }
}

void vg_act_forget(VgActCache *c)
{
    memset(c->out, 0, sizeof(c->out));
}

void vg_act_flush(VgActCache *c)
{
    for (int i = 0; i < VG_ACT_CACHE_SLOTS; i++)
        vg_freep(&c->slot[i].p);
    vg_act_forget(c);
    c->bytes = 0;
}
