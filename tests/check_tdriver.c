/*
 * The temporal driver (include/visgen/temporal.h) on synthetic sequences
 * whose motion is known exactly: a smooth analytic texture translated by a
 * fixed step per frame, so each frame is the same function sampled at
 * shifted positions. Processors here are simple, checkable functions
 * (identity, identity plus per-frame flicker, 2x nearest upscaling, a
 * brightness drift) counting their calls.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/temporal.h"
#include "tests/common/vgtest.h"

#define W 96
#define H 64

typedef struct Planes {
    float *p;                 /* [3, h, w] */
    VgImage img;
} Planes;

static void planes_alloc(Planes *pl, int w, int h)
{
    pl->p = calloc((size_t)3 * w * h, sizeof(float));
    ck_assert_ptr_nonnull(pl->p);
    pl->img.width = w;
    pl->img.height = h;
    for (int c = 0; c < 3; c++) {
        pl->img.data[c] = pl->p + (size_t)c * w * h;
        pl->img.stride[c] = (ptrdiff_t)w * sizeof(float);
    }
}

/* Smooth texture with structure at several scales and in both directions. */
static float texture(float x, float y, int c)
{
    return 0.5f + 0.18f * sinf(0.31f * x + 0.12f * y + c) + 0.14f * sinf(0.07f * x - 0.23f * y)
                + 0.1f * cosf(0.17f * x * (1 + 0.1f * c) + 0.29f * y);
}

/* Frame @t of the sequence moving by (@dx, @dy) per frame; @scene picks an
 * unrelated picture (a cut). */
static void make_frame(Planes *pl, int t, float dx, float dy, int scene)
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float sx = x - dx * t, sy = y - dy * t;
                float v = scene ? 1.f - texture(1.7f * sy + 40, 1.3f * sx - 11, 2 - c)
                                : texture(sx, sy, c);
                pl->p[(size_t)c * W * H + (size_t)y * W + x] = v;
            }
}

static int64_t seq_base;   /* index of the next frame sent (indices run on across flushes) */

typedef struct Proc {
    int calls, inits, scale;
    float flicker;            /* amplitude of a per-call brightness offset */
    float drift;              /* brightness added per call */
    int fail_at;              /* call number that fails, -1 = none */
} Proc;

static int process(void *opaque, const VgImage *src, const VgImage *init, float *state,
                   VgImage *dst, int64_t index)
{
    Proc *p = opaque;
    int k = p->calls++;

    if (k == p->fail_at)
        return VG_ERR(EIO);
    p->inits += init != NULL;
    float off = p->drift * k + (k & 1 ? p->flicker : -p->flicker);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < dst->height; y++) {
            const float *s = (const float *)((const char *)src->data[c] + (y / p->scale) * src->stride[c]);
            float *d = (float *)((char *)dst->data[c] + y * dst->stride[c]);
            for (int x = 0; x < dst->width; x++)
                d[x] = s[x / p->scale] + off;
        }
    return 0;
}

static VgTemporal *open_t(VgTemporalSettings *ts, Proc *p)
{
    VgTemporal *t = NULL;
    VgFrameProcessor fp = { p, process, 0, 0, 0 };
    seq_base = 0;
    if (!p->scale)
        p->scale = 1;
    ts->in_w = W;
    ts->in_h = H;
    ts->out_w = W * p->scale;
    ts->out_h = H * p->scale;
    ts->log_cb = vgt_log_cb;
    ts->log_level = VG_LOG_ERROR;
    ck_assert_int_eq(vg_temporal_open(&t, ts, &fp), 0);
    return t;
}

/* Mean squared difference of two [3, h, w] images over the inner region
 * (a margin of @m pixels excluded: content enters there). */
static double mse_inner(const VgImage *a, const Planes *b, int m)
{
    double s = 0.;
    long n = 0;
    for (int c = 0; c < 3; c++)
        for (int y = m; y < a->height - m; y++) {
            const float *ra = (const float *)((const char *)a->data[c] + y * a->stride[c]);
            for (int x = m; x < a->width - m; x++, n++) {
                double d = ra[x] - b->p[(size_t)c * a->width * a->height + (size_t)y * a->width + x];
                s += d * d;
            }
        }
    return s / n;
}

