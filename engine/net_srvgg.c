/*
 * Real-ESRGAN SRVGGNetCompact: conv3x3(3 -> nf) + PReLU, num_conv x
 * (conv3x3 nf -> nf + PReLU), conv3x3 nf -> 3*s*s, PyTorch pixel_shuffle, plus
 * the nearest-upsampled input. Sizes come from the weight shapes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/net.h"
#include "engine/ops.h"

#define MAX_CONV 256

typedef struct SrvggNet {
    VgNet net;
    int nf, n_conv;      /* n_conv + 2 convolutions in all */
    VgTensor w[MAX_CONV + 2], b[MAX_CONV + 2], a[MAX_CONV + 1]; /* a: PReLU slopes [nf] */
} SrvggNet;

static void srvgg_destroy(VgNet *net)
{
    SrvggNet *s = (SrvggNet *)net;
    for (int i = 0; i < MAX_CONV + 2; i++) {
        vg_tensor_free(&s->w[i]);
        vg_tensor_free(&s->b[i]);
        if (i < MAX_CONV + 1)
            vg_tensor_free(&s->a[i]);
    }
    free(s);
}

static int srvgg_forward(VgNet *net, VgCtx *c, const VgTensor *x, VgTensor *y)
{
    SrvggNet *s = (SrvggNet *)net;
    const int H = (int)x->ne[2], W = (int)x->ne[3], r = s->net.scale;
    VgTensor f[2] = { { 0 } }, o = { 0 }, up = { 0 };
    VgConvParams p;
    int ret, cur = 0;

    if (x->ndim != 4 || x->ne[0] != 1 || x->ne[1] != 3)
        return VG_ERR(EINVAL);
    vg_conv_params_default(&p);
    vg_conv_params_same(&p, 3, 3, H, W);
    if ((ret = vg_tensor_alloc4(&f[0], 1, s->nf, H, W)) < 0 ||  // [1, nf, H, W]
        (ret = vg_tensor_alloc4(&f[1], 1, s->nf, H, W)) < 0)
        goto end;
    if ((ret = vg_conv2d_act(c, x, &s->w[0], &s->b[0], &p, VG_ACT_PRELU, 0.f, &s->a[0],
                             &f[0])) < 0)
        goto end;
    for (int i = 1; i <= s->n_conv; i++, cur ^= 1)
        if ((ret = vg_conv2d_act(c, &f[cur], &s->w[i], &s->b[i], &p, VG_ACT_PRELU, 0.f,
                                 &s->a[i], &f[cur ^ 1])) < 0)
            goto end;
    vg_tensor_free(&f[cur ^ 1]);
    if ((ret = vg_tensor_alloc4(&o, 1, 3 * r * r, H, W)) < 0 ||  // [1, 3*r*r, H, W]
        (ret = vg_conv2d(c, &f[cur], &s->w[s->n_conv + 1], &s->b[s->n_conv + 1], &p, &o)) < 0)
        goto end;
    vg_tensor_free(&f[cur]);
    if ((ret = vg_tensor_alloc4(y, 1, 3, (int64_t)H * r, (int64_t)W * r)) < 0 ||  // [1, 3, rH, rW]
        (ret = vg_depth_to_space(c, &o, r, VG_D2S_CRD, y)) < 0)
        goto end;
    vg_tensor_free(&o);
    if ((ret = vg_tensor_alloc4(&up, 1, 3, (int64_t)H * r, (int64_t)W * r)) < 0 ||
        (ret = vg_upsample_nearest(c, x, r, &up)) < 0 ||
        (ret = vg_add(c, y, &up, y)) < 0)
        goto end;
end:
    if (ret < 0)
        vg_tensor_free(y);
    vg_tensor_free(&f[0]);
    vg_tensor_free(&f[1]);
    vg_tensor_free(&o);
    vg_tensor_free(&up);
    return ret;
}

static size_t srvgg_working_set(const VgNet *net, int h, int w)
{
    const SrvggNet *s = (const SrvggNet *)net;
    const int r = s->net.scale;
    /* two feature maps, or the 3*r*r output, the result and the upsampled
     * input; conv2d's banded scratch is bounded, not per pixel */
    const double px = VG_MAX(2.0 * s->nf, 3.0 * r * r * 3);
    return (size_t)(px * h * w * sizeof(float)) + 3 * VG_CONV_BAND_BYTES + (8u << 20);
}

