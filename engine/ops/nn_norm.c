/*
 * Layer norm and group norm with PyTorch's semantics: biased variance, eps
 * inside the square root. Statistics are two-pass (mean, then squared
 * deviations from it) with double accumulation of float partial sums, so
 * large groups (a VAE decoder's [1, 128, 512, 512] has 2M values per group)
 * and large means keep ~1e-7 relative accuracy.
 */
#include <math.h>

#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops/nn_common.h"
#include "engine/ops/nn_dsp.h"

typedef struct Norm {
    const VgNnDsp *dsp;
    const float *x, *gamma, *beta; /* gamma/beta widened, or NULL (1 / 0) */
    float *y;
    const float *ones, *zeros;     /* layer norm without affine */
    int64_t rows, c;               /* layer norm: rows of c */
    int64_t groups, cg, plane;     /* group norm: channels per group, H*W */
    float eps;
} Norm;

/* mean and 1/sqrt(var + eps) of x[0..n) */
static void stats(const VgNnDsp *dsp, const float *x, int64_t n, float eps, float *mean,
                  float *rstd)
{
    double s = 0.0, q = 0.0;
    dsp->sum_sq(x, n, 0.0f, &s, &q);
    const double m = s / (double)n;
    const float shift = (float)m;
    s = q = 0.0;
    dsp->sum_sq(x, n, shift, &s, &q);
    /* sum (x - shift)^2 / n = var + (m - shift)^2 */
    double var = q / (double)n - (m - shift) * (m - shift);
    if (var < 0.0)
        var = 0.0;
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(var + eps));
}

#define LN_ROWS_PER_JOB 16

static void ln_job(void *arg, int i, int tid)
{
    const Norm *a = arg;
    const int64_t r0 = (int64_t)i * LN_ROWS_PER_JOB, r1 = VG_MIN(r0 + LN_ROWS_PER_JOB, a->rows);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = a->x + r * a->c;
        float mean, rstd;
        stats(a->dsp, x, a->c, a->eps, &mean, &rstd);
        a->dsp->norm_row(a->y + r * a->c, x, a->c, mean, rstd, a->gamma ? a->gamma : a->ones,
                         a->beta ? a->beta : a->zeros);
    }
}

static int check_eps(VgCtx *ctx, const char *op, float eps)
{
    if (!(eps >= 0.0f) || !isfinite(eps)) {
        vg_log(ctx, VG_LOG_ERROR, "%s: eps %g must be finite and >= 0\n", op, eps);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int check_affine(VgCtx *ctx, const char *op, const VgTensor *gamma, const VgTensor *beta,
                        int64_t c)
{
    const VgTensor *p[2] = { gamma, beta };
    for (int i = 0; i < 2; i++)
        if (p[i] && (p[i]->ndim != 1 || p[i]->ne[0] != c)) {
            vg_log(ctx, VG_LOG_ERROR, "%s: %s has %lld values for %lld channels\n", op,
                   i ? "beta" : "gamma", (long long)(p[i]->ndim == 1 ? p[i]->ne[0] : -1),
                   (long long)c);
            return VG_ERR(EINVAL);
        }
    return 0;
}

int vg_layer_norm(VgCtx *ctx, const VgTensor *x, const VgTensor *gamma, const VgTensor *beta,
                  float eps, VgTensor *y)
{
    VgNnWeight g = { 0 }, b = { 0 };
    float *ones = NULL;
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "layer_norm", "input", x, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "layer_norm", "output", y, 0)) < 0 ||
        (ret = vg_ops_check_same(ctx, "layer_norm", "input", x, "output", y)) < 0 ||
        (ret = check_eps(ctx, "layer_norm", eps)) < 0)
        return ret;
    const int64_t c = x->ndim ? x->ne[x->ndim - 1] : 0;
    if (c < 1) {
        vg_log(ctx, VG_LOG_ERROR, "layer_norm: input has no last dimension to normalise\n");
        return VG_ERR(EINVAL);
    }
    if ((ret = check_affine(ctx, "layer_norm", gamma, beta, c)) < 0 ||
        (ret = vg_nn_weight(ctx, "layer_norm", "gamma", gamma, 1, 1, &g)) < 0 ||
        (ret = vg_nn_weight(ctx, "layer_norm", "beta", beta, 1, 1, &b)) < 0)
        goto end;
    if (!g.p || !b.p) {
        /* [2C]: ones then zeros */
        if (!(ones = vg_calloc(2 * (size_t)c, sizeof(float)))) {
            vg_log(ctx, VG_LOG_ERROR, "layer_norm: out of memory\n");
            ret = VG_ERR(ENOMEM);
            goto end;
        }
        for (int64_t i = 0; i < c; i++)
            ones[i] = 1.0f;
    }
    Norm a = { .dsp = vg_nn_dsp(), .x = x->data, .y = y->data, .gamma = g.p, .beta = b.p,
               .ones = ones, .zeros = ones ? ones + c : NULL, .rows = vg_tensor_nelem(x) / c,
               .c = c, .eps = eps };
    vg_pool_run(vg_ops_pool(ctx), (int)((a.rows + LN_ROWS_PER_JOB - 1) / LN_ROWS_PER_JOB),
                ln_job, &a);
