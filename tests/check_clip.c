/*
 * CLIP text encoders (engine/sd/clip.h) against the outputs transformers
 * computed for ../shared/data/diffusion (tiny random-weight SD1 / SD2 text
 * towers, F16 weights): last_hidden_state (final LN applied) and the
 * penultimate hidden state without final LN, for "a photo of a cat" and "",
 * within 1e-3 max relative error (max|a - b| / max|b|). Loaded from the
 * diffusers folders (with config.json), from the original single-file SD2
 * layout (OpenCLIP names, fused in_proj) and from in-memory re-keyings
 * that stand for an SD1 single file and a full OpenCLIP tower (with
 * text_projection and one more resblock, which must then be skipped).
 * Needs ../shared/data (fails loudly without it).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/sd/clip.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define DIFF VG_SHARED_DATA "/diffusion"
#define TOL 1e-3

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

/* ../shared/data stores tiny-sd1's shared weight files as small text files
 * holding the relative path of the real file (a "link"): follow it. */
static VgWeights *open_w(const char *path_in)
{
    char path[1024], link[512];
    snprintf(path, sizeof(path), "%s", path_in);
    FILE *f = fopen(path, "rb");
    if (f) {
        const size_t n = fread(link, 1, sizeof(link) - 1, f);
        fclose(f);
        link[n] = 0;
        if (n > 3 && n < 400 && !strncmp(link, "../", 3) && !strchr(link, '{')) {
            link[strcspn(link, "\r\n")] = 0;
            char *slash = strrchr(path, '/');
            snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path), "%s", link);
        }
    }
    VgWeights *w = NULL;
    ck_assert_msg(vg_weights_open(&w, ctx, path) == 0, "cannot open %s (%s): is "
                  "../shared/data there?", path, vgt_last_error);
    return w;
}

static double rel_err(const VgTensor *a, const VgTensor *b)
{
    double num = 0.0, den = 0.0;
    ck_assert_int_eq(vg_tensor_nelem(a), vg_tensor_nelem(b));
    for (int64_t i = 0; i < vg_tensor_nelem(b); i++) {
        const double x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        num = fmax(num, fabs(x - y));
        den = fmax(den, fabs(y));
    }
    return num / den;
}

/* ids I64 [1, 77] -> int32 */
static void ids_of(const VgWeights *ref, const char *name, int32_t ids[77])
{
    const VgTensor *t = vgt_get(ref, "%s", name);
    ck_assert_int_eq(t->dtype, VG_DT_I64);
    for (int i = 0; i < 77; i++)
        ids[i] = (int32_t)((const int64_t *)t->data)[i];
}

/* Runs @clip on the ref's ids and compares with @out_name; returns the error. */
static double run_cmp(VgClip *clip, const VgWeights *ref, const char *ids_name,
                      const char *out_name)
{
    int32_t ids[77];
    VgTensor y;
    const VgTensor *want = vgt_get(ref, "%s", out_name);
    ids_of(ref, ids_name, ids);
    vgt_alloc_like(&y, want);
    ck_assert_int_eq(vg_clip_encode(clip, ids, 77, &y), 0);
    const double e = rel_err(&y, want);
    vg_tensor_free(&y);
    ck_assert_msg(e <= TOL, "%s: max rel err %g > %g", out_name, e, TOL);
    return e;
}

/* All four comparisons for one loaded model. */
static void check_model(const VgWeights *w, const char *prefix, const VgClipConfig *base,
                        const char *fam, const char *what)
{
    char path[512];
    snprintf(path, sizeof(path), DIFF "/refs/%s_text.safetensors", fam);
    VgWeights *ref = open_w(path);
    VgClipConfig cfg;
    if (base)
        cfg = *base;
    else
        vg_clip_config_default(&cfg);
    VgClip *clip = NULL;
    ck_assert_msg(vg_clip_open(&clip, ctx, w, prefix, &cfg) == 0, "%s: %s", what,
                  vgt_last_error);
    ck_assert_int_eq(vg_clip_hidden(clip), 256);
    const double e0 = run_cmp(clip, ref, "input_ids", "last_hidden_state");
    const double e1 = run_cmp(clip, ref, "input_ids", "pipeline_prompt_embeds");
    const double e2 = run_cmp(clip, ref, "neg_input_ids", "pipeline_negative_embeds");
    vg_clip_close(&clip);
    cfg.skip = 1;
    cfg.no_final_ln = 1;
    ck_assert_int_eq(vg_clip_open(&clip, ctx, w, prefix, &cfg), 0);
    const double e3 = run_cmp(clip, ref, "input_ids", "hidden_state_penultimate_no_final_ln");
    vg_clip_close(&clip);
    fprintf(stderr, "check_clip: %-28s last %.2e prompt %.2e negative %.2e penultimate %.2e\n",
            what, e0, e1, e2, e3);
    vg_weights_close(&ref);
}

