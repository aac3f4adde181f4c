/*
 * torch.Generator('cpu') reproduction against Debian's torch 1.13
 * (tests/reference/sd_rng.py wrote tests/fixtures/sampler/rng.safetensors).
 * Tolerance: bit-exact (0 ulp) on this AVX2 machine, for both randn paths,
 * the tail redraw, the scalar cache across calls and the draw order of an
 * img2img run.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sd/rng.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

static const uint64_t seeds[] = { 0, 1, 42, 12345, (UINT64_C(1) << 32) + 7 };

/* Largest distance in units in the last place between @a and the F32 @ref. */
static int64_t max_ulp(const float *a, const VgTensor *ref, int64_t n)
{
    ck_assert_int_eq(ref->dtype, VG_DT_F32);
    ck_assert_int_eq(vg_tensor_nelem(ref), n);
    const float *b = ref->data;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        /* map sign-magnitude to a monotonic integer line */
        int64_t xi = x < 0 ? (int64_t)INT32_MIN - x : x, yi = y < 0 ? (int64_t)INT32_MIN - y : y;
        int64_t d = xi > yi ? xi - yi : yi - xi;
        if (d > m)
            m = d;
    }
    return m;
}

START_TEST(test_mt19937_words)
{
    /* std::mt19937 reference: 10000th output of the default seed 5489 */
    VgRng r;
    vg_rng_seed(&r, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = vg_rng_u32(&r);
    ck_assert_uint_eq(v, 4123659995u);
}
END_TEST

START_TEST(test_seeds)
{
    VgWeights *w = vgt_fixture("sampler/rng.safetensors");
    const uint64_t seed = seeds[_i];
    VgRng r;
    float *buf = malloc(sizeof(float) * 1024);
    float small[820];
    vg_rng_seed(&r, seed);
    int64_t off = 0;
    for (int n = 1; n <= 40; n++) {
        vg_rng_randn(&r, small + off, n);
        off += n;
    }
    ck_assert_int_eq(max_ulp(small, vgt_get(w, "s%llu.small", (unsigned long long)seed), 820), 0);
    vg_rng_randn(&r, buf, 1024);
    ck_assert_int_eq(max_ulp(buf, vgt_get(w, "s%llu.n1024", (unsigned long long)seed), 1024), 0);
    VgTensor t;
    ck_assert_int_eq(vg_tensor_alloc(&t, VG_DT_F32, 3, (const int64_t[]){ 4, 16, 16 }), 0);
    ck_assert_int_eq(vg_rng_randn_tensor(&r, &t), 0);
    ck_assert_int_eq(max_ulp(t.data, vgt_get(w, "s%llu.b", (unsigned long long)seed), 1024), 0);
    vg_tensor_free(&t);
    free(buf);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_big)
{
    VgWeights *w = vgt_fixture("sampler/rng.safetensors");
    VgRng r;
    VgTensor t;
    vg_rng_seed(&r, 42);
    ck_assert_int_eq(vg_tensor_alloc4(&t, 1, 4, 64, 64), 0);
    ck_assert_int_eq(vg_rng_randn_tensor(&r, &t), 0);
    ck_assert_int_eq(max_ulp(t.data, vgt_get(w, "big"), 16384), 0);
    vg_tensor_free(&t);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_pipeline_order)
{
    VgWeights *w = vgt_fixture("sampler/rng.safetensors");
    static const int sizes[] = { 252, 252, 3, 252, 1, 5, 252 };
    VgRng r;
    float buf[252];
    vg_rng_seed(&r, 42);
    for (int i = 0; i < 7; i++) {
        vg_rng_randn(&r, buf, sizes[i]);
        ck_assert_msg(max_ulp(buf, vgt_get(w, "pipe.%d", i), sizes[i]) == 0, "draw %d differs", i);
    }
    /* reseeding restarts the stream and drops the cached scalar sample */
    vg_rng_randn(&r, buf, 1);
    vg_rng_seed(&r, 42);
    vg_rng_randn(&r, buf, 252);
    ck_assert_int_eq(max_ulp(buf, vgt_get(w, "pipe.0"), 252), 0);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_bad_tensor)
{
    VgRng r;
    VgTensor t;
    vg_rng_seed(&r, 1);
    ck_assert_int_eq(vg_tensor_alloc(&t, VG_DT_F16, 1, (const int64_t[]){ 32 }), 0);
    ck_assert_int_lt(vg_rng_randn_tensor(&r, &t), 0);
    vg_tensor_free(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("torch_cpu_generator");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mt19937_words);
    tcase_add_loop_test(tc, test_seeds, 0, (int)(sizeof(seeds) / sizeof(seeds[0])));
    tcase_add_test(tc, test_big);
    tcase_add_test(tc, test_pipeline_order);
    tcase_add_test(tc, test_bad_tensor);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
