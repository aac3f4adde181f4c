/*
 * Multi-head attention with an online softmax (flash-attention style, on
 * OpenBLAS): for each (batch, head, block of ATT_QB queries) the keys are
 * visited in chunks of ATT_KC,
 *     S = scale * Q_blk K_chunk^T              // [nq, nk], sgemm
 *     m' = max(m, rowmax S); c = exp(m - m')   // per query row
 *     P = exp(S - m'); l = l c + rowsum P; O = O c
 *     O += P V_chunk                           // [nq, D], sgemm
 * and finally O /= l. Scratch is ATT_QB * ATT_KC floats whatever Lq and Lk
 * are. Q, K, V and O are read / written in place with a row stride of H*D
 * (PyTorch's view(B, L, H, D) layout), so there is no transpose copy.
 * The (batch, head, query block) items are the ctx pool's jobs: each
 * worker runs its own single-threaded sgemms and softmax on its own
 * scratch (OpenBLAS runs 1 thread, see engine/blas.h).
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops/nn_common.h"
#include "engine/ops/nn_dsp.h"

#define ATT_QB 256
#define ATT_KC 256
#define ATT_ROWS_PER_JOB 16

typedef struct Attn {
    const VgNnDsp *dsp;
    float *s;           /* [ATT_QB, nk] scores, then probabilities */
    float *m, *l;       /* [ATT_QB] running max and sum */
    float *o;           /* first output row of the block; row stride ld */
    int64_t ld, d;
    int64_t q0, nq, k0, nk;
    int causal, first;
} Attn;

static void softmax_job(void *arg, int i, int tid)
{
    const Attn *a = arg;
    const int64_t r0 = (int64_t)i * ATT_ROWS_PER_JOB, r1 = VG_MIN(r0 + ATT_ROWS_PER_JOB, a->nq);
    for (int64_t r = r0; r < r1; r++) {
        float *row = a->s + r * a->nk;
        /* causal: query q0 + r sees keys up to and including its own index */
        const int64_t valid = a->causal ? VG_MAX(VG_MIN(a->q0 + r - a->k0 + 1, a->nk), 0) : a->nk;
        if (valid == 0) {
            memset(row, 0, (size_t)a->nk * sizeof(float));
            continue;
        }
        const float mx = a->dsp->max(row, valid);
        const float mnew = a->first || mx > a->m[r] ? mx : a->m[r];
        const float sum = a->dsp->exp_sum(row, valid, mnew);
        if (valid < a->nk)
            memset(row + valid, 0, (size_t)(a->nk - valid) * sizeof(float));
        if (a->first) {
            a->l[r] = sum;
        } else {
            const float c = expf(a->m[r] - mnew);
            a->l[r] = a->l[r] * c + sum;
            if (c != 1.0f)
                a->dsp->scale(a->o + r * a->ld, a->o + r * a->ld, a->d, c);
        }
        a->m[r] = mnew;
    }
}

static void finish_job(void *arg, int i, int tid)
{
    const Attn *a = arg;
    const int64_t r0 = (int64_t)i * ATT_ROWS_PER_JOB, r1 = VG_MIN(r0 + ATT_ROWS_PER_JOB, a->nq);
    for (int64_t r = r0; r < r1; r++)
        a->dsp->scale(a->o + r * a->ld, a->o + r * a->ld, a->d, 1.0f / a->l[r]);
}

static int overlaps(const VgTensor *a, const VgTensor *b)
{
    const char *pa = a->data, *pb = b->data;
    const size_t na = (size_t)vg_tensor_nelem(a) * 4, nb = (size_t)vg_tensor_nelem(b) * 4;
    return pa < pb + nb && pb < pa + na;
}

typedef struct AttnJobs {
    const VgNnDsp *dsp;
    const float *q, *k, *v;
    float *y;
    int64_t lq, lk, c, d, heads, qblocks, kc;
    int causal;
    float scale;
    float *scratch;     /* per thread: s [ATT_QB, kc], m [ATT_QB], l [ATT_QB] */
    int64_t per_thread;
} AttnJobs;

