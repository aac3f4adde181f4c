/*
 * CLIP text transformer, the prompt encoder of Stable Diffusion:
 * SD1.x: OpenAI CLIP ViT-L/14 text tower (quick_gelu, last layer + final LN);
 * SD2.x / SD-Turbo: OpenCLIP ViT-H/14 text tower (gelu, penultimate of the
 * 24 resblocks + ln_final, which is all 23 layers a diffusers folder holds).
 *
 *   x = token_embedding[ids] + position_embedding          // [77, C]
 *   per layer: x += out_proj(causal_mha(LN1(x)));
 *              x += fc2(act(fc1(LN2(x))))
 *   y = final_ln ? LN(x) : x                                // [77, C]
 *
 * Key layouts (all under a caller-given prefix):
 *  - transformers / diffusers (text_encoder/model.safetensors, prefix ""; SD1
 *    single files, prefix "cond_stage_model.transformer."):
 *    text_model.embeddings.{token,position}_embedding.weight,
 *    text_model.encoder.layers.N.{layer_norm1,self_attn.{q,k,v,out}_proj,
 *    layer_norm2,mlp.fc1,mlp.fc2}.{weight,bias}, text_model.final_layer_norm.*
 *  - OpenCLIP (SD2 single files, prefix "cond_stage_model.model."):
 *    token_embedding.weight, positional_embedding, transformer.resblocks.N.
 *    {ln_1, attn.in_proj_weight/in_proj_bias (q, k, v stacked: split in
 *    thirds), attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_final.
 *    text_projection (not used by SD) marks a file with the whole OpenCLIP
 *    tower: its last resblock is then skipped, as SD2 does.
 * Weights stay in the VgWeights (any float dtype, widened per op); the
 * VgWeights must outlive the VgClip.
 */
#ifndef VG_ENGINE_SD_CLIP_H
#define VG_ENGINE_SD_CLIP_H

#include <stdint.h>

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"

typedef enum VgClipAct { VG_CLIP_ACT_QUICK_GELU, VG_CLIP_ACT_GELU } VgClipAct;

typedef struct VgClipConfig {
    /* 0 / -1 = infer from the tensors */
    int hidden;       /* C */
    int heads;        /* default C / 64 */
    int layers;       /* layers to run, counted from the first (default: all
                         stored, minus the last for a full OpenCLIP tower) */
    int intermediate; /* MLP width */
    int max_pos;      /* 77 */
    int act;          /* VgClipAct; -1 = by layout (transformers: quick_gelu,
                         OpenCLIP: gelu) */
    float eps;        /* layer-norm eps; 0 = 1e-5 */
    /* what vg_clip_encode returns */
    int skip;         /* layers to skip at the end of those run (clip-skip:
                         0 = last, 1 = penultimate) */
    int no_final_ln;  /* 1 = return the hidden state without the final LN */
} VgClipConfig;

/* All fields "infer", skip 0, final LN on. */
void vg_clip_config_default(VgClipConfig *cfg);

/* Reads a transformers CLIPTextConfig config.json (hidden_size,
 * num_attention_heads, num_hidden_layers, intermediate_size,
 * max_position_embeddings, hidden_act, layer_norm_eps) into @cfg (other
 * fields untouched). @c is for logging. */
int vg_clip_config_read(VgClipConfig *cfg, const VgCtx *c, const char *path);

/* Key prefix of the text encoder in @w: "", "cond_stage_model.transformer.",
 * "cond_stage_model.model.", "text_encoder."; NULL if none is found. */
const char *vg_clip_find_prefix(const VgWeights *w);

typedef struct VgClip VgClip;

/*
 * Checks every tensor (presence, dtype, shape against @cfg or each other)
 * and logs what it found. @cfg may be NULL (infer everything). @ctx and @w
 * must outlive the VgClip. *out is owned by the caller (vg_clip_close).
 */
int vg_clip_open(VgClip **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                 const VgClipConfig *cfg);
void vg_clip_close(VgClip **clip);

/* Width C of the output and the number of positions (77). */
int vg_clip_hidden(const VgClip *clip);
int vg_clip_positions(const VgClip *clip);

/*
 * ids [n] (n = positions, 77) -> @out, a contiguous F32 tensor holding
 * n * C values ([1, 77, C] or [77, C]), allocated by the caller.
 */
int vg_clip_encode(VgClip *clip, const int32_t *ids, int n, VgTensor *out);

#endif
