/*
 * Resizing of planar float pictures between the frame size and the
 * diffusion processing size: separable, per axis either an area average
 * (shrinking: each output sample is the mean of the input interval it
 * covers, fractional edges weighted) or bilinear interpolation with
 * half-pixel centres and clamped edges (enlarging). Same size = copy.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/pipeline.h"

typedef struct Taps {
    int *first;   /* [n_out] first input index */
    int *count;   /* [n_out] */
    float *w;     /* [n_out * max] */
    int max;
} Taps;

static void taps_free(Taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

static int taps_init(Taps *t, int n_in, int n_out)
{
    const double scale = (double)n_in / n_out;

    t->max = n_out < n_in ? (int)ceil(scale) + 2 : 2;
    t->first = malloc(sizeof(int) * n_out);
    t->count = malloc(sizeof(int) * n_out);
    t->w = calloc((size_t)n_out * t->max, sizeof(float));
    if (!t->first || !t->count || !t->w) {
        taps_free(t);
        return VG_ERR(ENOMEM);
    }
    for (int o = 0; o < n_out; o++) {
        float *w = t->w + (size_t)o * t->max;
        if (n_out < n_in) {
            const double a = o * scale, b = (o + 1) * scale;
            int i0 = (int)floor(a), n = 0;
            for (int i = i0; i < n_in && i < b; i++) {
                const double cov = fmin(b, i + 1.0) - fmax(a, (double)i);
                if (cov > 0 && n < t->max)
                    w[n++] = (float)(cov / scale);
                else if (!n)
                    i0++;
            }
            t->first[o] = i0;
            t->count[o] = n;
        } else {
            double x = (o + 0.5) * scale - 0.5;
            x = fmin(fmax(x, 0.0), n_in - 1.0);
            int i0 = (int)floor(x);
            if (i0 >= n_in - 1)
                i0 = n_in - 1;
            const double f = x - i0;
            t->first[o] = i0;
            t->count[o] = i0 + 1 < n_in ? 2 : 1;
            w[0] = (float)(1.0 - f);
            w[1] = (float)f;
            if (t->count[o] == 1)
                w[0] = 1.f;
        }
    }
    return 0;
}

int vg_sd_resize(const float *src, int sw, int sh, ptrdiff_t sstride, float *dst, int dw, int dh,
                 ptrdiff_t dstride)
{
    Taps tx = { 0 }, ty = { 0 };
    float *tmp = NULL;   /* [sh, dw]: rows resized horizontally */
    int ret;

    if (sw < 1 || sh < 1 || dw < 1 || dh < 1)
        return VG_ERR(EINVAL);
    if (sw == dw && sh == dh) {
        for (int y = 0; y < sh; y++)
            memcpy((char *)dst + y * dstride, (const char *)src + y * sstride,
                   sizeof(float) * sw);
        return 0;
    }
    if ((ret = taps_init(&tx, sw, dw)) < 0 || (ret = taps_init(&ty, sh, dh)) < 0)
        goto end;
    if (!(tmp = malloc(sizeof(float) * (size_t)sh * dw))) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    for (int y = 0; y < sh; y++) {
        const float *s = (const float *)((const char *)src + y * sstride);
        for (int x = 0; x < dw; x++) {
            const float *w = tx.w + (size_t)x * tx.max;
            float acc = 0.f;
            for (int k = 0; k < tx.count[x]; k++)
                acc += w[k] * s[tx.first[x] + k];
            tmp[(size_t)y * dw + x] = acc;
        }
    }
    for (int y = 0; y < dh; y++) {
        float *d = (float *)((char *)dst + y * dstride);
        const float *w = ty.w + (size_t)y * ty.max;
        for (int x = 0; x < dw; x++)
            d[x] = 0.f;
        for (int k = 0; k < ty.count[y]; k++) {
            const float *s = tmp + (size_t)(ty.first[y] + k) * dw;
            for (int x = 0; x < dw; x++)
                d[x] += w[k] * s[x];
        }
    }
    ret = 0;
end:
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return ret;
}
