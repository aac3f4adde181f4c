/*
 * UNet configuration: diffusers config.json, inference from tensor shapes for
 * single files, layout / family detection and refusal of other families.
 *
 * diffusers' naming quirk: with "num_attention_heads": null, the value of
 * "attention_head_dim" is used as the NUMBER OF HEADS (SD1's 8; SD2's
 * [5,10,20,20] at widths [320,640,1280,1280] is 64 channels per head).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/internal.h"
#include "engine/io/textfile.h"
#include "engine/sd/unet.h"

#define MAX_CONFIG_BYTES (1 << 20)

static void config_sd_common(VgUnetConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->in_channels = cfg->out_channels = 4;
    cfg->n_blocks = 4;
    const int ch[4] = { 320, 640, 1280, 1280 };
    for (int i = 0; i < 4; i++) {
        cfg->block_out[i] = ch[i];
        cfg->down_attn[i] = i < 3;
        cfg->up_attn[i] = i > 0;
        cfg->tf_layers[i] = cfg->up_tf_layers[i] = 1;
    }
    cfg->layers_per_block = 2;
    cfg->norm_num_groups = 32;
    cfg->norm_eps = 1e-5f;
    cfg->flip_sin_to_cos = 1;
    cfg->freq_shift = 0;
    cfg->mid_block_scale_factor = 1;
}

void vg_unet_config_sd15(VgUnetConfig *cfg)
{
    config_sd_common(cfg);
    for (int i = 0; i < 4; i++)
        cfg->heads[i] = 8;
    cfg->cross_attention_dim = 768;
}

void vg_unet_config_sd21(VgUnetConfig *cfg)
{
    config_sd_common(cfg);
    for (int i = 0; i < 4; i++)
        cfg->heads[i] = cfg->block_out[i] / 64;
    cfg->cross_attention_dim = 1024;
    cfg->use_linear_projection = 1;
}

/* ------------------------------------------------------------------ config.json */

static int is_null(const cJSON *j)
{
    return !j || cJSON_IsNull(j);
}

/* Integer or list of integers -> n values; a scalar is repeated. */
static int int_list(const VgCtx *c, const cJSON *root, const char *key, int n, int *out,
                    int required, int dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (is_null(j)) {
        if (required) {
            vg_log(c, VG_LOG_ERROR, "unet config: '%s' missing\n", key);
            return VG_EBADMODEL;
        }
        for (int i = 0; i < n; i++)
            out[i] = dflt;
        return 0;
    }
    if (cJSON_IsNumber(j)) {
        for (int i = 0; i < n; i++)
            out[i] = j->valueint;
        return 0;
    }
    if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == n) {
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(j, i);
            if (!cJSON_IsNumber(e))
                goto bad;
            out[i] = e->valueint;
        }
        return 0;
    }
bad:
    vg_log(c, VG_LOG_ERROR, "unet config: '%s' must be an integer or a list of %d integers\n", key, n);
    return VG_EBADMODEL;
}

static double num(const cJSON *root, const char *key, double dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsNumber(j) ? j->valuedouble : dflt;
}

static int flag(const cJSON *root, const char *key, int dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : dflt;
}

/* A string option that must be null/absent or one of the accepted values. */
static int want_str(const VgCtx *c, const cJSON *root, const char *key, const char *ok1,
                    const char *ok2, const char *what)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (is_null(j))
        return 0;
    if (cJSON_IsString(j) && ((ok1 && !strcmp(j->valuestring, ok1)) ||
                              (ok2 && !strcmp(j->valuestring, ok2))))
        return 0;
    vg_log(c, VG_LOG_ERROR, "unet config: %s '%s' = %s is not supported%s\n",
           what ? what : "option", key, cJSON_IsString(j) ? j->valuestring : "(non-string)",
           ok1 ? "" : " (Stable Diffusion 1.x/2.x UNets leave it null)");
    return VG_EUNSUPPORTED;
}

