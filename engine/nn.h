/*
 * Transformer and diffusion-network ops (CLIP text encoder, UNet, VAE,
 * TAESD). Activations are contiguous F32; weight tensors (w, gamma, beta,
 * bias) may be F32, F16 or BF16 and are widened per call into scratch
 * memory, so multi-GB checkpoints can stay F16 in memory.
 * Shape checks return VG_ERR(EINVAL) with one log line.
 * @ctx supplies threads and may be NULL.
 */
#ifndef VG_ENGINE_NN_H
#define VG_ENGINE_NN_H

#include "visgen/visgen.h"
#include "engine/ops.h"
#include "engine/tensor.h"

/* y [M, N] = x [M, K] * w^T + b; w [N, K] (PyTorch nn.Linear; a 1x1 conv
 * weight [N, K, 1, 1] is accepted too), b [N] or NULL.
 * x may have any leading dims; they are flattened into M; y has x's leading
 * dims. Not in place. F16/BF16 weights are widened into a per-call buffer. */
int vg_linear(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b, VgTensor *y);

/* vg_conv2d with a weight of any float dtype (widened per call). */
int vg_conv2d_any(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
                  const VgConvParams *p, VgTensor *y);

/* Layer norm over the last dim: x [.., C], gamma/beta [C] (either may be NULL:
 * 1 / 0). Biased variance, eps inside the sqrt (PyTorch). y may equal x. */
int vg_layer_norm(VgCtx *ctx, const VgTensor *x, const VgTensor *gamma, const VgTensor *beta,
                  float eps, VgTensor *y);
/* Group norm: x [N, C, H, W] (or [N, C, L]), C % groups == 0, gamma/beta [C]
 * (may be NULL). PyTorch semantics as layer norm. y may equal x. */
int vg_group_norm(VgCtx *ctx, const VgTensor *x, int groups, const VgTensor *gamma,
                  const VgTensor *beta, float eps, VgTensor *y);

int vg_silu(VgCtx *ctx, const VgTensor *x, VgTensor *y);
int vg_gelu(VgCtx *ctx, const VgTensor *x, VgTensor *y);       /* exact, erf */
int vg_quick_gelu(VgCtx *ctx, const VgTensor *x, VgTensor *y); /* x * sigmoid(1.702 x) */
/* GEGLU: x [.., 2N] -> y [.., N] = x[.., :N] * gelu(x[.., N:]) (diffusers'
 * GEGLU: hidden, gate = proj(x).chunk(2)). Not in place. */
int vg_geglu(VgCtx *ctx, const VgTensor *x, VgTensor *y);
/* y = a * b element-wise, same shapes */
int vg_mul(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgTensor *y);

/*
 * Multi-head scaled dot-product attention with an online (chunked) softmax:
 * memory does not grow with Lq * Lk. q [B, Lq, H*D], k and v [B, Lk, H*D]
 * (heads interleaved as PyTorch's view(B, L, H, D)), y [B, Lq, H*D].
 * scale = 1/sqrt(D); causal masks keys after the query position
 * (key j is seen by query i when j <= i, as torch.tril). Scratch is
 * 256 x min(256, Lk) floats. y must not overlap q, k or v.
 */
int vg_attention(VgCtx *ctx, const VgTensor *q, const VgTensor *k, const VgTensor *v,
                 int heads, int causal, VgTensor *y);

/* Rows of a token-embedding table: ids [L] (int32) -> y [L, C]; table [V, C].
 * y may have leading dims ([1, L, C]) as long as it holds L rows of C.
 * An id outside [0, V) is an error. */
int vg_embedding(VgCtx *ctx, const VgTensor *table, const int32_t *ids, int n, VgTensor *y);

/* Name of the kernel set in use for these ops ("c", "avx2"). */
const char *vg_nn_isa(void);

#endif
