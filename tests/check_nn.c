/*
 * engine/nn.h against PyTorch: tests/reference/sd_nn_ops.py wrote inputs and
 * torch's outputs into tests/fixtures/nn/nn_ops.safetensors. Tolerance: max
 * abs error <= 1e-4 (values are O(1)-O(10)); attention <= 1e-4 relative
 * (max|a - b| / max|b|). F16 / BF16 weight variants are compared with the
 * reference computed from the same widened values.
 * Large attention (Lq 4096 / Lk 77, Lq = Lk = 1024, causal) is compared with
 * a naive double-precision reference in this file, and its scratch memory is
 * bounded by construction (no Lq x Lk buffer: see engine/ops/nn_attn.c).
 * The AVX2 kernels are compared with the C reference on random data
 * (checkasm style).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops/nn_dsp.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "engine/x86/nn.h"
#include "tests/common/vgtest.h"

#define TOL 1e-4

static VgCtx *ctx;
static VgWeights *fx;

static void setup(void)
{
    ctx = vgt_ctx_open(2, VG_LOG_WARNING);
    vgt_log_reset();
    fx = vgt_fixture("nn/nn_ops.safetensors");
}

static void teardown(void)
{
    vg_weights_close(&fx);
    vg_close(&ctx);
}

static double max_rel(const VgTensor *a, const VgTensor *b)
{
    const float *pa = a->data, *pb = b->data;
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < vg_tensor_nelem(b); i++) {
        num = fmax(num, fabs((double)pa[i] - pb[i]));
        den = fmax(den, fabs((double)pb[i]));
    }
    return den > 0 ? num / den : num;
}

/* ---------------------------------------------------------------- linear */

static const char *const linear_cases[] = { "linear_f32", "linear_f16", "linear_bf16",
                                            "linear_nobias" };

START_TEST(test_linear)
{
    const char *n = linear_cases[_i];
    const VgTensor *ref = vgt_get(fx, "%s.y", n);
    char key[64];
    snprintf(key, sizeof(key), "%s.b", n);
    const VgTensor *b = vg_weights_find(fx, key); /* absent for linear_nobias */
    VgTensor y;
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_linear(ctx, vgt_get(fx, "%s.x", n), vgt_get(fx, "%s.w", n), b, &y), 0);
    vgt_assert_close(&y, ref, TOL, n);
    vg_tensor_free(&y);
}
END_TEST

START_TEST(test_conv_any)
{
    static const char *const names[] = { "conv_s1", "conv_s2" };
    for (int i = 0; i < 2; i++) {
        const VgTensor *ref = vgt_get(fx, "%s.y", names[i]);
        VgConvParams p;
        vg_conv_params_default(&p);
        p.stride_h = p.stride_w = i + 1;
        p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
        VgTensor y;
        vgt_alloc_like(&y, ref);
        ck_assert_int_eq(vg_conv2d_any(ctx, vgt_get(fx, "%s.x", names[i]),
                                       vgt_get(fx, "%s.w", names[i]),
                                       vgt_get(fx, "%s.b", names[i]), &p, &y), 0);
        vgt_assert_close(&y, ref, TOL, names[i]);
        vg_tensor_free(&y);
    }
}
END_TEST

/* ----------------------------------------------------------------- norms */

START_TEST(test_norms)
{
    VgTensor y, x;
    const VgTensor *ref = vgt_get(fx, "ln.y");
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_layer_norm(ctx, vgt_get(fx, "ln.x"), vgt_get(fx, "ln.g"),
                                   vgt_get(fx, "ln.b"), 1e-5f, &y), 0);
    vgt_assert_close(&y, ref, TOL, "layer_norm");
    vg_tensor_free(&y);

    ref = vgt_get(fx, "gn32.y");
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_group_norm(ctx, vgt_get(fx, "gn32.x"), 32, vgt_get(fx, "gn32.g"),
                                   vgt_get(fx, "gn32.b"), 1e-6f, &y), 0);
    vgt_assert_close(&y, ref, TOL, "group_norm 32");
    vg_tensor_free(&y);

    /* in place, F16 affine, [N, C, L], mean 100 */
    ref = vgt_get(fx, "gn8.y");
    ck_assert_int_eq(vg_tensor_to_f32(vgt_get(fx, "gn8.x"), &x), 0);
    ck_assert_int_eq(vg_group_norm(ctx, &x, 8, vgt_get(fx, "gn8.g"), vgt_get(fx, "gn8.b"),
                                   1e-5f, &x), 0);
    vgt_assert_close(&x, ref, TOL, "group_norm 8 in place");
    vg_tensor_free(&x);
}
END_TEST

/* ----------------------------------------------------------- element-wise */