static int check_config(const VgCtx *c, const VgUnetConfig *cfg)
{
    const int n = cfg->n_blocks;
    if (cfg->in_channels < 1 || cfg->in_channels > 64 || cfg->out_channels < 1 || cfg->out_channels > 64 ||
        cfg->layers_per_block < 1 || cfg->layers_per_block > VG_UNET_MAX_LAYERS ||
        cfg->cross_attention_dim < 1 || cfg->cross_attention_dim > 65536 ||
        cfg->norm_num_groups < 1 || !(cfg->norm_eps > 0) || cfg->block_out[0] % 2 ||
        !(cfg->mid_block_scale_factor > 0) || cfg->freq_shift >= cfg->block_out[0] / 2) {
        vg_log(c, VG_LOG_ERROR, "unet config: channels/layers/norm values out of range\n");
        return VG_EBADMODEL;
    }
    for (int i = 0; i < n; i++) {
        const int ch = cfg->block_out[i];
        if (ch < 1 || ch > 16384 || ch % cfg->norm_num_groups) {
            vg_log(c, VG_LOG_ERROR, "unet config: block_out_channels[%d] = %d (must be a multiple of "
                   "norm_num_groups %d)\n", i, ch, cfg->norm_num_groups);
            return VG_EBADMODEL;
        }
        /* up block n-1-i reads block i's heads and width */
        if ((cfg->down_attn[i] || cfg->up_attn[n - 1 - i] || i == n - 1) &&
            (cfg->heads[i] < 1 || ch % cfg->heads[i])) {
            vg_log(c, VG_LOG_ERROR, "unet config: %d attention heads do not divide block %d's %d channels\n",
                   cfg->heads[i], i, ch);
            return VG_EBADMODEL;
        }
        if (cfg->tf_layers[i] < 1 || cfg->tf_layers[i] > VG_UNET_MAX_TF ||
            cfg->up_tf_layers[i] < 1 || cfg->up_tf_layers[i] > VG_UNET_MAX_TF) {
            vg_log(c, VG_LOG_ERROR, "unet config: transformer_layers_per_block out of range\n");
            return VG_EBADMODEL;
        }
    }
    return 0;
}

