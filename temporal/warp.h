/*
 * Per-pixel kernels of temporal consistency: backward warping, flow
 * resizing and composition, forward-backward occlusion, motion boundaries,
 * fusion. Plain C references plus AVX2 versions picked at run time through
 * VgWarpDSP (the dav1d pattern: one table, filled once by CPU flags).
 *
 * Conventions shared by every function here:
 * - A flow field (u, v) from image A to image B gives, for pixel x of A, the
 *   position x + (u, v) in B where the same point is: B(x + w(x)) ~ A(x).
 *   Warping B "backward" with it therefore produces an image aligned with A.
 * - Planes are float, rows `stride` floats apart (not bytes), caller-owned;
 *   masks are uint8_t, 1 = set, rows `mstride` bytes apart.
 * - Bilinear sampling clamps coordinates to the image (border replicate).
 *   Non-finite or huge flow is safe: a NaN coordinate is taken as 0, +-Inf
 *   and anything past the border as the nearest edge (clamped in float
 *   before any conversion to int), so nothing is read outside the plane.
 * - The AVX2 versions give bit-identical results to the C ones (same
 *   operations in the same order, no FMA).
 */
#ifndef VG_TEMPORAL_WARP_H
#define VG_TEMPORAL_WARP_H

#include <stddef.h>
#include <stdint.h>

typedef struct VgWarpDSP {
    /*
     * One row of backward warping: for x in [0, w),
     *   dst[x] = src sampled bilinearly at (x + u[x], y + v[x]),
     * coordinates clamped to [0, sw-1] x [0, sh-1]. @src is the whole
     * sw x sh source plane (rows @sstride floats apart).
     */
    void (*warp_row)(float *dst, const float *src, ptrdiff_t sstride, int sw, int sh,
                     const float *u, const float *v, int w, int y);

    /*
     * One row of the forward-backward check (Sundaram, Brox, Keutzer 2010):
     * with wf = (uf[x], vf[x]) and wb = (ub, vb) sampled bilinearly at
     * x + wf, occ[x] = 1 when |wf + wb|^2 > 0.01 (|wf|^2 + |wb|^2) + 0.5, or
     * when x + wf falls outside [0, w-1] x [0, h-1]; else 0. A NaN in the
     * flows also gives 1. @ub, @vb are whole planes (rows @bstride floats
     * apart).
     */
    void (*occlusion_row)(uint8_t *occ, const float *uf, const float *vf,
                          const float *ub, const float *vb, ptrdiff_t bstride,
                          int w, int h, int y);

    /*
     * One row of fusion: where @mask[x] is 0,
     *   dst[x] = (1 - weight) * cur[x] + weight * prev[x]
     * (exactly cur at weight 0 and prev at weight 1), else dst[x] = cur[x].
     * @dst may equal @cur.
     */
    void (*fuse_row)(float *dst, const float *cur, const float *prev,
                     const uint8_t *mask, float weight, int w);
} VgWarpDSP;

/* Fills @dsp with the C versions, then the best ones @cpu_avx2 allows
 * (non-zero: AVX2 and FMA are usable). */
void vg_warp_dsp_init(VgWarpDSP *dsp, int cpu_avx2);

/* Non-zero when this CPU runs AVX2 + FMA code. */
int vg_warp_cpu_avx2(void);

/* Whole-plane helpers over the table; planes are w x h unless stated. */

/* Backward warp of an sw x sh plane with the w x h flow (u, v) into @dst. */
void vg_warp_plane(const VgWarpDSP *dsp, float *dst, ptrdiff_t dstride,
                   const float *src, ptrdiff_t sstride, int sw, int sh,
                   const float *u, const float *v, ptrdiff_t fstride, int w, int h);

/* Occlusion mask of the forward flow (uf, vf) against the backward flow
 * (ub, vb), both w x h with row stride @fstride. */
void vg_occlusion(const VgWarpDSP *dsp, uint8_t *occ, ptrdiff_t mstride,
                  const float *uf, const float *vf, const float *ub, const float *vb,
                  ptrdiff_t fstride, int w, int h);

/*
 * Motion boundaries (Sundaram et al.): mb[x] = 1 where
 * |grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002 (central differences,
 * one-sided at the border). C only: it runs on the flow's (small) size.
 */
void vg_motion_boundary(uint8_t *mb, ptrdiff_t mstride, const float *u, const float *v,
                        ptrdiff_t fstride, int w, int h);

/*
 * Resize a mask (rows packed) from sw x sh to dw x dh by nearest neighbour,
 * pixel centres aligned like vg_flow_resize.
 */
void vg_mask_resize(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh);

/*
 * Resize a flow field bilinearly from sw x sh to dw x dh and scale its
 * vectors by dw/sw (u) and dh/sh (v), so it stays in pixels of the new size.
 * Pixel centres are aligned (align_corners = false).
 */
void vg_flow_resize(float *du, float *dv, ptrdiff_t dstride, int dw, int dh,
                    const float *su, const float *sv, ptrdiff_t sstride, int sw, int sh);

/*
 * Chain two flows: A->B (@au, @av) then B->C (@bu, @bv) gives A->C,
 *   c(x) = a(x) + b(x + a(x))  (b sampled bilinearly, clamped).
 * Masks: @cocc = @aocc(x) | @bocc(nearest to x + a(x)); either mask may be
 * NULL (treated as all 0), @cocc may be NULL (not written). Output planes
 * must not alias the inputs. All planes w x h, flows @fstride, masks @mstride.
 */
void vg_flow_compose(float *cu, float *cv, uint8_t *cocc,
                     const float *au, const float *av, const uint8_t *aocc,
                     const float *bu, const float *bv, const uint8_t *bocc,
                     ptrdiff_t fstride, ptrdiff_t mstride, int w, int h);

/* Masked fusion of whole planes, see fuse_row. */
void vg_fuse_plane(const VgWarpDSP *dsp, float *dst, ptrdiff_t dstride,
                   const float *cur, ptrdiff_t cstride, const float *prev, ptrdiff_t pstride,
                   const uint8_t *mask, ptrdiff_t mstride, float weight, int w, int h);

#endif
