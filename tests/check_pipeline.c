/*
 * Whole img2img (engine/sd/pipeline.c + loader.c) against diffusers 0.27.2's
 * StableDiffusionImg2ImgPipeline outputs in ../shared/data/diffusion/refs:
 * tiny-sd1 (leading), tiny-sd2 (trailing, leading) x euler, ddim, lcm,
 * euler_a, dpm++2m Karras, with each run's steps / strength / cfg / spacing /
 * Karras flag read from img2img_settings.json, seed 42, prompt "a photo of a
 * cat", negative "". Input: the shared PNG the references were made from
 * (refs/input_kodim23_crop_120_160_248_288.png), decoded at test time as
 * diffusers' VaeImageProcessor reads it: 8-bit RGB / 255 (load_input).
 * Pass: PSNR >= MIN_PSNR dB against the reference (float32 HxWx3 .npy).
 * Also: the single-file layout of tiny-sd2 gives the same picture as the
 * folder; errors (missing tokenizer, SDXL keys, out-of-range options);
 * test_variants: the .ckpt (A1111 {"state_dict": ...}), BF16 and diffusers
 * .bin variants written by tests/reference/sd_variants.py into build/ at test
 * time give the picture of the same values in .safetensors / F32 bit for bit;
 * test_scheduler_refusals: every scheduler_config.json value visgen does not
 * implement fails model setup with one line naming key and value;
 * test_vae_tiling: the KL VAE tiles above 512x512 in img2img (tile geometry
 * from the log, PSNR against the whole-frame run: bounds stated there);
 * test_stylize_noise: the caller's initial noise (vg_stylize_run_noise):
 * all-NaN = vg_stylize_run bit for bit, draw order, substitution, errors.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "visgen/visgen.h"
#include "engine/sd/pipeline.h"
#include "engine/sd/sampler.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgt_image.h"
#include "tests/common/vgtest.h"

#define MIN_PSNR 35.0
#define DIFF VG_SHARED_DATA "/diffusion"
#define INPUT_PNG DIFF "/refs/input_kodim23_crop_120_160_248_288.png"

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

static char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: is ../shared/data there?", path);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, n, f), n);
    buf[n] = 0;
    fclose(f);
    if (size)
        *size = n;
    return buf;
}

/* float32 H x W x 3 .npy (v1/v2 header, '<f4', C order) -> planar [3, H, W]. */
static float *read_npy(const char *path, int *h, int *w)
{
    long n;
    char *buf = slurp(path, &n);
    ck_assert_msg(n > 12 && !memcmp(buf, "\x93NUMPY", 6), "%s: not .npy", path);
    const int v = (unsigned char)buf[6];
    const long hl = v == 1 ? (unsigned char)buf[8] | (unsigned char)buf[9] << 8
                           : (long)((unsigned char)buf[8] | (unsigned char)buf[9] << 8 |
                                    (unsigned char)buf[10] << 16 | (unsigned char)buf[11] << 24);
    const long off = v == 1 ? 10 + hl : 12 + hl;
    char *hdr = strndup(buf + (v == 1 ? 10 : 12), hl);
    ck_assert_msg(strstr(hdr, "'<f4'") && strstr(hdr, "'fortran_order': False"),
                  "%s: want <f4 C order: %s", path, hdr);
    const char *sp = strstr(hdr, "'shape': (");
    ck_assert_ptr_nonnull(sp);
    int c = 0;
    ck_assert_int_eq(sscanf(sp, "'shape': (%d, %d, %d)", h, w, &c), 3);
    ck_assert_int_eq(c, 3);
    free(hdr);
    const long np = (long)*h * *w;
    ck_assert_int_eq(n - off, np * 3 * 4);
    float *out = malloc(np * 3 * sizeof(float));
    const float *src = (const float *)(buf + off);
    for (long i = 0; i < np; i++)
        for (int ch = 0; ch < 3; ch++)
            out[ch * np + i] = src[i * 3 + ch];
    free(buf);
    return out;
}

/* The img2img input picture (128 x 128, third-party: read in place from
 * ../shared/data, never copied into the tree): 8-bit RGB / 255 in float32, the
 * values diffusers' VaeImageProcessor gave the reference runs. A missing file
 * fails the test. @img: [1, 3, H, W] F32, allocated here. */
static void load_input(VgTensor *img)
{
    VgImage im;
    if (vgt_load_rgb(INPUT_PNG, &im) < 0)
        ck_abort_msg("%s: cannot read (shared reference data, see ../shared/data/README.md)",
                     INPUT_PNG);
    ck_assert_int_eq(im.width, 128);
    ck_assert_int_eq(im.height, 128);
    ck_assert_int_eq(vg_tensor_alloc4(img, 1, 3, im.height, im.width), 0);  // [1, 3, H, W]
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < im.height; y++)
            memcpy((float *)img->data + ((size_t)c * im.height + y) * im.width,
                   (const char *)im.data[c] + y * im.stride[c], im.width * sizeof(float));
    vgt_image_free(&im);
}

static double psnr(const float *a, const float *b, int64_t n)
{
    double se = 0;
    for (int64_t i = 0; i < n; i++)
        se += (double)(a[i] - b[i]) * (a[i] - b[i]);
    return se > 0 ? 10 * log10(1.0 / (se / n)) : INFINITY;
}

static const char *const sampler_key[5] = { "euler", "ddim", "lcm", "euler_a", "dpmpp_karras" };
static const int sampler_kind[5] = { VG_SAMPLER_EULER, VG_SAMPLER_DDIM, VG_SAMPLER_LCM,
                                     VG_SAMPLER_EULER_A, VG_SAMPLER_DPMPP_2M };

static void params_from_json(const char *run, int k, VgSdImg2ImgParams *p)
{
    char *txt = slurp(DIFF "/refs/img2img_settings.json", NULL);
    /* Python's json writes -Infinity (lambda_min_clipped), which cJSON
     * rejects: that field is not used here, make it a number. */
    for (char *q; (q = strstr(txt, "-Infinity"));)
        memcpy(q, "-1e999999", 9);
    cJSON *root = cJSON_Parse(txt);
    ck_assert_ptr_nonnull(root);
    const cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "runs"), run);
    ck_assert_msg(r != NULL, "run %s missing", run);
    const cJSON *sc = cJSON_GetObjectItem(r, "scheduler_config");
    vg_sd_img2img_params_default(p);
    p->sampler = sampler_kind[k];
    p->steps = cJSON_GetObjectItem(r, "steps")->valueint;
    p->strength = cJSON_GetObjectItem(r, "strength")->valuedouble;
    p->cfg = (float)cJSON_GetObjectItem(r, "guidance_scale")->valuedouble;
    p->seed = (uint64_t)cJSON_GetObjectItem(r, "seed")->valuedouble;
    const char *sp = cJSON_GetObjectItem(sc, "timestep_spacing")->valuestring;
    p->spacing = !strcmp(sp, "leading") ? VG_SPACING_LEADING
               : !strcmp(sp, "trailing") ? VG_SPACING_TRAILING : VG_SPACING_LINSPACE;
    const cJSON *ka = cJSON_GetObjectItem(sc, "use_karras_sigmas");
    p->karras = cJSON_IsTrue(ka) ? 1 : 0;
    ck_assert_str_eq(cJSON_GetObjectItem(r, "prompt")->valuestring, "a photo of a cat");
    ck_assert_str_eq(cJSON_GetObjectItem(r, "negative_prompt")->valuestring, "");
    cJSON_Delete(root);
    free(txt);
}

