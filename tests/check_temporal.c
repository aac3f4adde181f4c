/*
 * Tests of the per-pixel temporal kernels (temporal/warp.h).
 *
 * dsp:       checkasm-style, every AVX2 row kernel against the C reference on
 *            random and extreme inputs (flows far outside, NaN, +-Inf, +-1e30,
 *            exact integers, edge positions; weights 0 and 1), widths 1..640,
 *            guard values past the row end that must stay untouched. The AVX2
 *            code repeats C's operations in order without FMA, so the
 *            tolerance is 0: bit-identical floats (any NaN matches any NaN)
 *            and identical masks, threshold ties included.
 * props:     identities the maths guarantees (zero flow, integer shifts,
 *            bilinear reproducing a ramp, a synthetic occlusion, composition
 *            and resizing of constant flows, fusion weights), run with both
 *            tables; NaN / huge flows through the plane helpers over
 *            exactly-sized buffers (run under valgrind for the reads).
 * reference: OpenCV cv2.remap (tests/reference/gen_warp_ref.py). remap
 *            rounds coordinates to 1/32 px (5-bit fixed-point weights): on
 *            the noise case the flow is snapped to that grid, leaving float
 *            rounding only (tolerance 1e-5); on the smooth case it is not,
 *            and the image's gradients keep the rounding below 1e-3
 *            (tolerance 1e-3).
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporal/warp.h"
#include "tests/common/vgtest.h"

#define PAD 8
#define GUARD -777.0f

static VgWarpDSP ref, opt;
static int have_opt;

static void init_tables(void)
{
    have_opt = vg_warp_cpu_avx2();
    vg_warp_dsp_init(&ref, 0);
    vg_warp_dsp_init(&opt, have_opt);
}

static uint32_t rng = 4242;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

static float frand(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() & 0xffff) / 65535.0f;
}

static float *falloc(size_t n)
{
    float *p = malloc(n * sizeof(*p) + 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int same(float a, float b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof(a));
}

static const int widths[] = { 1, 7, 8, 9, 33, 640 };
#define N_WIDTHS (int)(sizeof(widths) / sizeof(*widths))
enum { M_RANDOM, M_INTEGER, M_EXTREME, M_N };

/* One flow value at column @x of a row (so "edge" can hit x + u = w - 1). */
static float flow_value(int mode, int x, int n)
{
    static const float ext[] = { NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 0.0f, -0.0f,
                                 1e-30f, 3.0f, -2.0f, 0.5f, FLT_MAX, -FLT_MAX };
    switch (mode) {
    case M_RANDOM:  return frand(-1.5f * n - 4, 1.5f * n + 4);
    case M_INTEGER: return (float)((int)(rnd() % (2 * n + 9)) - n - 4);
    default:
        switch (rnd() % 4) {
        case 0:  return (float)(n - 1 - x);       /* exactly onto the last column/row */
        case 1:  return (float)(n - 1 - x) + frand(-1e-3f, 1e-3f);
        default: return ext[rnd() % (sizeof(ext) / sizeof(*ext))];
        }
    }
}

/* A plane of exactly (h - 1) * stride + w floats: a read past it is
 * visible to valgrind. */
static float *plane(int w, int h, ptrdiff_t stride, int mode)
{
    const size_t n = (size_t)(h - 1) * stride + w;
    float *p = falloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = mode == M_EXTREME && !(rnd() % 16) ? (rnd() & 1 ? INFINITY : NAN)
                                                  : frand(-10, 10);
    return p;
}

START_TEST(test_dispatch)
{
    VgWarpDSP d;
    vg_warp_dsp_init(&d, have_opt);
    ck_assert(have_opt == (d.warp_row != ref.warp_row));
    ck_assert(have_opt == (d.occlusion_row != ref.occlusion_row));
    ck_assert(have_opt == (d.fuse_row != ref.fuse_row));
}
END_TEST

