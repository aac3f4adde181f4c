/*
 * engine/nn.h: weight widening, linear, conv2d with any weight dtype,
 * embedding and the element-wise ops. Norms are in nn_norm.c, attention in
 * nn_attn.c.
 *
 * Weights stay in their stored dtype (F16 for most checkpoints) and are
 * widened into a per-call vg_malloc buffer: a UNet's largest layer widens to
 * ~50 MB, allocated and freed around its GEMM, so peak memory holds one
 * widened layer at a time and never a second copy of the model.
 */
#include <cblas.h>
#include <string.h>
#include <time.h>

#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops/dsp.h"
#include "engine/ops/nn_common.h"
#include "engine/ops/nn_dsp.h"

/* ------------------------------------------------------------ widening */

#define WIDEN_CHUNK (64 * 1024)
/* Weights from this many values up are widened into the context scratch. */
#define SCRATCH_MIN (64 * 1024)
/* Weights from this many values up (16 MB widened, half the 32 MB L3 of the
 * EPYC this was tuned on) are widened with streaming stores: they leave the
 * cache before their GEMM reads them anyway. */
#define STREAM_MIN ((int64_t)4 << 20)

typedef struct WidenJob {
    const VgNnDsp *dsp;
    const uint16_t *src;
    float *dst;
    int64_t n;
    int bf16;
} WidenJob;

static void widen_job(void *arg, int i, int tid)
{
    const WidenJob *j = arg;
    const int64_t s = (int64_t)i * WIDEN_CHUNK, len = VG_MIN(WIDEN_CHUNK, j->n - s);
    if (j->bf16)
        j->dsp->bf16_to_f32(j->dst + s, j->src + s, len);
    else if (j->n >= STREAM_MIN)
        j->dsp->f16_to_f32_stream(j->dst + s, j->src + s, len);
    else
        j->dsp->f16_to_f32(j->dst + s, j->src + s, len);
}

int vg_nn_weight(VgCtx *ctx, const char *op, const char *what, const VgTensor *t, int ndim,
                 int optional, VgNnWeight *out)
{
    char buf[96];
    memset(out, 0, sizeof(*out));
    if (!t && optional)
        return 0;
    if (!t || !t->data) {
        vg_log(ctx, VG_LOG_ERROR, "%s: %s is missing\n", op, what);
        return VG_ERR(EINVAL);
    }
    if ((t->dtype != VG_DT_F32 && t->dtype != VG_DT_F16 && t->dtype != VG_DT_BF16) ||
        (ndim && t->ndim != ndim)) {
        vg_log(ctx, VG_LOG_ERROR, "%s: %s must be an F32/F16/BF16 tensor%s, got %s %s\n", op,
               what, ndim == 1 ? " [C]" : ndim == 2 ? " [N, K]" : ndim == 4 ?
               " [O, I, kh, kw]" : "", vg_dtype_name(t->dtype),
               vg_tensor_shape_str(t, buf, sizeof(buf)));
        return VG_ERR(EINVAL);
    }
    out->n = vg_tensor_nelem(t);
    if (t->dtype == VG_DT_F32 && vg_tensor_is_contiguous(t)) {
        out->p = t->data;
        return 0;
    }
    if (!vg_tensor_is_contiguous(t)) {
        VgTensor tmp;
        int ret = vg_tensor_to_f32(t, &tmp);
        if (ret < 0) {
            vg_log(ctx, VG_LOG_ERROR, "%s: cannot widen %s\n", op, what);
            return ret;
        }
        /* tmp.alloc is the 64-byte aligned vg_malloc block behind tmp.data */
        out->owned = tmp.alloc;
        out->p = tmp.data;
        return 0;
    }
    float *dst;
    if (ctx && out->n >= SCRATCH_MIN && !ctx->wscratch_busy) {
        if ((size_t)out->n > ctx->wscratch_n) {
            vg_freep(&ctx->wscratch);
            ctx->wscratch_n = 0;
            if (!(ctx->wscratch = vg_malloc(sizeof(float) * (size_t)out->n))) {
                vg_log(ctx, VG_LOG_ERROR, "%s: out of memory widening %s (%lld values)\n", op,
                       what, (long long)out->n);
                return VG_ERR(ENOMEM);
            }
            ctx->wscratch_n = (size_t)out->n;
        }
        dst = ctx->wscratch;
        ctx->wscratch_busy = 1;
        out->ctx = ctx;
    } else {
        if (!(dst = out->owned = vg_malloc(sizeof(float) * (size_t)VG_MAX(out->n, 1)))) {
            vg_log(ctx, VG_LOG_ERROR, "%s: out of memory widening %s (%lld values)\n", op, what,
                   (long long)out->n);
            return VG_ERR(ENOMEM);
        }
    }
    WidenJob j = { vg_nn_dsp(), t->data, dst, out->n, t->dtype == VG_DT_BF16 };
    const int64_t jobs = (out->n + WIDEN_CHUNK - 1) / WIDEN_CHUNK;
    struct timespec t0, t1;
    if (ctx && ctx->prof_widen_s)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    if (jobs > 1)
        vg_pool_run(vg_ops_pool(ctx), (int)jobs, widen_job, &j);
    else if (jobs == 1)
        widen_job(&j, 0, 0);
    if (ctx && ctx->prof_widen_s) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        *ctx->prof_widen_s += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        *ctx->prof_widen_n += out->n;
    }
    out->p = dst;
    return 0;
}

