/*
 * Neural video processing with libvisgen.
 *
 * This file is part of FFmpeg.
 *
 * FFmpeg is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * FFmpeg is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Lesser General Public License for more details.
 *
 * You should have received a copy of the GNU Lesser General Public
 * License along with FFmpeg; if not, write to the Free Software
 * Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301 USA
 */

/**
 * @file
 * visgen filter: super-resolution upscaling and latent-diffusion img2img
 * stylisation on the CPU with libvisgen.
 */

#include <string.h>

#include <visgen/visgen.h>
#include <visgen/temporal.h>

#include "libavutil/avstring.h"
#include "libavutil/dict.h"
#include "libavutil/internal.h"
#include "libavutil/macros.h"
#include "libavutil/mem.h"
#include "libavutil/opt.h"
#include "libavutil/pixdesc.h"

#include "version.h"
#include "avfilter.h"
#include "filters.h"
#include "formats.h"
#if LIBAVFILTER_VERSION_MAJOR < 10
#include "internal.h"   /* FILTER_*, ff_filter_frame(): in filters.h since lavfi 10 */
#endif
#include "video.h"
#include "visgen_conv.h"

#define MAX_SIZE 16384

enum VisgenNoise {
    NOISE_AUTO = -1,
    NOISE_SEED,
    NOISE_WARPED,
};

enum VisgenMode {
    VISGEN_MODE_UPSCALE,
    VISGEN_MODE_STYLIZE,
    VISGEN_MODE_NB,
};

typedef struct VisgenContext {
    const AVClass *class;

    int mode;
    char *model;
    int scale;
    int tile;
    int threads;

    /* mode=stylize */
    char *prompt, *negative_prompt;
    float strength;
    int steps;
    float cfg;
    char *sampler, *schedule, *spacing, *prediction;
    int64_t seed;
    int seed_policy;
    int proc_w, proc_h;     ///< processing size, 0x0 = the frame's (rounded to 8)
    char *vae, *taesd_encoder, *taesd_decoder, *tokenizer;
    int clip_skip;
    int vae_tile;

    /* temporal consistency (visgen/temporal.h) */
    int flow, flow_preset, flow_downscale;
    float temporal, init_blend;
    int keyint;
    float scenecut, key_occlusion;
    int color_coherence;
    int noise;

    VgCtx *vg;
    VgUpscaler *up;
    VgStylizer *st;
    int model_scale;        ///< factor the loaded model applies (1 for stylize)
    VisgenConv conv;
    VgTemporal *tp;
    AVFrame **inq;          ///< input frames whose output is not out yet, oldest first
    int inq_head, inq_n, inq_cap;
} VisgenContext;

#define OFFSET(x) offsetof(VisgenContext, x)
#define FLAGS AV_OPT_FLAG_FILTERING_PARAM | AV_OPT_FLAG_VIDEO_PARAM
#define TFLAGS FLAGS | AV_OPT_FLAG_RUNTIME_PARAM
#define DEF_MODEL "default"