/* Runs the 5 samplers of @family/@spacing with model @model; returns the
 * lowest PSNR. */
static double run_family(const char *model, const char *tokenizer, const char *family,
                         const char *spacing)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgTensor cond, uncond, img, out;
    double worst = INFINITY;

    o.model = model;
    o.tokenizer = tokenizer;
    ck_assert_msg(vg_sd_model_open(&m, ctx, &o) == 0, "%s: %s", model, vgt_last_error);
    ck_assert_int_eq(vg_sd_encode_prompt(m, "a photo of a cat", &cond), 0);
    ck_assert_int_eq(vg_sd_encode_prompt(m, "", &uncond), 0);
    load_input(&img);
    for (int k = 0; k < 5; k++) {
        char run[128], path[512];
        VgSdImg2ImgParams p;
        int h, w;
        snprintf(run, sizeof(run), "%s_%s_%s", family, spacing, sampler_key[k]);
        params_from_json(run, k, &p);
        const double t0 = now();
        ck_assert_msg(vg_sd_img2img(m, &p, &cond, &uncond, &img, &out) == 0, "%s: %s", run,
                      vgt_last_error);
        const double dt = now() - t0;
        snprintf(path, sizeof(path), DIFF "/refs/%s.npy", run);
        float *ref = read_npy(path, &h, &w);
        ck_assert_int_eq(out.ne[2], h);
        ck_assert_int_eq(out.ne[3], w);
        const double db = psnr(out.data, ref, (int64_t)3 * h * w);
        printf("pipeline: %-32s (%s) PSNR %6.2f dB  %.2f s\n", run,
               strstr(model, ".safetensors") ? "single file" : "folder", db, dt);
        fflush(stdout);
        ck_assert_msg(db >= MIN_PSNR, "%s: PSNR %.2f dB < %.0f", run, db, MIN_PSNR);
        worst = fmin(worst, db);
        free(ref);
        vg_tensor_free(&out);
    }
    vg_tensor_free(&img);
    vg_tensor_free(&cond);
    vg_tensor_free(&uncond);
    vg_sd_model_close(&m);
    ck_assert_ptr_null(m);
    return worst;
}

START_TEST(test_sd1_leading)
{
    run_family(DIFF "/tiny-sd1", NULL, "tiny-sd1", "leading");
}
END_TEST

START_TEST(test_sd2_trailing)
{
    run_family(DIFF "/tiny-sd2", NULL, "tiny-sd2", "trailing");
}
END_TEST

START_TEST(test_sd2_leading)
{
    run_family(DIFF "/tiny-sd2", NULL, "tiny-sd2", "leading");
}
END_TEST

/* The original-layout single file of tiny-sd2 (OpenCLIP text names, no
 * text_projection: all layers run) with the folder's tokenizer. */
START_TEST(test_sd2_single_file)
{
    run_family(DIFF "/tiny-sd2_original_layout_fp16.safetensors", DIFF "/tiny-sd2/tokenizer",
               "tiny-sd2", "trailing");
}
END_TEST

/* Writes a safetensors file with F16 tensors named @names (shape [2]). */
static void write_st(const char *path, const char *const *names, int n)
{
    char hdr[4096];
    int len = snprintf(hdr, sizeof(hdr), "{");
    for (int i = 0; i < n; i++)
        len += snprintf(hdr + len, sizeof(hdr) - len,
                        "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                        i ? "," : "", names[i], 4 * i, 4 * i + 4);
    len += snprintf(hdr + len, sizeof(hdr) - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    const uint64_t hl = (uint64_t)len;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, len, f);
    const uint8_t zero[4] = { 0 };
    for (int i = 0; i < n; i++)
        fwrite(zero, 1, 4, f);
    fclose(f);
}

START_TEST(test_errors)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    char path[] = "/tmp/vg_pipeline_XXXXXX";
    VgSdImg2ImgParams p;

    /* single file without a tokenizer */
    o.model = DIFF "/tiny-sd2_original_layout_fp16.safetensors";
    vgt_log_reset();
    ck_assert_int_eq(vg_sd_model_open(&m, ctx, &o), VG_ERR(EINVAL));
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(vgt_last_error, "no tokenizer: pass tokenizer=PATH"), "%s",
                  vgt_last_error);

    /* SDXL-like keys */
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const char *const xl[] = {
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "model.diffusion_model.label_emb.0.0.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    };
    write_st(path, xl, 3);
    o.model = path;
    o.tokenizer = DIFF "/tiny-sd2/tokenizer";
    vgt_log_reset();
    ck_assert_int_eq(vg_sd_model_open(&m, ctx, &o), VG_EUNSUPPORTED);
    ck_assert_msg(strstr(vgt_last_error, "SDXL"), "%s", vgt_last_error);
    /* SD3-like keys */
    const char *const sd3[] = { "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight" };
    write_st(path, sd3, 1);
    vgt_log_reset();
    ck_assert_int_eq(vg_sd_model_open(&m, ctx, &o), VG_EUNSUPPORTED);
    ck_assert_msg(strstr(vgt_last_error, "SD3"), "%s", vgt_last_error);
    unlink(path);

    /* missing model */
    o.model = DIFF "/no-such-model";
    vgt_log_reset();
    ck_assert_int_lt(vg_sd_model_open(&m, ctx, &o), 0);
    ck_assert_int_eq(vgt_n_errors, 1);

    /* out-of-range options */
    vg_sd_img2img_params_default(&p);
    ck_assert_int_eq(vg_sd_img2img_check(ctx, &p), 0);
    const double bad_strength[] = { 0.0, -0.1, 1.01, NAN };
    for (int i = 0; i < 4; i++) {
        vg_sd_img2img_params_default(&p);
        p.strength = bad_strength[i];
        vgt_log_reset();
        ck_assert_int_eq(vg_sd_img2img_check(ctx, &p), VG_ERR(EINVAL));
        ck_assert_msg(strstr(vgt_last_error, "strength"), "%s", vgt_last_error);
    }
    const int bad_steps[] = { 0, -1, 1001 };
    for (int i = 0; i < 3; i++) {
        vg_sd_img2img_params_default(&p);
        p.steps = bad_steps[i];
        vgt_log_reset();
        ck_assert_int_eq(vg_sd_img2img_check(ctx, &p), VG_ERR(EINVAL));
        ck_assert_msg(strstr(vgt_last_error, "steps"), "%s", vgt_last_error);
    }
    vg_sd_img2img_params_default(&p);
    p.cfg = 51.f;
    ck_assert_int_eq(vg_sd_img2img_check(ctx, &p), VG_ERR(EINVAL));
}
END_TEST

