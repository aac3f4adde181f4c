/*
 * Stable Diffusion UNet forward pass (diffusers' UNet2DConditionModel with
 * the SD 1.x / 2.x block set). One walk over the architecture (build()) both
 * binds the weights and, for vg_unet_foreach_param, lists their shapes, so the
 * two cannot disagree.
 *
 * Transformer projections: a 1x1 conv on [B, C, H, W] (SD1) and a linear on
 * the tokens [B, HW, C] (SD2) are the same per-pixel matrix product, so both
 * run as vg_linear on the tokens with the [C, C, 1, 1] weight viewed as
 * [C, C]; the group norm comes first either way.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/act_cache.h"
#include "engine/internal.h"
#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/sd/unet.h"

#define TF_GN_EPS 1e-6f  /* Transformer2DModel's GroupNorm */
#define TF_LN_EPS 1e-5f  /* BasicTransformerBlock's LayerNorms */
#define FF_ROWS 2048     /* feed-forward runs in token chunks: its hidden is 8x wide */
#define UCACHE_BYTES ((size_t)192 << 20)
#define MAX_SKIPS (1 + VG_UNET_MAX_BLOCKS * (VG_UNET_MAX_LAYERS + 1))

typedef struct Resnet {
    int cin, cout;
    VgTensor n1w, n1b, c1w, c1b, tw, tb, n2w, n2b, c2w, c2b, sw, sb; /* sw.data NULL: identity */
} Resnet;

typedef struct Attn { VgTensor q, k, v, ow, ob; } Attn;

typedef struct TBlock {
    VgTensor n1w, n1b, n2w, n2b, n3w, n3b, f1w, f1b, f2w, f2b;
    Attn self, cross;
} TBlock;

typedef struct Xformer {
    int c, heads, depth;
    VgTensor nw, nb, piw, pib, pow, pob; /* projections as [C, C] views */
    TBlock *blk;                         /* [depth] */
} Xformer;

typedef struct Block {
    Resnet res[VG_UNET_MAX_LAYERS + 1];
    Xformer *attn[VG_UNET_MAX_LAYERS + 1]; /* NULL for DownBlock2D / UpBlock2D */
    VgTensor sw, sb;                       /* down/upsampler conv; sw.data NULL if none */
} Block;

struct VgUnet {
    VgCtx *ctx;
    VgUnetConfig cfg;
    VgTensor t1w, t1b, t2w, t2b, ciw, cib, now, nob, cow, cob;
    Block down[VG_UNET_MAX_BLOCKS], up[VG_UNET_MAX_BLOCKS];
    Resnet mid[2];
    Xformer *mid_attn;
    int64_t n_params;
    VgUnetProfile *prof;  /* vg_unet_set_profile; NULL: no timing */
    VgActCache cache;  /* freed activations (ualloc) */
};

/* ------------------------------------------------------------------ binding */

typedef struct Binder {
    VgCtx *c;
    const VgWeights *w;   /* NULL: enumerate into fn instead */
    const char *prefix;
    VgUnetLayout layout;
    const VgUnetConfig *cfg;
    VgUnetParamFn fn;
    void *opaque;
    int64_t n_params;
} Binder;

#define PROJ 1 /* [a, b] or [a, b, 1, 1], bound as [a, b] */
#define SH(...) (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (const int64_t[]){ __VA_ARGS__ }

static int bind(Binder *bd, VgTensor *dst, int flags, int ndim, const int64_t *shape,
                const char *fmt, ...) VG_PRINTF(6, 7);
static int bind(Binder *bd, VgTensor *dst, int flags, int ndim, const int64_t *shape,
                const char *fmt, ...)
{
    char dn[256], on[256], full[512], got[96], want[96];
    const char *name = dn;
    va_list ap;
    int ret;

    va_start(ap, fmt);
    vsnprintf(dn, sizeof(dn), fmt, ap);
    va_end(ap);
    if (!bd->w) {
        if ((flags & PROJ) && ndim == 2 && !bd->cfg->use_linear_projection) {
            const int64_t s4[4] = { shape[0], shape[1], 1, 1 }; /* conv 1x1 projection */
            return bd->fn(bd->opaque, dn, 4, s4);
        }
        return bd->fn(bd->opaque, dn, ndim, shape);
    }
    if (bd->layout == VG_UNET_LAYOUT_ORIGINAL) {
        if ((ret = vg_unet_key_original(bd->cfg, dn, on, sizeof(on))) < 0) {
            vg_log(bd->c, VG_LOG_ERROR, "unet: no original-layout name for '%s'\n", dn);
            return VG_EBADMODEL;
        }
        name = on;
    }
    snprintf(full, sizeof(full), "%s%s", bd->prefix, name);
    const VgTensor *t = vg_weights_find(bd->w, full);
    if (!t) {
        if (name == dn)
            vg_log(bd->c, VG_LOG_ERROR, "unet: weight '%s' missing\n", full);
        else
            vg_log(bd->c, VG_LOG_ERROR, "unet: weight '%s' (diffusers '%s') missing\n", full, dn);
        return VG_EBADMODEL;
    }
    if (t->dtype != VG_DT_F32 && t->dtype != VG_DT_F16 && t->dtype != VG_DT_BF16) {
        vg_log(bd->c, VG_LOG_ERROR, "unet: weight '%s' is %s, expected F32, F16 or BF16\n", full,
               vg_dtype_name(t->dtype));
        return VG_EBADMODEL;
    }
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->ne[d] == shape[d];
    if (!ok && (flags & PROJ))
        ok = t->ndim == 4 && t->ne[0] == shape[0] && t->ne[1] == shape[1] && t->ne[2] == 1 &&
             t->ne[3] == 1;
    if (!ok) {
        VgTensor w = { .ndim = ndim };
        memcpy(w.ne, shape, sizeof(int64_t) * ndim);
        vg_log(bd->c, VG_LOG_ERROR, "unet: weight '%s' has shape %s, expected %s\n", full,
               vg_tensor_shape_str(t, got, sizeof(got)), vg_tensor_shape_str(&w, want, sizeof(want)));
        return VG_EBADMODEL;
    }
    if (!vg_tensor_is_contiguous(t)) {
        vg_log(bd->c, VG_LOG_ERROR, "unet: weight '%s' is not contiguous\n", full);
        return VG_EBADMODEL;
    }
    *dst = *t;
    dst->alloc = NULL;  /* a view: the VgWeights owns the data */
    if (t->ndim == 4 && ndim == 2)
        dst->ndim = 2;  /* [C, C, 1, 1] -> [C, C]: same strides for the first two dims */
    bd->n_params += vg_tensor_nelem(t);
    return 0;
}

