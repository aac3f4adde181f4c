/*
 * vgbench-sd: the C side of `make bench-sd` (bench/README.md). Random-weight
 * models with the full SD2.1 / SD-Turbo shapes, built in memory (no model
 * files), one measurement set per process so each peak RSS is its own:
 *
 *   vgbench-sd info
 *   vgbench-sd unet-params                     name and shape per line (for the PyTorch peer)
 *   vgbench-sd unet   [--reps R] [--size S] [--profile]
 *                                              UNet: build, one evaluation per rep;
 *                                              --profile: time per op class (stderr, last rep)
 *   vgbench-sd frame  [--reps R] [--size S]    CLIP prompt encode, then R consecutive UNet + TAESD
 *                                              1-step img2img frames (frame_s: the best)
 *   vgbench-sd vae    [--size S]               KL VAE encode + decode
 *   vgbench-sd taesd  [--reps R] [--size S]    TAESD encode + decode, R times (best of each)
 *
 * Each command prints one JSON object on stdout; errors: stderr, status 1.
 * Weights: F16 (as real checkpoints are), normal * 0.02, biases 0, norm
 * weights 1; the UNet therefore costs 1.7 GB, as a real F16 file would.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/sd/clip.h"
#include "engine/sd/pipeline.h"
#include "engine/sd/schedule.h"
#include "engine/sd/taesd.h"
#include "engine/sd/unet.h"
#include "engine/sd/vae.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "bench/bench_util.h"

typedef struct Opts {
    int reps, size, threads, profile;
} Opts;

static void log_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    if (level <= VG_LOG_WARNING) {
        fprintf(stderr, "visgen: ");
        vfprintf(stderr, fmt, ap);
    }
}

static int open_ctx(VgCtx **c, int threads)
{
    VgSettings s;
    vg_default_settings(&s);
    s.n_threads = threads;
    s.log_cb = log_cb;
    s.log_level = VG_LOG_WARNING;
    int ret = vg_open(c, &s);
    if (ret < 0)
        fprintf(stderr, "vgbench-sd: vg_open: %s\n", vg_strerror(ret));
    return ret;
}

/* ------------------------------------------------------------ random weights */

/* 65536 F16 samples of N(0, 0.02^2), indexed by 16 random bits: filling
 * 865M values must take seconds, not minutes, and timing does not care
 * about the exact distribution. */