START_TEST(test_eltwise)
{
    VgTensor y;
    const VgTensor *x = vgt_get(fx, "act.x");
    static const char *const names[] = { "silu", "gelu", "quick_gelu" };
    int (*fns[])(VgCtx *, const VgTensor *, VgTensor *) = { vg_silu, vg_gelu, vg_quick_gelu };
    for (int i = 0; i < 3; i++) {
        const VgTensor *ref = vgt_get(fx, "act.%s", names[i]);
        vgt_alloc_like(&y, ref);
        ck_assert_int_eq(fns[i](ctx, x, &y), 0);
        vgt_assert_close(&y, ref, TOL, names[i]);
        /* in place */
        vg_tensor_free(&y);
        ck_assert_int_eq(vg_tensor_to_f32(x, &y) == 0 && fns[i](ctx, &y, &y) == 0, 1);
        vgt_assert_close(&y, ref, TOL, names[i]);
        vg_tensor_free(&y);
    }
    const VgTensor *ref = vgt_get(fx, "geglu.y");
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_geglu(ctx, vgt_get(fx, "geglu.x"), &y), 0);
    vgt_assert_close(&y, ref, TOL, "geglu");
    vg_tensor_free(&y);

    ref = vgt_get(fx, "mul.y");
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_mul(ctx, vgt_get(fx, "mul.a"), vgt_get(fx, "mul.b"), &y), 0);
    vgt_assert_close(&y, ref, 0.0, "mul");
    vg_tensor_free(&y);

    /* embedding: exact (F16 widening) */
    ref = vgt_get(fx, "emb.y");
    const VgTensor *ids = vgt_get(fx, "emb.ids");
    vgt_alloc_like(&y, ref);
    ck_assert_int_eq(vg_embedding(ctx, vgt_get(fx, "emb.table"), ids->data, (int)ids->ne[0],
                                  &y), 0);
    vgt_assert_close(&y, ref, 0.0, "embedding");
    vg_tensor_free(&y);
}
END_TEST

/* ------------------------------------------------------------- attention */

START_TEST(test_attention_fixture)
{
    static const char *const names[] = { "attn", "attn_causal" };
    for (int i = 0; i < 2; i++) {
        const VgTensor *ref = vgt_get(fx, "%s.y", names[i]);
        VgTensor y;
        vgt_alloc_like(&y, ref);
        ck_assert_int_eq(vg_attention(ctx, vgt_get(fx, "%s.q", names[i]),
                                      vgt_get(fx, "%s.k", names[i]),
                                      vgt_get(fx, "%s.v", names[i]), 2, i, &y), 0);
        const double r = max_rel(&y, ref);
        ck_assert_msg(r <= TOL, "%s: max rel err %g", names[i], r);
        vg_tensor_free(&y);
    }
}
END_TEST

static uint64_t rng_state = 88172645463325252ull;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void fill(VgTensor *t, float s)
{
    float *p = t->data;
    for (int64_t i = 0; i < vg_tensor_nelem(t); i++)
        p[i] = frand() * s;
}

/* naive softmax(Q K^T / sqrt D) V in double for a subset of query rows */
static void naive_rows(const VgTensor *q, const VgTensor *k, const VgTensor *v, int heads,
                       int causal, int64_t b, int64_t r, double *out /* [C] */)
{
    const int64_t lq = q->ne[1], lk = k->ne[1], c = q->ne[2], d = c / heads;
    const float *qp = (const float *)q->data + (b * lq + r) * c;
    double *s = malloc(sizeof(double) * lk);
    for (int h = 0; h < heads; h++) {
        double mx = -INFINITY, sum = 0.0;
        const int64_t nk = causal && r + 1 < lk ? r + 1 : lk;
        for (int64_t j = 0; j < nk; j++) {
            const float *kp = (const float *)k->data + (b * lk + j) * c + h * d;
            double acc = 0.0;
            for (int64_t t = 0; t < d; t++)
                acc += (double)qp[h * d + t] * kp[t];
            s[j] = acc / sqrt((double)d);
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < nk; j++)
            sum += s[j] = exp(s[j] - mx);
        for (int64_t t = 0; t < d; t++) {
            double acc = 0.0;
            for (int64_t j = 0; j < nk; j++)
                acc += s[j] * ((const float *)v->data)[(b * lk + j) * c + h * d + t];
            out[h * d + t] = acc / sum;
        }
    }
    free(s);
}