void vg_nn_weight_release(VgNnWeight *w)
{
    vg_freep(&w->owned);
    if (w->ctx)
        w->ctx->wscratch_busy = 0;
    w->ctx = NULL;
    w->p = NULL;
}

/* --------------------------------------------------------------- linear */

/* y [M, N] = x [M, K] w [N, K]^T + b, split over the pool: by column blocks
 * when M < N / 2 or M is small, else by row blocks; each job starts its
 * output at the bias and runs its own single-threaded sgemm. */
typedef struct Linear {
    const VgOpsDsp *dsp;
    const float *x, *w, *b;
    float *y;
    int64_t m, n, k;
    int64_t mb, nb;     /* rows / columns per job; one of them is the whole */
} Linear;

#define ROWS_PER_JOB 16   /* element-wise jobs below */
#define LIN_MIN_ROWS 16  /* rows per job below which N is split instead */
#define LIN_MIN_COLS 64

static void linear_job(void *arg, int i, int tid)
{
    const Linear *a = arg;
    const int64_t jobs_n = (a->n + a->nb - 1) / a->nb;
    const int64_t r0 = (i / jobs_n) * a->mb, c0 = (i % jobs_n) * a->nb;
    const int64_t mr = VG_MIN(a->mb, a->m - r0), nc = VG_MIN(a->nb, a->n - c0);
    float *y = a->y + r0 * a->n + c0;
    /* y starts as the bias (or zero) and the sgemm accumulates (beta 1): for beta 0
     * OpenBLAS clears y in a scalar pass of its own, slower than memset, and the
     * bias would be one more pass */
    for (int64_t r = 0; r < mr; r++) {
        if (a->b)
            memcpy(y + r * a->n, a->b + c0, (size_t)nc * sizeof(float));
        else
            memset(y + r * a->n, 0, (size_t)nc * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mr, (int)nc, (int)a->k, 1.0f,
                a->x + r0 * a->k, (int)a->k, a->w + c0 * a->k, (int)a->k, 1.0f, y, (int)a->n);
}

int vg_linear(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b, VgTensor *y)
{
    char bx[96], bw[96], by[96];
    VgNnWeight ww = { 0 }, wb = { 0 };
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "linear", "input", x, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "linear", "output", y, 0)) < 0)
        return ret;
    /* a 1x1 conv weight [N, K, 1, 1] is accepted as [N, K] */
    const int w_ok = w && (w->ndim == 2 || (w->ndim == 4 && w->ne[2] == 1 && w->ne[3] == 1));
    const int64_t k = x->ne[x->ndim - 1];
    const int64_t n = w_ok ? w->ne[0] : 0;
    const int64_t m = k > 0 ? vg_tensor_nelem(x) / k : 0;
    int shape_ok = w_ok && x->ndim >= 1 && y->ndim == x->ndim && w->ne[1] == k && k > 0 &&
                   n > 0 && y->ne[y->ndim - 1] == n && (!b || (b->ndim == 1 && b->ne[0] == n)) &&
                   m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX;
    for (int d = 0; shape_ok && d < x->ndim - 1; d++)
        shape_ok = x->ne[d] == y->ne[d];
    if (!shape_ok) {
        vg_log(ctx, VG_LOG_ERROR, "linear: input %s, weight %s%s do not give output %s\n",
               vg_tensor_shape_str(x, bx, sizeof(bx)),
               w ? vg_tensor_shape_str(w, bw, sizeof(bw)) : "(none)",
               b && (b->ndim != 1 || !w_ok || b->ne[0] != n) ? " (bias size differs)" : "",
               vg_tensor_shape_str(y, by, sizeof(by)));
        return VG_ERR(EINVAL);
    }
    if (x->data == y->data) {
        vg_log(ctx, VG_LOG_ERROR, "linear: cannot run in place\n");
        return VG_ERR(EINVAL);
    }
    if (m == 0)
        return 0;
    if ((ret = vg_nn_weight(ctx, "linear", "weight", w, 0, 0, &ww)) < 0 ||
        (ret = vg_nn_weight(ctx, "linear", "bias", b, 1, 1, &wb)) < 0)
        goto end;
    /* y [M, N] = x [M, K] * w [N, K]^T */
    {
        const int threads = vg_pool_threads(vg_ops_pool(ctx));
        Linear a = { vg_ops_dsp(), x->data, ww.p, wb.p, y->data, m, n, k, m, n };
        /* Each row job packs the whole weight [N, K], each column job the whole input
         * [M, K]: split the columns when the input is the smaller of the two by 2x (SD's
         * UNet at 16x16 and 8x8 latents: 256 or 64 tokens through 1280-wide layers ran
         * 20-50% faster than with 4 row jobs), else the rows. */
        const int cols_first = 2 * m < n;
        if (threads > 1 && cols_first && n >= (int64_t)threads * LIN_MIN_COLS)
            a.nb = VG_MAX((n + threads - 1) / threads, 1);
        else if (threads > 1 && m >= (int64_t)threads * LIN_MIN_ROWS)
            a.mb = (m + 2 * threads - 1) / (2 * threads);    /* 2 jobs per thread */
        else if (threads > 1 && n >= (int64_t)threads * LIN_MIN_COLS)
            a.nb = VG_MAX((n + threads - 1) / threads, 1);
        const int64_t jobs = ((m + a.mb - 1) / a.mb) * ((n + a.nb - 1) / a.nb);
        vg_pool_run(vg_ops_pool(ctx), (int)jobs, linear_job, &a);
    }
