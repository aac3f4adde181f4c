/*
 * Decoding and PNG encoding through FFmpeg's libraries; see media.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "tools/visgen/media.h"

/* As the FFmpeg filter converts (filter/visgen_conv.c): full chroma
 * interpolation and accurate rounding. */
#define SWS_FLAGS (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP)

struct VgmReader {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;      /* decoded, in the stream's format */
    AVFrame *rgb;        /* converted: packed RGB24, or native-endian RGB48 */
    struct SwsContext *sws;
    int stream;
    int w, h;
    int pending;         /* frame holds a decoded frame not returned yet */
    int flushing;        /* demuxer at its end, decoder being drained */
    int n_read;
};

static int fail(const char *path, const char *why, int averr)
{
    if (averr)
        fprintf(stderr, "visgen: %s: %s: %s\n", path, why, av_err2str(averr));
    else
        fprintf(stderr, "visgen: %s: %s\n", path, why);
    return -1;
}

/* libav*'s own warnings (deprecated yuvj formats, probing guesses) would
 * bury our one-line errors; its errors still show. */
static void quiet_libav(void)
{
    if (av_log_get_level() > AV_LOG_ERROR)
        av_log_set_level(AV_LOG_ERROR);
}

/* Next decoded frame into r->frame: 1, 0 at the end, -1 on error. */
static int decode_next(VgmReader *r)
{
    for (;;) {
        int ret = avcodec_receive_frame(r->dec, r->frame);
        if (ret >= 0)
            return 1;
        if (ret == AVERROR_EOF)
            return 0;
        if (ret != AVERROR(EAGAIN))
            return fail(r->path, "cannot decode", ret);
        if (r->flushing)
            return 0;
        ret = av_read_frame(r->fmt, r->pkt);
        if (ret == AVERROR_EOF) {
            r->flushing = 1;
            ret = avcodec_send_packet(r->dec, NULL);
        } else if (ret < 0) {
            return fail(r->path, "cannot read", ret);
        } else {
            if (r->pkt->stream_index == r->stream)
                ret = avcodec_send_packet(r->dec, r->pkt);
            av_packet_unref(r->pkt);
        }
        if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
            return fail(r->path, "cannot decode", ret);
    }
}

/* The deprecated full-range "yuvj" formats make swscale warn on every
 * context; the plain format plus full range (applied by
 * sws_setColorspaceDetails below) converts the same. */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full_range)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full_range = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full_range = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full_range = 1; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full_range = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full_range = 1; return AV_PIX_FMT_YUV411P;
    default: return f;
    }
}

/* Deeper than 8 bits per component (so it is converted to RGB48). */
static int is_deep(const AVPixFmtDescriptor *d)
{
    for (int i = 0; i < d->nb_components; i++)
        if (d->comp[i].depth > 8)
            return 1;
    return 0;
}

/* Converts r->frame into r->rgb. 8-bit sources go to RGB24 because swscale
 * copies RGB24/RGBA/gray8 to it exactly, where RGB24 -> RGB48 or float is
 * off by rounding for most values. */
static int convert(VgmReader *r)
{
    AVFrame *f = r->frame;
    int full = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat src = plain_format(f->format, &full);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src);
    enum AVPixelFormat dst = d && is_deep(d) ? AV_PIX_FMT_RGB48 : AV_PIX_FMT_RGB24;

    if (f->width != r->w || f->height != r->h) {
        fprintf(stderr, "visgen: %s: frame %d is %dx%d, the stream started at %dx%d\n",
                r->path, r->n_read, f->width, f->height, r->w, r->h);
        return -1;
    }
    if (r->rgb->format != dst) {
        av_frame_unref(r->rgb);
        r->rgb->format = dst;
        r->rgb->width = r->w;
        r->rgb->height = r->h;
        if (av_frame_get_buffer(r->rgb, 0) < 0)
            return fail(r->path, "out of memory", 0);
    }
    r->sws = sws_getCachedContext(r->sws, r->w, r->h, src, r->w, r->h, dst,
                                  SWS_FLAGS, NULL, NULL, NULL);
    if (!r->sws || !d) {
        fprintf(stderr, "visgen: %s: cannot convert %s frames to RGB\n", r->path,
                d ? d->name : "unknown");
        return -1;
    }
    if (!(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3) {
        /* Unspecified matrices get swscale's default (BT.601), as ffmpeg does. */
        int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)f->colorspace;
        sws_setColorspaceDetails(r->sws, sws_getCoefficients(cs), full,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, r->h,
              r->rgb->data, r->rgb->linesize);
    return 0;
}