START_TEST(test_diffusers)
{
    static const char *const fam[2] = { "tiny-sd1", "tiny-sd2" };
    for (int f = 0; f < 2; f++) {
        char path[512];
        VgClipConfig cfg;
        vg_clip_config_default(&cfg);
        snprintf(path, sizeof(path), DIFF "/%s/text_encoder/config.json", fam[f]);
        ck_assert_int_eq(vg_clip_config_read(&cfg, ctx, path), 0);
        ck_assert_int_eq(cfg.act, f ? VG_CLIP_ACT_GELU : VG_CLIP_ACT_QUICK_GELU);
        ck_assert_int_eq(cfg.layers, 2);
        snprintf(path, sizeof(path), DIFF "/%s/text_encoder/model.safetensors", fam[f]);
        VgWeights *w = open_w(path);
        ck_assert_str_eq(vg_clip_find_prefix(w), "");
        check_model(w, "", &cfg, fam[f], f ? "sd2 diffusers" : "sd1 diffusers");
        vg_weights_close(&w);
    }
}
END_TEST

START_TEST(test_sd2_original)
{
    VgWeights *w = open_w(DIFF "/tiny-sd2_original_layout_fp16.safetensors");
    ck_assert_str_eq(vg_clip_find_prefix(w), "cond_stage_model.model.");
    /* everything inferred: OpenCLIP -> gelu, heads 256 / 64, no text_projection -> all layers */
    check_model(w, NULL, NULL, "tiny-sd2", "sd2 original layout");
    vg_weights_close(&w);
}
END_TEST

/* A copy of @src's tensors whose names start with @from, renamed to start
 * with @to (views: @src must outlive it). */
static VgWeights *rekey(const VgWeights *src, const char *from, const char *to,
                        const char *drop)
{
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_weights_new(&w), 0);
    const size_t nf = strlen(from);
    for (int i = 0; i < vg_weights_count(src); i++) {
        const char *name = vg_weights_name(src, i);
        if (strncmp(name, from, nf) || (drop && !strcmp(name + nf, drop)))
            continue;
        char buf[512];
        snprintf(buf, sizeof(buf), "%s%s", to, name + nf);
        VgTensor t = *vg_weights_at(src, i);
        t.alloc = NULL;
        ck_assert_int_eq(vg_weights_add(w, buf, &t), 0);
    }
    return w;
}

START_TEST(test_sd1_single_file)
{
    /* tiny-sd1's text encoder is tiny-sd2's weights run with quick_gelu; an
     * SD1 single file holds them under cond_stage_model.transformer. */
    VgWeights *src = open_w(DIFF "/tiny-sd2/text_encoder/model.safetensors");
    VgWeights *w = rekey(src, "", "cond_stage_model.transformer.", NULL);
    ck_assert_str_eq(vg_clip_find_prefix(w), "cond_stage_model.transformer.");
    check_model(w, NULL, NULL, "tiny-sd1", "sd1 single-file layout");
    vg_weights_close(&w);
    vg_weights_close(&src);
}
END_TEST

