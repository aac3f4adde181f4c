/*
 * Loads a Stable Diffusion checkpoint into a VgSdModel: a single file in the
 * original layout (model.diffusion_model.*, first_stage_model.*,
 * cond_stage_model.transformer.* for SD1 / cond_stage_model.model.* for SD2;
 * .safetensors, or .ckpt with those names under "state_dict") or a diffusers
 * folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
 * scheduler/scheduler_config.json; weights .safetensors or torch.save'd
 * .bin), F32 / F16 / BF16, then the VAE / TAESD /
 * tokenizer overrides. Families other than SD1/SD2 are refused by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "engine/io/textfile.h"
#include "engine/sd/pipeline.h"

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

/* First existing weight file of a component folder into @buf (links followed). */
static int find_weights(const VgCtx *c, const char *dir, const char *const *names, char *buf,
                        size_t size)
{
    char p[1200], link[1400];

    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        if (is_file(p)) {
            snprintf(buf, size, "%s", vg_follow_link_file(c, p, link, sizeof(link)));
            return 0;
        }
    }
    vg_log(c, VG_LOG_ERROR, "sd: '%s' holds none of %s, %s\n", dir, names[0], names[1]);
    return VG_ERR(ENOENT);
}

static int has_prefix(const VgWeights *w, const char *prefix)
{
    const size_t n = strlen(prefix);
    for (int i = 0; i < vg_weights_count(w); i++)
        if (!strncmp(vg_weights_name(w, i), prefix, n))
            return 1;
    return 0;
}

static int open_tokenizer(VgSdModel *m, const VgSdLoadOptions *o, const char *folder)
{
    char p[1200];
    const char *path = o->tokenizer;
    int ret, from_gz;

    if (!path && folder) {
        snprintf(p, sizeof(p), "%s/tokenizer", folder);
        if (is_dir(p))
            path = p;
    }
    if (!path) {
        if (o->no_tokenizer_ok)
            return 0;
        vg_log(m->ctx, VG_LOG_ERROR, "no tokenizer: pass tokenizer=PATH "
               "(bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder)\n");
        return VG_ERR(EINVAL);
    }
    if ((ret = vg_tokenizer_open(&m->tok, m->ctx, path)) < 0)
        return ret;
    /* OpenAI's vocabulary file carries no pad token; SD2's OpenCLIP
     * tokenizer pads with "!" (id 0), SD1's with <|endoftext|>. */
    from_gz = !is_dir(path);
    if (from_gz && m->family == VG_SD_FAMILY_SD2)
        vg_tokenizer_set_pad_id(m->tok, 0);
    return 0;
}