static const AVOption visgen_options[] = {
    { "mode",    "what to do with each frame", OFFSET(mode), AV_OPT_TYPE_INT,
      { .i64 = VISGEN_MODE_UPSCALE }, 0, VISGEN_MODE_NB - 1, FLAGS, "mode" },
        { "upscale", "super-resolution upscaling by the model's factor", 0, AV_OPT_TYPE_CONST,
          { .i64 = VISGEN_MODE_UPSCALE }, 0, 0, FLAGS, "mode" },
        { "stylize", "latent-diffusion img2img of every frame, same size out", 0, AV_OPT_TYPE_CONST,
          { .i64 = VISGEN_MODE_STYLIZE }, 0, 0, FLAGS, "mode" },
    { "model",   "upscale: built-in model name (default, esrgan-slim, esrgan-medium, esrgan-thick) "
                 "or path to a TF.js model.json or Real-ESRGAN .pth/.safetensors; "
                 "stylize: Stable Diffusion checkpoint file or diffusers folder (required)",
      OFFSET(model), AV_OPT_TYPE_STRING, { .str = DEF_MODEL }, 0, 0, FLAGS },
    { "scale",   "upscale: upscaling factor, 0 = the model's own", OFFSET(scale), AV_OPT_TYPE_INT,
      { .i64 = 0 }, 0, 16, FLAGS },
    { "tile",    "upscale: tile edge in input pixels, 0 = automatic (bounded memory)",
      OFFSET(tile), AV_OPT_TYPE_INT, { .i64 = 0 }, 0, MAX_SIZE, TFLAGS },
    { "threads", "worker threads, 0 = one per CPU", OFFSET(threads), AV_OPT_TYPE_INT,
      { .i64 = 0 }, 0, 1024, FLAGS },
    { "prompt",  "stylize: text prompt", OFFSET(prompt), AV_OPT_TYPE_STRING,
      { .str = NULL }, 0, 0, TFLAGS },
    { "negative_prompt", "stylize: negative text prompt", OFFSET(negative_prompt),
      AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, TFLAGS },
    { "strength", "stylize: how much of each frame is redrawn, 0..1", OFFSET(strength),
      AV_OPT_TYPE_FLOAT, { .dbl = 0.5 }, 0, 1, TFLAGS },
    { "steps",   "stylize: sampler steps of the full schedule (steps*strength run)",
      OFFSET(steps), AV_OPT_TYPE_INT, { .i64 = 20 }, 1, 1000, FLAGS },
    { "cfg",     "stylize: classifier-free guidance scale, <= 1 skips the unconditional pass",
      OFFSET(cfg), AV_OPT_TYPE_FLOAT, { .dbl = 7.5 }, 0, 100, TFLAGS },
    { "sampler", "stylize: euler, euler_a, ddim, dpm++2m or lcm (default: the model family's)",
      OFFSET(sampler), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "schedule", "stylize: sigma schedule, default or karras", OFFSET(schedule),
      AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "spacing", "stylize: timestep spacing, leading, trailing or linspace "
                 "(default: the model's scheduler config)",
      OFFSET(spacing), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "prediction", "stylize: what the UNet predicts, epsilon or v (default: the model family's)",
      OFFSET(prediction), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "seed",    "stylize: noise seed", OFFSET(seed), AV_OPT_TYPE_INT64,
      { .i64 = 0 }, 0, INT64_MAX, TFLAGS },
    { "seed_policy", "stylize: noise seed of each frame", OFFSET(seed_policy), AV_OPT_TYPE_INT,
      { .i64 = VG_SEED_FIXED }, VG_SEED_FIXED, VG_SEED_INCREMENT, TFLAGS, "seed_policy" },
        { "fixed",     "every frame uses seed (least flicker)", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_SEED_FIXED }, 0, 0, TFLAGS, "seed_policy" },
        { "increment", "frame n uses seed + n", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_SEED_INCREMENT }, 0, 0, TFLAGS, "seed_policy" },
    { "size",    "stylize: processing size, multiples of 8 (default: the frame's, rounded down)",
      OFFSET(proc_w), AV_OPT_TYPE_IMAGE_SIZE, { .str = NULL }, 0, 0, FLAGS },
    { "vae",     "stylize: separate VAE file replacing the model's", OFFSET(vae),
      AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "taesd_encoder", "stylize: TAESD encoder file replacing the VAE encoder",
      OFFSET(taesd_encoder), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "taesd_decoder", "stylize: TAESD decoder file replacing the VAE decoder",
      OFFSET(taesd_decoder), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "tokenizer", "stylize: CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz or a tokenizer/ "
                   "folder; default: the model folder's)",
      OFFSET(tokenizer), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "clip_skip", "stylize: text encoder layers to skip from the end, 0 = the model family's",
      OFFSET(clip_skip), AV_OPT_TYPE_INT, { .i64 = 0 }, 0, 32, FLAGS },
    { "vae_tile", "stylize: KL VAE tiling: 0 = automatic (above 512x512 in area: 512 px tiles, "
                  "128 px blended overlap), -1 = never, N = N-pixel tiles (multiple of 8, >= 64); "
                  "TAESD is never tiled", OFFSET(vae_tile), AV_OPT_TYPE_INT, { .i64 = 0 }, -1, 16384, FLAGS },
    { "flow",    "optical flow for temporal consistency", OFFSET(flow), AV_OPT_TYPE_INT,
      { .i64 = VG_TEMPORAL_FLOW_DIS }, VG_TEMPORAL_FLOW_OFF, VG_TEMPORAL_FLOW_DIS, FLAGS, "flow" },
        { "off", "every frame processed on its own", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_TEMPORAL_FLOW_OFF }, 0, 0, FLAGS, "flow" },
        { "dis", "Dense Inverse Search on the input luma", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_TEMPORAL_FLOW_DIS }, 0, 0, FLAGS, "flow" },
    { "flow_preset", "optical flow speed/quality", OFFSET(flow_preset), AV_OPT_TYPE_INT,
      { .i64 = VG_FLOW_MEDIUM }, VG_FLOW_ULTRAFAST, VG_FLOW_MEDIUM, FLAGS, "flow_preset" },
        { "ultrafast", NULL, 0, AV_OPT_TYPE_CONST, { .i64 = VG_FLOW_ULTRAFAST }, 0, 0, FLAGS, "flow_preset" },
        { "fast",      NULL, 0, AV_OPT_TYPE_CONST, { .i64 = VG_FLOW_FAST },      0, 0, FLAGS, "flow_preset" },
        { "medium",    NULL, 0, AV_OPT_TYPE_CONST, { .i64 = VG_FLOW_MEDIUM },    0, 0, FLAGS, "flow_preset" },
    { "flow_downscale", "compute the flow on the input shrunk by this factor",
      OFFSET(flow_downscale), AV_OPT_TYPE_INT, { .i64 = 1 }, 1, 16, FLAGS },
    { "temporal", "weight of the warped previous output where visible, 0..1 "
                  "(-1 = the mode's default: upscale 0.3, stylize 0.5)",
      OFFSET(temporal), AV_OPT_TYPE_FLOAT, { .dbl = -1 }, -1, 1, TFLAGS },
    { "init_blend", "stylize: weight of the warped previous output in the image img2img "
                    "starts from, 0..1 (-1 = 0.5)",
      OFFSET(init_blend), AV_OPT_TYPE_FLOAT, { .dbl = -1 }, -1, 1, TFLAGS },
    { "keyint",  "run the network on every keyint-th frame, the others by flow propagation "
                 "(needs flow=dis)", OFFSET(keyint), AV_OPT_TYPE_INT, { .i64 = 1 }, 1, 250, FLAGS },
    { "scenecut", "share of unmatched pixels that starts a new shot, 0 = never",
      OFFSET(scenecut), AV_OPT_TYPE_FLOAT, { .dbl = 0.5 }, 0, 1, TFLAGS },
    { "key_occlusion", "keyint > 1: share of pixels not visible from the last keyframe "
                       "that forces a keyframe", OFFSET(key_occlusion), AV_OPT_TYPE_FLOAT,
      { .dbl = 0.3 }, 0, 1, TFLAGS },
    { "noise",   "stylize: initial noise of each frame", OFFSET(noise), AV_OPT_TYPE_INT,
      { .i64 = NOISE_AUTO }, NOISE_AUTO, NOISE_WARPED, FLAGS, "noise" },
        { "auto",   "warped with flow=dis, else seed", 0, AV_OPT_TYPE_CONST,
          { .i64 = NOISE_AUTO }, 0, 0, FLAGS, "noise" },
        { "seed",   "drawn from the seed (see seed_policy)", 0, AV_OPT_TYPE_CONST,
          { .i64 = NOISE_SEED }, 0, 0, FLAGS, "noise" },
        { "warped", "the previous keyframe's noise carried along the motion, fresh draws "
                    "where nothing is carried (needs flow=dis)", 0, AV_OPT_TYPE_CONST,
          { .i64 = NOISE_WARPED }, 0, 0, FLAGS, "noise" },
    { "color_coherence", "match keyframe colours to", OFFSET(color_coherence), AV_OPT_TYPE_INT,
      { .i64 = VG_COLOR_OFF }, VG_COLOR_OFF, VG_COLOR_KEYFRAME, TFLAGS, "color_coherence" },
        { "off",      "no matching", 0, AV_OPT_TYPE_CONST, { .i64 = VG_COLOR_OFF }, 0, 0, TFLAGS, "color_coherence" },
        { "first",    "the first output of the shot", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_COLOR_FIRST }, 0, 0, TFLAGS, "color_coherence" },
        { "keyframe", "the previous keyframe's output", 0, AV_OPT_TYPE_CONST,
          { .i64 = VG_COLOR_KEYFRAME }, 0, 0, TFLAGS, "color_coherence" },
    { NULL }
};

