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
 * The GEMMs run on OpenBLAS's threads, the row softmax on the ctx pool.
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
    Attn a = { .dsp = vg_nn_dsp(), .ld = c, .d = d, .causal = causal };
    const int64_t kc = VG_MIN(ATT_KC, lk);
    a.s = vg_malloc(sizeof(float) * ATT_QB * kc);
    a.m = vg_malloc(sizeof(float) * ATT_QB * 2);
    if (!a.s || !a.m) {
        vg_log(ctx, VG_LOG_ERROR, "attention: out of memory for scratch\n");
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    a.l = a.m + ATT_QB;
    VgPool *pool = vg_ops_pool(ctx);
    for (int64_t b = 0; b < bsz; b++)
        for (int64_t h = 0; h < heads; h++)
            for (a.q0 = 0; a.q0 < lq; a.q0 += ATT_QB) {
                a.nq = VG_MIN(ATT_QB, lq - a.q0);
                const int64_t off = (b * lq + a.q0) * c + h * d;
                const float *qb = (const float *)q->data + off;
                a.o = (float *)y->data + off;
                const int64_t kend = causal ? VG_MIN(lk, a.q0 + a.nq) : lk;
                const int jobs = (int)((a.nq + ATT_ROWS_PER_JOB - 1) / ATT_ROWS_PER_JOB);
                for (a.k0 = 0; a.k0 < kend; a.k0 += kc) {
                    a.nk = VG_MIN(kc, kend - a.k0);
                    a.first = a.k0 == 0;
                    const int64_t koff = (b * lk + a.k0) * c + h * d;
                    /* S [nq, nk] = scale * Q [nq, D] K [nk, D]^T */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a.nq, (int)a.nk,
                                (int)d, scale, qb, (int)c, (const float *)k->data + koff,
                                (int)c, 0.0f, a.s, (int)a.nk);
                    vg_pool_run(pool, jobs, softmax_job, &a);
                    /* O [nq, D] (+)= P [nq, nk] V [nk, D] */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a.nq, (int)d,
                                (int)a.nk, 1.0f, a.s, (int)a.nk, (const float *)v->data + koff,
                                (int)c, a.first ? 0.0f : 1.0f, a.o, (int)c);
                }
                vg_pool_run(pool, jobs, finish_job, &a);
            }
end:
    vg_free(a.s);
    vg_free(a.m);
    return ret;
}
