/*
 * visgen metrics: temporal consistency of output videos against the input
 * video they were made from (E_warp, flicker; table and SVG chart), and
 * endpoint error of a flow against Middlebury ground truth (--flo).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "visgen/visgen.h"
#include "temporal/flow.h"
#include "temporal/warp.h"
#include "tools/visgen/flo.h"
#include "tools/visgen/media.h"
#include "tools/visgen/metrics.h"
#include "tools/visgen/svgplot.h"
#include "tools/visgen/temporal_cmds.h"

/* Per-frame values of one output; index t - 1 holds frame t (vs t - 1). */
typedef struct Series {
    double *ewarp, *valid, *mad, *dluma;
    int n, cap;
} Series;

static int series_push(Series *s, double ewarp, double valid, double mad, double dluma)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double **arrays[4] = { &s->ewarp, &s->valid, &s->mad, &s->dluma };
        for (int i = 0; i < 4; i++) {
            double *p = realloc(*arrays[i], sizeof(double) * cap);
            if (!p)
                return -1;
            *arrays[i] = p;
        }
        s->cap = cap;
    }
    s->ewarp[s->n] = ewarp;
    s->valid[s->n] = valid;
    s->mad[s->n] = mad;
    s->dluma[s->n] = dluma;
    s->n++;
    return 0;
}

/* Mean of the finite values; NaN when there are none. */
static double mean_finite(const double *x, int n)
{
    double s = 0;
    int k = 0;

    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i];
            k++;
        }
    return k ? s / k : NAN;
}

typedef struct Output {
    const char *path, *label;
    VgmReader *r;
    int w, h;
    VgImage prev, cur;
    float *u, *v;      /* flow at the output's size; NULL: same size as the input */
    uint8_t *occ;
    float *scratch;
    Series s;
} Output;

static void output_free(Output *o)
{
    vgm_close(&o->r);
    vgm_image_free(&o->prev);
    vgm_image_free(&o->cur);
    free(o->u);
    free(o->v);
    free(o->occ);
    free(o->scratch);
    free(o->s.ewarp);
    free(o->s.valid);
    free(o->s.mad);
    free(o->s.dluma);
}

static int output_open(Output *o, int in_w, int in_h)
{
    size_t n;

    if (vgm_open(&o->r, o->path) < 0)
        return -1;
    o->w = vgm_width(o->r);
    o->h = vgm_height(o->r);
    n = (size_t)o->w * o->h;
    if (vgm_image_alloc(&o->prev, o->w, o->h) < 0 || vgm_image_alloc(&o->cur, o->w, o->h) < 0 ||
        !(o->scratch = malloc(n * sizeof(float))))
        goto oom;
    if ((o->w != in_w || o->h != in_h) &&
        (!(o->u = malloc(n * sizeof(float))) || !(o->v = malloc(n * sizeof(float))) ||
         !(o->occ = malloc(n))))
        goto oom;
    return 0;
oom:
    fprintf(stderr, "visgen: %s: out of memory for %dx%d frames\n", o->path, o->w, o->h);
    return -1;
}

/* Reports the frame counts once one stream ended before another. */
static void count_mismatch(VgmReader *in, const char *in_path, int in_ended, Output *outs,
                           int n_out, const int *ended)
{
    int n_in = in_ended ? vgm_frames_read(in) : vgm_count_rest(in);

    for (int k = 0; k < n_out; k++) {
        int n = ended[k] ? vgm_frames_read(outs[k].r) : vgm_count_rest(outs[k].r);
        if (n != n_in)
            fprintf(stderr, "visgen: frame counts differ: %s has %d frames, %s has %d\n",
                    in_path, n_in, outs[k].path, n);
    }
}

typedef struct Input {
    const char *path;
    VgmReader *r;
    int w, h;
    float *prev, *cur;  /* gray 0..255 */
    float *ub, *vb;     /* flow t -> t-1 (warps O_t-1 onto t) */
    float *uf, *vf;     /* flow t-1 -> t (for the forward-backward check) */
    uint8_t *occ;       /* occlusion on frame t's grid */
} Input;

static void input_free(Input *in)
{
    vgm_close(&in->r);
    free(in->prev);
    free(in->cur);
    free(in->ub);
    free(in->vb);
    free(in->uf);
    free(in->vf);
    free(in->occ);
}