AVFILTER_DEFINE_CLASS(visgen);

static void visgen_av_log(void *cookie, int level, const char *fmt, va_list ap)
{
    int av_level;

    switch (level) {
    case VG_LOG_ERROR:   av_level = AV_LOG_ERROR;   break;
    case VG_LOG_WARNING: av_level = AV_LOG_WARNING; break;
    case VG_LOG_INFO:    av_level = AV_LOG_INFO;    break;
    case VG_LOG_VERBOSE: av_level = AV_LOG_VERBOSE; break;
    default:             av_level = AV_LOG_DEBUG;   break;
    }
    av_vlog(cookie, av_level, fmt, ap);
}

static int visgen_log_level(void)
{
    int l = av_log_get_level();

    return l >= AV_LOG_DEBUG   ? VG_LOG_DEBUG   :
           l >= AV_LOG_VERBOSE ? VG_LOG_VERBOSE :
           l >= AV_LOG_INFO    ? VG_LOG_INFO    :
           l >= AV_LOG_WARNING ? VG_LOG_WARNING : VG_LOG_ERROR;
}

static int averror_from_vg(int err)
{
    if (err == VG_EBADMODEL || err == VG_EREFUSED)
        return AVERROR_INVALIDDATA;
    if (err == VG_EUNSUPPORTED)
        return AVERROR_PATCHWELCOME;
    if (err < 0 && err > -4096)     /* VG_ERR(errno) */
        return AVERROR(-err);
    return AVERROR_EXTERNAL;
}