static void image_from_tensor(VgImage *im, const VgTensor *t)
{
    im->width = (int)t->ne[3];
    im->height = (int)t->ne[2];
    for (int c = 0; c < 3; c++) {
        im->data[c] = (float *)t->data + (size_t)c * im->width * im->height;
        im->stride[c] = (ptrdiff_t)im->width * sizeof(float);
    }
}

/* The public API on the tiny-sd2 folder: same picture as diffusers (euler,
 * trailing from the folder's scheduler_config.json, sampler named), prompt
 * update, processing size smaller than the picture, seed policy. */
START_TEST(test_stylize_api)
{
    VgStylizeSettings s;
    VgStylizer *st = NULL;
    VgTensor img, o1, o2;
    VgImage in, out, out2;
    int h, w;

    vg_stylize_default_settings(&s);
    s.model = DIFF "/tiny-sd2";
    s.prompt = "a photo of a cat";
    s.negative_prompt = "";
    s.sampler = "euler";
    s.steps = 4;
    s.strength = 0.5f;
    s.cfg = 1.f;
    s.seed = 42;
    ck_assert_msg(vg_stylize_open(&st, ctx, &s) == 0, "%s", vgt_last_error);
    ck_assert_ptr_nonnull(strstr(vg_stylize_describe(st), "SD2"));
    load_input(&img);
    vgt_alloc_like(&o1, &img);
    vgt_alloc_like(&o2, &img);
    image_from_tensor(&in, &img);
    image_from_tensor(&out, &o1);
    image_from_tensor(&out2, &o2);
    ck_assert_int_eq(vg_stylize_run(st, &in, &out, 0), 0);
    float *ref = read_npy(DIFF "/refs/tiny-sd2_trailing_euler.npy", &h, &w);
    const double db = psnr(o1.data, ref, 3 * h * w);
    printf("pipeline: stylize API tiny-sd2_trailing_euler PSNR %.2f dB\n", db);
    ck_assert_msg(db >= MIN_PSNR, "PSNR %.2f", db);
    free(ref);

    /* incrementing seeds: picture 1 differs from picture 0, picture 0 repeats */
    s.seed_policy = VG_SEED_INCREMENT;
    ck_assert_int_eq(vg_stylize_update(st, &s), 0);
    ck_assert_int_eq(vg_stylize_run(st, &in, &out2, 1), 0);
    ck_assert_double_lt(psnr(o1.data, o2.data, 3 * h * w), 80.0);
    ck_assert_int_eq(vg_stylize_run(st, &in, &out2, 0), 0);
    ck_assert_double_gt(psnr(o1.data, o2.data, 3 * h * w), 120.0);

    /* a new prompt and guidance change the picture */
    s.seed_policy = VG_SEED_FIXED;
    s.prompt = "an oil painting of a dog";
    s.cfg = 3.f;
    ck_assert_int_eq(vg_stylize_update(st, &s), 0);
    ck_assert_int_eq(vg_stylize_run(st, &in, &out2, 0), 0);
    ck_assert_double_lt(psnr(o1.data, o2.data, 3 * h * w), 80.0);
    s.strength = 0.f;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_update(st, &s), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "strength"));
    vg_stylize_close(&st);
    ck_assert_ptr_null(st);

    /* processing size 64x64 for a 128x128 picture: output keeps 128x128, 0..1 */
    s.strength = 0.5f;
    s.width = s.height = 64;
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), 0);
    for (int64_t i = 0; i < vg_tensor_nelem(&o2); i++)
        ((float *)o2.data)[i] = -1.f;
    ck_assert_int_eq(vg_stylize_run(st, &in, &out2, 0), 0);
    for (int64_t i = 0; i < vg_tensor_nelem(&o2); i++)
        ck_assert(((float *)o2.data)[i] >= 0.f && ((float *)o2.data)[i] <= 1.f);
    ck_assert_double_gt(psnr(img.data, o2.data, 3 * h * w), 8.0);
    vg_stylize_close(&st);

    vg_tensor_free(&img);
    vg_tensor_free(&o1);
    vg_tensor_free(&o2);
}
END_TEST

START_TEST(test_stylize_errors)
{
    VgStylizeSettings s;
    VgStylizer *st = NULL;

    vg_stylize_default_settings(&s);
    s.model = DIFF "/tiny-sd2";
    s.sampler = "heun";
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "euler, euler_a, ddim, dpm++2m, lcm"));
    ck_assert_ptr_null(st);
    s.sampler = NULL;
    s.width = 100;
    s.height = 64;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "multiples of 8"));
    s.width = s.height = 0;
    s.steps = 0;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "steps"));
    s.steps = 20;
    s.cfg = 60.f;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "cfg"));
    s.cfg = 7.5f;
    s.strength = 1.5f;
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    s.strength = 0.5f;
    s.schedule = "exponential";
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), VG_ERR(EINVAL));
    s.schedule = NULL;
    s.model = NULL;
    ck_assert_int_lt(vg_stylize_open(&st, ctx, &s), 0);
    ck_assert_ptr_null(st);
}
END_TEST

static int unet_fn(void *opaque, const VgTensor *x, float t, VgTensor *eps)
{
    const VgTensor *const *a = opaque;  /* { unet as tensor*, cond } */
    return vg_unet_forward((VgUnet *)a[0], x, &t, a[1], eps);
}

/* TAESD as the latent codec (random-weight fixtures of check_taesd): no
 * posterior draw, latent scale 1, images 0..1 -- equal to the same chain
 * composed by hand from the components. */
START_TEST(test_taesd_codec)
{
    char enc[512], dec[512];
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgSdImg2ImgParams p;
    VgTensor cond, img, out, lat, fin, ref;
    VgSampler *smp = NULL;
    VgRng rng;

    snprintf(enc, sizeof(enc), "%s/tests/fixtures/taesd/taesd_encoder.pth", VG_TOP);
    snprintf(dec, sizeof(dec), "%s/tests/fixtures/taesd/taesd_decoder.pth", VG_TOP);
    o.model = DIFF "/tiny-sd2";
    o.taesd_encoder = enc;
    o.taesd_decoder = dec;
    ck_assert_msg(vg_sd_model_open(&m, ctx, &o) == 0, "%s", vgt_last_error);
    ck_assert_ptr_null(m->vae);  /* both halves replaced: the KL VAE is not loaded */
    ck_assert_ptr_nonnull(strstr(m->desc, "TAESD"));
    ck_assert_int_eq(vg_sd_encode_prompt(m, "a photo of a cat", &cond), 0);
    load_input(&img);
    vg_sd_img2img_params_default(&p);
    p.steps = 4;
    p.cfg = 1.f;
    p.seed = 7;
    ck_assert_int_eq(vg_sd_img2img(m, &p, &cond, NULL, &img, &out), 0);

    ck_assert_int_eq(vg_taesd_encode(m->taesd, &img, &lat), 0);
    ck_assert_int_eq(vg_sampler_create(&smp, &m->sched, VG_SAMPLER_EULER, 4, 0.5, ctx), 0);
    vg_rng_seed(&rng, 7);
    const void *a[2] = { m->unet, &cond };
    memset(&fin, 0, sizeof(fin));
    ck_assert_int_eq(vg_sampler_run(smp, unet_fn, (void *)a, &lat, &rng, &fin), 0);
    ck_assert_int_eq(vg_taesd_decode(m->taesd, &fin, &ref), 0);
    for (int64_t i = 0; i < vg_tensor_nelem(&ref); i++) {
        float *v = (float *)ref.data + i;
        *v = fminf(fmaxf(*v, 0.f), 1.f);
    }
    vgt_assert_close(&out, &ref, 1e-6, "taesd img2img");
    vg_sampler_free(&smp);
    vg_tensor_free(&lat);
    vg_tensor_free(&fin);
    vg_tensor_free(&ref);
    vg_tensor_free(&out);
    vg_tensor_free(&img);
    vg_tensor_free(&cond);
    vg_sd_model_close(&m);
}
END_TEST

