/*
 * Stable Diffusion UNet (engine/sd/unet.h) against references:
 *  - diffusers 0.27.2 outputs of the random-weight tiny-sd1 / tiny-sd2 UNets
 *    (../shared/data/diffusion/refs/tiny-sd{1,2}_unet.safetensors, t = 999 and
 *    500), from the diffusers folder as one batch-2 call with t = [999, 500], and,
 *    for tiny-sd2, from the original-layout single file (B = 1) with the config
 *    inferred from shapes; tiny-sd1 with its weights widened to F32;
 *  - tests/fixtures/unet/micro_sd1_original.safetensors (tests/reference/sd_unet.py):
 *    SD1-style (conv projections) single-file layout, 2 transformer layers per
 *    block, batch 2 with different samples/timesteps/prompts, odd latent size 9x7;
 * tolerance: max|a - b| / max|b| <= 1e-3 (the bar; measured values are
 * printed). Also: the key mapping against diffusers' own conversion, the full
 * SD1.5 / SD2.1 shapes (parameter counts, inference from shapes) on metadata-only
 * weights, and the error paths.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "visgen/visgen.h"
#include "engine/sd/unet.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define REL_TOL 1e-3
#define MICRO_TOL 1e-4
#define ORIG_PREFIX "model.diffusion_model."

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

static void shared_path(char *buf, size_t n, const char *rel)
{
    struct stat st;
    snprintf(buf, n, "%s/diffusion/%s", VG_SHARED_DATA, rel);
    ck_assert_msg(!stat(buf, &st), "missing reference data %s (see ../shared/data/README.md)", buf);
}

static VgWeights *open_shared(const char *rel)
{
    char p[1024];
    VgWeights *w = NULL;
    shared_path(p, sizeof(p), rel);
    const int ret = vg_weights_open(&w, ctx, p);
    ck_assert_msg(ret == 0, "cannot open %s: %s", p, vg_strerror(ret));
    return w;
}

static void load_config(VgUnetConfig *cfg, const char *fam)
{
    char rel[128], p[1024];
    snprintf(rel, sizeof(rel), "tiny-%s/unet/config.json", fam);
    shared_path(p, sizeof(p), rel);
    const int ret = vg_unet_config_load(cfg, ctx, p);
    ck_assert_msg(ret == 0, "config %s: %d (%s)", p, ret, vgt_last_error);
}

/* max|a - b| / max|b| */
static double rel_err(const VgTensor *a, const VgTensor *b)
{
    double mx = 0;
    VgTensor fb = { 0 };
    ck_assert_int_eq(vg_tensor_to_f32(b, &fb), 0);
    for (int64_t i = 0, n = vg_tensor_nelem(&fb); i < n; i++)
        mx = fmax(mx, fabs(((const float *)fb.data)[i]));
    vg_tensor_free(&fb);
    const double e = vgt_max_abs_err(a, b, NULL);
    return mx > 0 ? e / mx : e;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs @u on the refs file's sample and checks the outputs for t = 999 and 500:
 * @batch 1 as two B = 1 calls, 2 as one B = 2 call with t = [999, 500] (the CFG pair
 * shape; same sample and prompt in both items), 0 as one B = 1 call at t = 500. */
static void check_refs(VgUnet *u, const char *fam, const char *what, int batch)
{
    static const int steps[2] = { 999, 500 };
    char rel[128];
    VgTensor x = { 0 }, e = { 0 }, y = { 0 };
    snprintf(rel, sizeof(rel), "refs/tiny-%s_unet.safetensors", fam);
    VgWeights *r = open_shared(rel);
    const VgTensor *s = vgt_get(r, "sample"), *enc = vgt_get(r, "encoder_hidden_states");
    for (int k = 0; k < 2; k++)
        ck_assert(*(const float *)vgt_get(r, "timestep_%d", steps[k])->data == steps[k]);
    const int B = batch == 2 ? 2 : 1, calls = batch == 1 ? 2 : 1;
    const int64_t sx[4] = { B, s->ne[1], s->ne[2], s->ne[3] }, se[3] = { B, enc->ne[1], enc->ne[2] };
    const size_t ns = vg_tensor_nelem(s) * 4, ne = vg_tensor_nelem(enc) * 4;
    ck_assert_int_eq(vg_tensor_alloc(&x, VG_DT_F32, 4, sx), 0);
    ck_assert_int_eq(vg_tensor_alloc(&e, VG_DT_F32, 3, se), 0);
    ck_assert_int_eq(vg_tensor_alloc(&y, VG_DT_F32, 4, sx), 0);
    for (int b = 0; b < B; b++) {
        memcpy((char *)x.data + b * ns, s->data, ns);
        memcpy((char *)e.data + b * ne, enc->data, ne);
    }
    for (int k = 0; k < calls; k++) {
        const float t[2] = { batch ? steps[k] : 500, 500 };
        const double t0 = now_s();
        const int ret = vg_unet_forward(u, &x, t, &e, &y);
        const double dt = now_s() - t0;
        ck_assert_msg(ret == 0, "forward: %d (%s)", ret, vgt_last_error);
        for (int b = 0; b < B; b++) {
            VgTensor item;
            const int step = (int)t[b];
            vg_tensor_view(&item, VG_DT_F32, (char *)y.data + b * ns, 4, s->ne);
            const double err = rel_err(&item, vgt_get(r, "output_t%d", step));
            printf("unet %s (%s, B=%d) t=%d: max rel err %.3g, %.1f ms per call\n", fam, what, B,
                   step, err, dt * 1e3);
            ck_assert_msg(err <= REL_TOL, "%s %s t=%d: rel err %g > %g", fam, what, step, err, REL_TOL);
        }
    }
    vg_tensor_free(&x);
    vg_tensor_free(&e);
    vg_tensor_free(&y);
    vg_weights_close(&r);
}

/* ------------------------------------------------------------------ references */

static const char *const fams[2] = { "sd1", "sd2" };

START_TEST(test_tiny_diffusers)
{
    const char *fam = fams[_i];
    char rel[128];
    VgUnetConfig cfg;
    VgUnet *u = NULL;
    load_config(&cfg, fam);
    /* diffusers' attention_head_dim quirk: sd1 "2" = 2 heads; sd2 [1,2,2,2] = head dim 64 */
    ck_assert_int_eq(cfg.heads[0], _i ? 1 : 2);
    ck_assert_int_eq(cfg.heads[3], 2);
    ck_assert_int_eq(cfg.use_linear_projection, _i);
    snprintf(rel, sizeof(rel), "tiny-%s/unet/diffusion_pytorch_model.safetensors", fam);
    VgWeights *w = open_shared(rel);
    if (_i == 1) { /* SD2 rules (head dim 64) give this folder's config from shapes alone */
        VgUnetConfig got;
        ck_assert_int_eq(vg_unet_config_infer(&got, ctx, w, "", VG_UNET_LAYOUT_AUTO), 0);
        ck_assert_msg(!memcmp(&got, &cfg, sizeof(cfg)), "inferred config differs from config.json");
    }
    int ret = vg_unet_open(&u, ctx, w, NULL, VG_UNET_LAYOUT_AUTO, &cfg);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_refs(u, fam, "diffusers folder", 2);
    vg_unet_close(&u);
    vg_weights_close(&w);
}
END_TEST

START_TEST(test_tiny_sd2_original)
{
    VgUnetConfig ref, got;
    VgUnet *u = NULL;
    VgSdFamily fam;
    load_config(&ref, "sd2");
    VgWeights *w = open_shared("tiny-sd2_original_layout_fp16.safetensors");
    VgUnetLayout layout;
    ck_assert_int_eq(vg_unet_detect_layout(ctx, w, ORIG_PREFIX, &layout), 0);
    ck_assert_int_eq(layout, VG_UNET_LAYOUT_ORIGINAL);
    /* a single file has no config.json: everything from shapes */
    int ret = vg_unet_config_infer(&got, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO);
    ck_assert_msg(ret == 0, "infer: %d (%s)", ret, vgt_last_error);
    ck_assert_msg(!memcmp(&got, &ref, sizeof(ref)), "inferred config differs from config.json");
    ck_assert_int_eq(vg_unet_family(ctx, &got, &fam), 0);
    ck_assert_int_eq(fam, VG_SD_FAMILY_SD2);
    ret = vg_unet_open(&u, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, NULL);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_refs(u, "sd2", "single file", 1);
    vg_unet_close(&u);
    vg_weights_close(&w);
}
END_TEST

/* F32 weights (released checkpoints come in F32, F16 and BF16): the widened copy of tiny-sd1. */
START_TEST(test_f32_weights)
{
    VgUnetConfig cfg;
    VgUnet *u = NULL;
    VgWeights *w32 = NULL;
    load_config(&cfg, "sd1");
    VgWeights *w = open_shared("tiny-sd1/unet/diffusion_pytorch_model.safetensors");
    ck_assert_int_eq(vg_weights_new(&w32), 0);
    for (int i = 0; i < vg_weights_count(w); i++) {
        VgTensor t;
        ck_assert_int_eq(vg_tensor_to_f32(vg_weights_at(w, i), &t), 0);
        ck_assert_int_eq(vg_weights_add(w32, vg_weights_name(w, i), &t), 0);  /* takes t's buffer */
    }
    vg_weights_close(&w);
    int ret = vg_unet_open(&u, ctx, w32, NULL, VG_UNET_LAYOUT_AUTO, &cfg);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    check_refs(u, "sd1", "F32 weights", 0);
    vg_unet_close(&u);
    vg_weights_close(&w32);
}
END_TEST

/* SD1-style single file, config from its config.json text, B = 2, odd size. */
START_TEST(test_micro_original)
{
    VgUnetConfig cfg;
    VgUnet *u = NULL;
    VgTensor y;
    VgWeights *w = vgt_fixture("unet/micro_sd1_original.safetensors");
    const char *json = vg_weights_metadata(w, "config");
    ck_assert_ptr_nonnull(json);
    ck_assert_int_eq(vg_unet_config_parse(&cfg, ctx, json), 0);
    ck_assert_int_eq(cfg.tf_layers[0], 2);
    ck_assert_int_eq(cfg.up_tf_layers[1], 2);
    int ret = vg_unet_open(&u, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, &cfg);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    const VgTensor *ref = vgt_get(w, "out"), *ts = vgt_get(w, "timestep");
    vgt_alloc_like(&y, ref);
    ret = vg_unet_forward(u, vgt_get(w, "sample"), ts->data, vgt_get(w, "encoder_hidden_states"), &y);
    ck_assert_msg(ret == 0, "forward: %d (%s)", ret, vgt_last_error);
    const double e = rel_err(&y, ref);
    printf("unet micro sd1 single file, B=2, 9x7: max rel err %.3g\n", e);
    ck_assert_msg(e <= MICRO_TOL, "rel err %g", e);
    vg_tensor_free(&y);
    vg_unet_close(&u);
    vg_weights_close(&w);
}
END_TEST

/* ------------------------------------------------------------------ names and shapes */

typedef struct Enum { const VgWeights *w; int n, bad; } Enum;

static int enum_check(void *opaque, const char *name, int ndim, const int64_t *shape)
{
    Enum *e = opaque;
    const VgTensor *t = vg_weights_find(e->w, name);
    int ok = t && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->ne[d] == shape[d];
    if (!ok && e->bad++ < 5)
        fprintf(stderr, "foreach_param: %s absent or misshapen\n", name);
    e->n++;
    return 0;
}

/* vg_unet_foreach_param lists exactly the diffusers file; vg_unet_key_original maps each
 * name onto the tensor diffusers' conversion wrote, byte for byte. */
START_TEST(test_key_mapping)
{
    VgUnetConfig cfg;
    char o[256], full[300];
    load_config(&cfg, "sd2");
    VgWeights *d = open_shared("tiny-sd2/unet/diffusion_pytorch_model.safetensors");
    VgWeights *orig = open_shared("tiny-sd2_original_layout_fp16.safetensors");
    Enum e = { .w = d };
    ck_assert_int_eq(vg_unet_foreach_param(&cfg, enum_check, &e), 0);
    ck_assert_int_eq(e.bad, 0);
    ck_assert_int_eq(e.n, vg_weights_count(d));
    int n_orig = 0;
    for (int i = 0; i < vg_weights_count(orig); i++)
        n_orig += !strncmp(vg_weights_name(orig, i), ORIG_PREFIX, strlen(ORIG_PREFIX));
    ck_assert_int_eq(n_orig, vg_weights_count(d));
    for (int i = 0; i < vg_weights_count(d); i++) {
        const char *name = vg_weights_name(d, i);
        const VgTensor *a = vg_weights_at(d, i);
        ck_assert_msg(vg_unet_key_original(&cfg, name, o, sizeof(o)) == 0, "no mapping for %s", name);
        snprintf(full, sizeof(full), ORIG_PREFIX "%s", o);
        const VgTensor *b = vg_weights_find(orig, full);
        ck_assert_msg(b, "%s -> %s: absent from the single file", name, full);
        ck_assert_msg(vg_tensor_same_shape(a, b) && a->dtype == b->dtype &&
                      !memcmp(a->data, b->data, vg_tensor_nelem(a) * vg_dtype_size(a->dtype)),
                      "%s -> %s: different tensor", name, full);
    }
    /* spot checks of the published layout (layers_per_block 2) */
    static const char *const pairs[][2] = {
        { "down_blocks.1.resnets.0.norm1.weight", "input_blocks.4.0.in_layers.0.weight" },
        { "down_blocks.2.downsamplers.0.conv.bias", "input_blocks.9.0.op.bias" },
        { "mid_block.resnets.1.conv_shortcut.weight", "middle_block.2.skip_connection.weight" },
        { "up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight" },
        { "up_blocks.1.upsamplers.0.conv.weight", "output_blocks.5.2.conv.weight" },
        { "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.bias",
          "output_blocks.11.1.transformer_blocks.0.ff.net.2.bias" },
        { "time_embedding.linear_2.weight", "time_embed.2.weight" },
        { "conv_norm_out.bias", "out.0.bias" },
    };
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        ck_assert_int_eq(vg_unet_key_original(&cfg, pairs[k][0], o, sizeof(o)), 0);
        ck_assert_str_eq(o, pairs[k][1]);
    }
    ck_assert_int_eq(vg_unet_key_original(&cfg, "down_blocks.9.resnets.0.norm1.weight", o, sizeof(o)),
                     VG_ERR(EINVAL));
    ck_assert_int_eq(vg_unet_key_original(&cfg, "bogus.weight", o, sizeof(o)), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_unet_key_original(&cfg, "conv_in.weight", o, 8), VG_ERR(ENAMETOOLONG));
    vg_weights_close(&orig);
    vg_weights_close(&d);
}
END_TEST

