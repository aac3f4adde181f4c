/* What every network shares: destruction and checked weight lookup. */
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/net.h"

void vg_net_destroy(VgNet **pn)
{
    VgNet *n = pn ? *pn : NULL;
    if (!n)
        return;
    n->destroy(n);
    *pn = NULL;
}

const char *vg_net_pick_prefix(const VgWeights *w, const char *probe)
{
    static const char *const prefixes[] = { "params_ema.", "params.", "" };
    char name[256];
    for (size_t i = 0; i < VG_ARRAY_SIZE(prefixes); i++) {
        snprintf(name, sizeof(name), "%s%s", prefixes[i], probe);
        if (vg_weights_find(w, name))
            return prefixes[i];
    }
    return NULL;
}

int vg_net_weight(VgCtx *c, const VgWeights *w, const char *name, int ndim,
                  const int64_t *shape, VgTensor *out)
{
    const VgTensor *t = vg_weights_find(w, name);
    char got[96], want[96];
    int ok, ret;

    memset(out, 0, sizeof(*out));
    if (!t) {
        vg_log(c, VG_LOG_ERROR, "model: weight '%s' missing\n", name);
        return VG_EBADMODEL;
    }
    ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || t->ne[i] == shape[i];
    if (!ok) {
        int p = snprintf(want, sizeof(want), "[");
        for (int i = 0; i < ndim && p < (int)sizeof(want) - 24; i++)
            p += shape[i] < 0 ? snprintf(want + p, sizeof(want) - p, "%s*", i ? ", " : "")
                              : snprintf(want + p, sizeof(want) - p, "%s%lld", i ? ", " : "",
                                         (long long)shape[i]);
        snprintf(want + p, sizeof(want) - p, "]");
        vg_log(c, VG_LOG_ERROR, "model: weight '%s' has shape %s, expected %s\n", name,
               vg_tensor_shape_str(t, got, sizeof(got)), want);
        return VG_EBADMODEL;
    }
    if ((ret = vg_tensor_to_f32(t, out)) < 0) {
        vg_log(c, VG_LOG_ERROR, "model: weight '%s' (%s) cannot be converted to float32\n", name,
               vg_dtype_name(t->dtype));
        return ret == VG_ERR(ENOMEM) ? ret : VG_EUNSUPPORTED;
    }
    return 0;
}
