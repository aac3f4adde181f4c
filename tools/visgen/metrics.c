/*
 * E_warp, flicker and EPE; see metrics.h. Sums are in double: a 4K frame
 * has 25M terms.
 */
#include <math.h>

#include "tools/visgen/flo.h"
#include "tools/visgen/metrics.h"

static const float *row_of(const VgImage *img, int c, int y)
{
    return (const float *)((const char *)img->data[c] + y * img->stride[c]);
}

double vgx_ewarp(const VgWarpDSP *dsp, const VgImage *cur, const VgImage *prev,
                 const float *u, const float *v, const uint8_t *occ, float *scratch,
                 double *valid)
{
    const int w = cur->width, h = cur->height;
    double sum = 0;
    long n = 0;

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            n += !occ[(long)y * w + x];
    for (int c = 0; c < 3; c++) {
        vg_warp_plane(dsp, scratch, w, prev->data[c], prev->stride[c] / (ptrdiff_t)sizeof(float),
                      w, h, u, v, w, w, h);
        for (int y = 0; y < h; y++) {
            const float *o = row_of(cur, c, y), *wp = scratch + (long)y * w;
            const uint8_t *m = occ + (long)y * w;
            for (int x = 0; x < w; x++) {
                double d = (double)o[x] - wp[x];
                if (!m[x])
                    sum += d * d;
            }
        }
    }
    if (valid)
        *valid = (double)n / ((double)w * h);
    return n ? sum / n : NAN;
}

static double luma_sum_row(const VgImage *img, int y)
{
    const float *r = row_of(img, 0, y), *g = row_of(img, 1, y), *b = row_of(img, 2, y);
    double s = 0;

    for (int x = 0; x < img->width; x++)
        s += 0.299 * r[x] + 0.587 * g[x] + 0.114 * b[x];
    return s;
}

void vgx_flicker(const VgImage *cur, const VgImage *prev, double *mad, double *dluma)
{
    const int w = cur->width, h = cur->height;
    double sad = 0, lc = 0, lp = 0;

    for (int y = 0; y < h; y++) {
        for (int c = 0; c < 3; c++) {
            const float *a = row_of(cur, c, y), *b = row_of(prev, c, y);
            for (int x = 0; x < w; x++)
                sad += fabs((double)a[x] - b[x]);
        }
        lc += luma_sum_row(cur, y);
        lp += luma_sum_row(prev, y);
    }
    *mad = 255.0 * sad / (3.0 * w * h);
    *dluma = 255.0 * fabs(lc - lp) / ((double)w * h);
}

double vgx_epe(const float *u, const float *v, const float *gu, const float *gv, long n,
               long *known)
{
    double sum = 0;
    long k = 0;

    for (long i = 0; i < n; i++) {
        if (vgf_unknown(gu[i], gv[i]))
            continue;
        sum += hypot((double)u[i] - gu[i], (double)v[i] - gv[i]);
        k++;
    }
    *known = k;
    return k ? sum / k : NAN;
}
