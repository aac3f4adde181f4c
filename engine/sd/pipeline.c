/*
 * img2img as diffusers 0.27's StableDiffusionImg2ImgPipeline (see
 * pipeline.h for the data flow and the order of random draws).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/pipeline.h"
#include "engine/sd/rng.h"
#include "engine/sd/sampler.h"

void vg_sd_img2img_params_default(VgSdImg2ImgParams *p)
{
    memset(p, 0, sizeof(*p));
    p->sampler  = VG_SAMPLER_EULER;
    p->steps    = 20;
    p->strength = 0.5;
    p->cfg      = 7.5f;
    p->karras   = -1;
    p->spacing  = -1;
}

void vg_sd_sched_config(const VgSdModel *m, const VgSdImg2ImgParams *p, VgSchedConfig *sc)
{
    *sc = m->sched;
    /* use_karras_sigmas is a key of the Euler and DPM classes only: another
     * sampler built from such a config ignores it, as from_config does */
    if (p->karras >= 0)
        sc->use_karras = p->karras;
    else if (p->sampler != VG_SAMPLER_EULER && p->sampler != VG_SAMPLER_DPMPP_2M)
        sc->use_karras = 0;
    if (p->spacing >= 0)
        sc->spacing = p->spacing;
}

#define VAE_COMFORT_UNITS 64  /* latent pixels per side: 512 x 512 image pixels */

int vg_sd_vae_tile(const VgSdModel *m, int vae_tile, int h, int w)
{
    const int f = m->vae ? vg_vae_factor(m->vae) : 8;
    if (!m->vae || vae_tile < 0)
        return 0;
    if (vae_tile > 0)
        return h > vae_tile || w > vae_tile ? vae_tile / f : 0;
    return (int64_t)(h / f) * (w / f) > VAE_COMFORT_UNITS * VAE_COMFORT_UNITS
           ? VAE_COMFORT_UNITS : 0;
}

