/*
 * Ops against PyTorch: tests/reference/gen_ops.py wrote inputs and torch's
 * outputs into tests/fixtures/ops/. Tolerance: max abs error <= 1e-4 (F32
 * GEMM vs torch's conv summation order; values are O(1)); the conv cases
 * also run through both Winograd variants at that tolerance. Data movement ops
 * (concat, upsample, depth_to_space) must be exact.
 *
 * `check_ops --bench` instead prints sgemm and conv2d GFLOPS for the
 * realesr-animevideov3 layer shape ([1, 64, 360, 640], 3x3, 64 -> 64).
 */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "visgen/visgen.h"
#include "engine/mem.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/ops/conv_winograd.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define TOL 1e-4

static VgCtx *ctx;

static void setup(void)
{
    ctx = vgt_ctx_open(2, VG_LOG_WARNING);
    vgt_log_reset();
}

static void teardown(void)
{
    vg_close(&ctx);
}

/* ------------------------------------------------------------------ conv */

static const char *const conv_cases[] = {
    "k1", "k1pad", "k1s2", "k3", "k3valid", "k3asym", "k3s2", "k3s21", "k3d2", "k3d2s2",
    "k5", "k5s2", "k3x1", "relu", "leaky", "prelu", "prelu1x1",
    "same_k3s2", "same_k4s1", "same_k5s3",
};

static void run_conv_case(VgCtx *c, const VgWeights *w, const char *name)
{
    const VgTensor *x = vgt_get(w, "%s.x", name), *wt = vgt_get(w, "%s.w", name);
    const VgTensor *ref = vgt_get(w, "%s.y", name);
    char bn[64];
    snprintf(bn, sizeof(bn), "%s.b", name);
    const VgTensor *b = vg_weights_find(w, bn); /* absent = no bias */
    const int32_t *pp = vgt_get(w, "%s.p", name)->data;
    const int act = *(const int32_t *)vgt_get(w, "%s.act", name)->data;
    VgConvParams p = { .stride_h = pp[0], .stride_w = pp[1], .pad_top = pp[2], .pad_left = pp[3],
                       .pad_bottom = pp[4], .pad_right = pp[5], .dil_h = pp[6], .dil_w = pp[7] };
    if (!strncmp(name, "same_", 5)) {
        VgConvParams s = { .stride_h = p.stride_h, .stride_w = p.stride_w };
        vg_conv_params_same(&s, (int)wt->ne[2], (int)wt->ne[3], (int)x->ne[2], (int)x->ne[3]);
        ck_assert_msg(!memcmp(&s, &p, sizeof(p)), "%s: vg_conv_params_same pads t%d l%d b%d r%d, "
                      "TF gives t%d l%d b%d r%d", name, s.pad_top, s.pad_left, s.pad_bottom,
                      s.pad_right, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right);
    }
    ck_assert_int_eq(vg_conv_out_size((int)x->ne[2], (int)wt->ne[2], p.stride_h, p.pad_top,
                                      p.pad_bottom, p.dil_h), ref->ne[2]);
    VgTensor y;
    vgt_alloc_like(&y, ref);
    int ret;
    switch (act) {
    case 0: ret = vg_conv2d(c, x, wt, b, &p, &y); break;
    case 1: ret = vg_conv2d_act(c, x, wt, b, &p, VG_ACT_RELU, 0, NULL, &y); break;
    case 2: ret = vg_conv2d_act(c, x, wt, b, &p, VG_ACT_LEAKY, 0.1f, NULL, &y); break;
    default:
        ret = vg_conv2d_act(c, x, wt, b, &p, VG_ACT_PRELU, 0, vgt_get(w, "%s.alpha", name), &y);
    }
    ck_assert_msg(ret == 0, "%s: conv2d returned %d (%s)", name, ret, vgt_last_error);
    vgt_assert_close(&y, ref, TOL, name);
    vg_tensor_free(&y);
}

START_TEST(test_conv_cases)
{
    VgWeights *w = vgt_fixture("ops/conv.safetensors");
    run_conv_case(ctx, w, conv_cases[_i]);
    /* single-threaded path (no ctx) gives the same */
    run_conv_case(NULL, w, conv_cases[_i]);
    vg_weights_close(&w);
}
END_TEST

