/*
 * Pictures for the Check tests, decoded by FFmpeg's libraries through the
 * visgen tool's reader (tools/visgen/media.c), so a test reads any PNG, JPEG
 * or video frame in ../shared/data without a decoder of its own.
 *
 *   int w, h;
 *   float *g = vgt_load_gray(VG_SHARED_DATA "/images/kodim23.png", &w, &h);
 *   ck_assert_msg(g, "cannot read kodim23.png");   // why is on stderr
 *
 * 8-bit sources give exactly v / 255 (RGB) and 0.299f R + 0.587f G + 0.114f B
 * on the 8-bit integers (gray), the formula temporal/flow.h expects.
 */
#ifndef VG_TESTS_COMMON_VGT_IMAGE_H
#define VG_TESTS_COMMON_VGT_IMAGE_H

#include "visgen/visgen.h"

/* The first frame of @path as gray floats on the 0..255 scale, w * h with
 * rows *@w apart (malloc'ed, the caller frees it), or NULL with one line
 * naming the file and why on stderr. */
float *vgt_load_gray(const char *path, int *w, int *h);

/* The first frame of @path into @img as planar R, G, B floats 0..1 (planes
 * allocated here, rows width floats apart; free with vgt_image_free).
 * Returns 0, or -1 with one line on stderr (nothing left allocated). */
int vgt_load_rgb(const char *path, VgImage *img);

/* Frees the planes of an image from vgt_load_rgb (or a zeroed one). */
void vgt_image_free(VgImage *img);

#endif
