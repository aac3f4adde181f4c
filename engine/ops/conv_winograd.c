/*
 * conv2d 3x3, stride 1, by Winograd (Lavin & Gray 2015). F(4x4, 3x3): each
 * 4x4 output tile costs 36 multiplies per (ci, co) instead of 144, so the
 * GEMM work is 4x smaller than the im2col path's; F(2x2, 3x3): 16 instead
 * of 36 (2.25x), for pictures with too few 4x4 tiles to feed the GEMMs.
 * Per tile, with d the input patch and g the 3x3 kernel:
 *   y = AT [ sum over ci of (G g G^T) .* (BT d BT^T) ] AT^T
 * The element-wise products summed over ci are, for each of the P = 36
 * (16) positions p, one GEMM  M_p[co, t] = U_p[co, ci] x V_p[ci, t]  over
 * tiles t.
 *
 * Work per image, in tile blocks (whole rows of tiles) whose transformed
 * input V [P, cin, tiles] fits WINO_V_BYTES:
 *   1. V of the block, all channels (pool jobs over channels);
 *   2. per cout pass: U [P, pass, cin] (the weights' transform) for that
 *      pass, sized WINO_U_BYTES so that it is still in L3 when the GEMMs
 *      read it; transformed once per call when a single pass holds all of
 *      cout (then it serves every block and image);
 *   3. pool jobs over (cout chunk, tile range) units: P sgemm into private
 *      products M, then the output transform, bias and activation straight
 *      into y.
 * Images of at most WINO_FUSED_MAX_TILES tiles (SD's 16x16 and 8x8 levels)
 * go another way, where the sgemm path would spend more on writing U out
 * and reading it back than on the products (each U value meets only 16
 * tiles): V of every image of the batch side by side, then one pool job per
 * block of a few output channels transforms their U into its own scratch,
 * still in cache, and multiplies it with its own kernel (dsp wino_gemm, no
 * packing) before the output transform.
 * Weights are transformed on every call, not cached: conv2d receives them
 * already widened from F16 into a reused scratch (engine/ops/nn.c), so there
 * is no stable key, and SD's 3x3 weights transformed to 6x6 F32 would take
 * 7x their F16 size (several GB). Per call the transform is ~100 flops per
 * (co, ci) against 2 P per (co, ci, tile) for the GEMMs, and only the
 * current pass (12 MB, up to ~70 MB at SD's 32x32 where few tiles call for
 * taller GEMMs) exists at a time.
 *
 * Accuracy: F(4x4) scales values by up to ~100 and cancels them again,
 * which costs a few bits; tests/check_winograd.c measures the error against
 * the im2col path (~1e-5 relative to the output's scale at Cin 320, F(2x2)
 * about 10x less).
 */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem.h"
#include "engine/ops/common.h"
#include "engine/ops/conv_winograd.h"

/* V of a tile block: at most this, and at most WINO_V_BYTES_PER_CIN per input
 * channel, because few channels make short GEMMs (K = cin) that gain nothing
 * from many tiles while a V past the L3 slows its own writes and reads
 * (TAESD, Cin 64: 4 MB blocks 10-15% faster than 32 MB; SD's UNet needs
 * whole 32 MB for its 1280-2560 channel layers) */
#define WINO_V_BYTES ((int64_t)32 << 20)
#define WINO_V_BYTES_PER_CIN ((int64_t)64 << 10)
#define WINO_U_BYTES ((int64_t)12 << 20)
/* products of one unit: big enough for sgemm N >= 128 at SD's widths */
#define WINO_M_BYTES ((int64_t)8 << 20)
/* Images of at most this many tiles take the fused path (fused_job: U per
 * block of output channels, kept in cache, and wino_gemm instead of sgemm)
 * when their V fits WINO_FUSED_V_BYTES; U per job up to WINO_FUSED_U_BYTES
 * and WINO_FUSED_MAX_CB channels. `vgbench sd-layers`, 2-core Zen 2, SD's
 * 16x16 level by F(4x4): 1280->1280 23 ms, 2560->1280 45 ms (sgemm path
 * F(2x2): 33 and 69 ms); 8x8 by F(2x2): 1280->1280 13 ms (im2col 16 ms).
 * At 64 tiles (32x32) it was no better than the sgemm path, and slower at
 * 1920 -> 640, where its V (18 MB) is re-read by every job. */
