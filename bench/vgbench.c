/*
 * vgbench: the C side of `make bench`. One measurement per process so that
 * each upscaler configuration's peak memory is its own:
 *
 *   vgbench info    [--threads N]
 *   vgbench sgemm   [--threads N] [--reps R]
 *   vgbench layers  [--threads N] [--reps R] [--width W --height H]
 *   vgbench sd-layers [--threads N] [--reps R]   SD 3x3 convs: direct, Winograd F(4x4), F(2x2)
 *   vgbench upscale --model NAME|PATH [--model-dir DIR] [--scale S] [--width W --height H]
 *                   [--input planar_rgb_f32_file] [--threads N] [--tile T]
 *                   [--warmup K] [--budget SECONDS] [--min-reps A] [--max-reps B]
 *
 * Each prints one JSON object on stdout; bench/run_bench.py collects them
 * into the tables. Errors: a message on stderr and exit status 1.
 */
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "visgen/visgen.h"
#include "engine/ops.h"
#include "bench/bench_layers.h"
#include "bench/bench_util.h"

typedef struct Opts {
    const char *model, *model_dir, *input;
    int scale, width, height, threads, tile, warmup, min_reps, max_reps, reps;
    double budget;
} Opts;

static char g_tiling[512]; /* the upscaler's last tile-layout message */

static void log_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (level <= VG_LOG_WARNING)
        fprintf(stderr, "visgen: %s", msg);
    else if (!strncmp(msg, "upscale: ", 9) && strstr(msg, "tiles")) {
        snprintf(g_tiling, sizeof(g_tiling), "%s", msg + 9);
        g_tiling[strcspn(g_tiling, "\n")] = 0;
    }
}

static int open_ctx(VgCtx **c, int threads)
{
    VgSettings s;
    vg_default_settings(&s);
    s.n_threads = threads;
    s.log_cb = log_cb;
    s.log_level = VG_LOG_VERBOSE;
    int ret = vg_open(c, &s);
    if (ret < 0)
        fprintf(stderr, "vgbench: vg_open: %s\n", vg_strerror(ret));
    return ret;
}

static int cmd_info(const Opts *o)
{
    char cpu[256];
    /* What OpenBLAS chose by itself, before visgen had a say. */
    char at_load[64];
    snprintf(at_load, sizeof(at_load), "%s", openblas_get_corename());
    VgCtx *c = NULL;
    if (open_ctx(&c, o->threads) < 0)
        return 1;
    vgb_cpu_model(cpu, sizeof(cpu));
    printf("{\"cpu\": ");
    vgb_json_str(cpu);
    printf(", \"version\": ");
    vgb_json_str(vg_version());
    printf(", \"blas_kernel_at_load\": ");
    vgb_json_str(at_load);
    printf(", \"blas_kernel\": ");
    vgb_json_str(vg_blas_kernel(c));
    printf(", \"ops_isa\": ");
    vgb_json_str(vg_ops_isa());
    printf(", \"threads\": %d, \"blas_threads\": %d}\n", o->threads,
           openblas_get_num_threads());
    vg_close(&c);
    return 0;
}

/* Best GFLOPS of @reps row-major C[M,N] = A[M,K] B[K,N] calls. */
static double time_sgemm(int m, int n, int k, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)m * k);
    float *b = malloc(sizeof(float) * (size_t)k * n);
    float *cc = malloc(sizeof(float) * (size_t)m * n);
    double best = 0;
    if (!a || !b || !cc)
        goto end;
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    memset(cc, 0, sizeof(float) * (size_t)m * n);
    /* The first call pays for page faults and thread start-up: not timed. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a, k, b, n, 0.f, cc, n);
    for (int r = 0; r < reps; r++) {
        double t0 = vgb_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a, k, b, n,
                    0.f, cc, n);
        double g = 2.0 * m * n * k / (vgb_now() - t0) * 1e-9;
        if (g > best)
            best = g;
    }
end:
    free(a);
    free(b);
    free(cc);
    return best;
}

static int cmd_sgemm(const Opts *o)
{
    static const struct { const char *name; int m, n, k; } cases[] = {
        { "square 2048",                      2048, 2048,   2048 },
        { "conv 64x576 . 576x230400 (640x360)", 64, 230400, 576 },
        /* one column band as engine/ops/conv.c feeds the GEMM (4 rows of 642) */
        { "conv 64x576 . 576x2568 (one band)",  64, 2568,   576 },
    };
    VgCtx *c = NULL;
    if (open_ctx(&c, o->threads) < 0)
        return 1;
    /* vg_open leaves OpenBLAS single-threaded (visgen splits the work over its
     * own pool); the peak the networks are compared with is the machine's,
     * so let OpenBLAS use as many threads as visgen does. */
    openblas_set_num_threads(o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    printf("{\"blas_kernel\": ");
    vgb_json_str(vg_blas_kernel(c));
    printf(", \"threads\": %d, \"reps\": %d, \"cases\": [", openblas_get_num_threads(), o->reps);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double g = time_sgemm(cases[i].m, cases[i].n, cases[i].k, o->reps);
        if (g <= 0) {
            fprintf(stderr, "vgbench: sgemm %s: out of memory\n", cases[i].name);
            vg_close(&c);
            return 1;
        }
        printf("%s{\"name\": ", i ? ", " : "");
        vgb_json_str(cases[i].name);
        printf(", \"m\": %d, \"n\": %d, \"k\": %d, \"gflops\": %.2f}", cases[i].m, cases[i].n,
               cases[i].k, g);
        fflush(stdout);
    }
    printf("]}\n");
    openblas_set_num_threads(1);
    vg_close(&c);
    return 0;
}