int vg_sd_img2img_check(const VgCtx *c, const VgSdImg2ImgParams *p)
{
    if (p->sampler < 0 || p->sampler >= VG_SAMPLER_COUNT) {
        vg_log(c, VG_LOG_ERROR, "sd: sampler %d unknown (euler, euler_a, ddim, dpm++2m, lcm)\n",
               p->sampler);
        return VG_ERR(EINVAL);
    }
    if (p->steps < 1 || p->steps > 1000) {
        vg_log(c, VG_LOG_ERROR, "sd: steps %d out of range 1..1000\n", p->steps);
        return VG_ERR(EINVAL);
    }
    if (!(p->strength > 0.0 && p->strength <= 1.0)) {
        vg_log(c, VG_LOG_ERROR, "sd: strength %g out of range (0, 1]\n", p->strength);
        return VG_ERR(EINVAL);
    }
    if (!(p->cfg >= 0.f && p->cfg <= 50.f)) {
        vg_log(c, VG_LOG_ERROR, "sd: cfg %g out of range 0..50\n", p->cfg);
        return VG_ERR(EINVAL);
    }
    if (p->karras < -1 || p->karras > 1 || p->spacing < -1 || p->spacing > VG_SPACING_LINSPACE) {
        vg_log(c, VG_LOG_ERROR, "sd: bad schedule / spacing value\n");
        return VG_ERR(EINVAL);
    }
    /* below 8 latent pixels a tile would be mostly overlap */
    if (p->vae_tile < -1 || (p->vae_tile > 0 && (p->vae_tile < 64 || p->vae_tile % 8 ||
                                                 p->vae_tile > 16384))) {
        vg_log(c, VG_LOG_ERROR, "sd: vae_tile %d: want 0 (auto), -1 (off) or a tile edge in "
               "pixels, a multiple of 8 in 64..16384\n", p->vae_tile);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_sd_encode_prompt(VgSdModel *m, const char *text, VgTensor *emb)
{
    int32_t ids[VG_CLIP_CTX_LEN];
    int ret, used;

    memset(emb, 0, sizeof(*emb));
    if (!m->tok) {
        vg_log(m->ctx, VG_LOG_ERROR, "no tokenizer: pass tokenizer=PATH "
               "(bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder)\n");
        return VG_ERR(EINVAL);
    }
    if ((ret = vg_tokenizer_encode(m->tok, m->ctx, text ? text : "", ids, &used)) < 0)
        return ret;
    if ((ret = vg_tensor_alloc(emb, VG_DT_F32, 3,
                               (const int64_t[]){ 1, VG_CLIP_CTX_LEN, vg_clip_hidden(m->clip) })) < 0)
        return ret;                                        // [1, 77, C]
    if ((ret = vg_clip_encode(m->clip, ids, VG_CLIP_CTX_LEN, emb)) < 0)
        vg_tensor_free(emb);
    return ret;
}

typedef struct Denoise {
    VgSdModel *m;
    float cfg;
    VgTensor enc;   /* [B, 77, C]: B = 2 (uncond, cond) or 1 (cond) */
    VgTensor x2;    /* [2, 4, h, w] when guiding */
    VgTensor o2;    /* [B, 4, h, w] */
} Denoise;

static int denoise(void *opaque, const VgTensor *x, float t, VgTensor *eps)
{
    Denoise *d = opaque;
    const int64_t n = vg_tensor_nelem(x);
    const float ts[2] = { t, t };
    int ret;

    if (d->cfg <= 1.f)
        return vg_unet_forward(d->m->unet, x, ts, &d->enc, eps);
    memcpy(d->x2.data, x->data, n * sizeof(float));
    memcpy((float *)d->x2.data + n, x->data, n * sizeof(float));
    if ((ret = vg_unet_forward(d->m->unet, &d->x2, ts, &d->enc, &d->o2)) < 0)
        return ret;
    const float *u = d->o2.data, *c = u + n;
    float *e = eps->data;
    for (int64_t i = 0; i < n; i++)
        e[i] = u[i] + d->cfg * (c[i] - u[i]);
    return 0;
}

/* Image [1, 3, H, W] 0..1 -> scaled latent [1, 4, H/8, W/8]; draws the
 * posterior sample from @rng for the KL VAE. */
static int encode(VgSdModel *m, const VgTensor *img, int tile, VgRng *rng, VgTensor *lat)
{
    VgTensor x = { 0 }, mom = { 0 }, noise = { 0 };
    int ret;

    memset(lat, 0, sizeof(*lat));
    if (m->taesd && vg_taesd_has_encoder(m->taesd))
        return vg_taesd_encode(m->taesd, img, lat);       // latent scale 1, images 0..1
    if ((ret = vg_tensor_alloc(&x, VG_DT_F32, 4, img->ne)) < 0)
        return ret;
    for (int64_t i = 0; i < vg_tensor_nelem(img); i++)
        ((float *)x.data)[i] = 2.f * ((const float *)img->data)[i] - 1.f;
    if ((ret = tile ? vg_vae_encode_moments_tiled(m->vae, &x, tile, 0, &mom)
                    : vg_vae_encode_moments(m->vae, &x, &mom)) < 0)   // [1, 2L, h, w]
        goto end;
    const int64_t L = mom.ne[1] / 2, hw = mom.ne[2] * mom.ne[3];
    if ((ret = vg_tensor_alloc4(lat, mom.ne[0], L, mom.ne[2], mom.ne[3])) < 0 ||
        (ret = vg_tensor_alloc4(&noise, mom.ne[0], L, mom.ne[2], mom.ne[3])) < 0 ||
        (ret = vg_rng_randn_tensor(rng, &noise)) < 0)
        goto end;
    /* latent_dist.sample() = mean + std * randn, then * scaling_factor */
    for (int64_t b = 0; b < mom.ne[0]; b++) {
        const float *mean = (const float *)mom.data + b * 2 * L * hw;
        const float *lv = mean + L * hw;
        const float *nz = (const float *)noise.data + b * L * hw;
        float *o = (float *)lat->data + b * L * hw;
        for (int64_t i = 0; i < L * hw; i++) {
            const float logvar = fminf(fmaxf(lv[i], -30.f), 20.f);
            const float std = expf(0.5f * logvar);
            o[i] = (mean[i] + std * nz[i]) * m->vae_scale;
        }
    }
end:
    if (ret < 0)
        vg_tensor_free(lat);
    vg_tensor_free(&x);
    vg_tensor_free(&mom);
    vg_tensor_free(&noise);
    return ret;
}

/* Scaled latent -> image [1, 3, H, W] in 0..1. */
static int decode(VgSdModel *m, VgTensor *lat, int tile, VgTensor *img)
{
    const int64_t n = vg_tensor_nelem(lat);
    int ret;

    memset(img, 0, sizeof(*img));
    if (m->taesd && vg_taesd_has_decoder(m->taesd)) {
        if ((ret = vg_taesd_decode(m->taesd, lat, img)) < 0)
            return ret;
        for (int64_t i = 0; i < vg_tensor_nelem(img); i++) {
            float *p = (float *)img->data + i;
            *p = fminf(fmaxf(*p, 0.f), 1.f);
        }
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        ((float *)lat->data)[i] /= m->vae_scale;
    if ((ret = tile ? vg_vae_decode_tiled(m->vae, lat, tile, 0, img)
                    : vg_vae_decode(m->vae, lat, img)) < 0)
        return ret;
    for (int64_t i = 0; i < vg_tensor_nelem(img); i++) {
        float *p = (float *)img->data + i;
        *p = fminf(fmaxf(*p / 2.f + 0.5f, 0.f), 1.f);
    }
    return 0;
}

int vg_sd_latent_shape(const VgSdModel *m, int h, int w, int *c, int *lh, int *lw)
{
    VG_VALIDATE(m && c && lh && lw, VG_ERR(EINVAL));
    if (m->taesd && vg_taesd_has_encoder(m->taesd)) {
        /* three stride-2 convs with padding 1: ceil(x / 8) */
        *c = vg_taesd_latent_channels(m->taesd);
        *lh = h > 0 ? (h + 7) / 8 : 0;
        *lw = w > 0 ? (w + 7) / 8 : 0;
    } else {
        const int f = vg_vae_factor(m->vae);
        *c = vg_vae_get_config(m->vae)->latent_channels;
        *lh = h > 0 ? h / f : 0;
        *lw = w > 0 ? w / f : 0;
    }
    if (*c < 1 || *lh < 1 || *lw < 1) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: picture %dx%d gives no latent pixel\n", w, h);
        return VG_ERR(EINVAL);
    }
    return 0;
}

/*
 * The loop of vg_sampler_run (reset, one randn of the latent's shape,
 * add_noise, then scale_input -> model -> step per executed timestep) with
 * the caller's noise substituted between the draw and add_noise. Kept to the
 * same operations in the same order: test_stylize_noise (check_pipeline)
 * holds an all-NaN @user to vg_sampler_run's bits.
 */
static int sample_noise(VgSampler *s, Denoise *d, const VgTensor *init, VgRng *rng, float *user,
                        VgTensor *out)
{
    VgTensor noise = { 0 }, xin = { 0 }, eps = { 0 };
    const int64_t n = vg_tensor_nelem(init);
    int ret, nt;
    const float *ts = vg_sampler_timesteps(s, &nt);

    memset(out, 0, sizeof(*out));
    vg_sampler_reset(s);
    if ((ret = vg_tensor_alloc(out, VG_DT_F32, init->ndim, init->ne)) < 0 ||
        (ret = vg_tensor_alloc(&noise, VG_DT_F32, init->ndim, init->ne)) < 0 ||
        (ret = vg_tensor_alloc(&xin, VG_DT_F32, init->ndim, init->ne)) < 0 ||
        (ret = vg_tensor_alloc(&eps, VG_DT_F32, init->ndim, init->ne)) < 0)
        goto end;                                      // [1, C, h, w] each
    float *nz = noise.data;
    vg_rng_randn(rng, nz, n);                          // drawn whole: later draws unchanged
    for (int64_t i = 0; i < n; i++)
        if (!isnan(user[i]))
            nz[i] = user[i];
    memcpy(user, nz, n * sizeof(float));
    if ((ret = vg_sampler_add_noise(s, init, &noise, out)) < 0)
        goto end;
    for (int i = 0; i < nt; i++)
        if ((ret = vg_sampler_scale_input(s, out, &xin)) < 0 ||
            (ret = denoise(d, &xin, ts[i], &eps)) < 0 ||
            (ret = vg_sampler_step(s, &eps, ts[i], out, rng)) < 0)
            goto end;
end:
    vg_tensor_free(&noise);
    vg_tensor_free(&xin);
    vg_tensor_free(&eps);
    if (ret < 0)
        vg_tensor_free(out);
    return ret;
}

int vg_sd_img2img(VgSdModel *m, const VgSdImg2ImgParams *p, const VgTensor *cond,
                  const VgTensor *uncond, const VgTensor *img, VgTensor *out)
{
    return vg_sd_img2img_noise(m, p, cond, uncond, img, NULL, out);
}

int vg_sd_img2img_noise(VgSdModel *m, const VgSdImg2ImgParams *p, const VgTensor *cond,
                        const VgTensor *uncond, const VgTensor *img, float *noise,
                        VgTensor *out)
{
    VgSchedConfig sc;
    VgSampler *s = NULL;
    VgTensor lat = { 0 }, res = { 0 };
    Denoise d = { 0 };
    VgRng rng;
    int ret;

    VG_VALIDATE(m && p && cond && img && out, VG_ERR(EINVAL));
    memset(out, 0, sizeof(*out));
    if ((ret = vg_sd_img2img_check(m->ctx, p)) < 0)
        return ret;
    if (img->ndim != 4 || img->ne[0] != 1 || img->ne[1] != 3 || img->dtype != VG_DT_F32 ||
        img->ne[2] % 8 || img->ne[3] % 8 || !vg_tensor_is_contiguous(img)) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: img2img wants a contiguous F32 [1, 3, H, W] picture "
               "with H and W multiples of 8\n");
        return VG_ERR(EINVAL);
    }
    if (p->cfg > 1.f && !uncond) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: cfg %g > 1 needs a negative-prompt embedding\n",
               p->cfg);
        return VG_ERR(EINVAL);
    }
    int lc = 0, lh = 0, lw = 0;
    if (noise) {
        if ((ret = vg_sd_latent_shape(m, (int)img->ne[2], (int)img->ne[3], &lc, &lh, &lw)) < 0)
            return ret;
        for (int64_t i = 0; i < (int64_t)lc * lh * lw; i++)
            if (isinf(noise[i])) {
                vg_log(m->ctx, VG_LOG_ERROR, "sd: initial noise [%d, %d, %d] has %g at %lld: "
                       "want finite values, or NaN for the generator's draw\n", lc, lh, lw,
                       noise[i], (long long)i);
                return VG_ERR(EINVAL);
            }
    }
    vg_sd_sched_config(m, p, &sc);
    if ((ret = vg_sampler_create(&s, &sc, p->sampler, p->steps, p->strength, m->ctx)) < 0)
        return ret;

    d.m = m;
    d.cfg = p->cfg;
    const int64_t C = cond->ne[cond->ndim - 1];
    const int B = p->cfg > 1.f ? 2 : 1;
    if ((ret = vg_tensor_alloc(&d.enc, VG_DT_F32, 3, (const int64_t[]){ B, VG_CLIP_CTX_LEN, C })) < 0)
        goto end;                                          // [B, 77, C]
    if (B == 2) {
        memcpy(d.enc.data, uncond->data, VG_CLIP_CTX_LEN * C * sizeof(float));
        memcpy((float *)d.enc.data + VG_CLIP_CTX_LEN * C, cond->data,
               VG_CLIP_CTX_LEN * C * sizeof(float));
    } else {
        memcpy(d.enc.data, cond->data, VG_CLIP_CTX_LEN * C * sizeof(float));
    }

    vg_rng_seed(&rng, p->seed);
    const int tile = vg_sd_vae_tile(m, p->vae_tile, (int)img->ne[2], (int)img->ne[3]);
    if ((ret = encode(m, img, tile, &rng, &lat)) < 0)      // [1, 4, H/8, W/8]
        goto end;
    if (B == 2 &&
        ((ret = vg_tensor_alloc4(&d.x2, 2, lat.ne[1], lat.ne[2], lat.ne[3])) < 0 ||
         (ret = vg_tensor_alloc4(&d.o2, 2, lat.ne[1], lat.ne[2], lat.ne[3])) < 0))
        goto end;
    if (noise && (lat.ne[0] != 1 || lat.ne[1] != lc || lat.ne[2] != lh || lat.ne[3] != lw)) {
        vg_log(m->ctx, VG_LOG_ERROR, "sd: latent [%lld, %lld, %lld, %lld] is not the noise "
               "shape [%d, %d, %d]\n", (long long)lat.ne[0], (long long)lat.ne[1],
               (long long)lat.ne[2], (long long)lat.ne[3], lc, lh, lw);
        ret = VG_ERR(EINVAL);
        goto end;
    }
    if ((ret = noise ? sample_noise(s, &d, &lat, &rng, noise, &res)
                     : vg_sampler_run(s, denoise, &d, &lat, &rng, &res)) < 0)
        goto end;
    ret = decode(m, &res, tile, out);
end:
    vg_sampler_free(&s);
    vg_tensor_free(&lat);
    vg_tensor_free(&res);
    vg_tensor_free(&d.enc);
    vg_tensor_free(&d.x2);
    vg_tensor_free(&d.o2);
    return ret;
}
