/*
 * KL autoencoder (AutoencoderKL) forward passes, from the published design:
 *
 *   ResnetBlock(x)  = shortcut(x) + conv2(silu(gn2(conv1(silu(gn1(x))))))
 *                     gn: GroupNorm(groups, eps 1e-6); shortcut: 1x1 conv when
 *                     the width changes; no time embedding
 *   Attention(x)    = x + out(softmax(q k^T / sqrt(C)) v), one head over the
 *                     H*W positions of gn(x)
 *   Downsample      = pad right/bottom by 1, conv 3x3 stride 2 (no padding)
 *   Upsample        = nearest x2, conv 3x3
 *   Encoder         = conv_in, per block: layers_per_block resnets (+ downsample
 *                     except the last), mid (resnet, attention, resnet),
 *                     silu(gn), conv_out -> 2*latent; quant_conv 1x1; mean =
 *                     first half
 *   Decoder         = post_quant_conv 1x1, conv_in, mid, per block (widths
 *                     reversed): layers_per_block+1 resnets (+ upsample except
 *                     the last), silu(gn), conv_out
 *
 * Every layer function consumes its input tensor (frees it) so that only a
 * few feature maps are alive at a time.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/io/textfile.h"
#include "engine/sd/vae.h"

#define GN_EPS 1e-6f

typedef struct VaeConv { const VgTensor *w, *b; } VaeConv;
typedef struct VaeNorm { const VgTensor *g, *b; } VaeNorm;
typedef struct VaeRes {
    VaeNorm n1, n2;
    VaeConv c1, c2, sc; /* sc.w NULL: identity shortcut */
} VaeRes;
typedef struct VaeAttn {
    VaeNorm n;
    VgTensor wq, wk, wv, wo; /* views [C, C] (linear or 1x1 conv weights) */
    const VgTensor *bq, *bk, *bv, *bo;
} VaeAttn;
typedef struct VaeStage {
    int n_res;
    VaeRes res[VG_VAE_MAX_LAYERS + 1];
    VaeConv sample; /* downsample / upsample conv, w NULL for the last block */
} VaeStage;
typedef struct VaeCoder {
    VaeConv conv_in, conv_out;
    VaeStage st[VG_VAE_MAX_BLOCKS];
    VaeRes mid[2];
    VaeAttn attn;
    VaeNorm norm_out;
} VaeCoder;

struct VgVae {
    VgCtx *ctx;
    VgVaeConfig cfg;
    VgVaeLayout layout;
    const VgWeights *w;
    VgWeights *own; /* vg_vae_open_path only */
    char prefix[64];
    VaeCoder enc, dec;
    VaeConv quant, post_quant;
    VgTensor quant_mean_w, quant_mean_b; /* views: the mean half of quant_conv */
};

/* ----------------------------------------------------------------- config */

void vg_vae_config_default(VgVaeConfig *cfg)
{
    static const int boc[4] = { 128, 256, 512, 512 };
    memset(cfg, 0, sizeof(*cfg));
    cfg->in_channels = cfg->out_channels = 3;
    cfg->latent_channels = 4;
    cfg->n_blocks = 4;
    memcpy(cfg->block_out, boc, sizeof(boc));
    cfg->layers_per_block = 2;
    cfg->norm_groups = 32;
    cfg->scaling_factor = 0.18215f;
}

static int check_config(const VgCtx *c, const VgVaeConfig *cfg, const char *where)
{
    int ok = cfg->in_channels > 0 && cfg->out_channels > 0 && cfg->latent_channels > 0 &&
             cfg->n_blocks >= 1 && cfg->n_blocks <= VG_VAE_MAX_BLOCKS &&
             cfg->layers_per_block >= 1 && cfg->layers_per_block <= VG_VAE_MAX_LAYERS &&
             cfg->norm_groups >= 1 && cfg->scaling_factor > 0.f;
    for (int i = 0; ok && i < cfg->n_blocks; i++)
        ok = cfg->block_out[i] > 0 && cfg->block_out[i] % cfg->norm_groups == 0;
    if (!ok) {
        vg_log(c, VG_LOG_ERROR, "vae: %s: unsupported configuration (%d blocks of at most %d, "
               "%d layers of at most %d, widths must be multiples of %d groups)\n", where,
               cfg->n_blocks, VG_VAE_MAX_BLOCKS, cfg->layers_per_block, VG_VAE_MAX_LAYERS,
               cfg->norm_groups);
        return VG_EBADMODEL;
    }
    return 0;
}

