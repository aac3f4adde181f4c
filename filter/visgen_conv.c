/*
 * Frame <-> VgImage conversion for the visgen filter.
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

#include <string.h>

#include "libavutil/error.h"
#include "libavutil/imgutils.h"
#include "libavutil/log.h"
#include "libavutil/pixdesc.h"
#include "libswscale/swscale.h"

#include "visgen_conv.h"

/* Same-size format conversions: full chroma interpolation and accurate
 * rounding, so a frame that goes through float and back is not softened. */
#define CONV_FLAGS (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP)

static AVFrame *alloc_frame(enum AVPixelFormat fmt, int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = fmt;
    f->width  = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        av_frame_free(&f);
    return f;
}

static struct SwsContext *get_sws(VisgenConv *c, const char *what,
                                  int sw, int sh, enum AVPixelFormat sf,
                                  int dw, int dh, enum AVPixelFormat df, int flags)
{
    struct SwsContext *s = sws_getContext(sw, sh, sf, dw, dh, df, flags,
                                          NULL, NULL, NULL);
    if (!s)
        av_log(c->log_ctx, AV_LOG_ERROR, "cannot convert %s %dx%d to %s %dx%d (%s)\n",
               av_get_pix_fmt_name(sf), sw, sh, av_get_pix_fmt_name(df), dw, dh, what);
    return s;
}

/* GBR(A)PF32 stores G, B, R(, A); VgImage wants R, G, B. */
static void map_image(VgImage *img, AVFrame *f)
{
    static const int plane_of[3] = { 2, 0, 1 };

    img->width  = f->width;
    img->height = f->height;
    for (int i = 0; i < 3; i++) {
        img->data[i]   = (float *)f->data[plane_of[i]];
        img->stride[i] = f->linesize[plane_of[i]];
    }
}

int ff_visgen_conv_init(VisgenConv *c, void *log_ctx, enum AVPixelFormat fmt,
                        int in_w, int in_h, int out_w, int out_h)
{
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);
    enum AVPixelFormat ffmt, src_fmt = fmt;
    int ret = AVERROR(EINVAL);

    ff_visgen_conv_uninit(c);
    if (!desc)
        return AVERROR(EINVAL);
    c->log_ctx   = log_ctx;
    c->fmt       = fmt;
    c->in_w      = in_w;
    c->in_h      = in_h;
    c->out_w     = out_w;
    c->out_h     = out_h;
    c->direct    = fmt == AV_PIX_FMT_GBRPF32;
    c->has_alpha = !!(desc->flags & AV_PIX_FMT_FLAG_ALPHA);
    c->is_yuv    = !(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3;
    c->cs        = -1;
    c->range     = -1;
    ffmt = c->has_alpha ? AV_PIX_FMT_GBRAPF32 : AV_PIX_FMT_GBRPF32;

    c->bypass = get_sws(c, "bypass", in_w, in_h, fmt, out_w, out_h, fmt, SWS_BICUBIC);
    if (!c->bypass)
        goto fail;
    if (c->direct)
        return 0;

    /* swscale 5.1 shifts gray -> GBRPF32 by several percent, while gray ->
     * GBRP(16) and GBRP(16) -> GBRPF32 are exact: go through the latter. */
    if (desc->nb_components == 1) {
        enum AVPixelFormat mid = desc->comp[0].depth > 8 ? AV_PIX_FMT_GBRP16 : AV_PIX_FMT_GBRP;
        c->to_mid = get_sws(c, "input", in_w, in_h, fmt, in_w, in_h, mid, CONV_FLAGS);
        if (!c->to_mid)
            goto fail;
        if (!(c->fmid = alloc_frame(mid, in_w, in_h))) {
            ret = AVERROR(ENOMEM);
            goto fail;
        }
        src_fmt = mid;
    }
    c->to_float   = get_sws(c, "input", in_w, in_h, src_fmt, in_w, in_h, ffmt, CONV_FLAGS);
    c->from_float = get_sws(c, "output", out_w, out_h, ffmt, out_w, out_h, fmt, CONV_FLAGS);
    if (!c->to_float || !c->from_float)
        goto fail;
    /* same size: a plain copy (swscale 5.1's unscaled GRAYF32 copy moves
     * width bytes per row, not width floats) */
    if (c->has_alpha && (in_w != out_w || in_h != out_h)) {
        c->alpha = get_sws(c, "alpha", in_w, in_h, AV_PIX_FMT_GRAYF32,
                           out_w, out_h, AV_PIX_FMT_GRAYF32, SWS_BICUBIC);
        if (!c->alpha)
            goto fail;
    }
    c->fin  = alloc_frame(ffmt, in_w, in_h);
    c->fout = alloc_frame(ffmt, out_w, out_h);
    if (!c->fin || !c->fout) {
        ret = AVERROR(ENOMEM);
        goto fail;
    }
    return 0;

fail:
    ff_visgen_conv_uninit(c);
    return ret;
}