START_TEST(test_warp_row)
{
    const int w = widths[_i % N_WIDTHS], mode = _i / N_WIDTHS;
    for (int rep = 0; rep < 8; rep++) {
        const int sw = 1 + rnd() % (w + 8), sh = 1 + rnd() % 6;
        const ptrdiff_t ss = sw + rnd() % 3;
        const int y = rnd() % (sh + 2); /* the flow's row may lie past the source */
        float *src = plane(sw, sh, ss, mode), *u = falloc(w), *v = falloc(w);
        float *da = falloc(w + PAD), *db = falloc(w + PAD);
        for (int x = 0; x < w; x++) {
            u[x] = flow_value(mode, x, sw);
            v[x] = flow_value(mode, y, sh);
        }
        for (int x = 0; x < w + PAD; x++)
            da[x] = db[x] = GUARD;
        ref.warp_row(da, src, ss, sw, sh, u, v, w, y);
        opt.warp_row(db, src, ss, sw, sh, u, v, w, y);
        for (int x = 0; x < w + PAD; x++)
            ck_assert_msg(same(da[x], db[x]) && (x < w || da[x] == GUARD),
                          "warp_row w %d mode %d src %dx%d y %d: x %d c %a avx2 %a (u %g v %g)",
                          w, mode, sw, sh, y, x, da[x], db[x], x < w ? u[x] : 0, x < w ? v[x] : 0);
        free(src), free(u), free(v), free(da), free(db);
    }
}
END_TEST

START_TEST(test_occlusion_row)
{
    const int w = widths[_i % N_WIDTHS], mode = _i / N_WIDTHS;
    for (int rep = 0; rep < 8; rep++) {
        const int h = 1 + rnd() % 6, y = rnd() % h;
        const ptrdiff_t bs = w + rnd() % 3;
        float *ub = plane(w, h, bs, mode), *vb = plane(w, h, bs, mode);
        float *uf = falloc(w), *vf = falloc(w);
        uint8_t oa[640 + PAD], ob[640 + PAD];
        for (int x = 0; x < w; x++) {
            uf[x] = flow_value(mode, x, w);
            vf[x] = flow_value(mode, y, h);
            /* near-consistent pairs put the check close to its threshold */
            if (mode == M_RANDOM && (rnd() & 1) && h == 1)
                ub[x] = -uf[x] + frand(-0.8f, 0.8f);
        }
        memset(oa, 0xee, sizeof(oa));
        memset(ob, 0xee, sizeof(ob));
        ref.occlusion_row(oa, uf, vf, ub, vb, bs, w, h, y);
        opt.occlusion_row(ob, uf, vf, ub, vb, bs, w, h, y);
        for (int x = 0; x < w + PAD; x++)
            ck_assert_msg(oa[x] == ob[x] && (x < w ? oa[x] <= 1 : oa[x] == 0xee),
                          "occlusion_row w %d mode %d h %d y %d: x %d c %d avx2 %d", w, mode, h,
                          y, x, oa[x], ob[x]);
        free(ub), free(vb), free(uf), free(vf);
    }
}
END_TEST

/* Exact ties lhs == rhs (found by search with the kernel's own float
 * operations): not occluded, in both versions. */
START_TEST(test_occlusion_ties)
{
    enum { W = 67 };
    float uf[W] = { 0 }, vf[W] = { 0 }, ub[W], vb[W] = { 0 };
    uint8_t oa[W], ob[W];
    int n = 0;
    for (float b = 0.70f; n < W && b < 0.72f; b = nextafterf(b, 1.0f)) {
        volatile float lhs = b * b, mb = b * b;
        volatile float rhs = 0.01f * (0.0f + mb) + 0.5f;
        if (lhs == rhs)
            ub[n++] = -b; /* wf + wb = (-b, 0): the same products */
    }
    ck_assert_msg(n > 0, "no tie found");
    for (int i = n; i < W; i++)
        ub[i] = ub[i % n];
    ref.occlusion_row(oa, uf, vf, ub, vb, W, W, 1, 0);
    opt.occlusion_row(ob, uf, vf, ub, vb, W, W, 1, 0);
    for (int x = 0; x < W; x++)
        ck_assert_msg(oa[x] == 0 && ob[x] == 0, "x %d (ub %a): c %d avx2 %d", x, ub[x], oa[x],
                      ob[x]);
}
END_TEST

