/*
 * Stable Diffusion UNet: diffusers' UNet2DConditionModel in the configuration
 * SD 1.x, SD 2.x and SD-Turbo use (CrossAttnDownBlock2D / DownBlock2D,
 * UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D, ResnetBlock2D,
 * Transformer2DModel with self-attention, cross-attention and GEGLU).
 *
 * Weights stay in their stored dtype (F32/F16/BF16) and are borrowed from a
 * VgWeights, which must outlive the VgUnet; nn.h widens them per call, so an
 * 865M-parameter F16 UNet costs 1.7 GB, not 3.5 GB. Two key layouts are read:
 * diffusers (down_blocks.0.resnets.0.norm1.weight, under e.g. prefix "" or
 * "unet.") and the original single file (input_blocks.1.0.in_layers.0.weight,
 * under "model.diffusion_model."); unet_keys.c maps one onto the other.
 * Activations are F32 and freed as soon as the next layer has consumed them.
 */
#ifndef VG_ENGINE_SD_UNET_H
#define VG_ENGINE_SD_UNET_H

#include <stddef.h>
#include <stdint.h>

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"

#define VG_UNET_MAX_BLOCKS 6
#define VG_UNET_MAX_LAYERS 4   /* layers_per_block */
#define VG_UNET_MAX_TF 16      /* transformer_layers_per_block */

typedef enum VgUnetLayout {
    VG_UNET_LAYOUT_AUTO,      /* detect from the names under the prefix */
    VG_UNET_LAYOUT_DIFFUSERS, /* conv_in.weight, down_blocks.*, mid_block.*, up_blocks.* */
    VG_UNET_LAYOUT_ORIGINAL,  /* input_blocks.*, middle_block.*, output_blocks.*, out.* */
} VgUnetLayout;

typedef enum VgSdFamily {
    VG_SD_FAMILY_SD1 = 1, /* conv 1x1 projections; real models: cross-attention 768, 8 heads */
    VG_SD_FAMILY_SD2 = 2, /* linear projections; real models: cross-attention 1024, head dim 64 */
} VgSdFamily;

/*
 * The config.json fields SD UNets use. Per-block arrays are indexed by DOWN
 * block (0 = full resolution); up block i uses index n_blocks-1-i, as diffusers
 * reverses them; the mid block uses the last entry.
 */
typedef struct VgUnetConfig {
    int in_channels, out_channels;
    int n_blocks;
    int block_out[VG_UNET_MAX_BLOCKS];
    int down_attn[VG_UNET_MAX_BLOCKS]; /* down block i is CrossAttnDownBlock2D */
    int up_attn[VG_UNET_MAX_BLOCKS];   /* up block i (deepest first) is CrossAttnUpBlock2D */
    int heads[VG_UNET_MAX_BLOCKS];     /* attention heads (diffusers' num_attention_heads) */
    int tf_layers[VG_UNET_MAX_BLOCKS]; /* transformer_layers_per_block */
    int up_tf_layers[VG_UNET_MAX_BLOCKS]; /* per up block (reverse_transformer_layers_per_block) */
    int layers_per_block;
    int cross_attention_dim;
    int use_linear_projection;
    int norm_num_groups;
    float norm_eps;             /* resnets and conv_norm_out; transformers use 1e-6 / 1e-5 */
    int flip_sin_to_cos;
    float freq_shift;
    float mid_block_scale_factor;
} VgUnetConfig;

/* SD1.5-style defaults at full width ([320,640,1280,1280], 8 heads, 768). */
void vg_unet_config_sd15(VgUnetConfig *cfg);
/* SD2.1 / SD-Turbo ([320,640,1280,1280], heads [5,10,20,20] = head dim 64, 1024, linear). */
void vg_unet_config_sd21(VgUnetConfig *cfg);

/* Parses a diffusers unet/config.json text. Options SD does not use
 * (addition_embed_type: SDXL; class embeddings; time_cond_proj_dim; other
 * block types) give VG_EUNSUPPORTED naming the field, malformed text
 * VG_EBADMODEL; one log line either way. */
int vg_unet_config_parse(VgUnetConfig *cfg, const VgCtx *c, const char *json);
/* The same from a file path. */
int vg_unet_config_load(VgUnetConfig *cfg, const VgCtx *c, const char *path);

/* Which layout the tensors under @prefix use (conv_in / input_blocks.0.0);
 * VG_EBADMODEL with a log line if neither. */
int vg_unet_detect_layout(const VgCtx *c, const VgWeights *w, const char *prefix,
                          VgUnetLayout *layout);

/*
 * Refuses UNets of other families by name, from the tensor names under
 * @prefix and the cross-attention width: SDXL (label_emb / add_embedding, or
 * cross-attention 2048), SD3 (joint_blocks), Flux (double_blocks), LCM
 * guidance-embedding UNets (time_embedding.cond_proj) -> VG_EUNSUPPORTED.
 */
