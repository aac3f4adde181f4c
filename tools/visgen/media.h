/*
 * Pictures and videos in and out of the visgen tool through FFmpeg's
 * libraries (libavformat, libavcodec, libswscale), so the tool reads whatever
 * FFmpeg decodes (PNG, JPEG, any video) without a decoder of its own.
 * libvisgen itself stays free of libav*: only the tool and the tests link it.
 *
 * Frames come out in the two layouts visgen works in:
 * - RGB: a VgImage (include/visgen/visgen.h), planar R, G, B floats 0..1;
 * - gray: w * h floats on the 0..255 scale, 0.299 R + 0.587 G + 0.114 B,
 *   what temporal/flow.h expects.
 * Frames are converted by libswscale (as the ffmpeg tool does: the stream's
 * matrix and range) to RGB24, or RGB48 for deeper sources, so 8-bit RGB and
 * gray sources give exactly v / 255 and the gray sum of the integers.
 *
 * Every failure prints one line "visgen: PATH: why" on stderr.
 */
#ifndef VG_TOOLS_VISGEN_MEDIA_H
#define VG_TOOLS_VISGEN_MEDIA_H

#include "visgen/visgen.h"

typedef struct VgmReader VgmReader;

/* Opens @path (read only, caller-owned) and decodes its first frame, so the
 * size is known and an empty or undecodable file fails here. Returns 0 or -1. */
int vgm_open(VgmReader **r, const char *path);

/* Size of every frame (a stream that changes size mid-way is an error). */
int vgm_width(const VgmReader *r);
int vgm_height(const VgmReader *r);

/*
 * The next frame: returns 1, 0 at the end of the stream, -1 on error.
 * @rgb: NULL, or a VgImage of the reader's size with caller-owned planes,
 * written in 0..1. @gray: NULL, or w * h caller-owned floats (row stride w),
 * written on the 0..255 scale.
 */
int vgm_read(VgmReader *r, VgImage *rgb, float *gray);

/* Frames returned by vgm_read so far. */
int vgm_frames_read(const VgmReader *r);

/* Decodes the rest of the stream and returns how many frames it had in all
 * (those already read included), or -1 on error. */
int vgm_count_rest(VgmReader *r);

/* Closes *@r (may be NULL) and sets it to NULL. */
void vgm_close(VgmReader **r);

/*
 * The first frame of @path: into @rgb (planes allocated here, free with
 * vgm_image_free) and/or *@gray (malloc'ed here, caller frees), its size
 * into *@w, *@h; any of them may be NULL. Returns 0 or -1.
 */
int vgm_load(const char *path, VgImage *rgb, float **gray, int *w, int *h);

/* Writes @img (read only, values clamped to 0..1) as a PNG with @bits 8
 * (RGB24) or 16 (RGB48) per channel, by libavcodec's png encoder. 0 or -1. */
int vgm_write_png(const char *path, const VgImage *img, int bits);

/* Planes of a w x h VgImage (rows w floats apart); 0, or -1 out of memory
 * (nothing left allocated). vgm_image_free accepts a zeroed VgImage. */
int vgm_image_alloc(VgImage *img, int w, int h);
void vgm_image_free(VgImage *img);

#endif