START_TEST(test_fuse_row)
{
    const int w = widths[_i % N_WIDTHS], mode = _i / N_WIDTHS;
    const float weights[] = { 0.0f, 1.0f, 0.3f, 0.85f, -0.5f, 2.0f };
    for (int rep = 0; rep < 12; rep++) {
        const float wt = weights[rep % 6];
        float *cur = plane(w, 1, w, mode), *prev = plane(w, 1, w, mode);
        float *da = falloc(w + PAD), *db = falloc(w + PAD);
        uint8_t *mask = malloc(w);
        ck_assert_ptr_nonnull(mask);
        for (int x = 0; x < w; x++)
            mask[x] = rep < 2 ? (uint8_t)rep : (uint8_t)((rnd() & 1) * (rnd() & 0xff)); /* any non-zero sets */
        for (int x = 0; x < w + PAD; x++)
            da[x] = db[x] = GUARD;
        ref.fuse_row(da, cur, prev, mask, wt, w);
        opt.fuse_row(db, cur, prev, mask, wt, w);
        for (int x = 0; x < w + PAD; x++)
            ck_assert_msg(same(da[x], db[x]) && (x < w || da[x] == GUARD),
                          "fuse_row w %d mode %d weight %g: x %d c %a avx2 %a", w, mode, wt, x,
                          da[x], db[x]);
        /* in place */
        memcpy(db, cur, w * sizeof(*db));
        opt.fuse_row(db, db, prev, mask, wt, w);
        for (int x = 0; x < w; x++)
            ck_assert_msg(same(da[x], db[x]), "fuse_row in place w %d: x %d", w, x);
        free(cur), free(prev), free(da), free(db), free(mask);
    }
}
END_TEST

/* ---------------------------------------------------------------- properties */

static const VgWarpDSP *table(int i)
{
    return i ? &opt : &ref;
}

static void fill_const(float *p, size_t n, float c)
{
    for (size_t i = 0; i < n; i++)
        p[i] = c;
}

static int clampi(int v, int hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

START_TEST(test_zero_flow_identity)
{
    enum { W = 13, H = 11 };
    float src[W * H], u[W * H] = { 0 }, v[W * H] = { 0 }, dst[W * H];
    for (int i = 0; i < W * H; i++)
        src[i] = frand(-100, 100);
    vg_warp_plane(table(_i), dst, W, src, W, W, H, u, v, W, W, H);
    ck_assert(!memcmp(dst, src, sizeof(src)));
}
END_TEST

START_TEST(test_integer_translation)
{
    enum { W = 21, H = 9 };
    const int dx = 3, dy = -2;
    float src[W * H], u[W * H], v[W * H], dst[W * H];
    for (int i = 0; i < W * H; i++)
        src[i] = frand(-100, 100);
    fill_const(u, W * H, dx);
    fill_const(v, W * H, dy);
    vg_warp_plane(table(_i), dst, W, src, W, W, H, u, v, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_msg(dst[y * W + x] == src[clampi(y + dy, H - 1) * W + clampi(x + dx, W - 1)],
                          "(%d, %d)", x, y);
}
END_TEST

/* Bilinear interpolation is exact on f(x, y) = a x + b y + c; clamping only
 * moves the point. Dyadic shifts keep every step exact in float; 0.3 gets
 * the rounding of a few operations. */
START_TEST(test_ramp_subpixel)
{
    enum { W = 40, H = 17, SW = 31, SH = 23 };
    const float shifts[][2] = { { 0.25f, 0.375f }, { -1.75f, 2.5f }, { 0.3f, -0.7f } };
    float src[SW * SH], u[W * H], v[W * H], dst[W * H];
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SW; x++)
            src[y * SW + x] = 2.0f * x - 3.0f * y + 1.0f;
    for (int s = 0; s < 3; s++) {
        fill_const(u, W * H, shifts[s][0]);
        fill_const(v, W * H, shifts[s][1]);
        vg_warp_plane(table(_i), dst, W, src, SW, SW, SH, u, v, W, W, H);
        const double tol = s < 2 ? 0.0 : 1e-4;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const double fx = fmin(fmax(x + (double)shifts[s][0], 0), SW - 1);
                const double fy = fmin(fmax(y + (double)shifts[s][1], 0), SH - 1);
                const double want = 2 * fx - 3 * fy + 1;
                ck_assert_msg(fabs(dst[y * W + x] - want) <= tol, "shift %d (%d, %d): %.9g vs %.9g",
                              s, x, y, dst[y * W + x], want);
            }
    }
}
END_TEST

/* A 8x8 square moves 4 px right over a static background between frames A
 * and B. Checked on B (backward flow first): the strip the square uncovers
 * is occluded, the rest (square included) is not; checked on A: the strip it
 * covers is occluded. */
