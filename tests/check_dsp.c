/*
 * checkasm-style test of the element-wise kernel table (engine/ops/dsp.h):
 * every AVX2 kernel against the C reference on random and extreme inputs
 * (NaN, +-Inf, subnormals, +-0, huge values), lengths 1..67, pointers
 * offset from alignment, in-place use, and guard floats after the end that
 * must stay untouched. Tolerance: 0 ULP (the AVX2 code does the same single
 * roundings as C); any NaN matches any NaN.
 *
 * conv_direct (few-channel direct convolution) is compared separately with a
 * tolerance, because the AVX2 version uses FMA: random inputs must agree
 * within 2e-5 of the sum of |w * x| over the taps (plus 1e-37 for
 * subnormal products); extreme inputs use power-of-two weights <= 1, where FMA
 * and multiply-then-add round alike, and must match up to NaN.
 *
 * The Winograd transforms of the table (wino_*) have their own checkasm
 * test in tests/check_winograd.c, next to the conv2d path that uses them.
 *
 * `check_dsp --bench` prints C and AVX2 timings instead.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ops/dsp.h"
#include "engine/x86/ops.h"

#define MAX_LEN 67
#define PAD 16
#define MAX_ULP 0

static VgOpsDsp ref, opt;
static int have_opt;

static void init_tables(void)
{
    vg_ops_dsp_init_c(&ref);
    vg_ops_dsp_init_c(&opt);
    __builtin_cpu_init();
    have_opt = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (have_opt)
        vg_ops_dsp_init_avx2(&opt);
}

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

static float extreme(void)
{
    static const float v[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MIN * 0.5f,
                               -FLT_MIN * 0.25f, 1e-45f, FLT_MAX, -FLT_MAX, 1.0f, -1.0f };
    return v[rnd() % (sizeof(v) / sizeof(*v))];
}

static void fill(float *p, int n, int mode)
{
    for (int i = 0; i < n; i++)
        p[i] = mode == 0 ? (float)((int)(rnd() % 2001) - 1000) / 100.0f
             : mode == 1 ? extreme()
                         : ((rnd() & 3) ? (float)((int)(rnd() % 201) - 100) * 1e-40f : extreme());
}

static int64_t ulp_diff(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    if (a == b)
        return 0;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    /* map to a monotonic integer line */
    const int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    const int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return llabs(la - lb);
}

/* Compares @n outputs plus the guard area after them. */
static void compare(const char *fn, const float *a, const float *b, int n, int off, int mode,
                    const float *in)
{
    for (int i = 0; i < n + PAD; i++) {
        const int64_t d = ulp_diff(a[i], b[i]);
        ck_assert_msg(d <= MAX_ULP, "%s: n %d offset %d input mode %d: element %d%s "
                      "c %a avx2 %a (input %a)", fn, n, off, mode, i,
                      i >= n ? " (past the end!)" : "", a[i], b[i], i < n ? in[i] : 0.0);
    }
}

enum { F_RELU, F_LEAKY, F_ADD, F_SCALE, F_BIAS, F_BIAS_RELU, F_BIAS_LEAKY, F_N };
static const char *const fn_names[F_N] = { "relu", "leaky", "add", "scale", "bias_act[none]",
                                           "bias_act[relu]", "bias_act[leaky]" };

static void call(const VgOpsDsp *d, int f, float *y, const float *x, const float *x2, int n,
                 float s)
{
    switch (f) {
    case F_RELU:       d->relu(y, x, n); break;
    case F_LEAKY:      d->leaky(y, x, n, s); break;
    case F_ADD:        d->add(y, x, x2, n); break;
    case F_SCALE:      d->scale(y, x, n, s); break;
    case F_BIAS:       d->bias_act[VG_DSP_ACT_NONE](y, x, n, s * 3, s); break;
    case F_BIAS_RELU:  d->bias_act[VG_DSP_ACT_RELU](y, x, n, -s * 2, s); break;
    case F_BIAS_LEAKY: d->bias_act[VG_DSP_ACT_LEAKY](y, x, n, s, s); break;
    }
}

START_TEST(test_dispatch)
{
    const VgOpsDsp *d = vg_ops_dsp();
    ck_assert_str_eq(d->isa, have_opt ? "avx2" : "c");
    if (!have_opt)
        fprintf(stderr, "check_dsp: CPU without AVX2+FMA: only the C table is in use, "
                "nothing to compare\n");
}
END_TEST