static int open_upscaler(AVFilterContext *ctx, VgUpscaler **up)
{
    VisgenContext *s = ctx->priv;
    VgUpscaleSettings us;
    int ret;

    vg_upscale_default_settings(&us);
    us.model = s->model;
    us.scale = s->scale;
    us.tile  = s->tile;
    ret = vg_upscale_open(up, s->vg, &us);
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "cannot load model '%s': %s\n",
               s->model, vg_strerror(ret));
        return averror_from_vg(ret);
    }
    return 0;
}

/* Copy the options vg_stylize_open()/vg_stylize_update() read into @ss. */
static void stylize_settings(VisgenContext *s, VgStylizeSettings *ss)
{
    vg_stylize_default_settings(ss);
    ss->model           = s->model;
    ss->vae             = s->vae;
    ss->taesd_encoder   = s->taesd_encoder;
    ss->taesd_decoder   = s->taesd_decoder;
    ss->tokenizer       = s->tokenizer;
    ss->prompt          = s->prompt;
    ss->negative_prompt = s->negative_prompt;
    ss->strength        = s->strength;
    ss->steps           = s->steps;
    ss->cfg             = s->cfg;
    ss->sampler         = s->sampler;
    ss->schedule        = s->schedule;
    ss->spacing         = s->spacing;
    ss->prediction      = s->prediction;
    ss->clip_skip       = s->clip_skip;
    ss->vae_tile        = s->vae_tile;
    ss->seed            = s->seed;
    ss->seed_policy     = s->seed_policy;
    ss->width           = s->proc_w;
    ss->height          = s->proc_h;
}

/* Options of the other mode are accepted but have no effect: say so. */
static void warn_unused(AVFilterContext *ctx)
{
    VisgenContext *s = ctx->priv;
    const char *set[32];
    char list[256] = "";
    int n = 0;

    if (s->mode == VISGEN_MODE_STYLIZE) {
        if (s->scale) set[n++] = "scale";
        if (s->tile)  set[n++] = "tile";
    } else {
        if (s->prompt)             set[n++] = "prompt";
        if (s->negative_prompt)    set[n++] = "negative_prompt";
        if (s->strength != 0.5f)   set[n++] = "strength";
        if (s->steps != 20)        set[n++] = "steps";
        if (s->cfg != 7.5f)        set[n++] = "cfg";
        if (s->sampler)            set[n++] = "sampler";
        if (s->schedule)           set[n++] = "schedule";
        if (s->spacing)            set[n++] = "spacing";
        if (s->prediction)         set[n++] = "prediction";
        if (s->seed)               set[n++] = "seed";
        if (s->seed_policy)        set[n++] = "seed_policy";
        if (s->proc_w || s->proc_h) set[n++] = "size";
        if (s->vae)                set[n++] = "vae";
        if (s->taesd_encoder)      set[n++] = "taesd_encoder";
        if (s->taesd_decoder)      set[n++] = "taesd_decoder";
        if (s->tokenizer)          set[n++] = "tokenizer";
        if (s->clip_skip)          set[n++] = "clip_skip";
        if (s->init_blend >= 0)    set[n++] = "init_blend";
        if (s->vae_tile)           set[n++] = "vae_tile";
        if (s->noise != NOISE_AUTO) set[n++] = "noise";
    }
    for (int i = 0; i < n; i++)
        av_strlcatf(list, sizeof(list), "%s%s", i ? ", " : "", set[i]);
    if (n)
        av_log(ctx, AV_LOG_WARNING, "option%s %s ignored with mode=%s\n", n > 1 ? "s" : "",
               list, s->mode == VISGEN_MODE_STYLIZE ? "stylize" : "upscale");
}

static int open_stylizer(AVFilterContext *ctx)
{
    VisgenContext *s = ctx->priv;
    VgStylizeSettings ss;
    int ret;

    if (!s->model || !strcmp(s->model, DEF_MODEL)) {
        av_log(ctx, AV_LOG_ERROR, "mode=stylize needs model=<Stable Diffusion checkpoint "
               "file or diffusers folder>\n");
        return AVERROR(EINVAL);
    }
    if (s->proc_w % 8 || s->proc_h % 8) {
        av_log(ctx, AV_LOG_ERROR, "size %dx%d: the processing size must be multiples of 8\n",
               s->proc_w, s->proc_h);
        return AVERROR(EINVAL);
    }
    stylize_settings(s, &ss);
    ret = vg_stylize_open(&s->st, s->vg, &ss);
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "cannot load diffusion model '%s': %s\n",
               s->model, vg_strerror(ret));
        return averror_from_vg(ret);
    }
    return 0;
}