int vg_vae_config_from_json(VgVaeConfig *cfg, const VgCtx *c, const char *path)
{
    char *text;
    cJSON *j = NULL, *it;
    int ret = VG_EBADMODEL;

    vg_vae_config_default(cfg);
    if (!(text = vg_read_text(path, 1 << 20))) {
        vg_log(c, VG_LOG_ERROR, "vae: cannot read config '%s'\n", path);
        return VG_ERR(ENOENT);
    }
    if (!(j = cJSON_Parse(text)) || !cJSON_IsObject(j)) {
        vg_log(c, VG_LOG_ERROR, "vae: '%s' is not a JSON object\n", path);
        goto end;
    }
    it = cJSON_GetObjectItemCaseSensitive(j, "_class_name");
    if (cJSON_IsString(it) && strcmp(it->valuestring, "AutoencoderKL")) {
        vg_log(c, VG_LOG_ERROR, "vae: '%s' describes a %s, not an AutoencoderKL\n", path,
               it->valuestring);
        ret = VG_EUNSUPPORTED;
        goto end;
    }
#define INT_FIELD(name, dst) \
    if ((it = cJSON_GetObjectItemCaseSensitive(j, name))) { \
        if (!cJSON_IsNumber(it)) { \
            vg_log(c, VG_LOG_ERROR, "vae: '%s': %s is not a number\n", path, name); \
            goto end; \
        } \
        dst = it->valueint; \
    }
    INT_FIELD("in_channels", cfg->in_channels)
    INT_FIELD("out_channels", cfg->out_channels)
    INT_FIELD("latent_channels", cfg->latent_channels)
    INT_FIELD("layers_per_block", cfg->layers_per_block)
    INT_FIELD("norm_num_groups", cfg->norm_groups)
#undef INT_FIELD
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "scaling_factor")) && cJSON_IsNumber(it))
        cfg->scaling_factor = (float)it->valuedouble;
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "block_out_channels"))) {
        const int n = cJSON_GetArraySize(it);
        if (!cJSON_IsArray(it) || n < 1 || n > VG_VAE_MAX_BLOCKS) {
            vg_log(c, VG_LOG_ERROR, "vae: '%s': block_out_channels must be a list of 1..%d\n",
                   path, VG_VAE_MAX_BLOCKS);
            goto end;
        }
        cfg->n_blocks = n;
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(it, i);
            cfg->block_out[i] = cJSON_IsNumber(e) ? e->valueint : -1;
        }
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "act_fn")) && cJSON_IsString(it) &&
        strcmp(it->valuestring, "silu") && strcmp(it->valuestring, "swish")) {
        vg_log(c, VG_LOG_ERROR, "vae: '%s': act_fn %s is not supported (silu only)\n", path,
               it->valuestring);
        ret = VG_EUNSUPPORTED;
        goto end;
    }
    ret = check_config(c, cfg, path);
end:
    cJSON_Delete(j);
    free(text);
    return ret;
}

/* ---------------------------------------------------------------- loading */

static const VgTensor *find(const VgVae *v, const char *dname, char *key, size_t size)
{
    char k[256];
    if (vg_vae_key(k, sizeof(k), v->layout, v->cfg.n_blocks, dname) < 0)
        return NULL;
    snprintf(key, size, "%s%s", v->prefix, k);
    return vg_weights_find(v->w, key);
}

/* The tensor whose diffusers name is the printf-style @fmt, ... with shape @e (ndim dims;
 * a 2-D [C, C] also accepts [C, C, 1, 1]) or NULL with a log line. */
static const VgTensor *get(VgVae *v, int ndim, const int64_t *e, int optional,
                           const char *fmt, ...) VG_PRINTF(5, 6);