/* Run @n frames through @t; @out (may be NULL) receives copies of the
 * outputs [n][3, oh, ow]; returns how many came out. Checks order. */
static int run_seq(VgTemporal *t, int n, float dx, float dy, int cut_at, Planes *out,
                   VgTemporalInfo *infos)
{
    Planes in;
    VgImage o;
    VgTemporalInfo info;
    int got = 0;
    planes_alloc(&in, W, H);
    for (int i = 0; i <= n; i++) {
        if (i < n) {
            make_frame(&in, i, dx, dy, cut_at >= 0 && i >= cut_at);
            ck_assert_int_eq(vg_temporal_send(t, &in.img), 0);
        } else {
            ck_assert_int_eq(vg_temporal_flush(t), 0);
        }
        while (vg_temporal_receive(t, &o, &info) == 0) {
            ck_assert_int_eq(info.index, seq_base + got);
            if (infos)
                infos[got] = info;
            if (out) {
                planes_alloc(&out[got], o.width, o.height);
                for (int c = 0; c < 3; c++)
                    memcpy(out[got].img.data[c], o.data[c], sizeof(float) * o.width * o.height);
            }
            got++;
        }
    }
    free(in.p);
    seq_base += got;
    return got;
}

START_TEST(test_flow_off_is_per_frame)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1 };
    vg_temporal_default_settings(&ts);
    ts.flow = VG_TEMPORAL_FLOW_OFF;
    VgTemporal *t = open_t(&ts, &p);
    Planes out[6], ref;
    planes_alloc(&ref, W, H);
    ck_assert_int_eq(run_seq(t, 6, 2.f, 0.f, -1, out, NULL), 6);
    ck_assert_int_eq(p.calls, 6);
    ck_assert_int_eq(p.inits, 0);
    for (int i = 0; i < 6; i++) {
        make_frame(&ref, i, 2.f, 0.f, 0);
        ck_assert_double_eq(mse_inner(&out[i].img, &ref, 0), 0.);
        free(out[i].p);
    }
    free(ref.p);
    vg_temporal_close(&t);
    ck_assert_ptr_null(t);
}
END_TEST

/* A still image through fusion comes out unchanged (zero flow warps exactly). */
START_TEST(test_still_is_exact)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1 };
    vg_temporal_default_settings(&ts);
    ts.init_blend = 0.5f;
    VgTemporal *t = open_t(&ts, &p);
    Planes out[5], ref;
    planes_alloc(&ref, W, H);
    make_frame(&ref, 0, 0.f, 0.f, 0);
    ck_assert_int_eq(run_seq(t, 5, 0.f, 0.f, -1, out, NULL), 5);
    ck_assert_int_eq(p.inits, 4);           /* every frame but the first has an init image */
    for (int i = 0; i < 5; i++) {
        ck_assert_double_le(mse_inner(&out[i].img, &ref, 0), 1e-12);
        free(out[i].p);
    }
    free(ref.p);
    vg_temporal_close(&t);
}
END_TEST

/*
 * Flicker the processor adds (alternating +-0.05 brightness) is damped by
 * fusion: the output's warp error on the known motion drops well below the
 * per-frame one (temporal 0.5 halves a step; the recursion does better).
 */