START_TEST(test_kernel)
{
    const int f = _i;
    float in[MAX_LEN + PAD + 8], in2[MAX_LEN + PAD + 8];
    float ya[MAX_LEN + PAD + 8], yb[MAX_LEN + PAD + 8];
    const float slopes[] = { 0.1f, 0.25f, -0.5f, 0.0f, 1e-39f };
    for (int mode = 0; mode < 3; mode++)
        for (int n = 0; n <= MAX_LEN; n++)
            for (int off = 0; off < 4; off++) {
                const float s = slopes[rnd() % 5];
                fill(in, MAX_LEN + PAD + 8, mode);
                fill(in2, MAX_LEN + PAD + 8, mode);
                for (int i = 0; i < MAX_LEN + PAD + 8; i++)
                    ya[i] = yb[i] = -777.0f; /* guards */
                call(&ref, f, ya + off, in + off, in2 + off, n, s);
                call(&opt, f, yb + off, in + off, in2 + off, n, s);
                compare(fn_names[f], ya + off, yb + off, n, off, mode, in + off);
                ck_assert(ya[off + n] == -777.0f && ya[off + n + PAD - 1] == -777.0f);
                /* in place: y == x */
                memcpy(yb, in, sizeof(in));
                call(&opt, f, yb + off, yb + off, in2 + off, n, s);
                for (int i = 0; i < n; i++)
                    ck_assert_msg(ulp_diff(ya[off + i], yb[off + i]) <= MAX_ULP,
                                  "%s in place: n %d element %d", fn_names[f], n, i);
            }
}
END_TEST

/* ---------------------------------------------------------- conv_direct */

typedef struct DirectCase { int cin, kh, kw, dh, dw, n; } DirectCase;

/* One comparison: Cout @cout, the rest from @dc; @mode 0 random, 1 extreme
 * inputs with power-of-two weights. Output and input rows are padded so
 * guards catch writes past n and the input is allocated to the byte. */
static void direct_case(int cout, const DirectCase *dc, int mode, int off)
{
    const int rows = (dc->kh - 1) * dc->dh + 1;
    const ptrdiff_t xrs = dc->n + (dc->kw - 1) * dc->dw + (off & 1);
    const ptrdiff_t xcs = rows * xrs + off;
    const ptrdiff_t ys = dc->n + 5;
    const size_t nx = (size_t)(dc->cin - 1) * xcs + (rows - 1) * xrs + xrs;
    const size_t nw = (size_t)cout * dc->cin * dc->kh * dc->kw, ny = (size_t)cout * ys;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *ya = malloc(ny * 4), *yb = malloc(ny * 4);
    ck_assert(x && w && ya && yb);
    static const float pow2[] = { 0.0f, 1.0f, -1.0f, 0.5f, -0.25f, -0.125f, 1.0f }; /* |w| <= 1: no overflow */
    fill(x, (int)nx, mode ? 1 + (int)(rnd() % 2) : 0);
    for (size_t i = 0; i < nw; i++)
        w[i] = mode ? pow2[rnd() % 7] : (float)((int)(rnd() % 2001) - 1000) / 3000.0f;
    for (size_t i = 0; i < ny; i++)
        ya[i] = yb[i] = -777.0f;
    const VgConvDirectArgs a = { x, xcs, xrs, w, cout, dc->cin, dc->kh, dc->kw, dc->dh, dc->dw };
    ref.conv_direct(ya, ys, &a, dc->n);
    opt.conv_direct(yb, ys, &a, dc->n);
    for (int co = 0; co < cout; co++)
        for (ptrdiff_t j = 0; j < ys; j++) {
            const float r = ya[co * ys + j], o = yb[co * ys + j];
            if (j >= dc->n) {
                ck_assert_msg(r == -777.0f && o == -777.0f, "conv_direct wrote past n %d "
                              "(cout %d, row %d, column %td)", dc->n, cout, co, j);
                continue;
            }
            double mag = 0;
            for (int ci = 0; ci < dc->cin; ci++)
                for (int ky = 0; ky < dc->kh; ky++)
                    for (int kx = 0; kx < dc->kw; kx++)
                        mag += fabs((double)w[((co * dc->cin + ci) * dc->kh + ky) * dc->kw + kx] *
                                    x[ci * xcs + ky * dc->dh * xrs + kx * dc->dw + j]);
            const int ok = (isnan(r) && isnan(o)) || r == o ||
                           (mode == 0 && fabs((double)r - o) <= 2e-5 * mag + 1e-37) ||
                           (mode == 1 && isfinite(r) && fabs((double)r - o) <= 1e-37);
            ck_assert_msg(ok, "conv_direct cout %d cin %d k %dx%d dil %dx%d n %d mode %d: "
                          "row %d column %td: c %a avx2 %a", cout, dc->cin, dc->kh, dc->kw,
                          dc->dh, dc->dw, dc->n, mode, co, j, r, o);
        }
    free(x), free(w), free(ya), free(yb);
}

