/*
 * Winograd F(4x4, 3x3) conv2d path (engine/ops/conv_winograd.c).
 *
 * 1. conv2d through Winograd against the im2col + sgemm path on the same
 *    data, over shapes that hit the edge cases (widths and heights not a
 *    multiple of 4, fewer than 8 tiles in a row, asymmetric and zero
 *    padding, several cout passes, several tile blocks, batch 2,
 *    activations, 2 threads and none). Inputs uniform in [-1, 1], weights
 *    in [-0.1, 0.1] (what trained nets look like: outputs O(1)).
 *    Tolerance: max |winograd - direct| <= 5e-5 * max |direct| (+1e-6); the
 *    largest error measured is 1.4e-5 relative to the output's scale (Cin 320;
 *    the transforms multiply by up to 100 and cancel, losing ~5 bits).
 *    Shapes of at most 16 tiles take the fused path (wino_gemm), the others
 *    the sgemm path.
 * 2. checkasm: the AVX2 transforms (weights, input, output) against the C
 *    ones on random and extreme inputs (NaN, +-Inf, subnormals, +-0), every
 *    n 1..40, with guards after the written area. FMA changes roundings:
 *    finite results must agree within 1e-6 of the sum of |coefficient *
 *    input| (max row sum 100 for the input transform, 361 for the output's,
 *    <= 1 for the weights') plus 1e-37; non-finite results must match (NaN
 *    with NaN, Inf with the same Inf). wino_gemm likewise over rows 1..13,
 *    16..64 columns and k up to 600 (past its 256-deep slices), within
 *    1.2e-7 k of sum |u v| (both sum in the same order; FMA rounds once).
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/ops.h"
#include "engine/ops/conv_winograd.h"
#include "engine/ops/dsp.h"
#include "engine/tensor.h"
#include "engine/x86/ops.h"
#include "tests/common/vgtest.h"

#define REL_TOL 5e-5

static uint32_t rng = 4321;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

static float uni(float a)
{
    return ((float)(rnd() & 0xffff) / 32768.0f - 1.0f) * a;
}

typedef struct Case {
    int n, cin, cout, h, w, pt, pl, pb, pr;
    VgAct act;
} Case;

static double worst_rel[2];

/* @variant: 1 F(4x4), 2 F(2x2) (vg_conv_winograd_force modes) */
static void run_case(VgCtx *ctx, const Case *k, int bias, int variant)
{
    const int ho = k->h + k->pt + k->pb - 2, wo = k->w + k->pl + k->pr - 2;
    VgTensor x, w, b, a, yd, yw;
    const int64_t bs[1] = { k->cout };
    ck_assert(!vg_tensor_alloc4(&x, k->n, k->cin, k->h, k->w));
    ck_assert(!vg_tensor_alloc4(&w, k->cout, k->cin, 3, 3));
    ck_assert(!vg_tensor_alloc(&b, VG_DT_F32, 1, bs));
    ck_assert(!vg_tensor_alloc(&a, VG_DT_F32, 1, bs));
    ck_assert(!vg_tensor_alloc4(&yd, k->n, k->cout, ho, wo));
    ck_assert(!vg_tensor_alloc4(&yw, k->n, k->cout, ho, wo));
    float *p = x.data;
    for (int64_t i = 0; i < vg_tensor_nelem(&x); i++)
        p[i] = uni(1.0f);
    p = w.data;
    for (int64_t i = 0; i < vg_tensor_nelem(&w); i++)
        p[i] = uni(0.1f);
    for (int i = 0; i < k->cout; i++) {
        ((float *)b.data)[i] = uni(0.5f);
        ((float *)a.data)[i] = uni(0.3f);
    }
    VgConvParams cp;
    vg_conv_params_default(&cp);
    cp.pad_top = k->pt, cp.pad_left = k->pl, cp.pad_bottom = k->pb, cp.pad_right = k->pr;
    for (int pass = 0; pass < 2; pass++) {
        vg_conv_winograd_force(pass ? variant : 0);
        ck_assert(vg_conv_winograd_wanted(k->cin, k->cout, ho, wo, 3, 3, 1, 1, 1, 1) ==
                  (pass ? 6 - 2 * variant : 0));
        VgTensor *y = pass ? &yw : &yd;
        for (int64_t i = 0; i < vg_tensor_nelem(y); i++)
            ((float *)y->data)[i] = NAN; /* every output must be written */
        const int ret = vg_conv2d_act(ctx, &x, &w, bias ? &b : NULL, &cp, k->act, 0.2f,
                                      k->act == VG_ACT_PRELU ? &a : NULL, y);
        ck_assert_msg(ret == 0, "conv2d returned %d", ret);
    }
    vg_conv_winograd_force(-1);
    double scale = 0, err = 0;
    const float *d = yd.data, *o = yw.data;
    for (int64_t i = 0; i < vg_tensor_nelem(&yd); i++) {
        ck_assert_msg(isfinite(o[i]), "winograd output %lld not written or not finite",
                      (long long)i);
        scale = fmax(scale, fabs(d[i]));
        err = fmax(err, fabs((double)d[i] - o[i]));
    }
    const double rel = err / fmax(scale, 1e-30);
    worst_rel[variant - 1] = fmax(worst_rel[variant - 1], rel);
    if (getenv("VG_WINO_VERBOSE"))
        fprintf(stderr, "F(%dx%d) cin %d cout %d %dx%d: relative error %.3g\n", 6 - 2 * variant,
                6 - 2 * variant, k->cin, k->cout, k->h, k->w, rel);
    ck_assert_msg(err <= REL_TOL * scale + 1e-6, "F(%dx%d) n %d cin %d cout %d %dx%d "
                  "pad t%d l%d b%d r%d act %d: max error %g, output scale %g (relative %g)", 6 - 2 * variant,
                  6 - 2 * variant, k->n, k->cin, k->cout,
                  k->h, k->w, k->pt, k->pl, k->pb, k->pr, (int)k->act, err, scale, rel);
    vg_tensor_free(&x), vg_tensor_free(&w), vg_tensor_free(&b), vg_tensor_free(&a);
    vg_tensor_free(&yd), vg_tensor_free(&yw);
}