static int build_resnet(Binder *bd, Resnet *r, int cin, int cout, int T, const char *p)
{
    int ret;
    r->cin = cin;
    r->cout = cout;
    if ((ret = bind(bd, &r->n1w, 0, SH(cin), "%snorm1.weight", p)) < 0 ||
        (ret = bind(bd, &r->n1b, 0, SH(cin), "%snorm1.bias", p)) < 0 ||
        (ret = bind(bd, &r->c1w, 0, SH(cout, cin, 3, 3), "%sconv1.weight", p)) < 0 ||
        (ret = bind(bd, &r->c1b, 0, SH(cout), "%sconv1.bias", p)) < 0 ||
        (ret = bind(bd, &r->tw, 0, SH(cout, T), "%stime_emb_proj.weight", p)) < 0 ||
        (ret = bind(bd, &r->tb, 0, SH(cout), "%stime_emb_proj.bias", p)) < 0 ||
        (ret = bind(bd, &r->n2w, 0, SH(cout), "%snorm2.weight", p)) < 0 ||
        (ret = bind(bd, &r->n2b, 0, SH(cout), "%snorm2.bias", p)) < 0 ||
        (ret = bind(bd, &r->c2w, 0, SH(cout, cout, 3, 3), "%sconv2.weight", p)) < 0 ||
        (ret = bind(bd, &r->c2b, 0, SH(cout), "%sconv2.bias", p)) < 0)
        return ret;
    if (cin != cout &&
        ((ret = bind(bd, &r->sw, 0, SH(cout, cin, 1, 1), "%sconv_shortcut.weight", p)) < 0 ||
         (ret = bind(bd, &r->sb, 0, SH(cout), "%sconv_shortcut.bias", p)) < 0))
        return ret;
    return 0;
}

static int build_attn(Binder *bd, Attn *a, int c, int kv, const char *p)
{
    int ret;
    if ((ret = bind(bd, &a->q, 0, SH(c, c), "%sto_q.weight", p)) < 0 ||
        (ret = bind(bd, &a->k, 0, SH(c, kv), "%sto_k.weight", p)) < 0 ||
        (ret = bind(bd, &a->v, 0, SH(c, kv), "%sto_v.weight", p)) < 0 ||
        (ret = bind(bd, &a->ow, 0, SH(c, c), "%sto_out.0.weight", p)) < 0 ||
        (ret = bind(bd, &a->ob, 0, SH(c), "%sto_out.0.bias", p)) < 0)
        return ret;
    return 0;
}

static void xformer_free(Xformer **t)
{
    if (*t)
        free((*t)->blk);
    free(*t);
    *t = NULL;
}

static int build_xformer(Binder *bd, Xformer **out, int c, int heads, int depth, const char *p)
{
    char q[200];
    int ret;
    Xformer *t = calloc(1, sizeof(*t));
    if (!t || !(t->blk = calloc(depth, sizeof(*t->blk)))) {
        free(t);
        return VG_ERR(ENOMEM);
    }
    *out = t;
    t->c = c;
    t->heads = heads;
    t->depth = depth;
    if ((ret = bind(bd, &t->nw, 0, SH(c), "%snorm.weight", p)) < 0 ||
        (ret = bind(bd, &t->nb, 0, SH(c), "%snorm.bias", p)) < 0 ||
        (ret = bind(bd, &t->piw, PROJ, SH(c, c), "%sproj_in.weight", p)) < 0 ||
        (ret = bind(bd, &t->pib, 0, SH(c), "%sproj_in.bias", p)) < 0)
        return ret;
    for (int k = 0; k < depth; k++) {
        TBlock *b = &t->blk[k];
        snprintf(q, sizeof(q), "%stransformer_blocks.%d.", p, k);
        char a1[220], a2[220];
        snprintf(a1, sizeof(a1), "%sattn1.", q);
        snprintf(a2, sizeof(a2), "%sattn2.", q);
        if ((ret = bind(bd, &b->n1w, 0, SH(c), "%snorm1.weight", q)) < 0 ||
            (ret = bind(bd, &b->n1b, 0, SH(c), "%snorm1.bias", q)) < 0 ||
            (ret = build_attn(bd, &b->self, c, c, a1)) < 0 ||
            (ret = bind(bd, &b->n2w, 0, SH(c), "%snorm2.weight", q)) < 0 ||
            (ret = bind(bd, &b->n2b, 0, SH(c), "%snorm2.bias", q)) < 0 ||
            (ret = build_attn(bd, &b->cross, c, bd->cfg->cross_attention_dim, a2)) < 0 ||
            (ret = bind(bd, &b->n3w, 0, SH(c), "%snorm3.weight", q)) < 0 ||
            (ret = bind(bd, &b->n3b, 0, SH(c), "%snorm3.bias", q)) < 0 ||
            (ret = bind(bd, &b->f1w, 0, SH(8 * c, c), "%sff.net.0.proj.weight", q)) < 0 ||
            (ret = bind(bd, &b->f1b, 0, SH(8 * c), "%sff.net.0.proj.bias", q)) < 0 ||
            (ret = bind(bd, &b->f2w, 0, SH(c, 4 * c), "%sff.net.2.weight", q)) < 0 ||
            (ret = bind(bd, &b->f2b, 0, SH(c), "%sff.net.2.bias", q)) < 0)
            return ret;
    }
    if ((ret = bind(bd, &t->pow, PROJ, SH(c, c), "%sproj_out.weight", p)) < 0 ||
        (ret = bind(bd, &t->pob, 0, SH(c), "%sproj_out.bias", p)) < 0)
        return ret;
    return 0;
}

