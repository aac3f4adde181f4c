/*
 * ESRGAN RRDBNet (Real-ESRGAN / BasicSR key layout, or the original ESRGAN
 * "model.N" layout mapped onto it). Scale 4 runs on the picture; scale 2 and 1
 * fold it first with pixel_unshuffle 2 / 4 (conv_first sees 12 / 48 channels).
 *
 * Each residual dense block keeps its growing concatenation in one buffer
 * [1, nf + 4*gc, H, W]: conv k reads the first nf + (k-1)*gc channels and
 * writes the next gc, so no concat copies are made. conv5's weights are
 * pre-multiplied by the residual scale 0.2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/net.h"
#include "engine/ops.h"

#define MAX_BLOCKS 64
#define LRELU 0.2f

typedef struct Conv { VgTensor w, b; } Conv;

typedef struct RrdbNet {
    VgNet net;
    int nf, gc, nb, unshuffle;
    Conv first, body, up1, up2, hr, last;
    Conv (*rdb)[3][5];   /* [nb][3][5] */
} RrdbNet;

static void conv_free(Conv *cv)
{
    vg_tensor_free(&cv->w);
    vg_tensor_free(&cv->b);
}

static void rrdb_destroy(VgNet *net)
{
    RrdbNet *r = (RrdbNet *)net;
    conv_free(&r->first); conv_free(&r->body); conv_free(&r->up1);
    conv_free(&r->up2); conv_free(&r->hr); conv_free(&r->last);
    if (r->rdb)
        for (int i = 0; i < r->nb; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 5; k++)
                    conv_free(&r->rdb[i][j][k]);
    free(r->rdb);
    free(r);
}

/* Channel slice [c0, c0 + n) of a contiguous [1, C, H, W] tensor, as a view. */
static VgTensor slice(const VgTensor *t, int c0, int n)
{
    VgTensor v;
    const int64_t s[4] = { 1, n, t->ne[2], t->ne[3] };
    vg_tensor_view(&v, VG_DT_F32, (float *)t->data + (size_t)c0 * t->ne[2] * t->ne[3], 4, s);
    return v;
}

static int conv(VgCtx *c, const VgTensor *x, const Conv *cv, int leaky, VgTensor *y)
{
    VgConvParams p;
    vg_conv_params_default(&p);
    vg_conv_params_same(&p, 3, 3, (int)x->ne[2], (int)x->ne[3]);
    return vg_conv2d_act(c, x, &cv->w, &cv->b, &p, leaky ? VG_ACT_LEAKY : VG_ACT_NONE, LRELU,
                         NULL, y);
}

/* x [1, 3, H, W] -> y [1, 3*u*u, Hp/u, Wp/u]: PyTorch pixel_unshuffle (channel
 * c*u*u + i*u + j takes pixel (i, j) of each block). H, W are padded up to a
 * multiple of u by repeating the last row / column. */
static int pixel_unshuffle(const VgTensor *x, int u, VgTensor *y)
{
    const int H = (int)x->ne[2], W = (int)x->ne[3];
    const int h = (H + u - 1) / u, w = (W + u - 1) / u;
    int ret = vg_tensor_alloc4(y, 1, 3 * u * u, h, w);
    if (ret < 0)
        return ret;
    const float *s = x->data;
    float *d = y->data;
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < u; i++)
            for (int j = 0; j < u; j++) {
                float *o = d + (size_t)((ch * u + i) * u + j) * h * w;
                for (int yy = 0; yy < h; yy++) {
                    const int sy = VG_MIN(yy * u + i, H - 1);
                    for (int xx = 0; xx < w; xx++)
                        o[(size_t)yy * w + xx] = s[((size_t)ch * H + sy) * W + VG_MIN(xx * u + j, W - 1)];
                }
            }
    return 0;
}

