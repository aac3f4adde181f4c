/* Ops that move data without arithmetic: concat, nearest upsample, depth_to_space. */
#include <stdlib.h>
#include <string.h>

#include "engine/ops.h"
#include "engine/ops/common.h"

typedef struct ConcatArg {
    const VgTensor *const *xs;
    int n_in;
    VgTensor *y;
    const int64_t *c_off; /* output channel where input i starts */
} ConcatArg;

static void concat_job(void *arg, int job, int tid)
{
    const ConcatArg *a = arg;
    const int n = job / a->n_in, i = job % a->n_in;
    const VgTensor *x = a->xs[i];
    const int64_t plane = x->ne[2] * x->ne[3];
    const float *src = (const float *)x->data + n * x->ne[1] * plane;
    float *dst = (float *)a->y->data + (n * a->y->ne[1] + a->c_off[i]) * plane;
    memcpy(dst, src, (size_t)(x->ne[1] * plane) * sizeof(float));
}

int vg_concat_channels(VgCtx *ctx, const VgTensor *const *xs, int n, VgTensor *y)
{
    int ret = 0;
    char bx[96], by[96];
    int64_t *c_off = NULL;
    if ((ret = vg_ops_check_f32(ctx, "concat", "output", y, 4)) < 0)
        return ret;
    if (n < 1 || !xs) {
        vg_log(ctx, VG_LOG_ERROR, "concat: needs at least one input, got %d\n", n);
        return VG_ERR(EINVAL);
    }
    if (!(c_off = malloc(sizeof(*c_off) * n)))
        return VG_ERR(ENOMEM);
    int64_t c = 0;
    for (int i = 0; i < n; i++) {
        if ((ret = vg_ops_check_f32(ctx, "concat", "an input", xs[i], 4)) < 0)
            goto end;
        if (xs[i]->ne[0] != y->ne[0] || xs[i]->ne[2] != y->ne[2] || xs[i]->ne[3] != y->ne[3] ||
            xs[i] == y || xs[i]->data == y->data) {
            vg_log(ctx, VG_LOG_ERROR, "concat: input %d %s does not fit output %s\n", i,
                   vg_tensor_shape_str(xs[i], bx, sizeof(bx)),
                   vg_tensor_shape_str(y, by, sizeof(by)));
            ret = VG_ERR(EINVAL);
            goto end;
        }
        c_off[i] = c;
        c += xs[i]->ne[1];
    }
    if (c != y->ne[1]) {
        vg_log(ctx, VG_LOG_ERROR, "concat: inputs have %lld channels in all, output %s\n",
               (long long)c, vg_tensor_shape_str(y, by, sizeof(by)));
        ret = VG_ERR(EINVAL);
        goto end;
    }
    ConcatArg a = { xs, n, y, c_off };
    vg_pool_run(vg_ops_pool(ctx), (int)(y->ne[0] * n), concat_job, &a);
end:
    free(c_off);
    return ret;
}

typedef struct UpArg {
    const float *x;
    float *y;
    int64_t h, w;
    int f;
} UpArg;

static void upsample_job(void *arg, int plane, int tid)
{
    const UpArg *a = arg;
    const int64_t wo = a->w * a->f;
    const float *src = a->x + plane * a->h * a->w;
    float *dst = a->y + plane * a->h * a->f * wo;
    for (int64_t h = 0; h < a->h; h++, src += a->w) {
        float *row = dst + h * a->f * wo; /* first of the f copies */
        for (int64_t w = 0; w < a->w; w++)
            for (int j = 0; j < a->f; j++)
                row[w * a->f + j] = src[w];
        for (int i = 1; i < a->f; i++)
            memcpy(row + i * wo, row, (size_t)wo * sizeof(float));
    }
}

int vg_upsample_nearest(VgCtx *ctx, const VgTensor *x, int f, VgTensor *y)
{
    int ret;
    char bx[96], by[96];
    if ((ret = vg_ops_check_f32(ctx, "upsample", "input", x, 4)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "upsample", "output", y, 4)) < 0)
        return ret;
    if (f < 1 || f > 64) {
        vg_log(ctx, VG_LOG_ERROR, "upsample: factor %d out of range 1..64\n", f);
        return VG_ERR(EINVAL);
    }
    if (y->ne[0] != x->ne[0] || y->ne[1] != x->ne[1] || y->ne[2] != x->ne[2] * f ||
        y->ne[3] != x->ne[3] * f || x->data == y->data) {
        vg_log(ctx, VG_LOG_ERROR, "upsample: output %s is not input %s times %d\n",
               vg_tensor_shape_str(y, by, sizeof(by)), vg_tensor_shape_str(x, bx, sizeof(bx)), f);
        return VG_ERR(EINVAL);
    }
    UpArg a = { x->data, y->data, x->ne[2], x->ne[3], f };
    vg_pool_run(vg_ops_pool(ctx), (int)(x->ne[0] * x->ne[1]), upsample_job, &a);
    return 0;
}

typedef struct D2SArg {
    const float *x;
    float *y;
    int64_t c, h, w; /* output channels, input height/width */
    int r;
    VgD2SMode mode;
} D2SArg;

static void d2s_job(void *arg, int plane, int tid)
{
    const D2SArg *a = arg;
    const int64_t n = plane / a->c, c = plane % a->c, r = a->r, hw = a->h * a->w;
    const int64_t wo = a->w * r;
    const float *xn = a->x + n * a->c * r * r * hw;
    float *dst = a->y + plane * a->h * r * wo;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++) {
            const int64_t ch = a->mode == VG_D2S_CRD ? c * r * r + i * r + j
                                                     : (i * r + j) * a->c + c;
            const float *src = xn + ch * hw;
            for (int64_t h = 0; h < a->h; h++) {
                float *row = dst + (h * r + i) * wo + j;
                for (int64_t w = 0; w < a->w; w++)
                    row[w * r] = src[h * a->w + w];
            }
        }
}

int vg_depth_to_space(VgCtx *ctx, const VgTensor *x, int r, VgD2SMode mode, VgTensor *y)
{
    int ret;
    char bx[96], by[96];
    if ((ret = vg_ops_check_f32(ctx, "depth_to_space", "input", x, 4)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "depth_to_space", "output", y, 4)) < 0)
        return ret;
    if (r < 1 || r > 64 || (mode != VG_D2S_CRD && mode != VG_D2S_DCR)) {
        vg_log(ctx, VG_LOG_ERROR, "depth_to_space: block %d / mode %d invalid\n", r, (int)mode);
        return VG_ERR(EINVAL);
    }
    if (y->ne[0] != x->ne[0] || y->ne[1] * r * r != x->ne[1] || y->ne[2] != x->ne[2] * r ||
        y->ne[3] != x->ne[3] * r || x->data == y->data) {
        vg_log(ctx, VG_LOG_ERROR, "depth_to_space: input %s does not give output %s with block %d\n",
               vg_tensor_shape_str(x, bx, sizeof(bx)), vg_tensor_shape_str(y, by, sizeof(by)), r);
        return VG_ERR(EINVAL);
    }
    D2SArg a = { x->data, y->data, y->ne[1], x->ne[2], x->ne[3], r, mode };
    vg_pool_run(vg_ops_pool(ctx), (int)(y->ne[0] * y->ne[1]), d2s_job, &a);
    return 0;
}