/* Metadata-only weight sets with the real shapes: F16 views into one shared zeroed
 * buffer (pages never touched), names in the original layout. */
typedef struct Synth { VgWeights *w; const VgUnetConfig *cfg; void *buf; int64_t max_elems; } Synth;

static int synth_add(void *opaque, const char *name, int ndim, const int64_t *shape)
{
    Synth *s = opaque;
    char o[256], full[300];
    VgTensor t;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    ck_assert(n <= s->max_elems);
    ck_assert_int_eq(vg_unet_key_original(s->cfg, name, o, sizeof(o)), 0);
    snprintf(full, sizeof(full), ORIG_PREFIX "%s", o);
    vg_tensor_view(&t, VG_DT_F16, s->buf, ndim, shape);
    return vg_weights_add(s->w, full, &t);
}

START_TEST(test_full_shapes)
{
    /* UNet parameter counts of the released SD1.5 and SD2.1 checkpoints */
    static const int64_t want[2] = { 859520964, 865910724 };
    VgUnetConfig ref, got;
    VgUnet *u = NULL;
    VgSdFamily fam;
    Synth s = { .max_elems = 1280LL * 2560 * 9 };
    if (_i == 0)
        vg_unet_config_sd15(&ref);
    else
        vg_unet_config_sd21(&ref);
    s.cfg = &ref;
    ck_assert_ptr_nonnull(s.buf = calloc(s.max_elems, 2));
    ck_assert_int_eq(vg_weights_new(&s.w), 0);
    ck_assert_int_eq(vg_unet_foreach_param(&ref, synth_add, &s), 0);
    int ret = vg_unet_config_infer(&got, ctx, s.w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO);
    ck_assert_msg(ret == 0, "infer: %d (%s)", ret, vgt_last_error);
    ck_assert_msg(!memcmp(&got, &ref, sizeof(ref)), "inferred config differs");
    ck_assert_int_eq(vg_unet_family(ctx, &got, &fam), 0);
    ck_assert_int_eq(fam, _i ? VG_SD_FAMILY_SD2 : VG_SD_FAMILY_SD1);
    ck_assert_int_eq(got.heads[0], _i ? 5 : 8);
    ret = vg_unet_open(&u, ctx, s.w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, NULL);
    ck_assert_msg(ret == 0, "open: %d (%s)", ret, vgt_last_error);
    ck_assert_int_eq(vg_unet_n_params(u), want[_i]);
    vg_unet_close(&u);
    vg_weights_close(&s.w);
    free(s.buf);
}
END_TEST