/* resize.c: area average when shrinking, bilinear when enlarging. */
START_TEST(test_resize)
{
    float src[4 * 4], dst[8 * 8], half[2 * 2];
    for (int i = 0; i < 16; i++)
        src[i] = (float)i;
    /* 4x4 -> 2x2: means of 2x2 blocks */
    ck_assert_int_eq(vg_sd_resize(src, 4, 4, 4 * sizeof(float), half, 2, 2, 2 * sizeof(float)), 0);
    ck_assert_float_eq_tol(half[0], (0 + 1 + 4 + 5) / 4.f, 1e-6);
    ck_assert_float_eq_tol(half[3], (10 + 11 + 14 + 15) / 4.f, 1e-6);
    /* 4x4 -> 3x3: area weights, the middle output covers 1/3 of two pixels each side */
    float t3[9];
    ck_assert_int_eq(vg_sd_resize(src, 4, 4, 4 * sizeof(float), t3, 3, 3, 3 * sizeof(float)), 0);
    ck_assert_float_eq_tol(t3[4], 7.5f, 1e-5);  /* symmetric: the picture's mean */
    /* 4x4 -> 8x8 bilinear, half-pixel centres: dst(1,1) = src at (0.25, 0.25) */
    ck_assert_int_eq(vg_sd_resize(src, 4, 4, 4 * sizeof(float), dst, 8, 8, 8 * sizeof(float)), 0);
    ck_assert_float_eq_tol(dst[0], 0.f, 1e-6);                 /* clamped edge */
    ck_assert_float_eq_tol(dst[9], 0.25f * 4 + 0.25f, 1e-5);
    ck_assert_float_eq_tol(dst[63], 15.f, 1e-6);
    ck_assert_int_eq(vg_sd_resize(src, 0, 4, 16, dst, 8, 8, 32), VG_ERR(EINVAL));
}
END_TEST

/* ------------------------------------------------------------ file variants */

/* build/sd_variants from tests/reference/sd_variants.py, (re)made when
 * missing or older than the script: ~300 MB, so not committed. */
static const char *variants_dir(void)
{
    static const char dir[] = VG_TOP "/build/sd_variants";
    static const char script[] = VG_TOP "/tests/reference/sd_variants.py";
    struct stat sd, ss;
    ck_assert_msg(stat(script, &ss) == 0, "missing %s", script);
    if (stat(VG_TOP "/build/sd_variants/.done", &sd) || sd.st_mtime < ss.st_mtime) {
        const int rc = system("/usr/bin/python3 " VG_TOP "/tests/reference/sd_variants.py "
                              "--out " VG_TOP "/build/sd_variants");
        ck_assert_msg(rc == 0, "sd_variants.py failed (%d): Debian's python3-torch is needed "
                      "(tools/install-deps.sh)", rc);
    }
    return dir;
}

/* One img2img (euler, 4 steps x 0.5, cfg 1, seed 42, trailing) of the
 * shared input with @model; *@out allocated here. */
static void variant_run(const char *model, VgTensor *out, char *desc, size_t size)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgSdImg2ImgParams p;
    VgTensor cond, img;

    o.model = model;
    o.tokenizer = DIFF "/tiny-sd2/tokenizer";
    vgt_log_reset();
    ck_assert_msg(vg_sd_model_open(&m, ctx, &o) == 0, "%s: %s", model, vgt_last_error);
    snprintf(desc, size, "%s", m->desc);
    ck_assert_int_eq(vg_sd_encode_prompt(m, "a photo of a cat", &cond), 0);
    load_input(&img);
    vg_sd_img2img_params_default(&p);
    p.steps = 4;
    p.cfg = 1.f;
    p.seed = 42;
    p.spacing = VG_SPACING_TRAILING;
    ck_assert_msg(vg_sd_img2img(m, &p, &cond, NULL, &img, out) == 0, "%s: %s", model,
                  vgt_last_error);
    vg_tensor_free(&img);
    vg_tensor_free(&cond);
    vg_sd_model_close(&m);
}

#define VARIANT_TOL 1e-6

static void variant_compare(const char *a, const char *b)
{
    VgTensor ya, yb;
    char da[512], db[512];
    variant_run(a, &ya, da, sizeof(da));
    variant_run(b, &yb, db, sizeof(db));
    const double e = vgt_max_abs_err(&ya, &yb, NULL);
    printf("pipeline: %s vs %s: max abs diff %.3g\n", strrchr(a, '/') + 1, strrchr(b, '/') + 1, e);
    ck_assert_msg(e <= VARIANT_TOL, "%s vs %s: %g", a, b, e);
    vg_tensor_free(&ya);
    vg_tensor_free(&yb);
}

/* The formats real checkpoints come in, against the .safetensors / F16 files
 * with the same values: whole img2img equal within VARIANT_TOL (measured: 0,
 * bit for bit). */
START_TEST(test_variants)
{
    char a[1024], b[1024];
    const char *dir = variants_dir();

    /* A1111 .ckpt: {"state_dict": ..., "global_step"} with DDPM buffers */
    snprintf(b, sizeof(b), "%s/original_fp16.ckpt", dir);
    variant_compare(DIFF "/tiny-sd2_original_layout_fp16.safetensors", b);
    /* BF16 weights give what F32 weights of the same values give */
    snprintf(a, sizeof(a), "%s/original_bf16.safetensors", dir);
    snprintf(b, sizeof(b), "%s/original_bf16vals_f32.ckpt", dir);
    variant_compare(a, b);
    /* diffusers folder with torch.save'd .bin state dicts */
    snprintf(b, sizeof(b), "%s/folder_bin", dir);
    variant_compare(DIFF "/tiny-sd2", b);

    /* BF16 rounding of the F16 weights still gives diffusers' picture */
    VgTensor y;
    char desc[512];
    int h, w;
    variant_run(a, &y, desc, sizeof(desc));
    float *ref = read_npy(DIFF "/refs/tiny-sd2_trailing_euler.npy", &h, &w);
    const double db = psnr(y.data, ref, (int64_t)3 * h * w);
    printf("pipeline: BF16 single file vs diffusers (F16) tiny-sd2_trailing_euler: PSNR %.2f dB\n",
           db);
    ck_assert_msg(db >= MIN_PSNR, "BF16: PSNR %.2f", db);
    free(ref);
    vg_tensor_free(&y);
}
END_TEST