/* The whole architecture, in diffusers' order. */
static int build(Binder *bd, VgUnet *u)
{
    const VgUnetConfig *cfg = bd->cfg;
    const int n = cfg->n_blocks, L = cfg->layers_per_block, c0 = cfg->block_out[0], T = 4 * c0;
    int skip_ch[MAX_SKIPS], ns = 0, cur = c0, ret;
    char p[128];

    if ((ret = bind(bd, &u->t1w, 0, SH(T, c0), "time_embedding.linear_1.weight")) < 0 ||
        (ret = bind(bd, &u->t1b, 0, SH(T), "time_embedding.linear_1.bias")) < 0 ||
        (ret = bind(bd, &u->t2w, 0, SH(T, T), "time_embedding.linear_2.weight")) < 0 ||
        (ret = bind(bd, &u->t2b, 0, SH(T), "time_embedding.linear_2.bias")) < 0 ||
        (ret = bind(bd, &u->ciw, 0, SH(c0, cfg->in_channels, 3, 3), "conv_in.weight")) < 0 ||
        (ret = bind(bd, &u->cib, 0, SH(c0), "conv_in.bias")) < 0)
        return ret;
    skip_ch[ns++] = c0;
    for (int i = 0; i < n; i++) {
        const int ch = cfg->block_out[i];
        Block *b = &u->down[i];
        for (int j = 0; j < L; j++) {
            snprintf(p, sizeof(p), "down_blocks.%d.resnets.%d.", i, j);
            if ((ret = build_resnet(bd, &b->res[j], cur, ch, T, p)) < 0)
                return ret;
            cur = ch;
            snprintf(p, sizeof(p), "down_blocks.%d.attentions.%d.", i, j);
            if (cfg->down_attn[i] &&
                (ret = build_xformer(bd, &b->attn[j], ch, cfg->heads[i], cfg->tf_layers[i], p)) < 0)
                return ret;
            skip_ch[ns++] = ch;
        }
        if (i < n - 1) {
            if ((ret = bind(bd, &b->sw, 0, SH(ch, ch, 3, 3), "down_blocks.%d.downsamplers.0.conv.weight", i)) < 0 ||
                (ret = bind(bd, &b->sb, 0, SH(ch), "down_blocks.%d.downsamplers.0.conv.bias", i)) < 0)
                return ret;
            skip_ch[ns++] = ch;
        }
    }
    if ((ret = build_resnet(bd, &u->mid[0], cur, cur, T, "mid_block.resnets.0.")) < 0 ||
        (ret = build_xformer(bd, &u->mid_attn, cur, cfg->heads[n - 1], cfg->tf_layers[n - 1],
                             "mid_block.attentions.0.")) < 0 ||
        (ret = build_resnet(bd, &u->mid[1], cur, cur, T, "mid_block.resnets.1.")) < 0)
        return ret;
    for (int i = 0; i < n; i++) {
        const int ch = cfg->block_out[n - 1 - i];
        Block *b = &u->up[i];
        for (int j = 0; j <= L; j++) {
            snprintf(p, sizeof(p), "up_blocks.%d.resnets.%d.", i, j);
            if ((ret = build_resnet(bd, &b->res[j], cur + skip_ch[--ns], ch, T, p)) < 0)
                return ret;
            cur = ch;
            snprintf(p, sizeof(p), "up_blocks.%d.attentions.%d.", i, j);
            if (cfg->up_attn[i] &&
                (ret = build_xformer(bd, &b->attn[j], ch, cfg->heads[n - 1 - i], cfg->up_tf_layers[i], p)) < 0)
                return ret;
        }
        if (i < n - 1 &&
            ((ret = bind(bd, &b->sw, 0, SH(ch, ch, 3, 3), "up_blocks.%d.upsamplers.0.conv.weight", i)) < 0 ||
             (ret = bind(bd, &b->sb, 0, SH(ch), "up_blocks.%d.upsamplers.0.conv.bias", i)) < 0))
            return ret;
    }
    if ((ret = bind(bd, &u->now, 0, SH(cur), "conv_norm_out.weight")) < 0 ||
        (ret = bind(bd, &u->nob, 0, SH(cur), "conv_norm_out.bias")) < 0 ||
        (ret = bind(bd, &u->cow, 0, SH(cfg->out_channels, cur, 3, 3), "conv_out.weight")) < 0 ||
        (ret = bind(bd, &u->cob, 0, SH(cfg->out_channels), "conv_out.bias")) < 0)
        return ret;
    return 0;
}

static void unet_free(VgUnet *u)
{
    if (!u)
        return;
    for (int i = 0; i < VG_UNET_MAX_BLOCKS; i++)
        for (int j = 0; j <= VG_UNET_MAX_LAYERS; j++) {
            xformer_free(&u->down[i].attn[j]);
            xformer_free(&u->up[i].attn[j]);
        }
    xformer_free(&u->mid_attn);
    vg_act_flush(&u->cache);
    free(u);
}