static int input_open(Input *in)
{
    size_t n;

    if (vgm_open(&in->r, in->path) < 0)
        return -1;
    in->w = vgm_width(in->r);
    in->h = vgm_height(in->r);
    n = (size_t)in->w * in->h;
    if (!(in->prev = malloc(n * 4)) || !(in->cur = malloc(n * 4)) || !(in->ub = malloc(n * 4)) ||
        !(in->vb = malloc(n * 4)) || !(in->uf = malloc(n * 4)) || !(in->vf = malloc(n * 4)) ||
        !(in->occ = malloc(n))) {
        fprintf(stderr, "visgen: %s: out of memory for %dx%d frames\n", in->path, in->w, in->h);
        return -1;
    }
    return 0;
}

/* Flow and occlusion of input frames t-1 -> t, then every output's values
 * for frame t. */
static int measure_pair(Input *in, Output *outs, int n_out, const VgWarpDSP *dsp, int preset)
{
    if (vg_cli_flow(in->cur, in->prev, in->w, in->h, preset, in->ub, in->vb) < 0 ||
        vg_cli_flow(in->prev, in->cur, in->w, in->h, preset, in->uf, in->vf) < 0)
        return -1;
    vg_occlusion(dsp, in->occ, in->w, in->ub, in->vb, in->uf, in->vf, in->w, in->w, in->h);
    for (int k = 0; k < n_out; k++) {
        Output *o = &outs[k];
        const float *u = in->ub, *v = in->vb;
        const uint8_t *occ = in->occ;
        double e, valid, mad, dluma;

        if (o->u) {
            vg_flow_resize(o->u, o->v, o->w, o->w, o->h, in->ub, in->vb, in->w, in->w, in->h);
            vg_mask_resize(o->occ, o->w, o->h, in->occ, in->w, in->h);
            u = o->u;
            v = o->v;
            occ = o->occ;
        }
        e = vgx_ewarp(dsp, &o->cur, &o->prev, u, v, occ, o->scratch, &valid);
        vgx_flicker(&o->cur, &o->prev, &mad, &dluma);
        if (series_push(&o->s, e, valid, mad, dluma) < 0) {
            fprintf(stderr, "visgen: out of memory\n");
            return -1;
        }
    }
    return 0;
}

/* Decodes all streams in step and fills every output's series. */
static int run(Input *in, Output *outs, int n_out, int preset)
{
    VgWarpDSP dsp;
    int *ended = calloc(n_out, sizeof(int)), ret = -1, progress = isatty(2);

    vg_warp_dsp_init(&dsp, vg_warp_cpu_avx2());
    if (!ended) {
        fprintf(stderr, "visgen: out of memory\n");
        return -1;
    }
    for (int t = 0;; t++) {
        int in_ended = 0, any_ended = 0, all_ended;
        int r = vgm_read(in->r, NULL, in->cur);

        if (r < 0)
            goto end;
        in_ended = !r;
        all_ended = in_ended;
        for (int k = 0; k < n_out; k++) {
            int ro = vgm_read(outs[k].r, &outs[k].cur, NULL);
            if (ro < 0)
                goto end;
            ended[k] = !ro;
            any_ended |= ended[k];
            all_ended &= ended[k];
        }
        if (in_ended || any_ended) {
            if (!all_ended) {
                count_mismatch(in->r, in->path, in_ended, outs, n_out, ended);
                goto end;
            }
            if (t < 2) {
                fprintf(stderr, "visgen: %s: %d frame(s); E_warp and flicker need 2 or more\n",
                        in->path, t);
                goto end;
            }
            break;
        }
        if (t > 0 && measure_pair(in, outs, n_out, &dsp, preset) < 0)
            goto end;
        if (progress)
            fprintf(stderr, "\rvisgen: metrics: frame %d", t);
        {
            float *g = in->prev;
            in->prev = in->cur;
            in->cur = g;
        }
        for (int k = 0; k < n_out; k++) {
            VgImage x = outs[k].prev;
            outs[k].prev = outs[k].cur;
            outs[k].cur = x;
        }
    }
    ret = 0;
end:
    if (progress)
        fputs("\r\033[K", stderr);
    free(ended);
    return ret;
}

static void print_value(double x, const char *fmt, int width)
{
    if (isfinite(x))
        printf(fmt, width, x);
    else
        printf("%*s", width, "-");
}

static void print_row(int lw, const char *label, const char *frame, double e, double valid,
                      double mad, double dluma)
{
    printf("%-*s %6s", lw, label, frame);
    print_value(e, " %*.6f", 11);
    print_value(100 * valid, " %*.2f", 7);
    print_value(mad, " %*.4f", 12);
    print_value(dluma, " %*.4f", 14);
    putchar('\n');
}

