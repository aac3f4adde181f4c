/*
 * Flow benchmark harness (driven by bench/flow/run_bench_flow.py, which runs
 * OpenCV's DIS on the same inputs in the same run).
 *   bench_flow I0.pgm I1.pgm [-g GT.flo] [-p PRESET|all] [-r REPS] [-t THREADS]
 *              [-o OUTPREFIX] [-s key=value,...]
 * Inputs are 8-bit binary PGM (P5) so that both sides see identical pixels.
 * Per preset prints one line "preset <name> ms <min over REPS> epe <EPE|nan>
 * threads <T> cpu_ms <min process CPU time>"; minima because the machine is
 * shared and other load only ever adds time (CPU time is less disturbed by
 * preemption, but counts every thread). -o writes OUTPREFIX_<preset>.flo; -s
 * overrides VgFlowParams fields (fs, cs, ps, st, it, var, sor, alpha, gamma,
 * delta, omega, zeta, prop, mean) after the preset's defaults.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "temporal/flow.h"

static float *read_pgm(const char *path, int *pw, int *ph)
{
    FILE *f = fopen(path, "rb");
    int w, h, maxv;
    if (!f || fscanf(f, "P5 %d %d %d", &w, &h, &maxv) != 3 || maxv != 255 || w <= 0 || h <= 0) {
        fprintf(stderr, "%s: not an 8-bit P5 PGM\n", path);
        if (f)
            fclose(f);
        return NULL;
    }
    fgetc(f); /* the single whitespace after maxval */
    size_t n = (size_t)w * h;
    uint8_t *b = malloc(n);
    float *o = malloc(sizeof(float) * n);
    if (!b || !o || fread(b, 1, n, f) != n) {
        fprintf(stderr, "%s: truncated\n", path);
        free(b); free(o); fclose(f);
        return NULL;
    }
    for (size_t k = 0; k < n; k++)
        o[k] = b[k];
    free(b);
    fclose(f);
    *pw = w;
    *ph = h;
    return o;
}

/* Middlebury .flo: "PIEH", w, h, [h, w, 2] float32 */
static float *read_flo(const char *path, int w, int h)
{
    FILE *f = fopen(path, "rb");
    char tag[4];
    int32_t fw, fh;
    float *o = NULL;
    if (f && fread(tag, 1, 4, f) == 4 && !memcmp(tag, "PIEH", 4) && fread(&fw, 4, 1, f) == 1 &&
        fread(&fh, 4, 1, f) == 1 && fw == w && fh == h) {
        o = malloc(sizeof(float) * 2 * w * h);
        if (o && fread(o, sizeof(float), (size_t)2 * w * h, f) != (size_t)2 * w * h) {
            free(o);
            o = NULL;
        }
    }
    if (f)
        fclose(f);
    if (!o)
        fprintf(stderr, "%s: not a %dx%d .flo\n", path, w, h);
    return o;
}

static int write_flo(const char *path, const float *u, const float *v, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int32_t d[2] = { w, h };
    fwrite("PIEH", 1, 4, f);
    fwrite(d, 4, 2, f);
    for (size_t k = 0; k < (size_t)w * h; k++) {
        float t[2] = { u[k], v[k] };
        fwrite(t, 4, 2, f);
    }
    return fclose(f);
}

/* "-s key=value,..." overrides, for exploring operating points */
static int set_params(VgFlowParams *p, const char *spec)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        char *eq = strchr(t, '=');
        if (!eq)
            return -1;
        *eq = 0;
        double x = atof(eq + 1);
        if (!strcmp(t, "fs")) p->finest_scale = (int)x;
        else if (!strcmp(t, "cs")) p->coarsest_scale = (int)x;
        else if (!strcmp(t, "ps")) p->patch_size = (int)x;
        else if (!strcmp(t, "st")) p->patch_stride = (int)x;
        else if (!strcmp(t, "it")) p->grad_descent_iter = (int)x;
        else if (!strcmp(t, "var")) p->var_iter = (int)x;
        else if (!strcmp(t, "sor")) p->var_sor_iter = (int)x;
        else if (!strcmp(t, "alpha")) p->var_alpha = (float)x;
        else if (!strcmp(t, "gamma")) p->var_gamma = (float)x;
        else if (!strcmp(t, "delta")) p->var_delta = (float)x;
        else if (!strcmp(t, "omega")) p->var_omega = (float)x;
        else if (!strcmp(t, "zeta")) p->var_zeta = (float)x;
        else if (!strcmp(t, "prop")) p->spatial_prop = (int)x;
        else if (!strcmp(t, "mean")) p->mean_norm = (int)x;
        else {
            fprintf(stderr, "unknown parameter %s\n", t);
            return -1;
        }
    }
    return 0;
}