static const VgTensor *get(VgVae *v, int ndim, const int64_t *e, int optional,
                           const char *fmt, ...)
{
    char dname[256], key[320], s[64];
    const VgTensor *t;
    va_list ap;
    int ok;

    va_start(ap, fmt);
    vsnprintf(dname, sizeof(dname), fmt, ap);
    va_end(ap);
    if (!(t = find(v, dname, key, sizeof(key)))) {
        if (!optional)
            vg_log(v->ctx, VG_LOG_ERROR, "vae: tensor '%s' missing\n", key);
        return NULL;
    }
    ok = (t->dtype == VG_DT_F32 || t->dtype == VG_DT_F16 || t->dtype == VG_DT_BF16) &&
         vg_tensor_is_contiguous(t);
    if (ok && ndim == 2 && t->ndim == 4)
        ok = t->ne[2] == 1 && t->ne[3] == 1 && t->ne[0] == e[0] && t->ne[1] == e[1];
    else
        for (int i = 0; ok && i < ndim; i++)
            ok = t->ndim == ndim && t->ne[i] == e[i];
    if (!ok) {
        char want[64] = "[";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", i ? ", " : "",
                     (long long)e[i]);
        vg_log(v->ctx, VG_LOG_ERROR, "vae: tensor '%s' is %s %s, expected %s] float "
               "(a VAE of another shape or configuration?)\n", key, vg_dtype_name(t->dtype),
               vg_tensor_shape_str(t, s, sizeof(s)), want);
        return NULL;
    }
    return t;
}

#define GET(dst, ndim, opt, ...) \
    do { if (!((dst) = get(v, ndim, shp, opt, __VA_ARGS__)) && !(opt)) return VG_EBADMODEL; } while (0)

static int get_conv(VgVae *v, VaeConv *c, int cout, int cin, int k, int optional, const char *name)
{
    int64_t shp[4] = { cout, cin, k, k };
    GET(c->w, 4, optional, "%s.weight", name);
    if (!c->w)
        return 0;
    shp[0] = cout;
    GET(c->b, 1, 0, "%s.bias", name);
    return 0;
}

static int get_norm(VgVae *v, VaeNorm *n, int c, const char *name)
{
    const int64_t shp[1] = { c };
    GET(n->g, 1, 0, "%s.weight", name);
    GET(n->b, 1, 0, "%s.bias", name);
    return 0;
}

static int get_res(VgVae *v, VaeRes *r, int cin, int cout, const char *name)
{
    char n[200];
    int ret;
#define SUB(s) (snprintf(n, sizeof(n), "%s.%s", name, s), n)
    if ((ret = get_norm(v, &r->n1, cin, SUB("norm1"))) < 0 ||
        (ret = get_conv(v, &r->c1, cout, cin, 3, 0, SUB("conv1"))) < 0 ||
        (ret = get_norm(v, &r->n2, cout, SUB("norm2"))) < 0 ||
        (ret = get_conv(v, &r->c2, cout, cout, 3, 0, SUB("conv2"))) < 0)
        return ret;
    if (cin != cout)
        return get_conv(v, &r->sc, cout, cin, 1, 0, SUB("conv_shortcut"));
#undef SUB
    return 0;
}

static void view2d(VgTensor *dst, const VgTensor *src, int64_t rows, int64_t cols)
{
    const int64_t s[2] = { rows, cols };
    vg_tensor_view(dst, src->dtype, src->data, 2, s);
}

static int get_attn(VgVae *v, VaeAttn *a, int c, const char *coder)
{
    const int64_t shp[2] = { c, c };
    const char *names[4] = { "to_q", "to_k", "to_v", "to_out.0" };
    VgTensor *w[4] = { &a->wq, &a->wk, &a->wv, &a->wo };
    const VgTensor **b[4] = { &a->bq, &a->bk, &a->bv, &a->bo };
    char n[128];
    int ret;

    snprintf(n, sizeof(n), "%s.mid_block.attentions.0.group_norm", coder);
    if ((ret = get_norm(v, &a->n, c, n)) < 0)
        return ret;
    for (int i = 0; i < 4; i++) {
        const VgTensor *t;
        GET(t, 2, 0, "%s.mid_block.attentions.0.%s.weight", coder, names[i]);
        view2d(w[i], t, c, c); /* [C, C] also for 1x1 conv weights [C, C, 1, 1] */
        GET(*b[i], 1, 0, "%s.mid_block.attentions.0.%s.bias", coder, names[i]);
    }
    return 0;
}

