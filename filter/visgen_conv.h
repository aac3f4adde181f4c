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

#ifndef AVFILTER_VISGEN_CONV_H
#define AVFILTER_VISGEN_CONV_H

#include <visgen/visgen.h>

#include "libavutil/frame.h"
#include "libavutil/pixfmt.h"

/*
 * libvisgen takes planar R, G, B floats in 0..1. Frames of any supported
 * format go through GBR(A)PF32 with libswscale; GBRPF32 frames are mapped
 * directly, so float input reaches the library bit-exact. Alpha, when the
 * format has it, is resized bicubically beside the network's RGB output.
 */
typedef struct VisgenConv {
    void *log_ctx;
    enum AVPixelFormat fmt;         ///< format of input and output frames
    int in_w, in_h, out_w, out_h;
    int direct;                     ///< fmt is native GBRPF32: no conversion
    int has_alpha;
    int is_yuv;
    struct SwsContext *to_mid;      ///< gray only: fmt -> GBRP(16), see visgen_conv.c
    struct SwsContext *to_float;    ///< fmt (or GBRP(16)) in size -> GBR(A)PF32 in size
    struct SwsContext *from_float;  ///< GBR(A)PF32 out size -> fmt out size
    struct SwsContext *alpha;       ///< GRAYF32 in size -> GRAYF32 out size
    struct SwsContext *bypass;      ///< fmt in size -> fmt out size, bicubic
    AVFrame *fmid;                  ///< GBRP(16) frame for gray input, owned
    AVFrame *fin, *fout;            ///< float frames, owned
    int cs, range;                  ///< colorspace details last given to sws
} VisgenConv;

/**
 * Set up conversions for frames of @fmt, @in_w x @in_h in and
 * @out_w x @out_h out. @log_ctx remains with the caller.
 */
int ff_visgen_conv_init(VisgenConv *c, void *log_ctx, enum AVPixelFormat fmt,
                        int in_w, int in_h, int out_w, int out_h);

/** Free everything ff_visgen_conv_init() allocated; safe on a zeroed struct. */
void ff_visgen_conv_uninit(VisgenConv *c);

/**
 * Convert @in to float and point @img at the result. @img's planes stay
 * valid until the next call; they are owned by @c (or by @in when direct).
 */
int ff_visgen_conv_input(VisgenConv *c, const AVFrame *in, VgImage *img);

/**
 * Point @img at the float planes the upscaler should fill for @out
 * (@out's own planes when direct).
 */
int ff_visgen_conv_output_image(VisgenConv *c, AVFrame *out, VgImage *img);

/**
 * After the upscaler filled the image from ff_visgen_conv_output_image(),
 * resize the alpha of @in (if any) and write the result into @out.
 */
int ff_visgen_conv_output(VisgenConv *c, const AVFrame *in, AVFrame *out);

/**
 * Write the library's image @res (out size, remains with the caller) into
 * @out, with the alpha of @in (if any), as ff_visgen_conv_output() does.
 */
int ff_visgen_conv_output_from(VisgenConv *c, const VgImage *res, const AVFrame *in, AVFrame *out);

/** Resize @in into @out with bicubic swscale only (the timeline-disabled path). */
int ff_visgen_conv_bypass(VisgenConv *c, const AVFrame *in, AVFrame *out);

#endif /* AVFILTER_VISGEN_CONV_H */