/* The same cases through each Winograd variant (forced; cases other than
 * 3x3 stride 1 undilated still go the im2col way): same torch reference,
 * same tolerance. */
START_TEST(test_conv_cases_winograd)
{
    VgWeights *w = vgt_fixture("ops/conv.safetensors");
    for (int variant = 1; variant <= 2; variant++) {
        vg_conv_winograd_force(variant);
        run_conv_case(ctx, w, conv_cases[_i]);
        run_conv_case(NULL, w, conv_cases[_i]);
    }
    vg_conv_winograd_force(-1);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_conv64_prelu)
{
    VgWeights *w = vgt_fixture("ops/conv64.safetensors");
    run_conv_case(ctx, w, "c64");
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_conv_params)
{
    VgConvParams p;
    vg_conv_params_default(&p);
    ck_assert(p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1);
    ck_assert(!p.pad_top && !p.pad_left && !p.pad_bottom && !p.pad_right);
    /* "same", stride 1, 3x3: 1 each side; 4x4 (even): 1 before, 2 after */
    vg_conv_params_same(&p, 3, 4, 10, 10);
    ck_assert(p.pad_top == 1 && p.pad_bottom == 1 && p.pad_left == 1 && p.pad_right == 2);
    /* stride 2 on 10: out 5, total (5-1)*2 + 3 - 10 = 1 -> 0 before, 1 after */
    vg_conv_params_default(&p);
    p.stride_h = p.stride_w = 2;
    vg_conv_params_same(&p, 3, 3, 10, 11);
    ck_assert(p.pad_top == 0 && p.pad_bottom == 1);
    ck_assert(p.pad_left == 1 && p.pad_right == 1); /* 11: out 6, total 2 */
    ck_assert_int_eq(vg_conv_out_size(10, 3, 1, 1, 1, 1), 10);
    ck_assert_int_eq(vg_conv_out_size(10, 3, 2, 0, 1, 1), 5);
    ck_assert_int_eq(vg_conv_out_size(12, 3, 1, 0, 0, 2), 8);
    ck_assert_int_eq(vg_conv_out_size(2, 5, 1, 0, 0, 1), -1);
    ck_assert_int_eq(vg_conv_out_size(10, 3, 0, 0, 0, 1), -1);
}
END_TEST

START_TEST(test_conv_errors)
{
    VgTensor x, w, b, y, a, w3;
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, 3, 8, 8), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&w, 4, 3, 3, 3), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&w3, 4, 2, 3, 3), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&y, 1, 4, 8, 8), 0);
    int64_t n5 = 5;
    ck_assert_int_eq(vg_tensor_alloc(&b, VG_DT_F32, 1, &n5), 0);
    ck_assert_int_eq(vg_tensor_alloc(&a, VG_DT_F32, 1, &n5), 0);
    VgConvParams p;
    vg_conv_params_default(&p);
    /* no padding: output would be 6x6, y is 8x8 */
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, NULL, &p, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "conv2d"));
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, NULL, &p, &y), 0);
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w3, NULL, &p, &y), VG_ERR(EINVAL)); /* Cin 2 != 3 */
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, &b, &p, &y), VG_ERR(EINVAL));    /* bias 5 != 4 */
    ck_assert_int_eq(vg_conv2d_act(ctx, &x, &w, NULL, &p, VG_ACT_PRELU, 0, &a, &y),
                     VG_ERR(EINVAL));                                        /* alpha 5 != 4 */
    ck_assert_int_eq(vg_conv2d_act(ctx, &x, &w, NULL, &p, VG_ACT_PRELU, 0, NULL, &y),
                     VG_ERR(EINVAL));
    ck_assert_int_eq(vg_conv2d_act(ctx, &x, &w, NULL, &p, (VgAct)42, 0, NULL, &y),
                     VG_ERR(EINVAL));
    p.stride_h = 0;
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, NULL, &p, &y), VG_ERR(EINVAL));
    p.stride_h = 1;
    p.pad_left = -1;
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, NULL, &p, &y), VG_ERR(EINVAL));
    p.pad_left = 1;
    VgTensor x3 = x; /* 3-D view: not [N, C, H, W] */
    x3.ndim = 3;
    ck_assert_int_eq(vg_conv2d(ctx, &x3, &w, NULL, &p, &y), VG_ERR(EINVAL));
    VgTensor xh = x;
    xh.dtype = VG_DT_F16;
    ck_assert_int_eq(vg_conv2d(ctx, &xh, &w, NULL, &p, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_conv2d(ctx, &x, &w, NULL, &p, &x), VG_ERR(EINVAL));   /* in place */
    ck_assert_int_eq(vgt_n_errors, 11); /* one line per failure */
    vg_tensor_free(&x);
    vg_tensor_free(&w);
    vg_tensor_free(&w3);
    vg_tensor_free(&y);
    vg_tensor_free(&b);
    vg_tensor_free(&a);
}
END_TEST