/* Planar float image with its own planes; @fill from @src (3*w*h floats) or a pattern. */
static int image_alloc(VgImage *im, int w, int h, const float *src)
{
    memset(im, 0, sizeof(*im));
    im->width = w;
    im->height = h;
    for (int p = 0; p < 3; p++) {
        im->data[p] = malloc(sizeof(float) * (size_t)w * h);
        if (!im->data[p])
            return -1;
        im->stride[p] = (ptrdiff_t)sizeof(float) * w;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            size_t x = i % w, y = i / w;
            im->data[p][i] = src ? src[(size_t)p * w * h + i]
                                 : (float)(((x * (p + 3) + y * (5 - p)) & 255) / 255.0);
        }
    }
    return 0;
}

static void image_free(VgImage *im)
{
    for (int p = 0; p < 3; p++)
        free(im->data[p]);
}

static float *read_input(const char *path, int w, int h)
{
    size_t n = (size_t)3 * w * h;
    float *buf = malloc(n * sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, sizeof(float), n, f) != n) {
        fprintf(stderr, "vgbench: cannot read %zu floats (planar RGB %dx%d) from %s\n", n, w,
                h, path);
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

static int cmd_upscale(const Opts *o)
{
    VgCtx *c = NULL;
    VgUpscaler *u = NULL;
    VgImage in = { 0 }, out = { 0 };
    float *src = NULL;
    double *times = NULL;
    int ret, status = 1, n = 0;

    if (!o->model) {
        fprintf(stderr, "vgbench upscale: --model is required\n");
        return 1;
    }
    if (o->input && !(src = read_input(o->input, o->width, o->height)))
        return 1;
    if (open_ctx(&c, o->threads) < 0)
        goto end;

    VgUpscaleSettings us;
    vg_upscale_default_settings(&us);
    us.model = o->model;
    us.model_dir = o->model_dir;
    us.scale = o->scale;
    us.tile = o->tile;
    double t_open = vgb_now();
    if ((ret = vg_upscale_open(&u, c, &us)) < 0) {
        fprintf(stderr, "vgbench: vg_upscale_open(%s, x%d): %s\n", o->model, o->scale,
                vg_strerror(ret));
        goto end;
    }
    t_open = vgb_now() - t_open;
    int s = vg_upscale_get_scale(u);
    if (image_alloc(&in, o->width, o->height, src) < 0 ||
        image_alloc(&out, o->width * s, o->height * s, NULL) < 0) {
        fprintf(stderr, "vgbench: out of memory\n");
        goto end;
    }
    double first = 0;
    for (int i = 0; i < o->warmup; i++) {
        double t0 = vgb_now();
        if ((ret = vg_upscale_run(u, &in, &out)) < 0) {
            fprintf(stderr, "vgbench: vg_upscale_run: %s\n", vg_strerror(ret));
            goto end;
        }
        first = vgb_now() - t0;
    }
    /* As many timed runs as fit the budget, judged by the warm-up run. */
    int reps = o->max_reps;
    if (first > 0 && o->budget > 0 && o->budget / first < reps)
        reps = (int)(o->budget / first);
    if (reps < o->min_reps)
        reps = o->min_reps;
    if (!(times = calloc(reps, sizeof(*times))))
        goto end;
    double cpu0 = vgb_cpu_time();
    for (n = 0; n < reps; n++) {
        double t0 = vgb_now();
        if ((ret = vg_upscale_run(u, &in, &out)) < 0) {
            fprintf(stderr, "vgbench: vg_upscale_run: %s\n", vg_strerror(ret));
            goto end;
        }
        times[n] = (vgb_now() - t0) * 1e3;
    }
    double cpu_ms = (vgb_cpu_time() - cpu0) * 1e3 / n;
    /* A checksum of the output: makes sure the work is not optimised away
     * and lets the driver notice a blank or broken picture. */
    double sum = 0;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < (size_t)out.width * out.height; i++)
            sum += out.data[p][i];

    printf("{\"model\": ");
    vgb_json_str(o->model);
    printf(", \"describe\": ");
    vgb_json_str(vg_upscale_describe(u));
    printf(", \"scale\": %d, \"width\": %d, \"height\": %d, \"threads\": %d, \"blas_kernel\": ",
           s, o->width, o->height, o->threads);
    vgb_json_str(vg_blas_kernel(c));
    printf(", \"tiling\": ");
    vgb_json_str(g_tiling);
    printf(", \"open_ms\": %.1f, \"warmup_ms\": %.1f, \"times_ms\": [", t_open * 1e3,
           first * 1e3);
    for (int i = 0; i < n; i++)
        printf("%s%.1f", i ? ", " : "", times[i]);
    double mean = sum / (3.0 * out.width * out.height);
    double med = vgb_median(times, n);
    printf("], \"median_ms\": %.1f, \"min_ms\": %.1f, \"cpu_ms\": %.1f, \"out_mean\": %.5f, "
           "\"peak_rss_kb\": %ld}\n", med, times[0], cpu_ms, mean, vgb_peak_rss_kb());
    status = 0;
end:
    free(times);
    free(src);
    image_free(&in);
    image_free(&out);
    vg_upscale_close(&u);
    vg_close(&c);
    return status;
}