/* ------------------------------------------------------- scheduler configs */

/* A temporary copy of the tiny-sd2 folder (links) with @json as its
 * scheduler_config.json; @dir gets its path. */
static void folder_with_scheduler(char *dir, size_t size, const char *json)
{
    static const char *const parts[] = { "unet", "vae", "text_encoder", "tokenizer",
                                         "model_index.json" };
    char p[1024], t[1024];
    snprintf(dir, size, "/tmp/vg_sched_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, parts[i]);
        snprintf(t, sizeof(t), DIFF "/tiny-sd2/%s", parts[i]);
        ck_assert_int_eq(symlink(t, p), 0);
    }
    snprintf(p, sizeof(p), "%s/scheduler", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/scheduler/scheduler_config.json", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
}

static void folder_remove(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

#define SCHED_BASE "\"num_train_timesteps\": 1000, \"beta_start\": 0.00085, \"beta_end\": 0.012, " \
    "\"timestep_spacing\": \"trailing\", \"steps_offset\": 1"

/* Every scheduler_config.json value visgen does not implement is refused when
 * the model is set up, with one error line naming key and value; what it
 * implements loads and runs. */
START_TEST(test_scheduler_refusals)
{
    static const struct {
        const char *cls, *extra;   /* class, extra keys */
        const char *sampler;       /* NULL: the class's */
        const char *msg;           /* NULL: accepted */
    } cases[] = {
        { "DPMSolverMultistepScheduler", "\"algorithm_type\": \"sde-dpmsolver++\"", NULL,
          "algorithm_type = \"sde-dpmsolver++\"" },
        { "DPMSolverMultistepScheduler", "\"algorithm_type\": \"dpmsolver\", "
          "\"final_sigmas_type\": \"sigma_min\"", NULL, "algorithm_type = \"dpmsolver\"" },
        { "DPMSolverMultistepScheduler", "\"solver_order\": 3", NULL, "solver_order = 3" },
        { "DPMSolverMultistepScheduler", "\"solver_type\": \"heun\"", NULL,
          "solver_type = \"heun\"" },
        { "DPMSolverMultistepScheduler", "\"use_lu_lambdas\": true", NULL,
          "use_lu_lambdas = true" },
        { "DPMSolverMultistepScheduler", "\"variance_type\": \"learned_range\"", NULL,
          "variance_type = \"learned_range\"" },
        { "DPMSolverMultistepScheduler", "\"final_sigmas_type\": \"sigma_max\"", NULL,
          "final_sigmas_type = \"sigma_max\"" },
        { "DPMSolverMultistepScheduler", "\"thresholding\": true", NULL, "thresholding = true" },
        { "DPMSolverMultistepScheduler", "\"lambda_min_clipped\": 0.5", NULL,
          "lambda_min_clipped = 0.5" },
        { "DPMSolverMultistepScheduler", "\"use_exponential_sigmas\": true", NULL,
          "use_exponential_sigmas = true" },
        { "EulerDiscreteScheduler", "\"interpolation_type\": \"log_linear\"", NULL,
          "interpolation_type = \"log_linear\"" },
        { "EulerDiscreteScheduler", "\"use_beta_sigmas\": true", NULL, "use_beta_sigmas = true" },
        { "EulerDiscreteScheduler", "\"timestep_type\": \"continuous\", "
          "\"prediction_type\": \"v_prediction\"", NULL, "timestep_type = \"continuous\"" },
        { "EulerAncestralDiscreteScheduler", "\"prediction_type\": \"sample\"", NULL,
          "prediction_type = \"sample\"" },
        { "DDIMScheduler", "\"clip_sample\": true", NULL, "clip_sample = true" },
        { "LCMScheduler", "\"thresholding\": true", NULL, "thresholding = true" },
        { "EulerDiscreteScheduler", "\"rescale_betas_zero_snr\": true", NULL,
          "rescale_betas_zero_snr = true" },
        { "EulerDiscreteScheduler", "\"trained_betas\": [0.1, 0.2]", NULL, "trained_betas" },
        { "EulerDiscreteScheduler", "\"beta_schedule\": \"squaredcos_cap_v2\"", NULL,
          "beta_schedule = \"squaredcos_cap_v2\"" },
        /* a DPM config's keys mean nothing to Euler (from_config drops them) */
        { "DPMSolverMultistepScheduler", "\"algorithm_type\": \"sde-dpmsolver++\"", "euler",
          NULL },
        /* implemented, or mapped by diffusers onto what is */
        { "DPMSolverMultistepScheduler", "\"algorithm_type\": \"deis\", \"solver_type\": "
          "\"logrho\", \"solver_order\": 1, \"final_sigmas_type\": \"sigma_min\", "
          "\"lower_order_final\": false, \"euler_at_final\": true, \"use_karras_sigmas\": true, "
          "\"sigma_min\": 0.1, \"sigma_max\": 10, \"lambda_min_clipped\": -5.1, "
          "\"variance_type\": null, \"thresholding\": false", NULL, NULL },
        { "EulerDiscreteScheduler", "\"use_karras_sigmas\": true, \"interpolation_type\": "
          "\"linear\", \"timestep_type\": \"continuous\"", "euler_a", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[64], json[1024];
        VgStylizeSettings s;
        VgStylizer *st = NULL;
        snprintf(json, sizeof(json), "{\"_class_name\": \"%s\", " SCHED_BASE ", %s}",
                 cases[i].cls, cases[i].extra);
        folder_with_scheduler(dir, sizeof(dir), json);
        vg_stylize_default_settings(&s);
        s.model = dir;
        s.prompt = "a photo of a cat";
        s.sampler = cases[i].sampler;
        s.steps = 4;
        s.strength = 0.5f;
        s.cfg = 1.f;
        vgt_log_reset();
        const int ret = vg_stylize_open(&st, ctx, &s);
        if (cases[i].msg) {
            ck_assert_msg(ret == VG_ERR(EINVAL) && vgt_n_errors == 1 &&
                          strstr(vgt_last_error, cases[i].msg),
                          "%s: %d, %d errors, last '%s'", json, ret, vgt_n_errors, vgt_last_error);
            printf("pipeline: refused: %s", vgt_last_error);
            fflush(stdout);
        } else {
            ck_assert_msg(ret == 0, "%s: %s", json, vgt_last_error);
            VgTensor img, o;
            VgImage in, out;
            load_input(&img);
            vgt_alloc_like(&o, &img);
            image_from_tensor(&in, &img);
            image_from_tensor(&out, &o);
            ck_assert_msg(vg_stylize_run(st, &in, &out, 0) == 0, "%s: %s", json, vgt_last_error);
            vg_tensor_free(&img);
            vg_tensor_free(&o);
        }
        vg_stylize_close(&st);
        folder_remove(dir);
    }
}
END_TEST

/* The single-file default spacing says where it comes from and what SD-Turbo
 * needs; few steps with it warn. */
static char warn_line[512];
static void warn_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    if (level == VG_LOG_WARNING)
        vsnprintf(warn_line, sizeof(warn_line), fmt, ap);
    vgt_log_cb(cookie, level, fmt, ap);
}

START_TEST(test_single_file_spacing)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    o.model = DIFF "/tiny-sd2_original_layout_fp16.safetensors";
    o.tokenizer = DIFF "/tiny-sd2/tokenizer";
    ck_assert_int_eq(vg_sd_model_open(&m, ctx, &o), 0);
    ck_assert_int_eq(m->sched.spacing, VG_SPACING_LEADING);
    ck_assert_msg(strstr(m->desc, "spacing leading (single file, no scheduler config; use "
                         "spacing=trailing for SD-Turbo)"), "%s", m->desc);
    vg_sd_model_close(&m);
    o.model = DIFF "/tiny-sd2";
    o.tokenizer = NULL;
    ck_assert_int_eq(vg_sd_model_open(&m, ctx, &o), 0);
    ck_assert_msg(strstr(m->desc, "spacing trailing (scheduler_config.json)"), "%s", m->desc);
    vg_sd_model_close(&m);

    VgSettings vs;
    VgCtx *c2 = NULL;
    vg_default_settings(&vs);
    vs.n_threads = 2;
    vs.log_cb = warn_cb;
    vs.log_level = VG_LOG_WARNING;
    ck_assert_int_eq(vg_open(&c2, &vs), 0);
    VgStylizeSettings s;
    VgStylizer *st = NULL;
    vg_stylize_default_settings(&s);
    s.model = DIFF "/tiny-sd2_original_layout_fp16.safetensors";
    s.tokenizer = DIFF "/tiny-sd2/tokenizer";
    s.steps = 2;
    s.cfg = 1.f;
    warn_line[0] = 0;
    ck_assert_int_eq(vg_stylize_open(&st, c2, &s), 0);
    ck_assert_msg(strstr(warn_line, "starts at timestep 1 of 1000; SD-Turbo checkpoints need "
                         "spacing=trailing"), "'%s'", warn_line);
    vg_stylize_close(&st);
    s.spacing = "trailing";
    warn_line[0] = 0;
    ck_assert_int_eq(vg_stylize_open(&st, c2, &s), 0);
    ck_assert_str_eq(warn_line, "");
    vg_stylize_close(&st);
    vg_close(&c2);
}
END_TEST

/* ------------------------------------------------------------- VAE tiling */

static char tile_log[4][256];
static int n_tile_log;

static void tile_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    char line[240];
    va_list aq;
    va_copy(aq, ap);
    vsnprintf(line, sizeof(line), fmt, aq);
    va_end(aq);
    if (!strncmp(line, "vae: ", 5) && n_tile_log < 4)
        snprintf(tile_log[n_tile_log++], sizeof(tile_log[0]), "%s", line);
    vgt_log_cb(cookie, level, fmt, ap);
}