end:
    vg_nn_weight_release(&ww);
    vg_nn_weight_release(&wb);
    return ret;
}

/* --------------------------------------------------------------- conv2d */

int vg_conv2d_any(VgCtx *ctx, const VgTensor *x, const VgTensor *w, const VgTensor *b,
                  const VgConvParams *p, VgTensor *y)
{
    VgNnWeight ww = { 0 }, wb = { 0 };
    VgTensor tw, tb;
    int ret;
    if ((ret = vg_nn_weight(ctx, "conv2d", "weight", w, 4, 0, &ww)) < 0 ||
        (ret = vg_nn_weight(ctx, "conv2d", "bias", b, 1, 1, &wb)) < 0)
        goto end;
    vg_tensor_view(&tw, VG_DT_F32, (void *)ww.p, 4, w->ne); // [Cout, Cin, kh, kw]
    if (wb.p)
        vg_tensor_view(&tb, VG_DT_F32, (void *)wb.p, 1, b->ne); // [Cout]
    ret = vg_conv2d(ctx, x, &tw, wb.p ? &tb : NULL, p, y);
end:
    vg_nn_weight_release(&ww);
    vg_nn_weight_release(&wb);
    return ret;
}

/* ------------------------------------------------------------ embedding */

int vg_embedding(VgCtx *ctx, const VgTensor *table, const int32_t *ids, int n, VgTensor *y)
{
    char bt[96], by[96];
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "embedding", "output", y, 0)) < 0)
        return ret;
    if (!table || !table->data || table->ndim != 2 || n < 0 || (n > 0 && !ids) ||
        (table->dtype != VG_DT_F32 && table->dtype != VG_DT_F16 &&
         table->dtype != VG_DT_BF16) ||
        y->ne[y->ndim - 1] != table->ne[1] || vg_tensor_nelem(y) != (int64_t)n * table->ne[1]) {
        vg_log(ctx, VG_LOG_ERROR, "embedding: table %s (F32/F16/BF16 [V, C]) and %d ids do not "
               "give output %s\n", table ? vg_tensor_shape_str(table, bt, sizeof(bt)) : "(none)",
               n, vg_tensor_shape_str(y, by, sizeof(by)));
        return VG_ERR(EINVAL);
    }
    const int64_t v = table->ne[0], c = table->ne[1];
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v) {
            vg_log(ctx, VG_LOG_ERROR, "embedding: id %d at position %d is outside the table "
                   "(%lld rows)\n", (int)ids[i], i, (long long)v);
            return VG_ERR(EINVAL);
        }
    const VgNnDsp *dsp = vg_nn_dsp();
    float *out = y->data;
    for (int i = 0; i < n; i++) {
        const char *row = (const char *)table->data + ids[i] * table->nb[0];
        float *dst = out + (int64_t)i * c;
        if (table->nb[1] != (int64_t)vg_dtype_size(table->dtype)) {
            for (int64_t j = 0; j < c; j++) {
                const char *e = row + j * table->nb[1];
                dst[j] = table->dtype == VG_DT_F32 ? *(const float *)e :
                         table->dtype == VG_DT_F16 ? vg_f16_to_f32(*(const uint16_t *)e) :
                         vg_bf16_to_f32(*(const uint16_t *)e);
            }
        } else if (table->dtype == VG_DT_F32) {
            memcpy(dst, row, (size_t)c * sizeof(float));
        } else if (table->dtype == VG_DT_F16) {
            dsp->f16_to_f32(dst, (const uint16_t *)row, c);
        } else {
            dsp->bf16_to_f32(dst, (const uint16_t *)row, c);
        }
    }
    return 0;
}

