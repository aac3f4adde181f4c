/*
 * conv2d as GEMM on OpenBLAS: y[co, pixels] = W[co, ci*kh*kw] x col[ci*kh*kw, pixels].
 *
 * Three paths, all processing the output in horizontal bands so scratch
 * memory stays a few MB whatever the picture size:
 *  - 1x1, stride 1, no padding: x already is the column matrix; no copy.
 *  - stride 1 (any kernel, padding, dilation): the band's input rows are
 *    copied once into a zero-padded buffer of width Wp = W + pad_l + pad_r.
 *    Computing the output "wide" (Wp columns per row, the last kw-1 of them
 *    garbage) makes every column-matrix row one contiguous run of that
 *    buffer, so im2col is a memcpy per (ci, ky, kx). The epilogue drops the
 *    garbage columns while adding bias and activation.
 *  - any other stride: classic im2col with bounds checks; the GEMM writes
 *    straight into y.
 * The copies and the epilogue run on the ctx pool; the GEMM on OpenBLAS's
 * threads.
 */
#include <cblas.h>
#include <string.h>

#include "engine/mem.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/dsp.h"

/* VG_CONV_BAND_BYTES (ops.h) bounds the column buffer of one band: big
 * enough that the GEMM has a few thousand columns (OpenBLAS reaches its
 * peak), small enough to stay in L3 together with the band's output. */
#define CONV_BAND_BYTES VG_CONV_BAND_BYTES

void vg_conv_params_default(VgConvParams *p)
{
    memset(p, 0, sizeof(*p));
    p->stride_h = p->stride_w = 1;
    p->dil_h = p->dil_w = 1;
}

static void same_pad(int in, int k, int s, int d, int *p0, int *p1)
{
    const int out = (in + s - 1) / s;
    const int total = VG_MAX((out - 1) * s + (k - 1) * d + 1 - in, 0);
    *p0 = total / 2;
    *p1 = total - *p0;
}

void vg_conv_params_same(VgConvParams *p, int kh, int kw, int in_h, int in_w)
{
    /* keeps the caller's stride and dilation (0 = unset -> 1) */
    if (p->stride_h < 1) p->stride_h = 1;
    if (p->stride_w < 1) p->stride_w = 1;
    if (p->dil_h < 1) p->dil_h = 1;
    if (p->dil_w < 1) p->dil_w = 1;
    same_pad(in_h, kh, p->stride_h, p->dil_h, &p->pad_top, &p->pad_bottom);
    same_pad(in_w, kw, p->stride_w, p->dil_w, &p->pad_left, &p->pad_right);
}

int vg_conv_out_size(int in, int k, int stride, int pad0, int pad1, int dil)
{
    if (in < 1 || k < 1 || stride < 1 || dil < 1 || pad0 < 0 || pad1 < 0)
        return -1;
    const int64_t span = (int64_t)(k - 1) * dil + 1;
    const int64_t room = (int64_t)in + pad0 + pad1 - span;
    return room < 0 ? -1 : (int)(room / stride + 1);
}

typedef struct Conv {
    const VgOpsDsp *dsp;
    int64_t cin, h, w, cout, kh, kw, ho, wo, k; /* k = cin * kh * kw */
    VgConvParams p;
    const float *wt;    /* [cout, k] */
    const float *bias;  /* [cout] or NULL */
    int dsp_act;        /* VG_DSP_ACT_* */
    float slope;
    const float *alpha; /* PReLU slopes, [cout] or [1] */
    int64_t alpha_len;
    /* current image and band */
    const float *x;     /* [cin, h, w] */
    float *y;           /* [cout, ho, wo] */
    int64_t r0, nr;     /* output rows of the band */
    /* stride-1 path */
    int64_t wp, rows_in, nb; /* padded width, band input rows, wide columns */
    float *xb;          /* [cin, rows_in, wp] */
    float *col;         /* [k, nb] */
    float *out;         /* [cout, nb] (wide path) */
    float *tout;        /* [columns, cout] when cout < SMALL_COUT */
    int64_t tn, tldc;   /* columns and row stride of the pending transpose */
    float *tdst;
} Conv;

static inline float conv_slope(const Conv *c, int64_t co)
{
    return c->alpha ? c->alpha[c->alpha_len == 1 ? 0 : co] : c->slope;
}

static inline float conv_bias(const Conv *c, int64_t co)
{
    return c->bias ? c->bias[co] : 0.0f;
}

/* --- stride-1 path */

