/*
 * The KL autoencoder of Stable Diffusion 1.x / 2.x (diffusers AutoencoderKL,
 * ldm AutoencoderKL): encoder image -> posterior mean, decoder latent ->
 * image. Latents cross this API UNSCALED (multiply by
 * VgVaeConfig.scaling_factor before the UNet, divide after).
 *
 * Weights stay in their stored dtype (usually F16) and are widened per layer
 * by the engine/nn.h ops; the VAE holds pointers into a VgWeights.
 *
 * Key layouts accepted (detected from the names under the prefix):
 *  - diffusers: encoder.down_blocks.N.resnets.M..., mid_block.attentions.0.to_q
 *    (and the pre-0.15 attention names query/key/value/proj_attn);
 *  - original (ldm / A1111 single files, standalone VAEs such as
 *    vae-ft-mse-840000): encoder.down.N.block.M..., mid.attn_1.{norm,q,k,v,
 *    proj_out} as 1x1 convs, decoder.up.N counted from the full-resolution
 *    end (diffusers' up_blocks.(n-1-N)), nin_shortcut, norm_out.
 * Mid-block attention runs through vg_attention (online softmax), so a
 * 64x64 latent never allocates a 4096x4096 score matrix.
 */
#ifndef VG_ENGINE_SD_VAE_H
#define VG_ENGINE_SD_VAE_H

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"

#define VG_VAE_MAX_BLOCKS 8
#define VG_VAE_MAX_LAYERS 8

typedef struct VgVaeConfig {
    int in_channels, out_channels; /* image channels, 3 */
    int latent_channels;           /* 4 for SD 1/2 */
    int n_blocks;                  /* len(block_out_channels); downsampling 2^(n_blocks-1) */
    int block_out[VG_VAE_MAX_BLOCKS];
    int layers_per_block;          /* encoder resnets per block; the decoder has one more */
    int norm_groups;               /* GroupNorm groups, 32 (eps is 1e-6 throughout) */
    float scaling_factor;          /* 0.18215 for SD 1/2 */
} VgVaeConfig;

typedef enum VgVaeLayout {
    VG_VAE_LAYOUT_DIFFUSERS,        /* to_q / to_k / to_v / to_out.0 */
    VG_VAE_LAYOUT_DIFFUSERS_LEGACY, /* query / key / value / proj_attn */
    VG_VAE_LAYOUT_ORIGINAL,
} VgVaeLayout;

typedef struct VgVae VgVae;

/* The SD 1.x / 2.x VAE: blocks [128, 256, 512, 512], 2 layers, 4 latent
 * channels, 32 groups, scale 0.18215. */
void vg_vae_config_default(VgVaeConfig *cfg);

/* Reads a diffusers vae/config.json (@path, remains with the caller) over
 * the defaults. Bad JSON or values: VG_EBADMODEL and one log line. */
int vg_vae_config_from_json(VgVaeConfig *cfg, const VgCtx *c, const char *path);

/*
 * Build the VAE from @w under @prefix ("" for a diffusers vae/ file or a
 * standalone VAE, "first_stage_model." for an SD single file; NULL tries
 * "", "first_stage_model.", "state_dict.", "state_dict.first_stage_model.",
 * "vae."). @cfg NULL: inferred from the shapes (groups 32 and scale 0.18215
 * cannot be read from shapes; they are SD's). Every tensor is checked
 * against the configuration: a missing or mis-shaped one gives
 * VG_EBADMODEL with one log line naming it. @w must outlive the VAE; @ctx
 * must outlive it too; @cfg is read during the call only.
 */
int vg_vae_open(VgVae **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                const VgVaeConfig *cfg);

/*
 * The same from a path: a diffusers model folder (uses vae/), a vae/ folder
 * (config.json + diffusion_pytorch_model.safetensors or .bin), or a single
 * file (.safetensors / .ckpt / .pt / .pth: SD checkpoint or standalone
 * VAE). The weights are owned by the result. @path remains with the caller.
 */
int vg_vae_open_path(VgVae **out, VgCtx *ctx, const char *path);

const VgVaeConfig *vg_vae_get_config(const VgVae *v);
VgVaeLayout vg_vae_get_layout(const VgVae *v);
/* Spatial factor between image and latent, 2^(n_blocks-1) (8 for SD). */
int vg_vae_factor(const VgVae *v);
/* The context given at open (for logging). */
VgCtx *vg_vae_ctx(const VgVae *v);

/*
 * @img [B, in_channels, H, W] in -1..1 (F32/F16/BF16), H and W multiples of
 * vg_vae_factor() -> *@mean [B, latent, H/f, W/f], the posterior mean,
 * unscaled. *@mean is allocated here (owned by the caller); zeroed on failure.
 */
int vg_vae_encode(VgVae *v, const VgTensor *img, VgTensor *mean);

/* The encoder's full output after quant_conv: *@moments [B, 2*latent, H/f,
 * W/f] = mean then log-variance, for sampling the posterior
 * (std = exp(0.5 * clamp(logvar, -30, 20))). Allocated as for encode. */
int vg_vae_encode_moments(VgVae *v, const VgTensor *img, VgTensor *moments);

/* @lat [B, latent, h, w] unscaled -> *@img [B, out_channels, f*h, f*w] in
 * about -1..1 (not clamped). Allocated as for encode. */
int vg_vae_decode(VgVae *v, const VgTensor *lat, VgTensor *img);

void vg_vae_close(VgVae **v);

/* ------------------------------------------------------------ tiled (tile_vae.c)
 * For frames larger than the VAE is comfortable with: the latent (decode) or
 * image (encode) is cut into overlapping tiles, each run through the whole
 * network, and the overlaps blended linearly. @tile is the tile edge and
 * @overlap the overlap, both in LATENT pixels (image pixels = x factor);
 * tile 0 = 64 (512 px); overlap 0 = min(16, tile/4) (128 px for the default
 * tile), -1 = tile/4. Inputs no larger than one tile run untiled.
 *
 * GroupNorm statistics are computed per tile, so tiled output is not
 * identical to untiled output (the difference depends on how different the
 * tiles' contents are: small on smooth images, visible on very uneven ones);
 * the linear blend hides the seams this causes.
 */
int vg_vae_decode_tiled(VgVae *v, const VgTensor *lat, int tile, int overlap, VgTensor *img);
int vg_vae_encode_tiled(VgVae *v, const VgTensor *img, int tile, int overlap, VgTensor *mean);
/* The same for vg_vae_encode_moments: mean and log-variance are blended
 * alike (img2img samples the posterior from them). */
int vg_vae_encode_moments_tiled(VgVae *v, const VgTensor *img, int tile, int overlap,
                                VgTensor *moments);

/* Name of the tensor with diffusers name @dname (e.g.
 * "encoder.mid_block.attentions.0.to_q.weight") in @layout, without prefix.
 * @n_blocks is needed for the original layout's reversed decoder indices.
 * VG_ERR(ENAMETOOLONG) if @size is too small, VG_ERR(EINVAL) for a name
 * that is not a VAE name. (vae_keys.c) */
int vg_vae_key(char *buf, size_t size, VgVaeLayout layout, int n_blocks, const char *dname);

#endif