/* ------------------------------------------------------------------ errors */

/* A copy of @src (views) without @drop, with @replace's shape changed and @extra added. */
static VgWeights *edited(const VgWeights *src, const char *drop, const char *reshape, const char *extra)
{
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_weights_new(&w), 0);
    for (int i = 0; i < vg_weights_count(src); i++) {
        const char *name = vg_weights_name(src, i);
        VgTensor t = *vg_weights_at(src, i);
        t.alloc = NULL;
        if (drop && !strcmp(name, drop))
            continue;
        if (reshape && !strcmp(name, reshape)) {
            const int64_t shape[1] = { t.ne[0] / 2 };
            vg_tensor_view(&t, t.dtype, t.data, 1, shape);
        }
        ck_assert_int_eq(vg_weights_add(w, name, &t), 0);
    }
    if (extra) {
        VgTensor t = *vg_weights_at(src, 0);
        t.alloc = NULL;
        ck_assert_int_eq(vg_weights_add(w, extra, &t), 0);
    }
    return w;
}

START_TEST(test_errors)
{
    VgUnetConfig cfg, c2;
    VgUnet *u = NULL;
    load_config(&cfg, "sd2");
    VgWeights *orig = open_shared("tiny-sd2_original_layout_fp16.safetensors");
    VgWeights *w;

    /* missing tensor: named in the file's own layout */
    w = edited(orig, ORIG_PREFIX "output_blocks.5.2.conv.weight", NULL, NULL);
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_open(&u, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_ORIGINAL, &cfg), VG_EBADMODEL);
    ck_assert_ptr_null(u);
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_msg(strstr(vgt_last_error, "output_blocks.5.2.conv.weight") &&
                  strstr(vgt_last_error, "up_blocks.1.upsamplers.0.conv.weight") &&
                  strstr(vgt_last_error, "missing"), "%s", vgt_last_error);
    vg_weights_close(&w);

    /* wrong shape */
    w = edited(orig, NULL, ORIG_PREFIX "middle_block.1.norm.weight", NULL);
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_open(&u, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, &cfg), VG_EBADMODEL);
    ck_assert_msg(strstr(vgt_last_error, "middle_block.1.norm.weight") &&
                  strstr(vgt_last_error, "[64]") && strstr(vgt_last_error, "[128]"), "%s", vgt_last_error);
    vg_weights_close(&w);

    /* SDXL markers */
    w = edited(orig, NULL, NULL, ORIG_PREFIX "label_emb.0.0.weight");
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_open(&u, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, NULL), VG_EUNSUPPORTED);
    ck_assert_msg(strstr(vgt_last_error, "SDXL checkpoints are not supported"), "%s", vgt_last_error);
    ck_assert_int_eq(vg_unet_config_infer(&c2, ctx, w, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO), VG_EUNSUPPORTED);
    vg_weights_close(&w);
    c2 = cfg;
    c2.cross_attention_dim = 2048;
    VgSdFamily fam;
    ck_assert_int_eq(vg_unet_family(ctx, &c2, &fam), VG_EUNSUPPORTED);
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_config_parse(&c2, ctx, "{\"addition_embed_type\": \"text_time\", "
                                          "\"block_out_channels\": [320]}"), VG_EUNSUPPORTED);
    ck_assert_msg(strstr(vgt_last_error, "SDXL"), "%s", vgt_last_error);

    /* no UNet under the prefix */
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_open(&u, ctx, orig, "unet.", VG_UNET_LAYOUT_AUTO, NULL), VG_EBADMODEL);
    ck_assert_int_eq(vgt_n_errors, 1);

    /* config text */
    ck_assert_int_eq(vg_unet_config_parse(&c2, ctx, "{\"block_out_channels\": "), VG_EBADMODEL);
    ck_assert_int_eq(vg_unet_config_parse(&c2, ctx, "{\"block_out_channels\": [64], "
                     "\"down_block_types\": [\"SimpleCrossAttnDownBlock2D\"], \"up_block_types\": "
                     "[\"UpBlock2D\"], \"layers_per_block\": 1, \"cross_attention_dim\": 8}"),
                     VG_EUNSUPPORTED);
    ck_assert_int_eq(vg_unet_config_parse(&c2, ctx, "{\"block_out_channels\": [64, 48], "
                     "\"down_block_types\": [\"DownBlock2D\", \"DownBlock2D\"], \"up_block_types\": "
                     "[\"UpBlock2D\", \"UpBlock2D\"], \"layers_per_block\": 1, \"cross_attention_dim\": 8}"),
                     VG_EBADMODEL); /* 48 channels in 32 groups */

    /* bad forward inputs */
    ck_assert_int_eq(vg_unet_open(&u, ctx, orig, ORIG_PREFIX, VG_UNET_LAYOUT_AUTO, &cfg), 0);
    VgTensor x, e, y;
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, 4, 8, 8), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&y, 1, 4, 8, 8), 0);
    const int64_t se[3] = { 1, 77, 768 };  /* wrong width for this UNet (256) */
    ck_assert_int_eq(vg_tensor_alloc(&e, VG_DT_F32, 3, se), 0);
    const float t = 10;
    vgt_log_reset();
    ck_assert_int_eq(vg_unet_forward(u, &x, &t, &e, &y), VG_ERR(EINVAL));
    ck_assert_msg(strstr(vgt_last_error, "[1, 77, 768]"), "%s", vgt_last_error);
    const float nan = NAN;
    vg_tensor_free(&e);
    const int64_t se2[3] = { 1, 77, 256 };
    ck_assert_int_eq(vg_tensor_alloc(&e, VG_DT_F32, 3, se2), 0);
    ck_assert_int_eq(vg_unet_forward(u, &x, &nan, &e, &y), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_unet_forward(u, &x, &t, &e, &y), 0);  /* and then it works */
    vg_tensor_free(&x);
    vg_tensor_free(&e);
    vg_tensor_free(&y);
    vg_unet_close(&u);
    vg_unet_close(&u);  /* safe twice */
    vg_weights_close(&orig);
}
END_TEST

static Suite *unet_suite(void)
{
    Suite *s = suite_create("unet");
    TCase *tc = tcase_create("reference");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_tiny_diffusers, 0, 2);
    tcase_add_test(tc, test_tiny_sd2_original);
    tcase_add_test(tc, test_f32_weights);
    tcase_add_test(tc, test_micro_original);
    suite_add_tcase(s, tc);
    tc = tcase_create("layout");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_key_mapping);
    tcase_add_loop_test(tc, test_full_shapes, 0, 2);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(unet_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
