/*
 * Middlebury .flo optical flow files (Baker et al., "A Database and
 * Evaluation Methodology for Optical Flow"): the float32 tag 202021.25
 * ("PIEH"), int32 width, int32 height, then width * height interleaved
 * (u, v) float32 pairs, row-major, all little-endian. Components above 1e9
 * mark unknown flow in ground-truth files.
 *
 * Failures print one line "visgen: PATH: why" on stderr.
 */
#ifndef VG_TOOLS_VISGEN_FLO_H
#define VG_TOOLS_VISGEN_FLO_H

/* Writes the w x h planes @u, @v (rows w floats apart, read only). 0 or -1. */
int vgf_write_flo(const char *path, const float *u, const float *v, int w, int h);

/* Reads @path into *@u, *@v (malloc'ed here, w * h floats each, the caller
 * frees them) and *@w, *@h. 0 or -1 (nothing left allocated). */
int vgf_read_flo(const char *path, float **u, float **v, int *w, int *h);

/* True for a ground-truth vector marked unknown (or not finite). */
int vgf_unknown(float u, float v);

#endif