/* Bands: a picture tall enough that the stride-1 and general paths cut it
 * into several bands must give the same as one band per row computed the
 * slow way (a direct loop here). */
START_TEST(test_conv_bands)
{
    VgTensor x, w, b, y;
    const int H = 40, W = 700, C = 16, O = 8;
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, C, H, W), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&w, O, C, 3, 3), 0);
    int64_t no = O;
    ck_assert_int_eq(vg_tensor_alloc(&b, VG_DT_F32, 1, &no), 0);
    float *px = x.data, *pw = w.data, *pb = b.data;
    srand(7);
    for (int64_t i = 0; i < vg_tensor_nelem(&x); i++)
        px[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int64_t i = 0; i < vg_tensor_nelem(&w); i++)
        pw[i] = (rand() / (float)RAND_MAX - 0.5f) / 12;
    for (int i = 0; i < O; i++)
        pb[i] = i * 0.1f;
    for (int stride = 1; stride <= 2; stride++) {
        VgConvParams p;
        vg_conv_params_default(&p);
        p.stride_h = p.stride_w = stride;
        p.pad_top = 1, p.pad_left = 2, p.pad_bottom = 0, p.pad_right = 1;
        const int ho = vg_conv_out_size(H, 3, stride, 1, 0, 1);
        const int wo = vg_conv_out_size(W, 3, stride, 2, 1, 1);
        ck_assert_int_eq(vg_tensor_alloc4(&y, 1, O, ho, wo), 0);
        ck_assert_int_eq(vg_conv2d_act(ctx, &x, &w, &b, &p, VG_ACT_RELU, 0, NULL, &y), 0);
        double err = 0;
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double s = pb[o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                const int iy = oy * stride - 1 + ky, ix = ox * stride - 2 + kx;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    s += (double)px[(c * H + iy) * W + ix] *
                                         pw[((o * C + c) * 3 + ky) * 3 + kx];
                            }
                    s = s < 0 ? 0 : s;
                    const double d = fabs(s - ((float *)y.data)[(o * ho + oy) * wo + ox]);
                    err = d > err ? d : err;
                }
        ck_assert_msg(err <= TOL, "stride %d: max abs error %g vs direct loop", stride, err);
        vg_tensor_free(&y);
    }
    vg_tensor_free(&x);
    vg_tensor_free(&w);
    vg_tensor_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- blas */

/* visgen sets OpenBLAS to 1 thread and calls sgemm from several pool
 * workers at once (engine/blas.h). Stress that: 4 threads x many sgemms of
 * mixed shapes (large enough to use OpenBLAS's packing buffers) must give
 * the same bits as the same products run one after another. */
enum { STRESS_THREADS = 4, STRESS_GEMMS = 12 };

typedef struct StressJob {
    int m, n, k;
    float *a, *b, *c;
} StressJob;

static StressJob stress_jobs[STRESS_THREADS][STRESS_GEMMS];

static void stress_gemm(const StressJob *j)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, (j->m & 1) ? CblasTrans : CblasNoTrans, j->m, j->n,
                j->k, 1.0f, j->a, j->k, j->b, (j->m & 1) ? j->k : j->n, 0.0f, j->c, j->n);
}

static void *stress_thread(void *arg)
{
    StressJob *jobs = arg;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < STRESS_GEMMS; i++)
            stress_gemm(&jobs[i]);
    return NULL;
}