START_TEST(test_fusion_damps_flicker)
{
    double ew[2] = { 0, 0 };
    for (int mode = 0; mode < 2; mode++) {
        VgTemporalSettings ts;
        Proc p = { .fail_at = -1, .flicker = 0.05f };
        vg_temporal_default_settings(&ts);
        ts.flow = mode ? VG_TEMPORAL_FLOW_DIS : VG_TEMPORAL_FLOW_OFF;
        ts.temporal = 0.5f;
        VgTemporal *t = open_t(&ts, &p);
        Planes out[8];
        ck_assert_int_eq(run_seq(t, 8, 2.f, 1.f, -1, out, NULL), 8);
        /* consecutive outputs compared after undoing the known shift */
        for (int i = 1; i < 8; i++) {
            Planes sh;
            planes_alloc(&sh, W, H);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        int sx = x - 2 < 0 ? 0 : x - 2, sy = y - 1 < 0 ? 0 : y - 1;
                        sh.p[(size_t)c * W * H + (size_t)y * W + x] =
                            out[i - 1].p[(size_t)c * W * H + (size_t)sy * W + sx];
                    }
            ew[mode] += mse_inner(&out[i].img, &sh, 8) / 7;
            free(sh.p);
        }
        for (int i = 0; i < 8; i++)
            free(out[i].p);
        vg_temporal_close(&t);
    }
    /* per frame: (2 * 0.05)^2 = 0.01 */
    ck_assert_double_gt(ew[0], 0.009);
    ck_assert_double_lt(ew[1], 0.25 * ew[0]);
}
END_TEST

/* keyint 4: a quarter of the calls, every frame out in order, in-between
 * frames close to the truth (the identity processor's output is the input). */
START_TEST(test_keyint)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1 };
    VgTemporalInfo info[17];
    vg_temporal_default_settings(&ts);
    ts.keyint = 4;
    ts.temporal = 0.f;
    VgTemporal *t = open_t(&ts, &p);
    Planes out[17], ref;
    planes_alloc(&ref, W, H);
    ck_assert_int_eq(run_seq(t, 17, 1.5f, 0.5f, -1, out, info), 17);
    ck_assert_int_eq(p.calls, 5);           /* frames 0, 4, 8, 12, 16 */
    ck_assert_int_eq(vg_temporal_processed(t), 5);
    for (int i = 0; i < 17; i++) {
        ck_assert_int_eq(info[i].keyframe, i % 4 == 0);
        make_frame(&ref, i, 1.5f, 0.5f, 0);
        double mse = mse_inner(&out[i].img, &ref, 10);
        ck_assert_msg(mse < 2e-4, "frame %d: mse %g", i, mse);   /* > 37 dB */
        free(out[i].p);
    }
    free(ref.p);
    vg_temporal_close(&t);
}
END_TEST

/* Frames after the last keyframe at the end of the stream come out, and
 * the next send after a flush starts afresh. */
START_TEST(test_keyint_flush_tail)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1 };
    vg_temporal_default_settings(&ts);
    ts.keyint = 4;
    VgTemporal *t = open_t(&ts, &p);
    ck_assert_int_eq(run_seq(t, 7, 1.f, 0.f, -1, NULL, NULL), 7);   /* keys 0, 4; 5, 6 tail */
    ck_assert_int_eq(p.calls, 2);
    ck_assert_int_eq(run_seq(t, 2, 1.f, 0.f, -1, NULL, NULL), 2);   /* new start: key 0 */
    ck_assert_int_eq(p.calls, 3);
    vg_temporal_close(&t);
}
END_TEST

/* A cut is detected, starts a keyframe and nothing crosses it. */
START_TEST(test_scenecut)
{
    for (int keyint = 1; keyint <= 4; keyint += 3) {
        VgTemporalSettings ts;
        Proc p = { .fail_at = -1 };
        VgTemporalInfo info[8];
        vg_temporal_default_settings(&ts);
        ts.keyint = keyint;
        VgTemporal *t = open_t(&ts, &p);
        Planes out[8], ref;
        planes_alloc(&ref, W, H);
        ck_assert_int_eq(run_seq(t, 8, 1.f, 0.f, 5, out, info), 8);
        for (int i = 0; i < 8; i++) {
            ck_assert_msg(info[i].scenecut == (i == 5), "keyint %d frame %d: cut %d score %.3f",
                          keyint, i, info[i].scenecut, info[i].scene_score);
            if (i != 5)
                ck_assert_float_lt(info[i].scene_score, 0.2f);
        }
        ck_assert(info[5].keyframe);
        make_frame(&ref, 5, 1.f, 0.f, 1);
        ck_assert_double_le(mse_inner(&out[5].img, &ref, 0), 1e-12);    /* nothing carried over */
        for (int i = 0; i < 8; i++)
            free(out[i].p);
        free(ref.p);
        vg_temporal_close(&t);
    }
}
END_TEST