int vg_unet_config_parse(VgUnetConfig *cfg, const VgCtx *c, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *j;
    int ret = VG_EBADMODEL, n, tmp[VG_UNET_MAX_BLOCKS];

    memset(cfg, 0, sizeof(*cfg));
    if (!root || !cJSON_IsObject(root)) {
        vg_log(c, VG_LOG_ERROR, "unet config: not a JSON object\n");
        goto end;
    }
    /* Things SD 1.x/2.x never set: refuse by name rather than compute something else. */
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "addition_embed_type")) && !is_null(j)) {
        vg_log(c, VG_LOG_ERROR, "unet config: addition_embed_type '%s' (SDXL-style UNet): SDXL "
               "checkpoints are not supported\n", cJSON_IsString(j) ? j->valuestring : "?");
        ret = VG_EUNSUPPORTED;
        goto end;
    }
    static const char *const must_be_null[] = {
        "class_embed_type", "num_class_embeds", "time_cond_proj_dim", "encoder_hid_dim",
        "encoder_hid_dim_type", "timestep_post_act", "time_embedding_act_fn",
        "projection_class_embeddings_input_dim", "time_embedding_dim", "cross_attention_norm",
    };
    for (size_t k = 0; k < VG_ARRAY_SIZE(must_be_null); k++)
        if ((j = cJSON_GetObjectItemCaseSensitive(root, must_be_null[k])) && !is_null(j)) {
            vg_log(c, VG_LOG_ERROR, "unet config: '%s' is set; only Stable Diffusion 1.x/2.x UNets "
                   "(where it is null) are supported\n", must_be_null[k]);
            ret = VG_EUNSUPPORTED;
            goto end;
        }
    static const char *const must_be_false[] = {
        "center_input_sample", "dual_cross_attention", "only_cross_attention",
        "resnet_skip_time_act", "class_embeddings_concat", "mid_block_only_cross_attention",
    };
    for (size_t k = 0; k < VG_ARRAY_SIZE(must_be_false); k++)
        if (flag(root, must_be_false[k], 0)) {
            vg_log(c, VG_LOG_ERROR, "unet config: '%s' = true is not supported\n", must_be_false[k]);
            ret = VG_EUNSUPPORTED;
            goto end;
        }
    if ((ret = want_str(c, root, "act_fn", "silu", NULL, "activation")) < 0 ||
        (ret = want_str(c, root, "resnet_time_scale_shift", "default", NULL, NULL)) < 0 ||
        (ret = want_str(c, root, "time_embedding_type", "positional", NULL, NULL)) < 0 ||
        (ret = want_str(c, root, "attention_type", "default", NULL, NULL)) < 0 ||
        (ret = want_str(c, root, "mid_block_type", "UNetMidBlock2DCrossAttn", NULL, "mid block")) < 0)
        goto end;
    ret = VG_EBADMODEL;
    if (cJSON_GetObjectItemCaseSensitive(root, "mid_block_type") &&
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "mid_block_type"))) {
        vg_log(c, VG_LOG_ERROR, "unet config: a UNet without mid block is not supported\n");
        ret = VG_EUNSUPPORTED;
        goto end;
    }
    if (num(root, "conv_in_kernel", 3) != 3 || num(root, "conv_out_kernel", 3) != 3 ||
        num(root, "resnet_out_scale_factor", 1) != 1 || num(root, "downsample_padding", 1) != 1) {
        vg_log(c, VG_LOG_ERROR, "unet config: conv_in/conv_out kernel, downsample_padding or "
               "resnet_out_scale_factor differ from Stable Diffusion's (3, 1, 1): not supported\n");
        ret = VG_EUNSUPPORTED;
        goto end;
    }

    j = cJSON_GetObjectItemCaseSensitive(root, "block_out_channels");
    n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
    if (n < 1 || n > VG_UNET_MAX_BLOCKS) {
        vg_log(c, VG_LOG_ERROR, "unet config: block_out_channels must list 1..%d widths\n",
               VG_UNET_MAX_BLOCKS);
        goto end;
    }
    cfg->n_blocks = n;
    if ((ret = int_list(c, root, "block_out_channels", n, cfg->block_out, 1, 0)) < 0)
        goto end;
    ret = VG_EBADMODEL;
    static const struct { const char *key, *attn, *plain; } types[2] = {
        { "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D" },
        { "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D" },
    };
    for (int t = 0; t < 2; t++) {
        j = cJSON_GetObjectItemCaseSensitive(root, types[t].key);
        if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != n) {
            vg_log(c, VG_LOG_ERROR, "unet config: '%s' must list %d block types\n", types[t].key, n);
            goto end;
        }
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(j, i);
            const char *s = cJSON_IsString(e) ? e->valuestring : "";
            int *dst = t ? &cfg->up_attn[i] : &cfg->down_attn[i];
            if (!strcmp(s, types[t].attn))
                *dst = 1;
            else if (!strcmp(s, types[t].plain))
                *dst = 0;
            else {
                vg_log(c, VG_LOG_ERROR, "unet config: block type '%s' is not supported (%s or %s)\n",
                       s, types[t].attn, types[t].plain);
                ret = VG_EUNSUPPORTED;
                goto end;
            }
        }
    }
    /* num_attention_heads wins; else attention_head_dim is the head count (see top). */
    j = cJSON_GetObjectItemCaseSensitive(root, "num_attention_heads");
    if ((ret = int_list(c, root, is_null(j) ? "attention_head_dim" : "num_attention_heads", n,
                        cfg->heads, 0, 8)) < 0 ||
        (ret = int_list(c, root, "transformer_layers_per_block", n, cfg->tf_layers, 0, 1)) < 0 ||
        (ret = int_list(c, root, "layers_per_block", 1, &cfg->layers_per_block, 1, 0)) < 0 ||
        (ret = int_list(c, root, "cross_attention_dim", 1, &cfg->cross_attention_dim, 1, 0)) < 0 ||
        (ret = int_list(c, root, "norm_num_groups", 1, &cfg->norm_num_groups, 0, 32)) < 0 ||
        (ret = int_list(c, root, "in_channels", 1, &cfg->in_channels, 0, 4)) < 0 ||
        (ret = int_list(c, root, "out_channels", 1, &cfg->out_channels, 0, 4)) < 0)
        goto end;
    j = cJSON_GetObjectItemCaseSensitive(root, "reverse_transformer_layers_per_block");
    if (!is_null(j)) {
        if ((ret = int_list(c, root, "reverse_transformer_layers_per_block", n, tmp, 1, 1)) < 0)
            goto end;
        /* given per up block already */
        memcpy(cfg->up_tf_layers, tmp, sizeof(tmp));
    } else {
        for (int i = 0; i < n; i++)
            cfg->up_tf_layers[i] = cfg->tf_layers[n - 1 - i];
    }
    cfg->use_linear_projection = flag(root, "use_linear_projection", 0);
    cfg->norm_eps = (float)num(root, "norm_eps", 1e-5);
    cfg->flip_sin_to_cos = flag(root, "flip_sin_to_cos", 1);
    cfg->freq_shift = (float)num(root, "freq_shift", 0);
    cfg->mid_block_scale_factor = (float)num(root, "mid_block_scale_factor", 1);
    ret = check_config(c, cfg);