START_TEST(test_occlusion_square)
{
    enum { W = 32, H = 24, X0 = 8, Y0 = 8, S = 8, D = 4 };
    float uf[W * H] = { 0 }, ub[W * H] = { 0 }, zero[W * H] = { 0 };
    uint8_t occ[W * H];
    for (int y = Y0; y < Y0 + S; y++)
        for (int x = 0; x < S; x++) {
            uf[y * W + X0 + x] = D;
            ub[y * W + X0 + D + x] = -D;
        }
    vg_occlusion(table(_i), occ, W, ub, zero, uf, zero, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int want = y >= Y0 && y < Y0 + S && x >= X0 && x < X0 + D;
            ck_assert_msg(occ[y * W + x] == want, "B (%d, %d): %d", x, y, occ[y * W + x]);
        }
    vg_occlusion(table(_i), occ, W, uf, zero, ub, zero, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int want = y >= Y0 && y < Y0 + S && x >= X0 + S && x < X0 + S + D;
            ck_assert_msg(occ[y * W + x] == want, "A (%d, %d): %d", x, y, occ[y * W + x]);
        }
}
END_TEST

START_TEST(test_occlusion_outside)
{
    enum { W = 10, H = 6 };
    float u[W * H], v[W * H] = { 0 }, ub[W * H], zero[W * H] = { 0 };
    uint8_t occ[W * H];
    fill_const(u, W * H, 2.0f);
    fill_const(ub, W * H, -2.0f);
    vg_occlusion(table(_i), occ, W, u, v, ub, zero, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_msg(occ[y * W + x] == (x + 2 > W - 1), "(%d, %d)", x, y);
}
END_TEST

START_TEST(test_compose_translations)
{
    enum { W = 17, H = 13 };
    float au[W * H], av[W * H], bu[W * H], bv[W * H], cu[W * H], cv[W * H];
    uint8_t aocc[W * H] = { 0 }, bocc[W * H] = { 0 }, cocc[W * H];
    fill_const(au, W * H, 1.5f);
    fill_const(av, W * H, -0.25f);
    fill_const(bu, W * H, -3.0f);
    fill_const(bv, W * H, 2.0f);
    memset(cocc, 9, sizeof(cocc));
    vg_flow_compose(cu, cv, cocc, au, av, NULL, bu, bv, NULL, W, W, W, H);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(cu[i] == -1.5f && cv[i] == 1.75f && cocc[i] == 0, "%d: %g %g %d", i, cu[i],
                      cv[i], cocc[i]);

    /* masks: a's own, and b's at the rounded landing point */
    fill_const(au, W * H, 2.0f);
    fill_const(av, W * H, 1.0f);
    aocc[3 * W + 3] = 1;
    bocc[5 * W + 10] = 1;
    vg_flow_compose(cu, cv, cocc, au, av, aocc, bu, bv, bocc, W, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int lx = clampi(x + 2, W - 1), ly = clampi(y + 1, H - 1);
            const int want = (x == 3 && y == 3) || (lx == 10 && ly == 5);
            ck_assert_msg(cocc[y * W + x] == want, "mask (%d, %d)", x, y);
        }
    vg_flow_compose(cu, cv, NULL, au, av, aocc, bu, bv, bocc, W, W, W, H); /* not written */
}
END_TEST

/* Nearest-neighbour mask resize, centres aligned: each output pixel takes
 * the source pixel its centre falls in. */
START_TEST(test_mask_resize)
{
    const uint8_t src[2 * 3] = { 1, 0, 0,
                                 0, 1, 1 };
    uint8_t up[4 * 6], down[1 * 2], same[6];
    vg_mask_resize(up, 6, 4, src, 3, 2);        /* x2: every pixel a 2x2 block */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++)
            ck_assert_int_eq(up[y * 6 + x], src[(y / 2) * 3 + x / 2]);
    vg_mask_resize(down, 2, 1, src, 3, 2);      /* centres (0.75, 1) and (2.25, 1) */
    ck_assert_int_eq(down[0], 0);
    ck_assert_int_eq(down[1], 1);
    vg_mask_resize(same, 3, 2, src, 3, 2);
    ck_assert(!memcmp(same, src, sizeof(src)));
}
END_TEST

