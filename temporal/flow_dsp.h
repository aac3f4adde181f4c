/*
 * Kernels of the DIS flow (temporal/flow_*.c): a plain C reference for each,
 * AVX2+FMA versions in temporal/x86/flow_dsp_avx2.c installed by CPU flag.
 * tests/check_flow.c compares every installed version with the reference.
 *
 * Bilinear sampling of the patch kernels: the caller passes the integer
 * top-left i1 of the displaced patch inside a replicate-padded image and the
 * weights w = {w00, w01, w10, w11} of the fractional part, so that a sample
 * is w00 i1[x] + w01 i1[x+1] + w10 i1[x+s1] + w11 i1[x+s1+1] (reads ps + 1
 * rows of ps + 1 floats).
 */
#ifndef VG_TEMPORAL_FLOW_DSP_H
#define VG_TEMPORAL_FLOW_DSP_H

#include <stddef.h>

/* Planes of the variational refinement, see flow_var.c for the equations. */
typedef struct VgVarRow {
    /* linearised data terms (constant during one call) */
    const float *ix, *iy, *iz, *ixx, *ixy, *iyy, *ixz, *iyz, *ni, *dm, *gm, *ngx, *ngy;
    const float *u, *v;            /* flow being refined */
    float *du, *dv;                /* its increment, solved for */
    float *sx, *sy;                /* smoothness weights of the edges right of / below */
    float *a12, *b1, *b2, *ia11, *ia22; /* per-pixel 2x2 systems, diagonal inverted */
} VgVarRow;

typedef struct VgFlowDsp {
    /* d = sample(i1) - i0 over a ps x ps patch: out = {sum d gx, sum d gy,
     * sum d, sum d^2} (i0, gx, gy share the row stride s0) */
    void (*patch_grad)(const float *i0, const float *gx, const float *gy, ptrdiff_t s0,
                       const float *i1, ptrdiff_t s1, const float w[4], int ps, float out[4]);
    /* out = {sum d, sum d^2} */
    void (*patch_ssd)(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                      const float w[4], int ps, float out[2]);
    /* densification vote of `rows` rows of a ps wide patch with flow (u, v):
     * per pixel c = 1 / max(1, |d|); acc[0] += c u, acc[sa] += c v,
     * acc[2 sa] += c (acc rows of stride s0). May read and write back
     * unchanged up to 7 floats past the patch's last column in each plane:
     * acc needs that slack after its last row. */
    void (*patch_vote)(const float *i0, ptrdiff_t s0, const float *i1, ptrdiff_t s1,
                       const float w[4], int ps, int rows, float u, float v, float *acc,
                       ptrdiff_t sa);
    /* Scharr gradients (unit slope) of row r between rows ru and rd, for
     * 1 <= x < w - 1 */
    void (*scharr_row)(const float *ru, const float *r, const float *rd, float *gx, float *gy,
                       int w);
    /* col[k w + x] += {gx^2, gx gy, gy^2, gx, gy}[k] (x < w) */
    void (*tensor_row)(const float *gx, const float *gy, float *col, int w);
    /* u = au / aw, v = av / aw (x < n) */
    void (*divide_row)(const float *au, const float *av, const float *aw, float *u, float *v,
                       int n);
    /* dst[x] = 2x2 box mean of rows a, b at 2x, 2x + 1 (x < n) */
    void (*down2_row)(const float *a, const float *b, float *dst, int n);
    /* dst[x] = scale * (a[x] + t * (b[x] - a[x])) (x < n) */
    void (*lerp_row)(const float *a, const float *b, float t, float scale, float *dst, int n);
    /* variational refinement (flow_var.c), one row per call, pointers of
     * VgVarRow at the row's x = 0 in padded planes whose rows are pw floats
     * apart (the pad is a zero border, so neighbours always exist) */
    void (*var_smooth)(const VgVarRow *r, ptrdiff_t pw, int w, int last_row, float alpha,
                       float eps2);
    void (*var_data)(const VgVarRow *r, ptrdiff_t pw, int w, float eps2);
    /* red-black SOR half-sweep over the pixels x = parity, parity + 2, ... */
    void (*sor_row)(const VgVarRow *r, ptrdiff_t pw, int w, int parity, float omega);
} VgFlowDsp;

void vg_flow_dsp_init_c(VgFlowDsp *d);
void vg_flow_dsp_init_avx2(VgFlowDsp *d);

/* The table for this CPU (selected once, thread-safe). */
const VgFlowDsp *vg_flow_dsp(void);

#endif