/* Copy the temporal options into @ts; -1 picks the mode's default. */
static void temporal_settings(VisgenContext *s, VgTemporalSettings *ts)
{
    vg_temporal_default_settings(ts);
    ts->flow            = s->flow;
    ts->flow_preset     = s->flow_preset;
    ts->flow_downscale  = s->flow_downscale;
    /* an upscaler's output is already close to stable: a lighter mix keeps
     * its detail; diffusion needs more */
    ts->temporal        = s->temporal >= 0 ? s->temporal : s->st ? 0.5f : 0.3f;
    ts->init_blend      = !s->st ? 0.f : s->init_blend >= 0 ? s->init_blend : 0.5f;
    ts->keyint          = s->keyint;
    ts->scenecut        = s->scenecut;
    ts->key_occlusion   = s->key_occlusion;
    ts->color_coherence = s->color_coherence;
}

static int process_upscale(void *opaque, const VgImage *src, const VgImage *init,
                           float *state, VgImage *dst, int64_t index)
{
    return vg_upscale_run(((VisgenContext *)opaque)->up, src, dst);
}

/* img2img starts from @init when the temporal layer gives one; @state, with
 * noise=warped, is the initial noise carried along the motion */
static int process_stylize(void *opaque, const VgImage *src, const VgImage *init,
                           float *state, VgImage *dst, int64_t index)
{
    VgStylizer *st = ((VisgenContext *)opaque)->st;

    return state ? vg_stylize_run_noise(st, init ? init : src, dst, index, state)
                 : vg_stylize_run(st, init ? init : src, dst, index);
}

static av_cold int init(AVFilterContext *ctx)
{
    VisgenContext *s = ctx->priv;
    VgSettings vs;
    int ret;

    vg_default_settings(&vs);
    vs.n_threads       = s->threads;
    vs.log_cb          = visgen_av_log;
    vs.log_cookie      = ctx;
    vs.log_level       = visgen_log_level();
    vs.blas_autoselect = 1;
    ret = vg_open(&s->vg, &vs);
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "cannot start libvisgen: %s\n", vg_strerror(ret));
        return averror_from_vg(ret);
    }
    warn_unused(ctx);

    if (s->mode == VISGEN_MODE_STYLIZE) {
        if ((ret = open_stylizer(ctx)) < 0)
            return ret;
        s->model_scale = 1;
        av_log(ctx, AV_LOG_VERBOSE, "libvisgen %s, %s, sgemm kernel %s\n", vg_version(),
               vg_stylize_describe(s->st), vg_blas_kernel(s->vg));
        return 0;
    }

    if ((ret = open_upscaler(ctx, &s->up)) < 0)
        return ret;
    s->model_scale = vg_upscale_get_scale(s->up);
    if (s->scale && s->model_scale != s->scale) {
        av_log(ctx, AV_LOG_ERROR, "model '%s' upscales x%d, not the x%d asked for\n",
               s->model, s->model_scale, s->scale);
        return AVERROR(EINVAL);
    }
    av_log(ctx, AV_LOG_VERBOSE, "libvisgen %s, %s, sgemm kernel %s\n", vg_version(),
           vg_upscale_describe(s->up), vg_blas_kernel(s->vg));
    return 0;
}

static av_cold void uninit(AVFilterContext *ctx)
{
    VisgenContext *s = ctx->priv;

    for (int i = 0; i < s->inq_n; i++)
        av_frame_free(&s->inq[(s->inq_head + i) % s->inq_cap]);
    av_freep(&s->inq);
    vg_temporal_close(&s->tp);
    ff_visgen_conv_uninit(&s->conv);
    vg_upscale_close(&s->up);
    vg_stylize_close(&s->st);
    vg_close(&s->vg);
}

static const enum AVPixelFormat pix_fmts[] = {
    AV_PIX_FMT_YUV420P,     AV_PIX_FMT_YUV422P,     AV_PIX_FMT_YUV444P,
    AV_PIX_FMT_YUV420P10,   AV_PIX_FMT_YUV422P10,   AV_PIX_FMT_YUV444P10,
    AV_PIX_FMT_YUVJ420P,    AV_PIX_FMT_YUVJ422P,    AV_PIX_FMT_YUVJ444P,
    AV_PIX_FMT_YUVA420P,    AV_PIX_FMT_YUVA444P,    AV_PIX_FMT_NV12,
    AV_PIX_FMT_RGB24,       AV_PIX_FMT_BGR24,
    AV_PIX_FMT_RGBA,        AV_PIX_FMT_BGRA,        AV_PIX_FMT_ARGB, AV_PIX_FMT_ABGR,
    AV_PIX_FMT_GRAY8,       AV_PIX_FMT_GRAY10,
    AV_PIX_FMT_GBRP,        AV_PIX_FMT_GBRP10,      AV_PIX_FMT_GBRAP,
    AV_PIX_FMT_GBRPF32,
    AV_PIX_FMT_NONE
};