int vg_unet_foreach_param(const VgUnetConfig *cfg, VgUnetParamFn fn, void *opaque)
{
    VgUnet *u = calloc(1, sizeof(*u));
    if (!u)
        return VG_ERR(ENOMEM);
    Binder bd = { .cfg = cfg, .fn = fn, .opaque = opaque, .prefix = "" };
    const int ret = build(&bd, u);
    unet_free(u);
    return ret;
}

int vg_unet_open(VgUnet **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                 VgUnetLayout layout, const VgUnetConfig *cfg)
{
    VgUnet *u = NULL;
    VgSdFamily fam;
    int ret;

    *out = NULL;
    if (!prefix)
        prefix = "";
    if (layout == VG_UNET_LAYOUT_AUTO && (ret = vg_unet_detect_layout(ctx, w, prefix, &layout)) < 0)
        return ret;
    if ((ret = vg_unet_check_supported(ctx, w, prefix)) < 0)
        return ret;
    if (!(u = calloc(1, sizeof(*u))))
        return VG_ERR(ENOMEM);
    u->ctx = ctx;
    vg_act_cache_init(&u->cache, UCACHE_BYTES);
    if (cfg)
        u->cfg = *cfg;
    else if ((ret = vg_unet_config_infer(&u->cfg, ctx, w, prefix, layout)) < 0)
        goto fail;
    if ((ret = vg_unet_family(ctx, &u->cfg, &fam)) < 0)
        goto fail;
    Binder bd = { .c = ctx, .w = w, .prefix = prefix, .layout = layout, .cfg = &u->cfg };
    if ((ret = build(&bd, u)) < 0)
        goto fail;
    u->n_params = bd.n_params;
    vg_log(ctx, VG_LOG_INFO, "unet: %s layout, %s-style (%s projections, cross-attention %d), "
           "%d blocks from width %d, %.1fM parameters\n",
           layout == VG_UNET_LAYOUT_ORIGINAL ? "single-file" : "diffusers",
           fam == VG_SD_FAMILY_SD1 ? "SD1" : "SD2", u->cfg.use_linear_projection ? "linear" : "conv",
           u->cfg.cross_attention_dim, u->cfg.n_blocks, u->cfg.block_out[0], u->n_params / 1e6);
    *out = u;
    return 0;
fail:
    unet_free(u);
    return ret;
}

const VgUnetConfig *vg_unet_get_config(const VgUnet *u)
{
    return &u->cfg;
}

int64_t vg_unet_n_params(const VgUnet *u)
{
    return u->n_params;
}

void vg_unet_close(VgUnet **u)
{
    if (!u)
        return;
    unet_free(*u);
    *u = NULL;
}

/* ------------------------------------------------------------------ forward */

/* ---- optional profiling (vg_unet_set_profile) */

static const char *const prof_names[VG_UNET_PROF_N] = {
    "conv 3x3", "conv 1x1 (shortcut)", "linear attn q/k/v/out", "linear FF1 (GEGLU proj)",
    "linear FF2", "linear proj_in/out", "linear time emb", "attention self (QK,softmax,PV)",
    "attention cross (QK,softmax,PV)", "GroupNorm+SiLU (resnet)", "GroupNorm (transformer)",
    "LayerNorm", "GEGLU", "adds / scale / temb add", "token transposes", "concat / upsample",
};

const char *vg_unet_prof_name(int cls)
{
    return cls >= 0 && cls < VG_UNET_PROF_N ? prof_names[cls] : "?";
}

void vg_unet_set_profile(VgUnet *u, VgUnetProfile *p)
{
    u->prof = p;
    u->ctx->prof_widen_s = p ? &p->widen_s : NULL;
    u->ctx->prof_widen_n = p ? &p->widen_n : NULL;
}