static uint16_t g_table[65536];
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void table_init(void)
{
    for (int i = 0; i < 65536; i += 2) {
        const double u1 = (xorshift() >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
        const double u2 = (xorshift() >> 11) * (1.0 / 9007199254740992.0);
        const double r = sqrt(-2.0 * log(u1)) * 0.02;
        g_table[i] = vg_f32_to_f16((float)(r * cos(2 * M_PI * u2)));
        g_table[i + 1] = vg_f32_to_f16((float)(r * sin(2 * M_PI * u2)));
    }
}

static int ends_with(const char *s, const char *suf)
{
    const size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

typedef struct Builder {
    VgWeights *w;
    int64_t n_params;
} Builder;

/* Adds one F16 tensor: biases 0, 1-D norm / layer-norm weights 1, the rest random. */
static int add_param(void *opaque, const char *name, int ndim, const int64_t *shape)
{
    Builder *b = opaque;
    VgTensor t = { 0 };
    int ret = vg_tensor_alloc(&t, VG_DT_F16, ndim, shape);
    if (ret < 0)
        return ret;
    const int64_t n = vg_tensor_nelem(&t);
    uint16_t *d = t.data;
    const int is_bias = ends_with(name, ".bias") || ends_with(name, "_bias");
    const int is_norm = ndim == 1 && ends_with(name, ".weight") &&
                        (strstr(name, "norm") || strstr(name, "ln_"));
    if (is_bias || is_norm) {
        const uint16_t v = vg_f32_to_f16(is_norm ? 1.f : 0.f);
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
    } else {
        for (int64_t i = 0; i < n; i += 4) {
            uint64_t r = xorshift();
            for (int k = 0; k < 4 && i + k < n; k++, r >>= 16)
                d[i + k] = g_table[r & 0xffff];
        }
    }
    if ((ret = vg_weights_add(b->w, name, &t)) < 0) {
        fprintf(stderr, "vgbench-sd: vg_weights_add %s: %s\n", name, vg_strerror(ret));
        vg_tensor_free(&t);
        return ret;
    }
    b->n_params += n;
    return 0;
}

#define ADD(...) do { if ((ret = add_param(b, name, __VA_ARGS__)) < 0) return ret; } while (0)
#define NAME(...) snprintf(name, sizeof(name), __VA_ARGS__)

static int add_shaped(Builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                      int64_t d3)
{
    const int64_t s[4] = { d0, d1, d2, d3 };
    return add_param(b, name, ndim, s);
}

static int add_conv(Builder *b, const char *pfx, int cout, int cin, int k, int bias)
{
    char name[256];
    int ret;
    NAME("%s.weight", pfx);
    if ((ret = add_shaped(b, name, 4, cout, cin, k, k)) < 0)
        return ret;
    if (!bias)
        return 0;
    NAME("%s.bias", pfx);
    return add_shaped(b, name, 1, cout, 0, 0, 0);
}

static int add_norm(Builder *b, const char *pfx, int c)
{
    char name[256];
    int ret;
    NAME("%s.weight", pfx);
    if ((ret = add_shaped(b, name, 1, c, 0, 0, 0)) < 0)
        return ret;
    NAME("%s.bias", pfx);
    return add_shaped(b, name, 1, c, 0, 0, 0);
}

static int add_linear(Builder *b, const char *pfx, int out, int in)
{
    char name[256];
    int ret;
    NAME("%s.weight", pfx);
    if ((ret = add_shaped(b, name, 2, out, in, 0, 0)) < 0)
        return ret;
    NAME("%s.bias", pfx);
    return add_shaped(b, name, 1, out, 0, 0, 0);
}

/* ------------------------------------------------------------ UNet */

static int build_unet(VgCtx *c, VgWeights **w, VgUnet **u, int64_t *n_params)
{
    VgUnetConfig cfg;
    Builder b = { 0 };
    int ret;

    vg_unet_config_sd21(&cfg);
    if ((ret = vg_weights_new(&b.w)) < 0)
        return ret;
    if ((ret = vg_unet_foreach_param(&cfg, add_param, &b)) < 0 ||
        (ret = vg_unet_open(u, c, b.w, "", VG_UNET_LAYOUT_DIFFUSERS, &cfg)) < 0) {
        fprintf(stderr, "vgbench-sd: UNet: %s\n", vg_strerror(ret));
        vg_weights_close(&b.w);
        return ret;
    }
    *w = b.w;
    *n_params = b.n_params;
    return 0;
}

static int param_line(void *opaque, const char *name, int ndim, const int64_t *shape)
{
    printf("%s", name);
    for (int i = 0; i < ndim; i++)
        printf(" %lld", (long long)shape[i]);
    printf("\n");
    return 0;
}

static int cmd_unet_params(void)
{
    VgUnetConfig cfg;
    vg_unet_config_sd21(&cfg);
    return vg_unet_foreach_param(&cfg, param_line, NULL) < 0;
}

static void fill(VgTensor *t, float scale, float offset)
{
    float *d = t->data;
    for (int64_t i = 0; i < vg_tensor_nelem(t); i++)
        d[i] = offset + scale * ((xorshift() >> 40) * (1.f / 16777216.f) - 0.5f);
}

static double mean_abs(const VgTensor *t)
{
    const float *d = t->data;
    double s = 0;
    for (int64_t i = 0; i < vg_tensor_nelem(t); i++)
        s += fabs(d[i]);
    return s / (double)vg_tensor_nelem(t);
}

static int cmd_unet(const Opts *o)
{
    VgCtx *c = NULL;
    VgWeights *w = NULL;
    VgUnet *u = NULL;
    VgTensor x = { 0 }, enc = { 0 }, out = { 0 };
    int64_t n = 0;
    double t_build, times[16];
    int ret = 1, reps = o->reps < 1 ? 1 : o->reps > 16 ? 16 : o->reps;
    const int h = o->size / 8;

    if (open_ctx(&c, o->threads) < 0)
        return 1;
    double t0 = vgb_now();
    if (build_unet(c, &w, &u, &n) < 0)
        goto end;
    t_build = vgb_now() - t0;
    if (vg_tensor_alloc4(&x, 1, 4, h, h) < 0 ||                                  // [1, 4, h, w]
        vg_tensor_alloc(&enc, VG_DT_F32, 3, (const int64_t[]){ 1, 77, 1024 }) < 0 || // [1, 77, 1024]
        vg_tensor_alloc4(&out, 1, 4, h, h) < 0)
        goto end;
    fill(&x, 2.f, 0.f);
    fill(&enc, 2.f, 0.f);
    const float ts[1] = { 499.f };
    VgUnetProfile prof;
    for (int r = 0; r < reps; r++) {
        if (o->profile) {
            memset(&prof, 0, sizeof(prof));
            vg_unet_set_profile(u, &prof);
        }
        t0 = vgb_now();
        if ((ret = vg_unet_forward(u, &x, ts, &enc, &out)) < 0) {
            fprintf(stderr, "vgbench-sd: vg_unet_forward: %s\n", vg_strerror(ret));
            ret = 1;
            goto end;
        }
        times[r] = vgb_now() - t0;
    }
    if (o->profile) {
        double sum = 0;
        vg_unet_set_profile(u, NULL);
        fprintf(stderr, "| op class | calls | time s | %% of step | GFLOP | GFLOPS |\n"
                        "|---|---|---|---|---|---|\n");
        for (int i = 0; i < VG_UNET_PROF_N; i++) {
            sum += prof.sec[i];
            char gf[32] = "-";
            if (prof.flops[i] > 0 && prof.sec[i] > 0)
                snprintf(gf, sizeof(gf), "%.1f", prof.flops[i] * 1e-9 / prof.sec[i]);
            fprintf(stderr, "| %s | %lld | %.3f | %.1f | %.1f | %s |\n", vg_unet_prof_name(i),
                    (long long)prof.calls[i], prof.sec[i], 100.0 * prof.sec[i] / prof.total_s,
                    prof.flops[i] * 1e-9, gf);
        }
        fprintf(stderr, "| (F16->F32 widening, inside linear/conv) | | %.3f | %.1f | %.2f G values | |\n",
                prof.widen_s, 100.0 * prof.widen_s / prof.total_s, prof.widen_n * 1e-9);
        fprintf(stderr, "| sum of classes / forward total | | %.3f / %.3f | | | |\n", sum, prof.total_s);
    }
    printf("{\"params\": %lld, \"params_engine\": %lld, \"build_s\": %.3f, \"times\": [",
           (long long)n, (long long)vg_unet_n_params(u), t_build);
    for (int r = 0; r < reps; r++)
        printf("%s%.4f", r ? ", " : "", times[r]);
    printf("], \"out_mean_abs\": %.6g, \"peak_rss_kb\": %ld, \"cpu_s\": %.2f}\n",
           mean_abs(&out), vgb_peak_rss_kb(), vgb_cpu_time());
    ret = 0;
end:
    vg_tensor_free(&x);
    vg_tensor_free(&enc);
    vg_tensor_free(&out);
    vg_unet_close(&u);
    vg_weights_close(&w);
    vg_close(&c);
    return ret;
}

/* ------------------------------------------------------------ TAESD (taesd.py names) */

/* One TAESD Block at Sequential index @i: conv.0/2/4, no skip (width constant). */
static int add_taesd_block(Builder *b, int i, int wd)
{
    char name[64];
    int ret;
    for (int k = 0; k < 3; k++) {
        NAME("%d.conv.%d", i, 2 * k);
        if ((ret = add_conv(b, name, wd, wd, 3, 1)) < 0)
            return ret;
    }
    return 0;
}

static int build_taesd(VgCtx *c, VgTaesd **t, int64_t *n_params)
{
    const int wd = 64, lat = 4;
    Builder e = { 0 }, d = { 0 };
    char name[64];
    int ret;

    if ((ret = vg_weights_new(&e.w)) < 0 || (ret = vg_weights_new(&d.w)) < 0)
        goto end;
    /* encoder: conv(3,w) Block, 3x [conv s2 no bias, 3 Blocks], conv(w, lat) */
    if ((ret = add_conv(&e, "0", wd, 3, 3, 1)) < 0 || (ret = add_taesd_block(&e, 1, wd)) < 0)
        goto end;
    for (int s = 0; s < 3; s++) {
        NAME("%d", 2 + 4 * s);
        if ((ret = add_conv(&e, name, wd, wd, 3, 0)) < 0)
            goto end;
        for (int k = 0; k < 3; k++)
            if ((ret = add_taesd_block(&e, 3 + 4 * s + k, wd)) < 0)
                goto end;
    }
    if ((ret = add_conv(&e, "14", lat, wd, 3, 1)) < 0)
        goto end;
    /* decoder: Clamp, conv(lat, w), ReLU, 3x [3 Blocks, Upsample, conv no bias], Block, conv(w, 3) */
    if ((ret = add_conv(&d, "1", wd, lat, 3, 1)) < 0)
        goto end;
    for (int s = 0; s < 3; s++) {
        for (int k = 0; k < 3; k++)
            if ((ret = add_taesd_block(&d, 3 + 5 * s + k, wd)) < 0)
                goto end;
        NAME("%d", 7 + 5 * s);
        if ((ret = add_conv(&d, name, wd, wd, 3, 0)) < 0)
            goto end;
    }
    if ((ret = add_taesd_block(&d, 18, wd)) < 0 || (ret = add_conv(&d, "19", 3, wd, 3, 1)) < 0)
        goto end;
    *n_params = e.n_params + d.n_params;
    if ((ret = vg_taesd_open(t, c, e.w, d.w)) < 0)
        fprintf(stderr, "vgbench-sd: TAESD: %s\n", vg_strerror(ret));
end:
    vg_weights_close(&e.w); /* TAESD copies its weights at open */
    vg_weights_close(&d.w);
    return ret;
}

static int cmd_taesd(const Opts *o)
{
    VgCtx *c = NULL;
    VgTaesd *t = NULL;
    VgTensor img = { 0 }, lat = { 0 }, dec = { 0 };
    int64_t n = 0;
    int ret = 1;

    if (open_ctx(&c, o->threads) < 0 || build_taesd(c, &t, &n) < 0)
        goto end;
    if (vg_tensor_alloc4(&img, 1, 3, o->size, o->size) < 0)                   // [1, 3, H, W]
        goto end;
    fill(&img, 1.f, 0.5f);
    /* repeated calls, as a video's frames make them: best of each */
    const int reps = o->reps < 1 ? 1 : o->reps > 16 ? 16 : o->reps;
    double t_enc = 0.0, t_dec = 0.0;
    for (int r = 0; r < reps; r++) {
        vg_tensor_free(&lat);
        vg_tensor_free(&dec);
        double t0 = vgb_now();
        if ((ret = vg_taesd_encode(t, &img, &lat)) < 0)                        // [1, 4, H/8, W/8]
            goto fail;
        const double te = vgb_now() - t0;
        t0 = vgb_now();
        if ((ret = vg_taesd_decode(t, &lat, &dec)) < 0)                        // [1, 3, H, W]
            goto fail;
        const double td = vgb_now() - t0;
        t_enc = r == 0 || te < t_enc ? te : t_enc;
        t_dec = r == 0 || td < t_dec ? td : t_dec;
    }
    printf("{\"params\": %lld, \"encode_s\": %.4f, \"decode_s\": %.4f, \"reps\": %d, "
           "\"peak_rss_kb\": %ld}\n", (long long)n, t_enc, t_dec, reps, vgb_peak_rss_kb());
    ret = 0;
    goto end;
fail:
    fprintf(stderr, "vgbench-sd: TAESD: %s\n", vg_strerror(ret));
    ret = 1;
end:
    vg_tensor_free(&img);
    vg_tensor_free(&lat);
    vg_tensor_free(&dec);
    vg_taesd_close(&t);
    vg_close(&c);
    return ret;
}

/* ------------------------------------------------------------ KL VAE (diffusers names) */

static int add_res(Builder *b, const char *pfx, int cin, int cout)
{
    char name[256];
    int ret;
#define SUB(s) (NAME("%s.%s", pfx, s), name)
    if ((ret = add_norm(b, SUB("norm1"), cin)) < 0 ||
        (ret = add_conv(b, SUB("conv1"), cout, cin, 3, 1)) < 0 ||
        (ret = add_norm(b, SUB("norm2"), cout)) < 0 ||
        (ret = add_conv(b, SUB("conv2"), cout, cout, 3, 1)) < 0)
        return ret;
    if (cin != cout)
        return add_conv(b, SUB("conv_shortcut"), cout, cin, 1, 1);
#undef SUB
    return 0;
}

static int add_vae_coder(Builder *b, const VgVaeConfig *c, int is_dec)
{
    const char *cn = is_dec ? "decoder" : "encoder";
    const int n = c->n_blocks, top = c->block_out[n - 1];
    char name[256];
    int ret;

    NAME("%s.conv_in", cn);
    if ((ret = add_conv(b, name, is_dec ? top : c->block_out[0],
                        is_dec ? c->latent_channels : c->in_channels, 3, 1)) < 0)
        return ret;
    for (int i = 0; i < n; i++) {
        const int cout = is_dec ? c->block_out[n - 1 - i] : c->block_out[i];
        int cin = is_dec ? c->block_out[n - i < n - 1 ? n - i : n - 1]
                         : c->block_out[i > 0 ? i - 1 : 0];
        for (int j = 0; j < c->layers_per_block + is_dec; j++, cin = cout) {
            NAME("%s.%s.%d.resnets.%d", cn, is_dec ? "up_blocks" : "down_blocks", i, j);
            if ((ret = add_res(b, name, cin, cout)) < 0)
                return ret;
        }
        if (i < n - 1) {
            NAME("%s.%s.%d.%s.0.conv", cn, is_dec ? "up_blocks" : "down_blocks", i,
                 is_dec ? "upsamplers" : "downsamplers");
            if ((ret = add_conv(b, name, cout, cout, 3, 1)) < 0)
                return ret;
        }
    }
    for (int j = 0; j < 2; j++) {
        NAME("%s.mid_block.resnets.%d", cn, j);
        if ((ret = add_res(b, name, top, top)) < 0)
            return ret;
    }
    NAME("%s.mid_block.attentions.0.group_norm", cn);
    if ((ret = add_norm(b, name, top)) < 0)
        return ret;
    static const char *const proj[4] = { "to_q", "to_k", "to_v", "to_out.0" };
    for (int i = 0; i < 4; i++) {
        NAME("%s.mid_block.attentions.0.%s", cn, proj[i]);
        if ((ret = add_linear(b, name, top, top)) < 0)
            return ret;
    }
    NAME("%s.conv_norm_out", cn);
    if ((ret = add_norm(b, name, is_dec ? c->block_out[0] : top)) < 0)
        return ret;
    NAME("%s.conv_out", cn);
    return add_conv(b, name, is_dec ? c->out_channels : 2 * c->latent_channels,
                    is_dec ? c->block_out[0] : top, 3, 1);
}

static int cmd_vae(const Opts *o)
{
    VgCtx *c = NULL;
    VgVae *v = NULL;
    VgVaeConfig cfg;
    Builder b = { 0 };
    VgTensor img = { 0 }, lat = { 0 }, dec = { 0 };
    int ret = 1;

    vg_vae_config_default(&cfg);
    const int l2 = 2 * cfg.latent_channels;
    if (open_ctx(&c, o->threads) < 0 || vg_weights_new(&b.w) < 0)
        goto end;
    if (add_vae_coder(&b, &cfg, 0) < 0 || add_vae_coder(&b, &cfg, 1) < 0 ||
        add_conv(&b, "quant_conv", l2, l2, 1, 1) < 0 ||
        add_conv(&b, "post_quant_conv", l2 / 2, l2 / 2, 1, 1) < 0)
        goto end;
    if ((ret = vg_vae_open(&v, c, b.w, "", &cfg)) < 0)
        goto fail;
    if (vg_tensor_alloc4(&img, 1, 3, o->size, o->size) < 0)                   // [1, 3, H, W]
        goto end;
    fill(&img, 2.f, 0.f);
    double t0 = vgb_now();
    if ((ret = vg_vae_encode(v, &img, &lat)) < 0)                              // [1, 4, H/8, W/8]
        goto fail;
    const double t_enc = vgb_now() - t0;
    t0 = vgb_now();
    if ((ret = vg_vae_decode(v, &lat, &dec)) < 0)                              // [1, 3, H, W]
        goto fail;
    const double t_dec = vgb_now() - t0;
    printf("{\"params\": %lld, \"encode_s\": %.4f, \"decode_s\": %.4f, \"peak_rss_kb\": %ld}\n",
           (long long)b.n_params, t_enc, t_dec, vgb_peak_rss_kb());
    ret = 0;
    goto end;
fail:
    fprintf(stderr, "vgbench-sd: VAE: %s\n", vg_strerror(ret));
    ret = 1;
end:
    vg_tensor_free(&img);
    vg_tensor_free(&lat);
    vg_tensor_free(&dec);
    vg_vae_close(&v);
    vg_weights_close(&b.w);
    vg_close(&c);
    return ret;
}

/* ------------------------------------------------------------ text encoder (OpenCLIP ViT-H, transformers names) */

static int build_clip(VgCtx *c, VgWeights **w, VgClip **clip, int64_t *n_params)
{
    const int C = 1024, L = 23, I = 4096;
    Builder b = { 0 };
    char name[256], p[128];
    int ret;

    if ((ret = vg_weights_new(&b.w)) < 0)
        return ret;
    if ((ret = add_shaped(&b, "text_model.embeddings.token_embedding.weight", 2, 49408, C, 0, 0)) < 0 ||
        (ret = add_shaped(&b, "text_model.embeddings.position_embedding.weight", 2, 77, C, 0, 0)) < 0)
        goto fail;
    for (int l = 0; l < L; l++) {
        snprintf(p, sizeof(p), "text_model.encoder.layers.%d", l);
        static const char *const proj[4] = { "q_proj", "k_proj", "v_proj", "out_proj" };
        NAME("%s.layer_norm1", p);
        if ((ret = add_norm(&b, name, C)) < 0)
            goto fail;
        for (int i = 0; i < 4; i++) {
            NAME("%s.self_attn.%s", p, proj[i]);
            if ((ret = add_linear(&b, name, C, C)) < 0)
                goto fail;
        }
        NAME("%s.layer_norm2", p);
        if ((ret = add_norm(&b, name, C)) < 0)
            goto fail;
        NAME("%s.mlp.fc1", p);
        if ((ret = add_linear(&b, name, I, C)) < 0)
            goto fail;
        NAME("%s.mlp.fc2", p);
        if ((ret = add_linear(&b, name, C, I)) < 0)
            goto fail;
    }
    if ((ret = add_norm(&b, "text_model.final_layer_norm", C)) < 0)
        goto fail;
    VgClipConfig cfg;
    vg_clip_config_default(&cfg);
    cfg.heads = 16;
    cfg.act = VG_CLIP_ACT_GELU; /* SD2's text_encoder/config.json: hidden_act gelu */
    if ((ret = vg_clip_open(clip, c, b.w, "", &cfg)) < 0)
        goto fail;
    *w = b.w;
    *n_params = b.n_params;
    return 0;
fail:
    fprintf(stderr, "vgbench-sd: CLIP: %s\n", vg_strerror(ret));
    vg_weights_close(&b.w);
    return ret;
}

/* ------------------------------------------------------------ whole SD-Turbo frame */

static int cmd_frame(const Opts *o)
{
    VgCtx *c = NULL;
    VgWeights *wu = NULL, *wc = NULL;
    VgClip *clip = NULL;
    VgSdModel m = { 0 };
    VgTensor emb = { 0 }, img = { 0 }, out = { 0 };
    VgSdImg2ImgParams p;
    int64_t n_unet = 0, n_clip = 0, n_taesd = 0;
    int32_t ids[77];
    int ret = 1;

    if (open_ctx(&c, o->threads) < 0)
        return 1;
    double t0 = vgb_now();
    if (build_clip(c, &wc, &clip, &n_clip) < 0 || build_unet(c, &wu, &m.unet, &n_unet) < 0 ||
        build_taesd(c, &m.taesd, &n_taesd) < 0)
        goto end;
    const double t_build = vgb_now() - t0;

    /* A fixed token sequence (BOS, 8 words, EOS, padding): the encoder's cost
     * does not depend on the ids, and a tokenizer file is not needed. */
    ids[0] = 49406;
    for (int i = 1; i < 77; i++)
        ids[i] = i <= 8 ? 320 + 37 * i : 49407;
    if (vg_tensor_alloc(&emb, VG_DT_F32, 3, (const int64_t[]){ 1, 77, 1024 }) < 0) // [1, 77, 1024]
        goto end;
    t0 = vgb_now();
    if ((ret = vg_clip_encode(clip, ids, 77, &emb)) < 0) {
        fprintf(stderr, "vgbench-sd: vg_clip_encode: %s\n", vg_strerror(ret));
        ret = 1;
        goto end;
    }
    const double t_clip = vgb_now() - t0;

    /* The pipeline of vg_stylize (vg_sd_img2img) on a model assembled here:
     * vg_stylize_open only takes model files. SD-Turbo's img2img: euler,
     * trailing spacing, 2 steps x strength 0.5 = 1 UNet step, no CFG. */
    m.ctx = c;
    m.family = VG_SD_FAMILY_SD2;
    vg_sched_config_default(&m.sched);
    m.sched.spacing = VG_SPACING_TRAILING;
    m.vae_scale = 0.18215f;
    m.default_sampler = VG_SAMPLER_EULER;
    vg_sd_img2img_params_default(&p);
    p.steps = 2;
    p.strength = 0.5;
    p.cfg = 0.f;
    p.seed = 1;
    if (vg_tensor_alloc4(&img, 1, 3, o->size, o->size) < 0)                   // [1, 3, H, W]
        goto end;
    fill(&img, 1.f, 0.5f);
    /* consecutive frames of one stream, as the filter runs them: the first
     * also pays for first-touch allocations; best is the steady state */
    const int reps = o->reps < 1 ? 1 : o->reps > 16 ? 16 : o->reps;
    double times[16], best = 0.0;
    for (int r = 0; r < reps; r++) {
        vg_tensor_free(&out);
        t0 = vgb_now();
        if ((ret = vg_sd_img2img(&m, &p, &emb, NULL, &img, &out)) < 0) {     // [1, 3, H, W]
            fprintf(stderr, "vgbench-sd: vg_sd_img2img: %s\n", vg_strerror(ret));
            ret = 1;
            goto end;
        }
        times[r] = vgb_now() - t0;
        best = r == 0 || times[r] < best ? times[r] : best;
    }
    printf("{\"params_unet\": %lld, \"params_clip\": %lld, \"params_taesd\": %lld, "
           "\"build_s\": %.2f, \"clip_s\": %.4f, \"frame_s\": %.4f, \"times\": [",
           (long long)n_unet, (long long)n_clip, (long long)n_taesd, t_build, t_clip, best);
    for (int r = 0; r < reps; r++)
        printf("%s%.4f", r ? ", " : "", times[r]);
    printf("], \"out_mean_abs\": %.6g, \"peak_rss_kb\": %ld}\n", mean_abs(&out),
           vgb_peak_rss_kb());
    ret = 0;
end:
    vg_tensor_free(&emb);
    vg_tensor_free(&img);
    vg_tensor_free(&out);
    vg_clip_close(&clip);
    vg_taesd_close(&m.taesd);
    vg_unet_close(&m.unet);
    vg_weights_close(&wc);
    vg_weights_close(&wu);
    vg_close(&c);
    return ret;
}

static int cmd_info(const Opts *o)
{
    VgCtx *c = NULL;
    char cpu[256];
    if (open_ctx(&c, o->threads) < 0)
        return 1;
    vgb_cpu_model(cpu, sizeof(cpu));
    printf("{\"cpu\": ");
    vgb_json_str(cpu);
    printf(", \"version\": ");
    vgb_json_str(vg_version());
    printf(", \"blas_kernel\": ");
    vgb_json_str(vg_blas_kernel(c));
    printf("}\n");
    vg_close(&c);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: vgbench-sd info|unet-params|unet|frame|vae|taesd "
                    "[--reps R] [--size S] [--threads N] [--profile]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "reps", required_argument, NULL, 'r' },
        { "size", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },
        { "profile", no_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    Opts o = { .reps = 1, .size = 512, .threads = 0 };
    int ch;

    if (argc < 2) {
        usage();
        return 1;
    }
    const char *cmd = argv[1];
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'r': o.reps = atoi(optarg); break;
        case 's': o.size = atoi(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'p': o.profile = 1; break;
        default: usage(); return 1;
        }
    }
    if (o.size < 64 || o.size % 64) {
        fprintf(stderr, "vgbench-sd: --size must be a positive multiple of 64\n");
        return 1;
    }
    table_init();
    if (!strcmp(cmd, "info"))
        return cmd_info(&o);
    if (!strcmp(cmd, "unet-params"))
        return cmd_unet_params();
    if (!strcmp(cmd, "unet"))
        return cmd_unet(&o);
    if (!strcmp(cmd, "frame"))
        return cmd_frame(&o);
    if (!strcmp(cmd, "vae"))
        return cmd_vae(&o);
    if (!strcmp(cmd, "taesd"))
        return cmd_taesd(&o);
    usage();
    return 1;
}