static int open_folder(VgSdModel *m, const char *dir, const VgSdLoadOptions *o,
                       VgClipConfig *ccfg, int *skip_vae)
{
    static const char *const unet_names[] = {
        "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
        "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin", NULL
    };
    static const char *const text_names[] = {
        "model.safetensors", "pytorch_model.bin", "model.fp16.safetensors",
        "pytorch_model.fp16.bin", NULL
    };
    char sub[1100], file[1500], cfgp[1200];
    VgUnetConfig ucfg;
    VgUnetLayout layout;
    char *json;
    int ret;

    snprintf(cfgp, sizeof(cfgp), "%s/model_index.json", dir);
    snprintf(sub, sizeof(sub), "%s/unet", dir);
    if (!is_file(cfgp) && !is_dir(sub)) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: '%s' is a folder without model_index.json or unet/: "
               "not a diffusers model\n", dir);
        return VG_EBADMODEL;
    }
    if ((json = vg_read_text(cfgp, 1 << 20))) {
        const char *bad[] = { "StableDiffusionXL", "StableDiffusion3", "Flux" };
        const char *nm[] = { "SDXL", "SD3", "Flux" };
        for (int i = 0; i < 3; i++)
            if (strstr(json, bad[i])) {
                vg_log(m->ctx, VG_LOG_ERROR, "sd: '%s' is a %s pipeline: visgen runs Stable "
                       "Diffusion 1.x / 2.x only\n", dir, nm[i]);
                free(json);
                return VG_EUNSUPPORTED;
            }
        free(json);
    }
    /* UNet */
    snprintf(cfgp, sizeof(cfgp), "%s/unet/config.json", dir);
    if ((ret = vg_unet_config_load(&ucfg, m->ctx, cfgp)) < 0)
        return ret;
    if ((ret = find_weights(m->ctx, sub, unet_names, file, sizeof(file))) < 0 ||
        (ret = vg_weights_open(&m->w_unet, m->ctx, file)) < 0 ||
        (ret = vg_unet_check_supported(m->ctx, m->w_unet, "")) < 0 ||
        (ret = vg_unet_detect_layout(m->ctx, m->w_unet, "", &layout)) < 0 ||
        (ret = vg_unet_open(&m->unet, m->ctx, m->w_unet, "", layout, &ucfg)) < 0)
        return ret;
    /* text encoder */
    snprintf(sub, sizeof(sub), "%s/text_encoder", dir);
    snprintf(cfgp, sizeof(cfgp), "%s/text_encoder/config.json", dir);
    if (is_file(cfgp) && (ret = vg_clip_config_read(ccfg, m->ctx, cfgp)) < 0)
        return ret;
    if ((ret = find_weights(m->ctx, sub, text_names, file, sizeof(file))) < 0 ||
        (ret = vg_weights_open(&m->w_text, m->ctx, file)) < 0)
        return ret;
    /* VAE (unless replaced) */
    if (!*skip_vae && !o->vae) {
        if ((ret = vg_vae_open_path(&m->vae, m->ctx, dir)) < 0)
            return ret;
    }
    /* scheduler */
    snprintf(cfgp, sizeof(cfgp), "%s/scheduler/scheduler_config.json", dir);
    if ((json = vg_read_text(cfgp, 1 << 20))) {
        static const struct { const char *cls; int kind; } map[] = {
            { "\"EulerDiscreteScheduler\"", VG_SAMPLER_EULER },
            { "\"EulerAncestralDiscreteScheduler\"", VG_SAMPLER_EULER_A },
            { "\"DDIMScheduler\"", VG_SAMPLER_DDIM },
            { "\"DPMSolverMultistepScheduler\"", VG_SAMPLER_DPMPP_2M },
            { "\"LCMScheduler\"", VG_SAMPLER_LCM },
        };
        for (size_t i = 0; i < VG_ARRAY_SIZE(map); i++)
            if (strstr(json, map[i].cls))
                m->default_sampler = map[i].kind;
        /* older configs (SD 1.5's) have no timestep_spacing: the PNDM / DDIM
         * classes they were written for space "leading" */
        m->spacing_from = strstr(json, "\"timestep_spacing\"")
                          ? "scheduler_config.json"
                          : "scheduler_config.json without timestep_spacing";
        if (strstr(json, "\"prediction_type\""))
            m->pred_from = "scheduler_config.json";
        ret = vg_sched_config_parse(&m->sched, json, m->ctx);
        free(json);
        if (ret < 0)
            return ret;
        vg_log(m->ctx, VG_LOG_VERBOSE, "sd: scheduler config from %s\n", cfgp);
    }
    return 0;
}

/* A .ckpt pickles {"state_dict": {...}, "global_step": ...}, which the reader
 * flattens to "state_dict.model.diffusion_model..."; the components look for
 * the .safetensors names, so they get a view of the tensors under @root with
 * the root removed (no copy: the tensors stay in m->w_ckpt's mapping). */
static int strip_root(VgSdModel *m, const char *root)
{
    const size_t n = strlen(root);
    VgWeights *view;
    int ret;

    if ((ret = vg_weights_new(&view)) < 0)
        return ret;
    for (int i = 0; i < vg_weights_count(m->w_file); i++) {
        const char *name = vg_weights_name(m->w_file, i);
        if (strncmp(name, root, n))
            continue;
        VgTensor t = *vg_weights_at(m->w_file, i);
        t.alloc = NULL; /* borrowed */
        if ((ret = vg_weights_add(view, name + n, &t)) < 0) {
            vg_weights_close(&view);
            return ret;
        }
    }
    m->w_ckpt = m->w_file;
    m->w_file = view;
    return 0;
}

