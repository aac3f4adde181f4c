/*
 * Neural network ops on contiguous F32 tensors in [N, C, H, W] layout.
 * Each op checks shapes and returns VG_ERR(EINVAL) on a mismatch; outputs are
 * allocated by the caller with the shape the op documents, unless stated.
 * @ctx supplies threads and may be NULL (single thread).
 * In-place use (y == x) is allowed for the element-wise ops.
 */
#ifndef VG_ENGINE_OPS_H
#define VG_ENGINE_OPS_H

#include "visgen/visgen.h"
#include "engine/tensor.h"

typedef struct VgConvParams {
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right; /* zero padding */
    int dil_h, dil_w;
} VgConvParams;

/* stride 1, dilation 1, no padding */
void vg_conv_params_default(VgConvParams *p);
/* TF/Keras padding="same" for this kernel/stride/input size. */
void vg_conv_params_same(VgConvParams *p, int kh, int kw, int in_h, int in_w);
/* Output size for input @in with kernel @k along one axis. */
int vg_conv_out_size(int in, int k, int stride, int pad0, int pad1, int dil);

/* conv2d lowers its input one band of output rows at a time: the column
 * buffer, the padded input band and the band's output each stay within about
 * this many bytes (more only when a single row needs it), whatever the
 * picture size. Callers estimating memory count 3x this, not a per-pixel term. */
#define VG_CONV_BAND_BYTES ((size_t)6 << 20)

/*
 * y = conv2d(x, w) + b. x [N, Cin, H, W], w [Cout, Cin, kh, kw] (F32,
 * contiguous), b [Cout] or NULL, y [N, Cout, Ho, Wo]. GEMM on OpenBLAS.
 */
int vg_conv2d(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
              const VgConvParams *p, VgTensor *y);

/* Activation fused into vg_conv2d_act. */
typedef enum VgAct {
    VG_ACT_NONE,
    VG_ACT_RELU,
    VG_ACT_LEAKY, /* v > 0 ? v : slope * v */
    VG_ACT_PRELU, /* as LEAKY with slope alpha[c]; alpha [Cout] or [1] */
} VgAct;

/*
 * y = act(conv2d(x, w) + b) in one pass over y: the bias and activation run
 * while the GEMM result is still in cache. @slope is read for VG_ACT_LEAKY,
 * @alpha (F32 contiguous, remains with the caller) for VG_ACT_PRELU only.
 * Shapes as vg_conv2d. Not in place (y must not overlap x).
 */
int vg_conv2d_act(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
                  const VgConvParams *p, VgAct act, float slope, const VgTensor *alpha,
                  VgTensor *y);

/* y[n, c, h, w] = x[n, c, h, w] + b[c]; b [C] */
int vg_bias_add(VgCtx *ctx, const VgTensor *x, const VgTensor *b, VgTensor *y);
int vg_relu(VgCtx *ctx, const VgTensor *x, VgTensor *y);
int vg_leaky_relu(VgCtx *ctx, const VgTensor *x, float slope, VgTensor *y);
/* PReLU with one slope per channel: a [C] (or [1], shared). */
int vg_prelu(VgCtx *ctx, const VgTensor *x, const VgTensor *a, VgTensor *y);
/* y = a + b, same shapes */
int vg_add(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgTensor *y);
/* y = act(a + b) in one pass; act is VG_ACT_NONE or VG_ACT_RELU */
int vg_add_act(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgAct act, VgTensor *y);
/* y = x * s */
int vg_scale(VgCtx *ctx, const VgTensor *x, float s, VgTensor *y);
/* y = concat(xs[0..n), dim 1); every input [N, Ci, H, W], y [N, sum Ci, H, W] */
int vg_concat_channels(VgCtx *ctx, const VgTensor *const *xs, int n, VgTensor *y);
/* x [N, C, H, W] -> y [N, C, H*f, W*f] (nearest) */
int vg_upsample_nearest(VgCtx *ctx, const VgTensor *x, int f, VgTensor *y);

typedef enum VgD2SMode {
    VG_D2S_CRD, /* PyTorch pixel_shuffle: in channel c*r*r + i*r + j -> out c at (i, j) */
    VG_D2S_DCR, /* TF depth_to_space:    in channel (i*r + j)*C + c -> out c at (i, j) */
} VgD2SMode;
/* x [N, C*r*r, H, W] -> y [N, C, H*r, W*r] */
int vg_depth_to_space(VgCtx *ctx, const VgTensor *x, int r, VgD2SMode mode, VgTensor *y);

/* Name of the kernel set in use for the element-wise ops ("c", "avx2"). */
const char *vg_ops_isa(void);

#endif