/* ----------------------------------------------------------- element-wise */

typedef struct NnElt {
    const VgNnDsp *dsp;
    void (*un)(float *y, const float *x, ptrdiff_t n);
    void (*bin)(float *y, const float *a, const float *b, ptrdiff_t n);
    const float *x, *x2;
    float *y;
    int64_t n, in_row, out_row; /* geglu rows */
} NnElt;

static void seg_unary(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const NnElt *a = arg;
    a->un(a->y + start, a->x + start, len);
}

static void seg_binary(void *arg, int64_t plane, int64_t start, int64_t len)
{
    const NnElt *a = arg;
    a->bin(a->y + start, a->x + start, a->x2 + start, len);
}

static int check_xy(VgCtx *ctx, const char *op, const VgTensor *x, const VgTensor *y)
{
    int ret;
    if ((ret = vg_ops_check_f32(ctx, op, "input", x, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, op, "output", y, 0)) < 0)
        return ret;
    return vg_ops_check_same(ctx, op, "input", x, "output", y);
}

static int unary(VgCtx *ctx, const char *op, const VgTensor *x, VgTensor *y,
                 void (*fn)(float *, const float *, ptrdiff_t))
{
    int ret;
    if ((ret = check_xy(ctx, op, x, y)) < 0)
        return ret;
    NnElt a = { .un = fn, .x = x->data, .y = y->data };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(x), seg_unary, &a);
    return 0;
}

int vg_silu(VgCtx *ctx, const VgTensor *x, VgTensor *y)
{
    return unary(ctx, "silu", x, y, vg_nn_dsp()->silu);
}

int vg_gelu(VgCtx *ctx, const VgTensor *x, VgTensor *y)
{
    return unary(ctx, "gelu", x, y, vg_nn_dsp()->gelu);
}

int vg_quick_gelu(VgCtx *ctx, const VgTensor *x, VgTensor *y)
{
    return unary(ctx, "quick_gelu", x, y, vg_nn_dsp()->quick_gelu);
}

int vg_mul(VgCtx *ctx, const VgTensor *a, const VgTensor *b, VgTensor *y)
{
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "mul", "a", a, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "mul", "b", b, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "mul", "output", y, 0)) < 0 ||
        (ret = vg_ops_check_same(ctx, "mul", "a", a, "b", b)) < 0 ||
        (ret = vg_ops_check_same(ctx, "mul", "a", a, "output", y)) < 0)
        return ret;
    NnElt e = { .bin = vg_nn_dsp()->mul, .x = a->data, .x2 = b->data, .y = y->data };
    vg_ops_for_segments(ctx, 1, vg_tensor_nelem(a), seg_binary, &e);
    return 0;
}

static void geglu_job(void *arg, int i, int tid)
{
    const NnElt *a = arg;
    const int64_t r0 = (int64_t)i * ROWS_PER_JOB, r1 = VG_MIN(r0 + ROWS_PER_JOB, a->n);
    for (int64_t r = r0; r < r1; r++) {
        const float *src = a->x + r * a->in_row;
        a->dsp->geglu(a->y + r * a->out_row, src, src + a->out_row, a->out_row);
    }
}

int vg_geglu(VgCtx *ctx, const VgTensor *x, VgTensor *y)
{
    char bx[96], by[96];
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "geglu", "input", x, 0)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "geglu", "output", y, 0)) < 0)
        return ret;
    const int64_t c2 = x->ne[x->ndim - 1];
    int ok = x->ndim == y->ndim && c2 % 2 == 0 && c2 > 0 && y->ne[y->ndim - 1] == c2 / 2;
    for (int d = 0; ok && d < x->ndim - 1; d++)
        ok = x->ne[d] == y->ne[d];
    if (!ok) {
        vg_log(ctx, VG_LOG_ERROR, "geglu: input %s (last dim 2N) does not give output %s\n",
               vg_tensor_shape_str(x, bx, sizeof(bx)), vg_tensor_shape_str(y, by, sizeof(by)));
        return VG_ERR(EINVAL);
    }
    if (x->data == y->data) {
        vg_log(ctx, VG_LOG_ERROR, "geglu: cannot run in place\n");
        return VG_ERR(EINVAL);
    }
    NnElt a = { .dsp = vg_nn_dsp(), .x = x->data, .y = y->data, .n = vg_tensor_nelem(x) / c2,
                .in_row = c2, .out_row = c2 / 2 };
    vg_pool_run(vg_ops_pool(ctx), (int)((a.n + ROWS_PER_JOB - 1) / ROWS_PER_JOB), geglu_job, &a);
    return 0;
}

const char *vg_nn_isa(void)
{
    return vg_nn_dsp()->isa;
}
