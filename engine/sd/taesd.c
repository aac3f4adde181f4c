/*
 * TAESD encoder and decoder as published in madebyollin/taesd (taesd.py):
 *
 *   conv(a, b)  3x3, padding 1, bias;  Block(n) = ReLU(conv ReLU conv ReLU conv + x)
 *   Encoder  conv(3,W) Block | conv(W,W, stride 2, no bias) Block x3 (three times) | conv(W,L)
 *   Decoder  tanh(x/3)*3 | conv(L,W) ReLU Block x3 | (Upsample x2, conv(W,W, no bias),
 *            Block x3) twice | Upsample, conv(no bias), Block | conv(W,3)
 *
 * The layer strings below index the nn.Sequential exactly as the state dict
 * does ("0.weight", "1.conv.0.weight", ...), one character per index.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/act_cache.h"
#include "engine/internal.h"
#include "engine/ops.h"
#include "engine/sd/taesd.h"

/* c: conv 3x3 + bias   s: conv 3x3 stride 2, no bias   n: conv 3x3, no bias
 * b: Block   r: ReLU   u: nearest upsample x2   z: clamp tanh(x/3)*3 */
static const char enc_layout[] = "cbsbbbsbbbsbbbc";
static const char dec_layout[] = "zcrbbbunbbbunbbbunbc";
#define MAX_LAYERS 20
/* activations kept for reuse while the TAESD is open (engine/act_cache.h):
 * a Block at 512x512 with width 64 holds four 64 MB tensors */
#define TAE_CACHE_BYTES ((size_t)320 << 20)

typedef struct TaeConv {
    VgTensor w, b; /* owned F32: w [Cout, Cin, k, k], b [Cout] or empty */
    int stride;
} TaeConv;

typedef struct TaeLayer {
    char kind;
    TaeConv c[3];  /* 'c'/'s'/'n': c[0]; 'b': conv.0, conv.2, conv.4 */
    VgTensor skip; /* 'b' with in != out: 1x1 no-bias [Cout, Cin, 1, 1], else empty */
} TaeLayer;

typedef struct TaeNet {
    int present, n_layers;
    TaeLayer l[MAX_LAYERS];
} TaeNet;

struct VgTaesd {
    VgCtx *ctx;
    int width, latent;
    TaeNet enc, dec;
    VgActCache cache; /* activations, kept between calls */
};

typedef struct TaePrefix {
    const char *prefix;
    int offset; /* state-dict index = taesd.py index + offset */
} TaePrefix;

static const TaePrefix enc_prefixes[] = {
    { "", 0 }, { "taesd_encoder.", 0 }, { "encoder.", 0 }, { "encoder.layers.", 0 },
};
static const TaePrefix dec_prefixes[] = {
    { "", 0 }, { "taesd_decoder.", 0 }, { "decoder.", 0 }, { "decoder.layers.", -1 },
};

static void net_free(TaeNet *n)
{
    for (int i = 0; i < MAX_LAYERS; i++) {
        for (int j = 0; j < 3; j++) {
            vg_tensor_free(&n->l[i].c[j].w);
            vg_tensor_free(&n->l[i].c[j].b);
        }
        vg_tensor_free(&n->l[i].skip);
    }
    memset(n, 0, sizeof(*n));
}

/* Copies the conv @name(.weight/.bias) into @c as F32 after checking it is
 * [cout, cin, k, k] (cout or cin < 0: any, and *cout / *cin receive it). */
static int load_conv(VgCtx *ctx, const VgWeights *w, const char *what, const char *name,
                     int k, int *cout, int *cin, int bias, TaeConv *c)
{
    char key[256], s[64];
    const VgTensor *tw, *tb;
    int ret;

    snprintf(key, sizeof(key), "%s.weight", name);
    if (!(tw = vg_weights_find(w, key))) {
        vg_log(ctx, VG_LOG_ERROR, "taesd: %s weight '%s' missing\n", what, key);
        return VG_EBADMODEL;
    }
    if (tw->ndim != 4 || tw->ne[2] != k || tw->ne[3] != k ||
        (*cout > 0 && tw->ne[0] != *cout) || (*cin > 0 && tw->ne[1] != *cin) ||
        (tw->dtype != VG_DT_F32 && tw->dtype != VG_DT_F16 && tw->dtype != VG_DT_BF16)) {
        vg_log(ctx, VG_LOG_ERROR, "taesd: %s '%s' is %s %s, expected [%d, %d, %d, %d] float\n",
               what, key, vg_dtype_name(tw->dtype), vg_tensor_shape_str(tw, s, sizeof(s)),
               *cout, *cin, k, k);
        return VG_EBADMODEL;
    }
    *cout = (int)tw->ne[0];
    *cin = (int)tw->ne[1];
    snprintf(key, sizeof(key), "%s.bias", name);
    tb = vg_weights_find(w, key);
    if (!!tb != !!bias) {
        vg_log(ctx, VG_LOG_ERROR, "taesd: %s '%s' %s (not TAESD's published layout)\n", what,
               key, bias ? "missing" : "present");
        return VG_EBADMODEL;
    }
    if (tb && (tb->ndim != 1 || tb->ne[0] != *cout)) {
        vg_log(ctx, VG_LOG_ERROR, "taesd: %s '%s' is %s, expected [%d]\n", what, key,
               vg_tensor_shape_str(tb, s, sizeof(s)), *cout);
        return VG_EBADMODEL;
    }
    if ((ret = vg_tensor_to_f32(tw, &c->w)) < 0 || (tb && (ret = vg_tensor_to_f32(tb, &c->b)) < 0))
        return ret;
    c->stride = 1;
    return 0;
}

