/*
 * Temporal driver (include/visgen/temporal.h): flow between consecutive
 * input frames, keyframe decisions, fusion and propagation.
 *
 * Frame t's flows are computed when it arrives: b (t -> t-1, to pull
 * earlier outputs onto t) and f (t-1 -> t, to pull later outputs back);
 * each checked against the other gives the two occlusion masks. With
 * keyint > 1 the flows to the last keyframe are chained as frames arrive,
 * so the occluded share that forces an early keyframe is known at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporal/flow.h"
#include "temporal/frames.h"

#define MAX_KEYINT 250
#define MAX_SIDE   16384

struct VgTemporal {
    VgTemporalSettings s;
    VgFrameProcessor proc;
    VgWarpDSP dsp;
    VgFlowParams fp;
    VgFlowCtx *flow;            /* buffers kept between the flow calls */
    VgTGeom g;
    VgTScratch sc;
    float *tmp;                 /* [fh, fw] */

    VgTFrame *last;             /* newest input frame (its luma feeds the next flow) */
    VgTFrame *key;              /* last keyframe with its output, NULL at a shot start */
    VgTFrame *pending[MAX_KEYINT + 1]; /* frames after key waiting for the next keyframe */
    int npending;
    VgTFrame **ready;           /* outputs in order, ready[rhead .. nready) */
    int nready, rhead, rcap;
    VgTFrame *returned;         /* handed out by receive, released at the next call */

    int64_t nsent, nprocessed;
    int has_ref;                /* colour coherence reference set */
    float ref_mean[3], ref_sd[3];
};