static void attn_job(void *arg, int i, int tid)
{
    const AttnJobs *j = arg;
    const int64_t b = i / (j->heads * j->qblocks), h = (i / j->qblocks) % j->heads;
    const int64_t c = j->c, d = j->d;
    Attn a = { .dsp = j->dsp, .ld = c, .d = d, .causal = j->causal };
    a.s = j->scratch + tid * j->per_thread;
    a.m = a.s + ATT_QB * j->kc;
    a.l = a.m + ATT_QB;
    a.q0 = (i % j->qblocks) * ATT_QB;
    a.nq = VG_MIN(ATT_QB, j->lq - a.q0);
    const int64_t off = (b * j->lq + a.q0) * c + h * d;
    const float *qb = j->q + off;
    a.o = j->y + off;
    const int64_t kend = j->causal ? VG_MIN(j->lk, a.q0 + a.nq) : j->lk;
    const int jobs = (int)((a.nq + ATT_ROWS_PER_JOB - 1) / ATT_ROWS_PER_JOB);
    for (a.k0 = 0; a.k0 < kend; a.k0 += j->kc) {
        a.nk = VG_MIN(j->kc, kend - a.k0);
        a.first = a.k0 == 0;
        const int64_t koff = (b * j->lk + a.k0) * c + h * d;
        /* S [nq, nk] = scale * Q [nq, D] K [nk, D]^T. S is cleared here and the sgemm
         * accumulates (beta 1): OpenBLAS's own clearing for beta 0 is a scalar pass
         * that cost ~17% of this sgemm (K = D = 64 is short). */
        memset(a.s, 0, (size_t)(a.nq * a.nk) * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a.nq, (int)a.nk, (int)d,
                    j->scale, qb, (int)c, j->k + koff, (int)c, 1.0f, a.s, (int)a.nk);
        for (int r = 0; r < jobs; r++)
            softmax_job(&a, r, tid);
        /* O [nq, D] (+)= P [nq, nk] V [nk, D], O cleared first (beta 1 as above) */
        if (a.first)
            for (int64_t r = 0; r < a.nq; r++)
                memset(a.o + r * c, 0, (size_t)d * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a.nq, (int)d, (int)a.nk,
                    1.0f, a.s, (int)a.nk, j->v + koff, (int)c, 1.0f, a.o, (int)c);
    }
    for (int r = 0; r < jobs; r++)
        finish_job(&a, r, tid);
}

int vg_attention(VgCtx *ctx, const VgTensor *q, const VgTensor *k, const VgTensor *v,
                 int heads, int causal, VgTensor *y)
{
    char bq[96], bk[96], bv[96], by[96];
    int ret;
    if ((ret = vg_ops_check_f32(ctx, "attention", "q", q, 3)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "attention", "k", k, 3)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "attention", "v", v, 3)) < 0 ||
        (ret = vg_ops_check_f32(ctx, "attention", "output", y, 3)) < 0)
        return ret;
    const int64_t bsz = q->ne[0], lq = q->ne[1], c = q->ne[2], lk = k->ne[1];
    if (heads < 1 || c % heads || c < 1 || lk < 1 || lq < 1 || k->ne[0] != bsz ||
        k->ne[2] != c || !vg_tensor_same_shape(k, v) || !vg_tensor_same_shape(q, y) ||
        c > INT32_MAX / 2 || lk > INT32_MAX / 2) {
        vg_log(ctx, VG_LOG_ERROR, "attention: q %s, k %s, v %s, output %s do not fit "
               "[B, Lq, H*D], [B, Lk, H*D] with %d heads\n",
               vg_tensor_shape_str(q, bq, sizeof(bq)), vg_tensor_shape_str(k, bk, sizeof(bk)),
               vg_tensor_shape_str(v, bv, sizeof(bv)), vg_tensor_shape_str(y, by, sizeof(by)),
               heads);
        return VG_ERR(EINVAL);
    }
    if (overlaps(y, q) || overlaps(y, k) || overlaps(y, v)) {
        vg_log(ctx, VG_LOG_ERROR, "attention: output must not overlap q, k or v\n");
        return VG_ERR(EINVAL);
    }
    const int64_t d = c / heads;
    const float scale = (float)(1.0 / sqrt((double)d));
    VgPool *pool = vg_ops_pool(ctx);
    const int threads = vg_pool_threads(pool);
    AttnJobs j = { .dsp = vg_nn_dsp(), .q = q->data, .k = k->data, .v = v->data, .y = y->data,
                   .lq = lq, .lk = lk, .c = c, .d = d, .heads = heads, .causal = causal,
                   .scale = scale, .kc = VG_MIN(ATT_KC, lk) };
    j.qblocks = (lq + ATT_QB - 1) / ATT_QB;
    j.per_thread = ATT_QB * j.kc + 2 * ATT_QB;
    if (bsz * heads * j.qblocks > INT32_MAX) {
        vg_log(ctx, VG_LOG_ERROR, "attention: too many (batch, head, query block) items\n");
        return VG_ERR(EINVAL);
    }
    j.scratch = vg_malloc(sizeof(float) * j.per_thread * threads);
    if (!j.scratch) {
        vg_log(ctx, VG_LOG_ERROR, "attention: out of memory for scratch\n");
        return VG_ERR(ENOMEM);
    }
    vg_pool_run(pool, (int)(bsz * heads * j.qblocks), attn_job, &j);
    vg_free(j.scratch);
    return 0;
}
