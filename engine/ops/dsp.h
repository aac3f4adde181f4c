/*
 * Element-wise float kernels behind the ops, chosen once per process by CPU
 * flag (dav1d style): vg_ops_dsp_init_c() installs the plain-C reference,
 * then an ISA file (x86/ops_avx2.c) overwrites what it accelerates.
 * Kernels take any alignment and any length n >= 0; y may equal x (or a/b).
 *
 * Semantics all versions keep (tests/check_dsp.c compares them):
 *   relu(v)   = v < 0 ? 0 : v             (NaN passes through)
 *   leaky(v)  = v > 0 ? v : v * slope     (NaN passes through)
 *   bias_act[act](v) = act(v + bias), act = none / relu / leaky(slope)
 */
#ifndef VG_ENGINE_OPS_DSP_H
#define VG_ENGINE_OPS_DSP_H

#include <stddef.h>

enum VgDspAct { VG_DSP_ACT_NONE, VG_DSP_ACT_RELU, VG_DSP_ACT_LEAKY, VG_DSP_ACT_N };

typedef void (*VgBiasActFn)(float *y, const float *x, ptrdiff_t n, float bias, float slope);

/*
 * Direct convolution of one output row segment for few output channels
 * (conv2d uses it when Cout < VG_CONV_DIRECT_MAX_COUT), without a column
 * matrix: for co < cout, j < n
 *   y[co * ys + j] = sum over ci < cin, ky < kh, kx < kw (in that order) of
 *       w[((co * cin + ci) * kh + ky) * kw + kx] *
 *       x[ci * xcs + ky * dh * xrs + kx * dw + j]
 * x points at the (padded) input row of the output row, xcs / xrs are the
 * channel / row strides of the input in floats. No bias, no activation.
 * Versions differ by rounding only (FMA, order of the partial sums).
 */
#define VG_CONV_DIRECT_MAX_COUT 16
typedef struct VgConvDirectArgs {
    const float *x;
    ptrdiff_t xcs, xrs;
    const float *w; /* [cout, cin, kh, kw] */
    int cout, cin, kh, kw, dh, dw;
} VgConvDirectArgs;
typedef void (*VgConvDirectFn)(float *y, ptrdiff_t ys, const VgConvDirectArgs *a, ptrdiff_t n);

/*
 * Winograd transforms (Lavin & Gray; engine/ops/conv_winograd.c has the
 * matrices BT, G, AT and the conv2d path that uses them), in two variants:
 *   VG_WINO_F43: F(4x4, 3x3), tile m = 4 outputs from a = 6 inputs, P = 36
 *   VG_WINO_F23: F(2x2, 3x3), m = 2, a = 4, P = 16
 * Tiles step by m columns.
 *
 * wino_weights: u[p * us + k] = (G g_k G^T)[p / a][p % a] for the @n 3x3
 *   kernels g_k = g + 9 k, p < P.
 * wino_in: one channel, one row of @n tiles. Tile t reads the a x a patch
 *   d[r][c] = x[r * xrs + m t + c] and writes
 *   v[p * vs + t] = (BT d BT^T)[p / a][p % a], p < P.
 *   Each of the a rows of x must be readable (any finite or non-finite
 *   values) up to column 8 m * ceil(n / 8) + 3: versions load 8 tiles at once.
 * wino_out: one channel, one row of @n tiles from the products
 *   m_t[i][j] = mp[(i * a + j) * ms + t]:
 *   y[k * ys + m t + l] = (AT m_t AT^T)[k][l] + bias
 *   for k < rows (<= m), l < m and m t + l < cols; nothing else is written.
 * wino_gemm: the products of one position for a block of output channels,
 *   m[r * ldm + t] = sum over j < k of u[r * ldu + j] * v[j * ldv + t]
 *   for r < rows, t < cols; cols a multiple of 16 (callers pad the tiles),
 *   k >= 1, summed from zero over slices of VG_WINO_GEMM_KC and each slice
 *   added to m in turn. Overwrites those m and nothing else. Reads u and v
 *   in place (no packing: the transformed weights are used once per call).
 * Versions differ by rounding only (FMA, order of the sums).
 */
enum { VG_WINO_F43, VG_WINO_F23, VG_WINO_N };
#define VG_WINO_GEMM_KC 256
typedef void (*VgWinoWeightsFn)(float *u, ptrdiff_t us, const float *g, ptrdiff_t n);
typedef void (*VgWinoInFn)(float *v, ptrdiff_t vs, const float *x, ptrdiff_t xrs, int n);
typedef void (*VgWinoOutFn)(float *y, ptrdiff_t ys, const float *mp, ptrdiff_t ms, int n,
                            int rows, int cols, float bias);
typedef void (*VgWinoGemmFn)(float *m, ptrdiff_t ldm, const float *u, ptrdiff_t ldu,
                             const float *v, ptrdiff_t ldv, int rows, int cols, int k);

typedef struct VgOpsDsp {
    const char *isa; /* "c", "avx2" */
    void (*relu)(float *y, const float *x, ptrdiff_t n);
    void (*leaky)(float *y, const float *x, ptrdiff_t n, float slope);
    void (*add)(float *y, const float *a, const float *b, ptrdiff_t n);
    void (*scale)(float *y, const float *x, ptrdiff_t n, float s);
    VgBiasActFn bias_act[VG_DSP_ACT_N];
    VgConvDirectFn conv_direct; /* cout < VG_CONV_DIRECT_MAX_COUT */
    VgWinoWeightsFn wino_weights[VG_WINO_N];
    VgWinoInFn wino_in[VG_WINO_N];
    VgWinoOutFn wino_out[VG_WINO_N];
    VgWinoGemmFn wino_gemm;
} VgOpsDsp;

/* The table for this CPU, filled on first use (thread-safe, then constant). */
const VgOpsDsp *vg_ops_dsp(void);

/* Fill @d with the C reference. For tests and the ISA initialisers. */
void vg_ops_dsp_init_c(VgOpsDsp *d);

#endif
