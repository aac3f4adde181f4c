/*
 * Middlebury .flo reading and writing; see flo.h. Bytes are packed by hand
 * so the files are little-endian whatever the host is.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/visgen/flo.h"

#define FLO_TAG 202021.25f
/* Middlebury's limit on a side; also bounds the allocation of a bad header. */
#define FLO_MAX_SIDE 99999

static void put32(uint8_t *b, uint32_t x)
{
    b[0] = x;
    b[1] = x >> 8;
    b[2] = x >> 16;
    b[3] = x >> 24;
}

static uint32_t get32(const uint8_t *b)
{
    return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t float_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float bits_float(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

int vgf_unknown(float u, float v)
{
    /* NaN fails the comparison, so it counts as unknown too. */
    return !(fabsf(u) <= 1e9f && fabsf(v) <= 1e9f);
}

int vgf_write_flo(const char *path, const float *u, const float *v, int w, int h)
{
    uint8_t head[12], *row = malloc((size_t)w * 8);
    FILE *f = NULL;
    int err = 0;

    if (!row) {
        fprintf(stderr, "visgen: %s: out of memory\n", path);
        return -1;
    }
    if (!(f = fopen(path, "wb"))) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        free(row);
        return -1;
    }
    put32(head, float_bits(FLO_TAG));
    put32(head + 4, (uint32_t)w);
    put32(head + 8, (uint32_t)h);
    err |= fwrite(head, 1, 12, f) != 12;
    for (int y = 0; y < h && !err; y++) {
        for (int x = 0; x < w; x++) {
            put32(row + 8 * x, float_bits(u[(size_t)y * w + x]));
            put32(row + 8 * x + 4, float_bits(v[(size_t)y * w + x]));
        }
        err |= fwrite(row, 8, (size_t)w, f) != (size_t)w;
    }
    err |= fclose(f) != 0;
    free(row);
    if (err) {
        fprintf(stderr, "visgen: %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int vgf_read_flo(const char *path, float **pu, float **pv, int *pw, int *ph)
{
    uint8_t head[12], *row = NULL;
    float *u = NULL, *v = NULL;
    FILE *f = fopen(path, "rb");
    uint32_t w, h;

    *pu = *pv = NULL;
    if (!f) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fread(head, 1, 12, f) != 12 || get32(head) != float_bits(FLO_TAG)) {
        fprintf(stderr, "visgen: %s: not a Middlebury .flo file (no PIEH tag)\n", path);
        goto error;
    }
    w = get32(head + 4);
    h = get32(head + 8);
    if (w < 1 || h < 1 || w > FLO_MAX_SIDE || h > FLO_MAX_SIDE) {
        fprintf(stderr, "visgen: %s: bad .flo size %dx%d\n", path, (int32_t)w, (int32_t)h);
        goto error;
    }
    if (!(row = malloc((size_t)w * 8)) || !(u = malloc((size_t)w * h * 4)) ||
        !(v = malloc((size_t)w * h * 4))) {
        fprintf(stderr, "visgen: %s: out of memory for %ux%u flow\n", path, w, h);
        goto error;
    }
    for (uint32_t y = 0; y < h; y++) {
        if (fread(row, 8, w, f) != w) {
            fprintf(stderr, "visgen: %s: truncated (%ux%u flow needs %zu bytes)\n", path, w, h,
                    12 + (size_t)w * h * 8);
            goto error;
        }
        for (uint32_t x = 0; x < w; x++) {
            u[(size_t)y * w + x] = bits_float(get32(row + 8 * x));
            v[(size_t)y * w + x] = bits_float(get32(row + 8 * x + 4));
        }
    }
    fclose(f);
    free(row);
    *pu = u;
    *pv = v;
    *pw = (int)w;
    *ph = (int)h;
    return 0;
error:
    fclose(f);
    free(row);
    free(u);
    free(v);
    return -1;
}