/* img2img of @img with p->vae_tile = @tile into *@out; the VAE's "vae:" log
 * lines land in tile_log. */
static void tiled_run(VgSdModel *m, const VgTensor *cond, const VgTensor *img, int tile,
                      VgTensor *out)
{
    VgSdImg2ImgParams p;
    vg_sd_img2img_params_default(&p);
    p.steps = 2;           /* one UNet step: the VAE is what is tested */
    p.cfg = 1.f;
    p.seed = 42;
    p.vae_tile = tile;
    n_tile_log = 0;
    const double t0 = now();
    ck_assert_msg(vg_sd_img2img(m, &p, cond, NULL, img, out) == 0, "%s", vgt_last_error);
    printf("pipeline: %dx%d vae_tile %d: %.2f s\n", (int)img->ne[3], (int)img->ne[2], tile,
           now() - t0);
}

static double max_diff(const VgTensor *a, const VgTensor *b)
{
    return vgt_max_abs_err(a, b, NULL);
}

/*
 * KL VAE tiling inside img2img. GroupNorm statistics are per tile and these
 * random-weight VAEs (1-2 channels per group) react to them strongly (see
 * check_vae), so tiled and whole pictures differ by more than float error;
 * the bounds below are what the blend gives, measured, with a margin. That
 * the tiling itself is right is check_vae's PyTorch comparison; this checks
 * the wiring (threshold, both directions tiled, tile geometry = memory
 * bound) and that the result stays close to the whole-frame one.
 */
#define TILE_MIN_PSNR_SMALL 20.0 /* 3 x 3 tiles of 64 px, 16 px overlaps: measured 24.7 dB */
#define TILE_MIN_PSNR_AUTO 40.0  /* 2 tiles of 512 px, 128 px overlap: measured 46.8 dB, max
                                  * difference 0.078 of the 0..1 range */