static int config_output(AVFilterLink *outlink)
{
    AVFilterContext *ctx = outlink->src;
    AVFilterLink *inlink = ctx->inputs[0];
    VisgenContext *s     = ctx->priv;
    VgTemporalSettings ts;
    VgFrameProcessor proc;
    int ret;
    int64_t w = (int64_t)inlink->w * s->model_scale;
    int64_t h = (int64_t)inlink->h * s->model_scale;

    if (w > MAX_SIZE || h > MAX_SIZE) {
        av_log(ctx, AV_LOG_ERROR, "output %"PRId64"x%"PRId64" (input %dx%d x%d) "
               "is larger than %d pixels on a side\n",
               w, h, inlink->w, inlink->h, s->model_scale, MAX_SIZE);
        return AVERROR(EINVAL);
    }
    outlink->w = w;
    outlink->h = h;
    /* Both sides scale by the same factor, so the pixel shape is unchanged. */
    outlink->sample_aspect_ratio = inlink->sample_aspect_ratio;

    ret = ff_visgen_conv_init(&s->conv, ctx, inlink->format,
                              inlink->w, inlink->h, outlink->w, outlink->h);
    if (ret < 0)
        return ret;

    temporal_settings(s, &ts);
    ts.in_w       = inlink->w;
    ts.in_h       = inlink->h;
    ts.out_w      = outlink->w;
    ts.out_h      = outlink->h;
    ts.log_cb     = visgen_av_log;
    ts.log_cookie = ctx;
    ts.log_level  = visgen_log_level();
    memset(&proc, 0, sizeof(proc));
    proc.opaque   = s;
    proc.process  = s->st ? process_stylize : process_upscale;
    /* Carried noise moves with the picture instead of staying on the
     * screen: on an 8 px/frame pan of a photo it cut E_warp to 12% of the
     * fused output with seed noise (2% of per-frame output); with little
     * motion the two are the same. */
    if (s->st && (s->noise == NOISE_WARPED ||
                  (s->noise == NOISE_AUTO && s->flow != VG_TEMPORAL_FLOW_OFF))) {
        if (s->flow == VG_TEMPORAL_FLOW_OFF) {
            av_log(ctx, AV_LOG_ERROR, "noise=warped carries the noise along the optical flow: "
                   "it needs flow=dis\n");
            return AVERROR(EINVAL);
        }
        ret = vg_stylize_noise_shape(s->st, inlink->w, inlink->h,
                                     &proc.state_c, &proc.state_h, &proc.state_w);
        if (ret < 0)
            return averror_from_vg(ret);
    }
    vg_temporal_close(&s->tp);
    if ((ret = vg_temporal_open(&s->tp, &ts, &proc)) < 0)
        return averror_from_vg(ret);

    /* at most keyint - 1 frames wait for the next keyframe, plus the one in hand */
    for (int i = 0; i < s->inq_n; i++)
        av_frame_free(&s->inq[(s->inq_head + i) % s->inq_cap]);
    av_freep(&s->inq);
    s->inq_head = s->inq_n = 0;
    s->inq_cap  = s->keyint + 2;
    s->inq      = av_calloc(s->inq_cap, sizeof(*s->inq));
    return s->inq ? 0 : AVERROR(ENOMEM);
}

static void set_meta(AVFrame *out, const char *key, const char *fmt, double v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), fmt, v);
    av_dict_set(&out->metadata, key, buf, 0);
}

/* Send every output the temporal layer has ready, each with the properties
 * of its own input frame. */
static int drain_output(AVFilterContext *ctx)
{
    AVFilterLink *outlink = ctx->outputs[0];
    VisgenContext *s      = ctx->priv;
    VgTemporalInfo info;
    VgImage res;
    int ret;

    while ((ret = vg_temporal_receive(s->tp, &res, &info)) == 0) {
        AVFrame *in, *out;

        if (!s->inq_n)
            return AVERROR_BUG;
        in = s->inq[s->inq_head];
        s->inq[s->inq_head] = NULL;
        s->inq_head = (s->inq_head + 1) % s->inq_cap;
        s->inq_n--;

        out = ff_get_video_buffer(outlink, outlink->w, outlink->h);
        if (!out) {
            av_frame_free(&in);
            return AVERROR(ENOMEM);
        }
        if ((ret = av_frame_copy_props(out, in)) < 0 ||
            (ret = ff_visgen_conv_output_from(&s->conv, &res, in, out)) < 0) {
            av_frame_free(&in);
            av_frame_free(&out);
            return ret;
        }
        av_frame_free(&in);
        set_meta(out, "lavfi.visgen.keyframe", "%.0f", info.keyframe);
        if (s->flow != VG_TEMPORAL_FLOW_OFF) {
            set_meta(out, "lavfi.visgen.scenecut", "%.0f", info.scenecut);
            set_meta(out, "lavfi.visgen.flow_mean", "%.3f", info.flow_mean);
            set_meta(out, "lavfi.visgen.occluded", "%.4f", info.occluded);
            set_meta(out, "lavfi.visgen.scene_score", "%.4f", info.scene_score);
        }
        if ((ret = ff_filter_frame(outlink, out)) < 0)
            return ret;
    }
    return ret == VG_ERR(EAGAIN) ? 0 : averror_from_vg(ret);
}