int vgm_open(VgmReader **pr, const char *path)
{
    const AVCodec *codec = NULL;
    VgmReader *r;
    int ret;

    *pr = NULL;
    quiet_libav();
    if (!(r = calloc(1, sizeof(*r))) || !(r->path = strdup(path)) ||
        !(r->pkt = av_packet_alloc()) || !(r->frame = av_frame_alloc()) ||
        !(r->rgb = av_frame_alloc())) {
        fail(path, "out of memory", 0);
        goto error;
    }
    if ((ret = avformat_open_input(&r->fmt, path, NULL, NULL)) < 0) {
        fail(path, "cannot open", ret);
        goto error;
    }
    if ((ret = avformat_find_stream_info(r->fmt, NULL)) < 0) {
        fail(path, "cannot read stream information", ret);
        goto error;
    }
    ret = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret < 0) {
        fail(path, ret == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video stream"
                                                    : "no picture or video stream", 0);
        goto error;
    }
    r->stream = ret;
    if (!(r->dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(r->dec, r->fmt->streams[r->stream]->codecpar) < 0) {
        fail(path, "out of memory", 0);
        goto error;
    }
    if ((ret = avcodec_open2(r->dec, codec, NULL)) < 0) {
        fail(path, "cannot open the decoder", ret);
        goto error;
    }
    if ((ret = decode_next(r)) <= 0) {
        if (!ret)
            fail(path, "no frames", 0);
        goto error;
    }
    r->pending = 1;
    r->w = r->frame->width;
    r->h = r->frame->height;
    if (r->w <= 0 || r->h <= 0 || r->w > 16384 || r->h > 16384) {
        fprintf(stderr, "visgen: %s: frame size %dx%d not supported (1..16384)\n", path,
                r->w, r->h);
        goto error;
    }
    r->rgb->format = AV_PIX_FMT_NONE;
    *pr = r;
    return 0;
error:
    vgm_close(&r);
    return -1;
}

int vgm_width(const VgmReader *r) { return r->w; }
int vgm_height(const VgmReader *r) { return r->h; }
int vgm_frames_read(const VgmReader *r) { return r->n_read; }

/* r->rgb into the caller's planes. Gray is summed on the 8-bit scale, so
 * 8-bit sources give the same floats as 0.299f * R + 0.587f * G + 0.114f * B
 * on the integers. */
static void to_float(const VgmReader *r, VgImage *img, float *gray)
{
    int deep = r->rgb->format == AV_PIX_FMT_RGB48;
    float max = deep ? 65535.0f : 255.0f, to255 = deep ? 255.0f / 65535.0f : 1.0f;

    for (int y = 0; y < r->h; y++) {
        const uint8_t *row = r->rgb->data[0] + (ptrdiff_t)y * r->rgb->linesize[0];
        float *dl = gray ? gray + (size_t)y * r->w : NULL;
        float *d[3] = { NULL, NULL, NULL };

        if (img)
            for (int k = 0; k < 3; k++)
                d[k] = (float *)((char *)img->data[k] + y * img->stride[k]);
        for (int x = 0; x < r->w; x++) {
            float c[3];
            for (int k = 0; k < 3; k++) {
                c[k] = deep ? ((const uint16_t *)row)[3 * x + k] : row[3 * x + k];
                if (img)
                    d[k][x] = c[k] / max;
            }
            if (dl)
                dl[x] = 0.299f * (c[0] * to255) + 0.587f * (c[1] * to255) + 0.114f * (c[2] * to255);
        }
    }
}

int vgm_read(VgmReader *r, VgImage *img, float *gray)
{
    int ret;

    if (r->pending)
        r->pending = 0;
    else if ((ret = decode_next(r)) <= 0)
        return ret;
    if (convert(r) < 0)
        return -1;
    to_float(r, img, gray);
    av_frame_unref(r->frame);
    r->n_read++;
    return 1;
}

int vgm_count_rest(VgmReader *r)
{
    int n = r->n_read + r->pending, ret;

    r->pending = 0;
    while ((ret = decode_next(r)) > 0) {
        av_frame_unref(r->frame);
        n++;
    }
    return ret < 0 ? -1 : n;
}

