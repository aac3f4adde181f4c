/*
 * Stable Diffusion img2img (SDEdit) as diffusers 0.27's
 * StableDiffusionImg2ImgPipeline runs it, on the components of engine/sd/.
 *
 * A VgSdModel is what loader.c builds from a checkpoint: a single file
 * (.safetensors / .ckpt, original layout) or a diffusers folder, plus the
 * optional VAE / TAESD / tokenizer overrides. vg_sd_img2img then does, with
 * one torch-compatible CPU generator seeded once with the seed:
 *
 *   image 0..1 -> 2x-1 -> VAE encoder moments -> mean + std * randn   (draw 1)
 *     (tiled above the VAE's comfort size: vg_sd_vae_tile)
 *     (TAESD instead: encoder on 0..1, no draw, latent scale 1)
 *   -> * scaling_factor -> initial noise randn (next draw; finite values of
 *      the caller's noise replace it) -> add_noise -> sampler steps
 *      (per-step noise: further draws), the loop of vg_sampler_run
 *   -> / scaling_factor -> VAE decode -> x/2 + 0.5 -> clamp 0..1
 *
 * with classifier-free guidance eps = u + cfg * (c - u) computed from one
 * UNet call on the batch [uncond, cond] when cfg > 1; cfg <= 1 runs the
 * conditional half only (SD-Turbo).
 */
#ifndef VG_ENGINE_SD_PIPELINE_H
#define VG_ENGINE_SD_PIPELINE_H

#include <stdint.h>

#include "visgen/visgen.h"
#include "engine/sd/clip.h"
#include "engine/sd/schedule.h"
#include "engine/sd/taesd.h"
#include "engine/sd/tokenizer.h"
#include "engine/sd/unet.h"
#include "engine/sd/vae.h"
#include "engine/tensor.h"
#include "engine/weights.h"

typedef struct VgSdLoadOptions {
    /* Paths remain with the caller, read during vg_sd_model_open only. */
    const char *model;         /* single file or diffusers folder (required) */
    const char *vae;           /* replaces the model's VAE (file or folder) */
    const char *taesd_encoder; /* replaces the VAE encoder */
    const char *taesd_decoder; /* replaces the VAE decoder */
    const char *tokenizer;     /* NULL = the folder's tokenizer/ */
    const char *prediction;    /* "epsilon", "v", "v_prediction"; NULL = config / family */
    int clip_skip;             /* 0 = family default; N >= 1: A1111's "clip skip N" */
    int no_tokenizer_ok;       /* 1 = load without a tokenizer (info / forward) */
} VgSdLoadOptions;

typedef struct VgSdModel {
    VgCtx *ctx;
    VgSdFamily family;
    int single_file;
    VgWeights *w_file;   /* the single file (or a view of it without the .ckpt's
                          * "state_dict." root), or NULL */
    VgWeights *w_ckpt;   /* the .ckpt behind that view, or NULL */
    VgWeights *w_unet;   /* folder: unet/ weights */
    VgWeights *w_text;   /* folder: text_encoder/ weights */
    VgUnet *unet;
    VgClip *clip;
    VgVae *vae;          /* NULL only when TAESD replaces both halves */
    VgTaesd *taesd;      /* NULL unless taesd_encoder / taesd_decoder given */
    VgTokenizer *tok;    /* NULL only with no_tokenizer_ok */
    VgSchedConfig sched; /* folder's scheduler_config.json or the family's */
    const char *spacing_from;    /* where sched.spacing came from (static text) */
    const char *pred_from;       /* where sched.prediction came from (static text) */
    float vae_scale;     /* KL VAE scaling factor (0.18215) */
    int default_sampler; /* VgSamplerKind of the folder's scheduler class, else euler */
    char desc[512];
} VgSdModel;

/* loader.c. *out is the caller's (vg_sd_model_close); @ctx must outlive it. */
int vg_sd_model_open(VgSdModel **out, VgCtx *ctx, const VgSdLoadOptions *o);
void vg_sd_model_close(VgSdModel **m);