int vg_net_srvgg_create(VgNet **out, VgCtx *c, VgWeights *w, const char *prefix)
{
    SrvggNet *s = calloc(1, sizeof(*s));
    char name[256];
    int ret = 0, last = -1;
    int64_t n_params = 0;

    *out = NULL;
    if (!s) {
        vg_weights_close(&w);
        return VG_ERR(ENOMEM);
    }
    s->net.forward = srvgg_forward;
    s->net.working_set = srvgg_working_set;
    s->net.destroy = srvgg_destroy;
    s->net.in_scale = 1.f;
    s->net.align = 1;
    if (!prefix && !(prefix = vg_net_pick_prefix(w, "body.0.weight"))) {
        vg_log(c, VG_LOG_ERROR, "srvgg: weight 'body.0.weight' missing (also under params_ema. "
               "and params.)\n");
        ret = VG_EBADMODEL;
        goto fail;
    }
    /* Layout: body.0 conv, body.1 PReLU, ..., body.<last> conv (even index). */
    for (int i = 0; i <= 2 * (MAX_CONV + 1); i += 2) {
        snprintf(name, sizeof(name), "%sbody.%d.weight", prefix, i);
        if (!vg_weights_find(w, name))
            break;
        last = i;
    }
    if (last < 2) {
        vg_log(c, VG_LOG_ERROR, "srvgg: no convolutions found under '%sbody.N.weight'\n", prefix);
        ret = VG_EBADMODEL;
        goto fail;
    }
    {
        const VgTensor *w0, *wl;
        snprintf(name, sizeof(name), "%sbody.0.weight", prefix);
        w0 = vg_weights_find(w, name);
        snprintf(name, sizeof(name), "%sbody.%d.weight", prefix, last);
        wl = vg_weights_find(w, name);
        if (w0->ndim != 4 || wl->ndim != 4) {
            vg_log(c, VG_LOG_ERROR, "srvgg: '%sbody.0.weight' / '%s' are not 4-d conv kernels\n",
                   prefix, name);
            ret = VG_EBADMODEL;
            goto fail;
        }
        s->nf = (int)w0->ne[0];
        s->n_conv = last / 2 - 1;
        const int64_t cout = wl->ne[0];
        const int r = (int)lround(sqrt((double)cout / 3));
        if (r < 1 || 3 * r * r != cout) {
            vg_log(c, VG_LOG_ERROR, "srvgg: last conv '%s' has %lld outputs, not 3*scale*scale\n",
                   name, (long long)cout);
            ret = VG_EUNSUPPORTED;
            goto fail;
        }
        s->net.scale = r;
    }
    for (int i = 0; i <= s->n_conv + 1; i++) {
        const int cin = i ? s->nf : 3, cout = i <= s->n_conv ? s->nf : 3 * s->net.scale * s->net.scale;
        const int64_t ws[4] = { cout, cin, 3, 3 }, bs[1] = { cout }, as[1] = { s->nf };
        snprintf(name, sizeof(name), "%sbody.%d.weight", prefix, 2 * i);
        if ((ret = vg_net_weight(c, w, name, 4, ws, &s->w[i])) < 0)
            goto fail;
        snprintf(name, sizeof(name), "%sbody.%d.bias", prefix, 2 * i);
        if ((ret = vg_net_weight(c, w, name, 1, bs, &s->b[i])) < 0)
            goto fail;
        n_params += vg_tensor_nelem(&s->w[i]) + cout;
        if (i <= s->n_conv) {
            snprintf(name, sizeof(name), "%sbody.%d.weight", prefix, 2 * i + 1);
            if ((ret = vg_net_weight(c, w, name, 1, as, &s->a[i])) < 0)
                goto fail;
            n_params += s->nf;
        }
    }
    s->net.context = s->n_conv + 2;
    s->net.n_params = n_params;
    snprintf(s->net.desc, sizeof(s->net.desc), "SRVGGNetCompact, %d conv of %d", s->n_conv + 2,
             s->nf);
    vg_weights_close(&w);
    *out = &s->net;
    return 0;
fail:
    vg_weights_close(&w);
    srvgg_destroy(&s->net);
    return ret;
}