#define WINO_FUSED_MAX_TILES 16
#define WINO_FUSED_V_BYTES ((int64_t)64 << 20)
#define WINO_FUSED_U_BYTES ((int64_t)2 << 20)
#define WINO_FUSED_MAX_CB 48
/* sgemm columns (tiles) per thread below which units split cout instead */
#define WINO_MIN_COLS 128
/* Auto policy, from `vgbench sd-layers` and single layers on a 2-core Zen 2,
 * from 32 channels: F(4x4) from 64 tiles (sgemm path: 2-3x im2col at SD's
 * 64x64 and 32x32 levels and TAESD) and at 16 (fused path: 2x at SD's 16x16);
 * else F(2x2) from 64 tiles (10-30% ahead of F(4x4) on the sgemm path
 * there) and at 16 (fused: 20% ahead of im2col at SD's 8x8). Sizes in
 * between were not measured and keep the choice made before the fused path
 * existed. */
#define WINO_MIN_CH 32
#define WINO_MIN_TILES 64
#define WINO_MIN_FUSED 16

static int policy = -1;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
    const char *e = getenv("VG_CONV_WINOGRAD");
    if (e && *e >= '0' && *e <= '2')
        policy = *e - '0';
}

void vg_conv_winograd_force(int mode)
{
    pthread_once(&env_once, read_env);
    policy = mode < 0 || mode > 2 ? -1 : mode;
}

int vg_conv_winograd_wanted(int64_t cin, int64_t cout, int64_t ho, int64_t wo, int64_t kh,
                            int64_t kw, int stride_h, int stride_w, int dil_h, int dil_w)
{
    if (kh != 3 || kw != 3 || stride_h != 1 || stride_w != 1 || dil_h != 1 || dil_w != 1)
        return 0;
    pthread_once(&env_once, read_env);
    if (policy >= 0)
        return policy == 0 ? 0 : policy == 1 ? 4 : 2;
    if (cin < WINO_MIN_CH || cout < WINO_MIN_CH)
        return 0;
    const int64_t t4 = ((ho + 3) / 4) * ((wo + 3) / 4), t2 = ((ho + 1) / 2) * ((wo + 1) / 2);
    if (t4 >= WINO_MIN_TILES || (t4 >= WINO_MIN_FUSED && t4 <= WINO_FUSED_MAX_TILES))
        return 4;
    if (t2 >= WINO_MIN_TILES || (t2 >= WINO_MIN_FUSED && t2 <= WINO_FUSED_MAX_TILES))
        return 2;
    return 0;
}

/* ------------------------------------------------------------ scratch */

/* Fresh multi-MB buffers come from mmap and cost a page fault per 4 KB on
 * every call (a tenth of a 20 ms conv); the last few are kept instead. */
#define KEEP_SLOTS 2
#define KEEP_MAX_FLOATS ((size_t)24 << 20) /* 96 MB: SD's largest conv */
static pthread_mutex_t keep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { float *p; size_t n; } keep[KEEP_SLOTS];

float *vg_conv_scratch_get(size_t n)
{
    float *p = NULL;
    pthread_mutex_lock(&keep_lock);
    for (int i = 0; i < KEEP_SLOTS && !p; i++)
        if (keep[i].p && keep[i].n >= n) {
            p = keep[i].p;
            keep[i].p = NULL;
        }
    pthread_mutex_unlock(&keep_lock);
    return p ? p : vg_malloc(n * sizeof(float));
}

void vg_conv_scratch_put(float *p, size_t n)
{
    if (!p)
        return;
    if (n <= KEEP_MAX_FLOATS) {
        pthread_mutex_lock(&keep_lock);
        /* an empty slot, else the smallest kept one if this is larger */
        int best = 0;
        for (int i = 0; i < KEEP_SLOTS; i++) {
            if (!keep[i].p) {
                best = i;
                break;
            }
            if (keep[i].n < keep[best].n)
                best = i;
        }
        float *old = NULL;
        if (!keep[best].p || keep[best].n < n) {
            old = keep[best].p;
            keep[best].p = p;
            keep[best].n = n;
            p = NULL;
        }
        pthread_mutex_unlock(&keep_lock);
        vg_free(old);
    }
    vg_free(p);
}