START_TEST(test_flow_resize)
{
    enum { SW = 16, SH = 12, DW = 40, DH = 18 };
    float su[SW * SH], sv[SW * SH], du[DW * DH], dv[DW * DH];
    fill_const(su, SW * SH, 1.5f);
    fill_const(sv, SW * SH, -2.0f);
    vg_flow_resize(du, dv, DW, DW, DH, su, sv, SW, SW, SH);
    for (int i = 0; i < DW * DH; i++)
        ck_assert_msg(fabsf(du[i] - 3.75f) <= 1e-6f && fabsf(dv[i] + 3.0f) <= 1e-6f, "%d: %g %g",
                      i, du[i], dv[i]);

    /* pixel centres aligned: u = x resamples to (x + 0.5) sw/dw - 0.5, then scaled */
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SW; x++)
            su[y * SW + x] = (float)x;
    vg_flow_resize(du, dv, DW, DW, DH, su, sv, SW, SW, SH);
    for (int x = 0; x < DW; x++) {
        const double sx = fmin(fmax((x + 0.5) * SW / DW - 0.5, 0), SW - 1);
        ck_assert_msg(fabs(du[3 * DW + x] - sx * DW / SW) <= 1e-5, "x %d: %g vs %g", x,
                      du[3 * DW + x], sx * DW / SW);
    }

    /* downscale */
    fill_const(su, SW * SH, 1.5f);
    vg_flow_resize(du, dv, 4, 4, 3, su, sv, SW, SW, SH);
    for (int i = 0; i < 12; i++)
        ck_assert(fabsf(du[i] - 0.375f) <= 1e-6f && fabsf(dv[i] + 0.5f) <= 1e-6f);
}
END_TEST