static int load_coder(VgVae *v, int is_dec)
{
    const VgVaeConfig *c = &v->cfg;
    const char *cn = is_dec ? "decoder" : "encoder";
    VaeCoder *k = is_dec ? &v->dec : &v->enc;
    const int n = c->n_blocks, top = c->block_out[n - 1];
    char name[128];
    int ret;

    snprintf(name, sizeof(name), "%s.conv_in", cn);
    if ((ret = get_conv(v, &k->conv_in, is_dec ? top : c->block_out[0],
                        is_dec ? c->latent_channels : c->in_channels, 3, 0, name)) < 0)
        return ret;
    for (int i = 0; i < n; i++) {
        VaeStage *st = &k->st[i];
        /* decoder block i works at width block_out[n-1-i] */
        const int cout = is_dec ? c->block_out[n - 1 - i] : c->block_out[i];
        int cin = is_dec ? c->block_out[VG_MIN(n - i, n - 1)] : c->block_out[VG_MAX(i - 1, 0)];
        st->n_res = c->layers_per_block + is_dec;
        for (int j = 0; j < st->n_res; j++, cin = cout) {
            snprintf(name, sizeof(name), "%s.%s.%d.resnets.%d", cn,
                     is_dec ? "up_blocks" : "down_blocks", i, j);
            if ((ret = get_res(v, &st->res[j], cin, cout, name)) < 0)
                return ret;
        }
        if (i < n - 1) {
            snprintf(name, sizeof(name), "%s.%s.%d.%s.0.conv", cn,
                     is_dec ? "up_blocks" : "down_blocks", i, is_dec ? "upsamplers" : "downsamplers");
            if ((ret = get_conv(v, &st->sample, cout, cout, 3, 0, name)) < 0)
                return ret;
        }
    }
    for (int j = 0; j < 2; j++) {
        snprintf(name, sizeof(name), "%s.mid_block.resnets.%d", cn, j);
        if ((ret = get_res(v, &k->mid[j], top, top, name)) < 0)
            return ret;
    }
    if ((ret = get_attn(v, &k->attn, top, cn)) < 0)
        return ret;
    snprintf(name, sizeof(name), "%s.conv_norm_out", cn);
    if ((ret = get_norm(v, &k->norm_out, is_dec ? c->block_out[0] : top, name)) < 0)
        return ret;
    snprintf(name, sizeof(name), "%s.conv_out", cn);
    return get_conv(v, &k->conv_out, is_dec ? c->out_channels : 2 * c->latent_channels,
                    is_dec ? c->block_out[0] : top, 3, 0, name);
}

/* Layout and prefix from the names present. */
static int detect(VgVae *v, const char *prefix)
{
    static const char *const prefixes[] = {
        "", "first_stage_model.", "state_dict.", "state_dict.first_stage_model.", "vae.",
    };
    static const VgVaeLayout layouts[] = {
        VG_VAE_LAYOUT_DIFFUSERS, VG_VAE_LAYOUT_DIFFUSERS_LEGACY, VG_VAE_LAYOUT_ORIGINAL,
    };
    char key[320];
    for (size_t i = 0; i < VG_ARRAY_SIZE(prefixes); i++) {
        if (prefix && i)
            break;
        snprintf(v->prefix, sizeof(v->prefix), "%s", prefix ? prefix : prefixes[i]);
        for (size_t l = 0; l < VG_ARRAY_SIZE(layouts); l++) {
            v->layout = layouts[l];
            v->cfg.n_blocks = 1;
            if (find(v, "encoder.down_blocks.0.resnets.0.conv1.weight", key, sizeof(key)) &&
                find(v, "encoder.mid_block.attentions.0.to_q.weight", key, sizeof(key)))
                return 0;
        }
    }
    return VG_EBADMODEL;
}

static int infer_config(VgVae *v, VgVaeConfig *c)
{
    char key[320], dn[128];
    const VgTensor *t;

    vg_vae_config_default(c);
    c->n_blocks = 0;
    for (int i = 0; i < VG_VAE_MAX_BLOCKS; i++) {
        snprintf(dn, sizeof(dn), "encoder.down_blocks.%d.resnets.0.conv1.weight", i);
        if (!(t = find(v, dn, key, sizeof(key))) || t->ndim != 4)
            break;
        c->block_out[c->n_blocks++] = (int)t->ne[0];
    }
    v->cfg.n_blocks = c->n_blocks;
    c->layers_per_block = 0;
    for (int j = 0; j <= VG_VAE_MAX_LAYERS; j++) {
        snprintf(dn, sizeof(dn), "encoder.down_blocks.0.resnets.%d.conv1.weight", j);
        if (!find(v, dn, key, sizeof(key)))
            break;
        c->layers_per_block = j + 1;
    }
    if ((t = find(v, "encoder.conv_in.weight", key, sizeof(key))) && t->ndim == 4)
        c->in_channels = (int)t->ne[1];
    if ((t = find(v, "decoder.conv_out.weight", key, sizeof(key))) && t->ndim == 4)
        c->out_channels = (int)t->ne[0];
    if ((t = find(v, "post_quant_conv.weight", key, sizeof(key))) && t->ndim == 4)
        c->latent_channels = (int)t->ne[0];
    return check_config(v->ctx, c, "shapes");
}