static int rrdb_forward(VgNet *net, VgCtx *c, const VgTensor *x, VgTensor *y)
{
    RrdbNet *r = (RrdbNet *)net;
    const int H = (int)x->ne[2], W = (int)x->ne[3], u = r->unshuffle, nf = r->nf;
    VgTensor in = { 0 }, feat = { 0 }, cur = { 0 }, d[2] = { { 0 } }, t = { 0 }, t2 = { 0 }, full = { 0 };
    const VgTensor *x0 = x;
    int ret, h, w;

    if (x->ndim != 4 || x->ne[0] != 1 || x->ne[1] != 3)
        return VG_ERR(EINVAL);
    if (u > 1) {
        if ((ret = pixel_unshuffle(x, u, &in)) < 0)  // [1, 3*u*u, ceil(H/u), ceil(W/u)]
            goto end;
        x0 = &in;
    }
    h = (int)x0->ne[2];
    w = (int)x0->ne[3];
    if ((ret = vg_tensor_alloc4(&feat, 1, nf, h, w)) < 0 ||          // [1, nf, h, w]
        (ret = vg_tensor_alloc4(&cur, 1, nf, h, w)) < 0 ||
        (ret = vg_tensor_alloc4(&d[0], 1, nf + 4 * r->gc, h, w)) < 0 ||  // [1, nf+4gc, h, w]
        (ret = vg_tensor_alloc4(&d[1], 1, nf + 4 * r->gc, h, w)) < 0 ||
        (ret = conv(c, x0, &r->first, 0, &feat)) < 0)
        goto end;
    vg_tensor_free(&in);
    memcpy(cur.data, feat.data, sizeof(float) * nf * h * w);
    for (int b = 0; b < r->nb; b++) {
        int s = 0;
        memcpy(d[0].data, cur.data, sizeof(float) * nf * h * w);
        for (int m = 0; m < 3; m++, s ^= 1) {
            for (int k = 0; k < 4; k++) {
                VgTensor src = slice(&d[s], 0, nf + k * r->gc), dst = slice(&d[s], nf + k * r->gc, r->gc);
                if ((ret = conv(c, &src, &r->rdb[b][m][k], 1, &dst)) < 0)
                    goto end;
            }
            VgTensor src = slice(&d[s], 0, nf + 4 * r->gc), dst = slice(&d[s ^ 1], 0, nf), res = slice(&d[s], 0, nf);
            if ((ret = conv(c, &src, &r->rdb[b][m][4], 0, &dst)) < 0 ||  // conv5 * 0.2
                (ret = vg_add(c, &dst, &res, &dst)) < 0)
                goto end;
        }
        /* RRDB output = rdb3 * 0.2 + block input; rdb3 is in d[s][0:nf] */
        VgTensor o = slice(&d[s], 0, nf);
        if ((ret = vg_scale(c, &o, 0.2f, &o)) < 0 || (ret = vg_add(c, &cur, &o, &cur)) < 0)
            goto end;
    }
    vg_tensor_free(&d[0]);
    vg_tensor_free(&d[1]);
    if ((ret = vg_tensor_alloc4(&t, 1, nf, h, w)) < 0 || (ret = conv(c, &cur, &r->body, 0, &t)) < 0)
        goto end;
    vg_tensor_free(&cur);
    if ((ret = vg_add(c, &t, &feat, &t)) < 0)
        goto end;
    vg_tensor_free(&feat);
    for (int k = 0; k < 2; k++) {
        h *= 2;
        w *= 2;
        if ((ret = vg_tensor_alloc4(&t2, 1, nf, h, w)) < 0 ||  // [1, nf, 2h, 2w]
            (ret = vg_upsample_nearest(c, &t, 2, &t2)) < 0)
            goto end;
        vg_tensor_free(&t);
        if ((ret = vg_tensor_alloc4(&t, 1, nf, h, w)) < 0 ||
            (ret = conv(c, &t2, k ? &r->up2 : &r->up1, 1, &t)) < 0)
            goto end;
        vg_tensor_free(&t2);
    }
    if ((ret = vg_tensor_alloc4(&t2, 1, nf, h, w)) < 0 || (ret = conv(c, &t, &r->hr, 1, &t2)) < 0)
        goto end;
    vg_tensor_free(&t);
    /* [1, 3, 4h, 4w]; cropped when the input was padded to a multiple of u */
    if ((ret = vg_tensor_alloc4(&full, 1, 3, h, w)) < 0 || (ret = conv(c, &t2, &r->last, 0, &full)) < 0)
        goto end;
    vg_tensor_free(&t2);
    {
        const int S = r->net.scale, oh = H * S, ow = W * S;
        if (oh == h && ow == w) {
            *y = full;
            memset(&full, 0, sizeof(full));
        } else {
            if ((ret = vg_tensor_alloc4(y, 1, 3, oh, ow)) < 0)
                goto end;
            for (int ch = 0; ch < 3; ch++)
                for (int yy = 0; yy < oh; yy++)
                    memcpy((float *)y->data + ((size_t)ch * oh + yy) * ow,
                           (float *)full.data + ((size_t)ch * h + yy) * w, sizeof(float) * ow);
        }
    }
end:
    vg_tensor_free(&in); vg_tensor_free(&feat); vg_tensor_free(&cur);
    vg_tensor_free(&d[0]); vg_tensor_free(&d[1]);
    vg_tensor_free(&t); vg_tensor_free(&t2); vg_tensor_free(&full);
    return ret;
}