int vg_unet_check_supported(const VgCtx *c, const VgWeights *w, const char *prefix);

/*
 * Config from tensor shapes (a single file has no config.json): blocks,
 * widths, layers, attention blocks, transformer depth, cross-attention width,
 * projection type. Heads follow the family: 8 per block with conv projections
 * (SD1), width/64 with linear ones (SD2). Groups 32, eps 1e-5, flip_sin_to_cos,
 * freq_shift 0 (what every SD1/SD2 file uses).
 */
int vg_unet_config_infer(VgUnetConfig *cfg, const VgCtx *c, const VgWeights *w,
                         const char *prefix, VgUnetLayout layout);

/* Family from a config: cross-attention 768 -> SD1, 1024 -> SD2, else by
 * projection type (linear -> SD2). SDXL's 2048 -> VG_EUNSUPPORTED. */
int vg_unet_family(const VgCtx *c, const VgUnetConfig *cfg, VgSdFamily *family);

/*
 * Original single-file name of diffusers UNet parameter @name (both without
 * prefix), e.g. "down_blocks.1.resnets.0.norm1.weight" ->
 * "input_blocks.4.0.in_layers.0.weight" for layers_per_block 2. As diffusers'
 * conversion scripts define it. VG_ERR(EINVAL) for a name that is not a
 * UNet parameter; VG_ERR(ENAMETOOLONG) if @size is too small.
 */
int vg_unet_key_original(const VgUnetConfig *cfg, const char *name, char *buf, size_t size);

/* Calls @fn for every parameter @cfg implies, with its diffusers name and
 * shape, in a fixed order; stops at the first negative return and returns it.
 * For building random-weight models (benchmarks) and shape tests. */
typedef int (*VgUnetParamFn)(void *opaque, const char *name, int ndim, const int64_t *shape);
int vg_unet_foreach_param(const VgUnetConfig *cfg, VgUnetParamFn fn, void *opaque);

typedef struct VgUnet VgUnet;

/*
 * Binds every tensor the config implies, checking name, shape and dtype:
 * a missing or misshapen tensor gives VG_EBADMODEL and a log line naming it
 * (in the file's own layout). @cfg NULL: vg_unet_config_infer(). @prefix may
 * be NULL (""). @ctx (threads, logging) and @w must outlive the VgUnet.
 */
int vg_unet_open(VgUnet **out, VgCtx *ctx, const VgWeights *w, const char *prefix,
                 VgUnetLayout layout, const VgUnetConfig *cfg);

/*
 * One denoiser evaluation. sample [B, in_channels, h, w] F32 (any h, w >= 1;
 * sizes that are not multiples of 2^(n_blocks-1) are handled as diffusers
 * does, by upsampling to each skip's size), @timesteps B floats, enc
 * [B, L, cross_attention_dim] F32, out [B, out_channels, h, w] F32 allocated
 * by the caller. B = 2 runs the CFG pair in one pass. Activation buffers
 * stay in @u between calls (up to 192 MB, freed by vg_unet_close): one
 * thread at a time per VgUnet.
 */
int vg_unet_forward(VgUnet *u, const VgTensor *sample, const float *timesteps,
                    const VgTensor *enc, VgTensor *out);

const VgUnetConfig *vg_unet_get_config(const VgUnet *u);
int64_t vg_unet_n_params(const VgUnet *u);

void vg_unet_close(VgUnet **u);

/*
 * Optional per-op-class timing of vg_unet_forward, for profiling (bench_sd
 * --profile). Wall time and analytic FLOPs per class are accumulated into
 * @p (not owned; must outlive the forwards) while it is set; NULL stops.
 * widen_s: time spent widening F16/BF16 weights (also counted inside the
 * linear / conv classes).
 */
enum {
    VG_UNET_PROF_CONV3, VG_UNET_PROF_CONV1, VG_UNET_PROF_QKVO, VG_UNET_PROF_FF1,
    VG_UNET_PROF_FF2, VG_UNET_PROF_PROJ, VG_UNET_PROF_TEMB, VG_UNET_PROF_SELF,
    VG_UNET_PROF_CROSS, VG_UNET_PROF_GNSILU, VG_UNET_PROF_GN, VG_UNET_PROF_LN,
    VG_UNET_PROF_GEGLU, VG_UNET_PROF_ADD, VG_UNET_PROF_TRANSPOSE, VG_UNET_PROF_CONCAT,
    VG_UNET_PROF_N
};
typedef struct VgUnetProfile {
    double sec[VG_UNET_PROF_N], flops[VG_UNET_PROF_N];
    int64_t calls[VG_UNET_PROF_N];
    double widen_s, total_s;
    int64_t widen_n;
} VgUnetProfile;
const char *vg_unet_prof_name(int cls);
void vg_unet_set_profile(VgUnet *u, VgUnetProfile *p);

#endif