START_TEST(test_fuse_plane)
{
    enum { W = 19, H = 5, CS = 23 };
    float cur[CS * H], prev[W * H], dst[W * H];
    uint8_t mask[W * H], none[W * H] = { 0 }, all[W * H];
    for (int i = 0; i < CS * H; i++)
        cur[i] = frand(-5, 5);
    for (int i = 0; i < W * H; i++) {
        prev[i] = frand(-5, 5);
        mask[i] = rnd() & 1;
    }
    memset(all, 1, sizeof(all));
    const VgWarpDSP *d = table(_i);
    vg_fuse_plane(d, dst, W, cur, CS, prev, W, none, W, 0.0f, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert(dst[y * W + x] == cur[y * CS + x]);
    vg_fuse_plane(d, dst, W, cur, CS, prev, W, mask, W, 1.0f, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert(dst[y * W + x] == (mask[y * W + x] ? cur[y * CS + x] : prev[y * W + x]));
    vg_fuse_plane(d, dst, W, cur, CS, prev, W, all, W, 0.7f, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert(dst[y * W + x] == cur[y * CS + x]);
    vg_fuse_plane(d, dst, W, cur, CS, prev, W, none, W, 0.25f, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float c = cur[y * CS + x], p = prev[y * W + x];
            ck_assert(fabsf(dst[y * W + x] - (0.75f * c + 0.25f * p)) <= 1e-5f);
        }
}
END_TEST

START_TEST(test_motion_boundary)
{
    enum { W = 16, H = 6 };
    float u[W * H], v[W * H] = { 0 };
    uint8_t mb[W * H];
    fill_const(u, W * H, 3.0f);
    vg_motion_boundary(mb, W, u, v, W, W, H);
    for (int i = 0; i < W * H; i++)
        ck_assert(mb[i] == 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            u[y * W + x] = x < 8 ? 0.0f : 5.0f;
    vg_motion_boundary(mb, W, u, v, W, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_msg(mb[y * W + x] == (x == 7 || x == 8), "(%d, %d)", x, y);
    vg_motion_boundary(mb, 1, u, v, W, 1, 1); /* 1x1: no neighbours */
    ck_assert(mb[0] == 0);
}
END_TEST

/* NaN, Inf and huge flows through every plane helper, over buffers sized
 * exactly (valgrind sees any stray read); 1x1 planes included. */
START_TEST(test_hostile_planes)
{
    const int sizes[][2] = { { 1, 1 }, { 1, 5 }, { 9, 1 }, { 11, 7 } };
    for (int s = 0; s < 4; s++) {
        const int w = sizes[s][0], h = sizes[s][1], n = w * h;
        float *src = plane(w, h, w, M_RANDOM), *u = falloc(n), *v = falloc(n);
        float *bu = falloc(n), *bv = falloc(n), *cu = falloc(n), *cv = falloc(n);
        float *dst = falloc(n);
        uint8_t *occ = malloc(n), *m = calloc(n, 1);
        ck_assert(occ && m);
        for (int i = 0; i < n; i++) {
            u[i] = flow_value(M_EXTREME, i % w, w);
            v[i] = flow_value(M_EXTREME, i / w, h);
            bu[i] = flow_value(M_EXTREME, i % w, w);
            bv[i] = flow_value(M_EXTREME, i / w, h);
        }
        for (int t = 0; t < 2; t++) {
            vg_warp_plane(table(t), dst, w, src, w, w, h, u, v, w, w, h);
            vg_occlusion(table(t), occ, w, u, v, bu, bv, w, w, h);
            for (int i = 0; i < n; i++)
                ck_assert(occ[i] <= 1);
        }
        vg_motion_boundary(occ, w, u, v, w, w, h);
        vg_flow_compose(cu, cv, occ, u, v, m, bu, bv, m, w, w, w, h);
        vg_flow_resize(cu, cv, w, w, h, u, v, w, w, h);
        vg_flow_resize(cu, cv, 1, 1, 1, u, v, w, w, h);
        free(src), free(u), free(v), free(bu), free(bv), free(cu), free(cv), free(dst);
        free(occ), free(m);
    }
}
END_TEST

/* ---------------------------------------------------------------- reference */

START_TEST(test_opencv_remap)
{
    static const struct { const char *name; double tol; } cases[] = {
        { "noise", 1e-5 },  /* flow on remap's 1/32 px grid: float rounding only */
        { "smooth", 1e-3 }, /* remap's 1/32 px rounding on gentle gradients */
    };
    VgWeights *wt = vgt_fixture("temporal/warp_ref.safetensors");
    for (int c = 0; c < 2; c++) {
        const VgTensor *src = vgt_get(wt, "%s.src", cases[c].name);
        const VgTensor *u = vgt_get(wt, "%s.u", cases[c].name);
        const VgTensor *v = vgt_get(wt, "%s.v", cases[c].name);
        const VgTensor *want = vgt_get(wt, "%s.dst", cases[c].name);
        ck_assert(src->ndim == 2 && u->ndim == 2 && src->dtype == VG_DT_F32);
        const int sh = (int)src->ne[0], sw = (int)src->ne[1];
        const int h = (int)u->ne[0], w = (int)u->ne[1];
        VgTensor got;
        vgt_alloc_like(&got, want); // [h, w]
        vg_warp_plane(table(_i), got.data, w, src->data, sw, sw, sh, u->data, v->data, w, w, h);
        vgt_assert_close(&got, want, cases[c].tol, cases[c].name);
        vg_tensor_free(&got);
    }
    vg_weights_close(&wt);
}
END_TEST

int main(void)
{
    init_tables();
    if (!have_opt)
        fprintf(stderr, "check_temporal: CPU without AVX2+FMA: C compared with itself\n");
    Suite *s = suite_create("temporal");

    TCase *tc = tcase_create("dsp");
    tcase_add_unchecked_fixture(tc, init_tables, NULL);
    tcase_add_test(tc, test_dispatch);
    tcase_add_loop_test(tc, test_warp_row, 0, N_WIDTHS * M_N);
    tcase_add_loop_test(tc, test_occlusion_row, 0, N_WIDTHS * M_N);
    tcase_add_test(tc, test_occlusion_ties);
    tcase_add_loop_test(tc, test_fuse_row, 0, N_WIDTHS * M_N);
    suite_add_tcase(s, tc);

    /* loop index 0 = C table, 1 = best table */
    tc = tcase_create("props");
    tcase_add_unchecked_fixture(tc, init_tables, NULL);
    tcase_add_loop_test(tc, test_zero_flow_identity, 0, 2);
    tcase_add_loop_test(tc, test_integer_translation, 0, 2);
    tcase_add_loop_test(tc, test_ramp_subpixel, 0, 2);
    tcase_add_loop_test(tc, test_occlusion_square, 0, 2);
    tcase_add_loop_test(tc, test_occlusion_outside, 0, 2);
    tcase_add_test(tc, test_compose_translations);
    tcase_add_test(tc, test_mask_resize);
    tcase_add_test(tc, test_flow_resize);
    tcase_add_loop_test(tc, test_fuse_plane, 0, 2);
    tcase_add_test(tc, test_motion_boundary);
    tcase_add_test(tc, test_hostile_planes);
    suite_add_tcase(s, tc);

    tc = tcase_create("reference");
    tcase_add_unchecked_fixture(tc, init_tables, NULL);
    tcase_add_loop_test(tc, test_opencv_remap, 0, 2);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
