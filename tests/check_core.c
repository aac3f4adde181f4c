/*
 * Core: context and settings, logging, error text, aligned memory, the
 * thread pool, tensors and F16/BF16 conversion, and the OpenBLAS kernel
 * re-selection (engine/blas.h). The sgemm GFLOPS lines it prints are
 * informational only (the machine may be shared); nothing asserts on time.
 */
#include <cblas.h>
#include <check.h>
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "visgen/visgen.h"
#include "engine/act_cache.h"
#include "engine/blas.h"
#include "engine/internal.h"
#include "engine/mem.h"
#include "engine/tensor.h"
#include "engine/threads.h"
#include "tests/common/vgtest.h"

/* ------------------------------------------------------------------ ctx */

static int n_verbose;
static char last_verbose[256];

static void count_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    (*(int *)cookie)++;
    if (level == VG_LOG_VERBOSE) {
        vsnprintf(last_verbose, sizeof(last_verbose), fmt, ap);
        n_verbose++;
    }
}

START_TEST(test_settings)
{
    VgSettings s;
    memset(&s, 0x55, sizeof(s));
    vg_default_settings(&s);
    ck_assert_int_eq(s.n_threads, 0);
    ck_assert_int_eq(s.log_level, VG_LOG_INFO);
    ck_assert_int_eq(s.blas_autoselect, 1);
    ck_assert_ptr_null(s.log_cb);
    ck_assert_ptr_null(s.log_cookie);

    VgCtx *c = (VgCtx *)&s;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_ge(c->n_threads, 1);          /* 0 = online CPUs */
    ck_assert_int_eq(vg_pool_threads(c->pool), c->n_threads);
    ck_assert_str_ne(vg_blas_kernel(c), "");
    vg_close(&c);
    ck_assert_ptr_null(c);
    vg_close(&c);                               /* NULL is fine */
    vg_close(NULL);

    int lines = 0;
    s.n_threads = -1;
    s.log_cb = count_cb;
    s.log_cookie = &lines;
    c = (VgCtx *)&s;
    ck_assert_int_eq(vg_open(&c, &s), VG_ERR(EINVAL));
    ck_assert_ptr_null(c);
    ck_assert_int_eq(lines, 1);
    ck_assert_int_eq(vg_open(&c, NULL), VG_ERR(EINVAL));
}
END_TEST

START_TEST(test_log)
{
    VgSettings s;
    vg_default_settings(&s);
    s.n_threads = 1;
    int lines = 0;
    VgCtx *c;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    vg_log(c, VG_LOG_ERROR, "no callback: silent\n");
    vg_log(NULL, VG_LOG_ERROR, "no context: silent\n");
    vg_close(&c);

    s.log_cb = count_cb;
    s.log_cookie = &lines;
    s.log_level = VG_LOG_WARNING;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    lines = 0;
    vg_log(c, VG_LOG_ERROR, "e %d\n", 1);
    vg_log(c, VG_LOG_WARNING, "w\n");
    vg_log(c, VG_LOG_INFO, "filtered\n");
    vg_log(c, VG_LOG_DEBUG, "filtered\n");
    ck_assert_int_eq(lines, 2);
    vg_close(&c);
}
END_TEST

START_TEST(test_strerror)
{
    ck_assert_str_eq(vg_strerror(0), "success");
    ck_assert_ptr_nonnull(strstr(vg_strerror(VG_ERR(ENOMEM)), "memory"));
    ck_assert_ptr_nonnull(strstr(vg_strerror(VG_ERR(EINVAL)), "nvalid"));
    ck_assert_ptr_nonnull(strstr(vg_strerror(VG_EBADMODEL), "malformed"));
    ck_assert_ptr_nonnull(strstr(vg_strerror(VG_EUNSUPPORTED), "cannot run"));
    ck_assert_ptr_nonnull(strstr(vg_strerror(VG_EREFUSED), "not allowed"));
    ck_assert_str_eq(vg_strerror(VG_TAG('X', 'X', 'X', 'X')), "unknown error");
    ck_assert_str_eq(vg_strerror(12345), "unknown error");
    char v[16];
    snprintf(v, sizeof(v), "%d.%d.", VG_API_VERSION_MAJOR, VG_API_VERSION_MINOR);
    ck_assert_int_eq(strncmp(vg_version(), v, strlen(v)), 0);
}
END_TEST

