/*
 * TAESD, the Tiny AutoEncoder for Stable Diffusion (madebyollin/taesd): a
 * fast approximate replacement for the KL VAE's encoder and decoder.
 *
 * Conventions (those of taesd.py, not of diffusers' AutoencoderTiny):
 * images are RGB in 0..1 both ways; latents are the SD VAE's latents already
 * multiplied by its scaling factor (TAESD's latent scale is 1), so they go to
 * and come from the UNet unchanged. The decoder's output is not clamped.
 *
 * Weights are accepted in these key layouts (detected per file):
 *   taesd_encoder.pth / taesd_decoder.pth (and .safetensors) as taesd.py saves
 *     them: "0.weight", "1.conv.0.weight", ... (nn.Sequential indices);
 *   ComfyUI's combined names "taesd_encoder.N..." / "taesd_decoder.N...";
 *   a TAESD module's state dict "encoder.N..." / "decoder.N...";
 *   diffusers AutoencoderTiny "encoder.layers.N..." / "decoder.layers.N..."
 *     (decoder indices one lower: diffusers applies the clamp outside).
 * The width (64 in the published models) and latent channels (4 for SD)
 * are read from the shapes. The weights are copied and widened to F32 at
 * open (about 5 MB per half): the network is small, and F32 weights let
 * every conv run with its ReLU fused.
 */
#ifndef VG_ENGINE_SD_TAESD_H
#define VG_ENGINE_SD_TAESD_H

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"

typedef struct VgTaesd VgTaesd;

/*
 * Build TAESD from @enc (encoder weights) and/or @dec (decoder weights);
 * either may be NULL (that direction then returns VG_ERR(ENOSYS)), not
 * both. @enc and @dec may be the same set (a combined file). Both remain
 * with the caller and may be closed after the call. @ctx remains with the
 * caller and must outlive the result. A file of the wrong kind or
 * shape gives VG_EBADMODEL / VG_EUNSUPPORTED and one log line.
 */
int vg_taesd_open(VgTaesd **out, VgCtx *ctx, const VgWeights *enc, const VgWeights *dec);

/* The same from file paths (.safetensors or .pth); either may be NULL, or
 * both the same combined file. Paths remain with the caller. */
int vg_taesd_open_files(VgTaesd **out, VgCtx *ctx, const char *enc_path, const char *dec_path);

int vg_taesd_has_encoder(const VgTaesd *t);
int vg_taesd_has_decoder(const VgTaesd *t);
int vg_taesd_latent_channels(const VgTaesd *t);

/*
 * @img [B, 3, H, W] F32 in 0..1 -> *@lat [B, L, ceil(H/8), ceil(W/8)]
 * (three stride-2 convs with padding 1). *@lat is allocated here and owned
 * by the caller (vg_tensor_free); on failure it is left zeroed.
 * Encode and decode keep their activation buffers in @t between calls (up
 * to 320 MB, freed by vg_taesd_close): one thread at a time per VgTaesd.
 */
int vg_taesd_encode(VgTaesd *t, const VgTensor *img, VgTensor *lat);

/* @lat [B, L, h, w] F32 -> *@img [B, 3, 8h, 8w] in about 0..1 (not clamped);
 * *@img allocated here as for encode. */
int vg_taesd_decode(VgTaesd *t, const VgTensor *lat, VgTensor *img);

void vg_taesd_close(VgTaesd **t);

#endif