START_TEST(test_blas_concurrent)
{
    int (*get_threads)(void) = openblas_get_num_threads;
    ck_assert_int_eq(get_threads(), 1); /* set by vg_open */
    static const int dims[][3] = { { 3, 2000, 432 }, { 64, 700, 576 }, { 4, 640, 576 },
                                   { 96, 96, 96 }, { 257, 130, 300 }, { 16, 4096, 64 } };
    srand(11);
    for (int t = 0; t < STRESS_THREADS; t++)
        for (int i = 0; i < STRESS_GEMMS; i++) {
            StressJob *j = &stress_jobs[t][i];
            const int *d = dims[(t + i) % 6];
            j->m = d[0], j->n = d[1], j->k = d[2];
            j->a = vg_malloc(sizeof(float) * j->m * j->k);
            j->b = vg_malloc(sizeof(float) * j->k * j->n);
            j->c = vg_malloc(sizeof(float) * j->m * j->n);
            ck_assert(j->a && j->b && j->c);
            for (int e = 0; e < j->m * j->k; e++)
                j->a[e] = rand() / (float)RAND_MAX - 0.5f;
            for (int e = 0; e < j->k * j->n; e++)
                j->b[e] = rand() / (float)RAND_MAX - 0.5f;
        }
    /* serial reference */
    float *ref[STRESS_THREADS][STRESS_GEMMS];
    for (int t = 0; t < STRESS_THREADS; t++)
        for (int i = 0; i < STRESS_GEMMS; i++) {
            StressJob *j = &stress_jobs[t][i];
            stress_gemm(j);
            ref[t][i] = vg_malloc(sizeof(float) * j->m * j->n);
            ck_assert(ref[t][i]);
            memcpy(ref[t][i], j->c, sizeof(float) * j->m * j->n);
            memset(j->c, 0xff, sizeof(float) * j->m * j->n); /* NaN until recomputed */
        }
    pthread_t th[STRESS_THREADS];
    for (int t = 0; t < STRESS_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, stress_thread, stress_jobs[t]), 0);
    for (int t = 0; t < STRESS_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < STRESS_THREADS; t++)
        for (int i = 0; i < STRESS_GEMMS; i++) {
            StressJob *j = &stress_jobs[t][i];
            ck_assert_msg(!memcmp(ref[t][i], j->c, sizeof(float) * j->m * j->n),
                          "thread %d sgemm %d (%dx%dx%d): concurrent result differs from serial",
                          t, i, j->m, j->n, j->k);
            vg_free(ref[t][i]);
            vg_free(j->a), vg_free(j->b), vg_free(j->c);
        }
}
END_TEST

/* vg_linear splits rows (large M) or columns (small M, wide N) over the
 * pool's workers, each with its own sgemm and bias: check both splits and
 * the unsplit case against a double-precision loop. */
START_TEST(test_linear_split)
{
    static const int64_t shapes[][3] = { { 100, 37, 70 }, { 3, 300, 41 }, { 5, 20, 9 } };
    srand(5);
    for (int s = 0; s < 3; s++) {
        const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        VgTensor x, w, b, y;
        ck_assert_int_eq(vg_tensor_alloc(&x, VG_DT_F32, 2, (int64_t[]){ m, k }), 0);
        ck_assert_int_eq(vg_tensor_alloc(&w, VG_DT_F32, 2, (int64_t[]){ n, k }), 0);
        ck_assert_int_eq(vg_tensor_alloc(&b, VG_DT_F32, 1, (int64_t[]){ n }), 0);
        ck_assert_int_eq(vg_tensor_alloc(&y, VG_DT_F32, 2, (int64_t[]){ m, n }), 0);
        float *px = x.data, *pw = w.data, *pb = b.data, *py = y.data;
        for (int64_t i = 0; i < m * k; i++)
            px[i] = rand() / (float)RAND_MAX - 0.5f;
        for (int64_t i = 0; i < n * k; i++)
            pw[i] = rand() / (float)RAND_MAX - 0.5f;
        for (int64_t i = 0; i < n; i++)
            pb[i] = (float)i / n;
        ck_assert_int_eq(vg_linear(ctx, &x, &w, &b, &y), 0);
        double err = 0;
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < n; c++) {
                double acc = pb[c];
                for (int64_t i = 0; i < k; i++)
                    acc += (double)px[r * k + i] * pw[c * k + i];
                err = fmax(err, fabs(acc - py[r * n + c]));
            }
        ck_assert_msg(err <= TOL, "linear %lldx%lldx%lld: max abs error %g", (long long)m,
                      (long long)n, (long long)k, err);
        vg_tensor_free(&x), vg_tensor_free(&w), vg_tensor_free(&b), vg_tensor_free(&y);
    }
}
END_TEST