START_TEST(test_vae_tiling)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgSettings vs;
    VgCtx *c2 = NULL;
    VgTensor cond, img, big, a, b;

    vg_default_settings(&vs);
    vs.n_threads = 2;
    vs.log_cb = tile_cb;
    vs.log_level = VG_LOG_VERBOSE;
    ck_assert_int_eq(vg_open(&c2, &vs), 0);
    o.model = DIFF "/tiny-sd2";
    ck_assert_int_eq(vg_sd_model_open(&m, c2, &o), 0);

    /* the threshold: more than 512 x 512 in area, in 64-unit (512 px) tiles */
    ck_assert_int_eq(vg_sd_vae_tile(m, 0, 512, 512), 0);
    ck_assert_int_eq(vg_sd_vae_tile(m, 0, 256, 1024), 0);
    ck_assert_int_eq(vg_sd_vae_tile(m, 0, 520, 512), 64);
    ck_assert_int_eq(vg_sd_vae_tile(m, 0, 352, 768), 64);
    ck_assert_int_eq(vg_sd_vae_tile(m, -1, 2048, 2048), 0);
    ck_assert_int_eq(vg_sd_vae_tile(m, 256, 256, 256), 0);
    ck_assert_int_eq(vg_sd_vae_tile(m, 256, 264, 256), 32);
    VgSdImg2ImgParams p;
    vg_sd_img2img_params_default(&p);
    p.vae_tile = 60;
    vgt_log_reset();
    ck_assert_int_eq(vg_sd_img2img_check(ctx, &p), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "vae_tile 60"));

    ck_assert_int_eq(vg_sd_encode_prompt(m, "a photo of a cat", &cond), 0);
    load_input(&img);

    /* explicit 64-pixel tiles on the 128 x 128 input: 3 x 3 tiles both ways */
    tiled_run(m, &cond, &img, -1, &a);
    ck_assert_int_eq(n_tile_log, 0);
    tiled_run(m, &cond, &img, 64, &b);
    ck_assert_int_eq(n_tile_log, 2);
    ck_assert_str_eq(tile_log[0], "vae: encode 16x16 latent as 3x3 tiles of 8x8 (overlap 2)\n");
    ck_assert_str_eq(tile_log[1], "vae: decode 16x16 latent as 3x3 tiles of 8x8 (overlap 2)\n");
    double db = psnr(a.data, b.data, vg_tensor_nelem(&a)), md = max_diff(&a, &b);
    printf("pipeline: 128x128, 64 px tiles vs whole: PSNR %.2f dB, max diff %.3g\n", db, md);
    ck_assert_msg(db >= TILE_MIN_PSNR_SMALL, "PSNR %.2f", db);
    vg_tensor_free(&a);
    vg_tensor_free(&b);

    /* auto above the threshold: 768 x 352 (96 x 44 latent, 1.03 x 512^2)
     * runs as two 512 x 352 tiles each way */
    ck_assert_int_eq(vg_tensor_alloc4(&big, 1, 3, 352, 768), 0);  // [1, 3, 352, 768]
    for (int c = 0; c < 3; c++)
        ck_assert_int_eq(vg_sd_resize((const float *)img.data + c * 128 * 128, 128, 128,
                                      128 * sizeof(float), (float *)big.data + c * 352 * 768,
                                      768, 352, 768 * sizeof(float)), 0);
    tiled_run(m, &cond, &big, -1, &a);
    ck_assert_int_eq(n_tile_log, 0);
    tiled_run(m, &cond, &big, 0, &b);
    ck_assert_int_eq(n_tile_log, 2);
    ck_assert_str_eq(tile_log[0], "vae: encode 96x44 latent as 2x1 tiles of 64x44 (overlap 16)\n");
    ck_assert_str_eq(tile_log[1], "vae: decode 96x44 latent as 2x1 tiles of 64x44 (overlap 16)\n");
    db = psnr(a.data, b.data, vg_tensor_nelem(&a));
    md = max_diff(&a, &b);
    printf("pipeline: 768x352, auto tiles vs whole: PSNR %.2f dB, max diff %.3g\n", db, md);
    ck_assert_msg(db >= TILE_MIN_PSNR_AUTO, "PSNR %.2f", db);
    vg_tensor_free(&a);
    vg_tensor_free(&b);

    vg_tensor_free(&big);
    vg_tensor_free(&img);
    vg_tensor_free(&cond);
    vg_sd_model_close(&m);
    vg_close(&c2);
}
END_TEST

/* ------------------------------------------------------ caller's noise */

/* @src (128 x 128 [1, 3, H, W]) resized to @w x @h into *@t (allocated). */
static void resized_input(const VgTensor *src, int w, int h, VgTensor *t)
{
    ck_assert_int_eq(vg_tensor_alloc4(t, 1, 3, h, w), 0);         // [1, 3, h, w]
    for (int c = 0; c < 3; c++)
        ck_assert_int_eq(vg_sd_resize((const float *)src->data + c * 128 * 128, 128, 128,
                                      128 * sizeof(float), (float *)t->data + (size_t)c * w * h,
                                      w, h, (ptrdiff_t)w * sizeof(float)), 0);
}

static float *nan_noise(int64_t n)
{
    float *q = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(q);
    for (int64_t i = 0; i < n; i++)
        q[i] = NAN;
    return q;
}

/*
 * vg_stylize_run_noise / vg_stylize_noise_shape on tiny-sd2 with euler_a (an
 * ancestral sampler: per-step draws follow the initial noise, so any change
 * in the order of draws shows) on a 76 x 60 picture (processing size 72 x 56,
 * latent 9 x 7): all-NaN noise is vg_stylize_run bit for bit and returns the
 * generator's draw (the randn after the VAE posterior sample: checked against
 * a VgRng drawn here); the returned noise passed back gives the same bits; a
 * half replaced by other finite values changes the picture and comes back as
 * given, the other half as drawn; the TAESD encoder (no posterior draw) makes
 * the noise the first draw; shape and value errors fail with one line.
 */