static double clock_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

int main(int argc, char **argv)
{
    const char *gtp = NULL, *preset = "all", *outp = NULL;
    const char *over = NULL;
    int reps = 20, threads = -1;
    int c, nf = 0;
    const char *files[2];
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-g") && a + 1 < argc) gtp = argv[++a];
        else if (!strcmp(argv[a], "-p") && a + 1 < argc) preset = argv[++a];
        else if (!strcmp(argv[a], "-r") && a + 1 < argc) reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "-t") && a + 1 < argc) threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "-o") && a + 1 < argc) outp = argv[++a];
        else if (!strcmp(argv[a], "-s") && a + 1 < argc) over = argv[++a];
        else if (nf < 2) files[nf++] = argv[a];
        else nf = 3;
    }
    (void)c;
    if (nf != 2 || reps < 1) {
        fprintf(stderr, "usage: %s I0.pgm I1.pgm [-g GT.flo] [-p ultrafast|fast|medium|all] "
                        "[-r reps] [-t threads] [-o outprefix] [-s key=value,...]\n", argv[0]);
        return 2;
    }
    int w, h, w1, h1;
    float *i0 = read_pgm(files[0], &w, &h), *i1 = read_pgm(files[1], &w1, &h1);
    if (!i0 || !i1 || w != w1 || h != h1)
        return 1;
    float *gt = gtp ? read_flo(gtp, w, h) : NULL;
    if (gtp && !gt)
        return 1;
    float *u = malloc(sizeof(float) * w * h), *v = malloc(sizeof(float) * w * h);
    /* a context, as a video pipeline (and OpenCV's DIS object) reuses its buffers */
    VgFlowCtx *ctx = NULL;
    if (vg_flow_ctx_open(&ctx) < 0)
        return 1;
    for (int pr = 0; pr < 3; pr++) {
        if (strcmp(preset, "all") && vg_flow_preset_from_name(preset) != pr)
            continue;
        VgFlowParams p;
        vg_flow_default_params(&p, pr);
        if (threads >= 0)
            p.threads = threads;
        if (over && set_params(&p, over) < 0)
            return 2;
        if (vg_flow_dis2(ctx, i0, i1, w, h, w, &p, NULL, NULL, u, v) < 0) /* warm-up */
            return 1;
        double best = 1e30, cbest = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
            vg_flow_dis2(ctx, i0, i1, w, h, w, &p, NULL, NULL, u, v);
            double t = clock_ms(CLOCK_MONOTONIC) - t0, c = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
            best = t < best ? t : best;
            cbest = c < cbest ? c : cbest;
        }
        double epe = NAN;
        if (gt) {
            double s = 0;
            long n = 0;
            for (size_t k = 0; k < (size_t)w * h; k++) {
                float gu = gt[2 * k], gv = gt[2 * k + 1];
                if (!(fabsf(gu) < 1e9f && fabsf(gv) < 1e9f))
                    continue;
                s += hypot(u[k] - gu, v[k] - gv);
                n++;
            }
            epe = s / n;
        }
        printf("preset %s ms %.3f epe %.4f threads %d cpu_ms %.3f\n", vg_flow_preset_name(pr),
               best, epe, p.threads, cbest);
        fflush(stdout);
        if (outp) {
            char path[1024];
            snprintf(path, sizeof(path), "%s_%s.flo", outp, vg_flow_preset_name(pr));
            if (write_flo(path, u, v, w, h) < 0) {
                fprintf(stderr, "%s: cannot write\n", path);
                return 1;
            }
        }
    }
    vg_flow_ctx_close(&ctx);
    free(i0); free(i1); free(gt); free(u); free(v);
    return 0;
}
