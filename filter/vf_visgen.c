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
 * visgen filter: super-resolution upscaling on the CPU with libvisgen.
 */

#include <visgen/visgen.h>

#include "libavutil/internal.h"
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

enum VisgenMode {
    VISGEN_MODE_UPSCALE,
    VISGEN_MODE_NB,
};

typedef struct VisgenContext {
    const AVClass *class;

    int mode;
    char *model;
    int scale;
    int tile;
    int threads;

    VgCtx *vg;
    VgUpscaler *up;
    int model_scale;        ///< factor the loaded model applies
    VisgenConv conv;
} VisgenContext;

#define OFFSET(x) offsetof(VisgenContext, x)
#define FLAGS AV_OPT_FLAG_FILTERING_PARAM | AV_OPT_FLAG_VIDEO_PARAM
#define TFLAGS FLAGS | AV_OPT_FLAG_RUNTIME_PARAM

static const AVOption visgen_options[] = {
    { "mode",    "what to do with each frame", OFFSET(mode), AV_OPT_TYPE_INT,
      { .i64 = VISGEN_MODE_UPSCALE }, 0, VISGEN_MODE_NB - 1, FLAGS, "mode" },
        { "upscale", "super-resolution upscaling by the model's factor", 0, AV_OPT_TYPE_CONST,
          { .i64 = VISGEN_MODE_UPSCALE }, 0, 0, FLAGS, "mode" },
    { "model",   "built-in model name (default, esrgan-slim, esrgan-medium, esrgan-thick) "
                 "or path to a TF.js model.json or Real-ESRGAN .pth/.safetensors",
      OFFSET(model), AV_OPT_TYPE_STRING, { .str = "default" }, 0, 0, FLAGS },
    { "scale",   "upscaling factor, 0 = the model's own", OFFSET(scale), AV_OPT_TYPE_INT,
      { .i64 = 0 }, 0, 16, FLAGS },
    { "tile",    "tile edge in input pixels, 0 = automatic (bounded memory)",
      OFFSET(tile), AV_OPT_TYPE_INT, { .i64 = 0 }, 0, MAX_SIZE, TFLAGS },
    { "threads", "worker threads, 0 = one per CPU", OFFSET(threads), AV_OPT_TYPE_INT,
      { .i64 = 0 }, 0, 1024, FLAGS },
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

    ff_visgen_conv_uninit(&s->conv);
    vg_upscale_close(&s->up);
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

    return ff_visgen_conv_init(&s->conv, ctx, inlink->format,
                               inlink->w, inlink->h, outlink->w, outlink->h);
}

static int filter_frame(AVFilterLink *inlink, AVFrame *in)
{
    AVFilterContext *ctx   = inlink->dst;
    AVFilterLink *outlink  = ctx->outputs[0];
    VisgenContext *s       = ctx->priv;
    VgImage src, dst;
    AVFrame *out;
    int ret;

    out = ff_get_video_buffer(outlink, outlink->w, outlink->h);
    if (!out) {
        ret = AVERROR(ENOMEM);
        goto fail;
    }
    if ((ret = av_frame_copy_props(out, in)) < 0)
        goto fail;

    if (ctx->is_disabled) {
        ret = ff_visgen_conv_bypass(&s->conv, in, out);
    } else {
        if ((ret = ff_visgen_conv_input(&s->conv, in, &src)) < 0 ||
            (ret = ff_visgen_conv_output_image(&s->conv, out, &dst)) < 0)
            goto fail;
        ret = vg_upscale_run(s->up, &src, &dst);
        if (ret < 0) {
            av_log(ctx, AV_LOG_ERROR, "upscaling failed: %s\n", vg_strerror(ret));
            ret = averror_from_vg(ret);
            goto fail;
        }
        ret = ff_visgen_conv_output(&s->conv, in, out);
    }
    if (ret < 0)
        goto fail;

    av_frame_free(&in);
    return ff_filter_frame(outlink, out);

fail:
    av_frame_free(&in);
    av_frame_free(&out);
    return ret;
}

static int activate(AVFilterContext *ctx)
{
    AVFilterLink *inlink  = ctx->inputs[0];
    AVFilterLink *outlink = ctx->outputs[0];
    AVFrame *in;
    int ret;

    FF_FILTER_FORWARD_STATUS_BACK(outlink, inlink);

    ret = ff_inlink_consume_frame(inlink, &in);
    if (ret < 0)
        return ret;
    if (ret > 0)
        return filter_frame(inlink, in);

    FF_FILTER_FORWARD_STATUS(inlink, outlink);
    FF_FILTER_FORWARD_WANTED(outlink, inlink);

    return FFERROR_NOT_READY;
}

static int process_command(AVFilterContext *ctx, const char *cmd, const char *args,
                           char *res, int res_len, int flags)
{
    VisgenContext *s = ctx->priv;
    VgUpscaler *up   = NULL;
    int old_tile     = s->tile;
    int ret;

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
    .description     = NULL_IF_CONFIG_SMALL("Upscale video with a neural network (libvisgen)."),
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