int main(int argc, char **argv)
{
    Opts o = { .width = 640, .height = 360, .threads = 2, .warmup = 1, .min_reps = 3,
               .max_reps = 10, .reps = 5, .budget = 10 };
    static const struct option lo[] = {
        { "model", 1, 0, 'm' }, { "model-dir", 1, 0, 'd' }, { "scale", 1, 0, 's' },
        { "width", 1, 0, 'W' }, { "height", 1, 0, 'H' }, { "input", 1, 0, 'i' },
        { "threads", 1, 0, 't' }, { "tile", 1, 0, 'T' }, { "warmup", 1, 0, 'w' }, { "budget", 1, 0, 'b' },
        { "min-reps", 1, 0, 'a' }, { "max-reps", 1, 0, 'z' }, { "reps", 1, 0, 'r' },
        { 0, 0, 0, 0 },
    };
    if (argc < 2) {
        fprintf(stderr, "usage: vgbench info|sgemm|layers|sd-layers|upscale [options]\n");
        return 2;
    }
    const char *cmd = argv[1];
    optind = 2;
    for (int ch; (ch = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'd': o.model_dir = optarg; break;
        case 's': o.scale = atoi(optarg); break;
        case 'W': o.width = atoi(optarg); break;
        case 'H': o.height = atoi(optarg); break;
        case 'i': o.input = optarg; break;
        case 't': o.threads = atoi(optarg); break;
        case 'T': o.tile = atoi(optarg); break;
        case 'w': o.warmup = atoi(optarg); break;
        case 'b': o.budget = atof(optarg); break;
        case 'a': o.min_reps = atoi(optarg); break;
        case 'z': o.max_reps = atoi(optarg); break;
        case 'r': o.reps = atoi(optarg); break;
        default: return 2;
        }
    }
    if (o.width < 1 || o.height < 1 || o.threads < 1 || o.min_reps < 1 ||
        o.max_reps < o.min_reps || o.warmup < 0 || o.reps < 1) {
        fprintf(stderr, "vgbench: bad option values\n");
        return 2;
    }
    if (!strcmp(cmd, "info"))
        return cmd_info(&o);
    if (!strcmp(cmd, "sgemm"))
        return cmd_sgemm(&o);
    if (!strcmp(cmd, "layers")) {
        VgCtx *c = NULL;
        if (open_ctx(&c, o.threads) < 0)
            return 1;
        int ret = vgb_run_layers(c, o.width, o.height, o.reps);
        vg_close(&c);
        return ret;
    }
    if (!strcmp(cmd, "sd-layers")) {
        VgCtx *c = NULL;
        if (open_ctx(&c, o.threads) < 0)
            return 1;
        int ret = vgb_run_sd_layers(c, o.reps);
        vg_close(&c);
        return ret;
    }
    if (!strcmp(cmd, "upscale"))
        return cmd_upscale(&o);
    fprintf(stderr, "vgbench: unknown command %s\n", cmd);
    return 2;
}
