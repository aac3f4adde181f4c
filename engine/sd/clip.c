/* CLIP text transformer (see clip.h): loading both key layouts, forward. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/io/textfile.h"
#include "engine/sd/clip.h"

typedef struct ClipLayer {
    VgTensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    VgTensor ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} ClipLayer;

struct VgClip {
    VgCtx *ctx;
    VgClipConfig cfg;  /* resolved */
    int openclip;
    int n_run;         /* layers run = cfg.layers - cfg.skip */
    VgTensor tok, pos; /* [V, C], [P, C] */
    VgTensor lnf_w, lnf_b;
    ClipLayer *layer;  /* [n_run] */
};

void vg_clip_config_default(VgClipConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->act = -1;
}

static int json_int(const cJSON *root, const char *key, int *dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e6)
        return -1;
    *dst = v->valueint;
    return 0;
}

int vg_clip_config_read(VgClipConfig *cfg, const VgCtx *c, const char *path)
{
    char *text = NULL;
    cJSON *root = NULL;
    int ret;
    if ((ret = vg_read_text_file(path, 1 << 20, &text, NULL)) < 0) {
        vg_log(c, VG_LOG_ERROR, "clip: cannot read %s (%s)\n", path,
               ret == VG_EBADMODEL ? "not a file under 1 MB" : vg_strerror(ret));
        return ret;
    }
    if (!(root = cJSON_Parse(text)) || !cJSON_IsObject(root)) {
        vg_log(c, VG_LOG_ERROR, "clip: %s is not a JSON object\n", path);
        ret = VG_EBADMODEL;
        goto end;
    }
    if (json_int(root, "hidden_size", &cfg->hidden) < 0 ||
        json_int(root, "num_attention_heads", &cfg->heads) < 0 ||
        json_int(root, "num_hidden_layers", &cfg->layers) < 0 ||
        json_int(root, "intermediate_size", &cfg->intermediate) < 0 ||
        json_int(root, "max_position_embeddings", &cfg->max_pos) < 0) {
        vg_log(c, VG_LOG_ERROR, "clip: %s: a size field is not a positive integer\n", path);
        ret = VG_EBADMODEL;
        goto end;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act)) {
        if (!strcmp(act->valuestring, "quick_gelu"))
            cfg->act = VG_CLIP_ACT_QUICK_GELU;
        else if (!strcmp(act->valuestring, "gelu"))
            cfg->act = VG_CLIP_ACT_GELU;
        else {
            vg_log(c, VG_LOG_ERROR, "clip: %s: hidden_act \"%s\" is not supported (quick_gelu, "
                   "gelu)\n", path, act->valuestring);
            ret = VG_EBADMODEL;
            goto end;
        }
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    if (cJSON_IsNumber(eps) && eps->valuedouble > 0 && eps->valuedouble < 1)
        cfg->eps = (float)eps->valuedouble;
end:
    cJSON_Delete(root);
    free(text);
    return ret;
}

