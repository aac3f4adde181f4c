/*
 * Public stylize API (visgen.h): settings checks, prompt-embedding cache,
 * seed policy, and the resize between the picture and the processing size
 * around vg_sd_img2img_noise (engine/sd/pipeline.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/pipeline.h"
#include "engine/sd/sampler.h"

struct VgStylizer {
    VgCtx *ctx;
    VgSdModel *m;
    VgSdImg2ImgParams p;
    char *prompt, *negative;
    VgTensor cond, uncond;   /* [1, 77, C] each */
    int have_uncond;
    uint64_t seed;
    int seed_policy;
    int width, height;       /* processing size, 0 = the picture's rounded down to 8 */
    char desc[768];
};

void vg_stylize_default_settings(VgStylizeSettings *s)
{
    memset(s, 0, sizeof(*s));
    s->strength    = 0.5f;
    s->steps       = 20;
    s->cfg         = 7.5f;
    s->seed        = 0;
    s->seed_policy = VG_SEED_FIXED;
}

static int check_runtime(const VgCtx *c, const VgStylizeSettings *s)
{
    if (!(s->strength > 0.f && s->strength <= 1.f)) {
        vg_log(c, VG_LOG_ERROR, "stylize: strength %g out of range (0, 1]\n", s->strength);
        return VG_ERR(EINVAL);
    }
    if (!(s->cfg >= 0.f && s->cfg <= 50.f)) {
        vg_log(c, VG_LOG_ERROR, "stylize: cfg %g out of range 0..50\n", s->cfg);
        return VG_ERR(EINVAL);
    }
    if (s->seed_policy != VG_SEED_FIXED && s->seed_policy != VG_SEED_INCREMENT) {
        vg_log(c, VG_LOG_ERROR, "stylize: seed_policy %d unknown (0 fixed, 1 increment)\n",
               s->seed_policy);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int check_steps(const VgCtx *c, int steps, float strength)
{
    if (steps < 1 || steps > 1000) {
        vg_log(c, VG_LOG_ERROR, "stylize: steps %d out of range 1..1000\n", steps);
        return VG_ERR(EINVAL);
    }
    if ((int)(steps * (double)strength) < 1) {
        vg_log(c, VG_LOG_ERROR, "stylize: steps %d x strength %g runs no step (int(steps * "
               "strength) must be >= 1)\n", steps, strength);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int parse_static(const VgCtx *c, const VgStylizeSettings *s, VgSdImg2ImgParams *p)
{
    if (s->sampler) {
        if ((p->sampler = vg_sampler_from_name(s->sampler)) < 0) {
            vg_log(c, VG_LOG_ERROR, "stylize: sampler '%s' unknown (valid: euler, euler_a, "
                   "ddim, dpm++2m, lcm)\n", s->sampler);
            return VG_ERR(EINVAL);
        }
    }
    if (s->schedule) {
        if (!strcmp(s->schedule, "default"))
            p->karras = -1;
        else if (!strcmp(s->schedule, "karras"))
            p->karras = 1;
        else {
            vg_log(c, VG_LOG_ERROR, "stylize: schedule '%s' unknown (valid: default, karras)\n",
                   s->schedule);
            return VG_ERR(EINVAL);
        }
    }
    if (s->spacing) {
        if (!strcmp(s->spacing, "leading"))
            p->spacing = VG_SPACING_LEADING;
        else if (!strcmp(s->spacing, "trailing"))
            p->spacing = VG_SPACING_TRAILING;
        else if (!strcmp(s->spacing, "linspace"))
            p->spacing = VG_SPACING_LINSPACE;
        else {
            vg_log(c, VG_LOG_ERROR, "stylize: spacing '%s' unknown (valid: leading, trailing, "
                   "linspace)\n", s->spacing);
            return VG_ERR(EINVAL);
        }
    }
    if (s->width < 0 || s->height < 0 || s->width % 8 || s->height % 8 ||
        s->width > 16384 || s->height > 16384 || (!s->width != !s->height)) {
        vg_log(c, VG_LOG_ERROR, "stylize: processing size %dx%d must be multiples of 8 up to "
               "16384 (or 0x0 for the picture's size)\n", s->width, s->height);
        return VG_ERR(EINVAL);
    }
    if (s->vae_tile < -1 || (s->vae_tile > 0 && (s->vae_tile < 64 || s->vae_tile % 8 ||
                                                 s->vae_tile > 16384))) {
        vg_log(c, VG_LOG_ERROR, "stylize: vae_tile %d: want 0 (auto), -1 (off) or a tile edge "
               "in pixels, a multiple of 8 in 64..16384\n", s->vae_tile);
        return VG_ERR(EINVAL);
    }
    p->vae_tile = s->vae_tile;
    if (s->clip_skip < 0 || s->clip_skip > 12) {
        vg_log(c, VG_LOG_ERROR, "stylize: clip_skip %d out of range 0..12\n", s->clip_skip);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int set_prompts(VgStylizer *st, const char *prompt, const char *negative)
{
    const char *p = prompt ? prompt : "", *n = negative ? negative : "";
    int ret;

    if (!st->prompt || strcmp(st->prompt, p)) {
        char *dup = strdup(p);
        VgTensor e;
        if (!dup)
            return VG_ERR(ENOMEM);
        if ((ret = vg_sd_encode_prompt(st->m, p, &e)) < 0) {
            free(dup);
            return ret;
        }
        vg_tensor_free(&st->cond);
        st->cond = e;
        free(st->prompt);
        st->prompt = dup;
    }
    if (!st->negative || strcmp(st->negative, n)) {
        char *dup = strdup(n);
        if (!dup)
            return VG_ERR(ENOMEM);
        free(st->negative);
        st->negative = dup;
        vg_tensor_free(&st->uncond);
        st->have_uncond = 0;
    }
    /* the negative embedding is only needed with guidance: computed lazily */
    if (st->p.cfg > 1.f && !st->have_uncond) {
        if ((ret = vg_sd_encode_prompt(st->m, st->negative, &st->uncond)) < 0)
            return ret;
        st->have_uncond = 1;
    }
    return 0;
}

static void describe(VgStylizer *st)
{
    char tile[48] = "";
    if (st->m->vae && st->p.vae_tile < 0)
        snprintf(tile, sizeof(tile), ", VAE untiled");
    else if (st->m->vae && st->p.vae_tile > 0)
        snprintf(tile, sizeof(tile), ", VAE tiles of %d px", st->p.vae_tile);
    snprintf(st->desc, sizeof(st->desc), "%s; %s, %d steps x strength %g, cfg %g%s",
             st->m->desc, vg_sampler_name(st->p.sampler), st->p.steps, st->p.strength,
             st->p.cfg, tile);
}

int vg_stylize_open(VgStylizer **out, VgCtx *ctx, const VgStylizeSettings *s)
{
    VgSdLoadOptions o = { 0 };
    VgStylizer *st;
    int ret;

    VG_VALIDATE(out && ctx && s, VG_ERR(EINVAL));
    *out = NULL;
    if (!(st = calloc(1, sizeof(*st))))
        return VG_ERR(ENOMEM);
    st->ctx = ctx;
    vg_sd_img2img_params_default(&st->p);
    st->p.sampler = -1;
    if ((ret = check_runtime(ctx, s)) < 0 || (ret = check_steps(ctx, s->steps, s->strength)) < 0 ||
        (ret = parse_static(ctx, s, &st->p)) < 0)
        goto fail;
    o.model = s->model;
    o.vae = s->vae;
    o.taesd_encoder = s->taesd_encoder;
    o.taesd_decoder = s->taesd_decoder;
    o.tokenizer = s->tokenizer;
    o.prediction = s->prediction;
    o.clip_skip = s->clip_skip;
    if ((ret = vg_sd_model_open(&st->m, ctx, &o)) < 0)
        goto fail;
    if (st->p.sampler < 0)
        st->p.sampler = st->m->default_sampler;
    st->p.steps = s->steps;
    st->p.strength = s->strength;
    st->p.cfg = s->cfg;
    st->seed = s->seed;
    st->seed_policy = s->seed_policy;
    st->width = s->width;
    st->height = s->height;
    /* the sampler refuses some combinations (LCM steps, Karras with DDIM)
     * only when built: check once here, not at the first picture */
    {
        VgSchedConfig sc;
        VgSampler *smp = NULL;
        vg_sd_sched_config(st->m, &st->p, &sc);
        if ((ret = vg_sampler_create(&smp, &sc, st->p.sampler, st->p.steps, st->p.strength,
                                     ctx)) < 0)
            goto fail;
        /* few steps is how SD-Turbo runs, and with a single file's default
         * leading spacing they start near timestep 0: the picture barely
         * changes. Only the user knows which model it is: say it. */
        if (st->m->single_file && st->p.spacing < 0 && sc.spacing == VG_SPACING_LEADING &&
            st->p.sampler != VG_SAMPLER_LCM && st->p.steps <= 4) {
            int n;
            vg_log(ctx, VG_LOG_WARNING, "stylize: leading spacing (the single-file default) "
                   "with %d steps starts at timestep %g of %d; SD-Turbo checkpoints need "
                   "spacing=trailing\n", st->p.steps, vg_sampler_timesteps(smp, &n)[0],
                   sc.num_train_timesteps);
        }
        vg_sampler_free(&smp);
    }
    if ((ret = set_prompts(st, s->prompt, s->negative_prompt)) < 0)
        goto fail;
    describe(st);
    vg_log(ctx, VG_LOG_INFO, "stylize: %s\n", st->desc);
    *out = st;
    return 0;
fail:
    vg_stylize_close(&st);
    return ret;
}

int vg_stylize_update(VgStylizer *st, const VgStylizeSettings *s)
{
    int ret;

    VG_VALIDATE(st && s, VG_ERR(EINVAL));
    if ((ret = check_runtime(st->ctx, s)) < 0 || (ret = check_steps(st->ctx, st->p.steps,
                                                                     s->strength)) < 0)
        return ret;
    st->p.strength = s->strength;
    st->p.cfg = s->cfg;
    st->seed = s->seed;
    st->seed_policy = s->seed_policy;
    if ((ret = set_prompts(st, s->prompt, s->negative_prompt)) < 0)
        return ret;
    describe(st);
    return 0;
}

/* Processing size of @in_w x @in_h pictures: the settings' or the picture's
 * rounded down to a multiple of 8. */
static int processing_size(const VgStylizer *st, int in_w, int in_h, int *pw, int *ph)
{
    *pw = st->width ? st->width : (in_w > 0 ? in_w & ~7 : 0);
    *ph = st->height ? st->height : (in_h > 0 ? in_h & ~7 : 0);
    if (in_w < 1 || in_h < 1 || *pw < 8 || *ph < 8) {
        vg_log(st->ctx, VG_LOG_ERROR, "stylize: picture %dx%d is smaller than 8x8\n",
               in_w, in_h);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_stylize_noise_shape(const VgStylizer *st, int in_w, int in_h, int *c, int *h, int *w)
{
    int pw, ph, ret;

    VG_VALIDATE(st && c && h && w, VG_ERR(EINVAL));
    *c = *h = *w = 0;
    if ((ret = processing_size(st, in_w, in_h, &pw, &ph)) < 0 ||
        (ret = vg_sd_latent_shape(st->m, ph, pw, c, h, w)) < 0) {
        *c = *h = *w = 0;
        return ret;
    }
    return 0;
}

int vg_stylize_run(VgStylizer *st, const VgImage *in, VgImage *out, int64_t index)
{
    return vg_stylize_run_noise(st, in, out, index, NULL);
}

int vg_stylize_run_noise(VgStylizer *st, const VgImage *in, VgImage *out, int64_t index,
                         float *noise)
{
    VgTensor img = { 0 }, res = { 0 };
    VgSdImg2ImgParams p;
    int pw, ph, ret;

    VG_VALIDATE(st && in && out, VG_ERR(EINVAL));
    if (in->width != out->width || in->height != out->height || in->width < 1 ||
        in->height < 1) {
        vg_log(st->ctx, VG_LOG_ERROR, "stylize: input %dx%d and output %dx%d must have the same "
               "size\n", in->width, in->height, out->width, out->height);
        return VG_ERR(EINVAL);
    }
    if ((ret = processing_size(st, in->width, in->height, &pw, &ph)) < 0)
        return ret;
    if ((ret = vg_tensor_alloc4(&img, 1, 3, ph, pw)) < 0)    // [1, 3, ph, pw]
        return ret;
    for (int c = 0; c < 3; c++)
        if ((ret = vg_sd_resize(in->data[c], in->width, in->height, in->stride[c],
                                (float *)img.data + (size_t)c * pw * ph, pw, ph,
                                (ptrdiff_t)pw * sizeof(float))) < 0)
            goto end;
    p = st->p;
    p.seed = st->seed_policy == VG_SEED_INCREMENT ? st->seed + (uint64_t)index : st->seed;
    if ((ret = vg_sd_img2img_noise(st->m, &p, &st->cond, st->have_uncond ? &st->uncond : NULL,
                                   &img, noise, &res)) < 0)
        goto end;
    for (int c = 0; c < 3; c++) {
        if ((ret = vg_sd_resize((float *)res.data + (size_t)c * pw * ph, pw, ph,
                                (ptrdiff_t)pw * sizeof(float), out->data[c], out->width,
                                out->height, out->stride[c])) < 0)
            goto end;
        for (int y = 0; y < out->height; y++) {
            float *row = (float *)((char *)out->data[c] + y * out->stride[c]);
            for (int x = 0; x < out->width; x++)
                row[x] = fminf(fmaxf(row[x], 0.f), 1.f);
        }
    }
end:
    vg_tensor_free(&img);
    vg_tensor_free(&res);
    return ret;
}

const char *vg_stylize_describe(const VgStylizer *st)
{
    return st ? st->desc : "";
}

void vg_stylize_close(VgStylizer **pst)
{
    VgStylizer *st = pst ? *pst : NULL;

    if (!st)
        return;
    vg_tensor_free(&st->cond);
    vg_tensor_free(&st->uncond);
    free(st->prompt);
    free(st->negative);
    vg_sd_model_close(&st->m);
    free(st);
    *pst = NULL;
}