static void print_table(const Input *in, const Output *outs, int n_out, int preset)
{
    int lw = 6;

    for (int k = 0; k < n_out; k++)
        lw = (int)strlen(outs[k].label) > lw ? (int)strlen(outs[k].label) : lw;
    printf("# input %s: %dx%d, %d frames; flow: DIS %s on the input, forward-backward occlusion\n",
           in->path, in->w, in->h, vgm_frames_read(in->r), vg_flow_preset_name(preset));
    printf("# E_warp: Lai et al. 2018, RGB 0..1; valid%%: unoccluded pixels; flicker_mad: "
           "mean |O_t - O_t-1|, flicker_dluma: |mean luma difference| (0..255)\n");
    for (int k = 0; k < n_out; k++) {
        const Output *o = &outs[k];
        printf("# output %s: %s %dx%d", o->label, o->path, o->w, o->h);
        if (o->u)
            printf(" (flow resized x%g x%g, mask nearest)", (double)o->w / in->w,
                   (double)o->h / in->h);
        putchar('\n');
    }
    printf("%-*s %6s %11s %7s %12s %14s\n", lw, "output", "frame", "E_warp", "valid%",
           "flicker_mad", "flicker_dluma");
    for (int k = 0; k < n_out; k++) {
        const Series *s = &outs[k].s;
        for (int i = 0; i < s->n; i++) {
            char fr[16];
            snprintf(fr, sizeof(fr), "%d", i + 1);
            print_row(lw, outs[k].label, fr, s->ewarp[i], s->valid[i], s->mad[i], s->dluma[i]);
        }
        print_row(lw, outs[k].label, "all", mean_finite(s->ewarp, s->n),
                  mean_finite(s->valid, s->n), mean_finite(s->mad, s->n),
                  mean_finite(s->dluma, s->n));
    }
}

static int write_plot(const char *path, const Input *in, const Output *outs, int n_out)
{
    VgpLine *lw = calloc(n_out, sizeof(*lw)), *lf = calloc(2 * n_out, sizeof(*lf));
    const char **legend = calloc(n_out, sizeof(*legend));
    const char *base = strrchr(in->path, '/');
    char title[512];
    int ret = -1;

    if (!lw || !lf || !legend) {
        fprintf(stderr, "visgen: out of memory\n");
        goto end;
    }
    for (int k = 0; k < n_out; k++) {
        const Series *s = &outs[k].s;
        lw[k] = (VgpLine){ s->ewarp, s->n, k, 0 };
        lf[2 * k] = (VgpLine){ s->mad, s->n, k, 0 };
        lf[2 * k + 1] = (VgpLine){ s->dluma, s->n, k, 1 };
        legend[k] = outs[k].label;
    }
    snprintf(title, sizeof(title), "Temporal consistency against %s", base ? base + 1 : in->path);
    {
        const VgpPanel panels[2] = {
            { "E_warp per frame (Lai et al. 2018; RGB 0..1, flow and occlusion of the input)",
              lw, n_out },
            { "Flicker per frame, 0..255: mean |O_t - O_t-1| (solid), |change of mean luma| "
              "(dashed)", lf, 2 * n_out },
        };
        const VgpChart chart = {
            .title = title, .xlabel = "frame t (compared with t - 1)", .x0 = 1,
            .panels = panels, .n_panels = 2, .legend = legend, .n_legend = n_out,
        };
        ret = vgp_write_svg(path, &chart);
    }
end:
    free(lw);
    free(lf);
    free(legend);
    return ret;
}

static int cmd_videos(const char *in_path, const char *const *paths, const char *const *labels,
                      int n_out, int n_labels, int preset, const char *plot)
{
    Input in = { .path = in_path };
    Output *outs = calloc(n_out, sizeof(*outs));
    int ret = 1;

    if (!outs) {
        fprintf(stderr, "visgen: out of memory\n");
        return 1;
    }
    if (input_open(&in) < 0)
        goto end;
    for (int k = 0; k < n_out; k++) {
        const char *base = strrchr(paths[k], '/');
        outs[k].path = paths[k];
        outs[k].label = k < n_labels ? labels[k] : base ? base + 1 : paths[k];
        if (output_open(&outs[k], in.w, in.h) < 0)
            goto end;
    }
    if (run(&in, outs, n_out, preset) < 0)
        goto end;
    print_table(&in, outs, n_out, preset);
    if (fflush(stdout)) {
        perror("visgen: stdout");
        goto end;
    }
    if (plot && write_plot(plot, &in, outs, n_out) < 0)
        goto end;
    ret = 0;
end:
    input_free(&in);
    for (int k = 0; k < n_out; k++)
        output_free(&outs[k]);
    free(outs);
    return ret;
}

