/*
 * KL VAE (engine/sd/vae.h) against references:
 *  - ../shared/data/diffusion refs (diffusers 0.27.2): tiny-sd{1,2}_vaeenc (posterior mean)
 *    and _vaedec, from the diffusers folder and from the original-layout single file
 *    (first_stage_model.*, shapes-inferred config): max relative error <= REL_TOL
 *    (max|a-b| / max|b|);
 *  - tests/reference/sd_vae.py fixtures (random weights, 16 wide, 8 groups): the
 *    pre-0.15 diffusers attention names (F16 safetensors) and a standalone original-
 *    layout .ckpt ({"state_dict": encoder.*, decoder.*}) like vae-ft-mse-840000,
 *    batch 2, non-square: same tolerance;
 *  - tiled decode/encode (engine/sd/tile_vae.c) against the same tiling done in
 *    PyTorch (sd_vae.py `tiled`): REL_TOL; a tile covering the input equals untiled;
 *    the tiled moments (mean + log-variance) hold the tiled mean bit for bit;
 *  - tiled vs untiled on a smooth input with tiny-sd2's VAE: no seam (the largest
 *    step between neighbouring pixels across tile edges stays within SEAM_FACTOR of
 *    the untiled picture's step there) and max relative difference <= TILE_REL_TOL.
 *    That bound is loose on purpose: GroupNorm statistics are computed per tile, and
 *    these random-weight VAEs (1-2 channels per group) react to them strongly: we
 *    measure 0.5-1.0 here, also with PyTorch. It only catches gross failures;
 *    correctness of the tiling is the PyTorch comparison above;
 *  - errors: missing tensor, mismatched configuration, bad input size, TAESD given
 *    as a VAE, truncated file.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "visgen/visgen.h"
#include "engine/sd/vae.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define REL_TOL 1e-3
#define TILE_REL_TOL 1.5
#define SEAM_FACTOR 1.5

#define DIFF VG_SHARED_DATA "/diffusion"

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

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
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

static double rel_err(const VgTensor *got, const VgTensor *ref)
{
    return vgt_max_abs_err(got, ref, NULL) / peak(ref);
}

static VgWeights *open_or_fail(const char *path)
{
    VgWeights *w = NULL;
    const int ret = vg_weights_open(&w, ctx, path);
    ck_assert_msg(ret == 0, "missing reference data %s (%d): see ../shared/data/diffusion",
                  path, ret);
    return w;
}

/* encode + decode against a ref pair; prints timings */
static void check_refs(VgVae *v, const char *fam, const char *what)
{
    char p[1024];
    VgWeights *enc, *dec;
    VgTensor y;
    double t0, e;
    int ret;

    snprintf(p, sizeof(p), "%s/refs/%s_vaeenc.safetensors", DIFF, fam);
    enc = open_or_fail(p);
    snprintf(p, sizeof(p), "%s/refs/%s_vaedec.safetensors", DIFF, fam);
    dec = open_or_fail(p);

    t0 = now();
    ret = vg_vae_encode(v, vgt_get(enc, "image"), &y);
    ck_assert_msg(ret == 0, "encode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(enc, "output"));
    printf("vae %s %s encode 128x128: rel err %.3g, %.3f s\n", fam, what, e, now() - t0);
    ck_assert_msg(e <= REL_TOL, "%s %s encode: %g > %g", fam, what, e, REL_TOL);
    vg_tensor_free(&y);

    t0 = now();
    ret = vg_vae_decode(v, vgt_get(dec, "latent"), &y);
    ck_assert_msg(ret == 0, "decode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(dec, "output"));
    printf("vae %s %s decode 16x16 -> 128x128: rel err %.3g, %.3f s\n", fam, what, e, now() - t0);
    ck_assert_msg(e <= REL_TOL, "%s %s decode: %g > %g", fam, what, e, REL_TOL);
    vg_tensor_free(&y);
    vg_weights_close(&enc);
    vg_weights_close(&dec);
}

static const char *const fams[] = { "tiny-sd1", "tiny-sd2" };

/* diffusers folder (config.json); tiny-sd1's weights are a link file to tiny-sd2's */
START_TEST(test_shared_diffusers)
{
    char p[1024];
    VgVae *v = NULL;
    snprintf(p, sizeof(p), "%s/%s", DIFF, fams[_i]);
    const int ret = vg_vae_open_path(&v, ctx, p);
    ck_assert_msg(ret == 0, "open %s: %d (%s)", p, ret, vgt_last_error);
    ck_assert_int_eq(vg_vae_get_layout(v), VG_VAE_LAYOUT_DIFFUSERS);
    ck_assert_int_eq(vg_vae_factor(v), 8);
    ck_assert_int_eq(vg_vae_get_config(v)->block_out[0], 32);
    ck_assert(fabsf(vg_vae_get_config(v)->scaling_factor - 0.18215f) < 1e-7f);
    check_refs(v, fams[_i], "diffusers");
    vg_vae_close(&v);
    ck_assert_ptr_null(v);
}
END_TEST

/* original single-file layout, prefix and config found from the names and shapes */
START_TEST(test_shared_original)
{
    VgWeights *w = open_or_fail(DIFF "/tiny-sd2_original_layout_fp16.safetensors");
    VgVae *v = NULL;
    const int ret = vg_vae_open(&v, ctx, w, NULL, NULL);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    ck_assert_int_eq(vg_vae_get_layout(v), VG_VAE_LAYOUT_ORIGINAL);
    const VgVaeConfig *c = vg_vae_get_config(v);
    ck_assert(c->n_blocks == 4 && c->block_out[0] == 32 && c->block_out[3] == 64 &&
              c->layers_per_block == 2 && c->latent_channels == 4);
    check_refs(v, "tiny-sd1", "original");
    check_refs(v, "tiny-sd2", "original");
    vg_vae_close(&v);
    vg_weights_close(&w);
}
END_TEST

static void check_small(VgVae *v, const char *what)
{
    VgWeights *io = vgt_fixture("vae/small_io.safetensors");
    VgTensor y;
    double e;
    int ret = vg_vae_encode(v, vgt_get(io, "image"), &y);
    ck_assert_msg(ret == 0, "encode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(io, "mean"));
    printf("vae small %s encode [2,3,24,40]: rel err %.3g\n", what, e);
    ck_assert_msg(e <= REL_TOL, "%s encode %g", what, e);
    vg_tensor_free(&y);
    ret = vg_vae_decode(v, vgt_get(io, "latent"), &y);
    ck_assert_msg(ret == 0, "decode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(io, "decoded"));
    printf("vae small %s decode [1,4,12,20]: rel err %.3g\n", what, e);
    ck_assert_msg(e <= REL_TOL, "%s decode %g", what, e);
    vg_tensor_free(&y);
    vg_weights_close(&io);
}

static void small_config(VgVaeConfig *cfg)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/tests/fixtures/vae/small_config.json", VG_TOP);
    ck_assert_int_eq(vg_vae_config_from_json(cfg, ctx, p), 0);
    ck_assert(cfg->n_blocks == 2 && cfg->block_out[1] == 16 && cfg->norm_groups == 8 &&
              cfg->layers_per_block == 1);
}

START_TEST(test_legacy_names)
{
    VgWeights *w = vgt_fixture("vae/small_legacy.safetensors");
    VgVaeConfig cfg;
    VgVae *v = NULL;
    small_config(&cfg);
    const int ret = vg_vae_open(&v, ctx, w, "", &cfg);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    ck_assert_int_eq(vg_vae_get_layout(v), VG_VAE_LAYOUT_DIFFUSERS_LEGACY);
    check_small(v, "legacy");
    vg_vae_close(&v);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_standalone_ckpt)
{
    char p[1024];
    VgWeights *w;
    VgVaeConfig cfg;
    VgVae *v = NULL;
    small_config(&cfg);
    snprintf(p, sizeof(p), "%s/tests/fixtures/vae/small_standalone.ckpt", VG_TOP);
    w = open_or_fail(p);
    const int ret = vg_vae_open(&v, ctx, w, NULL, &cfg);  /* finds "state_dict." */
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    ck_assert_int_eq(vg_vae_get_layout(v), VG_VAE_LAYOUT_ORIGINAL);
    check_small(v, "standalone .ckpt");
    vg_vae_close(&v);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_keys)
{
    static const struct { VgVaeLayout l; const char *d, *want; } cases[] = {
        { VG_VAE_LAYOUT_ORIGINAL, "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
          "encoder.down.1.block.0.nin_shortcut.weight" },
        { VG_VAE_LAYOUT_ORIGINAL, "encoder.down_blocks.2.downsamplers.0.conv.bias",
          "encoder.down.2.downsample.conv.bias" },
        { VG_VAE_LAYOUT_ORIGINAL, "decoder.up_blocks.0.upsamplers.0.conv.weight",
          "decoder.up.3.upsample.conv.weight" },
        { VG_VAE_LAYOUT_ORIGINAL, "decoder.up_blocks.3.resnets.2.norm1.bias",
          "decoder.up.0.block.2.norm1.bias" },
        { VG_VAE_LAYOUT_ORIGINAL, "decoder.mid_block.resnets.1.conv2.weight",
          "decoder.mid.block_2.conv2.weight" },
        { VG_VAE_LAYOUT_ORIGINAL, "encoder.mid_block.attentions.0.to_out.0.weight",
          "encoder.mid.attn_1.proj_out.weight" },
        { VG_VAE_LAYOUT_ORIGINAL, "encoder.mid_block.attentions.0.group_norm.bias",
          "encoder.mid.attn_1.norm.bias" },
        { VG_VAE_LAYOUT_ORIGINAL, "decoder.conv_norm_out.weight", "decoder.norm_out.weight" },
        { VG_VAE_LAYOUT_ORIGINAL, "post_quant_conv.bias", "post_quant_conv.bias" },
        { VG_VAE_LAYOUT_DIFFUSERS_LEGACY, "decoder.mid_block.attentions.0.to_out.0.bias",
          "decoder.mid_block.attentions.0.proj_attn.bias" },
        { VG_VAE_LAYOUT_DIFFUSERS_LEGACY, "encoder.mid_block.attentions.0.to_k.weight",
          "encoder.mid_block.attentions.0.key.weight" },
        { VG_VAE_LAYOUT_DIFFUSERS, "encoder.conv_in.weight", "encoder.conv_in.weight" },
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(vg_vae_key(buf, sizeof(buf), cases[i].l, 4, cases[i].d), 0);
        ck_assert_str_eq(buf, cases[i].want);
    }
    ck_assert_int_eq(vg_vae_key(buf, 8, VG_VAE_LAYOUT_ORIGINAL, 4, cases[0].d),
                     VG_ERR(ENAMETOOLONG));
}
END_TEST

/* smooth input: a few low-frequency waves per channel */
static void smooth(VgTensor *t, double scale)
{
    float *d = t->data;
    const int64_t C = t->ne[1], H = t->ne[2], W = t->ne[3];
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                d[(c * H + y) * W + x] = (float)(scale * (0.6 * sin(2.0 * M_PI * x / W + c) *
                                                          cos(2.0 * M_PI * y / H - 0.5 * c) +
                                                          0.3 * sin(M_PI * (x + y) / W + 2 * c)));
}

/* largest |step| between horizontal neighbours across columns @cols (the
 * step from column c-1 to c), over all rows and channels */
static double max_step(const VgTensor *t, const int *cols, int n)
{
    const float *d = t->data;
    const int64_t P = t->ne[0] * t->ne[1], H = t->ne[2], W = t->ne[3];
    double m = 0;
    for (int i = 0; i < n; i++)
        for (int64_t p = 0; p < P; p++)
            for (int64_t y = 0; y < H; y++) {
                const float *r = d + (p * H + y) * W;
                if (cols[i] > 0 && cols[i] < W)
                    m = fmax(m, fabs(r[cols[i]] - r[cols[i] - 1]));
            }
    return m;
}

START_TEST(test_tiled_ref)
{
    VgWeights *w = vgt_fixture("vae/small_legacy.safetensors");
    VgWeights *io = vgt_fixture("vae/small_tiled.safetensors");
    VgVaeConfig cfg;
    VgVae *v = NULL;
    VgTensor y;
    double e;
    int ret;
    small_config(&cfg);
    ck_assert_int_eq(vg_vae_open(&v, ctx, w, NULL, &cfg), 0);
    ret = vg_vae_decode_tiled(v, vgt_get(io, "latent"), 8, 4, &y);
    ck_assert_msg(ret == 0, "tiled decode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(io, "decoded"));
    printf("vae small tiled decode [1,4,24,40] tile 8 overlap 4 vs PyTorch: rel err %.3g\n", e);
    ck_assert_msg(e <= REL_TOL, "tiled decode %g", e);
    vg_tensor_free(&y);
    ret = vg_vae_encode_tiled(v, vgt_get(io, "image"), 8, 4, &y);
    ck_assert_msg(ret == 0, "tiled encode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&y, vgt_get(io, "mean"));
    printf("vae small tiled encode [1,3,48,80] tile 8 overlap 4 vs PyTorch: rel err %.3g\n", e);
    ck_assert_msg(e <= REL_TOL, "tiled encode %g", e);
    /* the moments variant (img2img's posterior) blends the mean the same way */
    VgTensor mom, mean_half;
    ck_assert_int_eq(vg_vae_encode_moments_tiled(v, vgt_get(io, "image"), 8, 4, &mom), 0);
    ck_assert_int_eq(mom.ne[1], 2 * y.ne[1]);
    mean_half = mom;
    mean_half.ne[1] = y.ne[1];
    ck_assert_int_eq(memcmp(mean_half.data, y.data, vg_tensor_nelem(&y) * sizeof(float)), 0);
    vg_tensor_free(&mom);
    vg_tensor_free(&y);
    vg_vae_close(&v);
    vg_weights_close(&io);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_tiled)
{
    VgVae *v = NULL;
    VgTensor lat, a, b, img, ma, mb;
    double e, s_tiled, s_ref;
    int ret = vg_vae_open_path(&v, ctx, DIFF "/tiny-sd2");
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);

    /* decode a 24x32 latent with 16-unit tiles, 8 overlap: tiles start at x = 0, 8, 16
     * and y = 0, 8 */
    ck_assert_int_eq(vg_tensor_alloc4(&lat, 1, 4, 24, 32), 0);
    smooth(&lat, 1.0);
    ck_assert_int_eq(vg_vae_decode(v, &lat, &a), 0);
    double t0 = now();
    ret = vg_vae_decode_tiled(v, &lat, 16, 8, &b);
    ck_assert_msg(ret == 0, "tiled decode: %d (%s)", ret, vgt_last_error);
    ck_assert(vg_tensor_same_shape(&a, &b));
    e = rel_err(&b, &a);
    /* tile edges in image pixels (where a tile's contribution starts or stops) */
    const int edges[] = { 64, 128, 192 };
    s_tiled = max_step(&b, edges, 3);
    s_ref = max_step(&a, edges, 3);
    printf("vae tiled decode 192x256 (tile 16, overlap 8): rel err vs untiled %.3g, max step at "
           "tile edges %.3g (untiled %.3g), %.3f s\n", e, s_tiled, s_ref, now() - t0);
    ck_assert_msg(e <= TILE_REL_TOL, "tiled decode differs: %g", e);
    ck_assert_msg(s_tiled <= SEAM_FACTOR * s_ref + 1e-3, "seam: %g vs %g", s_tiled, s_ref);
    /* one tile covering everything is the untiled decode */
    vg_tensor_free(&b);
    ck_assert_int_eq(vg_vae_decode_tiled(v, &lat, 64, 16, &b), 0);
    ck_assert(rel_err(&b, &a) == 0.0);
    vg_tensor_free(&b);

    /* encode a 192x256 smooth image with 128-pixel tiles (16 units), 8 overlap */
    ck_assert_int_eq(vg_tensor_alloc4(&img, 1, 3, 192, 256), 0);
    smooth(&img, 0.9);
    ck_assert_int_eq(vg_vae_encode(v, &img, &ma), 0);
    ret = vg_vae_encode_tiled(v, &img, 16, 8, &mb);
    ck_assert_msg(ret == 0, "tiled encode: %d (%s)", ret, vgt_last_error);
    e = rel_err(&mb, &ma);
    const int ledges[] = { 8, 16, 24 };
    s_tiled = max_step(&mb, ledges, 3);
    s_ref = max_step(&ma, ledges, 3);
    printf("vae tiled encode: rel err vs untiled %.3g, max step at tile edges %.3g (untiled "
           "%.3g)\n", e, s_tiled, s_ref);
    ck_assert_msg(e <= TILE_REL_TOL, "tiled encode differs: %g", e);
    ck_assert_msg(s_tiled <= SEAM_FACTOR * s_ref + 1e-3, "seam: %g vs %g", s_tiled, s_ref);

    /* overlap >= tile refused */
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_decode_tiled(v, &lat, 8, 8, &b), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);

    vg_tensor_free(&lat);
    vg_tensor_free(&a);
    vg_tensor_free(&img);
    vg_tensor_free(&ma);
    vg_tensor_free(&mb);
    vg_vae_close(&v);
}
END_TEST

START_TEST(test_errors)
{
    VgWeights *w = vgt_fixture("vae/small_legacy.safetensors"), *part = NULL;
    VgVaeConfig cfg;
    VgVae *v = NULL;
    VgTensor x, y;
    char p[1024];

    /* the SD default config does not fit the small file: one line naming a tensor */
    vg_vae_config_default(&cfg);
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_open(&v, ctx, w, "", &cfg), VG_EBADMODEL);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_msg(strstr(vgt_last_error, "encoder.conv_in.weight"), "%s", vgt_last_error);

    /* a tensor missing */
    ck_assert_int_eq(vg_weights_new(&part), 0);
    for (int i = 0; i < vg_weights_count(w); i++) {
        VgTensor t = *vg_weights_at(w, i);
        if (strcmp(vg_weights_name(w, i), "decoder.up_blocks.1.resnets.1.conv2.bias"))
            ck_assert_int_eq(vg_weights_add(part, vg_weights_name(w, i), &t), 0);
    }
    small_config(&cfg);
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_open(&v, ctx, part, NULL, &cfg), VG_EBADMODEL);
    ck_assert_msg(strstr(vgt_last_error, "decoder.up_blocks.1.resnets.1.conv2.bias") &&
                  strstr(vgt_last_error, "missing"), "%s", vgt_last_error);
    vg_weights_close(&part);

    /* wrong prefix; TAESD weights are no KL VAE */
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_open(&v, ctx, w, "first_stage_model.", &cfg), VG_EBADMODEL);
    ck_assert_int_eq(vgt_n_errors, 1);
    snprintf(p, sizeof(p), "%s/tests/fixtures/taesd/taesd_diffusers.safetensors", VG_TOP);
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_open_path(&v, ctx, p), VG_EBADMODEL);
    ck_assert_int_eq(vgt_n_errors, 1);
    /* a missing or truncated file */
    ck_assert_int_lt(vg_vae_open_path(&v, ctx, "/nonexistent/vae.safetensors"), 0);
    {
        FILE *in = fopen(VG_TOP "/tests/fixtures/vae/small_legacy.safetensors", "rb");
        char tmp[] = "/tmp/vg_vae_truncXXXXXX";
        static char buf[60000];
        const int fd = mkstemp(tmp);
        ck_assert(in && fd >= 0);
        const size_t n = fread(buf, 1, sizeof(buf), in);
        FILE *out = fdopen(fd, "wb");
        fwrite(buf, 1, n, out);
        fclose(out);
        fclose(in);
        vgt_log_reset();
        ck_assert_int_lt(vg_vae_open_path(&v, ctx, tmp), 0);
        ck_assert_int_ge(vgt_n_errors, 1);
        remove(tmp);
    }
    ck_assert_ptr_null(v);

    /* bad input sizes */
    ck_assert_int_eq(vg_vae_open(&v, ctx, w, NULL, &cfg), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, 3, 23, 40), 0);  /* 23: not a multiple of 2 */
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_encode(v, &x, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_null(y.data);
    vgt_log_reset();
    ck_assert_int_eq(vg_vae_decode(v, &x, &y), VG_ERR(EINVAL));  /* 3 channels, not 4 */
    ck_assert_int_eq(vgt_n_errors, 1);
    vg_tensor_free(&x);
    vg_vae_close(&v);
    vg_vae_close(&v);
    vg_weights_close(&w);
}
END_TEST

static Suite *vae_suite(void)
{
    Suite *s = suite_create("vae");
    TCase *tc = tcase_create("vae");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_shared_diffusers, 0, 2);
    tcase_add_test(tc, test_shared_original);
    tcase_add_test(tc, test_legacy_names);
    tcase_add_test(tc, test_standalone_ckpt);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_tiled_ref);
    tcase_add_test(tc, test_tiled);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vae_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