START_TEST(test_conv_direct)
{
    const int cout = _i; /* 1 .. VG_CONV_DIRECT_MAX_COUT - 1 */
    static const DirectCase shapes[] = {
        { 1, 3, 3, 1, 1, 7 },   { 3, 3, 3, 1, 1, 33 },  { 64, 3, 3, 1, 1, 97 },
        { 67, 3, 3, 1, 1, 41 }, { 48, 1, 1, 1, 1, 131 }, { 5, 5, 3, 2, 1, 19 },
        { 2, 3, 5, 1, 2, 64 },  { 16, 1, 3, 1, 3, 1 },  { 7, 3, 1, 1, 1, 8 },
        { 13, 3, 3, 1, 1, 9 },  { 31, 2, 2, 1, 1, 95 }, { 4, 3, 3, 1, 1, 200 },
    };
    for (int mode = 0; mode < 2; mode++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(*shapes); s++)
            direct_case(cout, &shapes[s], mode, (int)s & 3);
    /* every Cin 1..67 on an odd width */
    for (int cin = 1; cin <= 67; cin++) {
        const DirectCase dc = { cin, 3, 3, 1, 1, 37 + (cin & 15) };
        direct_case(cout, &dc, 0, cin & 3);
    }
}
END_TEST

/* The C reference conv_direct on a case worked out by hand. */
START_TEST(test_conv_direct_values)
{
    /* 1 input channel, 2 rows of 4, kernel 2x2, 2 output channels, n 3 */
    const float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const float w[8] = { 1, 0, 0, 1, /* x[j] + x[4 + j + 1] */ 0, 2, -1, 0 };
    float y[6];
    const VgConvDirectArgs a = { x, 8, 4, w, 2, 1, 2, 2, 1, 1 };
    ref.conv_direct(y, 3, &a, 3);
    ck_assert(y[0] == 7 && y[1] == 9 && y[2] == 11);   /* 1+6, 2+7, 3+8 */
    ck_assert(y[3] == -1 && y[4] == 0 && y[5] == 1);   /* 2*2-5, 2*3-6, 2*4-7 */
}
END_TEST

/* The C reference itself, on values whose answer is known. */
START_TEST(test_reference_values)
{
    float x[6] = { -2.0f, -0.0f, 0.0f, 3.0f, NAN, -INFINITY }, y[6];
    ref.relu(y, x, 6);
    ck_assert(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 3 && isnan(y[4]) && y[5] == 0);
    ref.leaky(y, x, 6, 0.5f);
    ck_assert(y[0] == -1 && y[3] == 3 && isnan(y[4]) && y[5] == -INFINITY);
    ref.bias_act[VG_DSP_ACT_RELU](y, x, 6, 1.0f, 0);
    ck_assert(y[0] == 0 && y[2] == 1 && y[3] == 4 && y[5] == 0);
}
END_TEST

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int bench(void)
{
    init_tables();
    enum { N = 64 * 1024, REPS = 2000 };
    float *x = aligned_alloc(64, N * 4), *x2 = aligned_alloc(64, N * 4), *y = aligned_alloc(64, N * 4);
    fill(x, N, 0);
    fill(x2, N, 0);
    printf("%-16s %10s %10s  (%d floats, ns per call)\n", "kernel", "c", have_opt ? "avx2" : "-", N);
    for (int f = 0; f < F_N; f++) {
        double t[2] = { 0, 0 };
        for (int v = 0; v < 1 + have_opt; v++) {
            const VgOpsDsp *d = v ? &opt : &ref;
            double t0 = now();
            for (int r = 0; r < REPS; r++)
                call(d, f, y, x, x2, N, 0.1f);
            t[v] = (now() - t0) / REPS * 1e9;
        }
        printf("%-16s %10.0f %10.0f  x%.1f\n", fn_names[f], t[0], t[1], t[1] ? t[0] / t[1] : 0);
    }
    free(x), free(x2), free(y);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench();
    init_tables();
    Suite *s = suite_create("dsp");
    TCase *tc = tcase_create("ops");
    tcase_add_unchecked_fixture(tc, init_tables, NULL);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, test_reference_values);
    tcase_add_loop_test(tc, test_kernel, 0, F_N);
    tcase_add_test(tc, test_conv_direct_values);
    tcase_add_loop_test(tc, test_conv_direct, 1, VG_CONV_DIRECT_MAX_COUT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