static double pnow(const VgUnet *u)
{
    struct timespec t;
    if (!u->prof)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void padd(const VgUnet *u, int cls, double t0, double flops)
{
    if (!u->prof)
        return;
    u->prof->sec[cls] += pnow(u) - t0;
    u->prof->flops[cls] += flops;
    u->prof->calls[cls]++;
}

/* Activations come from the UNet's VgActCache (engine/act_cache.h), kept
 * between forwards (at most UCACHE_BYTES, freed at close): a video's frames
 * and a sampler's steps repeat the same shapes. Every op here writes its
 * whole output. */
static int ualloc(VgUnet *u, VgTensor *t, int ndim, const int64_t *shape)
{
    return vg_act_alloc(&u->cache, t, ndim, shape);
}

static void ufree(VgUnet *u, VgTensor *t)
{
    vg_act_free(&u->cache, t);
}

static int ualloc4(VgUnet *u, VgTensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    const int64_t s[4] = { a, b, c, d };
    return ualloc(u, t, 4, s);
}

static int alloc3(VgUnet *u, VgTensor *t, int64_t a, int64_t b, int64_t c)
{
    const int64_t s[3] = { a, b, c };
    return ualloc(u, t, 3, s);
}

static int alloc2(VgUnet *u, VgTensor *t, int64_t a, int64_t b)
{
    const int64_t s[2] = { a, b };
    return ualloc(u, t, 2, s);
}

static int conv(VgUnet *u, const VgTensor *x, const VgTensor *w, const VgTensor *b, int stride,
                VgTensor *y)
{
    VgCtx *c = u->ctx;
    const double t0 = pnow(u);
    VgConvParams p;
    vg_conv_params_default(&p);
    const int pad = (int)w->ne[2] / 2;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
    const int ho = vg_conv_out_size((int)x->ne[2], (int)w->ne[2], stride, pad, pad, 1);
    const int wo = vg_conv_out_size((int)x->ne[3], (int)w->ne[3], stride, pad, pad, 1);
    int ret = ualloc4(u, y, x->ne[0], w->ne[0], ho, wo);
    if (ret < 0 || (ret = vg_conv2d_any(c, x, w, b, &p, y)) < 0)
        ufree(u, y);
    else
        padd(u, w->ne[2] == 1 ? VG_UNET_PROF_CONV1 : VG_UNET_PROF_CONV3, t0,
             2.0 * (double)vg_tensor_nelem(y) * (double)(w->ne[1] * w->ne[2] * w->ne[3]));
    return ret;
}

/* y = silu(group_norm(x)), allocated here */
static int norm_silu(VgUnet *u, const VgTensor *x, int groups, const VgTensor *g, const VgTensor *b,
                     float eps, VgTensor *y)
{
    VgCtx *c = u->ctx;
    const double t0 = pnow(u);
    int ret = ualloc(u, y, x->ndim, x->ne);
    if (ret < 0 || (ret = vg_group_norm(c, x, groups, g, b, eps, y)) < 0 ||
        (ret = vg_silu(c, y, y)) < 0)
        ufree(u, y);
    padd(u, VG_UNET_PROF_GNSILU, t0, 0);
    return ret;
}

/* vg_linear, timed as class @cls */
static int lin(VgUnet *u, int cls, const VgTensor *x, const VgTensor *w, const VgTensor *b,
               VgTensor *y)
{
    const double t0 = pnow(u);
    const int ret = vg_linear(u->ctx, x, w, b, y);
    padd(u, cls, t0, 2.0 * (double)vg_tensor_nelem(y) * (double)w->ne[1]);
    return ret;
}

static int add(VgUnet *u, const VgTensor *a, const VgTensor *b, VgTensor *y)
{
    const double t0 = pnow(u);
    const int ret = vg_add(u->ctx, a, b, y);
    padd(u, VG_UNET_PROF_ADD, t0, 0);
    return ret;
}

/* [B, C, P] <-> [B, P, C] in 64-pixel tiles, one pool job per (batch, tile).
 * dir 0: tokens[b, p, c] = x[b, c, p]; dir 1: x[b, c, p] += tokens[b, p, c]. */
typedef struct Tr { float *x, *t; int64_t C, P, tiles; int dir; } Tr;

#define TILE 64

static void tr_job(void *arg, int i, int tid)
{
    const Tr *a = arg;
    const int64_t b = i / a->tiles, p0 = (i % a->tiles) * TILE, p1 = VG_MIN(a->P, p0 + TILE);
    float *x = a->x + b * a->C * a->P, *t = a->t + b * a->C * a->P;
    for (int64_t c = 0; c < a->C; c++)
        for (int64_t p = p0; p < p1; p++) {
            if (a->dir)
                x[c * a->P + p] += t[p * a->C + c];
            else
                t[p * a->C + c] = x[c * a->P + p];
        }
}

static void transpose_tokens(VgUnet *u, VgTensor *x, VgTensor *tok, int dir)
{
    VgCtx *c = u->ctx;
    const double t0 = pnow(u);
    Tr a = { .x = x->data, .t = tok->data, .C = x->ne[1], .P = x->ne[2] * x->ne[3], .dir = dir };
    a.tiles = (a.P + TILE - 1) / TILE;
    vg_pool_run(c ? c->pool : NULL, (int)(x->ne[0] * a.tiles), tr_job, &a);
    padd(u, VG_UNET_PROF_TRANSPOSE, t0, 0);
}

/* h[b, c, :] += v[b, c]: the time-embedding projection, one job per plane */
typedef struct PlaneAdd { float *h; const float *v; int64_t P; } PlaneAdd;

static void plane_add_job(void *arg, int i, int tid)
{
    const PlaneAdd *a = arg;
    float *d = a->h + (int64_t)i * a->P;
    const float v = a->v[i];
    for (int64_t k = 0; k < a->P; k++)
        d[k] += v;
}

/* y (allocated here) = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(temb))))) / scale
 * @temb is silu(time embedding) [B, T]. */
static int resnet_fwd(VgUnet *u, const Resnet *r, const VgTensor *x, const VgTensor *temb,
                      float scale, VgTensor *y)
{
    VgCtx *c = u->ctx;
    const int G = u->cfg.norm_num_groups;
    const float eps = u->cfg.norm_eps;
    const int64_t B = x->ne[0], P = x->ne[2] * x->ne[3];
    VgTensor a = { 0 }, h = { 0 }, tp = { 0 }, s = { 0 };
    int ret;

    if ((ret = norm_silu(u, x, G, &r->n1w, &r->n1b, eps, &a)) < 0 ||   // [B, cin, H, W]
        (ret = conv(u, &a, &r->c1w, &r->c1b, 1, &h)) < 0)              // [B, cout, H, W]
        goto end;
    ufree(u, &a);
    if ((ret = alloc2(u, &tp, B, r->cout)) < 0 ||                          // [B, cout]
        (ret = lin(u, VG_UNET_PROF_TEMB, temb, &r->tw, &r->tb, &tp)) < 0)
        goto end;
    double t0 = pnow(u);
    PlaneAdd pa = { .h = h.data, .v = tp.data, .P = P };
    vg_pool_run(c ? c->pool : NULL, (int)(B * r->cout), plane_add_job, &pa);
    padd(u, VG_UNET_PROF_ADD, t0, 0);
    if ((ret = norm_silu(u, &h, G, &r->n2w, &r->n2b, eps, &a)) < 0)
        goto end;
    ufree(u, &h);
    if ((ret = conv(u, &a, &r->c2w, &r->c2b, 1, &h)) < 0)
        goto end;
    ufree(u, &a);
    if (r->sw.data) {
        if ((ret = conv(u, x, &r->sw, &r->sb, 1, &s)) < 0 || (ret = add(u, &h, &s, &h)) < 0)
            goto end;
    } else if ((ret = add(u, &h, x, &h)) < 0) {
        goto end;
    }
    t0 = pnow(u);
    if (scale != 1.0f && (ret = vg_scale(c, &h, 1.0f / scale, &h)) < 0)
        goto end;
    padd(u, VG_UNET_PROF_ADD, t0, 0);
    *y = h;
    h = (VgTensor){ 0 };
end:
    ufree(u, &a);
    ufree(u, &h);
    ufree(u, &tp);
    ufree(u, &s);
    return ret;
}

/* o [B, Lq, C] = attention(q(x), k(ctx), v(ctx)) projected by to_out. q, k, v, a are scratch
 * with the right shapes. */
static int attn_fwd(VgUnet *u, const Attn *at, int heads, const VgTensor *x, const VgTensor *ctx,
                    VgTensor *q, VgTensor *k, VgTensor *v, VgTensor *a, VgTensor *o)
{
    const int Q = VG_UNET_PROF_QKVO;
    int ret;
    double t0;
    if ((ret = lin(u, Q, x, &at->q, NULL, q)) < 0 ||
        (ret = lin(u, Q, ctx, &at->k, NULL, k)) < 0 ||
        (ret = lin(u, Q, ctx, &at->v, NULL, v)) < 0)
        return ret;
    t0 = pnow(u);
    if ((ret = vg_attention(u->ctx, q, k, v, heads, 0, a)) < 0)
        return ret;
    padd(u, x == ctx ? VG_UNET_PROF_SELF : VG_UNET_PROF_CROSS, t0,
         4.0 * (double)vg_tensor_nelem(q) * (double)k->ne[1]);
    if ((ret = lin(u, Q, a, &at->ow, &at->ob, o)) < 0)
        return ret;
    return 0;
}

/* Rows [r0, r0 + m) of a contiguous [R, N] F32 matrix, as a view */
static VgTensor rows(const VgTensor *t, int64_t r0, int64_t m, int64_t n)
{
    VgTensor v;
    const int64_t s[2] = { m, n };
    vg_tensor_view(&v, VG_DT_F32, (float *)t->data + r0 * n, 2, s);
    return v;
}

/* x [B, C, H, W] += Transformer2DModel(x, enc), in place. */
static int xformer_fwd(VgUnet *u, const Xformer *t, VgTensor *x, const VgTensor *enc)
{
    VgCtx *c = u->ctx;
    const int64_t B = x->ne[0], C = x->ne[1], P = x->ne[2] * x->ne[3], Lk = enc->ne[1];
    const int64_t R = B * P, fr = VG_MIN(R, FF_ROWS);
    VgTensor g = { 0 }, h = { 0 }, n = { 0 }, q = { 0 }, k = { 0 }, v = { 0 }, a = { 0 };
    VgTensor ck = { 0 }, cv = { 0 }, f1 = { 0 }, f2 = { 0 };
    int ret;

    double t0 = pnow(u);
    if ((ret = ualloc(u, &g, 4, x->ne)) < 0 ||       // [B, C, H, W]
        (ret = vg_group_norm(c, x, u->cfg.norm_num_groups, &t->nw, &t->nb, TF_GN_EPS, &g)) < 0 ||
        (ret = alloc3(u, &n, B, P, C)) < 0 ||                              // [B, HW, C]
        (ret = alloc3(u, &h, B, P, C)) < 0)
        goto end;
    padd(u, VG_UNET_PROF_GN, t0, 0);
    transpose_tokens(u, &g, &n, 0);
    ufree(u, &g);
    if ((ret = lin(u, VG_UNET_PROF_PROJ, &n, &t->piw, &t->pib, &h)) < 0 ||
        (ret = alloc3(u, &q, B, P, C)) < 0 || (ret = alloc3(u, &k, B, P, C)) < 0 ||
        (ret = alloc3(u, &v, B, P, C)) < 0 || (ret = alloc3(u, &a, B, P, C)) < 0 ||
        (ret = alloc3(u, &ck, B, Lk, C)) < 0 || (ret = alloc3(u, &cv, B, Lk, C)) < 0 ||  // [B, L, C]
        (ret = alloc2(u, &f1, fr, 8 * C)) < 0 || (ret = alloc2(u, &f2, fr, 4 * C)) < 0)
        goto end;
    for (int d = 0; d < t->depth; d++) {
        const TBlock *b = &t->blk[d];
        t0 = pnow(u);
        if ((ret = vg_layer_norm(c, &h, &b->n1w, &b->n1b, TF_LN_EPS, &n)) < 0)
            goto end;
        padd(u, VG_UNET_PROF_LN, t0, 0);
        if ((ret = attn_fwd(u, &b->self, t->heads, &n, &n, &q, &k, &v, &a, &n)) < 0 ||
            (ret = add(u, &h, &n, &h)) < 0)
            goto end;
        t0 = pnow(u);
        if ((ret = vg_layer_norm(c, &h, &b->n2w, &b->n2b, TF_LN_EPS, &n)) < 0)
            goto end;
        padd(u, VG_UNET_PROF_LN, t0, 0);
        if ((ret = attn_fwd(u, &b->cross, t->heads, &n, enc, &q, &ck, &cv, &a, &n)) < 0 ||
            (ret = add(u, &h, &n, &h)) < 0)
            goto end;
        t0 = pnow(u);
        if ((ret = vg_layer_norm(c, &h, &b->n3w, &b->n3b, TF_LN_EPS, &n)) < 0)
            goto end;
        padd(u, VG_UNET_PROF_LN, t0, 0);
        /* GEGLU feed-forward, FF_ROWS tokens at a time (rows are independent) */
        for (int64_t r0 = 0; r0 < R; r0 += fr) {
            const int64_t m = VG_MIN(fr, R - r0);
            VgTensor xi = rows(&n, r0, m, C), yo = rows(&a, r0, m, C);
            VgTensor t1 = rows(&f1, 0, m, 8 * C), t2 = rows(&f2, 0, m, 4 * C);
            if ((ret = lin(u, VG_UNET_PROF_FF1, &xi, &b->f1w, &b->f1b, &t1)) < 0)  // [m, 8C]
                goto end;
            t0 = pnow(u);
            if ((ret = vg_geglu(c, &t1, &t2)) < 0)                                 // [m, 4C]
                goto end;
            padd(u, VG_UNET_PROF_GEGLU, t0, 0);
            if ((ret = lin(u, VG_UNET_PROF_FF2, &t2, &b->f2w, &b->f2b, &yo)) < 0)  // [m, C]
                goto end;
        }
        if ((ret = add(u, &h, &a, &h)) < 0)
            goto end;
    }
    if ((ret = lin(u, VG_UNET_PROF_PROJ, &h, &t->pow, &t->pob, &n)) < 0)
        goto end;
    transpose_tokens(u, x, &n, 1);
end:
    ufree(u, &g); ufree(u, &h); ufree(u, &n);
    ufree(u, &q); ufree(u, &k); ufree(u, &v); ufree(u, &a);
    ufree(u, &ck); ufree(u, &cv); ufree(u, &f1); ufree(u, &f2);
    return ret;
}

/* Nearest-neighbour resize to oh x ow with PyTorch's index rule
 * (F.interpolate(size=..., mode="nearest")), which diffusers uses when the
 * latent size is not a multiple of 2^(blocks-1). */
static int upsample_to(VgUnet *u, const VgTensor *x, int oh, int ow, VgTensor *y)
{
    VgCtx *c = u->ctx;
    const int64_t N = x->ne[0] * x->ne[1], H = x->ne[2], W = x->ne[3];
    int ret = ualloc4(u, y, x->ne[0], x->ne[1], oh, ow);
    if (ret < 0)
        return ret;
    if (oh == 2 * H && ow == 2 * W) {
        if ((ret = vg_upsample_nearest(c, x, 2, y)) < 0)
            ufree(u, y);
        return ret;
    }
    const float sh = (float)H / oh, sw = (float)W / ow;
    for (int64_t p = 0; p < N; p++) {
        const float *s = (const float *)x->data + p * H * W;
        float *d = (float *)y->data + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            const int64_t si = VG_MIN((int64_t)floorf(i * sh), H - 1);
            for (int j = 0; j < ow; j++)
                d[i * ow + j] = s[si * W + VG_MIN((int64_t)floorf(j * sw), W - 1)];
        }
    }
    return 0;
}