/* -------------------------------------------------------------- eltwise */

START_TEST(test_eltwise)
{
    VgWeights *w = vgt_fixture("ops/eltwise.safetensors");
    const VgTensor *x = vgt_get(w, "x"), *x2 = vgt_get(w, "x2");
    VgTensor y, yi;
    vgt_alloc_like(&y, x);

    ck_assert_int_eq(vg_bias_add(ctx, x, vgt_get(w, "b"), &y), 0);
    vgt_assert_close(&y, vgt_get(w, "bias_add"), TOL, "bias_add");
    ck_assert_int_eq(vg_relu(ctx, x, &y), 0);
    vgt_assert_close(&y, vgt_get(w, "relu"), 0, "relu");
    ck_assert_int_eq(vg_leaky_relu(ctx, x, 0.2f, &y), 0);
    vgt_assert_close(&y, vgt_get(w, "leaky"), TOL, "leaky_relu");
    ck_assert_int_eq(vg_prelu(ctx, x, vgt_get(w, "alpha"), &y), 0);
    vgt_assert_close(&y, vgt_get(w, "prelu"), TOL, "prelu");
    ck_assert_int_eq(vg_prelu(ctx, x, vgt_get(w, "alpha1"), &y), 0);
    vgt_assert_close(&y, vgt_get(w, "prelu1"), TOL, "prelu shared");
    ck_assert_int_eq(vg_add(ctx, x, x2, &y), 0);
    vgt_assert_close(&y, vgt_get(w, "add"), TOL, "add");
    ck_assert_int_eq(vg_scale(ctx, x, 0.7f, &y), 0);
    vgt_assert_close(&y, vgt_get(w, "scale"), TOL, "scale");
    /* relu(add): PyTorch's add, clamped here */
    const VgTensor *ref_add = vgt_get(w, "add");
    vgt_alloc_like(&yi, ref_add);
    for (int64_t i = 0; i < vg_tensor_nelem(ref_add); i++)
        ((float *)yi.data)[i] = fmaxf(((const float *)ref_add->data)[i], 0.0f);
    ck_assert_int_eq(vg_add_act(ctx, x, x2, VG_ACT_RELU, &y), 0);
    vgt_assert_close(&y, &yi, TOL, "add + relu");
    vg_tensor_free(&yi);

    /* in place */
    vgt_alloc_like(&yi, x);
    memcpy(yi.data, x->data, sizeof(float) * vg_tensor_nelem(x));
    ck_assert_int_eq(vg_prelu(NULL, &yi, vgt_get(w, "alpha"), &yi), 0);
    vgt_assert_close(&yi, vgt_get(w, "prelu"), TOL, "prelu in place");
    memcpy(yi.data, x->data, sizeof(float) * vg_tensor_nelem(x));
    ck_assert_int_eq(vg_add(ctx, &yi, x2, &yi), 0);
    vgt_assert_close(&yi, vgt_get(w, "add"), TOL, "add in place");
    vg_tensor_free(&yi);
    vg_tensor_free(&y);
    vg_weights_close(&w);
}
END_TEST