static const Case cases[] = {
    { 1, 32, 32, 16, 16, 1, 1, 1, 1, VG_ACT_NONE },
    { 1, 1, 1, 1, 1, 1, 1, 1, 1, VG_ACT_NONE },      /* 1 tile, mostly padding */
    { 1, 3, 5, 7, 9, 0, 0, 0, 0, VG_ACT_RELU },      /* valid: 5x7 output */
    { 2, 17, 33, 13, 37, 1, 1, 1, 1, VG_ACT_LEAKY }, /* batch, odd sizes */
    { 1, 40, 24, 10, 70, 2, 0, 1, 3, VG_ACT_PRELU }, /* asymmetric padding */
    { 1, 64, 64, 33, 35, 1, 1, 1, 1, VG_ACT_RELU },
    { 1, 320, 48, 40, 40, 1, 1, 1, 1, VG_ACT_NONE }, /* few tiles: cout chunks */
    { 1, 1280, 136, 64, 64, 1, 1, 1, 1, VG_ACT_NONE },/* F(4x4): 3 cout passes */
    { 1, 32, 16, 64, 2048, 1, 1, 1, 1, VG_ACT_NONE }, /* several tile blocks */
    { 1, 96, 100, 80, 2, 1, 1, 1, 1, VG_ACT_NONE },   /* 1 tile per row */
    /* fused path (at most 16 tiles): channel blocks with a 6-row tail,
     * tiles padded to 16, a batch side by side, 1 tile per row */
    { 1, 320, 48, 8, 8, 1, 1, 1, 1, VG_ACT_NONE },
    { 1, 1280, 136, 6, 10, 1, 1, 1, 1, VG_ACT_NONE },
    { 2, 40, 50, 7, 7, 1, 1, 1, 1, VG_ACT_PRELU },
    { 3, 64, 40, 12, 4, 1, 1, 1, 1, VG_ACT_LEAKY },
    { 1, 96, 100, 30, 2, 1, 1, 1, 1, VG_ACT_NONE },
    { 1, 2560, 70, 16, 16, 1, 1, 1, 1, VG_ACT_RELU },
};

START_TEST(test_vs_direct)
{
    VgCtx *ctx = vgt_ctx_open(2, VG_LOG_WARNING);
    for (int variant = 1; variant <= 2; variant++) {
        run_case(ctx, &cases[_i], _i & 1, variant);
        run_case(NULL, &cases[_i], !(_i & 1), variant);
    }
    vg_close(&ctx);
}
END_TEST

/* ------------------------------------------------------------ checkasm */

static VgOpsDsp ref, opt;
static int have_opt;

static void init_tables(void)
{
    vg_ops_dsp_init_c(&ref);
    vg_ops_dsp_init_c(&opt);
    __builtin_cpu_init();
    have_opt = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (have_opt) {
        vg_ops_dsp_init_avx2(&opt);
        vg_wino_dsp_init_avx2(&opt);
    }
}