static int open_single(VgSdModel *m, const char *path, const VgSdLoadOptions *o, int *skip_vae)
{
    static const char *const up = "model.diffusion_model.";
    char link[1400];
    int ret;

    path = vg_follow_link_file(m->ctx, path, link, sizeof(link));
    if ((ret = vg_weights_open(&m->w_file, m->ctx, path)) < 0)
        return ret;
    if (!has_prefix(m->w_file, up) && has_prefix(m->w_file, "state_dict.") &&
        (ret = strip_root(m, "state_dict.")) < 0)
        return ret;
    if (has_prefix(m->w_file, "conditioner.")) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: '%s' is an SDXL checkpoint (conditioner.* text "
               "encoders): visgen runs Stable Diffusion 1.x / 2.x only\n", path);
        return VG_EUNSUPPORTED;
    }
    if (!has_prefix(m->w_file, up)) {
        /* SD3 / Flux files without the ldm wrapper are named by the check. */
        if ((ret = vg_unet_check_supported(m->ctx, m->w_file, "")) < 0)
            return ret;
        vg_log(m->ctx, VG_LOG_ERROR, "sd: '%s' has no model.diffusion_model.* tensors: not a "
               "Stable Diffusion checkpoint\n", path);
        return VG_EBADMODEL;
    }
    if ((ret = vg_unet_check_supported(m->ctx, m->w_file, up)) < 0 ||
        (ret = vg_unet_open(&m->unet, m->ctx, m->w_file, up, VG_UNET_LAYOUT_AUTO, NULL)) < 0)
        return ret;
    if (!*skip_vae && !o->vae &&
        (ret = vg_vae_open(&m->vae, m->ctx, m->w_file, "first_stage_model.", NULL)) < 0)
        return ret;
    /* A single file says nothing of its sampling: SD 1.x / 2.x were trained
     * and released with "leading" (what diffusers' from_single_file sets up
     * from their original configs), SD-Turbo, with the same shapes as
     * SD 2.1, wants "trailing". Leading it is, and the log says so. */
    m->sched.spacing = VG_SPACING_LEADING;
    m->spacing_from = "single file, no scheduler config; use spacing=trailing for SD-Turbo";
    return 0;
}