/* --flo: EPE of a .flo file, or of the flow A -> B computed here. */
static int cmd_epe(const char *gt_path, const char *const *paths, int npaths, int preset)
{
    float *gu = NULL, *gv = NULL, *u = NULL, *v = NULL;
    int gw, gh, w = 0, h = 0, ret = 1;
    long known;
    double epe;

    if (vgf_read_flo(gt_path, &gu, &gv, &gw, &gh) < 0)
        goto end;
    if (npaths == 1 ? vgf_read_flo(paths[0], &u, &v, &w, &h) < 0
                    : vg_cli_flow_files(paths[0], paths[1], preset, &u, &v, &w, &h) < 0)
        goto end;
    if (w != gw || h != gh) {
        fprintf(stderr, "visgen: %s is %dx%d but the ground truth %s is %dx%d\n", paths[0], w, h,
                gt_path, gw, gh);
        goto end;
    }
    epe = vgx_epe(u, v, gu, gv, (long)w * h, &known);
    if (!known) {
        fprintf(stderr, "visgen: %s: no known flow vector (all > 1e9)\n", gt_path);
        goto end;
    }
    if (npaths == 1)
        printf("EPE %.4f px over %ld known of %ld pixels (%s against %s)\n", epe, known,
               (long)w * h, paths[0], gt_path);
    else
        printf("EPE %.4f px over %ld known of %ld pixels (DIS %s flow %s -> %s against %s)\n",
               epe, known, (long)w * h, vg_flow_preset_name(preset), paths[0], paths[1], gt_path);
    ret = 0;
end:
    free(gu);
    free(gv);
    free(u);
    free(v);
    return ret;
}

int vg_cmd_metrics(int argc, char **argv)
{
    const char **paths = calloc(argc, sizeof(*paths)), **labels = calloc(argc, sizeof(*labels));
    const char *plot = NULL, *flo = NULL;
    int npaths = 0, nlabels = 0, preset = VG_FLOW_PRESET_MEDIUM, ret = 2;

    if (!paths || !labels) {
        fprintf(stderr, "visgen: out of memory\n");
        ret = 1;
        goto end;
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--preset") || !strcmp(o, "--plot") || !strcmp(o, "--label") ||
            !strcmp(o, "--flo")) {
            const char *val = i + 1 < argc ? argv[++i] : NULL;
            if (!val) {
                vg_temporal_usage("%s needs a value", o);
                goto end;
            }
            if (!strcmp(o, "--plot")) {
                plot = val;
            } else if (!strcmp(o, "--label")) {
                labels[nlabels++] = val;
            } else if (!strcmp(o, "--flo")) {
                flo = val;
            } else if ((preset = vg_flow_preset_from_name(val)) < 0) {
                vg_temporal_usage("--preset: want ultrafast, fast or medium, got '%s'", val);
                goto end;
            }
        } else if (o[0] == '-' && o[1]) {
            vg_temporal_usage("metrics: unknown option '%s'", o);
            goto end;
        } else {
            paths[npaths++] = o;
        }
    }
    if (flo) {
        if (npaths < 1 || npaths > 2) {
            vg_temporal_usage("%s", "metrics --flo GT.flo: need FLOW.flo, or pictures A and B");
            goto end;
        }
        if (plot || nlabels) {
            vg_temporal_usage("%s", "metrics --flo: --plot and --label are for videos");
            goto end;
        }
        ret = cmd_epe(flo, paths, npaths, preset);
        goto end;
    }
    if (npaths < 2) {
        vg_temporal_usage("%s", "metrics: need INPUT_VIDEO and at least one OUTPUT_VIDEO");
        goto end;
    }
    if (nlabels > npaths - 1) {
        vg_temporal_usage("metrics: more --label than output videos (%s)", labels[nlabels - 1]);
        goto end;
    }
    ret = cmd_videos(paths[0], paths + 1, labels, npaths - 1, nlabels, preset, plot);
end:
    free(paths);
    free(labels);
    return ret;
}