static float sample(int mode)
{
    static const float v[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN * 0.5f,
                               -FLT_MIN * 0.25f, 1e-45f, 1.0f, -1.0f, 3.5f };
    if (mode == 0 || (mode == 2 && (rnd() & 7)))
        return uni(10.0f);
    return v[rnd() % (sizeof(v) / sizeof(*v))];
}

static int agree(float r, float o, double mag)
{
    if (isnan(r) || isnan(o))
        return isnan(r) && isnan(o);
    if (isinf(r) || isinf(o) || r == o)
        return r == o;
    return fabs((double)r - o) <= 1e-6 * mag + 1e-37;
}

#define GUARD -777.0f

/* tile outputs m, inputs a, positions P, and the largest row sum of
 * |BT (x) BT| / |AT (x) AT| of variant @f */
static void variant(int f, int *m, int *a, double *in_gain, double *out_gain)
{
    *m = f == VG_WINO_F43 ? 4 : 2;
    *a = *m + 2;
    *in_gain = f == VG_WINO_F43 ? 100 : 4;
    *out_gain = f == VG_WINO_F43 ? 361 : 9;
}

START_TEST(test_wino_in)
{
    if (!have_opt)
        return;
    const int f = _i;
    int M, A;
    double gain, og;
    variant(f, &M, &A, &gain, &og);
    enum { MAXN = 40, XRS = 32 * 5 + 4 + 3, VS = MAXN + 9 };
    static float x[6 * XRS], va[36 * VS], vb[36 * VS];
    for (int mode = 0; mode < 3; mode++)
        for (int n = 1; n <= MAXN; n++) {
            for (int i = 0; i < 6 * XRS; i++)
                x[i] = sample(mode);
            for (int i = 0; i < 36 * VS; i++)
                va[i] = vb[i] = GUARD;
            ref.wino_in[f](va, VS, x, XRS, n);
            opt.wino_in[f](vb, VS, x, XRS, n);
            for (int p = 0; p < 36; p++)
                for (int t = 0; t < VS; t++) {
                    const float r = va[p * VS + t], o = vb[p * VS + t];
                    if (t >= n || p >= A * A) {
                        ck_assert_msg(r == GUARD && o == GUARD, "wino_in %d n %d wrote p %d "
                                      "tile %d", f, n, p, t);
                        continue;
                    }
                    double mag = 0;
                    for (int rr = 0; rr < A; rr++)
                        for (int c = 0; c < A; c++)
                            if (isfinite(x[rr * XRS + M * t + c]))
                                mag += gain * fabs(x[rr * XRS + M * t + c]);
                    ck_assert_msg(agree(r, o, mag), "wino_in %d mode %d n %d p %d tile %d: c %a "
                                  "avx2 %a", f, mode, n, p, t, r, o);
                }
        }
}
END_TEST

START_TEST(test_wino_out)
{
    if (!have_opt)
        return;
    const int f = _i;
    int M, A;
    double ig, gain;
    variant(f, &M, &A, &ig, &gain);
    enum { MAXN = 40, MS = MAXN + 3, YS = 4 * MAXN + 11 };
    static float m[36 * MS], ya[4 * YS], yb[4 * YS];
    for (int mode = 0; mode < 3; mode++)
        for (int n = 1; n <= MAXN; n++)
            for (int rows = 1; rows <= M; rows++) {
                const int cols = M * n - (int)(rnd() % M);
                const float bias = uni(2.0f);
                for (int i = 0; i < 36 * MS; i++)
                    m[i] = sample(mode);
                for (int i = 0; i < 4 * YS; i++)
                    ya[i] = yb[i] = GUARD;
                ref.wino_out[f](ya, YS, m, MS, n, rows, cols, bias);
                opt.wino_out[f](yb, YS, m, MS, n, rows, cols, bias);
                for (int k = 0; k < 4; k++)
                    for (int c = 0; c < YS; c++) {
                        const float r = ya[k * YS + c], o = yb[k * YS + c];
                        if (k >= rows || c >= cols) {
                            ck_assert_msg(r == GUARD && o == GUARD, "wino_out %d n %d rows %d "
                                          "cols %d wrote row %d column %d", f, n, rows, cols, k, c);
                            continue;
                        }
                        double mag = fabs(bias);
                        for (int p = 0; p < A * A; p++)
                            if (isfinite(m[p * MS + c / M]))
                                mag += gain * fabs(m[p * MS + c / M]);
                        ck_assert_msg(agree(r, o, mag), "wino_out %d mode %d n %d row %d col %d: "
                                      "c %a avx2 %a", f, mode, n, k, c, r, o);
                    }
            }
}
END_TEST