static size_t rrdb_working_set(const VgNet *net, int h, int w)
{
    const RrdbNet *r = (const RrdbNet *)net;
    const double u2 = (double)r->unshuffle * r->unshuffle;
    /* LR stage per input pixel: feat, cur, two dense buffers; HR stage: two nf
     * maps at 16x the LR area. conv2d's banded scratch is bounded, not per pixel. */
    const double lr = (4.0 * r->nf + 8.0 * r->gc) / u2;
    const double hr = (2.0 * r->nf * 16) / u2;
    return (size_t)(VG_MAX(lr, hr) * h * w * sizeof(float)) + 3 * VG_CONV_BAND_BYTES +
           (8u << 20);
}

/* Key of logical conv @what ("conv_first", "body.3.rdb2.conv4", ...) for the
 * layout in use. Old ESRGAN: model.0, model.1.sub.N.RDBm.convk.0,
 * model.1.sub.<nb> (conv_body), model.3/6/8/10. */
static void key(char *buf, size_t size, const char *prefix, int old, int nb, const char *what,
                const char *wb)
{
    int i, m, k;
    if (!old) {
        snprintf(buf, size, "%s%s.%s", prefix, what, wb);
    } else if (sscanf(what, "body.%d.rdb%d.conv%d", &i, &m, &k) == 3) {
        snprintf(buf, size, "%smodel.1.sub.%d.RDB%d.conv%d.0.%s", prefix, i, m, k, wb);
    } else {
        static const char *const map[][2] = {
            { "conv_first", "model.0" }, { "conv_up1", "model.3" }, { "conv_up2", "model.6" },
            { "conv_hr", "model.8" }, { "conv_last", "model.10" },
        };
        if (!strcmp(what, "conv_body")) {
            snprintf(buf, size, "%smodel.1.sub.%d.%s", prefix, nb, wb);
            return;
        }
        for (size_t j = 0; j < VG_ARRAY_SIZE(map); j++)
            if (!strcmp(what, map[j][0]))
                snprintf(buf, size, "%s%s.%s", prefix, map[j][1], wb);
    }
}

static int load_conv(VgCtx *c, const VgWeights *w, const char *prefix, int old, int nb,
                     const char *what, int cout, int cin, float mul, Conv *cv, int64_t *n_params)
{
    char name[256];
    const int64_t ws[4] = { cout, cin, 3, 3 }, bs[1] = { cout };
    int ret;
    key(name, sizeof(name), prefix, old, nb, what, "weight");
    if ((ret = vg_net_weight(c, w, name, 4, ws, &cv->w)) < 0)
        return ret;
    key(name, sizeof(name), prefix, old, nb, what, "bias");
    if ((ret = vg_net_weight(c, w, name, 1, bs, &cv->b)) < 0)
        return ret;
    if (mul != 1.f) {
        float *p = cv->w.data, *q = cv->b.data;
        for (int64_t i = 0; i < vg_tensor_nelem(&cv->w); i++)
            p[i] *= mul;
        for (int i = 0; i < cout; i++)
            q[i] *= mul;
    }
    *n_params += vg_tensor_nelem(&cv->w) + cout;
    return 0;
}

