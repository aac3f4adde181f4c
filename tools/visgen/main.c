/*
 * visgen command-line tool.
 *
 *   visgen version
 *   visgen upscale [options] --size WxH IN.raw OUT.raw
 *   visgen flow / metrics (temporal_cmds.h), info / tokenize / forward /
 *   img2img (sd_cmds.h)
 *
 * Raw files hold frames exactly as FFmpeg's `-f rawvideo -pix_fmt gbrpf32le`
 * writes them: per frame the G, B and R planes, each W*H little-endian floats.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "tools/visgen/sd_cmds.h"
#include "tools/visgen/temporal_cmds.h"

static const char *usage_text =
    "usage: visgen version\n"
    "       visgen upscale [--model M] [--scale N] [--tile T] [--model-dir D]\n"
    "                      [--threads N] [-v] --size WxH IN.raw OUT.raw\n"
    "  IN.raw/OUT.raw: raw gbrpf32le frames (ffmpeg -f rawvideo -pix_fmt gbrpf32le)\n"
    "  --model M      built-in name or model path [default]\n"
    "  --scale N      upscaling factor, 0 = the model's [0]\n"
    "  --tile T       tile edge in input pixels, 0 = automatic [0]\n"
    "  --model-dir D  folder of the built-in models\n"
    "  --threads N    worker threads, 0 = one per CPU [0]\n"
    "  -v             verbose library log\n";

static int usage(const char *fmt, const char *arg)
{
    fputs("visgen: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    return 2;
}

static void log_stderr(void *cookie, int level, const char *fmt, va_list ap)
{
    static const char *const names[] = { "error", "warning", "info", "verbose", "debug" };

    fprintf(stderr, "visgen: %s: ", level >= 0 && level <= 4 ? names[level] : "log");
    vfprintf(stderr, fmt, ap);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int open_ctx(VgCtx **ctx, int threads, int verbose)
{
    VgSettings s;
    int ret;

    vg_default_settings(&s);
    s.n_threads       = threads;
    s.log_cb          = log_stderr;
    s.log_level       = verbose ? VG_LOG_VERBOSE : VG_LOG_WARNING;
    s.blas_autoselect = 1;
    ret = vg_open(ctx, &s);
    if (ret < 0)
        fprintf(stderr, "visgen: cannot open library context: %s\n", vg_strerror(ret));
    return ret;
}

static int cmd_version(int argc, char **argv)
{
    VgCtx *ctx = NULL;

    if (argc != 1)
        return usage("version takes no arguments, got '%s'", argv[1]);
    if (open_ctx(&ctx, 1, 0) < 0)
        return 1;
    printf("libvisgen %s (API %d.%d)\nOpenBLAS sgemm kernel: %s\n", vg_version(),
           VG_API_VERSION_MAJOR, VG_API_VERSION_MINOR, vg_blas_kernel(ctx));
    vg_close(&ctx);
    return 0;
}

/* Plane order in the file is G, B, R; VgImage is R, G, B. */
static const int file_plane[3] = { 1, 2, 0 };

static int read_frame(FILE *f, VgImage *img, const char *path)
{
    size_t n = (size_t)img->width * img->height;

    for (int p = 0; p < 3; p++) {
        size_t got = fread(img->data[file_plane[p]], sizeof(float), n, f);
        if (got != n) {
            if (p == 0 && got == 0 && feof(f))
                return 0;
            fprintf(stderr, "visgen: %s: truncated frame (file size is not a multiple of "
                    "%dx%dx3 floats; is --size right?)\n", path, img->width, img->height);
            return -1;
        }
    }
    return 1;
}