/* Queued frames come out before anything that follows a discontinuity. */
static int flush_output(AVFilterContext *ctx)
{
    VisgenContext *s = ctx->priv;
    int ret = vg_temporal_flush(s->tp);

    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "%s failed: %s\n",
               s->st ? "stylizing" : "upscaling", vg_strerror(ret));
        return averror_from_vg(ret);
    }
    return drain_output(ctx);
}

static int filter_frame(AVFilterLink *inlink, AVFrame *in)
{
    AVFilterContext *ctx   = inlink->dst;
    AVFilterLink *outlink  = ctx->outputs[0];
    VisgenContext *s       = ctx->priv;
    VgImage src;
    AVFrame *out;
    int ret;

    if (ctx->is_disabled) {
        if ((ret = flush_output(ctx)) < 0)
            goto fail;
        /* a disabled stylize frame is the input frame itself */
        if (s->st)
            return ff_filter_frame(outlink, in);
        out = ff_get_video_buffer(outlink, outlink->w, outlink->h);
        if (!out) {
            ret = AVERROR(ENOMEM);
            goto fail;
        }
        if ((ret = av_frame_copy_props(out, in)) < 0 ||
            (ret = ff_visgen_conv_bypass(&s->conv, in, out)) < 0) {
            av_frame_free(&out);
            goto fail;
        }
        av_frame_free(&in);
        return ff_filter_frame(outlink, out);
    }

    if (in->width != inlink->w || in->height != inlink->h || in->format != inlink->format) {
        av_log(ctx, AV_LOG_ERROR, "frame of %dx%d %s, the link was configured for %dx%d %s\n",
               in->width, in->height, av_get_pix_fmt_name(in->format),
               inlink->w, inlink->h, av_get_pix_fmt_name(inlink->format));
        ret = AVERROR(EINVAL);
        goto fail;
    }
    if (s->inq_n == s->inq_cap) {
        ret = AVERROR_BUG;
        goto fail;
    }
    if ((ret = ff_visgen_conv_input(&s->conv, in, &src)) < 0)
        goto fail;
    s->inq[(s->inq_head + s->inq_n++) % s->inq_cap] = in;
    ret = vg_temporal_send(s->tp, &src);
    if (ret < 0) {
        /* the library dropped this frame: so does the queue, which stays
         * in step with what is still to come out */
        s->inq_n--;
        av_frame_free(&s->inq[(s->inq_head + s->inq_n) % s->inq_cap]);
        av_log(ctx, AV_LOG_ERROR, "%s failed: %s\n",
               s->st ? "stylizing" : "upscaling", vg_strerror(ret));
        return averror_from_vg(ret);
    }
    return drain_output(ctx);

fail:
    av_frame_free(&in);
    return ret;
}

static int activate(AVFilterContext *ctx)
{
    AVFilterLink *inlink  = ctx->inputs[0];
    AVFilterLink *outlink = ctx->outputs[0];
    AVFrame *in;
    int64_t pts;
    int ret, status;

    FF_FILTER_FORWARD_STATUS_BACK(outlink, inlink);

    ret = ff_inlink_consume_frame(inlink, &in);
    if (ret < 0)
        return ret;
    if (ret > 0) {
        if ((ret = filter_frame(inlink, in)) < 0)
            return ret;
        /* a frame may only have joined the queue: come back to ask for more */
        ff_filter_set_ready(ctx, 100);
        return 0;
    }

    /* end of stream: the frames waiting for a keyframe go out first */
    if (ff_inlink_acknowledge_status(inlink, &status, &pts)) {
        if ((ret = flush_output(ctx)) < 0)
            return ret;
        ff_outlink_set_status(outlink, status, pts);
        return 0;
    }
    FF_FILTER_FORWARD_WANTED(outlink, inlink);

    return FFERROR_NOT_READY;
}

/* Prompts, strength, cfg, seed and seed_policy change between frames; the
 * old values stay when the library refuses the new ones. */