/* add + relu runs in L1-sized pieces: lengths around and past a piece */
START_TEST(test_add_relu_pieces)
{
    static const int64_t lens[] = { 1, 7, 2047, 2048, 2049, 16 * 1024 + 3, 100003 };
    for (size_t k = 0; k < sizeof(lens) / sizeof(*lens); k++) {
        VgTensor a, b, y;
        ck_assert_int_eq(vg_tensor_alloc4(&a, 1, 1, 1, lens[k]), 0);
        ck_assert_int_eq(vg_tensor_alloc4(&b, 1, 1, 1, lens[k]), 0);
        ck_assert_int_eq(vg_tensor_alloc4(&y, 1, 1, 1, lens[k]), 0);
        float *pa = a.data, *pb = b.data, *py = y.data;
        for (int64_t i = 0; i < lens[k]; i++) {
            pa[i] = (float)((i * 7919) % 201 - 100) * 0.01f;
            pb[i] = (float)((i * 104729) % 199 - 99) * 0.01f;
        }
        ck_assert_int_eq(vg_add_act(ctx, &a, &b, VG_ACT_RELU, &y), 0);
        for (int64_t i = 0; i < lens[k]; i++)
            ck_assert_msg(py[i] == fmaxf(pa[i] + pb[i], 0.0f), "len %lld at %lld",
                          (long long)lens[k], (long long)i);
        ck_assert_int_eq(vg_add_act(ctx, &a, &b, VG_ACT_RELU, &a), 0); /* in place */
        ck_assert_int_eq(memcmp(pa, py, (size_t)lens[k] * sizeof(float)), 0);
        vg_tensor_free(&a), vg_tensor_free(&b), vg_tensor_free(&y);
    }
}
END_TEST