/* ------------------------------------------------------------------ mem */

START_TEST(test_mem)
{
    for (size_t sz = 0; sz < 5000; sz += 333) {
        unsigned char *p = vg_malloc(sz);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq((uintptr_t)p % VG_ALIGN, 0);
        memset(p, 1, sz);
        vg_free(p);
        p = vg_calloc(sz, 3);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq((uintptr_t)p % VG_ALIGN, 0);
        for (size_t i = 0; i < sz * 3; i++)
            ck_assert_int_eq(p[i], 0);
        vg_freep(&p);
        ck_assert_ptr_null(p);
    }
    ck_assert_ptr_null(vg_malloc(SIZE_MAX));
    ck_assert_ptr_null(vg_calloc(SIZE_MAX / 2, 4)); /* overflow */
    vg_free(NULL);
}
END_TEST

/* -------------------------------------------------------------- threads */

typedef struct PoolArg {
    atomic_int hits[1000];
    atomic_int bad_tid;
    int n_threads;
    VgPool *pool;
    atomic_int nested;
} PoolArg;

static void count_job(void *arg, int i, int tid)
{
    PoolArg *a = arg;
    atomic_fetch_add(&a->hits[i], 1);
    if (tid < 0 || tid >= a->n_threads)
        atomic_fetch_add(&a->bad_tid, 1);
}

static void nested_inner(void *arg, int i, int tid)
{
    atomic_fetch_add(&((PoolArg *)arg)->nested, 1);
}

static void nested_job(void *arg, int i, int tid)
{
    PoolArg *a = arg;
    vg_pool_run(a->pool, 3, nested_inner, a); /* runs inline, must not deadlock */
}

START_TEST(test_pool)
{
    static PoolArg a;
    for (int nt = 1; nt <= 4; nt++) {
        VgPool *p = NULL;
        ck_assert_int_eq(vg_pool_open(&p, nt), 0);
        ck_assert_int_eq(vg_pool_threads(p), nt);
        const int sizes[] = { 0, 1, 2, 3, 7, 64, 1000 };
        for (int k = 0; k < 7; k++)
            for (int rep = 0; rep < 5; rep++) {
                memset(&a, 0, sizeof(a));
                a.n_threads = nt;
                vg_pool_run(p, sizes[k], count_job, &a);
                for (int i = 0; i < 1000; i++)
                    ck_assert_int_eq(atomic_load(&a.hits[i]), i < sizes[k]);
                ck_assert_int_eq(atomic_load(&a.bad_tid), 0);
            }
        a.pool = p;
        atomic_store(&a.nested, 0);
        vg_pool_run(p, 5, nested_job, &a);
        ck_assert_int_eq(atomic_load(&a.nested), 15);
        vg_pool_close(&p);
        ck_assert_ptr_null(p);
    }
    memset(&a, 0, sizeof(a));
    a.n_threads = 1;
    vg_pool_run(NULL, 10, count_job, &a); /* no pool: inline */
    ck_assert_int_eq(atomic_load(&a.hits[9]), 1);
    VgPool *p = (VgPool *)&a;
    ck_assert_int_eq(vg_pool_open(&p, 0), VG_ERR(EINVAL));
    ck_assert_ptr_null(p);
    vg_pool_close(&p);
}
END_TEST

/* --------------------------------------------------------------- tensor */