const char *vg_clip_find_prefix(const VgWeights *w)
{
    static const char *const prefixes[] = { "", "cond_stage_model.transformer.",
                                            "cond_stage_model.model.", "text_encoder." };
    char name[256];
    for (size_t i = 0; i < VG_ARRAY_SIZE(prefixes); i++) {
        snprintf(name, sizeof(name), "%stext_model.embeddings.token_embedding.weight",
                 prefixes[i]);
        if (vg_weights_find(w, name))
            return prefixes[i];
        snprintf(name, sizeof(name), "%stoken_embedding.weight", prefixes[i]);
        if (vg_weights_find(w, name))
            return prefixes[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------- load */

typedef struct Loader {
    const VgCtx *c;
    const VgWeights *w;
    const char *prefix;
} Loader;

static const VgTensor *find(const Loader *l, const char *fmt, ...)
{
    char name[512];
    int n = snprintf(name, sizeof(name), "%s", l->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + n, sizeof(name) - (size_t)n, fmt, ap);
    va_end(ap);
    return vg_weights_find(l->w, name);
}

/* Copies the view of the tensor named by the printf-style @fmt into @dst after checking it is a
 * float tensor of shape [d0] (d1 < 0) or [d0, d1]. */
static int get(const Loader *l, VgTensor *dst, int64_t d0, int64_t d1, const char *fmt, ...)
{
    char name[512], b[96];
    int n = snprintf(name, sizeof(name), "%s", l->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + n, sizeof(name) - (size_t)n, fmt, ap);
    va_end(ap);
    const VgTensor *t = vg_weights_find(l->w, name);
    if (!t) {
        vg_log(l->c, VG_LOG_ERROR, "clip: missing tensor %s\n", name);
        return VG_EBADMODEL;
    }
    const int nd = d1 < 0 ? 1 : 2;
    if ((t->dtype != VG_DT_F32 && t->dtype != VG_DT_F16 && t->dtype != VG_DT_BF16) ||
        t->ndim != nd || t->ne[0] != d0 || (nd == 2 && t->ne[1] != d1) ||
        !vg_tensor_is_contiguous(t)) {
        if (nd == 1)
            vg_log(l->c, VG_LOG_ERROR, "clip: %s is %s %s, expected a float tensor [%lld]\n",
                   name, vg_dtype_name(t->dtype), vg_tensor_shape_str(t, b, sizeof(b)),
                   (long long)d0);
        else
            vg_log(l->c, VG_LOG_ERROR, "clip: %s is %s %s, expected a float tensor "
                   "[%lld, %lld]\n", name, vg_dtype_name(t->dtype),
                   vg_tensor_shape_str(t, b, sizeof(b)), (long long)d0, (long long)d1);
        return VG_EBADMODEL;
    }
    *dst = *t;
    dst->alloc = NULL;
    return 0;
}

/* rows [r0, r0 + n) of a contiguous 2-D (or 1-D) tensor, as a view */
static VgTensor rows(const VgTensor *t, int64_t r0, int64_t n)
{
    VgTensor v;
    int64_t shape[2] = { n, t->ndim == 2 ? t->ne[1] : 1 };
    vg_tensor_view(&v, t->dtype, (char *)t->data + r0 * t->nb[0], t->ndim, shape);
    return v;
}

static int load_layer_hf(const Loader *l, ClipLayer *y, int i, int64_t c, int64_t m)
{
    const char *p = "text_model.encoder.layers";
    int ret;
    if ((ret = get(l, &y->ln1_w, c, -1, "%s.%d.layer_norm1.weight", p, i)) < 0 ||
        (ret = get(l, &y->ln1_b, c, -1, "%s.%d.layer_norm1.bias", p, i)) < 0 ||
        (ret = get(l, &y->q_w, c, c, "%s.%d.self_attn.q_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->q_b, c, -1, "%s.%d.self_attn.q_proj.bias", p, i)) < 0 ||
        (ret = get(l, &y->k_w, c, c, "%s.%d.self_attn.k_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->k_b, c, -1, "%s.%d.self_attn.k_proj.bias", p, i)) < 0 ||
        (ret = get(l, &y->v_w, c, c, "%s.%d.self_attn.v_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->v_b, c, -1, "%s.%d.self_attn.v_proj.bias", p, i)) < 0 ||
        (ret = get(l, &y->o_w, c, c, "%s.%d.self_attn.out_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->o_b, c, -1, "%s.%d.self_attn.out_proj.bias", p, i)) < 0 ||
        (ret = get(l, &y->ln2_w, c, -1, "%s.%d.layer_norm2.weight", p, i)) < 0 ||
        (ret = get(l, &y->ln2_b, c, -1, "%s.%d.layer_norm2.bias", p, i)) < 0 ||
        (ret = get(l, &y->fc1_w, m, c, "%s.%d.mlp.fc1.weight", p, i)) < 0 ||
        (ret = get(l, &y->fc1_b, m, -1, "%s.%d.mlp.fc1.bias", p, i)) < 0 ||
        (ret = get(l, &y->fc2_w, c, m, "%s.%d.mlp.fc2.weight", p, i)) < 0 ||
        (ret = get(l, &y->fc2_b, c, -1, "%s.%d.mlp.fc2.bias", p, i)) < 0)
        return ret;
    return 0;
}

static int load_layer_openclip(const Loader *l, ClipLayer *y, int i, int64_t c, int64_t m)
{
    const char *p = "transformer.resblocks";
    VgTensor in_w, in_b;
    int ret;
    if ((ret = get(l, &y->ln1_w, c, -1, "%s.%d.ln_1.weight", p, i)) < 0 ||
        (ret = get(l, &y->ln1_b, c, -1, "%s.%d.ln_1.bias", p, i)) < 0 ||
        (ret = get(l, &in_w, 3 * c, c, "%s.%d.attn.in_proj_weight", p, i)) < 0 ||
        (ret = get(l, &in_b, 3 * c, -1, "%s.%d.attn.in_proj_bias", p, i)) < 0 ||
        (ret = get(l, &y->o_w, c, c, "%s.%d.attn.out_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->o_b, c, -1, "%s.%d.attn.out_proj.bias", p, i)) < 0 ||
        (ret = get(l, &y->ln2_w, c, -1, "%s.%d.ln_2.weight", p, i)) < 0 ||
        (ret = get(l, &y->ln2_b, c, -1, "%s.%d.ln_2.bias", p, i)) < 0 ||
        (ret = get(l, &y->fc1_w, m, c, "%s.%d.mlp.c_fc.weight", p, i)) < 0 ||
        (ret = get(l, &y->fc1_b, m, -1, "%s.%d.mlp.c_fc.bias", p, i)) < 0 ||
        (ret = get(l, &y->fc2_w, c, m, "%s.%d.mlp.c_proj.weight", p, i)) < 0 ||
        (ret = get(l, &y->fc2_b, c, -1, "%s.%d.mlp.c_proj.bias", p, i)) < 0)
        return ret;
    /* in_proj stacks q, k, v along the output dim: [3C, C] */
    y->q_w = rows(&in_w, 0, c);
    y->k_w = rows(&in_w, c, c);
    y->v_w = rows(&in_w, 2 * c, c);
    y->q_b = rows(&in_b, 0, c);
    y->k_b = rows(&in_b, c, c);
    y->v_b = rows(&in_b, 2 * c, c);
    y->q_b.ndim = y->k_b.ndim = y->v_b.ndim = 1;
    return 0;
}

int vg_clip_open(VgClip **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                 const VgClipConfig *cfg_in)
{
    char b[96];
    int ret = 0;
    VG_VALIDATE(out && w, VG_ERR(EINVAL));
    *out = NULL;
    if (!prefix && !(prefix = vg_clip_find_prefix(w))) {
        vg_log(ctx, VG_LOG_ERROR, "clip: no CLIP text encoder in this file (no "
               "token_embedding.weight under a known prefix)\n");
        return VG_EBADMODEL;
    }
    VgClip *m = calloc(1, sizeof(*m));
    if (!m)
        return VG_ERR(ENOMEM);
    m->ctx = ctx;
    if (cfg_in)
        m->cfg = *cfg_in;
    else
        vg_clip_config_default(&m->cfg);
    VgClipConfig *cfg = &m->cfg;
    Loader l = { ctx, w, prefix };

    const VgTensor *tok = find(&l, "text_model.embeddings.token_embedding.weight");
    m->openclip = !tok;
    if (!tok && !(tok = find(&l, "token_embedding.weight"))) {
        vg_log(ctx, VG_LOG_ERROR, "clip: missing tensor %stext_model.embeddings."
               "token_embedding.weight (or the OpenCLIP %stoken_embedding.weight)\n", prefix,
               prefix);
        ret = VG_EBADMODEL;
        goto end;
    }
    if (tok->ndim != 2 || tok->ne[1] < 1 || tok->ne[0] < 49408 || tok->ne[1] > 65536) {
        vg_log(ctx, VG_LOG_ERROR, "clip: token embedding %s is not [49408, C]\n",
               vg_tensor_shape_str(tok, b, sizeof(b)));
        ret = VG_EBADMODEL;
        goto end;
    }
    const int64_t c = tok->ne[1];
    if (cfg->hidden > 0 && cfg->hidden != c) {
        vg_log(ctx, VG_LOG_ERROR, "clip: config hidden_size %d but the token embedding is %s\n",
               cfg->hidden, vg_tensor_shape_str(tok, b, sizeof(b)));
        ret = VG_EBADMODEL;
        goto end;
    }
    cfg->hidden = (int)c;
    if (cfg->heads <= 0)
        cfg->heads = (int)(c / 64 > 0 ? c / 64 : 1);
    if (c % cfg->heads) {
        vg_log(ctx, VG_LOG_ERROR, "clip: width %lld is not divisible by %d heads\n",
               (long long)c, cfg->heads);
        ret = VG_EBADMODEL;
        goto end;
    }
    if (cfg->act < 0)
        cfg->act = m->openclip ? VG_CLIP_ACT_GELU : VG_CLIP_ACT_QUICK_GELU;
    if (cfg->eps <= 0)
        cfg->eps = 1e-5f;
    /* stored layers */
    int stored = 0;
    while (stored < 1000 && (m->openclip ?
           find(&l, "transformer.resblocks.%d.ln_1.weight", stored) :
           find(&l, "text_model.encoder.layers.%d.layer_norm1.weight", stored)))
        stored++;
    const int full_tower = m->openclip && find(&l, "text_projection") != NULL;
    if (cfg->layers <= 0)
        cfg->layers = full_tower ? stored - 1 : stored;
    if (cfg->layers < 1 || cfg->layers > stored) {
        vg_log(ctx, VG_LOG_ERROR, "clip: %d layers requested, the file holds %d (%s%s.0...)\n",
               cfg->layers, stored, prefix, m->openclip ? "transformer.resblocks" :
               "text_model.encoder.layers");
        ret = VG_EBADMODEL;
        goto end;
    }
    m->n_run = cfg->layers - cfg->skip;
    if (cfg->skip < 0 || m->n_run < 1) {
        vg_log(ctx, VG_LOG_ERROR, "clip: cannot skip %d of %d layers\n", cfg->skip, cfg->layers);
        ret = VG_ERR(EINVAL);
        goto end;
    }
    /* MLP width from the first layer's fc1 */
    const VgTensor *fc1 = m->openclip ? find(&l, "transformer.resblocks.0.mlp.c_fc.weight") :
                          find(&l, "text_model.encoder.layers.0.mlp.fc1.weight");
    if (cfg->intermediate <= 0)
        cfg->intermediate = fc1 && fc1->ndim == 2 ? (int)fc1->ne[0] : 4 * (int)c;
    const VgTensor *pos = m->openclip ? find(&l, "positional_embedding") :
                          find(&l, "text_model.embeddings.position_embedding.weight");
    if (cfg->max_pos <= 0)
        cfg->max_pos = pos && pos->ndim == 2 ? (int)pos->ne[0] : 77;

    if ((ret = get(&l, &m->tok, tok->ne[0], c, m->openclip ? "token_embedding.weight" :
                   "text_model.embeddings.token_embedding.weight")) < 0 ||
        (ret = get(&l, &m->pos, cfg->max_pos, c, m->openclip ? "positional_embedding" :
                   "text_model.embeddings.position_embedding.weight")) < 0 ||
        (ret = get(&l, &m->lnf_w, c, -1, m->openclip ? "ln_final.weight" :
                   "text_model.final_layer_norm.weight")) < 0 ||
        (ret = get(&l, &m->lnf_b, c, -1, m->openclip ? "ln_final.bias" :
                   "text_model.final_layer_norm.bias")) < 0)
        goto end;
    if (!(m->layer = calloc((size_t)m->n_run, sizeof(*m->layer)))) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    for (int i = 0; i < m->n_run; i++)
        if ((ret = (m->openclip ? load_layer_openclip : load_layer_hf)(&l, &m->layer[i], i, c,
                                                                       cfg->intermediate)) < 0)
            goto end;
    vg_log(ctx, VG_LOG_INFO, "clip: %s layout (prefix \"%s\"), width %lld, %d heads, %d of %d "
           "stored layers%s, %s, %s final layer norm, %s weights\n",
           m->openclip ? "OpenCLIP" : "transformers", prefix, (long long)c, cfg->heads,
           m->n_run, stored, full_tower ? " (full OpenCLIP tower: last one unused)" : "",
           cfg->act == VG_CLIP_ACT_GELU ? "gelu" : "quick_gelu",
           cfg->no_final_ln ? "without" : "with", vg_dtype_name(m->tok.dtype));
end:
    if (ret < 0) {
        vg_clip_close(&m);
        return ret;
    }
    *out = m;
    return 0;
}

void vg_clip_close(VgClip **pm)
{
    VgClip *m = pm ? *pm : NULL;
    if (!m)
        return;
    free(m->layer);
    free(m);
    *pm = NULL;
}

int vg_clip_hidden(const VgClip *m)
{
    return m->cfg.hidden;
}

int vg_clip_positions(const VgClip *m)
{
    return m->cfg.max_pos;
}

/* ------------------------------------------------------------- forward */

int vg_clip_encode(VgClip *m, const int32_t *ids, int n, VgTensor *out)
{
    VgCtx *ctx = m->ctx;
    const int64_t c = m->cfg.hidden, f = m->cfg.intermediate;
    char b[96];
    VgTensor x = { 0 }, h = { 0 }, q = { 0 }, k = { 0 }, v = { 0 }, a = { 0 }, t = { 0 };
    VgTensor mlp = { 0 };
    int32_t *pos_ids = NULL;
    int ret;
    VG_VALIDATE(m && ids && out, VG_ERR(EINVAL));
    if (n < 1 || n > m->cfg.max_pos || !out->data || out->dtype != VG_DT_F32 ||
        !vg_tensor_is_contiguous(out) || vg_tensor_nelem(out) != n * c ||
        out->ne[out->ndim - 1] != c) {
        vg_log(ctx, VG_LOG_ERROR, "clip: %d ids (at most %d) into output %s: expected a "
               "contiguous F32 [1, %d, %lld]\n", n, m->cfg.max_pos,
               vg_tensor_shape_str(out, b, sizeof(b)), n, (long long)c);
        return VG_ERR(EINVAL);
    }
    const int64_t s2[2] = { n, c }, sf[2] = { n, f };
    if ((ret = vg_tensor_alloc(&x, VG_DT_F32, 2, s2)) < 0 ||    // [L, C] residual stream
        (ret = vg_tensor_alloc(&h, VG_DT_F32, 2, s2)) < 0 ||    // [L, C] normed
        (ret = vg_tensor_alloc(&q, VG_DT_F32, 3, (int64_t[]){ 1, n, c })) < 0 ||
        (ret = vg_tensor_alloc(&k, VG_DT_F32, 3, (int64_t[]){ 1, n, c })) < 0 ||
        (ret = vg_tensor_alloc(&v, VG_DT_F32, 3, (int64_t[]){ 1, n, c })) < 0 ||
        (ret = vg_tensor_alloc(&a, VG_DT_F32, 3, (int64_t[]){ 1, n, c })) < 0 ||
        (ret = vg_tensor_alloc(&t, VG_DT_F32, 2, s2)) < 0 ||
        (ret = vg_tensor_alloc(&mlp, VG_DT_F32, 2, sf)) < 0 ||  // [L, F]
        !(pos_ids = malloc(sizeof(*pos_ids) * (size_t)n))) {
        vg_log(ctx, VG_LOG_ERROR, "clip: out of memory\n");
        ret = ret < 0 ? ret : VG_ERR(ENOMEM);
        goto end;
    }
    for (int i = 0; i < n; i++)
        pos_ids[i] = i;
    /* views of [1, L, C] buffers as [L, C] for linear */
    VgTensor q2, k2, v2, a2;
    vg_tensor_view(&q2, VG_DT_F32, q.data, 2, s2);
    vg_tensor_view(&k2, VG_DT_F32, k.data, 2, s2);
    vg_tensor_view(&v2, VG_DT_F32, v.data, 2, s2);
    vg_tensor_view(&a2, VG_DT_F32, a.data, 2, s2);
    if ((ret = vg_embedding(ctx, &m->tok, ids, n, &x)) < 0 ||
        (ret = vg_embedding(ctx, &m->pos, pos_ids, n, &t)) < 0 ||
        (ret = vg_add(ctx, &x, &t, &x)) < 0)
        goto end;
    for (int i = 0; i < m->n_run; i++) {
        const ClipLayer *y = &m->layer[i];
        if ((ret = vg_layer_norm(ctx, &x, &y->ln1_w, &y->ln1_b, m->cfg.eps, &h)) < 0 ||
            (ret = vg_linear(ctx, &h, &y->q_w, &y->q_b, &q2)) < 0 ||
            (ret = vg_linear(ctx, &h, &y->k_w, &y->k_b, &k2)) < 0 ||
            (ret = vg_linear(ctx, &h, &y->v_w, &y->v_b, &v2)) < 0 ||
            (ret = vg_attention(ctx, &q, &k, &v, m->cfg.heads, 1, &a)) < 0 ||
            (ret = vg_linear(ctx, &a2, &y->o_w, &y->o_b, &t)) < 0 ||
            (ret = vg_add(ctx, &x, &t, &x)) < 0 ||
            (ret = vg_layer_norm(ctx, &x, &y->ln2_w, &y->ln2_b, m->cfg.eps, &h)) < 0 ||
            (ret = vg_linear(ctx, &h, &y->fc1_w, &y->fc1_b, &mlp)) < 0 ||
            (ret = (m->cfg.act == VG_CLIP_ACT_GELU ? vg_gelu : vg_quick_gelu)(ctx, &mlp,
                                                                             &mlp)) < 0 ||
            (ret = vg_linear(ctx, &mlp, &y->fc2_w, &y->fc2_b, &t)) < 0 ||
            (ret = vg_add(ctx, &x, &t, &x)) < 0)
            goto end;
    }
    VgTensor o2;
    vg_tensor_view(&o2, VG_DT_F32, out->data, 2, s2);
    if (m->cfg.no_final_ln)
        memcpy(out->data, x.data, sizeof(float) * (size_t)(n * c));
    else
        ret = vg_layer_norm(ctx, &x, &m->lnf_w, &m->lnf_b, m->cfg.eps, &o2);
end:
    vg_tensor_free(&x);
    vg_tensor_free(&h);
    vg_tensor_free(&q);
    vg_tensor_free(&k);
    vg_tensor_free(&v);
    vg_tensor_free(&a);
    vg_tensor_free(&t);
    vg_tensor_free(&mlp);
    free(pos_ids);
    return ret;
}