/* ------------------------------------------------------------ transforms */

/* o = BT d for one 6-vector */
static inline void bt6(float o[6], float d0, float d1, float d2, float d3, float d4, float d5)
{
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[1] = (d3 + d4) - 4.0f * (d1 + d2);
    o[2] = (d4 - d3) + 4.0f * (d1 - d2);
    o[3] = (d4 - d2) + 2.0f * (d3 - d1);
    o[4] = (d4 - d2) - 2.0f * (d3 - d1);
    o[5] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* o = AT m for one 6-vector */
static inline void at6(float o[4], float m0, float m1, float m2, float m3, float m4, float m5)
{
    const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    o[0] = m0 + a + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = b + 8.0f * d + m5;
}

static void wino_in43_c(float *v, ptrdiff_t vs, const float *x, ptrdiff_t xrs, int n)
{
    for (int t = 0; t < n; t++) {
        float h[6][6]; /* rows first: h[r] = BT d[r] */
        for (int r = 0; r < 6; r++) {
            const float *d = x + r * xrs + 4 * t;
            bt6(h[r], d[0], d[1], d[2], d[3], d[4], d[5]);
        }
        for (int j = 0; j < 6; j++) {
            float o[6];
            bt6(o, h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j]);
            for (int i = 0; i < 6; i++)
                v[(i * 6 + j) * vs + t] = o[i];
        }
    }
}

static void wino_out43_c(float *y, ptrdiff_t ys, const float *m, ptrdiff_t ms, int n, int rows,
                   int cols, float bias)
{
    for (int t = 0; t < n; t++) {
        float s[6][4]; /* s[i] = AT m[i] (along j) */
        for (int i = 0; i < 6; i++) {
            const float *mi = m + i * 6 * ms + t;
            at6(s[i], mi[0], mi[ms], mi[2 * ms], mi[3 * ms], mi[4 * ms], mi[5 * ms]);
        }
        for (int l = 0; l < 4 && 4 * t + l < cols; l++) {
            float o[4];
            at6(o, s[0][l], s[1][l], s[2][l], s[3][l], s[4][l], s[5][l]);
            for (int k = 0; k < rows; k++)
                y[k * ys + 4 * t + l] = o[k] + bias;
        }
    }
}

/* Through a transposed copy so that the arithmetic runs along k. */
#define WT_BLOCK 64
void vg_wino_weights43_c(float *u, ptrdiff_t us, const float *g, ptrdiff_t n)
{
    float gt[9][WT_BLOCK], tmp[6][3][WT_BLOCK];
    for (int64_t k0 = 0; k0 < n; k0 += WT_BLOCK) {
        const int nb = (int)VG_MIN(WT_BLOCK, n - k0);
        for (int k = 0; k < nb; k++)
            for (int e = 0; e < 9; e++)
                gt[e][k] = g[(k0 + k) * 9 + e];
        /* tmp = G g, column by column */
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < nb; k++) {
                const float a = gt[c][k], b = gt[3 + c][k], d = gt[6 + c][k];
                tmp[0][c][k] = a * 0.25f;
                tmp[1][c][k] = (a + b + d) * (-1.0f / 6);
                tmp[2][c][k] = (a - b + d) * (-1.0f / 6);
                tmp[3][c][k] = a * (1.0f / 24) + b * (1.0f / 12) + d * (1.0f / 6);
                tmp[4][c][k] = a * (1.0f / 24) - b * (1.0f / 12) + d * (1.0f / 6);
                tmp[5][c][k] = d;
            }
        /* u = tmp G^T, row by row */
        for (int i = 0; i < 6; i++) {
            float *ui = u + i * 6 * us + k0;
            for (int k = 0; k < nb; k++) {
                const float a = tmp[i][0][k], b = tmp[i][1][k], d = tmp[i][2][k];
                ui[0 * us + k] = a * 0.25f;
                ui[1 * us + k] = (a + b + d) * (-1.0f / 6);
                ui[2 * us + k] = (a - b + d) * (-1.0f / 6);
                ui[3 * us + k] = a * (1.0f / 24) + b * (1.0f / 12) + d * (1.0f / 6);
                ui[4 * us + k] = a * (1.0f / 24) - b * (1.0f / 12) + d * (1.0f / 6);
                ui[5 * us + k] = d;
            }
        }
    }
}