/* An upscaling processor: outputs at twice the size, flow resized to them. */
START_TEST(test_upscale_geometry)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1, .scale = 2 };
    vg_temporal_default_settings(&ts);
    ts.flow_downscale = 2;
    VgTemporal *t = open_t(&ts, &p);
    Planes out[4];
    ck_assert_int_eq(run_seq(t, 4, 2.f, 0.f, -1, out, NULL), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(out[i].img.width, 2 * W);
        ck_assert_int_eq(out[i].img.height, 2 * H);
        free(out[i].p);
    }
    ck_assert_int_eq(p.inits, 0);           /* no init image when sizes differ */
    vg_temporal_close(&t);
}
END_TEST

/* color_coherence=first undoes a brightness drift of the processor. */
START_TEST(test_color_coherence)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = -1, .drift = 0.03f };
    vg_temporal_default_settings(&ts);
    ts.flow = VG_TEMPORAL_FLOW_OFF;
    ts.color_coherence = VG_COLOR_FIRST;
    VgTemporal *t = open_t(&ts, &p);
    Planes out[5];
    ck_assert_int_eq(run_seq(t, 5, 0.f, 0.f, -1, out, NULL), 5);
    for (int i = 1; i < 5; i++)
        ck_assert_double_le(mse_inner(&out[i].img, &out[0], 0), 1e-8);
    for (int i = 0; i < 5; i++)
        free(out[i].p);
    vg_temporal_close(&t);
}
END_TEST

/* State on a 4x coarser grid (like diffusion noise) travels with the
 * content: each cell keeps its value, frame after frame; only cells with
 * nothing to carry arrive as NaN. */
typedef struct StateProc {
    int calls, nan_in, carried_ok, carried_bad;
    float next_id;
} StateProc;

static int process_state(void *opaque, const VgImage *src, const VgImage *init, float *state,
                         VgImage *dst, int64_t index)
{
    StateProc *p = opaque;
    const int sw = W / 4, sh = H / 4;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < dst->height; y++)
            memcpy((char *)dst->data[c] + y * dst->stride[c],
                   (const char *)src->data[c] + y * src->stride[c], dst->width * sizeof(float));
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++) {
            float *v = &state[y * sw + x];
            if (isnan(*v)) {
                p->nan_in++;
                /* new cells are named after where they appear in the scene,
                 * so a carried value names the cell it came from */
                *v = (float)(y * 1000 + x - p->calls + 100);
            } else if (x >= 2 && x < sw - 1 && y >= 1 && y < sh - 1) {
                if (*v == (float)(y * 1000 + x - p->calls + 100))
                    p->carried_ok++;
                else
                    p->carried_bad++;
            }
        }
    p->calls++;
    return 0;
}

START_TEST(test_state_follows_motion)
{
    VgTemporalSettings ts;
    StateProc p = { 0 };
    VgFrameProcessor fp = { &p, process_state, 1, W / 4, H / 4 };
    VgTemporal *t = NULL;
    vg_temporal_default_settings(&ts);
    ts.in_w = ts.out_w = W;
    ts.in_h = ts.out_h = H;
    ck_assert_int_eq(vg_temporal_open(&t, &ts, &fp), 0);
    seq_base = 0;
    /* content moves 4 px = one state cell right per frame; a cell at
     * column x of frame t is column x - t of frame 0 */
    ck_assert_int_eq(run_seq(t, 4, 4.f, 0.f, -1, NULL, NULL), 4);
    ck_assert_int_eq(p.calls, 4);
    ck_assert_int_eq(p.carried_bad, 0);
    ck_assert_int_ge(p.carried_ok, 3 * (W / 4 - 3) * (H / 4 - 2));
    ck_assert_int_ge(p.nan_in, (W / 4) * (H / 4));            /* the whole first frame */
    ck_assert_int_le(p.nan_in, (W / 4) * (H / 4) + 3 * 3 * (H / 4)); /* + entering columns */
    vg_temporal_close(&t);
}
END_TEST