/* diffusers get_timestep_embedding in float32, as PyTorch computes it. */
static void timestep_embedding(const VgUnetConfig *cfg, const float *ts, int64_t B, VgTensor *e)
{
    const int dim = cfg->block_out[0], half = dim / 2;
    float *d = e->data;
    for (int64_t b = 0; b < B; b++)
        for (int i = 0; i < half; i++) {
            const float ex = -logf(10000.0f) * (float)i / ((float)half - cfg->freq_shift);
            const float arg = ts[b] * expf(ex);
            const float s = sinf(arg), co = cosf(arg);
            d[b * dim + i] = cfg->flip_sin_to_cos ? co : s;
            d[b * dim + half + i] = cfg->flip_sin_to_cos ? s : co;
        }
}

static int check_io(VgUnet *u, const VgTensor *x, const float *ts, const VgTensor *enc,
                    const VgTensor *out)
{
    char b1[96], b2[96], b3[96];
    const VgUnetConfig *cfg = &u->cfg;
    if (!x || !ts || !enc || !out || x->dtype != VG_DT_F32 || enc->dtype != VG_DT_F32 ||
        out->dtype != VG_DT_F32 || x->ndim != 4 || enc->ndim != 3 || out->ndim != 4 ||
        !vg_tensor_is_contiguous(x) || !vg_tensor_is_contiguous(enc) || !vg_tensor_is_contiguous(out) ||
        x->ne[0] < 1 || x->ne[1] != cfg->in_channels || x->ne[2] < 1 || x->ne[3] < 1 ||
        enc->ne[0] != x->ne[0] || enc->ne[1] < 1 || enc->ne[2] != cfg->cross_attention_dim ||
        out->ne[0] != x->ne[0] || out->ne[1] != cfg->out_channels || out->ne[2] != x->ne[2] ||
        out->ne[3] != x->ne[3]) {
        vg_log(u->ctx, VG_LOG_ERROR, "unet: expected F32 sample [B, %d, h, w], encoder states "
               "[B, L, %d], out [B, %d, h, w]; got %s, %s, %s\n", cfg->in_channels,
               cfg->cross_attention_dim, cfg->out_channels,
               x ? vg_tensor_shape_str(x, b1, sizeof(b1)) : "NULL",
               enc ? vg_tensor_shape_str(enc, b2, sizeof(b2)) : "NULL",
               out ? vg_tensor_shape_str(out, b3, sizeof(b3)) : "NULL");
        return VG_ERR(EINVAL);
    }
    for (int64_t b = 0; b < x->ne[0]; b++)
        if (!isfinite(ts[b])) {
            vg_log(u->ctx, VG_LOG_ERROR, "unet: timestep %d is not finite\n", (int)b);
            return VG_ERR(EINVAL);
        }
    return 0;
}