int vg_vae_open(VgVae **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                const VgVaeConfig *cfg)
{
    VgVae *v;
    int ret;
    int64_t shp[4];

    VG_VALIDATE(out && w, VG_ERR(EINVAL));
    *out = NULL;
    if (!(v = calloc(1, sizeof(*v))))
        return VG_ERR(ENOMEM);
    v->ctx = ctx;
    v->w = w;
    if ((ret = detect(v, prefix)) < 0) {
        vg_log(ctx, VG_LOG_ERROR, "vae: no KL-VAE weights found under prefix '%s' (expected "
               "diffusers 'encoder.down_blocks.0...' or original 'encoder.down.0.block...' "
               "names%s)\n", prefix ? prefix : "", prefix ? "" : "; also tried "
               "first_stage_model., state_dict., vae.");
        goto fail;
    }
    if (cfg) {
        v->cfg = *cfg;
        if ((ret = check_config(ctx, cfg, "config")) < 0)
            goto fail;
    } else if ((ret = infer_config(v, &v->cfg)) < 0) {
        goto fail;
    }
    if ((ret = load_coder(v, 0)) < 0 || (ret = load_coder(v, 1)) < 0)
        goto fail;
    {
        const int l2 = 2 * v->cfg.latent_channels;
        if ((ret = get_conv(v, &v->quant, l2, l2, 1, 0, "quant_conv")) < 0 ||
            (ret = get_conv(v, &v->post_quant, l2 / 2, l2 / 2, 1, 0, "post_quant_conv")) < 0)
            goto fail;
        /* the first latent_channels output rows of quant_conv give the mean */
        shp[0] = l2 / 2; shp[1] = l2; shp[2] = shp[3] = 1;
        vg_tensor_view(&v->quant_mean_w, v->quant.w->dtype, v->quant.w->data, 4, shp);
        vg_tensor_view(&v->quant_mean_b, v->quant.b->dtype, v->quant.b->data, 1, shp);
    }
    vg_log(ctx, VG_LOG_INFO, "vae: %s layout%s%s, %d blocks (%d..%d wide), %d layers, %d latent "
           "channels, scale %g\n",
           v->layout == VG_VAE_LAYOUT_ORIGINAL ? "original" :
           v->layout == VG_VAE_LAYOUT_DIFFUSERS ? "diffusers" : "diffusers (legacy attention)",
           *v->prefix ? " under " : "", v->prefix, v->cfg.n_blocks, v->cfg.block_out[0],
           v->cfg.block_out[v->cfg.n_blocks - 1], v->cfg.layers_per_block,
           v->cfg.latent_channels, v->cfg.scaling_factor);
    *out = v;
    return 0;
fail:
    if (ret != VG_ERR(ENOMEM) && ret != VG_EUNSUPPORTED)
        ret = VG_EBADMODEL;
    free(v);
    return ret;
}

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

int vg_vae_open_path(VgVae **out, VgCtx *ctx, const char *path)
{
    char dir[1024], file[1200], cfgp[1200], link[2400];
    VgVaeConfig cfg;
    VgWeights *w = NULL;
    int ret, have_cfg = 0;

    VG_VALIDATE(out && path, VG_ERR(EINVAL));
    *out = NULL;
    if (is_dir(path)) {
        snprintf(dir, sizeof(dir), "%s/vae", path);
        if (!is_dir(dir))
            snprintf(dir, sizeof(dir), "%s", path);
        snprintf(file, sizeof(file), "%s/diffusion_pytorch_model.safetensors", dir);
        if (!is_file(file))
            snprintf(file, sizeof(file), "%s/diffusion_pytorch_model.bin", dir);
        if (!is_file(file)) {
            vg_log(ctx, VG_LOG_ERROR, "vae: '%s' has no diffusion_pytorch_model.safetensors or "
                   ".bin\n", dir);
            return VG_ERR(ENOENT);
        }
        snprintf(cfgp, sizeof(cfgp), "%s/config.json", dir);
        if (is_file(cfgp)) {
            if ((ret = vg_vae_config_from_json(&cfg, ctx, cfgp)) < 0)
                return ret;
            have_cfg = 1;
        }
        path = file;
    }
    path = vg_follow_link_file(ctx, path, link, sizeof(link));
    if ((ret = vg_weights_open(&w, ctx, path)) < 0)
        return ret;
    if ((ret = vg_vae_open(out, ctx, w, NULL, have_cfg ? &cfg : NULL)) < 0) {
        vg_weights_close(&w);
        return ret;
    }
    (*out)->own = w;
    return 0;
}