end:
    cJSON_Delete(root);
    return ret;
}

int vg_unet_config_load(VgUnetConfig *cfg, const VgCtx *c, const char *path)
{
    char *text;
    int ret = vg_read_text_file(path, MAX_CONFIG_BYTES, &text, NULL);

    if (ret < 0) {
        vg_log(c, VG_LOG_ERROR, "unet config: cannot read %s (%s)\n", path,
               ret == VG_EBADMODEL ? "not a file under 1 MB" : vg_strerror(ret));
        return ret;
    }
    ret = vg_unet_config_parse(cfg, c, text);
    free(text);
    return ret;
}

/* ------------------------------------------------------------------ from tensors */

static const VgTensor *find(const VgWeights *w, const char *prefix, const char *fmt, ...)
    VG_PRINTF(3, 4);
static const VgTensor *find(const VgWeights *w, const char *prefix, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    const int n = snprintf(name, sizeof(name), "%s", prefix ? prefix : "");
    va_start(ap, fmt);
    vsnprintf(name + n, sizeof(name) - n, fmt, ap);
    va_end(ap);
    return vg_weights_find(w, name);
}

int vg_unet_detect_layout(const VgCtx *c, const VgWeights *w, const char *prefix,
                          VgUnetLayout *layout)
{
    if (find(w, prefix, "conv_in.weight"))
        *layout = VG_UNET_LAYOUT_DIFFUSERS;
    else if (find(w, prefix, "input_blocks.0.0.weight"))
        *layout = VG_UNET_LAYOUT_ORIGINAL;
    else {
        vg_log(c, VG_LOG_ERROR, "unet: neither '%sconv_in.weight' (diffusers) nor "
               "'%sinput_blocks.0.0.weight' (single file) found: no Stable Diffusion UNet\n",
               prefix ? prefix : "", prefix ? prefix : "");
        return VG_EBADMODEL;
    }
    return 0;
}