/* Prompt -> *emb [1, 77, C] F32, allocated here (owned by the caller). */
int vg_sd_encode_prompt(VgSdModel *m, const char *text, VgTensor *emb);

typedef struct VgSdImg2ImgParams {
    int sampler;         /* VgSamplerKind */
    int steps;           /* 1..1000 */
    double strength;     /* (0, 1] */
    float cfg;           /* 0..50; <= 1: no unconditional pass */
    int karras;          /* -1 = the scheduler config's, 0 / 1 */
    int spacing;         /* -1 = the scheduler config's, else VgSpacing */
    int vae_tile;        /* KL VAE tiling: 0 = auto, -1 = off, N = tile edge in pixels */
    uint64_t seed;
} VgSdImg2ImgParams;

/*
 * KL VAE tiling (tile_vae.c) of an @h x @w picture: the tile edge in latent
 * pixels, or 0 to encode / decode it whole. Auto (@vae_tile 0) tiles
 * pictures larger in area than 512 x 512, the size SD's VAE was trained at,
 * in 512-pixel tiles with 128-pixel blended overlaps: the VAE's memory grows
 * with the area (about 0.7 GB at 512 x 512 for SD's 128-wide decoder, 2.7 GB
 * at 1024 x 1024), tiled it stays at the 512 x 512 figure. @vae_tile N > 0
 * tiles pictures with a side above N pixels in N-pixel tiles. TAESD is never
 * tiled: it has no GroupNorm or attention, and 1920 x 1080 takes 230 MB.
 */
int vg_sd_vae_tile(const VgSdModel *m, int vae_tile, int h, int w);

void vg_sd_img2img_params_default(VgSdImg2ImgParams *p);

/* The model's scheduler configuration with @p's schedule / spacing
 * overrides, as the sampler @p->sampler reads it, into *@sc. */
void vg_sd_sched_config(const VgSdModel *m, const VgSdImg2ImgParams *p, VgSchedConfig *sc);

/* Checks ranges, one log line per problem. */
int vg_sd_img2img_check(const VgCtx *c, const VgSdImg2ImgParams *p);

/*
 * @img [1, 3, H, W] F32 in 0..1 (H, W multiples of 8) -> *@out [1, 3, H, W]
 * in 0..1, allocated here (owned by the caller). @cond / @uncond are
 * vg_sd_encode_prompt outputs (remain with the caller; @uncond may be NULL
 * when p->cfg <= 1).
 */
int vg_sd_img2img(VgSdModel *m, const VgSdImg2ImgParams *p, const VgTensor *cond,
                  const VgTensor *uncond, const VgTensor *img, VgTensor *out);

/*
 * Shape of the latent (and so of the initial noise) of an @h x @w picture
 * (processing size, multiples of 8): *@c channels of *@lh x *@lw, as the
 * model's encoder (KL VAE or TAESD) gives it. 0, or VG_ERR(EINVAL) for a
 * size that gives an empty latent.
 */
int vg_sd_latent_shape(const VgSdModel *m, int h, int w, int *c, int *lh, int *lw);

/*
 * vg_sd_img2img with the caller's hand on the initial noise (the randn the
 * sampler scales and adds to the encoded latent at the first executed
 * timestep). @noise (NULL = vg_sd_img2img) is [c, lh, lw] F32, row-major,
 * of vg_sd_latent_shape(H, W) and remains with the caller: on entry its
 * finite values replace the generator's draw at their positions, NaN keeps
 * the draw (the generator draws all of it either way, so later draws are
 * unchanged); once the noise is settled (before the first UNet call) it is
 * overwritten with the noise used. An infinity fails the call untouched.
 */
int vg_sd_img2img_noise(VgSdModel *m, const VgSdImg2ImgParams *p, const VgTensor *cond,
                        const VgTensor *uncond, const VgTensor *img, float *noise,
                        VgTensor *out);

/* resize.c: planar F32 [C, H, W] pictures. Area average when shrinking an
 * axis, bilinear (half-pixel centres, edge clamp) when enlarging it. */
int vg_sd_resize(const float *src, int sw, int sh, ptrdiff_t sstride, float *dst, int dw, int dh,
                 ptrdiff_t dstride);


#endif