/* F(2x2, 3x3): interpolation points 0, +-1, inf. */
void vg_wino_weights23_c(float *u, ptrdiff_t us, const float *g, ptrdiff_t n)
{
    for (ptrdiff_t k = 0; k < n; k++) {
        const float *gk = g + 9 * k;
        float t[4][3]; /* G g */
        for (int c = 0; c < 3; c++) {
            const float a = gk[c], b = gk[3 + c], d = gk[6 + c];
            t[0][c] = a;
            t[1][c] = (a + b + d) * 0.5f;
            t[2][c] = (a - b + d) * 0.5f;
            t[3][c] = d;
        }
        for (int i = 0; i < 4; i++) {
            const float a = t[i][0], b = t[i][1], d = t[i][2];
            u[(i * 4 + 0) * us + k] = a;
            u[(i * 4 + 1) * us + k] = (a + b + d) * 0.5f;
            u[(i * 4 + 2) * us + k] = (a - b + d) * 0.5f;
            u[(i * 4 + 3) * us + k] = d;
        }
    }
}

/* o = BT d for one 4-vector */
static inline void bt4(float o[4], float d0, float d1, float d2, float d3)
{
    o[0] = d0 - d2;
    o[1] = d1 + d2;
    o[2] = d2 - d1;
    o[3] = d1 - d3;
}

static void wino_in23_c(float *v, ptrdiff_t vs, const float *x, ptrdiff_t xrs, int n)
{
    for (int t = 0; t < n; t++) {
        float h[4][4];
        for (int r = 0; r < 4; r++) {
            const float *d = x + r * xrs + 2 * t;
            bt4(h[r], d[0], d[1], d[2], d[3]);
        }
        for (int j = 0; j < 4; j++) {
            float o[4];
            bt4(o, h[0][j], h[1][j], h[2][j], h[3][j]);
            for (int i = 0; i < 4; i++)
                v[(i * 4 + j) * vs + t] = o[i];
        }
    }
}

static void wino_out23_c(float *y, ptrdiff_t ys, const float *m, ptrdiff_t ms, int n, int rows,
                         int cols, float bias)
{
    for (int t = 0; t < n; t++) {
        float s[4][2]; /* s[i] = AT m[i] (along j) */
        for (int i = 0; i < 4; i++) {
            const float *mi = m + i * 4 * ms + t;
            s[i][0] = mi[0] + mi[ms] + mi[2 * ms];
            s[i][1] = mi[ms] - mi[2 * ms] - mi[3 * ms];
        }
        for (int l = 0; l < 2 && 2 * t + l < cols; l++) {
            const float o0 = s[0][l] + s[1][l] + s[2][l], o1 = s[1][l] - s[2][l] - s[3][l];
            y[2 * t + l] = o0 + bias;
            if (rows > 1)
                y[ys + 2 * t + l] = o1 + bias;
        }
    }
}

void vg_wino_gemm_c(float *m, ptrdiff_t ldm, const float *u, ptrdiff_t ldu, const float *v,
                    ptrdiff_t ldv, int rows, int cols, int k)
{
    float acc[64];
    for (int r = 0; r < rows; r++)
        for (int t0 = 0; t0 < cols; t0 += 64) {
            const int nc = VG_MIN(64, cols - t0);
            float *mr = m + r * ldm + t0;
            for (int j0 = 0; j0 < k; j0 += VG_WINO_GEMM_KC) {
                const int kc = VG_MIN(VG_WINO_GEMM_KC, k - j0);
                for (int t = 0; t < nc; t++)
                    acc[t] = 0.0f;
                for (int j = j0; j < j0 + kc; j++) {
                    const float a = u[r * ldu + j];
                    const float *vj = v + j * ldv + t0;
                    for (int t = 0; t < nc; t++)
                        acc[t] += a * vj[t];
                }
                for (int t = 0; t < nc; t++)
                    mr[t] = j0 ? mr[t] + acc[t] : acc[t];
            }
        }
}