START_TEST(test_wino_weights)
{
    if (!have_opt)
        return;
    const int f = _i, P = f == VG_WINO_F43 ? 36 : 16;
    enum { MAXN = 37, US = MAXN + 5 };
    static float g[9 * MAXN], ua[36 * US], ub[36 * US];
    for (int mode = 0; mode < 3; mode++)
        for (int n = 1; n <= MAXN; n++) {
            for (int i = 0; i < 9 * MAXN; i++)
                g[i] = sample(mode) * 0.1f;
            for (int i = 0; i < 36 * US; i++)
                ua[i] = ub[i] = GUARD;
            ref.wino_weights[f](ua, US, g, n);
            opt.wino_weights[f](ub, US, g, n);
            for (int p = 0; p < 36; p++)
                for (int k = 0; k < US; k++) {
                    const float r = ua[p * US + k], o = ub[p * US + k];
                    if (k >= n || p >= P) {
                        ck_assert_msg(r == GUARD && o == GUARD, "wino_weights %d n %d wrote p %d "
                                      "kernel %d", f, n, p, k);
                        continue;
                    }
                    double mag = 0;
                    for (int e = 0; e < 9; e++)
                        if (isfinite(g[9 * k + e]))
                            mag += fabs(g[9 * k + e]);
                    ck_assert_msg(agree(r, o, mag), "wino_weights %d mode %d n %d p %d kernel %d: "
                                  "c %a avx2 %a", f, mode, n, p, k, r, o);
                }
        }
}
END_TEST

/* u, v, m with row strides past their widths, guards around m */
START_TEST(test_wino_gemm)
{
    if (!have_opt)
        return;
    static const int ks[] = { 1, 2, 7, 255, 256, 257, 600 };
    enum { MAXR = 13, MAXC = 64, MAXK = 600, LDU = MAXK + 3, LDV = MAXC + 16, LDM = MAXC + 5 };
    static float u[MAXR * LDU], v[MAXK * LDV], ma[(MAXR + 1) * LDM], mb[(MAXR + 1) * LDM];
    for (int mode = 0; mode < 3; mode++)
        for (size_t ki = 0; ki < sizeof(ks) / sizeof(*ks); ki++)
            for (int rows = 1; rows <= MAXR; rows++)
                for (int cols = 16; cols <= MAXC; cols += 16) {
                    const int k = ks[ki];
                    if (mode && rows > 7 && cols > 16)
                        continue; /* extreme values: enough shapes */
                    for (int i = 0; i < MAXR * LDU; i++)
                        u[i] = sample(mode);
                    for (int i = 0; i < MAXK * LDV; i++)
                        v[i] = sample(mode);
                    for (int i = 0; i < (MAXR + 1) * LDM; i++)
                        ma[i] = mb[i] = GUARD;
                    ref.wino_gemm(ma, LDM, u, LDU, v, LDV, rows, cols, k);
                    opt.wino_gemm(mb, LDM, u, LDU, v, LDV, rows, cols, k);
                    for (int r = 0; r <= MAXR; r++)
                        for (int t = 0; t < LDM; t++) {
                            const float a = ma[r * LDM + t], o = mb[r * LDM + t];
                            if (r >= rows || t >= cols) {
                                ck_assert_msg(a == GUARD && o == GUARD, "wino_gemm rows %d "
                                              "cols %d k %d wrote row %d column %d", rows,
                                              cols, k, r, t);
                                continue;
                            }
                            /* same order of the sums, FMA or not: each side is
                             * within k eps of sum |u v| */
                            double mag = 0;
                            for (int j = 0; j < k; j++) {
                                const double pr = (double)u[r * LDU + j] * v[j * LDV + t];
                                if (isfinite(pr))
                                    mag += fabs(pr);
                            }
                            ck_assert_msg(agree(a, o, mag * 1.2e-7 * k / 1e-6),
                                          "wino_gemm mode %d rows %d cols %d k %d at %d,%d: "
                                          "c %a avx2 %a", mode, rows, cols, k, r, t, a, o);
                        }
                }
}
END_TEST

int main(void)
{
    init_tables();
    Suite *s = suite_create("winograd");
    TCase *tc = tcase_create("winograd");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_vs_direct, 0, (int)(sizeof(cases) / sizeof(*cases)));
    tcase_add_loop_test(tc, test_wino_weights, 0, VG_WINO_N);
    tcase_add_loop_test(tc, test_wino_in, 0, VG_WINO_N);
    tcase_add_loop_test(tc, test_wino_out, 0, VG_WINO_N);
    tcase_add_test(tc, test_wino_gemm);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fprintf(stderr, "check_winograd: largest conv error relative to the output's scale: "
            "F(4x4) %.3g, F(2x2) %.3g\n", worst_rel[0], worst_rel[1]);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