/* A failed keyframe drops that frame only: the queue before it comes out,
 * later frames start a new shot, nothing overflows however long it goes on. */
START_TEST(test_failure_recovers)
{
    VgTemporalSettings ts;
    Proc p = { .fail_at = 1 };
    vg_temporal_default_settings(&ts);
    ts.keyint = 4;
    VgTemporal *t = open_t(&ts, &p);
    Planes in;
    VgImage o;
    VgTemporalInfo info;
    int64_t got[600];
    int ngot = 0, nfail = 0;
    planes_alloc(&in, W, H);
    for (int i = 0; i < 520; i++) {
        make_frame(&in, i % 16, 1.f, 0.f, 0);
        if (i >= 4 && i < 500)
            p.fail_at = p.calls;            /* every keyframe fails for a while */
        else
            p.fail_at = -1;
        nfail += vg_temporal_send(t, &in.img) < 0;
        while (vg_temporal_receive(t, &o, &info) == 0)
            got[ngot++] = info.index;
    }
    ck_assert_int_eq(vg_temporal_flush(t), 0);
    while (vg_temporal_receive(t, &o, &info) == 0)
        got[ngot++] = info.index;
    ck_assert_int_gt(nfail, 0);
    ck_assert_int_eq(ngot + nfail, 520);    /* every frame out but the failed ones */
    for (int i = 1; i < ngot; i++)
        ck_assert_int_gt(got[i], got[i - 1]);
    free(in.p);
    vg_temporal_close(&t);
}
END_TEST

START_TEST(test_errors)
{
    VgTemporalSettings ts;
    VgTemporal *t = NULL;
    Proc p = { .fail_at = -1, .scale = 1 };
    VgFrameProcessor fp = { &p, process, 0, 0, 0 };

    vg_temporal_default_settings(&ts);
    ts.in_w = ts.out_w = W;
    ts.in_h = ts.out_h = H;
    ts.log_cb = vgt_log_cb;
    ts.log_level = VG_LOG_ERROR;

    VgTemporalSettings b = ts;
    b.flow = VG_TEMPORAL_FLOW_OFF; b.keyint = 4;
    vgt_log_reset();
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "keyint"));
    b = ts; b.keyint = 0;
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    b = ts; b.temporal = 1.5f;
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "temporal"));
    b = ts; b.flow_downscale = 16;
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    b = ts; b.in_w = 0;
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    b = ts; b.flow_preset = 7;
    ck_assert_int_eq(vg_temporal_open(&t, &b, &fp), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_temporal_open(&t, &ts, NULL), VG_ERR(EINVAL));

    /* wrong frame size, processor failure */
    p.fail_at = 1;
    ck_assert_int_eq(vg_temporal_open(&t, &ts, &fp), 0);
    Planes small, in;
    planes_alloc(&small, W / 2, H);
    planes_alloc(&in, W, H);
    ck_assert_int_eq(vg_temporal_send(t, &small.img), VG_ERR(EINVAL));
    ck_assert_int_eq(vg_temporal_send(t, &in.img), 0);
    ck_assert_int_eq(vg_temporal_send(t, &in.img), VG_ERR(EIO));
    VgTemporalSettings u = ts;
    u.scenecut = -0.1f;
    ck_assert_int_eq(vg_temporal_update(t, &u), VG_ERR(EINVAL));
    u.scenecut = 0.2f;
    ck_assert_int_eq(vg_temporal_update(t, &u), 0);
    free(small.p);
    free(in.p);
    vg_temporal_close(&t);
    vg_temporal_close(&t);                  /* NULL is fine */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("temporal_driver");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flow_off_is_per_frame);
    tcase_add_test(tc, test_still_is_exact);
    tcase_add_test(tc, test_fusion_damps_flicker);
    tcase_add_test(tc, test_keyint);
    tcase_add_test(tc, test_keyint_flush_tail);
    tcase_add_test(tc, test_scenecut);
    tcase_add_test(tc, test_upscale_geometry);
    tcase_add_test(tc, test_color_coherence);
    tcase_add_test(tc, test_state_follows_motion);
    tcase_add_test(tc, test_failure_recovers);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