void vg_wino_dsp_init_c(VgOpsDsp *d)
{
    d->wino_weights[VG_WINO_F43] = vg_wino_weights43_c;
    d->wino_in[VG_WINO_F43] = wino_in43_c;
    d->wino_out[VG_WINO_F43] = wino_out43_c;
    d->wino_weights[VG_WINO_F23] = vg_wino_weights23_c;
    d->wino_in[VG_WINO_F23] = wino_in23_c;
    d->wino_out[VG_WINO_F23] = wino_out23_c;
    d->wino_gemm = vg_wino_gemm_c;
}

/* ------------------------------------------------------------ the conv */

/* Plane stride (floats) for @n floats per plane: the transforms write and
 * read all P planes at the same offset, so a stride that is a multiple of
 * 4 KB puts the 36 (16) streams in one cache set, more than its ways; one
 * extra cache line then spreads them. Multiples of 16 floats keep planes
 * 64-byte aligned. */
static int64_t plane_stride(int64_t n)
{
    const int64_t s = (n + 15) / 16 * 16;
    return s % 1024 ? s : s + 16;
}

typedef struct Wino {
    const VgWinoConv *c;
    int threads;
    int m, a, np;             /* tile outputs, tile inputs, positions (a * a) */
    VgWinoWeightsFn tf_w;
    VgWinoInFn tf_in;
    VgWinoOutFn tf_out;
    int64_t tw, th, wb;       /* tiles per row / column, strip width */
    /* current tile block */
    int64_t tr0, ntr, nt;     /* first tile row, tile rows, tiles */
    /* current cout pass */
    int64_t co0, nco;         /* first channel, channels */
    int64_t chunk, nchunks;   /* cout chunk per unit */
    int64_t tsub, nsub;       /* tiles per unit */
    const float *x;           /* current image */
    float *y;
    float *v;                 /* [np, cin, ldv], planes vs apart */
    int64_t vs, ldv;          /* ldv: nt; fused: n images of nt16 (nt rounded up to 16) */
    int64_t nt16, vimg;       /* fused: V columns per image, first column of this one */
    int64_t cb;               /* fused: output channels per job */
    float *u;                 /* [np, nco, cin] */
    float *scratch;           /* per thread: [per_thread] floats */
    int64_t per_thread;
} Wino;

static void u_job(void *arg, int i, int tid)
{
    const Wino *w = arg;
    const VgWinoConv *c = w->c;
    const int64_t per = (w->nco + w->threads * 4 - 1) / (w->threads * 4);
    const int64_t a = i * per, b = VG_MIN(w->nco, a + per);
    if (a < b)
        w->tf_w(w->u + a * c->cin, w->nco * c->cin, c->wt + (w->co0 + a) * c->cin * 9,
                (b - a) * c->cin);
}

/* V of channels [ci0, ci1) of the block, through a zero-padded strip of the
 * block's input rows (columns up to the width wino_in may read). */
static void v_job(void *arg, int i, int tid)
{
    const Wino *w = arg;
    const VgWinoConv *c = w->c;
    const int64_t per = (c->cin + w->threads * 4 - 1) / (w->threads * 4);
    const int64_t ci0 = i * per, ci1 = VG_MIN(c->cin, ci0 + per);
    const int64_t rows = w->m * w->ntr + 2;
    float *strip = w->scratch + tid * w->per_thread;
    for (int64_t ci = ci0; ci < ci1; ci++) {
        for (int64_t r = 0; r < rows; r++) {
            float *dst = strip + r * w->wb;
            const int64_t ih = w->m * w->tr0 + r - c->pad_top;
            memset(dst, 0, (size_t)w->wb * sizeof(float));
            if (ih < 0 || ih >= c->h)
                continue;
            /* columns past the last tile's reach stay 0 */
            const int64_t n = VG_MIN(c->w, w->wb - c->pad_left);
            if (n > 0)
                memcpy(dst + c->pad_left, w->x + (ci * c->h + ih) * c->w,
                       (size_t)n * sizeof(float));
        }
        float *vc = w->v + ci * w->ldv + w->vimg;
        for (int64_t tr = 0; tr < w->ntr; tr++)
            w->tf_in(vc + tr * w->tw, w->vs, strip + w->m * tr * w->wb, w->wb, (int)w->tw);
        /* wino_gemm's padding tiles: products nobody reads, from zeros */
        if (w->nt16 > w->nt)
            for (int p = 0; p < w->np; p++)
                memset(vc + p * w->vs + w->nt, 0, (size_t)(w->nt16 - w->nt) * sizeof(float));
    }
}