const VgVaeConfig *vg_vae_get_config(const VgVae *v) { return &v->cfg; }
VgVaeLayout vg_vae_get_layout(const VgVae *v) { return v->layout; }
int vg_vae_factor(const VgVae *v) { return 1 << (v->cfg.n_blocks - 1); }
VgCtx *vg_vae_ctx(const VgVae *v) { return v->ctx; }

void vg_vae_close(VgVae **pv)
{
    VgVae *v = pv ? *pv : NULL;
    if (!v)
        return;
    vg_weights_close(&v->own);
    free(v);
    *pv = NULL;
}

/* ---------------------------------------------------------------- forward */

/* *y = conv(*x) (x consumed unless @keep). pad: top/left, bottom/right. */
static int conv(VgVae *v, VgTensor *x, int keep, const VgTensor *w, const VgTensor *b, int stride,
                int pad0, int pad1, VgTensor *y)
{
    VgConvParams p;
    const int k = (int)w->ne[2];
    int ret;

    vg_conv_params_default(&p);
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = pad0;
    p.pad_bottom = p.pad_right = pad1;
    const int ho = vg_conv_out_size((int)x->ne[2], k, stride, pad0, pad1, 1);
    const int wo = vg_conv_out_size((int)x->ne[3], k, stride, pad0, pad1, 1);
    if ((ret = vg_tensor_alloc4(y, x->ne[0], w->ne[0], ho, wo)) < 0 ||  // [B, Cout, Ho, Wo]
        (ret = vg_conv2d_any(v->ctx, x, w, b, &p, y)) < 0)
        vg_tensor_free(y);
    if (!keep)
        vg_tensor_free(x);
    return ret;
}

static int conv3(VgVae *v, VgTensor *x, const VaeConv *c, VgTensor *y)
{
    return conv(v, x, 0, c->w, c->b, 1, 1, 1, y);
}

/* *y = silu(group_norm(x)); x kept */
static int norm_silu(VgVae *v, const VgTensor *x, const VaeNorm *n, VgTensor *y)
{
    int ret;
    if ((ret = vg_tensor_alloc(y, VG_DT_F32, x->ndim, x->ne)) < 0)
        return ret;
    if ((ret = vg_group_norm(v->ctx, x, v->cfg.norm_groups, n->g, n->b, GN_EPS, y)) < 0 ||
        (ret = vg_silu(v->ctx, y, y)) < 0)
        vg_tensor_free(y);
    return ret;
}

static int resnet(VgVae *v, VgTensor *x, const VaeRes *r, VgTensor *y)
{
    VgTensor h = { 0 }, t = { 0 }, s = { 0 };
    int ret;

    if ((ret = norm_silu(v, x, &r->n1, &h)) < 0 ||
        (ret = conv3(v, &h, &r->c1, &t)) < 0 ||       // [B, Cout, H, W]
        (ret = norm_silu(v, &t, &r->n2, &h)) < 0)
        goto end;
    vg_tensor_free(&t);
    if ((ret = conv3(v, &h, &r->c2, y)) < 0)
        goto end;
    if (r->sc.w) {
        if ((ret = conv(v, x, 0, r->sc.w, r->sc.b, 1, 0, 0, &s)) < 0 ||  // [B, Cout, H, W]
            (ret = vg_add(v->ctx, y, &s, y)) < 0)
            goto end;
    } else if ((ret = vg_add(v->ctx, y, x, y)) < 0) {
        goto end;
    }
end:
    if (ret < 0)
        vg_tensor_free(y);
    vg_tensor_free(x);
    vg_tensor_free(&h);
    vg_tensor_free(&t);
    vg_tensor_free(&s);
    return ret;
}