int vg_sd_model_open(VgSdModel **out, VgCtx *ctx, const VgSdLoadOptions *o)
{
    VgSdModel *m;
    VgClipConfig ccfg;
    const VgWeights *tw;
    const char *tprefix;
    int ret, folder, skip_vae;
    const VgUnetConfig *uc;

    VG_VALIDATE(out && ctx && o, VG_ERR(EINVAL));
    *out = NULL;
    if (!o->model || !*o->model) {
        vg_log(ctx, VG_LOG_ERROR, "sd: no model given (model=PATH: checkpoint file or "
               "diffusers folder)\n");
        return VG_ERR(EINVAL);
    }
    if (!(m = calloc(1, sizeof(*m))))
        return VG_ERR(ENOMEM);
    m->ctx = ctx;
    vg_sched_config_default(&m->sched);
    m->default_sampler = VG_SAMPLER_EULER;
    vg_clip_config_default(&ccfg);
    folder = is_dir(o->model);
    skip_vae = o->taesd_encoder && o->taesd_decoder;
    if (!folder && !is_file(o->model)) {
        vg_log(ctx, VG_LOG_ERROR, "sd: model '%s': %s\n", o->model, strerror(errno));
        ret = VG_ERR(ENOENT);
        goto fail;
    }
    m->single_file = !folder;
    ret = folder ? open_folder(m, o->model, o, &ccfg, &skip_vae)
                 : open_single(m, o->model, o, &skip_vae);
    if (ret < 0)
        goto fail;
    uc = vg_unet_get_config(m->unet);
    if ((ret = vg_unet_family(ctx, uc, &m->family)) < 0)
        goto fail;

    /* text encoder */
    tw = folder ? m->w_text : m->w_file;
    if (!(tprefix = vg_clip_find_prefix(tw))) {
        vg_log(ctx, VG_LOG_ERROR, "sd: '%s' has no CLIP text encoder tensors\n", o->model);
        ret = VG_EBADMODEL;
        goto fail;
    }
    if (o->clip_skip > 1)
        ccfg.skip = o->clip_skip - 1;
    if ((ret = vg_clip_open(&m->clip, ctx, tw, tprefix, &ccfg)) < 0)
        goto fail;
    if (vg_clip_hidden(m->clip) != uc->cross_attention_dim) {
        vg_log(ctx, VG_LOG_ERROR, "sd: text encoder width %d does not match the UNet's "
               "cross-attention width %d\n", vg_clip_hidden(m->clip), uc->cross_attention_dim);
        ret = VG_EBADMODEL;
        goto fail;
    }

    /* VAE / TAESD overrides */
    if (o->vae && !skip_vae && (ret = vg_vae_open_path(&m->vae, ctx, o->vae)) < 0)
        goto fail;
    if (m->vae && vg_vae_get_config(m->vae)->latent_channels != uc->in_channels) {
        vg_log(ctx, VG_LOG_ERROR, "sd: VAE has %d latent channels, the UNet takes %d: "
               "mismatched VAE\n", vg_vae_get_config(m->vae)->latent_channels, uc->in_channels);
        ret = VG_EBADMODEL;
        goto fail;
    }
    m->vae_scale = m->vae ? vg_vae_get_config(m->vae)->scaling_factor : 0.18215f;
    if (o->taesd_encoder || o->taesd_decoder) {
        if ((ret = vg_taesd_open_files(&m->taesd, ctx, o->taesd_encoder, o->taesd_decoder)) < 0)
            goto fail;
        if (vg_taesd_latent_channels(m->taesd) != uc->in_channels) {
            vg_log(ctx, VG_LOG_ERROR, "sd: TAESD has %d latent channels, the UNet takes %d\n",
                   vg_taesd_latent_channels(m->taesd), uc->in_channels);
            ret = VG_EBADMODEL;
            goto fail;
        }
    }

    /* prediction type: option > scheduler config > family (epsilon for both:
     * SD1.5, SD2.1-base and SD-Turbo; SD2.1-768 needs prediction=v) */
    if (!m->pred_from)
        m->pred_from = m->family == VG_SD_FAMILY_SD2
                       ? "default; SD2.x-768 checkpoints need prediction=v" : "default";
    if (o->prediction) {
        m->pred_from = "option";
        if (!strcmp(o->prediction, "epsilon"))
            m->sched.prediction = VG_PRED_EPSILON;
        else if (!strcmp(o->prediction, "v") || !strcmp(o->prediction, "v_prediction"))
            m->sched.prediction = VG_PRED_V;
        else {
            vg_log(ctx, VG_LOG_ERROR, "sd: prediction '%s' unknown (epsilon, v)\n",
                   o->prediction);
            ret = VG_ERR(EINVAL);
            goto fail;
        }
    }
    if ((ret = open_tokenizer(m, o, folder ? o->model : NULL)) < 0)
        goto fail;

    if (!m->spacing_from)
        m->spacing_from = "no scheduler_config.json";
    snprintf(m->desc, sizeof(m->desc),
             "%s %s: UNet %.1fM params (cross-attention %d, %s projections), text %d wide, "
             "%s%s%s, %s prediction (%s), spacing %s (%s)",
             m->family == VG_SD_FAMILY_SD1 ? "SD1" : "SD2",
             folder ? "diffusers folder" : "single file",
             vg_unet_n_params(m->unet) / 1e6, uc->cross_attention_dim,
             uc->use_linear_projection ? "linear" : "conv", vg_clip_hidden(m->clip),
             m->vae ? (o->vae ? "VAE override" : "KL VAE") : "",
             m->vae && m->taesd ? " + " : "",
             m->taesd ? (vg_taesd_has_encoder(m->taesd) && vg_taesd_has_decoder(m->taesd)
                             ? "TAESD" : vg_taesd_has_encoder(m->taesd) ? "TAESD encoder"
                                                                        : "TAESD decoder") : "",
             m->sched.prediction == VG_PRED_V ? "v" : m->sched.prediction == VG_PRED_SAMPLE
                                                          ? "sample" : "epsilon",
             m->pred_from,
             m->sched.spacing == VG_SPACING_LEADING ? "leading"
             : m->sched.spacing == VG_SPACING_TRAILING ? "trailing" : "linspace",
             m->spacing_from);
    vg_log(ctx, VG_LOG_INFO, "sd: %s\n", m->desc);
    *out = m;
    return 0;
fail:
    vg_sd_model_close(&m);
    return ret;
}

void vg_sd_model_close(VgSdModel **pm)
{
    VgSdModel *m = pm ? *pm : NULL;

    if (!m)
        return;
    vg_tokenizer_close(&m->tok);
    vg_taesd_close(&m->taesd);
    vg_vae_close(&m->vae);
    vg_clip_close(&m->clip);
    vg_unet_close(&m->unet);
    vg_weights_close(&m->w_text);
    vg_weights_close(&m->w_unet);
    vg_weights_close(&m->w_file);
    vg_weights_close(&m->w_ckpt);
    free(m);
    *pm = NULL;
}
