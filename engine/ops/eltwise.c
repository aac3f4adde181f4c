/* Element-wise ops: bias, activations, add, scale. */
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/dsp.h"

typedef struct EltArg {
    const VgOpsDsp *dsp;
    const float *x, *x2, *per_plane; /* per_plane: value per channel (bias / slope) */
    float *y;
    int64_t channels; /* per_plane index = plane % channels */
    int per_plane_len; /* 1 = shared value */
    float s;
} EltArg;

static void seg_relu(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    a->dsp->relu(a->y + start, a->x + start, len);
}

static void seg_leaky(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    a->dsp->leaky(a->y + start, a->x + start, len, a->s);
}

static void seg_prelu(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    const float slope = a->per_plane[a->per_plane_len == 1 ? 0 : plane % a->channels];
    a->dsp->leaky(a->y + start, a->x + start, len, slope);
}

static void seg_bias(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    a->dsp->bias_act[VG_DSP_ACT_NONE](a->y + start, a->x + start, len,
                                      a->per_plane[plane % a->channels], 0.0f);
}

static void seg_add(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    a->dsp->add(a->y + start, a->x + start, a->x2 + start, len);
}

/* add then ReLU on pieces small enough to stay in L1 between the two passes */
#define ADD_RELU_PIECE 2048
static void seg_add_relu(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    for (int64_t i = start; i < start + len; i += ADD_RELU_PIECE) {
        const int64_t n = VG_MIN(ADD_RELU_PIECE, start + len - i);
        a->dsp->add(a->y + i, a->x + i, a->x2 + i, n);
        a->dsp->relu(a->y + i, a->y + i, n);
    }
}

static void seg_scale(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const EltArg *a = arg;
    a->dsp->scale(a->y + start, a->x + start, len, a->s);
}

/* x and y: contiguous F32 of one shape. */
static int check_xy(VgCtx *ctx, const char *op, const VgTensor *x, const VgTensor *y, int ndim)
{
    int ret;
    if ((ret = vg_ops_check_f32(ctx, op, "input", x, ndim)) < 0 ||
        (ret = vg_ops_check_f32(ctx, op, "output", y, ndim)) < 0)
        return ret;
    return vg_ops_check_same(ctx, op, "input", x, "output", y);
}

static int check_channel_param(VgCtx *ctx, const char *op, const char *what,
                               const VgTensor *p, int64_t channels, int allow_shared)
{
    int ret;
    if ((ret = vg_ops_check_f32(ctx, op, what, p, 1)) < 0)
        return ret;
    if (p->ne[0] != channels && !(allow_shared && p->ne[0] == 1)) {
        vg_log(ctx, VG_LOG_ERROR, "%s: %s has %lld values for %lld channels\n", op, what,
               (long long)p->ne[0], (long long)channels);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_bias_add(VgCtx *ctx, const VgTensor *x, const VgTensor *b, VgTensor *y)
{
    int ret;
    if ((ret = check_xy(ctx, "bias_add", x, y, 4)) < 0 ||
        (ret = check_channel_param(ctx, "bias_add", "bias", b, x->ne[1], 0)) < 0)
        return ret;
    EltArg a = { .dsp = vg_ops_dsp(), .x = x->data, .y = y->data, .per_plane = b->data,
                 .channels = x->ne[1] };
    vg_ops_for_segments(ctx, x->ne[0] * x->ne[1], x->ne[2] * x->ne[3], seg_bias, &a);
    return 0;
}

int vg_relu(VgCtx *ctx, const VgTensor *x, VgTensor *y)
{
    int ret;
    if ((ret = check_xy(ctx, "relu", x, y, 0)) < 0)
        return ret;
    EltArg a = { .dsp = vg_ops_dsp(), .x = x->data, .y = y->data };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(x), seg_relu, &a);
    return 0;
}

int vg_leaky_relu(VgCtx *ctx, const VgTensor *x, float slope, VgTensor *y)
{
    int ret;
    if ((ret = check_xy(ctx, "leaky_relu", x, y, 0)) < 0)
        return ret;
    EltArg a = { .dsp = vg_ops_dsp(), .x = x->data, .y = y->data, .s = slope };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(x), seg_leaky, &a);
    return 0;
}

int vg_prelu(VgCtx *ctx, const VgTensor *x, const VgTensor *alpha, VgTensor *y)
{
    int ret;
    if ((ret = check_xy(ctx, "prelu", x, y, 4)) < 0 ||
        (ret = check_channel_param(ctx, "prelu", "alpha", alpha, x->ne[1], 1)) < 0)
        return ret;
    EltArg a = { .dsp = vg_ops_dsp(), .x = x->data, .y = y->data, .per_plane = alpha->data,
                 .channels = x->ne[1], .per_plane_len = (int)alpha->ne[0] };
    vg_ops_for_segments(ctx, x->ne[0] * x->ne[1], x->ne[2] * x->ne[3], seg_prelu, &a);
    return 0;
}

int vg_add(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgTensor *y)
{
    return vg_add_act(ctx, a, b, VG_ACT_NONE, y);
}

int vg_add_act(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgAct act, VgTensor *y)
{
    int ret;
    if (act != VG_ACT_NONE && act != VG_ACT_RELU) {
        vg_log(ctx, VG_LOG_ERROR, "add: activation %d not supported after an add\n", (int)act);
        return VG_ERR(EINVAL);
    }
    if ((ret = check_xy(ctx, "add", a, y, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "add", "second input", b, 0)) < 0 ||
        (ret = vg_ops_check_same(ctx, "add", "first input", a, "second input", b)) < 0)
        return ret;
    EltArg e = { .dsp = vg_ops_dsp(), .x = a->data, .x2 = b->data, .y = y->data };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(a), act == VG_ACT_RELU ? seg_add_relu : seg_add,
                        &e);
    return 0;
}

int vg_scale(VgCtx *ctx, const VgTensor *x, float s, VgTensor *y)
{
    int ret;
    if ((ret = check_xy(ctx, "scale", x, y, 0)) < 0)
        return ret;
    EltArg a = { .dsp = vg_ops_dsp(), .x = x->data, .y = y->data, .s = s };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(x), seg_scale, &a);
    return 0;
}

const char *vg_ops_isa(void)
{
    return vg_ops_dsp()->isa;
}