end:
    vg_free(ones);
    vg_nn_weight_release(&g);
    vg_nn_weight_release(&b);
    return ret;
}

/* one (image, group) per job */
static void gn_job(void *arg, int i, int tid)
{
    const Norm *a = arg;
    const int64_t g = i % a->groups, len = a->cg * a->plane;
    const float *x = a->x + (int64_t)i * len;
    float *y = a->y + (int64_t)i * len;
    float mean, rstd;
    stats(a->dsp, x, len, a->eps, &mean, &rstd);
    for (int64_t k = 0; k < a->cg; k++) {
        const int64_t ch = g * a->cg + k;
        const float s = rstd * (a->gamma ? a->gamma[ch] : 1.0f);
        const float t = a->beta ? a->beta[ch] : 0.0f;
        a->dsp->affine(y + k * a->plane, x + k * a->plane, a->plane, mean, s, t);
    }
}

int vg_group_norm(VgCtx *ctx, const VgTensor *x, int groups, const VgTensor *gamma,
                  const VgTensor *beta, float eps, VgTensor *y)
{
    char bx[96];
    VgNnWeight g = { 0 }, b = { 0 };
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "group_norm", "input", x, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "group_norm", "output", y, 0)) < 0 ||
        (ret = vg_ops_check_same(ctx, "group_norm", "input", x, "output", y)) < 0 ||
        (ret = check_eps(ctx, "group_norm", eps)) < 0)
        return ret;
    if (x->ndim < 2 || groups < 1 || x->ne[1] % groups || x->ne[1] < 1 ||
        x->ne[0] * groups > INT32_MAX) {
        vg_log(ctx, VG_LOG_ERROR, "group_norm: input %s ([N, C, ...]) cannot be split into %d "
               "groups\n", vg_tensor_shape_str(x, bx, sizeof(bx)), groups);
        return VG_ERR(EINVAL);
    }
    const int64_t c = x->ne[1];
    int64_t plane = 1;
    for (int d = 2; d < x->ndim; d++)
        plane *= x->ne[d];
    if ((ret = check_affine(ctx, "group_norm", gamma, beta, c)) < 0 ||
        (ret = vg_nn_weight(ctx, "group_norm", "gamma", gamma, 1, 1, &g)) < 0 ||
        (ret = vg_nn_weight(ctx, "group_norm", "beta", beta, 1, 1, &b)) < 0)
        goto end;
    if (plane == 0)
        goto end;
    Norm a = { .dsp = vg_nn_dsp(), .x = x->data, .y = y->data, .gamma = g.p, .beta = b.p,
               .groups = groups, .cg = c / groups, .plane = plane, .eps = eps };
    vg_pool_run(vg_ops_pool(ctx), (int)(x->ne[0] * groups), gn_job, &a);
end:
    vg_nn_weight_release(&g);
    vg_nn_weight_release(&b);
    return ret;
}