/* Output transform, bias and activation into image y of channels
 * co0 + [cc0, cc0 + ncc) and tiles [t0, t0 + nt) of the block, from products
 * m (channel cc0, tile t0 first; channels ldm apart, positions ms apart). */
static void out_rows(const Wino *w, float *y, const float *m, int64_t ldm, int64_t ms,
                     int64_t cc0, int64_t ncc, int64_t t0, int64_t nt)
{
    const VgWinoConv *c = w->c;
    for (int64_t k = 0; k < ncc; k++) {
        const int64_t co = w->co0 + cc0 + k;
        const float bias = c->bias ? c->bias[co] : 0.0f;
        const float slope = c->alpha ? c->alpha[c->alpha_len == 1 ? 0 : co] : c->slope;
        float *yc = y + co * c->ho * c->wo;
        for (int64_t t = t0; t < t0 + nt;) {
            const int64_t tr = t / w->tw, tc = t % w->tw;
            const int64_t n = VG_MIN(w->tw - tc, t0 + nt - t);
            const int64_t oy = w->m * (w->tr0 + tr), ox = w->m * tc;
            const int rows = (int)VG_MIN(w->m, c->ho - oy);
            const int cols = (int)VG_MIN(w->m * n, c->wo - ox);
            float *dst = yc + oy * c->wo + ox;
            w->tf_out(dst, c->wo, m + k * ldm + (t - t0), ms, (int)n, rows, (int)(c->wo - ox),
                      bias);
            if (c->dsp_act != VG_DSP_ACT_NONE)
                for (int r = 0; r < rows; r++)
                    c->dsp->bias_act[c->dsp_act](dst + r * c->wo, dst + r * c->wo, cols, 0.0f,
                                                 slope);
            t += n;
        }
    }
}

/* Fused path, one job per block of cb output channels: their U (all
 * positions) into this thread's scratch, where it stays in cache for the
 * wino_gemm calls that read it once, then the output transform. The
 * sgemm path instead writes the U of a whole pass (tens of MB) to memory
 * and reads it back, which at 16 tiles costs more than the products. The
 * images of a batch sit side by side in V, so U is transformed once for
 * all of them and their tiles make one wider product. */
static void fused_job(void *arg, int i, int tid)
{
    const Wino *w = arg;
    const VgWinoConv *c = w->c;
    const int64_t cc0 = i * w->cb, ncc = VG_MIN(w->cb, c->cout - cc0);
    if (ncc <= 0)
        return;
    const int64_t us = plane_stride(w->cb * c->cin), ms = plane_stride(w->cb * w->ldv);
    float *u = w->scratch + tid * w->per_thread; /* [np, ncc, cin], planes us apart */
    float *m = u + w->np * us;                   /* [np, ncc, ldv], planes ms apart */
    w->tf_w(u, us, c->wt + cc0 * c->cin * 9, ncc * c->cin);
    for (int p = 0; p < w->np; p++)
        c->dsp->wino_gemm(m + p * ms, w->ldv, u + p * us, c->cin, w->v + p * w->vs, w->ldv,
                          (int)ncc, (int)w->ldv, (int)c->cin);
    for (int64_t img = 0; img < c->n; img++)
        out_rows(w, c->y + img * c->cout * c->ho * c->wo, m + img * w->nt16, w->ldv, ms, cc0,
                 ncc, 0, w->nt);
}

static void unit_job(void *arg, int i, int tid)
{
    const Wino *w = arg;
    const VgWinoConv *c = w->c;
    const int64_t ch = i % w->nchunks, sub = i / w->nchunks;
    const int64_t cc0 = ch * w->chunk, ncc = VG_MIN(w->chunk, w->nco - cc0);
    const int64_t t0 = sub * w->tsub, nt = VG_MIN(w->tsub, w->nt - t0);
    if (ncc <= 0 || nt <= 0)
        return;
    float *m = w->scratch + tid * w->per_thread; /* [np, ncc, nt], planes ms apart */
    const int64_t us = w->nco * c->cin, vs = w->vs, ms = plane_stride(ncc * nt);
    /* M is cleared here and the sgemms accumulate (beta 1): OpenBLAS's own
     * clearing for beta 0 is a scalar pass, 8% of TAESD's time at Cin 64 */
    memset(m, 0, (size_t)(w->np * ms) * sizeof(float));
    for (int p = 0; p < w->np; p++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ncc, (int)nt, (int)c->cin,
                    1.0f, w->u + p * us + cc0 * c->cin, (int)c->cin, w->v + p * vs + t0,
                    (int)w->ldv, 1.0f, m + p * ms, (int)nt);
    out_rows(w, w->y, m, nt, ms, cc0, ncc, t0, nt);
}