static void fill_band_input(void *arg, int ci, int tid)
{
    const Conv *c = arg;
    const int64_t pl = c->p.pad_left, pr = c->wp - c->w - pl;
    float *dst = c->xb + ci * c->rows_in * c->wp;
    for (int64_t t = 0; t < c->rows_in; t++, dst += c->wp) {
        const int64_t ih = c->r0 + t - c->p.pad_top;
        if (ih < 0 || ih >= c->h) {
            memset(dst, 0, (size_t)c->wp * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)pl * sizeof(float));
        memcpy(dst + pl, c->x + (ci * c->h + ih) * c->w, (size_t)c->w * sizeof(float));
        memset(dst + pl + c->w, 0, (size_t)pr * sizeof(float));
    }
}

static void fill_col_wide(void *arg, int ci, int tid)
{
    const Conv *c = arg;
    const float *src = c->xb + ci * c->rows_in * c->wp;
    float *dst = c->col + ci * c->kh * c->kw * c->nb;
    for (int64_t ky = 0; ky < c->kh; ky++)
        for (int64_t kx = 0; kx < c->kw; kx++, dst += c->nb)
            memcpy(dst, src + ky * c->p.dil_h * c->wp + kx * c->p.dil_w,
                   (size_t)c->nb * sizeof(float));
}

static void epilogue_wide(void *arg, int co, int tid)
{
    const Conv *c = arg;
    const float *src = c->out + co * c->nb;
    float *dst = c->y + (co * c->ho + c->r0) * c->wo;
    const float b = conv_bias(c, co), s = conv_slope(c, co);
    for (int64_t t = 0; t < c->nr; t++)
        c->dsp->bias_act[c->dsp_act](dst + t * c->wo, src + t * c->wp, c->wo, b, s);
}

/* --- general path */

static void fill_col_general(void *arg, int ci, int tid)
{
    const Conv *c = arg;
    const int64_t n = c->nr * c->wo;
    const float *src = c->x + ci * c->h * c->w;
    float *dst = c->col + ci * c->kh * c->kw * n;
    for (int64_t ky = 0; ky < c->kh; ky++)
        for (int64_t kx = 0; kx < c->kw; kx++) {
            for (int64_t t = 0; t < c->nr; t++) {
                const int64_t ih = (c->r0 + t) * c->p.stride_h - c->p.pad_top + ky * c->p.dil_h;
                if (ih < 0 || ih >= c->h) {
                    memset(dst, 0, (size_t)c->wo * sizeof(float));
                    dst += c->wo;
                    continue;
                }
                const float *row = src + ih * c->w;
                int64_t iw = kx * c->p.dil_w - c->p.pad_left;
                for (int64_t ox = 0; ox < c->wo; ox++, iw += c->p.stride_w)
                    *dst++ = iw >= 0 && iw < c->w ? row[iw] : 0.0f;
            }
        }
}

/* In place on y rows [r0, r0 + nr) of channel co. */
static void epilogue_inplace(void *arg, int co, int tid)
{
    const Conv *c = arg;
    float *dst = c->y + (co * c->ho + c->r0) * c->wo;
    c->dsp->bias_act[c->dsp_act](dst, dst, c->nr * c->wo, conv_bias(c, co), conv_slope(c, co));
}

/* OpenBLAS blocks the M dimension of sgemm by 16-24 rows in registers, so
 * a product with 3 or 4 output channels as M wastes most of every block
 * (5 GFLOPS measured for 64->4 and 48->3 convs). The transposed product,
 * out^T [n, cout] = col^T [n, k] x w^T [k, cout], puts the channels on N,
 * which the kernels block by 4-8; transposing a few channels back is cheap. */
#define SMALL_COUT 16

static void untranspose(void *arg, int co, int tid)
{
    const Conv *c = arg;
    const float *src = c->tout + co;
    float *dst = c->tdst + co * c->tldc;
    for (int64_t j = 0; j < c->tn; j++)
        dst[j] = src[j * c->cout];
}

static void gemm(Conv *c, VgPool *pool, int64_t n, const float *b, int64_t ldb, float *out,
                 int64_t ldc)
{
    if (!c->tout) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->cout, (int)n, (int)c->k,
                    1.0f, c->wt, (int)c->k, b, (int)ldb, 0.0f, out, (int)ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)n, (int)c->cout, (int)c->k,
                1.0f, b, (int)ldb, c->wt, (int)c->k, 0.0f, c->tout, (int)c->cout);
    c->tn = n;
    c->tdst = out;
    c->tldc = ldc;
    vg_pool_run(pool, (int)c->cout, untranspose, c);
}