int vg_net_rrdb_create(VgNet **out, VgCtx *c, VgWeights *w, const char *prefix)
{
    RrdbNet *r = calloc(1, sizeof(*r));
    char name[256], what[64];
    int ret = 0, old, in_ch;
    int64_t n_params = 0;
    const VgTensor *t;

    *out = NULL;
    if (!r) {
        vg_weights_close(&w);
        return VG_ERR(ENOMEM);
    }
    r->net.forward = rrdb_forward;
    r->net.working_set = rrdb_working_set;
    r->net.destroy = rrdb_destroy;
    r->net.in_scale = 1.f;
    if (!prefix && !(prefix = vg_net_pick_prefix(w, "conv_first.weight")) &&
        !(prefix = vg_net_pick_prefix(w, "model.0.weight"))) {
        vg_log(c, VG_LOG_ERROR, "rrdb: neither 'conv_first.weight' nor 'model.0.weight' found "
               "(also under params_ema. and params.)\n");
        ret = VG_EBADMODEL;
        goto fail;
    }
    snprintf(name, sizeof(name), "%sconv_first.weight", prefix);
    old = !vg_weights_find(w, name);
    key(name, sizeof(name), prefix, old, 0, "conv_first", "weight");
    if (!(t = vg_weights_find(w, name)) || t->ndim != 4) {
        vg_log(c, VG_LOG_ERROR, "rrdb: '%s' missing or not a 4-d conv kernel\n", name);
        ret = VG_EBADMODEL;
        goto fail;
    }
    r->nf = (int)t->ne[0];
    in_ch = (int)t->ne[1];
    switch (in_ch) {
    case 3:  r->unshuffle = 1; break;
    case 12: r->unshuffle = 2; break;
    case 48: r->unshuffle = 4; break;
    default:
        vg_log(c, VG_LOG_ERROR, "rrdb: '%s' takes %d channels; expected 3, 12 or 48 (scale 4, 2, 1)\n",
               name, in_ch);
        ret = VG_EUNSUPPORTED;
        goto fail;
    }
    r->net.scale = 4 / r->unshuffle;
    r->net.align = r->unshuffle;
    for (r->nb = 0; r->nb <= MAX_BLOCKS; r->nb++) {
        snprintf(what, sizeof(what), "body.%d.rdb1.conv1", r->nb);
        key(name, sizeof(name), prefix, old, 0, what, "weight");
        if (!vg_weights_find(w, name))
            break;
        t = vg_weights_find(w, name);
        if (t->ndim != 4) {
            vg_log(c, VG_LOG_ERROR, "rrdb: '%s' is not a 4-d conv kernel\n", name);
            ret = VG_EBADMODEL;
            goto fail;
        }
        r->gc = (int)t->ne[0];
    }
    if (r->nb < 1 || r->nb > MAX_BLOCKS) {
        vg_log(c, VG_LOG_ERROR, "rrdb: %d residual blocks (first: '%s'); 1..%d supported\n", r->nb,
               name, MAX_BLOCKS);
        ret = r->nb ? VG_EUNSUPPORTED : VG_EBADMODEL;
        goto fail;
    }
    if (!(r->rdb = calloc(r->nb, sizeof(*r->rdb)))) {
        ret = VG_ERR(ENOMEM);
        goto fail;
    }
    if ((ret = load_conv(c, w, prefix, old, r->nb, "conv_first", r->nf, in_ch, 1.f, &r->first, &n_params)) < 0)
        goto fail;
    for (int i = 0; i < r->nb; i++)
        for (int m = 0; m < 3; m++)
            for (int k = 0; k < 5; k++) {
                snprintf(what, sizeof(what), "body.%d.rdb%d.conv%d", i, m + 1, k + 1);
                if ((ret = load_conv(c, w, prefix, old, r->nb, what, k < 4 ? r->gc : r->nf,
                                     r->nf + k * r->gc, k < 4 ? 1.f : 0.2f, &r->rdb[i][m][k],
                                     &n_params)) < 0)
                    goto fail;
            }
    if ((ret = load_conv(c, w, prefix, old, r->nb, "conv_body", r->nf, r->nf, 1.f, &r->body, &n_params)) < 0 ||
        (ret = load_conv(c, w, prefix, old, r->nb, "conv_up1", r->nf, r->nf, 1.f, &r->up1, &n_params)) < 0 ||
        (ret = load_conv(c, w, prefix, old, r->nb, "conv_up2", r->nf, r->nf, 1.f, &r->up2, &n_params)) < 0 ||
        (ret = load_conv(c, w, prefix, old, r->nb, "conv_hr", r->nf, r->nf, 1.f, &r->hr, &n_params)) < 0 ||
        (ret = load_conv(c, w, prefix, old, r->nb, "conv_last", 3, r->nf, 1.f, &r->last, &n_params)) < 0)
        goto fail;
    /* receptive radius: LR convs count u input pixels each, the upsampled ones less */
    r->net.context = r->unshuffle * (2 + 15 * r->nb) + (r->unshuffle * 5 + 3) / 4 + r->unshuffle;
    r->net.n_params = n_params;
    snprintf(r->net.desc, sizeof(r->net.desc), "RRDBNet%s, %d blocks of %d/%d", old ? " (ESRGAN layout)" : "",
             r->nb, r->nf, r->gc);
    vg_weights_close(&w);
    *out = &r->net;
    return 0;
fail:
    vg_weights_close(&w);
    rrdb_destroy(&r->net);
    return ret;
}