START_TEST(test_tensor)
{
    VgTensor t;
    char buf[64];
    const int64_t shape[3] = { 2, 3, 5 };
    ck_assert_int_eq(vg_tensor_alloc(&t, VG_DT_F32, 3, shape), 0);
    ck_assert_int_eq(vg_tensor_nelem(&t), 30);
    ck_assert_int_eq(t.nb[2], 4);
    ck_assert_int_eq(t.nb[1], 20);
    ck_assert_int_eq(t.nb[0], 60);
    ck_assert_ptr_eq(t.data, t.alloc);
    ck_assert_int_eq((uintptr_t)t.data % 64, 0);
    ck_assert(vg_tensor_is_contiguous(&t));
    ck_assert_str_eq(vg_tensor_shape_str(&t, buf, sizeof(buf)), "[2, 3, 5]");
    ck_assert_str_eq(vg_tensor_shape_str(&t, buf, 5), "[2, ");
    for (int i = 0; i < 30; i++)
        ((float *)t.data)[i] = (float)i;

    /* a transposed view: [5, 3, 2] with strides swapped */
    VgTensor v = t;
    v.alloc = NULL;
    v.ne[0] = 5, v.ne[2] = 2;
    v.nb[0] = 4, v.nb[2] = 60;
    ck_assert(!vg_tensor_is_contiguous(&v));
    ck_assert(!vg_tensor_same_shape(&v, &t));
    VgTensor f;
    ck_assert_int_eq(vg_tensor_to_f32(&v, &f), 0);
    ck_assert(vg_tensor_is_contiguous(&f));
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++)
                ck_assert_float_eq(((float *)f.data)[(a * 3 + b) * 2 + c], c * 15 + b * 5 + a);
    vg_tensor_free(&f);
    vg_tensor_free(&v); /* a view: frees nothing, zeroes */
    ck_assert_ptr_null(v.data);

    /* widening F16 / I32 / U8 */
    uint16_t h[3] = { 0x3c00, 0xc000, 0x7c00 };
    const int64_t s3 = 3;
    vg_tensor_view(&v, VG_DT_F16, h, 1, &s3);
    ck_assert_int_eq(vg_tensor_to_f32(&v, &f), 0);
    ck_assert(((float *)f.data)[0] == 1 && ((float *)f.data)[1] == -2 &&
              isinf(((float *)f.data)[2]));
    vg_tensor_free(&f);
    int32_t iv[3] = { -7, 0, 1 << 20 };
    vg_tensor_view(&v, VG_DT_I32, iv, 1, &s3);
    ck_assert_int_eq(vg_tensor_to_f32(&v, &f), 0);
    ck_assert(((float *)f.data)[0] == -7 && ((float *)f.data)[2] == 1 << 20);
    vg_tensor_free(&f);

    ck_assert_int_eq(vg_dtype_size(VG_DT_BF16), 2);
    ck_assert_str_eq(vg_dtype_name(VG_DT_I64), "I64");
    ck_assert_str_eq(vg_dtype_name(VG_DT_COUNT), "invalid");
    const int64_t neg[2] = { 2, -1 };
    ck_assert_int_eq(vg_tensor_alloc(&v, VG_DT_F32, 2, neg), VG_ERR(EINVAL));
    const int64_t huge[2] = { INT64_MAX / 2, 4 };
    ck_assert_int_eq(vg_tensor_alloc(&v, VG_DT_F32, 2, huge), VG_ERR(EINVAL));
    vg_tensor_free(&t);
    vg_tensor_free(&t); /* zeroed: safe */
}
END_TEST

__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