static void big_attention(int64_t bsz, int64_t lq, int64_t lk, int64_t c, int heads, int causal)
{
    VgTensor q, k, v, y;
    ck_assert_int_eq(vg_tensor_alloc(&q, VG_DT_F32, 3, (int64_t[]){ bsz, lq, c }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&k, VG_DT_F32, 3, (int64_t[]){ bsz, lk, c }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&v, VG_DT_F32, 3, (int64_t[]){ bsz, lk, c }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&y, VG_DT_F32, 3, (int64_t[]){ bsz, lq, c }), 0);
    /* scores of a few units: a peaked softmax, where a wrong rescale shows */
    fill(&q, 2.0f);
    fill(&k, 2.0f);
    fill(&v, 1.0f);
    ck_assert_int_eq(vg_attention(ctx, &q, &k, &v, heads, causal, &y), 0);
    double *ref = malloc(sizeof(double) * c), num = 0.0, den = 0.0;
    /* every 37th row plus the last: covers all query blocks and key chunks */
    for (int64_t b = 0; b < bsz; b++)
        for (int64_t r = 0; r < lq; r = r + 37 < lq || r == lq - 1 ? r + 37 : lq - 1) {
            naive_rows(&q, &k, &v, heads, causal, b, r, ref);
            const float *yp = (const float *)y.data + (b * lq + r) * c;
            for (int64_t t = 0; t < c; t++) {
                num = fmax(num, fabs(yp[t] - ref[t]));
                den = fmax(den, fabs(ref[t]));
            }
        }
    free(ref);
    ck_assert_msg(num / den <= TOL, "attention Lq %lld Lk %lld causal %d: max rel err %g",
                  (long long)lq, (long long)lk, causal, num / den);
    vg_tensor_free(&q);
    vg_tensor_free(&k);
    vg_tensor_free(&v);
    vg_tensor_free(&y);
}

START_TEST(test_attention_large)
{
    big_attention(2, 4096, 77, 320, 5, 0);  /* UNet cross-attention at 64x64 latents */
    big_attention(1, 1024, 1024, 128, 2, 0); /* self-attention, 4 x 4 chunks */
    big_attention(1, 600, 600, 64, 1, 1);  /* causal over several chunks */
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_errors)
{
    VgTensor x, w, y, big;
    ck_assert_int_eq(vg_tensor_alloc(&x, VG_DT_F32, 2, (int64_t[]){ 3, 8 }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&w, VG_DT_F32, 2, (int64_t[]){ 4, 7 }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&y, VG_DT_F32, 2, (int64_t[]){ 3, 4 }), 0);
    ck_assert_int_eq(vg_tensor_alloc(&big, VG_DT_F32, 2, (int64_t[]){ 3, 16 }), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_linear(ctx, &x, &w, NULL, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "linear"));
    ck_assert_int_eq(vg_linear(ctx, &x, NULL, NULL, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_layer_norm(ctx, &x, &w, NULL, 1e-5f, &x), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_layer_norm(ctx, &x, NULL, NULL, -1.0f, &x), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_group_norm(ctx, &x, 3, NULL, NULL, 1e-5f, &x), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_geglu(ctx, &x, &x), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_silu(ctx, &x, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_mul(ctx, &x, &big, &x), VG_ERR(EINVAL));
    /* I32 weight */
    VgTensor wi;
    ck_assert_int_eq(vg_tensor_alloc(&wi, VG_DT_I32, 2, (int64_t[]){ 4, 8 }), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_linear(ctx, &x, &wi, NULL, &y), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "F32/F16/BF16"));
    /* attention: bad heads, aliasing */
    VgTensor q;
    ck_assert_int_eq(vg_tensor_alloc(&q, VG_DT_F32, 3, (int64_t[]){ 1, 3, 8 }), 0);
    ck_assert_int_eq(vg_attention(ctx, &q, &q, &q, 3, 0, &big), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_attention(ctx, &q, &q, &q, 2, 0, &q), VG_ERR(EINVAL));
    /* embedding id out of range */
    int32_t ids[2] = { 1, 4 };
    VgTensor e;
    ck_assert_int_eq(vg_tensor_alloc(&e, VG_DT_F32, 2, (int64_t[]){ 2, 7 }), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_embedding(ctx, &w, ids, 2, &e), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "id 4"));
    ids[1] = 3;
    ck_assert_int_eq(vg_embedding(ctx, &w, ids, 2, &e), 0);
    vg_tensor_free(&x);
    vg_tensor_free(&w);
    vg_tensor_free(&y);
    vg_tensor_free(&big);
    vg_tensor_free(&wi);
    vg_tensor_free(&q);
    vg_tensor_free(&e);
}
END_TEST

/* ------------------------------------------------ C vs optimised kernels */