/* [B, C, L] <-> [B, L, C]; @add (may be NULL, shaped like y) is added. */
static void transpose_bcl(const float *x, float *y, const float *add, int64_t B, int64_t R,
                          int64_t Cc)
{
    /* x [B, R, Cc] -> y [B, Cc, R], blocked so both sides stream */
    enum { T = 32 };
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * R * Cc;
        float *yb = y + b * R * Cc;
        const float *ab = add ? add + b * R * Cc : NULL;
        for (int64_t r0 = 0; r0 < R; r0 += T)
            for (int64_t c0 = 0; c0 < Cc; c0 += T)
                for (int64_t c = c0; c < VG_MIN(c0 + T, Cc); c++)
                    for (int64_t r = r0; r < VG_MIN(r0 + T, R); r++)
                        yb[c * R + r] = xb[r * Cc + c] + (ab ? ab[c * R + r] : 0.f);
    }
}

/* x + out(attention(q, k, v)) over the H*W positions, one head */
static int attention(VgVae *v, VgTensor *x, const VaeAttn *a, VgTensor *y)
{
    const int64_t B = x->ne[0], C = x->ne[1], L = x->ne[2] * x->ne[3];
    const int64_t tshape[3] = { B, L, C };
    VgTensor h = { 0 }, tok = { 0 }, q = { 0 }, k = { 0 }, val = { 0 }, o = { 0 };
    int ret;

    if ((ret = vg_tensor_alloc(&h, VG_DT_F32, x->ndim, x->ne)) < 0 ||
        (ret = vg_group_norm(v->ctx, x, v->cfg.norm_groups, a->n.g, a->n.b, GN_EPS, &h)) < 0 ||
        (ret = vg_tensor_alloc(&tok, VG_DT_F32, 3, tshape)) < 0)  // [B, HW, C]
        goto end;
    transpose_bcl(h.data, tok.data, NULL, B, C, L);
    vg_tensor_free(&h);
    if ((ret = vg_tensor_alloc(&q, VG_DT_F32, 3, tshape)) < 0 ||
        (ret = vg_tensor_alloc(&k, VG_DT_F32, 3, tshape)) < 0 ||
        (ret = vg_tensor_alloc(&val, VG_DT_F32, 3, tshape)) < 0 ||
        (ret = vg_linear(v->ctx, &tok, &a->wq, a->bq, &q)) < 0 ||
        (ret = vg_linear(v->ctx, &tok, &a->wk, a->bk, &k)) < 0 ||
        (ret = vg_linear(v->ctx, &tok, &a->wv, a->bv, &val)) < 0 ||
        (ret = vg_attention(v->ctx, &q, &k, &val, 1, 0, &tok)) < 0)  // [B, HW, C]
        goto end;
    vg_tensor_free(&k);
    vg_tensor_free(&val);
    if ((ret = vg_linear(v->ctx, &tok, &a->wo, a->bo, &q)) < 0 ||
        (ret = vg_tensor_alloc(y, VG_DT_F32, x->ndim, x->ne)) < 0)  // [B, C, H, W]
        goto end;
    transpose_bcl(q.data, y->data, x->data, B, L, C);
end:
    vg_tensor_free(x);
    vg_tensor_free(&h);
    vg_tensor_free(&tok);
    vg_tensor_free(&q);
    vg_tensor_free(&k);
    vg_tensor_free(&val);
    vg_tensor_free(&o);
    return ret;
}

#define STEP(call) do { if ((ret = (call)) < 0) goto end; cur = nxt; memset(&nxt, 0, sizeof(nxt)); } while (0)

static int mid(VgVae *v, const VaeCoder *k, VgTensor *x, VgTensor *y)
{
    VgTensor cur = *x, nxt = { 0 };
    int ret;
    memset(x, 0, sizeof(*x));
    STEP(resnet(v, &cur, &k->mid[0], &nxt));
    STEP(attention(v, &cur, &k->attn, &nxt));
    STEP(resnet(v, &cur, &k->mid[1], &nxt));
    *y = cur;
    return 0;
end:
    vg_tensor_free(&cur);
    return ret;
}

/* silu(gn(x)) then conv_out */
static int head(VgVae *v, const VaeCoder *k, VgTensor *x, VgTensor *y)
{
    VgTensor h = { 0 };
    int ret = norm_silu(v, x, &k->norm_out, &h);
    vg_tensor_free(x);
    if (ret < 0)
        return ret;
    return conv3(v, &h, &k->conv_out, y);
}