static void tlog(VgTemporal *t, int level, const char *fmt, ...)
{
    va_list ap;

    if (!t->s.log_cb || level > t->s.log_level)
        return;
    va_start(ap, fmt);
    t->s.log_cb(t->s.log_cookie, level, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- frames */

static void frame_unref(VgTFrame **pf)
{
    VgTFrame *f = *pf;

    *pf = NULL;
    if (!f || --f->refs > 0)
        return;
    free(f->rgb); free(f->luma);
    free(f->bu); free(f->bv); free(f->fu); free(f->fv);
    free(f->occ_b); free(f->occ_f);
    free(f->ku); free(f->kv); free(f->kocc);
    free(f->out);
    free(f->state);
    free(f);
}

static VgTFrame *frame_ref(VgTFrame *f)
{
    f->refs++;
    return f;
}

static int frame_alloc_flows(const VgTGeom *g, VgTFrame *f, int chain)
{
    size_t n = (size_t)g->fw * g->fh;

    f->bu = malloc(n * sizeof(float)); f->bv = malloc(n * sizeof(float));
    f->fu = malloc(n * sizeof(float)); f->fv = malloc(n * sizeof(float));
    f->occ_b = malloc(n); f->occ_f = malloc(n);
    if (chain) {
        f->ku = malloc(n * sizeof(float)); f->kv = malloc(n * sizeof(float));
        f->kocc = malloc(n);
    }
    if (!f->bu || !f->bv || !f->fu || !f->fv || !f->occ_b || !f->occ_f ||
        (chain && (!f->ku || !f->kv || !f->kocc)))
        return VG_ERR(ENOMEM);
    return 0;
}

static int frame_alloc_out(const VgTGeom *g, VgTFrame *f)
{
    if (!f->out)
        f->out = malloc((size_t)3 * g->out_w * g->out_h * sizeof(float));   // [3, out_h, out_w]
    return f->out ? 0 : VG_ERR(ENOMEM);
}

static void image_view(VgImage *img, float *planes, int w, int h)
{
    size_t n = (size_t)w * h;

    img->width = w;
    img->height = h;
    for (int c = 0; c < 3; c++) {
        img->data[c] = planes + c * n;
        img->stride[c] = (ptrdiff_t)w * sizeof(float);
    }
}

/* Room for @n more ready frames, so that pushing them cannot fail halfway. */
static int reserve_ready(VgTemporal *t, int n)
{
    if (t->rhead) {
        memmove(t->ready, t->ready + t->rhead, (t->nready - t->rhead) * sizeof(*t->ready));
        t->nready -= t->rhead;
        t->rhead = 0;
    }
    if (t->nready + n > t->rcap) {
        int cap = t->nready + n + 16;
        VgTFrame **r = realloc(t->ready, cap * sizeof(*r));
        if (!r)
            return VG_ERR(ENOMEM);
        t->ready = r;
        t->rcap = cap;
    }
    return 0;
}

static int push_ready(VgTemporal *t, VgTFrame *f)
{
    int ret = reserve_ready(t, 1);

    if (ret < 0)
        return ret;
    t->ready[t->nready++] = frame_ref(f);
    /* what remains needed of an output frame is its output */
    free(f->rgb);
    f->rgb = NULL;
    return 0;
}

/* -------------------------------------------------------------- processing */

static void color_coherence(VgTemporal *t, VgTFrame *f)
{
    size_t n = (size_t)t->g.out_w * t->g.out_h;

    if (t->s.color_coherence == VG_COLOR_OFF)
        return;
    if (t->has_ref)
        vg_t_color_match(f->out, n, t->ref_mean, t->ref_sd);
    if (!t->has_ref || t->s.color_coherence == VG_COLOR_KEYFRAME) {
        vg_t_color_stats(f->out, n, t->ref_mean, t->ref_sd);
        t->has_ref = 1;
    }
}

/*
 * Run the processor on @f. With a previous keyframe @prev and the flow
 * (@u, @v, @occ) from @f to it, the warped previous output seeds the init
 * image and is mixed into the result where visible.
 */
static int process_key(VgTemporal *t, VgTFrame *f, VgTFrame *prev,
                       const float *u, const float *v, const uint8_t *occ)
{
    VgTGeom *g = &t->g;
    VgTScratch *sc = &t->sc;
    VgImage src, dst, init;
    const VgImage *pinit = NULL;
    int same_size = g->in_w == g->out_w && g->in_h == g->out_h;
    int warped = 0, ret;

    if ((ret = frame_alloc_out(g, f)) < 0)
        return ret;
    image_view(&src, f->rgb, g->in_w, g->in_h);
    image_view(&dst, f->out, g->out_w, g->out_h);

    if (prev && (t->s.temporal > 0.f || t->s.init_blend > 0.f)) {
        /* Only occlusions are left out. Leaving out motion boundaries too
         * (Ruder et al.) raised E_warp of stylised tree.avi from 39% to 67%
         * of per-frame output: they are many at small sizes, and the flow
         * there is mostly right. */
        vg_t_warp_image(&t->dsp, g, sc, sc->wa, sc->ma, prev->out, u, v, occ);
        warped = 1;
    }
    if (warped && same_size && t->s.init_blend > 0.f) {
        size_t n = (size_t)g->in_w * g->in_h;
        for (int c = 0; c < 3; c++)
            vg_fuse_plane(&t->dsp, sc->init + c * n, g->in_w, f->rgb + c * n, g->in_w,
                          sc->wa + c * n, g->in_w, sc->ma, g->in_w, t->s.init_blend,
                          g->in_w, g->in_h);
        image_view(&init, sc->init, g->in_w, g->in_h);
        pinit = &init;
    }

    if (t->proc.state_c) {
        size_t ns = (size_t)t->proc.state_c * t->proc.state_w * t->proc.state_h;
        if (!f->state && !(f->state = malloc(ns * sizeof(float))))  // [state_c, state_h, state_w]
            return VG_ERR(ENOMEM);
        vg_t_warp_state(g, sc, f->state, prev ? prev->state : NULL, t->proc.state_c,
                        t->proc.state_w, t->proc.state_h, u, v, occ);
    }
    ret = t->proc.process(t->proc.opaque, &src, pinit, f->state, &dst, f->info.index);
    t->nprocessed++;
    if (ret < 0)
        return ret;
    f->info.keyframe = 1;
    color_coherence(t, f);

    if (warped && t->s.temporal > 0.f) {
        size_t n = (size_t)g->out_w * g->out_h;
        for (int c = 0; c < 3; c++)
            vg_fuse_plane(&t->dsp, f->out + c * n, g->out_w, f->out + c * n, g->out_w,
                          sc->wa + c * n, g->out_w, sc->ma, g->out_w, t->s.temporal,
                          g->out_w, g->out_h);
    }
    return 0;
}

/* Frames after the last keyframe with no keyframe after them (a cut or the
 * end of the stream): the keyframe's output warped along the chained flow. */
static int propagate_forward(VgTemporal *t)
{
    int ret;

    /* everything that can fail first: a failure leaves the queue as it was */
    for (int i = 0; i < t->npending; i++)
        if ((ret = frame_alloc_out(&t->g, t->pending[i])) < 0)
            return ret;
    if ((ret = reserve_ready(t, t->npending)) < 0)
        return ret;
    for (int i = 0; i < t->npending; i++) {
        VgTFrame *f = t->pending[i];
        vg_t_warp_image(&t->dsp, &t->g, &t->sc, f->out, NULL, t->key->out, f->ku, f->kv, NULL);
        if ((ret = push_ready(t, f)) < 0)
            return ret;
        frame_unref(&t->pending[i]);
    }
    t->npending = 0;
    return 0;
}

/*
 * pending[0 .. n-1) lie between the keyframes t->key and @k1 (= pending[n-1]),
 * whose outputs exist. Walking back from k1 chains the flows to it; each
 * frame blends both keyframes' warped outputs, the nearer one weighing more.
 */
static int propagate_between(VgTemporal *t, VgTFrame *k1)
{
    VgTGeom *g = &t->g;
    VgTScratch *sc = &t->sc;
    int n = t->npending - 1, cur = 0, ret;

    for (int i = 0; i < n; i++)
        if ((ret = frame_alloc_out(g, t->pending[i])) < 0)
            return ret;
    if ((ret = reserve_ready(t, t->npending)) < 0)
        return ret;
    for (int i = n - 1; i >= 0; i--) {
        VgTFrame *f = t->pending[i], *next = t->pending[i + 1];
        /* f -> next is next's forward flow; the pixels of f next does not
         * show are next's occ_f */
        const float *u = next->fu, *v = next->fv;
        const uint8_t *occ = next->occ_f;
        if (i < n - 1) {
            vg_flow_compose(sc->cu[cur], sc->cv[cur], sc->cocc[cur], next->fu, next->fv,
                            next->occ_f, sc->cu[!cur], sc->cv[!cur], sc->cocc[!cur],
                            g->fw, g->fw, g->fw, g->fh);
        } else {
            size_t m = (size_t)g->fw * g->fh;
            memcpy(sc->cu[cur], u, m * sizeof(float));
            memcpy(sc->cv[cur], v, m * sizeof(float));
            memcpy(sc->cocc[cur], occ, m);
        }
        vg_t_warp_image(&t->dsp, g, sc, sc->wa, sc->ma, t->key->out, f->ku, f->kv, f->kocc);
        vg_t_warp_image(&t->dsp, g, sc, sc->wb, sc->mb, k1->out, sc->cu[cur], sc->cv[cur],
                        sc->cocc[cur]);
        vg_t_blend2(g, f->out, sc->wa, sc->ma, sc->wb, sc->mb,
                    (float)(k1->info.index - f->info.index),
                    (float)(f->info.index - t->key->info.index));
        cur = !cur;
    }
    for (int i = 0; i <= n; i++) {
        if ((ret = push_ready(t, t->pending[i])) < 0)
            return ret;
        frame_unref(&t->pending[i]);
    }
    t->npending = 0;
    return 0;
}

static void set_key(VgTemporal *t, VgTFrame *f)
{
    frame_unref(&t->key);
    t->key = f ? frame_ref(f) : NULL;
}

/* Flows between @prev and @f, masks, statistics, cut decision. */
static int frame_flows(VgTemporal *t, VgTFrame *f, VgTFrame *prev)
{
    VgTGeom *g = &t->g;
    size_t n = (size_t)g->fw * g->fh;
    int ret;

    if ((ret = frame_alloc_flows(g, f, t->s.keyint > 1)) < 0)
        return ret;
    /* motion changes little from one pair to the next: the previous pair's
     * flows seed the search (one more candidate per patch), which finds
     * fast pans the pyramid alone misses */
    int seed = prev->bu && !prev->info.scenecut;
    if ((ret = vg_flow_dis2(t->flow, f->luma, prev->luma, g->fw, g->fh, g->fw, &t->fp,
                            seed ? prev->bu : NULL, seed ? prev->bv : NULL, f->bu, f->bv)) < 0 ||
        (ret = vg_flow_dis2(t->flow, prev->luma, f->luma, g->fw, g->fh, g->fw, &t->fp,
                            seed ? prev->fu : NULL, seed ? prev->fv : NULL, f->fu, f->fv)) < 0)
        return ret;
    vg_occlusion(&t->dsp, f->occ_b, g->fw, f->bu, f->bv, f->fu, f->fv, g->fw, g->fw, g->fh);
    vg_occlusion(&t->dsp, f->occ_f, g->fw, f->fu, f->fv, f->bu, f->bv, g->fw, g->fw, g->fh);
    f->info.flow_mean = vg_t_flow_mean(g, f->bu, f->bv);
    f->info.occluded = vg_t_mask_share(f->occ_b, n);
    f->info.scene_score = vg_t_scene_score(&t->dsp, g, f->luma, prev->luma, f->bu, f->bv,
                                           f->occ_b, t->tmp);
    f->info.scenecut = t->s.scenecut > 0.f && f->info.scene_score > t->s.scenecut;
    if (f->info.scenecut)
        tlog(t, VG_LOG_VERBOSE, "frame %"PRId64": scene cut (%.0f%% unmatched)\n",
             f->info.index, 100.f * f->info.scene_score);
    return 0;
}

/* Chain f's flow to the last keyframe: f -> prev -> ... -> key. */
static void chain_to_key(VgTemporal *t, VgTFrame *f, VgTFrame *prev)
{
    VgTGeom *g = &t->g;
    size_t n = (size_t)g->fw * g->fh;

    if (prev == t->key) {
        memcpy(f->ku, f->bu, n * sizeof(float));
        memcpy(f->kv, f->bv, n * sizeof(float));
        memcpy(f->kocc, f->occ_b, n);
    } else {
        vg_flow_compose(f->ku, f->kv, f->kocc, f->bu, f->bv, f->occ_b,
                        prev->ku, prev->kv, prev->kocc, g->fw, g->fw, g->fw, g->fh);
    }
}

/* @f starts a shot (a cut, or the first frame): nothing is carried over. */
static int start_shot(VgTemporal *t, VgTFrame *f, int new_shot)
{
    int ret;

    if (new_shot)
        t->has_ref = 0;
    if ((ret = process_key(t, f, NULL, NULL, NULL, NULL)) < 0)
        return ret;
    set_key(t, f);
    return push_ready(t, f);
}

int vg_temporal_send(VgTemporal *t, const VgImage *in)
{
    VgTGeom *g = &t->g;
    VgTFrame *f, *prev;
    int ret, queued = 0;

    frame_unref(&t->returned);
    if (!in || in->width != g->in_w || in->height != g->in_h) {
        tlog(t, VG_LOG_ERROR, "temporal: frame of %dx%d, the stream was opened at %dx%d\n",
             in ? in->width : 0, in ? in->height : 0, g->in_w, g->in_h);
        return VG_ERR(EINVAL);
    }
    if (!(f = calloc(1, sizeof(*f))))
        return VG_ERR(ENOMEM);
    f->refs = 1;
    f->info.index = t->nsent++;
    size_t n = (size_t)g->in_w * g->in_h;
    if (!(f->rgb = malloc(3 * n * sizeof(float)))) {            // [3, in_h, in_w]
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < g->in_h; y++)
            memcpy(f->rgb + c * n + (size_t)y * g->in_w,
                   (const char *)in->data[c] + y * in->stride[c], g->in_w * sizeof(float));

    prev = t->last;
    if (t->s.flow == VG_TEMPORAL_FLOW_OFF) {
        ret = start_shot(t, f, 0);
        goto end;
    }
    if (!(f->luma = malloc((size_t)g->fw * g->fh * sizeof(float)))) {  // [fh, fw]
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    vg_t_luma(g, in, f->luma);
    if (prev && (ret = frame_flows(t, f, prev)) < 0)
        goto end;
    if (prev) {
        /* the previous frame's luma and its flow backwards only served
         * this frame's flow (the seed) */
        free(prev->luma); free(prev->bu); free(prev->bv); free(prev->occ_b);
        prev->luma = prev->bu = prev->bv = NULL;
        prev->occ_b = NULL;
    }
    frame_unref(&t->last);
    t->last = frame_ref(f);

    if (!t->key || !prev || f->info.scenecut) {
        /* frames waiting for a keyframe that will not come from this shot */
        if (t->key && (ret = propagate_forward(t)) < 0)
            goto end;
        ret = start_shot(t, f, 1);
    } else if (t->s.keyint == 1) {
        if ((ret = process_key(t, f, t->key, f->bu, f->bv, f->occ_b)) < 0)
            goto end;
        set_key(t, f);
        ret = push_ready(t, f);
    } else {
        VgTFrame *p = t->npending ? t->pending[t->npending - 1] : t->key;
        if (t->npending >= t->s.keyint) {   /* cannot happen: due comes first */
            ret = VG_ERR(EINVAL);
            goto end;
        }
        chain_to_key(t, f, p);
        t->pending[t->npending++] = frame_ref(f);
        queued = 1;
        float hidden = vg_t_mask_share(f->kocc, (size_t)g->fw * g->fh);
        int due = f->info.index - t->key->info.index >= t->s.keyint;
        if (due || hidden > t->s.key_occlusion) {
            if (!due)
                tlog(t, VG_LOG_DEBUG, "frame %"PRId64": early keyframe, %.0f%% not visible "
                     "from frame %"PRId64"\n", f->info.index, 100.f * hidden, t->key->info.index);
            if ((ret = process_key(t, f, t->key, f->ku, f->kv, f->kocc)) < 0 ||
                (ret = propagate_between(t, f)) < 0)
                goto end;
            set_key(t, f);
        } else {
            /* a frame between keyframes is made from their outputs only */
            free(f->rgb);
            f->rgb = NULL;
        }
        ret = 0;
    }
end:
    if (ret < 0) {
        /* this frame is dropped; the next one starts a new shot (what is
         * queued is carried forward from the last keyframe then), so no
         * output is warped along a flow that skips a frame */
        if (queued)
            frame_unref(&t->pending[--t->npending]);
        frame_unref(&t->last);
    }
    frame_unref(&f);
    return ret;
}

int vg_temporal_receive(VgTemporal *t, VgImage *out, VgTemporalInfo *info)
{
    VgTFrame *f;

    frame_unref(&t->returned);
    if (t->rhead == t->nready)
        return VG_ERR(EAGAIN);
    f = t->ready[t->rhead++];
    t->returned = f;
    image_view(out, f->out, t->g.out_w, t->g.out_h);
    if (info)
        *info = f->info;
    return 0;
}

int vg_temporal_flush(VgTemporal *t)
{
    int ret = 0;

    frame_unref(&t->returned);
    if (t->key && t->npending)
        ret = propagate_forward(t);
    for (int i = 0; i < t->npending; i++)
        frame_unref(&t->pending[i]);
    t->npending = 0;
    set_key(t, NULL);
    frame_unref(&t->last);
    t->has_ref = 0;
    return ret;
}

int64_t vg_temporal_processed(const VgTemporal *t)
{
    return t->nprocessed;
}

/* ------------------------------------------------------------ open / close */

void vg_temporal_default_settings(VgTemporalSettings *s)
{
    memset(s, 0, sizeof(*s));
    s->flow = VG_TEMPORAL_FLOW_DIS;
    s->flow_preset = VG_FLOW_MEDIUM;
    s->flow_downscale = 1;
    s->temporal = 0.5f;
    s->keyint = 1;
    s->scenecut = 0.5f;
    s->key_occlusion = 0.3f;
    s->log_level = VG_LOG_INFO;
}

static int check_unit(VgTemporal *t, const char *name, float x)
{
    if (!(x >= 0.f && x <= 1.f)) {
        tlog(t, VG_LOG_ERROR, "temporal: %s %g is outside 0..1\n", name, x);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int check_changeable(VgTemporal *t, const VgTemporalSettings *s)
{
    int ret;

    if ((ret = check_unit(t, "temporal", s->temporal)) < 0 ||
        (ret = check_unit(t, "init_blend", s->init_blend)) < 0 ||
        (ret = check_unit(t, "scenecut", s->scenecut)) < 0 ||
        (ret = check_unit(t, "key_occlusion", s->key_occlusion)) < 0)
        return ret;
    if (s->color_coherence < VG_COLOR_OFF || s->color_coherence > VG_COLOR_KEYFRAME) {
        tlog(t, VG_LOG_ERROR, "temporal: unknown color_coherence %d\n", s->color_coherence);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_temporal_update(VgTemporal *t, const VgTemporalSettings *s)
{
    int ret = check_changeable(t, s);

    if (ret < 0)
        return ret;
    t->s.temporal = s->temporal;
    t->s.init_blend = s->init_blend;
    t->s.scenecut = s->scenecut;
    t->s.key_occlusion = s->key_occlusion;
    t->s.color_coherence = s->color_coherence;
    return 0;
}

static int check_settings(VgTemporal *t, const VgTemporalSettings *s, const VgFrameProcessor *p)
{
    if (!p || !p->process) {
        tlog(t, VG_LOG_ERROR, "temporal: no frame processor\n");
        return VG_ERR(EINVAL);
    }
    if (p->state_c < 0 || p->state_c > 64 || (p->state_c &&
        (p->state_w < 1 || p->state_h < 1 || p->state_w > MAX_SIDE || p->state_h > MAX_SIDE))) {
        tlog(t, VG_LOG_ERROR, "temporal: processor state %dx%dx%d out of range\n",
             p->state_c, p->state_w, p->state_h);
        return VG_ERR(EINVAL);
    }
    if (s->in_w < 1 || s->in_h < 1 || s->out_w < 1 || s->out_h < 1 ||
        s->in_w > MAX_SIDE || s->in_h > MAX_SIDE || s->out_w > MAX_SIDE || s->out_h > MAX_SIDE) {
        tlog(t, VG_LOG_ERROR, "temporal: frame sizes %dx%d -> %dx%d out of range 1..%d\n",
             s->in_w, s->in_h, s->out_w, s->out_h, MAX_SIDE);
        return VG_ERR(EINVAL);
    }
    if (s->flow != VG_TEMPORAL_FLOW_OFF && s->flow != VG_TEMPORAL_FLOW_DIS) {
        tlog(t, VG_LOG_ERROR, "temporal: unknown flow method %d\n", s->flow);
        return VG_ERR(EINVAL);
    }
    if (s->flow_preset < VG_FLOW_ULTRAFAST || s->flow_preset > VG_FLOW_MEDIUM) {
        tlog(t, VG_LOG_ERROR, "temporal: unknown flow preset %d\n", s->flow_preset);
        return VG_ERR(EINVAL);
    }
    if (s->keyint < 1 || s->keyint > MAX_KEYINT) {
        tlog(t, VG_LOG_ERROR, "temporal: keyint %d outside 1..%d\n", s->keyint, MAX_KEYINT);
        return VG_ERR(EINVAL);
    }
    if (s->keyint > 1 && s->flow == VG_TEMPORAL_FLOW_OFF) {
        tlog(t, VG_LOG_ERROR, "temporal: keyint %d needs optical flow (flow=off given): the "
             "frames between keyframes are made from the flow\n", s->keyint);
        return VG_ERR(EINVAL);
    }
    if (s->flow != VG_TEMPORAL_FLOW_OFF &&
        (s->flow_downscale < 1 || s->in_w / s->flow_downscale < 8 ||
         s->in_h / s->flow_downscale < 8)) {
        tlog(t, VG_LOG_ERROR, "temporal: flow_downscale %d leaves %dx%d of a %dx%d frame; "
             "optical flow needs at least 8x8\n", s->flow_downscale,
             s->flow_downscale > 0 ? s->in_w / s->flow_downscale : 0,
             s->flow_downscale > 0 ? s->in_h / s->flow_downscale : 0, s->in_w, s->in_h);
        return VG_ERR(EINVAL);
    }
    return check_changeable(t, s);
}

static int alloc_scratch(VgTemporal *t)
{
    VgTGeom *g = &t->g;
    VgTScratch *sc = &t->sc;
    size_t no = (size_t)g->out_w * g->out_h, ni = (size_t)g->in_w * g->in_h;
    size_t nf = (size_t)g->fw * g->fh;

    sc->ru = malloc(no * sizeof(float)); sc->rv = malloc(no * sizeof(float));
    sc->ma = malloc(no); sc->mb = malloc(no);
    sc->wa = malloc(3 * no * sizeof(float)); sc->wb = malloc(3 * no * sizeof(float));
    sc->init = malloc(3 * ni * sizeof(float));
    t->tmp = malloc(nf * sizeof(float));
    int ok = sc->ru && sc->rv && sc->ma && sc->mb && sc->wa && sc->wb && sc->init && t->tmp;
    for (int i = 0; i < 2; i++) {
        sc->cu[i] = malloc(nf * sizeof(float));
        sc->cv[i] = malloc(nf * sizeof(float));
        sc->cocc[i] = malloc(nf);
        ok = ok && sc->cu[i] && sc->cv[i] && sc->cocc[i];
    }
    if (t->proc.state_c) {
        size_t ns = (size_t)t->proc.state_w * t->proc.state_h;
        sc->su = malloc(ns * sizeof(float));
        sc->sv = malloc(ns * sizeof(float));
        sc->sm = malloc(ns);
        ok = ok && sc->su && sc->sv && sc->sm;
    }
    return ok ? 0 : VG_ERR(ENOMEM);
}

int vg_temporal_open(VgTemporal **out, const VgTemporalSettings *s, const VgFrameProcessor *proc)
{
    static const char *const presets[] = { "ultrafast", "fast", "medium" };
    VgTemporal *t;
    int ret;

    if (!out || !s)
        return VG_ERR(EINVAL);
    *out = NULL;
    if (!(t = calloc(1, sizeof(*t))))
        return VG_ERR(ENOMEM);
    t->s = *s;
    if ((ret = check_settings(t, s, proc)) < 0)
        goto fail;
    t->proc = *proc;
    t->g = (VgTGeom){ s->in_w, s->in_h, s->out_w, s->out_h, 0, 0, s->flow_downscale };
    if (s->flow == VG_TEMPORAL_FLOW_OFF)
        t->g.down = 1;
    t->g.fw = s->in_w / t->g.down;
    t->g.fh = s->in_h / t->g.down;
    vg_warp_dsp_init(&t->dsp, vg_warp_cpu_avx2());
    vg_flow_default_params(&t->fp, s->flow_preset);
    if (s->flow != VG_TEMPORAL_FLOW_OFF &&
        ((ret = alloc_scratch(t)) < 0 || (ret = vg_flow_ctx_open(&t->flow)) < 0))
        goto fail;

    if (s->flow == VG_TEMPORAL_FLOW_OFF)
        tlog(t, VG_LOG_VERBOSE, "temporal: off, frames processed one by one\n");
    else
        tlog(t, VG_LOG_VERBOSE, "temporal: DIS flow (%s) at %dx%d, temporal %.2f, init_blend "
             "%.2f, keyint %d, scenecut %.2f, color_coherence %s\n", presets[s->flow_preset],
             t->g.fw, t->g.fh, s->temporal, s->init_blend, s->keyint, s->scenecut,
             s->color_coherence == VG_COLOR_FIRST ? "first" :
             s->color_coherence == VG_COLOR_KEYFRAME ? "keyframe" : "off");
    *out = t;
    return 0;
fail:
    vg_temporal_close(&t);
    return ret;
}

void vg_temporal_close(VgTemporal **pt)
{
    VgTemporal *t = *pt;
    VgTScratch *sc;

    if (!t)
        return;
    *pt = NULL;
    for (int i = 0; i < t->npending; i++)
        frame_unref(&t->pending[i]);
    while (t->rhead < t->nready)
        frame_unref(&t->ready[t->rhead++]);
    free(t->ready);
    frame_unref(&t->returned);
    frame_unref(&t->key);
    frame_unref(&t->last);
    sc = &t->sc;
    free(sc->ru); free(sc->rv); free(sc->ma); free(sc->mb);
    free(sc->wa); free(sc->wb); free(sc->init);
    for (int i = 0; i < 2; i++) {
        free(sc->cu[i]); free(sc->cv[i]); free(sc->cocc[i]);
    }
    free(sc->su); free(sc->sv); free(sc->sm);
    free(t->tmp);
    vg_flow_ctx_close(&t->flow);
    free(t);
}