START_TEST(test_full_openclip_tower)
{
    /* add text_projection and a third resblock (garbage: a copy of block 0
     * with ln_1 replaced by out_proj's bias): a full tower skips its last block */
    VgWeights *src = open_w(DIFF "/tiny-sd2_original_layout_fp16.safetensors");
    VgWeights *w = rekey(src, "cond_stage_model.model.", "cond_stage_model.model.", NULL);
    const char *pre = "cond_stage_model.model.transformer.resblocks.0.";
    for (int i = 0; i < vg_weights_count(src); i++) {
        const char *name = vg_weights_name(src, i);
        if (strncmp(name, pre, strlen(pre)))
            continue;
        char buf[512];
        snprintf(buf, sizeof(buf), "cond_stage_model.model.transformer.resblocks.2.%s",
                 name + strlen(pre));
        VgTensor t = *vg_weights_at(src, i);
        ck_assert_int_eq(vg_weights_add(w, buf, &t), 0);
    }
    VgTensor proj = *vgt_get(src, "cond_stage_model.model.transformer.resblocks.0.attn."
                             "out_proj.weight");
    ck_assert_int_eq(vg_weights_add(w, "cond_stage_model.model.text_projection", &proj), 0);
    check_model(w, "cond_stage_model.model.", NULL, "tiny-sd2", "sd2 full OpenCLIP tower");
    vg_weights_close(&w);
    vg_weights_close(&src);
}
END_TEST

START_TEST(test_errors)
{
    VgWeights *src = open_w(DIFF "/tiny-sd2_original_layout_fp16.safetensors");
    VgClip *clip = NULL;
    /* a missing key */
    VgWeights *w = rekey(src, "", "", "cond_stage_model.model.transformer.resblocks.1.mlp."
                         "c_fc.bias");
    vgt_log_reset();
    ck_assert_int_eq(vg_clip_open(&clip, ctx, w, NULL, NULL), VG_EBADMODEL);
    ck_assert_ptr_null(clip);
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "missing tensor cond_stage_model.model."
                                 "transformer.resblocks.1.mlp.c_fc.bias"));
    vg_weights_close(&w);
    /* a wrong shape: ln_final.weight replaced by a [768] tensor */
    w = rekey(src, "", "", "cond_stage_model.model.ln_final.weight");
    VgTensor bad = *vgt_get(src, "cond_stage_model.model.transformer.resblocks.0.attn."
                            "in_proj_bias");
    ck_assert_int_eq(vg_weights_add(w, "cond_stage_model.model.ln_final.weight", &bad), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_clip_open(&clip, ctx, w, NULL, NULL), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "ln_final.weight is F16 [768], expected"));
    vg_weights_close(&w);
    /* config that disagrees with the tensors; too many layers; no encoder */
    VgClipConfig cfg;
    vg_clip_config_default(&cfg);
    cfg.hidden = 768;
    vgt_log_reset();
    ck_assert_int_eq(vg_clip_open(&clip, ctx, src, NULL, &cfg), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "hidden_size 768"));
    vg_clip_config_default(&cfg);
    cfg.layers = 24;
    ck_assert_int_eq(vg_clip_open(&clip, ctx, src, NULL, &cfg), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "24 layers requested"));
    w = rekey(src, "model.", "model.", NULL);
    vgt_log_reset();
    ck_assert_int_eq(vg_clip_open(&clip, ctx, w, NULL, NULL), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "no CLIP text encoder"));
    vg_weights_close(&w);
    /* bad ids / output */
    ck_assert_int_eq(vg_clip_open(&clip, ctx, src, NULL, NULL), 0);
    int32_t ids[77] = { 49406, 49408 };
    VgTensor y;
    ck_assert_int_eq(vg_tensor_alloc(&y, VG_DT_F32, 3, (int64_t[]){ 1, 77, 256 }), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_clip_encode(clip, ids, 77, &y), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "id 49408"));
    ids[1] = 49407;
    ck_assert_int_eq(vg_clip_encode(clip, ids, 78, &y), VG_ERR(EINVAL));
    vg_tensor_free(&y);
    vg_clip_close(&clip);
    ck_assert_int_lt(vg_clip_config_read(&cfg, ctx, "/nonexistent/config.json"), 0);
    vg_weights_close(&src);
}
END_TEST

static Suite *clip_suite(void)
{
    Suite *s = suite_create("clip");
    TCase *tc = tcase_create("text");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_diffusers);
    tcase_add_test(tc, test_sd2_original);
    tcase_add_test(tc, test_sd1_single_file);
    tcase_add_test(tc, test_full_openclip_tower);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clip_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
