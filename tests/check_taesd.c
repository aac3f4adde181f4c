/*
 * TAESD (engine/sd/taesd.h) against tests/reference/sd_taesd.py: a PyTorch
 * TAESD built from the published design with random weights (width 8 to keep
 * the fixtures small; the real models are 64 wide), saved in the real key
 * layouts: taesd_encoder.pth / taesd_decoder.pth (taesd.py's "0.weight",
 * "1.conv.0.weight", ...) and a diffusers AutoencoderTiny safetensors
 * ("encoder.layers.N", "decoder.layers.N-1"). Encode and decode must match
 * within REL_TOL of the output's peak magnitude. Errors: swapped halves, a KL
 * VAE given as TAESD, missing half, wrong input shape.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/sd/taesd.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define REL_TOL 1e-4

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

static const char *fx(const char *name)
{
    static char p[4][1024];
    static int k;
    k = (k + 1) & 3;
    snprintf(p[k], sizeof(p[k]), "%s/tests/fixtures/taesd/%s", VG_TOP, name);
    return p[k];
}

static double peak(const VgTensor *t)
{
    VgTensor f;
    double m = 0;
    ck_assert_int_eq(vg_tensor_to_f32(t, &f), 0);
    for (int64_t i = 0; i < vg_tensor_nelem(&f); i++)
        m = fmax(m, fabs(((float *)f.data)[i]));
    vg_tensor_free(&f);
    return m;
}

static void assert_rel(const VgTensor *got, const VgTensor *ref, const char *what)
{
    const double err = vgt_max_abs_err(got, ref, NULL), pk = peak(ref);
    printf("taesd %s: max abs err %.3g, relative %.3g\n", what, err, err / pk);
    ck_assert_msg(err / pk <= REL_TOL, "%s: relative error %g > %g", what, err / pk, REL_TOL);
}

static void check_both(VgTaesd *t, const char *what)
{
    VgWeights *io = vgt_fixture("taesd/taesd_io.safetensors");
    VgTensor y;
    char name[128];
    int ret;

    ck_assert_int_eq(vg_taesd_latent_channels(t), 4);
    ret = vg_taesd_encode(t, vgt_get(io, "image"), &y);
    ck_assert_msg(ret == 0, "encode: %d (%s)", ret, vgt_last_error);
    snprintf(name, sizeof(name), "%s encode", what);
    assert_rel(&y, vgt_get(io, "latent_out"), name);
    vg_tensor_free(&y);
    ret = vg_taesd_decode(t, vgt_get(io, "latent"), &y);
    ck_assert_msg(ret == 0, "decode: %d (%s)", ret, vgt_last_error);
    snprintf(name, sizeof(name), "%s decode", what);
    assert_rel(&y, vgt_get(io, "image_out"), name);
    vg_tensor_free(&y);
    vg_weights_close(&io);
}

START_TEST(test_pth)
{
    VgTaesd *t = NULL;
    const int ret = vg_taesd_open_files(&t, ctx, fx("taesd_encoder.pth"), fx("taesd_decoder.pth"));
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_both(t, ".pth");
    vg_taesd_close(&t);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_diffusers)
{
    VgTaesd *t = NULL;
    const char *p = fx("taesd_diffusers.safetensors");
    const int ret = vg_taesd_open_files(&t, ctx, p, p);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_both(t, "diffusers");
    vg_taesd_close(&t);
}
END_TEST

/* encoder from one layout, decoder from the other; and an odd image size */
START_TEST(test_mixed_and_odd_size)
{
    VgTaesd *t = NULL;
    VgTensor img, lat;
    int ret = vg_taesd_open_files(&t, ctx, fx("taesd_encoder.pth"),
                                  fx("taesd_diffusers.safetensors"));
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_both(t, "mixed");
    /* 3 stride-2 convs with padding 1: 37 -> 19 -> 10 -> 5, 21 -> 11 -> 6 -> 3 */
    ck_assert_int_eq(vg_tensor_alloc4(&img, 1, 3, 37, 21), 0);
    ck_assert_int_eq(vg_taesd_encode(t, &img, &lat), 0);
    ck_assert(lat.ne[2] == 5 && lat.ne[3] == 3 && lat.ne[1] == 4);
    vg_tensor_free(&img);
    ck_assert_int_eq(vg_taesd_decode(t, &lat, &img), 0);
    ck_assert(img.ne[2] == 40 && img.ne[3] == 24 && img.ne[1] == 3);
    vg_tensor_free(&img);
    vg_tensor_free(&lat);
    vg_taesd_close(&t);
}
END_TEST

START_TEST(test_errors)
{
    VgTaesd *t = NULL;
    VgTensor x, y;
    char vae[1024];

    /* halves swapped */
    vgt_log_reset();
    ck_assert_int_eq(vg_taesd_open_files(&t, ctx, fx("taesd_decoder.pth"), NULL), VG_EBADMODEL);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(vgt_last_error, "swapped"), "%s", vgt_last_error);
    vgt_log_reset();
    ck_assert_int_eq(vg_taesd_open_files(&t, ctx, NULL, fx("taesd_encoder.pth")), VG_EBADMODEL);
    ck_assert_int_eq(vgt_n_errors, 1);
    /* a KL VAE is not TAESD */
    snprintf(vae, sizeof(vae), "%s/tests/fixtures/vae/small_legacy.safetensors", VG_TOP);
    vgt_log_reset();
    ck_assert_int_eq(vg_taesd_open_files(&t, ctx, vae, vae), VG_EBADMODEL);
    ck_assert_int_eq(vgt_n_errors, 1);
    /* missing file */
    ck_assert_int_lt(vg_taesd_open_files(&t, ctx, fx("nonexistent.pth"), NULL), 0);
    ck_assert_ptr_null(t);

    /* encoder only: decode refuses; wrong channel count refused */
    ck_assert_int_eq(vg_taesd_open_files(&t, ctx, fx("taesd_encoder.pth"), NULL), 0);
    ck_assert(vg_taesd_has_encoder(t) && !vg_taesd_has_decoder(t));
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, 4, 8, 8), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_taesd_decode(t, &x, &y), VG_ERR(ENOSYS));
    ck_assert_int_eq(vgt_n_errors, 1);
    vgt_log_reset();
    ck_assert_int_eq(vg_taesd_encode(t, &x, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_null(y.data);
    vg_tensor_free(&x);
    vg_taesd_close(&t);
    vg_taesd_close(&t); /* NULL-safe */
}
END_TEST

static Suite *taesd_suite(void)
{
    Suite *s = suite_create("taesd");
    TCase *tc = tcase_create("taesd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pth);
    tcase_add_test(tc, test_diffusers);
    tcase_add_test(tc, test_mixed_and_odd_size);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(taesd_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