/* First conv of @layout's network under @p, or NULL. */
static const VgTensor *probe(const VgWeights *w, const TaePrefix *p, const char *layout)
{
    char key[256];
    const int first = layout[0] == 'z' ? 1 : 0;
    snprintf(key, sizeof(key), "%s%d.weight", p->prefix, first + p->offset);
    return vg_weights_find(w, key);
}

static int load_net(VgCtx *ctx, const VgWeights *w, int is_enc, int *width, int *latent,
                    TaeNet *net)
{
    const char *layout = is_enc ? enc_layout : dec_layout;
    const char *what = is_enc ? "encoder" : "decoder";
    const TaePrefix *tab = is_enc ? enc_prefixes : dec_prefixes;
    const TaePrefix *p = NULL;
    const int n = (int)strlen(layout);
    char name[256];
    int ret;

    for (int i = 0; i < 4 && !p; i++) {
        const VgTensor *t = probe(w, &tab[i], layout);
        /* the encoder's first conv reads RGB; the decoder's reads the latent */
        if (t && t->ndim == 4 && (is_enc ? t->ne[1] == 3 : t->ne[1] != 3))
            p = &tab[i];
    }
    if (!p) {
        const int other = !!probe(w, &(is_enc ? dec_prefixes : enc_prefixes)[0],
                                  is_enc ? dec_layout : enc_layout) ||
                          !!probe(w, &(is_enc ? dec_prefixes : enc_prefixes)[3],
                                  is_enc ? dec_layout : enc_layout);
        vg_log(ctx, VG_LOG_ERROR, "taesd: no TAESD %s weights found (%s)\n", what,
               other ? "the file holds the other half: taesd_encoder and taesd_decoder swapped?"
                     : "expected keys like '0.weight', '1.conv.0.weight' or diffusers "
                       "'encoder.layers.0.weight'");
        return VG_EBADMODEL;
    }
    /* more layers than the published design: a variant this code does not run */
    snprintf(name, sizeof(name), "%s%d.weight", p->prefix, n + p->offset);
    if (vg_weights_find(w, name) ||
        (snprintf(name, sizeof(name), "%s%d.conv.0.weight", p->prefix, n + p->offset),
         vg_weights_find(w, name))) {
        vg_log(ctx, VG_LOG_ERROR, "taesd: %s has more layers than TAESD's (%d), e.g. '%s': an "
               "unsupported TAESD variant\n", what, n, name);
        return VG_EUNSUPPORTED;
    }
    net->n_layers = n;
    for (int i = 0; i < n; i++) {
        TaeLayer *l = &net->l[i];
        const int idx = i + p->offset;
        int cout = -1, cin = -1;
        l->kind = layout[i];
        switch (layout[i]) {
        case 'c': case 's': case 'n':
            /* the first and last convs connect to the image (3) and the latent */
            if (i == 0) {                       /* encoder conv(3, W) */
                cin = 3;
                cout = *width;
            } else if (!is_enc && i == 1) {     /* decoder conv(L, W) */
                cin = *latent;
                cout = *width;
            } else if (i == n - 1) {            /* conv(W, L) / conv(W, 3) */
                cin = *width;
                cout = is_enc ? *latent : 3;
            } else {
                cin = cout = *width;
            }
            snprintf(name, sizeof(name), "%s%d", p->prefix, idx);
            if ((ret = load_conv(ctx, w, what, name, 3, &cout, &cin, layout[i] == 'c',
                                 &l->c[0])) < 0)
                return ret;
            l->c[0].stride = layout[i] == 's' ? 2 : 1;
            if (i == 0 || (!is_enc && i == 1))
                *width = cout;
            if (!is_enc && i == 1)
                *latent = cin;
            if (is_enc && i == n - 1)
                *latent = cout;
            break;
        case 'b':
            for (int j = 0; j < 3; j++) {
                int co = *width, ci = *width;
                snprintf(name, sizeof(name), "%s%d.conv.%d", p->prefix, idx, 2 * j);
                if ((ret = load_conv(ctx, w, what, name, 3, &co, &ci, 1, &l->c[j])) < 0)
                    return ret;
            }
            snprintf(name, sizeof(name), "%s%d.skip.weight", p->prefix, idx);
            if (vg_weights_find(w, name)) {
                /* only when a block changes width, which the published design never does */
                TaeConv sk = { 0 };
                int co = *width, ci = *width;
                snprintf(name, sizeof(name), "%s%d.skip", p->prefix, idx);
                if ((ret = load_conv(ctx, w, what, name, 1, &co, &ci, 0, &sk)) < 0)
                    return ret;
                l->skip = sk.w;
            }
            break;
        default:
            break;
        }
    }
    net->present = 1;
    return 0;
}