void ff_visgen_conv_uninit(VisgenConv *c)
{
    sws_freeContext(c->to_mid);
    sws_freeContext(c->to_float);
    sws_freeContext(c->from_float);
    sws_freeContext(c->alpha);
    sws_freeContext(c->bypass);
    c->to_mid = c->to_float = c->from_float = c->alpha = c->bypass = NULL;
    av_frame_free(&c->fmid);
    av_frame_free(&c->fin);
    av_frame_free(&c->fout);
}

/* YUV <-> RGB matrix and range follow the frame's tags, the same ones both
 * ways, so untouched pixels come back where they were. */
static int update_colorspace(VisgenConv *c, const AVFrame *f)
{
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(c->fmt);
    int cs, range, ret;
    const int *coeffs;

    if (!c->is_yuv)
        return 0;
    cs    = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : f->colorspace;
    range = f->color_range == AVCOL_RANGE_JPEG || strstr(desc->name, "yuvj");
    if (cs == c->cs && range == c->range)
        return 0;
    coeffs = sws_getCoefficients(cs);
    ret = sws_setColorspaceDetails(c->to_float, coeffs, range, coeffs, 1,
                                   0, 1 << 16, 1 << 16);
    if (ret >= 0)
        ret = sws_setColorspaceDetails(c->from_float, coeffs, 1, coeffs, range,
                                       0, 1 << 16, 1 << 16);
    if (ret < 0) {
        av_log(c->log_ctx, AV_LOG_ERROR, "swscale refused colorspace %s\n",
               av_color_space_name(f->colorspace));
        return AVERROR(EINVAL);
    }
    c->cs    = cs;
    c->range = range;
    return 0;
}

int ff_visgen_conv_input(VisgenConv *c, const AVFrame *in, VgImage *img)
{
    int ret;

    if (c->direct) {
        map_image(img, (AVFrame *)in);
        return 0;
    }
    if ((ret = update_colorspace(c, in)) < 0)
        return ret;
    if (c->to_mid) {
        ret = sws_scale(c->to_mid, (const uint8_t *const *)in->data, in->linesize,
                        0, c->in_h, c->fmid->data, c->fmid->linesize);
        if (ret < 0)
            return ret;
        in = c->fmid;
    }
    ret = sws_scale(c->to_float, (const uint8_t *const *)in->data, in->linesize,
                    0, c->in_h, c->fin->data, c->fin->linesize);
    if (ret < 0)
        return ret;
    map_image(img, c->fin);
    return 0;
}

int ff_visgen_conv_output_image(VisgenConv *c, AVFrame *out, VgImage *img)
{
    map_image(img, c->direct ? out : c->fout);
    return 0;
}

int ff_visgen_conv_output(VisgenConv *c, const AVFrame *in, AVFrame *out)
{
    int ret;

    if (c->direct)
        return 0;
    /* frames may wait in the filter's queue: back to the colourspace of
     * @in, not of the last frame converted */
    if ((ret = update_colorspace(c, in)) < 0)
        return ret;
    if (c->has_alpha) {
        /* frames may wait in the filter's queue: the float input of @in is
         * not necessarily the last one converted, so convert it again */
        VgImage unused;
        if ((ret = ff_visgen_conv_input(c, in, &unused)) < 0)
            return ret;
    }
    if (c->has_alpha && !c->alpha) {
        av_image_copy_plane(c->fout->data[3], c->fout->linesize[3], c->fin->data[3],
                            c->fin->linesize[3], c->out_w * sizeof(float), c->out_h);
    } else if (c->has_alpha) {
        const uint8_t *src[4] = { c->fin->data[3] };
        int src_ls[4]         = { c->fin->linesize[3] };
        uint8_t *dst[4]       = { c->fout->data[3] };
        int dst_ls[4]         = { c->fout->linesize[3] };

        ret = sws_scale(c->alpha, src, src_ls, 0, c->in_h, dst, dst_ls);
        if (ret < 0)
            return ret;
    }
    ret = sws_scale(c->from_float, (const uint8_t *const *)c->fout->data,
                    c->fout->linesize, 0, c->out_h, out->data, out->linesize);
    return ret < 0 ? ret : 0;
}

int ff_visgen_conv_bypass(VisgenConv *c, const AVFrame *in, AVFrame *out)
{
    int ret = sws_scale(c->bypass, (const uint8_t *const *)in->data, in->linesize,
                        0, c->in_h, out->data, out->linesize);
    return ret < 0 ? ret : 0;
}

int ff_visgen_conv_output_from(VisgenConv *c, const VgImage *res, const AVFrame *in, AVFrame *out)
{
    VgImage dst;
    int ret;

    if ((ret = ff_visgen_conv_output_image(c, out, &dst)) < 0)
        return ret;
    if (res->width != c->out_w || res->height != c->out_h)
        return AVERROR_BUG;
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < c->out_h; y++)
            memcpy((uint8_t *)dst.data[p] + y * dst.stride[p],
                   (const uint8_t *)res->data[p] + y * res->stride[p], c->out_w * sizeof(float));
    return ff_visgen_conv_output(c, in, out);
}