int vg_unet_forward(VgUnet *u, const VgTensor *sample, const float *timesteps,
                    const VgTensor *enc, VgTensor *out)
{
    const VgUnetConfig *cfg = &u->cfg;
    VgCtx *c = u->ctx;
    const int n = cfg->n_blocks, L = cfg->layers_per_block, T = 4 * cfg->block_out[0];
    VgTensor skip[MAX_SKIPS], e = { 0 }, t1 = { 0 }, temb = { 0 }, cur = { 0 }, tmp = { 0 };
    int ns = 0, ret;
    int64_t B;

    memset(skip, 0, sizeof(skip));
    if ((ret = check_io(u, sample, timesteps, enc, out)) < 0)
        return ret;
    B = sample->ne[0];

    /* silu(time embedding) [B, T]: every resnet projects the same activation */
    if ((ret = alloc2(u, &e, B, cfg->block_out[0])) < 0 || (ret = alloc2(u, &t1, B, T)) < 0 ||
        (ret = alloc2(u, &temb, B, T)) < 0)
        goto end;
    const double tf0 = pnow(u);
    timestep_embedding(cfg, timesteps, B, &e);
    if ((ret = lin(u, VG_UNET_PROF_TEMB, &e, &u->t1w, &u->t1b, &t1)) < 0 || (ret = vg_silu(c, &t1, &t1)) < 0 ||
        (ret = lin(u, VG_UNET_PROF_TEMB, &t1, &u->t2w, &u->t2b, &temb)) < 0 || (ret = vg_silu(c, &temb, &temb)) < 0)
        goto end;
    ufree(u, &e);
    ufree(u, &t1);

    /* down: every output is kept as a skip; the top of the stack is the current activation */
    if ((ret = conv(u, sample, &u->ciw, &u->cib, 1, &skip[ns])) < 0)   // [B, c0, h, w]
        goto end;
    ns++;
    for (int i = 0; i < n; i++) {
        const Block *b = &u->down[i];
        for (int j = 0; j < L; j++) {
            if ((ret = resnet_fwd(u, &b->res[j], &skip[ns - 1], &temb, 1.0f, &skip[ns])) < 0)
                goto end;
            ns++;
            if (b->attn[j] && (ret = xformer_fwd(u, b->attn[j], &skip[ns - 1], enc)) < 0)
                goto end;
        }
        if (b->sw.data) {  // [B, ch, ceil(H/2), ceil(W/2)]
            if ((ret = conv(u, &skip[ns - 1], &b->sw, &b->sb, 2, &skip[ns])) < 0)
                goto end;
            ns++;
        }
    }
    /* mid */
    if ((ret = resnet_fwd(u, &u->mid[0], &skip[ns - 1], &temb, cfg->mid_block_scale_factor, &tmp)) < 0 ||
        (ret = xformer_fwd(u, u->mid_attn, &tmp, enc)) < 0 ||
        (ret = resnet_fwd(u, &u->mid[1], &tmp, &temb, cfg->mid_block_scale_factor, &cur)) < 0)
        goto end;
    ufree(u, &tmp);
    /* up: concat [current, skip] along channels, the skips in reverse order */
    for (int i = 0; i < n; i++) {
        const Block *b = &u->up[i];
        for (int j = 0; j <= L; j++) {
            VgTensor *s = &skip[--ns];
            const VgTensor *xs[2] = { &cur, s };
            double t0 = pnow(u);
            if ((ret = ualloc4(u, &tmp, B, cur.ne[1] + s->ne[1], cur.ne[2], cur.ne[3])) < 0 ||
                (ret = vg_concat_channels(c, xs, 2, &tmp)) < 0)         // [B, c + cs, H, W]
                goto end;
            padd(u, VG_UNET_PROF_CONCAT, t0, 0);
            ufree(u, &cur);
            ufree(u, s);
            if ((ret = resnet_fwd(u, &b->res[j], &tmp, &temb, 1.0f, &cur)) < 0)
                goto end;
            ufree(u, &tmp);
            if (b->attn[j] && (ret = xformer_fwd(u, b->attn[j], &cur, enc)) < 0)
                goto end;
        }
        if (b->sw.data) {  // to the next skip's size: 2x, or what diffusers' upsample_size gives
            double t0 = pnow(u);
            if ((ret = upsample_to(u, &cur, (int)skip[ns - 1].ne[2], (int)skip[ns - 1].ne[3], &tmp)) < 0)
                goto end;
            padd(u, VG_UNET_PROF_CONCAT, t0, 0);
            ufree(u, &cur);
            if ((ret = conv(u, &tmp, &b->sw, &b->sb, 1, &cur)) < 0)
                goto end;
            ufree(u, &tmp);
        }
    }
    if ((ret = norm_silu(u, &cur, cfg->norm_num_groups, &u->now, &u->nob, cfg->norm_eps, &tmp)) < 0)
        goto end;
    ufree(u, &cur);
    VgConvParams p;
    vg_conv_params_default(&p);
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    double t0 = pnow(u);
    ret = vg_conv2d_any(c, &tmp, &u->cow, &u->cob, &p, out);            // [B, out, h, w]
    padd(u, VG_UNET_PROF_CONV3, t0, 2.0 * (double)vg_tensor_nelem(out) * 9.0 * (double)tmp.ne[1]);
    if (u->prof)
        u->prof->total_s += pnow(u) - tf0;
end:
    for (int k = 0; k < MAX_SKIPS; k++)
        ufree(u, &skip[k]);
    ufree(u, &e);
    ufree(u, &t1);
    ufree(u, &temb);
    ufree(u, &cur);
    ufree(u, &tmp);
    vg_act_forget(&u->cache);
    return ret;
}