int vg_unet_check_supported(const VgCtx *c, const VgWeights *w, const char *prefix)
{
    static const struct { const char *name, *family; } marks[] = {
        { "label_emb.0.0.weight", "SDXL" },
        { "add_embedding.linear_1.weight", "SDXL" },
        { "joint_blocks.0.x_block.attn.qkv.weight", "SD3" },
        { "x_embedder.proj.weight", "SD3" },
        { "double_blocks.0.img_attn.qkv.weight", "Flux" },
        { "transformer_blocks.0.attn.add_q_proj.weight", "SD3/Flux (diffusers)" },
        { "time_embedding.cond_proj.weight", "LCM guidance-embedding UNet" },
    };
    for (size_t k = 0; k < VG_ARRAY_SIZE(marks); k++)
        if (find(w, prefix, "%s", marks[k].name)) {
            vg_log(c, VG_LOG_ERROR, "unet: '%s%s' found: %s checkpoints are not supported "
                   "(Stable Diffusion 1.x/2.x and SD-Turbo are)\n", prefix ? prefix : "",
                   marks[k].name, marks[k].family);
            return VG_EUNSUPPORTED;
        }
    /* cross-attention width of the first transformer, in either layout */
    const VgTensor *k = find(w, prefix, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    if (!k)
        k = find(w, prefix, "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    if (k && k->ndim == 2 && k->ne[1] == 2048) {
        vg_log(c, VG_LOG_ERROR, "unet: cross-attention width 2048: SDXL checkpoints are not supported\n");
        return VG_EUNSUPPORTED;
    }
    return 0;
}

/* Name of a diffusers parameter in @layout (nothing to do for diffusers). */
static const VgTensor *find_mapped(const VgUnetConfig *cfg, const VgWeights *w, const char *prefix,
                                   VgUnetLayout layout, const char *dname)
{
    char o[256];
    if (layout == VG_UNET_LAYOUT_DIFFUSERS)
        return find(w, prefix, "%s", dname);
    if (vg_unet_key_original(cfg, dname, o, sizeof(o)) < 0)
        return NULL;
    return find(w, prefix, "%s", o);
}

int vg_unet_config_infer(VgUnetConfig *cfg, const VgCtx *c, const VgWeights *w,
                         const char *prefix, VgUnetLayout layout)
{
    const VgTensor *t;
    char dn[128];
    int ret, n = 0, L = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (layout == VG_UNET_LAYOUT_AUTO && (ret = vg_unet_detect_layout(c, w, prefix, &layout)) < 0)
        return ret;
    if ((ret = vg_unet_check_supported(c, w, prefix)) < 0)
        return ret;
    /* Block count and layers per block from the structure of the names. */
    if (layout == VG_UNET_LAYOUT_DIFFUSERS) {
        while (L < 64 && find(w, prefix, "down_blocks.0.resnets.%d.conv1.weight", L))
            L++;
        while (n < 64 && find(w, prefix, "down_blocks.%d.resnets.0.conv1.weight", n))
            n++;
    } else {
        /* the first downsampler sits at input_blocks.{L+1}; the deepest block has none */
        while (L < 64 && !find(w, prefix, "input_blocks.%d.0.op.weight", L + 1) &&
               find(w, prefix, "input_blocks.%d.0.in_layers.2.weight", L + 1))
            L++;
        while (n < 64 && find(w, prefix, "input_blocks.%d.0.in_layers.2.weight", 1 + n * (L + 1)))
            n++;
    }
    if (L < 1 || L > VG_UNET_MAX_LAYERS || n < 1 || n > VG_UNET_MAX_BLOCKS) {
        vg_log(c, VG_LOG_ERROR, "unet: cannot infer the block structure from the tensor names "
               "(%d blocks of %d layers found)\n", n, L);
        return VG_EBADMODEL;
    }
    cfg->n_blocks = n;
    cfg->layers_per_block = L;
    cfg->norm_num_groups = 32;
    cfg->norm_eps = 1e-5f;
    cfg->flip_sin_to_cos = 1;
    cfg->mid_block_scale_factor = 1;
    cfg->cross_attention_dim = -1;
    cfg->use_linear_projection = -1;

    /* up_attn[] decides the names of upsamplers only, so blocks can be probed first */
    for (int i = 0; i < n; i++) {
        snprintf(dn, sizeof(dn), "down_blocks.%d.resnets.0.conv1.weight", i);
        if (!(t = find_mapped(cfg, w, prefix, layout, dn)) || t->ndim != 4)
            goto bad;
        cfg->block_out[i] = (int)t->ne[0];
        snprintf(dn, sizeof(dn), "down_blocks.%d.attentions.0.norm.weight", i);
        cfg->down_attn[i] = !!find_mapped(cfg, w, prefix, layout, dn);
        snprintf(dn, sizeof(dn), "up_blocks.%d.attentions.0.norm.weight", i);
        cfg->up_attn[i] = !!find_mapped(cfg, w, prefix, layout, dn);
    }
    for (int i = 0; i < n; i++) {
        /* depth: count transformer blocks in the first attention of the block (down), or of the
         * matching up block */
        for (int up = 0; up < 2; up++) {
            int *dst = up ? &cfg->up_tf_layers[i] : &cfg->tf_layers[i];
            const int has = up ? cfg->up_attn[i] : cfg->down_attn[i];
            *dst = 1;
            if (!has)
                continue;
            int d = 0;
            for (;;) {
                snprintf(dn, sizeof(dn), "%s_blocks.%d.attentions.0.transformer_blocks.%d.norm1.weight",
                         up ? "up" : "down", i, d);
                if (d >= VG_UNET_MAX_TF || !find_mapped(cfg, w, prefix, layout, dn))
                    break;
                d++;
            }
            *dst = d ? d : 1;
            snprintf(dn, sizeof(dn), "%s_blocks.%d.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                     up ? "up" : "down", i);
            if ((t = find_mapped(cfg, w, prefix, layout, dn)) && t->ndim == 2)
                cfg->cross_attention_dim = (int)t->ne[1];
            snprintf(dn, sizeof(dn), "%s_blocks.%d.attentions.0.proj_in.weight", up ? "up" : "down", i);
            if ((t = find_mapped(cfg, w, prefix, layout, dn)))
                cfg->use_linear_projection = t->ndim == 2;
        }
    }
    if (!find_mapped(cfg, w, prefix, layout, "mid_block.attentions.0.norm.weight")) {
        vg_log(c, VG_LOG_ERROR, "unet: no mid-block attention found: not a Stable Diffusion UNet\n");
        return VG_EUNSUPPORTED;
    }
    if ((t = find_mapped(cfg, w, prefix, layout, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight")) &&
        t->ndim == 2 && cfg->cross_attention_dim < 0)
        cfg->cross_attention_dim = (int)t->ne[1];
    if ((t = find_mapped(cfg, w, prefix, layout, "mid_block.attentions.0.proj_in.weight")) &&
        cfg->use_linear_projection < 0)
        cfg->use_linear_projection = t->ndim == 2;
    if (cfg->cross_attention_dim < 1 || cfg->use_linear_projection < 0)
        goto bad;
    if (!(t = find_mapped(cfg, w, prefix, layout, "conv_in.weight")) || t->ndim != 4)
        goto bad;
    cfg->in_channels = (int)t->ne[1];
    if (!(t = find_mapped(cfg, w, prefix, layout, "conv_out.weight")) || t->ndim != 4)
        goto bad;
    cfg->out_channels = (int)t->ne[0];
    for (int i = 0; i < n; i++)
        cfg->heads[i] = cfg->use_linear_projection ? VG_MAX(cfg->block_out[i] / 64, 1) : 8;
    if ((ret = check_config(c, cfg)) < 0)
        return ret;
    VgSdFamily fam;
    if ((ret = vg_unet_family(c, cfg, &fam)) < 0)
        return ret;
    vg_log(c, VG_LOG_INFO, "unet: inferred %s-style UNet from shapes: %d blocks, width %d, "
           "cross-attention %d, %s projections, %s\n", fam == VG_SD_FAMILY_SD1 ? "SD1" : "SD2",
           n, cfg->block_out[0], cfg->cross_attention_dim,
           cfg->use_linear_projection ? "linear" : "conv",
           cfg->use_linear_projection ? "head dim 64" : "8 heads");
    return 0;
bad:
    vg_log(c, VG_LOG_ERROR, "unet: cannot infer the configuration from tensor shapes "
           "(a block, conv_in/conv_out or cross-attention weight is missing or misshapen)\n");
    return VG_EBADMODEL;
}

int vg_unet_family(const VgCtx *c, const VgUnetConfig *cfg, VgSdFamily *family)
{
    if (cfg->cross_attention_dim == 2048) {
        vg_log(c, VG_LOG_ERROR, "unet: cross-attention width 2048: SDXL checkpoints are not supported\n");
        return VG_EUNSUPPORTED;
    }
    if (cfg->cross_attention_dim == 768)
        *family = VG_SD_FAMILY_SD1;
    else if (cfg->cross_attention_dim == 1024)
        *family = VG_SD_FAMILY_SD2;
    else
        *family = cfg->use_linear_projection ? VG_SD_FAMILY_SD2 : VG_SD_FAMILY_SD1;
    return 0;
}