START_TEST(test_dsp)
{
    VgNnDsp c, o;
    vg_nn_dsp_init_c(&c);
    o = *vg_nn_dsp();
    if (!strcmp(o.isa, "c")) {
        fprintf(stderr, "check_nn: no optimised nn kernels on this CPU, C only\n");
        return;
    }
    enum { N = 1003 };
    float x[N], g[N], y0[N], y1[N], x2[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++) {
        x[i] = frand() * 12.0f;
        g[i] = frand() * 6.0f;
        h[i] = (uint16_t)(rng_state >> 20);
    }
    x[0] = -100.0f;
    x[1] = 100.0f;
    for (int n = 0; n <= N; n += n < 20 ? 1 : 97) {
        struct { const char *name; void (*fc)(float *, const float *, ptrdiff_t);
                 void (*fo)(float *, const float *, ptrdiff_t); double tol; } un[] = {
            { "silu", c.silu, o.silu, 1e-6 }, { "gelu", c.gelu, o.gelu, 3e-6 },
            { "quick_gelu", c.quick_gelu, o.quick_gelu, 1e-6 },
        };
        for (size_t u = 0; u < sizeof(un) / sizeof(*un); u++) {
            un[u].fc(y0, x, n);
            un[u].fo(y1, x, n);
            for (int i = 0; i < n; i++)
                ck_assert_msg(fabsf(y0[i] - y1[i]) <= un[u].tol * fmaxf(1.0f, fabsf(y0[i])),
                              "%s(%g): %g vs %g", un[u].name, x[i], y0[i], y1[i]);
        }
        c.geglu(y0, x, g, n);
        o.geglu(y1, x, g, n);
        for (int i = 0; i < n; i++)
            ck_assert_msg(fabsf(y0[i] - y1[i]) <= 3e-6 * fmaxf(1.0f, fabsf(y0[i])), "geglu");
        /* widening is exact (NaN payloads aside) */
        c.f16_to_f32(y0, h, n);
        o.f16_to_f32(y1, h, n);
        for (int i = 0; i < n; i++)
            ck_assert(y0[i] == y1[i] || (isnan(y0[i]) && isnan(y1[i])));
        for (int off = 0; off < 3; off++) {  /* any alignment of dst */
            o.f16_to_f32_stream(y1 + off, h, n - off > 0 ? n - off : 0);
            for (int i = 0; i + off < n; i++)
                ck_assert(y0[i] == y1[i + off] || (isnan(y0[i]) && isnan(y1[i + off])));
        }
        c.bf16_to_f32(y0, h, n);
        o.bf16_to_f32(y1, h, n);
        for (int i = 0; i < n; i++)
            ck_assert(y0[i] == y1[i] || (isnan(y0[i]) && isnan(y1[i])));
        if (n > 0) {
            ck_assert(c.max(x, n) == o.max(x, n));
            const float m = c.max(x, n);
            memcpy(y0, x, sizeof(float) * n);
            memcpy(y1, x, sizeof(float) * n);
            const float s0 = c.exp_sum(y0, n, m), s1 = o.exp_sum(y1, n, m);
            ck_assert_msg(fabsf(s0 - s1) <= 1e-5f * s0, "exp_sum %g vs %g", s0, s1);
            for (int i = 0; i < n; i++)
                ck_assert(fabsf(y0[i] - y1[i]) <= 1e-6f * fmaxf(y0[i], 1e-30f) + 1e-37f);
            double a0 = 0, b0 = 0, a1 = 0, b1 = 0;
            for (int i = 0; i < n; i++)
                x2[i] = x[i] + 1000.0f;
            c.sum_sq(x2, n, 1000.0f, &a0, &b0);
            o.sum_sq(x2, n, 1000.0f, &a1, &b1);
            ck_assert_msg(fabs(a0 - a1) <= 1e-6 * fabs(a0) && fabs(b0 - b1) <= 1e-5 * b0,
                          "sum_sq %g %g vs %g %g", a0, b0, a1, b1);
        }
        c.affine(y0, x, n, 0.5f, 0.3f, -2.0f);
        o.affine(y1, x, n, 0.5f, 0.3f, -2.0f);
        for (int i = 0; i < n; i++)
            ck_assert(fabsf(y0[i] - y1[i]) <= 1e-6f * fmaxf(1.0f, fabsf(y0[i])));
        c.norm_row(y0, x, n, 0.5f, 1.7f, g, x);
        o.norm_row(y1, x, n, 0.5f, 1.7f, g, x);
        for (int i = 0; i < n; i++)
            ck_assert(fabsf(y0[i] - y1[i]) <= 1e-5f * fmaxf(1.0f, fabsf(y0[i])));
    }
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_linear, 0, (int)(sizeof(linear_cases) / sizeof(*linear_cases)));
    tcase_add_test(tc, test_conv_any);
    tcase_add_test(tc, test_norms);
    tcase_add_test(tc, test_eltwise);
    tcase_add_test(tc, test_attention_fixture);
    tcase_add_test(tc, test_attention_large);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_dsp);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nn_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