static int write_frame(FILE *f, const VgImage *img, const char *path)
{
    size_t n = (size_t)img->width * img->height;

    for (int p = 0; p < 3; p++) {
        if (fwrite(img->data[file_plane[p]], sizeof(float), n, f) != n) {
            fprintf(stderr, "visgen: %s: write failed: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int alloc_image(VgImage *img, int w, int h)
{
    img->width  = w;
    img->height = h;
    for (int i = 0; i < 3; i++) {
        img->data[i]   = malloc((size_t)w * h * sizeof(float));
        img->stride[i] = (ptrdiff_t)w * sizeof(float);
        if (!img->data[i])
            return -1;
    }
    return 0;
}

static void free_image(VgImage *img)
{
    for (int i = 0; i < 3; i++)
        free(img->data[i]);
}

static int cmd_upscale(int argc, char **argv)
{
    VgUpscaleSettings us;
    VgCtx *ctx = NULL;
    VgUpscaler *up = NULL;
    VgImage in = { 0 }, out = { 0 };
    FILE *fi = NULL, *fo = NULL;
    const char *paths[2] = { NULL, NULL };
    int w = 0, h = 0, threads = 0, verbose = 0, npaths = 0, frames = 0;
    int ret = 1, r, scale;

    vg_upscale_default_settings(&us);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;

        if (!strcmp(a, "-v")) {
            verbose = 1;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--model-dir") ||
                   !strcmp(a, "--scale") || !strcmp(a, "--tile") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--size")) {
            const char *v = argv[++i];
            if (!has_val)
                return usage("%s needs a value", a);
            if (!strcmp(a, "--model"))
                us.model = v;
            else if (!strcmp(a, "--model-dir"))
                us.model_dir = v;
            else if (!strcmp(a, "--scale") && parse_int(v, 0, 16, &us.scale) < 0)
                return usage("--scale: not an integer 0..16: '%s'", v);
            else if (!strcmp(a, "--tile") && parse_int(v, 0, 16384, &us.tile) < 0)
                return usage("--tile: not an integer 0..16384: '%s'", v);
            else if (!strcmp(a, "--threads") && parse_int(v, 0, 1024, &threads) < 0)
                return usage("--threads: not an integer 0..1024: '%s'", v);
            else if (!strcmp(a, "--size")) {
                char tail;
                if (sscanf(v, "%dx%d%c", &w, &h, &tail) != 2 || w <= 0 || h <= 0 ||
                    w > 16384 || h > 16384)
                    return usage("--size: want WxH with 1..16384 each, got '%s'", v);
            }
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (npaths < 2) {
            paths[npaths++] = a;
        } else {
            return usage("unexpected argument '%s'", a);
        }
    }
    if (!w)
        return usage("%s", "--size WxH is required (raw files carry no size)");
    if (npaths != 2)
        return usage("%s", "need IN.raw and OUT.raw");

    if (!(fi = fopen(paths[0], "rb"))) {
        fprintf(stderr, "visgen: %s: %s\n", paths[0], strerror(errno));
        goto end;
    }
    if (open_ctx(&ctx, threads, verbose) < 0)
        goto end;
    r = vg_upscale_open(&up, ctx, &us);
    if (r < 0) {
        fprintf(stderr, "visgen: cannot load model '%s': %s\n",
                us.model ? us.model : "default", vg_strerror(r));
        goto end;
    }
    scale = vg_upscale_get_scale(up);
    if ((int64_t)w * scale > 16384 || (int64_t)h * scale > 16384) {
        fprintf(stderr, "visgen: output %dx%d is larger than 16384 on a side\n",
                w * scale, h * scale);
        goto end;
    }
    if (alloc_image(&in, w, h) < 0 || alloc_image(&out, w * scale, h * scale) < 0) {
        fprintf(stderr, "visgen: out of memory\n");
        goto end;
    }
    if (!(fo = fopen(paths[1], "wb"))) {
        fprintf(stderr, "visgen: %s: %s\n", paths[1], strerror(errno));
        goto end;
    }
    while ((r = read_frame(fi, &in, paths[0])) > 0) {
        r = vg_upscale_run(up, &in, &out);
        if (r < 0) {
            fprintf(stderr, "visgen: frame %d: %s\n", frames, vg_strerror(r));
            goto end;
        }
        if (write_frame(fo, &out, paths[1]) < 0)
            goto end;
        frames++;
    }
    if (r < 0)
        goto end;
    if (!frames) {
        fprintf(stderr, "visgen: %s: no frames\n", paths[0]);
        goto end;
    }
    if (fclose(fo)) {
        fo = NULL;
        fprintf(stderr, "visgen: %s: %s\n", paths[1], strerror(errno));
        goto end;
    }
    fo = NULL;
    fprintf(stderr, "visgen: %d frame(s) %dx%d -> %dx%d with %s\n", frames, w, h,
            w * scale, h * scale, vg_upscale_describe(up));
    ret = 0;
end:
    if (fi)
        fclose(fi);
    if (fo)
        fclose(fo);
    free_image(&in);
    free_image(&out);
    vg_upscale_close(&up);
    vg_close(&ctx);
    return ret;
}

int main(int argc, char **argv)
{
    const union { uint32_t u; uint8_t b[4]; } endian = { 1 };

    if (!endian.b[0]) {
        fprintf(stderr, "visgen: raw gbrpf32le I/O needs a little-endian host\n");
        return 1;
    }
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        fputs(vg_sd_usage_text, argc < 2 ? stderr : stdout);
        fputs(vg_temporal_usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version"))
        return cmd_version(argc - 1, argv + 1);
    if (!strcmp(argv[1], "upscale"))
        return cmd_upscale(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return vg_cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize"))
        return vg_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "forward"))
        return vg_cmd_forward(argc - 1, argv + 1);
    if (!strcmp(argv[1], "img2img"))
        return vg_cmd_img2img(argc - 1, argv + 1);
    if (!strcmp(argv[1], "flow"))
        return vg_cmd_flow(argc - 1, argv + 1);
    if (!strcmp(argv[1], "metrics"))
        return vg_cmd_metrics(argc - 1, argv + 1);
    return usage("unknown command '%s'", argv[1]);
}