/* Cout chunks and tile ranges of the units of one pass: chunks only when
 * tiles are too few to give every thread enough sgemm columns, because a
 * chunk re-reads V while a tile range re-reads U. */
static void plan_units(Wino *w)
{
    w->nchunks = 1;
    if (w->nt < WINO_MIN_COLS * w->threads)
        w->nchunks = VG_MAX(1, VG_MIN(w->threads, w->nco / 32));
    w->chunk = (w->nco + w->nchunks - 1) / w->nchunks;
    w->chunk = VG_MIN(w->nco, (w->chunk + 15) / 16 * 16);
    w->nchunks = (w->nco + w->chunk - 1) / w->chunk;
    int64_t tsub = (WINO_M_BYTES / (w->np * 4) - 32) / w->chunk;
    /* every thread busy */
    const int64_t want = (w->threads + w->nchunks - 1) / w->nchunks;
    tsub = VG_MIN(tsub, (w->nt + want - 1) / want);
    tsub = VG_MAX(8, (tsub + 7) / 8 * 8);
    w->tsub = VG_MIN(tsub, w->nt);
    w->nsub = (w->nt + w->tsub - 1) / w->tsub;
}

/* Each image is one tile block, all side by side in V; jobs are blocks of
 * cb output channels (fused_job). */
static int conv_fused(VgPool *pool, Wino *w)
{
    const VgWinoConv *c = w->c;
    w->tr0 = 0;
    w->ntr = w->th;
    w->nt = w->th * w->tw;
    w->nt16 = (w->nt + 15) / 16 * 16;
    w->ldv = c->n * w->nt16;
    w->vs = plane_stride(c->cin * w->ldv);
    w->co0 = 0;
    w->nco = c->cout;
    /* cb: U of a job about WINO_FUSED_U_BYTES (more only for the 6-row floor
     * past ~2400 input channels), at most WINO_FUSED_MAX_CB, and at least 4
     * jobs per thread for balance; whole 6-row register blocks */
    const int64_t fit = WINO_FUSED_U_BYTES / (w->np * 4 * c->cin) / 6 * 6;
    const int64_t bal = ((c->cout + w->threads * 4 - 1) / (w->threads * 4) + 5) / 6 * 6;
    w->cb = VG_MAX(6, VG_MIN(VG_MIN(fit, WINO_FUSED_MAX_CB), bal));
    const int64_t strip = (w->m * w->th + 2) * w->wb;
    const int64_t job = w->np * (plane_stride(w->cb * c->cin) + plane_stride(w->cb * w->ldv));
    w->per_thread = VG_MAX(strip, job);
    const size_t nv = (size_t)(w->np * w->vs);
    const size_t total = nv + (size_t)(w->per_thread * w->threads);
    float *buf = vg_conv_scratch_get(total);
    if (!buf)
        return VG_ERR(ENOMEM);
    w->v = buf;
    w->scratch = buf + nv;
    for (int64_t img = 0; img < c->n; img++) {
        w->x = c->x + img * c->cin * c->h * c->w;
        w->vimg = img * w->nt16;
        vg_pool_run(pool, w->threads * 4, v_job, w);
    }
    vg_pool_run(pool, (int)((c->cout + w->cb - 1) / w->cb), fused_job, w);
    vg_conv_scratch_put(buf, total);
    return 0;
}