/* Scratch for the transposed product of up to @n columns, if it is used. */
static int alloc_tout(Conv *c, int64_t n)
{
    if (c->cout >= SMALL_COUT)
        return 0;
    c->tout = vg_malloc(sizeof(float) * c->cout * n);
    return c->tout ? 0 : VG_ERR(ENOMEM);
}

static int rows_per_band(int64_t bytes_per_row, int64_t rows)
{
    int64_t nr = CONV_BAND_BYTES / VG_MAX(bytes_per_row, 1);
    return (int)VG_MAX(VG_MIN(nr, rows), 1);
}

static int conv_image(VgCtx *ctx, Conv *c)
{
    VgPool *pool = vg_ops_pool(ctx);
    const VgConvParams *p = &c->p;
    int ret = 0;

    if (c->kh == 1 && c->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && !p->pad_top &&
        !p->pad_left && !p->pad_bottom && !p->pad_right) {
        /* x [cin, h*w] is the column matrix; band only to keep the epilogue
         * in cache behind the GEMM */
        const int64_t hw = c->h * c->w;
        const int nr = rows_per_band(c->w * (c->cin + c->cout) * 4, c->ho);
        if ((ret = alloc_tout(c, nr * c->w)) < 0)
            goto end;
        for (c->r0 = 0; c->r0 < c->ho; c->r0 += c->nr) {
            c->nr = VG_MIN(nr, c->ho - c->r0);
            gemm(c, pool, c->nr * c->w, c->x + c->r0 * c->w, hw, c->y + c->r0 * c->w, hw);
            vg_pool_run(pool, (int)c->cout, epilogue_inplace, c);
        }
        goto end;
    }

    if (p->stride_h == 1 && p->stride_w == 1) {
        c->wp = c->w + p->pad_left + p->pad_right;
        const int nr = rows_per_band(c->wp * c->k * 4, c->ho);
        const int64_t span_h = (c->kh - 1) * p->dil_h;
        c->rows_in = nr + span_h;
        const int64_t nb_max = (nr - 1) * c->wp + c->wo;
        c->xb = vg_malloc(sizeof(float) * c->cin * c->rows_in * c->wp);
        c->col = vg_malloc(sizeof(float) * c->k * nb_max);
        c->out = vg_malloc(sizeof(float) * c->cout * nb_max);
        if (!c->xb || !c->col || !c->out || alloc_tout(c, nb_max) < 0) {
            ret = VG_ERR(ENOMEM);
            goto end;
        }
        for (c->r0 = 0; c->r0 < c->ho; c->r0 += c->nr) {
            c->nr = VG_MIN(nr, c->ho - c->r0);
            c->rows_in = c->nr + span_h;
            c->nb = (c->nr - 1) * c->wp + c->wo;
            vg_pool_run(pool, (int)c->cin, fill_band_input, c);
            vg_pool_run(pool, (int)c->cin, fill_col_wide, c);
            gemm(c, pool, c->nb, c->col, c->nb, c->out, c->nb);
            vg_pool_run(pool, (int)c->cout, epilogue_wide, c);
        }
        goto end;
    }

    const int nr = rows_per_band(c->wo * c->k * 4, c->ho);
    c->col = vg_malloc(sizeof(float) * c->k * nr * c->wo);
    if (!c->col || alloc_tout(c, nr * c->wo) < 0) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    for (c->r0 = 0; c->r0 < c->ho; c->r0 += c->nr) {
        c->nr = VG_MIN(nr, c->ho - c->r0);
        vg_pool_run(pool, (int)c->cin, fill_col_general, c);
        gemm(c, pool, c->nr * c->wo, c->col, c->nr * c->wo, c->y + c->r0 * c->wo, c->ho * c->wo);
        vg_pool_run(pool, (int)c->cout, epilogue_inplace, c);
    }
end:
    vg_freep(&c->xb);
    vg_freep(&c->col);
    vg_freep(&c->out);
    vg_freep(&c->tout);
    return ret;
}