START_TEST(test_layout)
{
    VgWeights *w = vgt_fixture("ops/eltwise.safetensors");
    VgTensor y;
    const VgTensor *cat[3] = { vgt_get(w, "cat0"), vgt_get(w, "cat1"), vgt_get(w, "cat2") };
    vgt_alloc_like(&y, vgt_get(w, "cat"));
    ck_assert_int_eq(vg_concat_channels(ctx, cat, 3, &y), 0);
    vgt_assert_close(&y, vgt_get(w, "cat"), 0, "concat");
    ck_assert_int_eq(vg_concat_channels(ctx, cat, 2, &y), VG_ERR(EINVAL)); /* 5 of 6 channels */
    vg_tensor_free(&y);

    for (int f = 2; f <= 3; f++) {
        const VgTensor *ref = vgt_get(w, "up%d", f);
        vgt_alloc_like(&y, ref);
        ck_assert_int_eq(vg_upsample_nearest(ctx, vgt_get(w, "up"), f, &y), 0);
        vgt_assert_close(&y, ref, 0, "upsample");
        ck_assert_int_eq(vg_upsample_nearest(ctx, vgt_get(w, "up"), 5 - f, &y), VG_ERR(EINVAL));
        vg_tensor_free(&y);
    }
    for (int r = 2; r <= 3; r++) {
        const VgTensor *x = vgt_get(w, "d2s_x%d", r);
        for (int m = 0; m < 2; m++) {
            const VgTensor *ref = vgt_get(w, "%s%d", m ? "dcr" : "crd", r);
            vgt_alloc_like(&y, ref);
            ck_assert_int_eq(vg_depth_to_space(ctx, x, r, m ? VG_D2S_DCR : VG_D2S_CRD, &y), 0);
            vgt_assert_close(&y, ref, 0, m ? "depth_to_space DCR" : "depth_to_space CRD");
            ck_assert_int_eq(vg_depth_to_space(ctx, x, 5 - r, VG_D2S_CRD, &y), VG_ERR(EINVAL));
            vg_tensor_free(&y);
        }
    }
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_eltwise_errors)
{
    VgTensor a, b, c, y;
    ck_assert_int_eq(vg_tensor_alloc4(&a, 1, 3, 4, 5), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&b, 1, 3, 4, 6), 0);
    int64_t n4 = 4;
    ck_assert_int_eq(vg_tensor_alloc(&c, VG_DT_F32, 1, &n4), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&y, 1, 3, 4, 5), 0);
    ck_assert_int_eq(vg_add(ctx, &a, &b, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_relu(ctx, &a, &b), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_leaky_relu(ctx, &b, 0.1f, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_scale(ctx, &a, 2.0f, &b), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_bias_add(ctx, &a, &c, &y), VG_ERR(EINVAL));  /* 4 biases, 3 channels */
    ck_assert_int_eq(vg_prelu(ctx, &a, &c, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_bias_add(ctx, &a, NULL, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_add_act(ctx, &a, &a, VG_ACT_LEAKY, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 8);
    VgTensor big;
    ck_assert_int_eq(vg_tensor_alloc4(&big, 1, 3, 8, 10), 0);
    ck_assert_int_eq(vg_upsample_nearest(ctx, &a, 0, &big), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_depth_to_space(ctx, &a, 2, (VgD2SMode)7, &big), VG_ERR(EINVAL));
    const VgTensor *one[1] = { &b };
    ck_assert_int_eq(vg_concat_channels(ctx, one, 1, &y), VG_ERR(EINVAL)); /* W differs */
    ck_assert_int_eq(vg_concat_channels(ctx, one, 0, &y), VG_ERR(EINVAL));
    vg_tensor_free(&a);
    vg_tensor_free(&b);
    vg_tensor_free(&c);
    vg_tensor_free(&y);
    vg_tensor_free(&big);
}
END_TEST

/* ---------------------------------------------------------------- bench */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int bench(void)
{
    VgSettings s;
    vg_default_settings(&s);
    s.n_threads = 2;
    VgCtx *c;
    if (vg_open(&c, &s) < 0)
        return 1;
    printf("OpenBLAS kernel %s, ops isa %s, 2 threads\n", vg_blas_kernel(c), vg_ops_isa());
    const int n = 2048;
    float *A = vg_malloc(sizeof(float) * n * n), *B = vg_malloc(sizeof(float) * n * n);
    float *C = vg_malloc(sizeof(float) * n * n);
    for (int64_t i = 0; i < (int64_t)n * n; i++)
        A[i] = B[i] = (float)(i % 17) * 0.01f;
    VgTensor x, w, b, al, y;
    vg_tensor_alloc4(&x, 1, 64, 360, 640);
    vg_tensor_alloc4(&w, 64, 64, 3, 3);
    vg_tensor_alloc4(&y, 1, 64, 360, 640);
    const int64_t n64 = 64;
    vg_tensor_alloc(&b, VG_DT_F32, 1, &n64);
    vg_tensor_alloc(&al, VG_DT_F32, 1, &n64);
    for (int64_t i = 0; i < vg_tensor_nelem(&x); i++)
        ((float *)x.data)[i] = (float)(i % 13) * 0.1f;
    VgConvParams p;
    vg_conv_params_default(&p);
    vg_conv_params_same(&p, 3, 3, 360, 640);
    const double conv_flop = 2.0 * 64 * 64 * 9 * 360 * 640;
    /* interleave the two measurements: the machine may be shared */
    double best_gemm = 0, best_conv = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, B, n, 0, C, n);
        const double tg = now() - t0;
        t0 = now();
        vg_conv2d_act(c, &x, &w, &b, &p, VG_ACT_PRELU, 0, &al, &y);
        const double tc = now() - t0;
        best_gemm = fmax(best_gemm, 2.0 * n * n * n / tg / 1e9);
        best_conv = fmax(best_conv, conv_flop / tc / 1e9);
        printf("  rep %d: sgemm %d^3 %.1f GFLOPS, conv2d %.1f ms = %.1f GFLOPS\n", rep, n,
               2.0 * n * n * n / tg / 1e9, tc * 1e3, conv_flop / tc / 1e9);
    }
    printf("sgemm peak (best of 5) %.1f GFLOPS\n", best_gemm);
    printf("conv2d [1,64,360,640] 3x3 64->64 + PReLU (best of 5) %.1f GFLOPS = %.0f%% of sgemm\n",
           best_conv, 100 * best_conv / best_gemm);
    vg_free(A), vg_free(B), vg_free(C);
    vg_tensor_free(&x), vg_tensor_free(&w), vg_tensor_free(&y), vg_tensor_free(&b);
    vg_tensor_free(&al);
    vg_close(&c);
    return 0;
}

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("conv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_conv_cases, 0, (int)(sizeof(conv_cases) / sizeof(*conv_cases)));
    tcase_add_loop_test(tc, test_conv_cases_winograd, 0,
                        (int)(sizeof(conv_cases) / sizeof(*conv_cases)));
    tcase_add_test(tc, test_conv64_prelu);
    tcase_add_test(tc, test_conv_params);
    tcase_add_test(tc, test_conv_errors);
    tcase_add_test(tc, test_conv_bands);
    suite_add_tcase(s, tc);
    tc = tcase_create("blas");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_blas_concurrent);
    tcase_add_test(tc, test_linear_split);
    suite_add_tcase(s, tc);
    tc = tcase_create("eltwise");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_eltwise);
    tcase_add_test(tc, test_add_relu_pieces);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_eltwise_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench();
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