static int stylize_command(AVFilterContext *ctx, const char *cmd, const char *args,
                           char *res, int res_len, int flags)
{
    VisgenContext *s = ctx->priv;
    char *old_prompt = NULL, *old_neg = NULL;
    float old_strength = s->strength, old_cfg = s->cfg;
    int64_t old_seed   = s->seed;
    int old_policy     = s->seed_policy;
    VgStylizeSettings ss;
    int ret;

    if ((s->prompt && !(old_prompt = av_strdup(s->prompt))) ||
        (s->negative_prompt && !(old_neg = av_strdup(s->negative_prompt)))) {
        ret = AVERROR(ENOMEM);
        goto end;
    }
    if ((ret = ff_filter_process_command(ctx, cmd, args, res, res_len, flags)) < 0)
        goto end;
    stylize_settings(s, &ss);
    ret = vg_stylize_update(s->st, &ss);
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "command %s '%s' refused: %s\n", cmd, args, vg_strerror(ret));
        FFSWAP(char *, s->prompt, old_prompt);
        FFSWAP(char *, s->negative_prompt, old_neg);
        s->strength    = old_strength;
        s->cfg         = old_cfg;
        s->seed        = old_seed;
        s->seed_policy = old_policy;
        ret = averror_from_vg(ret);
    }
end:
    av_free(old_prompt);
    av_free(old_neg);
    return ret;
}

static int is_temporal_option(const char *cmd)
{
    static const char *const names[] = { "temporal", "init_blend", "scenecut",
                                         "key_occlusion", "color_coherence" };

    for (int i = 0; i < FF_ARRAY_ELEMS(names); i++)
        if (!strcmp(cmd, names[i]))
            return 1;
    return 0;
}

/* temporal, init_blend, scenecut, key_occlusion, color_coherence: the old
 * values stay when the library refuses the new ones. */
static int temporal_command(AVFilterContext *ctx, const char *cmd, const char *args,
                            char *res, int res_len, int flags)
{
    VisgenContext *s = ctx->priv;
    float old_t = s->temporal, old_ib = s->init_blend, old_sc = s->scenecut;
    float old_ko = s->key_occlusion;
    int old_cc = s->color_coherence;
    VgTemporalSettings ts;
    int ret;

    if ((ret = ff_filter_process_command(ctx, cmd, args, res, res_len, flags)) < 0)
        return ret;
    if (!s->tp)
        return 0;
    temporal_settings(s, &ts);
    if ((ret = vg_temporal_update(s->tp, &ts)) < 0) {
        s->temporal        = old_t;
        s->init_blend      = old_ib;
        s->scenecut        = old_sc;
        s->key_occlusion   = old_ko;
        s->color_coherence = old_cc;
        return averror_from_vg(ret);
    }
    return 0;
}

static int process_command(AVFilterContext *ctx, const char *cmd, const char *args,
                           char *res, int res_len, int flags)
{
    VisgenContext *s = ctx->priv;
    VgUpscaler *up   = NULL;
    int old_tile     = s->tile;
    int ret;

    if (is_temporal_option(cmd))
        return temporal_command(ctx, cmd, args, res, res_len, flags);
    if (s->st)
        return stylize_command(ctx, cmd, args, res, res_len, flags);

    ret = ff_filter_process_command(ctx, cmd, args, res, res_len, flags);
    if (ret < 0 || s->tile == old_tile)
        return ret;

    /* The tile size is fixed when the upscaler is made: load a new one and
     * keep the old one if that fails. The scale stays the model's. */
    if ((ret = open_upscaler(ctx, &up)) < 0) {
        s->tile = old_tile;
        return ret;
    }
    vg_upscale_close(&s->up);
    s->up = up;
    return 0;
}

static const AVFilterPad visgen_inputs[] = {
    {
        .name = "default",
        .type = AVMEDIA_TYPE_VIDEO,
    },
};

static const AVFilterPad visgen_outputs[] = {
    {
        .name         = "default",
        .type         = AVMEDIA_TYPE_VIDEO,
        .config_props = config_output,
    },
};

const AVFilter ff_vf_visgen = {
    .name            = "visgen",
    .description     = NULL_IF_CONFIG_SMALL("Upscale or stylize video with neural networks (libvisgen)."),
    .priv_size       = sizeof(VisgenContext),
    .priv_class      = &visgen_class,
    .init            = init,
    .uninit          = uninit,
    .activate        = activate,
    FILTER_INPUTS(visgen_inputs),
    FILTER_OUTPUTS(visgen_outputs),
    FILTER_PIXFMTS_ARRAY(pix_fmts),
    .process_command = process_command,
    .flags           = AVFILTER_FLAG_SUPPORT_TIMELINE_INTERNAL,
};