static int check_params(VgCtx *ctx, const VgConvParams *p)
{
    if (p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 ||
        p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0 ||
        p->stride_h > 1024 || p->stride_w > 1024 || p->dil_h > 1024 || p->dil_w > 1024 ||
        p->pad_top > 4096 || p->pad_left > 4096 || p->pad_bottom > 4096 || p->pad_right > 4096) {
        vg_log(ctx, VG_LOG_ERROR, "conv2d: bad parameters stride %dx%d dilation %dx%d "
               "padding t%d l%d b%d r%d\n", p->stride_h, p->stride_w, p->dil_h, p->dil_w,
               p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_conv2d_act(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
                  const VgConvParams *p, VgAct act, float slope, const VgTensor *alpha,
                  VgTensor *y)
{
    int ret;
    char bx[96], bw[96], by[96];
    VgConvParams def;
    if (!p) {
        vg_conv_params_default(&def);
        p = &def;
    }
    if ((ret = vg_ops_check_f32(ctx, "conv2d", "input", x, 4)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "conv2d", "weight", w, 4)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "conv2d", "output", y, 4)) < 0 ||
        (b && (ret = vg_ops_check_f32(ctx, "conv2d", "bias", b, 1)) < 0) ||
        (ret = check_params(ctx, p)) < 0)
        return ret;
    const int64_t ho = vg_conv_out_size((int)VG_MIN(x->ne[2], INT32_MAX), (int)w->ne[2],
                                        p->stride_h, p->pad_top, p->pad_bottom, p->dil_h);
    const int64_t wo = vg_conv_out_size((int)VG_MIN(x->ne[3], INT32_MAX), (int)w->ne[3],
                                        p->stride_w, p->pad_left, p->pad_right, p->dil_w);
    const int64_t k = w->ne[1] * w->ne[2] * w->ne[3];
    if (w->ne[1] != x->ne[1] || x->ne[1] < 1 || w->ne[0] < 1 || ho < 1 || wo < 1 || y->ne[0] != x->ne[0] ||
        y->ne[1] != w->ne[0] || y->ne[2] != ho || y->ne[3] != wo || (b && b->ne[0] != w->ne[0]) ||
        k > INT32_MAX / 64 || ho * wo > INT32_MAX || x->ne[2] * x->ne[3] > INT32_MAX || x->ne[3] > INT32_MAX / 64 || w->ne[0] > INT32_MAX / 64) {
        vg_log(ctx, VG_LOG_ERROR, "conv2d: input %s, weight %s%s do not give output %s "
               "(expected [%lld, %lld, %lld, %lld])\n", vg_tensor_shape_str(x, bx, sizeof(bx)),
               vg_tensor_shape_str(w, bw, sizeof(bw)), b && b->ne[0] != w->ne[0] ?
               " (bias size differs)" : "", vg_tensor_shape_str(y, by, sizeof(by)),
               (long long)x->ne[0], (long long)w->ne[0], (long long)ho, (long long)wo);
        return VG_ERR(EINVAL);
    }
    if (x->data == y->data) {
        vg_log(ctx, VG_LOG_ERROR, "conv2d: cannot run in place\n");
        return VG_ERR(EINVAL);
    }
    Conv c = {
        .dsp = vg_ops_dsp(), .cin = x->ne[1], .h = x->ne[2], .w = x->ne[3], .cout = w->ne[0],
        .kh = w->ne[2], .kw = w->ne[3], .ho = ho, .wo = wo, .k = k, .p = *p,
        .wt = w->data, .bias = b ? b->data : NULL, .slope = slope,
    };
    switch (act) {
    case VG_ACT_NONE:  c.dsp_act = VG_DSP_ACT_NONE; break;
    case VG_ACT_RELU:  c.dsp_act = VG_DSP_ACT_RELU; break;
    case VG_ACT_LEAKY: c.dsp_act = VG_DSP_ACT_LEAKY; break;
    case VG_ACT_PRELU:
        if ((ret = vg_ops_check_f32(ctx, "conv2d", "PReLU alpha", alpha, 1)) < 0)
            return ret;
        if (alpha->ne[0] != c.cout && alpha->ne[0] != 1) {
            vg_log(ctx, VG_LOG_ERROR, "conv2d: PReLU alpha has %lld values for %lld channels\n",
                   (long long)alpha->ne[0], (long long)c.cout);
            return VG_ERR(EINVAL);
        }
        c.dsp_act = VG_DSP_ACT_LEAKY;
        c.alpha = alpha->data;
        c.alpha_len = alpha->ne[0];
        break;
    default:
        vg_log(ctx, VG_LOG_ERROR, "conv2d: unknown activation %d\n", (int)act);
        return VG_ERR(EINVAL);
    }
    for (int64_t n = 0; n < x->ne[0]; n++) {
        c.x = (const float *)x->data + n * c.cin * c.h * c.w;
        c.y = (float *)y->data + n * c.cout * ho * wo;
        if ((ret = conv_image(ctx, &c)) < 0) {
            vg_log(ctx, VG_LOG_ERROR, "conv2d: out of memory for scratch buffers\n");
            return ret;
        }
    }
    return 0;
}

int vg_conv2d(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
              const VgConvParams *p, VgTensor *y)
{
    return vg_conv2d_act(ctx, x, w, b, p, VG_ACT_NONE, 0.0f, NULL, y);
}
