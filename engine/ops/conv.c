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
 * Bands are the unit of parallelism: each ctx pool worker takes a band,
 * lowers it into its own scratch (sized once per call), runs its own
 * single-threaded sgemm (OpenBLAS runs 1 thread, see engine/blas.h) and the
 * bias / activation epilogue, so no thread waits on another between steps.
 * Bands keep at least MIN_BAND_COLS sgemm columns even past the scratch
 * budget (SD's UNet at 16x16 with K = 9 * 2560); outputs too small for one
 * such band per thread are split by output channel instead.
 *
 * 3x3 stride-1 layers with enough channels and pixels go to the Winograd
 * path instead (engine/ops/conv_winograd.c: 4x or 2.25x fewer multiplies).
 *
 * Fewer than VG_CONV_DIRECT_MAX_COUT output channels with stride 1: no
 * sgemm (M = Cout wastes OpenBLAS's 16-24 row register blocks); the dsp
 * conv_direct kernel computes each output row straight from the padded
 * band input (or from x itself for a 1x1 conv).
 */
#include <cblas.h>
#include <string.h>

#include "engine/mem.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/conv_winograd.h"
#include "engine/ops/dsp.h"

/* VG_CONV_BAND_BYTES (ops.h) bounds the scratch of all bands in flight
 * (split evenly over the threads): big enough that each GEMM has a thousand
 * columns or more, small enough to stay in L3 with the bands' outputs. */
#define CONV_BAND_BYTES VG_CONV_BAND_BYTES
/* columns per conv_direct call: the band's input rows of one chunk stay in
 * L2 while each output row reads them (a multiple of 96 keeps the AVX2
 * kernel's 16/24/32-column blocks full) */
#define DIRECT_CHUNK 192

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

enum { CONV_1X1, CONV_WIDE, CONV_GENERAL };

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
    int mode;           /* CONV_* */
    int direct;         /* conv_direct instead of im2col + sgemm */
    int64_t band_rows;  /* output rows per band (the last may have fewer) */
    int64_t mchunk;     /* output channels per job (all but the last) */
    int mchunks;        /* jobs per band, each on its own channels */
    int64_t wp, span_h; /* padded width, extra input rows of a band (wide path) */
    float *scratch;     /* per thread: [per_thread] floats */
    int64_t per_thread;
    size_t scratch_n;   /* floats in scratch */
    /* current image */
    const float *x;     /* [cin, h, w] */
    float *y;           /* [cout, ho, wo] */
} Conv;

/* One band of output rows, private to the thread running it. */
typedef struct Band {
    int64_t r0, nr;     /* output rows */
    int64_t co0, nco;   /* output channels */
    int64_t rows_in, nb; /* wide path: input rows, wide columns */
    float *xb;          /* [cin, rows_in, wp] */
    float *col;         /* [k, nb] or [k, nr * wo] */
    float *out;         /* [cout, nb] (wide path) */
} Band;

static inline float conv_slope(const Conv *c, int64_t co)
{
    return c->alpha ? c->alpha[c->alpha_len == 1 ? 0 : co] : c->slope;
}

static inline float conv_bias(const Conv *c, int64_t co)
{
    return c->bias ? c->bias[co] : 0.0f;
}

/* --- stride-1 path */

static void fill_band_input(const Conv *c, const Band *b)
{
    const int64_t pl = c->p.pad_left, pr = c->wp - c->w - pl;
    float *dst = b->xb;
    for (int64_t ci = 0; ci < c->cin; ci++)
        for (int64_t t = 0; t < b->rows_in; t++, dst += c->wp) {
            const int64_t ih = b->r0 + t - c->p.pad_top;
            if (ih < 0 || ih >= c->h) {
                memset(dst, 0, (size_t)c->wp * sizeof(float));
                continue;
            }
            memset(dst, 0, (size_t)pl * sizeof(float));
            memcpy(dst + pl, c->x + (ci * c->h + ih) * c->w, (size_t)c->w * sizeof(float));
            memset(dst + pl + c->w, 0, (size_t)pr * sizeof(float));
        }
}

static void fill_col_wide(const Conv *c, const Band *b)
{
    float *dst = b->col;
    for (int64_t ci = 0; ci < c->cin; ci++) {
        const float *src = b->xb + ci * b->rows_in * c->wp;
        for (int64_t ky = 0; ky < c->kh; ky++)
            for (int64_t kx = 0; kx < c->kw; kx++, dst += b->nb)
                memcpy(dst, src + ky * c->p.dil_h * c->wp + kx * c->p.dil_w,
                       (size_t)b->nb * sizeof(float));
    }
}

static void epilogue_wide(const Conv *c, const Band *b)
{
    for (int64_t co = b->co0; co < b->co0 + b->nco; co++) {
        const float *src = b->out + co * b->nb;
        float *dst = c->y + (co * c->ho + b->r0) * c->wo;
        const float bias = conv_bias(c, co), s = conv_slope(c, co);
        for (int64_t t = 0; t < b->nr; t++)
            c->dsp->bias_act[c->dsp_act](dst + t * c->wo, src + t * c->wp, c->wo, bias, s);
    }
}

/* --- general path */

static void fill_col_general(const Conv *c, const Band *b)
{
    float *dst = b->col;
    for (int64_t ci = 0; ci < c->cin; ci++) {
        const float *src = c->x + ci * c->h * c->w;
        for (int64_t ky = 0; ky < c->kh; ky++)
            for (int64_t kx = 0; kx < c->kw; kx++) {
                for (int64_t t = 0; t < b->nr; t++) {
                    const int64_t ih = (b->r0 + t) * c->p.stride_h - c->p.pad_top +
                                       ky * c->p.dil_h;
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
}

/* In place on y rows [r0, r0 + nr) of every channel. */
static void epilogue_inplace(const Conv *c, const Band *b)
{
    for (int64_t co = b->co0; co < b->co0 + b->nco; co++) {
        float *dst = c->y + (co * c->ho + b->r0) * c->wo;
        c->dsp->bias_act[c->dsp_act](dst, dst, b->nr * c->wo, conv_bias(c, co),
                                     conv_slope(c, co));
    }
}

/* out rows [co0, co0 + nco) = W [co0.., k] x cols [k, n] (row stride ldb);
 * @out points at channel 0 */
static void gemm(const Conv *c, const Band *b, int64_t n, const float *cols, int64_t ldb,
                 float *out, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b->nco, (int)n, (int)c->k,
                1.0f, c->wt + b->co0 * c->k, (int)c->k, cols, (int)ldb, 0.0f,
                out + b->co0 * ldc, (int)ldc);
}

static void band_job(void *arg, int i, int tid)
{
    const Conv *c = arg;
    const int64_t hw = c->h * c->w, howo = c->ho * c->wo;
    float *s = c->scratch ? c->scratch + tid * c->per_thread : NULL;
    const int mc = i % c->mchunks;
    Band b = { .r0 = (int64_t)(i / c->mchunks) * c->band_rows, .co0 = mc * c->mchunk };
    b.nr = VG_MIN(c->band_rows, c->ho - b.r0);
    b.nco = VG_MIN(c->mchunk, c->cout - b.co0);

    switch (c->mode) {
    case CONV_1X1:
        /* x [cin, h*w] is the column matrix; rows r0.. are contiguous */
        if (c->direct) {
            const VgConvDirectArgs a = { c->x + b.r0 * c->w, hw, 0, c->wt, (int)c->cout,
                                         (int)c->cin, 1, 1, 1, 1 };
            c->dsp->conv_direct(c->y + b.r0 * c->w, howo, &a, b.nr * c->w);
        } else {
            gemm(c, &b, b.nr * c->w, c->x + b.r0 * c->w, hw, c->y + b.r0 * c->w, hw);
        }
        epilogue_inplace(c, &b);
        break;
    case CONV_WIDE:
        b.rows_in = b.nr + c->span_h;
        b.nb = (b.nr - 1) * c->wp + c->wo;
        b.xb = s;
        fill_band_input(c, &b);
        if (c->direct) {
            /* output row t reads input rows t .. t + span_h of the band */
            VgConvDirectArgs a = { NULL, b.rows_in * c->wp, c->wp, c->wt, (int)c->cout,
                                   (int)c->cin, (int)c->kh, (int)c->kw, c->p.dil_h,
                                   c->p.dil_w };
            /* column chunks so that the band's rows of a chunk stay in L2
             * while every output row of the band reads them */
            for (int64_t j0 = 0; j0 < c->wo; j0 += DIRECT_CHUNK) {
                const int64_t n = VG_MIN(DIRECT_CHUNK, c->wo - j0);
                for (int64_t t = 0; t < b.nr; t++) {
                    a.x = b.xb + t * c->wp + j0;
                    c->dsp->conv_direct(c->y + (b.r0 + t) * c->wo + j0, howo, &a, n);
                }
            }
            epilogue_inplace(c, &b);
            break;
        }
        b.col = b.xb + c->cin * (c->band_rows + c->span_h) * c->wp;
        b.out = b.col + c->k * ((c->band_rows - 1) * c->wp + c->wo);
        fill_col_wide(c, &b);
        gemm(c, &b, b.nb, b.col, b.nb, b.out, b.nb);
        epilogue_wide(c, &b);
        break;
    default:
        b.col = s;
        fill_col_general(c, &b);
        gemm(c, &b, b.nr * c->wo, b.col, b.nr * c->wo, c->y + b.r0 * c->wo, howo);
        epilogue_inplace(c, &b);
        break;
    }
}

/* Output rows per band: the scratch of one band fits VG_CONV_BAND_BYTES
 * split over the threads, and every thread gets at least one band. */
static int64_t rows_per_band(int64_t bytes_per_row, int64_t rows, int threads)
{
    const int64_t budget = CONV_BAND_BYTES / threads;
    int64_t nr = budget / VG_MAX(bytes_per_row, 1);
    nr = VG_MIN(nr, (rows + threads - 1) / threads);
    return VG_MAX(VG_MIN(nr, rows), 1);
}

/*
 * sgemm bands narrower than this re-pack the whole weight matrix for few
 * columns: with K = 9 * 2560 (SD's UNet at 16x16) a band of one output row
 * (18 columns) ran at a third of the sgemm's speed.
 */
#define MIN_BAND_COLS 256

/* Bands of at least MIN_BAND_COLS columns (of @width per row) where the
 * rows allow, still one band per thread; when the whole output is narrower
 * than that per thread, one band and the threads split the output channels
 * (each lowers the same band: cheap next to an sgemm with K in the
 * thousands, and each packs only its share of the weights). */
static void widen_bands(Conv *c, int64_t width, int threads)
{
    c->mchunks = 1;
    c->mchunk = c->cout;
    if (c->direct)
        return;
    if (threads > 1 && c->ho * width < MIN_BAND_COLS * threads && c->cout >= 32 * threads) {
        c->band_rows = c->ho;
        c->mchunk = ((c->cout + threads - 1) / threads + 15) / 16 * 16;
        c->mchunks = (int)((c->cout + c->mchunk - 1) / c->mchunk);
        return;
    }
    const int64_t want = VG_MIN((MIN_BAND_COLS + width - 1) / width,
                                (c->ho + threads - 1) / threads);
    c->band_rows = VG_MAX(c->band_rows, VG_MIN(want, c->ho));
}

/* Plans the bands and allocates the per-thread scratch (once per call). */
static int conv_plan(VgPool *pool, Conv *c)
{
    const VgConvParams *p = &c->p;
    const int threads = vg_pool_threads(pool);
    const int stride1 = p->stride_h == 1 && p->stride_w == 1;
    c->direct = stride1 && c->cout < VG_CONV_DIRECT_MAX_COUT;
    if (c->kh == 1 && c->kw == 1 && stride1 && !p->pad_top && !p->pad_left &&
        !p->pad_bottom && !p->pad_right) {
        c->mode = CONV_1X1;
        c->band_rows = rows_per_band(c->w * (c->cin + c->cout) * 4, c->ho, threads);
        widen_bands(c, c->w, threads);
        c->per_thread = 0;
    } else if (stride1) {
        c->mode = CONV_WIDE;
        c->wp = c->w + p->pad_left + p->pad_right;
        c->span_h = (c->kh - 1) * p->dil_h;
        const int64_t row_bytes = c->direct ? c->cin * c->wp * 4
                                            : (c->cin + c->k + c->cout) * c->wp * 4;
        c->band_rows = rows_per_band(row_bytes, c->ho, threads);
        widen_bands(c, c->wp, threads);
        const int64_t nb_max = (c->band_rows - 1) * c->wp + c->wo;
        c->per_thread = c->cin * (c->band_rows + c->span_h) * c->wp;
        if (!c->direct)
            c->per_thread += (c->k + c->cout) * nb_max;
    } else {
        c->mode = CONV_GENERAL;
        c->band_rows = rows_per_band(c->wo * c->k * 4, c->ho, threads);
        widen_bands(c, c->wo, threads);
        c->per_thread = c->k * c->band_rows * c->wo;
    }
    if (!c->per_thread)
        return 0;
    c->scratch_n = (size_t)(c->per_thread * threads);
    c->scratch = vg_conv_scratch_get(c->scratch_n);
    return c->scratch ? 0 : VG_ERR(ENOMEM);
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
    VgPool *pool = vg_ops_pool(ctx);
    const int wino = vg_conv_winograd_wanted(c.cin, c.cout, ho, wo, c.kh, c.kw, p->stride_h,
                                             p->stride_w, p->dil_h, p->dil_w);
    if (wino) {
        const VgWinoConv wc = {
            .dsp = c.dsp, .m = wino, .n = x->ne[0], .cin = c.cin, .h = c.h, .w = c.w,
            .cout = c.cout, .ho = ho, .wo = wo, .pad_top = p->pad_top, .pad_left = p->pad_left, .x = x->data,
            .wt = c.wt, .bias = c.bias, .dsp_act = c.dsp_act, .slope = c.slope,
            .alpha = c.alpha, .alpha_len = c.alpha_len, .y = y->data,
        };
        if ((ret = vg_conv_winograd(pool, &wc)) < 0)
            vg_log(ctx, VG_LOG_ERROR, "conv2d: out of memory for Winograd buffers\n");
        return ret;
    }
    if ((ret = conv_plan(pool, &c)) < 0) {
        vg_log(ctx, VG_LOG_ERROR, "conv2d: out of memory for scratch buffers\n");
        return ret;
    }
    const int bands = (int)((ho + c.band_rows - 1) / c.band_rows);
    for (int64_t n = 0; n < x->ne[0]; n++) {
        c.x = (const float *)x->data + n * c.cin * c.h * c.w;
        c.y = (float *)y->data + n * c.cout * ho * wo;
        vg_pool_run(pool, bands * c.mchunks, band_job, &c);
    }
    vg_conv_scratch_put(c.scratch, c.scratch_n);
    return 0;
}

int vg_conv2d(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
              const VgConvParams *p, VgTensor *y)
{
    return vg_conv2d_act(ctx, x, w, b, p, VG_ACT_NONE, 0.0f, NULL, y);
}