static int check_input(VgVae *v, const VgTensor *x, int ch, int mult, const char *what)
{
    char s[64];
    if (x->ndim != 4 || x->ne[0] < 1 || x->ne[1] != ch || x->ne[2] < mult || x->ne[3] < mult ||
        x->ne[2] % mult || x->ne[3] % mult ||
        (x->dtype != VG_DT_F32 && x->dtype != VG_DT_F16 && x->dtype != VG_DT_BF16)) {
        vg_log(v->ctx, VG_LOG_ERROR, "vae: %s input is %s %s, expected [B, %d, H, W] float with H "
               "and W multiples of %d\n", what, vg_dtype_name(x->dtype),
               vg_tensor_shape_str(x, s, sizeof(s)), ch, mult);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int encode(VgVae *v, const VgTensor *img, int moments, VgTensor *out)
{
    const VaeCoder *k = &v->enc;
    VgTensor cur = { 0 }, nxt = { 0 };
    int ret;

    VG_VALIDATE(v && img && out, VG_ERR(EINVAL));
    memset(out, 0, sizeof(*out));
    if ((ret = check_input(v, img, v->cfg.in_channels, vg_vae_factor(v), "encoder")) < 0 ||
        (ret = vg_tensor_to_f32(img, &cur)) < 0)  // [B, 3, H, W]
        return ret;
    STEP(conv3(v, &cur, &k->conv_in, &nxt));
    for (int i = 0; i < v->cfg.n_blocks; i++) {
        const VaeStage *st = &k->st[i];
        for (int j = 0; j < st->n_res; j++)
            STEP(resnet(v, &cur, &st->res[j], &nxt));
        if (st->sample.w)  /* pad right and bottom by one, 3x3 stride 2 */
            STEP(conv(v, &cur, 0, st->sample.w, st->sample.b, 2, 0, 1, &nxt));
    }
    STEP(mid(v, k, &cur, &nxt));
    STEP(head(v, k, &cur, &nxt));           // [B, 2L, h, w]
    if (moments)
        STEP(conv(v, &cur, 0, v->quant.w, v->quant.b, 1, 0, 0, &nxt));
    else  /* only the mean half of quant_conv */
        STEP(conv(v, &cur, 0, &v->quant_mean_w, &v->quant_mean_b, 1, 0, 0, &nxt));
    *out = cur;
    return 0;
end:
    vg_tensor_free(&cur);
    return ret;
}

int vg_vae_encode(VgVae *v, const VgTensor *img, VgTensor *mean)
{
    return encode(v, img, 0, mean);
}

int vg_vae_encode_moments(VgVae *v, const VgTensor *img, VgTensor *moments)
{
    return encode(v, img, 1, moments);
}

int vg_vae_decode(VgVae *v, const VgTensor *lat, VgTensor *img)
{
    const VaeCoder *k = &v->dec;
    VgTensor cur = { 0 }, nxt = { 0 };
    int ret;

    VG_VALIDATE(v && lat && img, VG_ERR(EINVAL));
    memset(img, 0, sizeof(*img));
    if ((ret = check_input(v, lat, v->cfg.latent_channels, 1, "decoder")) < 0 ||
        (ret = vg_tensor_to_f32(lat, &cur)) < 0)  // [B, L, h, w]
        return ret;
    STEP(conv(v, &cur, 0, v->post_quant.w, v->post_quant.b, 1, 0, 0, &nxt));
    STEP(conv3(v, &cur, &k->conv_in, &nxt));
    STEP(mid(v, k, &cur, &nxt));
    for (int i = 0; i < v->cfg.n_blocks; i++) {
        const VaeStage *st = &k->st[i];
        for (int j = 0; j < st->n_res; j++)
            STEP(resnet(v, &cur, &st->res[j], &nxt));
        if (st->sample.w) {
            if ((ret = vg_tensor_alloc4(&nxt, cur.ne[0], cur.ne[1], 2 * cur.ne[2],
                                        2 * cur.ne[3])) < 0 ||  // [B, C, 2h, 2w]
                (ret = vg_upsample_nearest(v->ctx, &cur, 2, &nxt)) < 0) {
                vg_tensor_free(&nxt);
                goto end;
            }
            vg_tensor_free(&cur);
            cur = nxt;
            memset(&nxt, 0, sizeof(nxt));
            STEP(conv3(v, &cur, &st->sample, &nxt));
        }
    }
    STEP(head(v, k, &cur, &nxt));           // [B, 3, H, W]
    *img = cur;
    return 0;
end:
    vg_tensor_free(&cur);
    return ret;
}