START_TEST(test_stylize_noise)
{
    VgStylizeSettings s;
    VgStylizer *st = NULL;
    VgTensor src, img, o1, o2;
    VgImage in, out, out2;
    int c, h, w;

    vg_stylize_default_settings(&s);
    s.model = DIFF "/tiny-sd2";
    s.prompt = "a photo of a cat";
    s.sampler = "euler_a";
    s.steps = 4;
    s.strength = 0.5f;
    s.cfg = 1.f;
    s.seed = 42;
    ck_assert_msg(vg_stylize_open(&st, ctx, &s) == 0, "%s", vgt_last_error);

    /* shapes: the picture's size rounded down to multiples of 8, / 8 */
    ck_assert_int_eq(vg_stylize_noise_shape(st, 128, 128, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 16 && w == 16);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 76, 60, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 7 && w == 9);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 8, 15, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 1 && w == 1);
    const int bad[][2] = { { 7, 100 }, { 100, 7 }, { 0, 0 }, { -8, 64 }, { 64, -1 } };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vgt_log_reset();
        c = h = w = 5;
        ck_assert_int_eq(vg_stylize_noise_shape(st, bad[i][0], bad[i][1], &c, &h, &w),
                         VG_ERR(EINVAL));
        ck_assert(c == 0 && h == 0 && w == 0);
        ck_assert_msg(vgt_n_errors == 1 && strstr(vgt_last_error, "smaller than 8x8"), "%s",
                      vgt_last_error);
    }
    ck_assert_int_eq(vg_stylize_noise_shape(NULL, 64, 64, &c, &h, &w), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_stylize_noise_shape(st, 64, 64, NULL, &h, &w), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_stylize_noise_shape(st, 64, 64, &c, &h, NULL), VG_ERR(EINVAL));

    load_input(&src);
    resized_input(&src, 76, 60, &img);
    vgt_alloc_like(&o1, &img);
    vgt_alloc_like(&o2, &img);
    image_from_tensor(&in, &img);
    image_from_tensor(&out, &o1);
    image_from_tensor(&out2, &o2);
    const int64_t np = vg_tensor_nelem(&img);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 76, 60, &c, &h, &w), 0);
    const int64_t n = (int64_t)c * h * w;

    /* all NaN: vg_stylize_run's picture, bit for bit; the draw comes back */
    ck_assert_int_eq(vg_stylize_run(st, &in, &out, 0), 0);
    float *n1 = nan_noise(n), *n2 = nan_noise(n);
    ck_assert_msg(vg_stylize_run_noise(st, &in, &out2, 0, n1) == 0, "%s", vgt_last_error);
    ck_assert_msg(!memcmp(o1.data, o2.data, np * sizeof(float)), "all-NaN noise: max diff %g",
                  vgt_max_abs_err(&o1, &o2, NULL));
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), 0);
    ck_assert(!memcmp(n1, n2, n * sizeof(float)));
    ck_assert(!memcmp(o1.data, o2.data, np * sizeof(float)));
    /* ... which is torch's randn after the posterior sample (one randn of
     * the latent's shape, seed 42) */
    {
        VgRng rng;
        float *post = malloc(n * sizeof(float)), *draw = malloc(n * sizeof(float));
        vg_rng_seed(&rng, 42);
        vg_rng_randn(&rng, post, n);
        vg_rng_randn(&rng, draw, n);
        ck_assert(!memcmp(n1, draw, n * sizeof(float)));
        free(post);
        free(draw);
    }

    /* the returned noise passed back: the same picture, the noise unchanged */
    memset(o2.data, 0, np * sizeof(float));
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), 0);
    ck_assert(!memcmp(o1.data, o2.data, np * sizeof(float)));
    ck_assert(!memcmp(n1, n2, n * sizeof(float)));

    /* the second half replaced: another picture; given values come back
     * exactly, the first half as drawn */
    for (int64_t i = 0; i < n; i++)
        n2[i] = i < n / 2 ? NAN : -0.75f * n1[i] + 0.25f;
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), 0);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(i < n / 2 ? n2[i] == n1[i] : n2[i] == -0.75f * n1[i] + 0.25f,
                      "noise[%lld] = %g", (long long)i, n2[i]);
    const double db = psnr(o1.data, o2.data, np);
    printf("pipeline: noise with half replaced vs drawn: PSNR %.2f dB\n", db);
    ck_assert_msg(db < 60.0, "PSNR %.2f: the noise changed nothing", db);
    /* and run again with all of it: the same picture */
    memcpy(n1, n2, n * sizeof(float));
    memcpy(o1.data, o2.data, np * sizeof(float));
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), 0);
    ck_assert(!memcmp(o1.data, o2.data, np * sizeof(float)));

    /* the seed policy still picks the generator: picture 1 draws seed 43's */
    s.seed_policy = VG_SEED_INCREMENT;
    ck_assert_int_eq(vg_stylize_update(st, &s), 0);
    for (int64_t i = 0; i < n; i++)
        n2[i] = NAN;
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 1, n2), 0);
    {
        VgRng rng;
        float *draw = malloc(n * sizeof(float));
        vg_rng_seed(&rng, 43);
        vg_rng_randn(&rng, draw, n);
        vg_rng_randn(&rng, draw, n);
        ck_assert(!memcmp(n2, draw, n * sizeof(float)));
        free(draw);
    }

    /* errors: an infinity (noise untouched), pictures below 8x8, NULLs */
    memcpy(n2, n1, n * sizeof(float));
    n2[n - 1] = -INFINITY;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), VG_ERR(EINVAL));
    ck_assert_msg(vgt_n_errors == 1 && strstr(vgt_last_error, "[4, 7, 9] has -inf at 251"),
                  "%s", vgt_last_error);
    ck_assert(!memcmp(n2, n1, (n - 1) * sizeof(float)) && isinf(n2[n - 1]));
    VgImage tiny = in, tiny_out = out2;
    tiny.width = tiny_out.width = 7;
    tiny.height = tiny_out.height = 60;
    vgt_log_reset();
    ck_assert_int_eq(vg_stylize_run_noise(st, &tiny, &tiny_out, 0, n1), VG_ERR(EINVAL));
    ck_assert_int_eq(vgt_n_errors, 1);
    tiny_out.width = 8;
    ck_assert_int_eq(vg_stylize_run_noise(st, &tiny, &tiny_out, 0, n1), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_stylize_run_noise(NULL, &in, &out2, 0, n1), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_stylize_run_noise(st, NULL, &out2, 0, n1), VG_ERR(EINVAL));
    vg_stylize_close(&st);

    /* a processing size in the settings: the noise follows it, whatever
     * the picture's size */
    s.width = 64;
    s.height = 48;
    s.seed_policy = VG_SEED_FIXED;
    ck_assert_int_eq(vg_stylize_open(&st, ctx, &s), 0);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 76, 60, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 6 && w == 8);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 7, 3, &c, &h, &w), 0);
    ck_assert(c == 4 && h == 6 && w == 8);
    ck_assert_int_eq(vg_stylize_noise_shape(st, 0, 3, &c, &h, &w), VG_ERR(EINVAL));
    float *n3 = nan_noise(4 * 6 * 8);
    ck_assert_int_eq(vg_stylize_run(st, &in, &out, 0), 0);
    ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n3), 0);
    ck_assert(!memcmp(o1.data, o2.data, np * sizeof(float)));
    for (int i = 0; i < 4 * 6 * 8; i++)
        ck_assert(isfinite(n3[i]));
    vg_stylize_close(&st);
    free(n3);

    /* TAESD encoder: no posterior draw, the noise is the first randn */
    {
        char enc[512], dec[512];
        snprintf(enc, sizeof(enc), "%s/tests/fixtures/taesd/taesd_encoder.pth", VG_TOP);
        snprintf(dec, sizeof(dec), "%s/tests/fixtures/taesd/taesd_decoder.pth", VG_TOP);
        s.taesd_encoder = enc;
        s.taesd_decoder = dec;
        s.width = s.height = 0;
        ck_assert_msg(vg_stylize_open(&st, ctx, &s) == 0, "%s", vgt_last_error);
        ck_assert_int_eq(vg_stylize_noise_shape(st, 76, 60, &c, &h, &w), 0);
        ck_assert(c == 4 && h == 7 && w == 9);
        for (int64_t i = 0; i < n; i++)
            n2[i] = NAN;
        ck_assert_int_eq(vg_stylize_run(st, &in, &out, 0), 0);
        ck_assert_int_eq(vg_stylize_run_noise(st, &in, &out2, 0, n2), 0);
        ck_assert(!memcmp(o1.data, o2.data, np * sizeof(float)));
        VgRng rng;
        float *draw = malloc(n * sizeof(float));
        vg_rng_seed(&rng, 42);
        vg_rng_randn(&rng, draw, n);
        ck_assert(!memcmp(n2, draw, n * sizeof(float)));
        free(draw);
        vg_stylize_close(&st);
    }

    free(n1);
    free(n2);
    vg_tensor_free(&src);
    vg_tensor_free(&img);
    vg_tensor_free(&o1);
    vg_tensor_free(&o2);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_sd1_leading);
    tcase_add_test(tc, test_sd2_trailing);
    tcase_add_test(tc, test_sd2_leading);
    tcase_add_test(tc, test_sd2_single_file);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_stylize_api);
    tcase_add_test(tc, test_stylize_errors);
    tcase_add_test(tc, test_resize);
    tcase_add_test(tc, test_taesd_codec);
    tcase_add_test(tc, test_variants);
    tcase_add_test(tc, test_scheduler_refusals);
    tcase_add_test(tc, test_single_file_spacing);
    tcase_add_test(tc, test_vae_tiling);
    suite_add_tcase(s, tc);
    /* its own case: CK_RUN_CASE=noise runs it alone in seconds */
    TCase *tn = tcase_create("noise");
    tcase_add_checked_fixture(tn, setup, teardown);
    tcase_set_timeout(tn, 120);
    tcase_add_test(tn, test_stylize_noise);
    suite_add_tcase(s, tn);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pipeline_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