START_TEST(test_f16)
{
    /* known values */
    ck_assert_int_eq(vg_f32_to_f16(1.0f), 0x3c00);
    ck_assert_int_eq(vg_f32_to_f16(-2.0f), 0xc000);
    ck_assert_int_eq(vg_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_int_eq(vg_f32_to_f16(65519.0f), 0x7bff);
    ck_assert_int_eq(vg_f32_to_f16(65520.0f), 0x7c00);    /* tie rounds to even = Inf */
    ck_assert_int_eq(vg_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even (down) */
    ck_assert_int_eq(vg_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie to even (up) */
    ck_assert_int_eq(vg_f32_to_f16(0x1p-24f), 0x0001);   /* smallest subnormal */
    ck_assert_int_eq(vg_f32_to_f16(0x1p-25f), 0x0000);   /* tie to even: zero */
    ck_assert_int_eq(vg_f32_to_f16(0x1.000002p-25f), 0x0001);
    ck_assert_int_eq(vg_f32_to_f16(0x1.ff8p-15f), 0x03ff); /* largest subnormal */
    ck_assert_int_eq(vg_f32_to_f16(0x1.ffbp-15f), 0x03ff);
    ck_assert_int_eq(vg_f32_to_f16(0x1.ffcp-15f), 0x0400); /* tie: even = smallest normal */
    ck_assert_int_eq(vg_f32_to_f16(-0.0f), 0x8000);
    ck_assert_int_eq(vg_f32_to_f16(1e-40f), 0x0000);      /* float subnormal */
    ck_assert_int_eq(vg_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_int_eq(vg_f32_to_f16(-INFINITY), 0xfc00);
    ck_assert_int_eq(vg_f32_to_f16(1e10f), 0x7c00);
    ck_assert_int_eq(vg_f32_to_f16(NAN) & 0x7e00, 0x7e00);
    ck_assert_float_eq(vg_f16_to_f32(0x0001), 0x1p-24f);
    ck_assert_float_eq(vg_f16_to_f32(0x8400), -0x1p-14f);
    ck_assert(isnan(vg_f16_to_f32(0x7e00)) && isnan(vg_f16_to_f32(0xfc01)));
    ck_assert(isinf(vg_f16_to_f32(0xfc00)) && vg_f16_to_f32(0xfc00) < 0);
    ck_assert_float_eq(vg_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(vg_bf16_to_f32(0xc0a0), -5.0f);
    ck_assert(isnan(vg_bf16_to_f32(0x7fc0)));

    /* every half value: widen exactly and narrow back to itself */
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = vg_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            ck_assert(isnan(vg_f16_to_f32(vg_f32_to_f16(f))));
            continue;
        }
        ck_assert_msg(vg_f32_to_f16(f) == h, "half 0x%04x -> %a -> 0x%04x", h, f,
                      vg_f32_to_f16(f));
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("f16c")) {
        fprintf(stderr, "check_core: no F16C: hardware comparison left out\n");
        return;
    }
    /* against the CPU's conversion (round to nearest even) on many floats
     * spread over every exponent, including the subnormal and overflow ranges */
    uint32_t r = 1;
    for (int i = 0; i < 300000; i++) {
        r = r * 1664525u + 1013904223u;
        float f;
        uint32_t bits = (r & 0x807fffffu) | ((100 + (r >> 8) % 60) << 23);
        if (i % 7 == 0)
            bits = r; /* anything, NaN included */
        memcpy(&f, &bits, 4);
        const uint16_t a = vg_f32_to_f16(f), b = hw_f32_to_f16(f);
        if (isnan(f))
            ck_assert(isnan(hw_f16_to_f32(a)));
        else
            ck_assert_msg(a == b, "%a: visgen 0x%04x, CPU 0x%04x", f, a, b);
        const uint16_t hh = (uint16_t)r;
        if (!isnan(hw_f16_to_f32(hh)))
            ck_assert_float_eq(vg_f16_to_f32(hh), hw_f16_to_f32(hh));
    }
}
END_TEST

/* ----------------------------------------------------------------- blas */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Informational: sgemm speed of the kernel OpenBLAS runs now. */
static double sgemm_gflops(void)
{
    const int n = 384;
    float *a = vg_malloc(sizeof(float) * n * n), *b = vg_malloc(sizeof(float) * n * n);
    float *c = vg_malloc(sizeof(float) * n * n);
    ck_assert(a && b && c);
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = (float)(i % 7) * 0.25f;
    int reps = 0;
    const double t0 = now();
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        reps++;
    } while (now() - t0 < 0.2);
    const double t = now() - t0;
    /* the result is right whatever the kernel: row sums of a small pattern */
    double expect = 0;
    for (int k = 0; k < n; k++)
        expect += (double)a[k] * b[k * n];
    ck_assert_msg(fabs(c[0] - expect) <= 1e-3 * fabs(expect), "sgemm gave %g, expected %g", c[0],
                  expect);
    vg_free(a), vg_free(b), vg_free(c);
    return 2.0 * n * n * n * reps / t / 1e9;
}

START_TEST(test_blas_autoselect)
{
    const char *best = vg_blas_best_core();
    VgSettings s;
    vg_default_settings(&s);
    VgCtx *c;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    ck_assert_str_eq(vg_blas_kernel(c), vg_blas_corename());
    printf("check_core: CPU best OpenBLAS core %s, running %s, sgemm %.1f GFLOPS\n",
           best ? best : "(no opinion)", vg_blas_kernel(c), sgemm_gflops());
    if (best && !getenv("OPENBLAS_CORETYPE"))
        ck_assert_msg(!vg_blas_core_is_slow(vg_blas_kernel(c), best),
                      "CPU runs %s kernels but OpenBLAS uses %s", best, vg_blas_kernel(c));
    vg_close(&c);

    ck_assert(vg_blas_core_is_slow("Prescott", "Haswell"));
    ck_assert(vg_blas_core_is_slow("Sandybridge", "Zen"));
    ck_assert(!vg_blas_core_is_slow("Zen", "Haswell"));
    ck_assert(vg_blas_core_is_slow("Haswell", "SkylakeX"));
    ck_assert(!vg_blas_core_is_slow("Prescott", NULL));
}
END_TEST

START_TEST(test_blas_force_and_recover)
{
    const char *best = vg_blas_best_core();
    if (!best || getenv("OPENBLAS_CORETYPE")) {
        fprintf(stderr, "check_core: %s: re-selection not exercised\n",
                best ? "OPENBLAS_CORETYPE is set" : "CPU without AVX2");
        return;
    }
    unsetenv("OPENBLAS_CORETYPE");
    /* Simulate the misdetection: Prescott's SSE3 kernels run on any x86-64. */
    ck_assert_int_eq(vg_blas_force_core(NULL, "Prescott"), 0);
    ck_assert_str_eq(vg_blas_corename(), "Prescott");
    ck_assert_ptr_null(getenv("OPENBLAS_CORETYPE")); /* environment restored */
    const double slow = sgemm_gflops();

    /* blas_autoselect 0 leaves OpenBLAS alone */
    VgSettings s;
    vg_default_settings(&s);
    s.blas_autoselect = 0;
    VgCtx *c;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    ck_assert_str_eq(vg_blas_kernel(c), "Prescott");
    vg_close(&c);

    int lines = 0;
    n_verbose = 0;
    s.blas_autoselect = 1;
    s.log_cb = count_cb;
    s.log_cookie = &lines;
    s.log_level = VG_LOG_VERBOSE;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    ck_assert_str_eq(vg_blas_kernel(c), best);
    ck_assert_int_eq(n_verbose, 1);
    char expect[128];
    snprintf(expect, sizeof(expect), "OpenBLAS kernel: %s (was Prescott)\n", best);
    ck_assert_str_eq(last_verbose, expect);
    ck_assert_ptr_null(getenv("OPENBLAS_CORETYPE"));
    const double fast = sgemm_gflops();
    printf("check_core: sgemm %.1f GFLOPS on Prescott kernels, %.1f after re-selecting %s "
           "(x%.1f)\n", slow, fast, best, fast / slow);
    vg_close(&c);
}
END_TEST

/* Same-size requests get the freed block back; other sizes, views, a full
 * budget and a NULL cache allocate and free as usual. */
START_TEST(test_act_cache)
{
    VgActCache c;
    VgTensor a, b, v;
    vg_act_cache_init(&c, 3 * 1000 * sizeof(float));
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 10, 10, 10), 0); // [1, 10, 10, 10]
    ck_assert_int_eq(a.dtype, VG_DT_F32);
    ck_assert_int_eq(vg_tensor_nelem(&a), 1000);
    ck_assert(vg_tensor_is_contiguous(&a));
    ck_assert_int_eq((uintptr_t)a.data % VG_ALIGN, 0);
    void *pa = a.data;
    vg_act_free(&c, &a);
    ck_assert_ptr_null(a.data);
    ck_assert_uint_eq(c.bytes, 4000);
    const int64_t s2[2] = { 20, 50 };                  // same bytes, other shape
    ck_assert_int_eq(vg_act_alloc(&c, &b, 2, s2), 0);
    ck_assert_ptr_eq(b.data, pa);
    ck_assert_int_eq(b.ndim, 2);
    ck_assert_uint_eq(c.bytes, 0);
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 999), 0);  // other size: fresh
    ck_assert_ptr_ne(a.data, pa);
    ((float *)a.data)[998] = 1.0f;
    vg_act_free(&c, &a);
    vg_act_free(&c, &b);
    ck_assert_uint_eq(c.bytes, 7996);
    /* freed through a narrowed view: the block's own size counts */
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 4000), 0);
    v = a;
    v.ne[3] = 10;
    vg_act_free(&c, &v);                                // 16000 B: over budget, freed
    ck_assert_uint_eq(c.bytes, 7996);
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 500), 0);
    pa = a.data;
    v = a;
    v.ne[3] = 10;
    vg_act_free(&c, &v);
    ck_assert_uint_eq(c.bytes, 9996);
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 5, 100), 0);
    ck_assert_ptr_eq(a.data, pa);
    vg_act_free(&c, &a);
    /* blocks the cache did not hand out are freed, not kept */
    ck_assert_int_eq(vg_tensor_alloc4(&a, 1, 1, 1, 10), 0);
    vg_act_free(&c, &a);
    ck_assert_uint_eq(c.bytes, 9996);
    ck_assert_int_eq(vg_act_alloc4(NULL, &a, 1, 2, 3, 4), 0);
    vg_act_free(NULL, &a);
    /* a block still out at vg_act_forget is its holder's: freeing it through
     * the cache later frees it rather than keeping it */
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 250), 0);
    vg_act_forget(&c);
    vg_act_free(&c, &a);
    ck_assert_uint_eq(c.bytes, 9996);
    /* a new size makes room by dropping kept blocks of other sizes, as
     * few as needed: 3996 + 4000 + 2000 kept, 10000 B in -> 2000 + 10000 */
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 2500), 0);
    vg_act_free(&c, &a);
    ck_assert_uint_eq(c.bytes, 12000);
    ck_assert_int_eq(vg_act_alloc4(&c, &b, 1, 1, 1, 2500), 0);
    ck_assert_uint_eq(c.bytes, 2000);
    vg_act_free(&c, &b);
    ck_assert_int_eq(vg_act_alloc4(&c, &a, 1, 1, 1, 4000), 0); // over budget alone
    vg_act_free(&c, &a);
    ck_assert_uint_eq(c.bytes, 12000);
    const int64_t bad[2] = { -1, 4 };
    ck_assert_int_eq(vg_act_alloc(&c, &a, 2, bad), VG_ERR(EINVAL));
    ck_assert_ptr_null(a.data);
    ck_assert_int_eq(vg_act_alloc(&c, &a, VG_MAX_DIMS + 1, bad), VG_ERR(EINVAL));
    vg_act_flush(&c);
    ck_assert_uint_eq(c.bytes, 0);
    for (int i = 0; i < VG_ACT_CACHE_SLOTS; i++)
        ck_assert_ptr_null(c.slot[i].p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("ctx");
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_log);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    tc = tcase_create("mem_threads_tensor");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_mem);
    tcase_add_test(tc, test_pool);
    tcase_add_test(tc, test_tensor);
    tcase_add_test(tc, test_f16);
    tcase_add_test(tc, test_act_cache);
    suite_add_tcase(s, tc);
    tc = tcase_create("blas");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_blas_autoselect);
    tcase_add_test(tc, test_blas_force_and_recover);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