int vg_taesd_open(VgTaesd **out, VgCtx *ctx, const VgWeights *enc, const VgWeights *dec)
{
    VgTaesd *t;
    int ret = 0;

    VG_VALIDATE(out && (enc || dec), VG_ERR(EINVAL));
    *out = NULL;
    if (!(t = calloc(1, sizeof(*t))))
        return VG_ERR(ENOMEM);
    t->ctx = ctx;
    t->width = t->latent = -1;
    vg_act_cache_init(&t->cache, TAE_CACHE_BYTES);
    if (enc && (ret = load_net(ctx, enc, 1, &t->width, &t->latent, &t->enc)) < 0)
        goto fail;
    if (dec && (ret = load_net(ctx, dec, 0, &t->width, &t->latent, &t->dec)) < 0)
        goto fail;
    vg_log(ctx, VG_LOG_INFO, "taesd: width %d, %d latent channels, %s%s%s\n", t->width,
           t->latent, enc ? "encoder" : "", enc && dec ? " + " : "", dec ? "decoder" : "");
    *out = t;
    return 0;
fail:
    vg_taesd_close(&t);
    return ret;
}

int vg_taesd_open_files(VgTaesd **out, VgCtx *ctx, const char *enc_path, const char *dec_path)
{
    VgWeights *we = NULL, *wd = NULL;
    int ret;

    VG_VALIDATE(out && (enc_path || dec_path), VG_ERR(EINVAL));
    *out = NULL;
    if (enc_path && (ret = vg_weights_open(&we, ctx, enc_path)) < 0)
        goto end;
    if (dec_path && enc_path && !strcmp(enc_path, dec_path))
        wd = NULL;
    else if (dec_path && (ret = vg_weights_open(&wd, ctx, dec_path)) < 0)
        goto end;
    ret = vg_taesd_open(out, ctx, we, dec_path ? (wd ? wd : we) : NULL);
end:
    vg_weights_close(&we);
    vg_weights_close(&wd);
    return ret;
}

int vg_taesd_has_encoder(const VgTaesd *t) { return t->enc.present; }
int vg_taesd_has_decoder(const VgTaesd *t) { return t->dec.present; }
int vg_taesd_latent_channels(const VgTaesd *t) { return t->latent; }

void vg_taesd_close(VgTaesd **pt)
{
    VgTaesd *t = pt ? *pt : NULL;
    if (!t)
        return;
    net_free(&t->enc);
    net_free(&t->dec);
    vg_act_flush(&t->cache);
    free(t);
    *pt = NULL;
}

/* ------------------------------------------------------------------ forward */

/* *y = act(conv(x)); 3x3 padding 1 (1x1: none). *y allocated here. */
static int run_conv(VgCtx *ctx, VgActCache *ac, const VgTensor *x, const TaeConv *c, VgAct act,
                    VgTensor *y)
{
    VgConvParams p;
    const int k = (int)c->w.ne[2], pad = k / 2;
    int ret;

    vg_conv_params_default(&p);
    p.stride_h = p.stride_w = c->stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
    const int ho = vg_conv_out_size((int)x->ne[2], k, c->stride, pad, pad, 1);
    const int wo = vg_conv_out_size((int)x->ne[3], k, c->stride, pad, pad, 1);
    if ((ret = vg_act_alloc4(ac, y, x->ne[0], c->w.ne[0], ho, wo)) < 0) // [B, Cout, Ho, Wo]
        return ret;
    if ((ret = vg_conv2d_act(ctx, x, &c->w, c->b.data ? &c->b : NULL, &p, act, 0.f, NULL, y)) < 0)
        vg_act_free(ac, y);
    return ret;
}

/* ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(x))))) + skip(x)) */
static int run_block(VgCtx *ctx, VgActCache *ac, const VgTensor *x, const TaeLayer *l,
                     VgTensor *y)
{
    VgTensor a = { 0 }, b = { 0 }, s = { 0 };
    int ret;

    if ((ret = run_conv(ctx, ac, x, &l->c[0], VG_ACT_RELU, &a)) < 0 ||
        (ret = run_conv(ctx, ac, &a, &l->c[1], VG_ACT_RELU, &b)) < 0)
        goto end;
    vg_act_free(ac, &a);
    if ((ret = run_conv(ctx, ac, &b, &l->c[2], VG_ACT_NONE, y)) < 0)
        goto end;
    if (l->skip.data) {
        const TaeConv sc = { l->skip, { 0 }, 1 };
        if ((ret = run_conv(ctx, ac, x, &sc, VG_ACT_NONE, &s)) < 0 ||
            (ret = vg_add_act(ctx, y, &s, VG_ACT_RELU, y)) < 0)
            goto end;
    } else {
        ret = vg_add_act(ctx, y, x, VG_ACT_RELU, y);
    }
end:
    if (ret < 0)
        vg_act_free(ac, y);
    vg_act_free(ac, &a);
    vg_act_free(ac, &b);
    vg_act_free(ac, &s);
    return ret;
}

static int run_net(VgCtx *ctx, VgActCache *ac, const TaeNet *net, const VgTensor *in,
                   VgTensor *out)
{
    VgTensor cur = { 0 }, nxt = { 0 };
    int ret = 0;

    if ((ret = vg_tensor_to_f32(in, &cur)) < 0) // [B, C, H, W], our own copy
        return ret;
    for (int i = 0; i < net->n_layers; i++) {
        const TaeLayer *l = &net->l[i];
        switch (l->kind) {
        case 'z': {
            float *d = cur.data;
            for (int64_t j = 0, n = vg_tensor_nelem(&cur); j < n; j++)
                d[j] = tanhf(d[j] / 3.f) * 3.f;
            continue;
        }
        case 'r':
            continue; /* fused into the conv before it */
        case 'c': case 's': case 'n': {
            const int relu = i + 1 < net->n_layers && net->l[i + 1].kind == 'r';
            ret = run_conv(ctx, ac, &cur, &l->c[0], relu ? VG_ACT_RELU : VG_ACT_NONE, &nxt);
            break;
        }
        case 'b':
            ret = run_block(ctx, ac, &cur, l, &nxt);
            break;
        case 'u':
            if ((ret = vg_act_alloc4(ac, &nxt, cur.ne[0], cur.ne[1], 2 * cur.ne[2],
                                     2 * cur.ne[3])) < 0) // [B, C, 2H, 2W]
                break;
            ret = vg_upsample_nearest(ctx, &cur, 2, &nxt);
            break;
        }
        if (ret < 0)
            goto end;
        vg_act_free(ac, &cur);
        cur = nxt;
        memset(&nxt, 0, sizeof(nxt));
    }
    *out = cur; /* the caller's, freed with vg_tensor_free */
    memset(&cur, 0, sizeof(cur));
end:
    vg_act_free(ac, &cur);
    vg_act_free(ac, &nxt);
    vg_act_forget(ac);
    return ret;
}

static int check_input(VgTaesd *t, const VgTensor *x, int channels, const char *what)
{
    char s[64];
    if (x->ndim != 4 || x->ne[1] != channels || x->ne[0] < 1 || x->ne[2] < 1 || x->ne[3] < 1 ||
        (x->dtype != VG_DT_F32 && x->dtype != VG_DT_F16 && x->dtype != VG_DT_BF16)) {
        vg_log(t->ctx, VG_LOG_ERROR, "taesd: %s input is %s %s, expected [B, %d, H, W] float\n",
               what, vg_dtype_name(x->dtype), vg_tensor_shape_str(x, s, sizeof(s)), channels);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_taesd_encode(VgTaesd *t, const VgTensor *img, VgTensor *lat)
{
    int ret;
    VG_VALIDATE(t && img && lat, VG_ERR(EINVAL));
    memset(lat, 0, sizeof(*lat));
    if (!t->enc.present) {
        vg_log(t->ctx, VG_LOG_ERROR, "taesd: no encoder loaded (taesd_encoder not given)\n");
        return VG_ERR(ENOSYS);
    }
    if ((ret = check_input(t, img, 3, "encoder")) < 0)
        return ret;
    return run_net(t->ctx, &t->cache, &t->enc, img, lat);
}

int vg_taesd_decode(VgTaesd *t, const VgTensor *lat, VgTensor *img)
{
    int ret;
    VG_VALIDATE(t && lat && img, VG_ERR(EINVAL));
    memset(img, 0, sizeof(*img));
    if (!t->dec.present) {
        vg_log(t->ctx, VG_LOG_ERROR, "taesd: no decoder loaded (taesd_decoder not given)\n");
        return VG_ERR(ENOSYS);
    }
    if ((ret = check_input(t, lat, t->latent, "decoder")) < 0)
        return ret;
    return run_net(t->ctx, &t->cache, &t->dec, lat, img);
}