void vgm_close(VgmReader **pr)
{
    VgmReader *r = *pr;

    if (!r)
        return;
    sws_freeContext(r->sws);
    av_frame_free(&r->rgb);
    av_frame_free(&r->frame);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    free(r->path);
    free(r);
    *pr = NULL;
}

int vgm_image_alloc(VgImage *img, int w, int h)
{
    memset(img, 0, sizeof(*img));
    img->width = w;
    img->height = h;
    for (int i = 0; i < 3; i++) {
        img->stride[i] = (ptrdiff_t)w * sizeof(float);
        if (!(img->data[i] = malloc((size_t)w * h * sizeof(float)))) {
            vgm_image_free(img);
            return -1;
        }
    }
    return 0;
}

void vgm_image_free(VgImage *img)
{
    for (int i = 0; i < 3; i++) {
        free(img->data[i]);
        img->data[i] = NULL;
    }
}

int vgm_load(const char *path, VgImage *rgb, float **gray, int *w, int *h)
{
    VgmReader *r = NULL;
    int ret = -1;

    if (rgb)
        memset(rgb, 0, sizeof(*rgb));
    if (gray)
        *gray = NULL;
    if (vgm_open(&r, path) < 0)
        return -1;
    if ((rgb && vgm_image_alloc(rgb, r->w, r->h) < 0) ||
        (gray && !(*gray = malloc((size_t)r->w * r->h * sizeof(float))))) {
        fail(path, "out of memory", 0);
        goto end;
    }
    ret = vgm_read(r, rgb, gray ? *gray : NULL) > 0 ? 0 : -1;
    if (w)
        *w = r->w;
    if (h)
        *h = r->h;
end:
    if (ret < 0) {
        if (rgb)
            vgm_image_free(rgb);
        if (gray) {
            free(*gray);
            *gray = NULL;
        }
    }
    vgm_close(&r);
    return ret;
}

static unsigned quantise(float v, unsigned max)
{
    /* NaN fails both comparisons and becomes 0. */
    v = v > 0 ? (v < 1 ? v : 1) : 0;
    return (unsigned)(v * max + 0.5f);
}

int vgm_write_png(const char *path, const VgImage *img, int bits)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    AVCodecContext *enc = NULL;
    AVFrame *f = NULL;
    AVPacket *pkt = NULL;
    FILE *out = NULL;
    int ret = -1, err;

    quiet_libav();
    if (!codec)
        return fail(path, "this libavcodec has no PNG encoder", 0);
    if (!(enc = avcodec_alloc_context3(codec)) || !(f = av_frame_alloc()) ||
        !(pkt = av_packet_alloc())) {
        fail(path, "out of memory", 0);
        goto end;
    }
    enc->width = img->width;
    enc->height = img->height;
    enc->pix_fmt = bits == 16 ? AV_PIX_FMT_RGB48BE : AV_PIX_FMT_RGB24;
    enc->time_base = (AVRational){ 1, 25 };
    if ((err = avcodec_open2(enc, codec, NULL)) < 0) {
        fail(path, "cannot open the PNG encoder", err);
        goto end;
    }
    f->format = enc->pix_fmt;
    f->width = img->width;
    f->height = img->height;
    if (av_frame_get_buffer(f, 0) < 0) {
        fail(path, "out of memory", 0);
        goto end;
    }
    for (int y = 0; y < img->height; y++) {
        uint8_t *d = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        for (int x = 0; x < img->width; x++) {
            for (int c = 0; c < 3; c++) {
                float v = ((const float *)((const char *)img->data[c] + y * img->stride[c]))[x];
                if (bits == 16) {
                    unsigned q = quantise(v, 65535);
                    *d++ = q >> 8;
                    *d++ = q & 255;
                } else {
                    *d++ = quantise(v, 255);
                }
            }
        }
    }
    if ((err = avcodec_send_frame(enc, f)) < 0 || (err = avcodec_send_frame(enc, NULL)) < 0 ||
        (err = avcodec_receive_packet(enc, pkt)) < 0) {
        fail(path, "cannot encode PNG", err);
        goto end;
    }
    if (!(out = fopen(path, "wb"))) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        goto end;
    }
    err = fwrite(pkt->data, 1, pkt->size, out) != (size_t)pkt->size;
    err |= fclose(out) != 0;
    out = NULL;
    if (err) {
        fprintf(stderr, "visgen: %s: write failed: %s\n", path, strerror(errno));
        goto end;
    }
    ret = 0;
end:
    if (out)
        fclose(out);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&enc);
    return ret;
}