int vg_conv_winograd(VgPool *pool, const VgWinoConv *c)
{
    const int f = c->m == 4 ? VG_WINO_F43 : VG_WINO_F23;
    Wino w = { .c = c, .threads = vg_pool_threads(pool), .m = c->m, .a = c->m + 2,
               .tf_w = c->dsp->wino_weights[f], .tf_in = c->dsp->wino_in[f],
               .tf_out = c->dsp->wino_out[f] };
    w.np = w.a * w.a;
    if (w.threads < 1)
        w.threads = 1;
    w.tw = (c->wo + w.m - 1) / w.m;
    w.th = (c->ho + w.m - 1) / w.m;
    w.wb = 8 * w.m * ((w.tw + 7) / 8) + 4; /* what wino_in may read */
    const int64_t tiles16 = (w.th * w.tw + 15) / 16 * 16;
    if (w.th * w.tw <= WINO_FUSED_MAX_TILES && c->n <= WINO_FUSED_V_BYTES / tiles16 &&
        w.np * 4 * c->cin * tiles16 * c->n <= WINO_FUSED_V_BYTES)
        return conv_fused(pool, &w);
    /* tile rows per block, the same for all blocks but the last */
    const int64_t row_bytes = w.np * 4 * c->cin * w.tw;
    const int64_t v_bytes = VG_MIN(WINO_V_BYTES, c->cin * WINO_V_BYTES_PER_CIN);
    int64_t ntr_max = VG_MAX(1, VG_MIN(w.th, v_bytes / row_bytes));
    /* cout per pass */
    const int64_t per_co = w.np * 4 * c->cin;
    int64_t pass = VG_MAX(16, WINO_U_BYTES / per_co / 16 * 16);
    /* Few tiles (SD at 32x32 by F(4x4): 64): every sgemm re-packs V_p for
     * just its chunk of rows, so rows matter more than U staying in L3
     * (measured 10-25% less CPU time than 64-row passes at 1280-2560
     * channels). */
    if (ntr_max * w.tw < WINO_MIN_COLS * w.threads)
        pass = VG_MAX(pass, WINO_MIN_COLS * w.threads);
    const int64_t npass = (c->cout + VG_MIN(pass, c->cout) - 1) / VG_MIN(pass, c->cout);
    pass = (c->cout + npass - 1) / npass; /* balanced */
    pass = VG_MIN(c->cout, (pass + 15) / 16 * 16);

    /* scratch per thread: the strip of v_job or the products of unit_job
     * (plan_units keeps np * chunk * tsub under this) */
    const int64_t strip = (w.m * ntr_max + 2) * w.wb;
    const int64_t prods = VG_MIN(WINO_M_BYTES / 4 + w.np * pass * 8,
                                 w.np * plane_stride(pass * ntr_max * w.tw));
    w.per_thread = VG_MAX(strip, prods);
    const size_t nv = (size_t)(w.np * plane_stride(c->cin * ntr_max * w.tw));
    const size_t nu = (size_t)(w.np * pass * c->cin);
    const size_t total = nv + nu + (size_t)(w.per_thread * w.threads);
    float *buf = vg_conv_scratch_get(total);
    if (!buf)
        return VG_ERR(ENOMEM);
    float *v = buf, *u = buf + nv;
    w.scratch = u + nu;
    w.v = v;
    w.u = u;
    const int u_once = npass == 1;
    if (u_once) {
        w.co0 = 0;
        w.nco = c->cout;
        vg_pool_run(pool, w.threads * 4, u_job, &w);
    }
    for (int64_t img = 0; img < c->n; img++) {
        w.x = c->x + img * c->cin * c->h * c->w;
        w.y = c->y + img * c->cout * c->ho * c->wo;
        for (w.tr0 = 0; w.tr0 < w.th; w.tr0 += w.ntr) {
            w.ntr = VG_MIN(ntr_max, w.th - w.tr0);
            w.nt = w.ntr * w.tw;
            w.ldv = w.nt16 = w.nt;
            w.vs = plane_stride(c->cin * w.nt);
            vg_pool_run(pool, w.threads * 4, v_job, &w);
            for (w.co0 = 0; w.co0 < c->cout; w.co0 += pass) {
                w.nco = VG_MIN(pass, c->cout - w.co0);
                if (!u_once)
                    vg_pool_run(pool, w.threads * 4, u_job, &w);
                plan_units(&w);
                vg_pool_run(pool, (int)(w.nchunks * w.nsub), unit_job, &w);
            }
        }
    }
    vg_conv_scratch_put(buf, total);
    return 0;
}
