/*
 * visgen info / tokenize / forward / img2img: the Stable Diffusion stack of
 * libvisgen from the command line (usage in vg_sd_usage_text).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "visgen/visgen.h"
#include "engine/io/safetensors_write.h"
#include "engine/io/textfile.h"
#include "engine/sd/pipeline.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tools/visgen/sd_cmds.h"

const char *const vg_sd_usage_text =
    "       visgen info [-v] MODEL\n"
    "       visgen tokenize [--tokenizer PATH] TEXT\n"
    "       visgen forward [--taesd_encoder F] [--taesd_decoder F] [--tokenizer P] [-v]\n"
    "                      MODEL COMPONENT IN.safetensors OUT.safetensors\n"
    "       visgen img2img MODEL IN OUT [--OPTION VALUE ...]\n"
    "  MODEL: SD 1.x/2.x single file (.safetensors/.ckpt) or diffusers folder\n"
    "  tokenize: the 77 ids and the count used; PATH: bpe_simple_vocab_16e6.txt.gz or a\n"
    "    tokenizer/ folder [$VISGEN_TOKENIZER]\n"
    "  forward COMPONENT (inputs -> outputs, tensor names):\n"
    "    unet: sample [B,4,h,w], timestep [B], encoder_hidden_states [B,77,C] -> out\n"
    "    vae_encode: image [B,3,H,W] in -1..1 -> latent_mean (unscaled)\n"
    "    vae_decode: latent [B,4,h,w] (unscaled) -> image\n"
    "    text: input_ids [B,77] -> hidden_states [B,77,C]\n"
    "    taesd_encode: image (0..1) -> latent; taesd_decode: latent -> image (MODEL may be -)\n"
    "  img2img: IN/OUT are .ppm (P6, 8 bit) or raw gbrpf32le (any other name; needs\n"
    "    --in-size WxH for IN). Options: --prompt T --negative_prompt T --strength F\n"
    "    --steps N --cfg F --sampler euler|euler_a|ddim|dpm++2m|lcm --schedule default|karras\n"
    "    --spacing leading|trailing|linspace --seed N --size WxH (processing size)\n"
    "    --vae P --taesd_encoder P --taesd_decoder P --tokenizer P --prediction epsilon|v\n"
    "    --clip_skip N --vae_tile N (0 auto: tiles above 512x512, -1 off, N px tiles)\n"
    "    --threads N -v\n";

static void log_stderr(void *cookie, int level, const char *fmt, va_list ap)
{
    static const char *const names[] = { "error", "warning", "info", "verbose", "debug" };

    fprintf(stderr, "visgen: %s: ", level >= 0 && level <= 4 ? names[level] : "log");
    vfprintf(stderr, fmt, ap);
}

static int sd_usage(const char *fmt, const char *arg)
{
    fputs("visgen: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage:\n", stderr);
    fputs(vg_sd_usage_text, stderr);
    return 2;
}

static int open_ctx(VgCtx **ctx, int threads, int verbose)
{
    VgSettings s;
    int ret;

    vg_default_settings(&s);
    s.n_threads = threads;
    s.log_cb = log_stderr;
    s.log_level = verbose ? VG_LOG_VERBOSE : VG_LOG_WARNING;
    s.blas_autoselect = 1;
    if ((ret = vg_open(ctx, &s)) < 0)
        fprintf(stderr, "visgen: cannot open library context: %s\n", vg_strerror(ret));
    return ret;
}

static int parse_size(const char *v, int *w, int *h)
{
    char x;
    return sscanf(v, "%d%c%d", w, &x, h) == 3 && x == 'x' && *w > 0 && *h > 0 &&
           *w <= 16384 && *h <= 16384 ? 0 : -1;
}

/* ---------------------------------------------------------------- info */

typedef struct Count { int64_t n; int64_t by_dt[VG_DT_COUNT]; } Count;

static void count(const VgWeights *w, const char *prefix, Count *c)
{
    const size_t pl = strlen(prefix);
    memset(c, 0, sizeof(*c));
    for (int i = 0; w && i < vg_weights_count(w); i++) {
        if (strncmp(vg_weights_name(w, i), prefix, pl))
            continue;
        const VgTensor *t = vg_weights_at(w, i);
        c->n += vg_tensor_nelem(t);
        c->by_dt[t->dtype] += vg_tensor_nelem(t);
    }
}

static void print_count(const char *what, const Count *c)
{
    printf("  %-13s %10.3fM params", what, c->n / 1e6);
    for (int d = 0; d < VG_DT_COUNT; d++)
        if (c->by_dt[d])
            printf(" %s:%.3fM", vg_dtype_name((VgDType)d), c->by_dt[d] / 1e6);
    printf("\n");
}

static VgWeights *open_folder_file(VgCtx *ctx, const char *dir, const char *sub,
                                   const char *const *names)
{
    char p[1200], link[1400];
    struct stat st;
    VgWeights *w = NULL;

    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, names[i]);
        if (!stat(p, &st)) {
            if (vg_weights_open(&w, ctx, vg_follow_link_file(ctx, p, link, sizeof(link))) < 0)
                return NULL;
            return w;
        }
    }
    return NULL;
}

int vg_cmd_info(int argc, char **argv)
{
    static const char *const unet_names[] = { "diffusion_pytorch_model.safetensors",
                                              "diffusion_pytorch_model.bin", NULL };
    static const char *const text_names[] = { "model.safetensors", "pytorch_model.bin", NULL };
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgCtx *ctx = NULL;
    VgWeights *wv = NULL;
    const char *model = NULL;
    int verbose = 0, ret = 1;
    Count c;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (model)
            return sd_usage("info: unexpected argument '%s'", argv[i]);
        else
            model = argv[i];
    }
    if (!model)
        return sd_usage("%s", "info: need MODEL");
    if (open_ctx(&ctx, 0, verbose) < 0)
        return 1;
    o.model = model;
    o.no_tokenizer_ok = 1;
    if ((ret = vg_sd_model_open(&m, ctx, &o)) < 0) {
        fprintf(stderr, "visgen: cannot load '%s': %s\n", model, vg_strerror(ret));
        ret = 1;
        goto end;
    }
    const VgUnetConfig *uc = vg_unet_get_config(m->unet);
    printf("model: %s\n", model);
    printf("family: %s (cross-attention %d, %s projections)\n",
           m->family == VG_SD_FAMILY_SD1 ? "SD1" : "SD2", uc->cross_attention_dim,
           uc->use_linear_projection ? "linear" : "conv");
    printf("layout: %s\n", m->single_file ? "single file (original)" : "diffusers folder");
    printf("prediction: %s (%s)\n", m->sched.prediction == VG_PRED_V ? "v"
           : m->sched.prediction == VG_PRED_SAMPLE ? "sample" : "epsilon", m->pred_from);
    printf("spacing: %s (%s)\n", m->sched.spacing == VG_SPACING_LEADING ? "leading"
           : m->sched.spacing == VG_SPACING_TRAILING ? "trailing" : "linspace", m->spacing_from);
    printf("default sampler: %s\n", vg_sampler_name(m->default_sampler));
    printf("unet blocks:");
    for (int i = 0; i < uc->n_blocks; i++)
        printf(" %d", uc->block_out[i]);
    printf(", heads:");
    for (int i = 0; i < uc->n_blocks; i++)
        printf(" %d", uc->heads[i]);
    printf("\ntext width: %d\n", vg_clip_hidden(m->clip));
    printf("tokenizer: %s\n", m->tok ? "tokenizer/ folder" : "none (pass --tokenizer)");
    printf("components:\n");
    if (m->single_file) {
        count(m->w_file, "model.diffusion_model.", &c);
        print_count("unet", &c);
        count(m->w_file, "first_stage_model.", &c);
        print_count("vae", &c);
        count(m->w_file, "cond_stage_model.", &c);
        print_count("text_encoder", &c);
    } else {
        count(m->w_unet, "", &c);
        print_count("unet", &c);
        if ((wv = open_folder_file(ctx, model, "vae", unet_names))) {
            count(wv, "", &c);
            print_count("vae", &c);
        }
        count(m->w_text, "", &c);
        print_count("text_encoder", &c);
        (void)text_names;
    }
    ret = 0;
end:
    vg_weights_close(&wv);
    vg_sd_model_close(&m);
    vg_close(&ctx);
    return ret;
}

/* ---------------------------------------------------------------- tokenize */

int vg_cmd_tokenize(int argc, char **argv)
{
    const char *path = getenv("VISGEN_TOKENIZER"), *text = NULL;
    VgTokenizer *t = NULL;
    VgCtx *ctx = NULL;
    int32_t ids[VG_CLIP_CTX_LEN];
    int used, ret;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer")) {
            if (++i >= argc)
                return sd_usage("%s", "--tokenizer needs a value");
            path = argv[i];
        } else if (text) {
            return sd_usage("tokenize: unexpected argument '%s' (quote the text)", argv[i]);
        } else {
            text = argv[i];
        }
    }
    if (!text)
        return sd_usage("%s", "tokenize: need TEXT");
    if (!path)
        return sd_usage("%s", "no tokenizer: pass --tokenizer PATH (bpe_simple_vocab_16e6.txt.gz "
                        "or a tokenizer/ folder) or set VISGEN_TOKENIZER");
    if (open_ctx(&ctx, 1, 0) < 0)
        return 1;
    if ((ret = vg_tokenizer_open(&t, ctx, path)) < 0 ||
        (ret = vg_tokenizer_encode(t, ctx, text, ids, &used)) < 0) {
        fprintf(stderr, "visgen: tokenize: %s\n", vg_strerror(ret));
        vg_tokenizer_close(&t);
        vg_close(&ctx);
        return 1;
    }
    for (int i = 0; i < VG_CLIP_CTX_LEN; i++)
        printf("%d%c", ids[i], i + 1 < VG_CLIP_CTX_LEN ? ' ' : '\n');
    printf("used: %d\n", used);
    vg_tokenizer_close(&t);
    vg_close(&ctx);
    return 0;
}

/* ---------------------------------------------------------------- forward */

static const VgTensor *input(const VgWeights *w, const char *name, const char *path)
{
    const VgTensor *t = vg_weights_find(w, name);
    if (!t)
        fprintf(stderr, "visgen: forward: %s has no tensor '%s'\n", path, name);
    return t;
}

/* Any-dtype tensor (floats or integers) -> contiguous F32. */
static int to_f32(const VgTensor *src, VgTensor *dst)
{
    if (src->dtype == VG_DT_I64 || src->dtype == VG_DT_I32) {
        int ret;
        if (!vg_tensor_is_contiguous(src))
            return VG_ERR(EINVAL);
        if ((ret = vg_tensor_alloc(dst, VG_DT_F32, src->ndim, src->ne)) < 0)
            return ret;
        for (int64_t i = 0; i < vg_tensor_nelem(src); i++)
            ((float *)dst->data)[i] = src->dtype == VG_DT_I64 ? (float)((const int64_t *)src->data)[i]
                                                             : (float)((const int32_t *)src->data)[i];
        return 0;
    }
    return vg_tensor_to_f32(src, dst);
}

int vg_cmd_forward(int argc, char **argv)
{
    VgSdLoadOptions o = { 0 };
    VgSdModel *m = NULL;
    VgTaesd *taesd = NULL;
    VgCtx *ctx = NULL;
    VgWeights *in = NULL;
    VgTensor a = { 0 }, b = { 0 }, c = { 0 }, y = { 0 };
    const char *pos[4] = { 0 }, *oname = NULL;
    int npos = 0, verbose = 0, ret = 1, r;

    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-v")) {
            verbose = 1;
        } else if (!strcmp(s, "--taesd_encoder") || !strcmp(s, "--taesd-encoder") ||
                   !strcmp(s, "--taesd_decoder") || !strcmp(s, "--taesd-decoder") ||
                   !strcmp(s, "--tokenizer")) {
            if (++i >= argc)
                return sd_usage("%s needs a value", s);
            if (strstr(s, "encoder"))
                o.taesd_encoder = argv[i];
            else if (strstr(s, "decoder"))
                o.taesd_decoder = argv[i];
            else
                o.tokenizer = argv[i];
        } else if (npos < 4) {
            pos[npos++] = s;
        } else {
            return sd_usage("forward: unexpected argument '%s'", s);
        }
    }
    if (npos != 4)
        return sd_usage("%s", "forward: need MODEL COMPONENT IN.safetensors OUT.safetensors");
    const char *comp = pos[1];
    const int is_taesd = !strncmp(comp, "taesd_", 6);
    if (strcmp(comp, "unet") && strcmp(comp, "vae_encode") && strcmp(comp, "vae_decode") &&
        strcmp(comp, "text") && strcmp(comp, "taesd_encode") && strcmp(comp, "taesd_decode"))
        return sd_usage("forward: COMPONENT '%s' unknown (unet, vae_encode, vae_decode, text, "
                        "taesd_encode, taesd_decode)", comp);
    if (open_ctx(&ctx, 0, verbose) < 0)
        return 1;
    if (is_taesd) {
        if ((r = vg_taesd_open_files(&taesd, ctx, o.taesd_encoder, o.taesd_decoder)) < 0) {
            fprintf(stderr, "visgen: forward: TAESD (--taesd_encoder / --taesd_decoder): %s\n",
                    vg_strerror(r));
            goto end;
        }
    } else {
        o.model = pos[0];
        o.no_tokenizer_ok = 1;
        o.taesd_encoder = o.taesd_decoder = NULL;
        if ((r = vg_sd_model_open(&m, ctx, &o)) < 0) {
            fprintf(stderr, "visgen: cannot load '%s': %s\n", pos[0], vg_strerror(r));
            goto end;
        }
    }
    if ((r = vg_weights_open(&in, ctx, pos[2])) < 0) {
        fprintf(stderr, "visgen: forward: cannot read %s: %s\n", pos[2], vg_strerror(r));
        goto end;
    }
    const VgTensor *t0, *t1, *t2;
    if (!strcmp(comp, "unet")) {
        if (!(t0 = input(in, "sample", pos[2])) || !(t1 = input(in, "timestep", pos[2])) ||
            !(t2 = input(in, "encoder_hidden_states", pos[2])))
            goto end;
        if ((r = to_f32(t0, &a)) < 0 || (r = to_f32(t1, &b)) < 0 || (r = to_f32(t2, &c)) < 0)
            goto fail;
        if (a.ndim != 4 || vg_tensor_nelem(&b) != a.ne[0] || c.ndim != 3 || c.ne[0] != a.ne[0]) {
            fprintf(stderr, "visgen: forward: want sample [B,4,h,w], timestep [B], "
                    "encoder_hidden_states [B,77,C]\n");
            goto end;
        }
        const VgUnetConfig *uc = vg_unet_get_config(m->unet);
        if ((r = vg_tensor_alloc4(&y, a.ne[0], uc->out_channels, a.ne[2], a.ne[3])) < 0 ||
            (r = vg_unet_forward(m->unet, &a, b.data, &c, &y)) < 0)
            goto fail;
        oname = "out";
    } else if (!strcmp(comp, "vae_encode") || !strcmp(comp, "vae_decode")) {
        const int enc = !strcmp(comp, "vae_encode");
        if (!m->vae) {
            fprintf(stderr, "visgen: forward: the model has no VAE\n");
            goto end;
        }
        if (!(t0 = input(in, enc ? "image" : "latent", pos[2])))
            goto end;
        if ((r = to_f32(t0, &a)) < 0 ||
            (r = enc ? vg_vae_encode(m->vae, &a, &y) : vg_vae_decode(m->vae, &a, &y)) < 0)
            goto fail;
        oname = enc ? "latent_mean" : "image";
    } else if (!strcmp(comp, "text")) {
        if (!(t0 = input(in, "input_ids", pos[2])))
            goto end;
        if ((r = to_f32(t0, &a)) < 0)
            goto fail;
        const int64_t n = vg_tensor_nelem(&a), L = vg_clip_positions(m->clip);
        if (n % L) {
            fprintf(stderr, "visgen: forward: input_ids must hold B x %lld ids\n", (long long)L);
            goto end;
        }
        const int64_t B = n / L, C = vg_clip_hidden(m->clip);
        int32_t *ids = malloc(sizeof(int32_t) * L);
        if (!ids || (r = vg_tensor_alloc(&y, VG_DT_F32, 3, (const int64_t[]){ B, L, C })) < 0) {
            free(ids);
            r = VG_ERR(ENOMEM);
            goto fail;
        }
        for (int64_t bi = 0; bi < B; bi++) {
            VgTensor row;
            for (int64_t k = 0; k < L; k++)
                ids[k] = (int32_t)((float *)a.data)[bi * L + k];
            vg_tensor_view(&row, VG_DT_F32, (float *)y.data + bi * L * C, 3,
                           (const int64_t[]){ 1, L, C });
            if ((r = vg_clip_encode(m->clip, ids, (int)L, &row)) < 0)
                break;
        }
        free(ids);
        if (r < 0)
            goto fail;
        oname = "hidden_states";
    } else {
        const int enc = !strcmp(comp, "taesd_encode");
        if (!(t0 = input(in, enc ? "image" : "latent", pos[2])))
            goto end;
        if ((r = to_f32(t0, &a)) < 0 ||
            (r = enc ? vg_taesd_encode(taesd, &a, &y) : vg_taesd_decode(taesd, &a, &y)) < 0)
            goto fail;
        oname = enc ? "latent" : "image";
    }
    {
        const VgTensor *outs[1] = { &y };
        if ((r = vg_safetensors_write(ctx, pos[3], 1, &oname, outs)) < 0)
            goto fail;
    }
    ret = 0;
    goto end;
fail:
    fprintf(stderr, "visgen: forward %s: %s\n", comp, vg_strerror(r));
end:
    vg_tensor_free(&a);
    vg_tensor_free(&b);
    vg_tensor_free(&c);
    vg_tensor_free(&y);
    vg_weights_close(&in);
    vg_taesd_close(&taesd);
    vg_sd_model_close(&m);
    vg_close(&ctx);
    return ret;
}

/* ---------------------------------------------------------------- img2img */

static int ends_with(const char *s, const char *suf)
{
    const size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static int alloc_img(VgImage *im, int w, int h)
{
    im->width = w;
    im->height = h;
    for (int c = 0; c < 3; c++) {
        im->data[c] = malloc(sizeof(float) * w * h);
        im->stride[c] = (ptrdiff_t)w * sizeof(float);
        if (!im->data[c])
            return -1;
    }
    return 0;
}

static void free_img(VgImage *im)
{
    for (int c = 0; c < 3; c++)
        free(im->data[c]);
}

/* P6 PPM, maxval 255 or 65535 (whitespace / comments in the header). */
static int read_ppm(const char *path, VgImage *im)
{
    FILE *f = fopen(path, "rb");
    int v[3] = { 0 }, n = 0, ch, ret = -1;

    if (!f) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgetc(f) != 'P' || fgetc(f) != '6')
        goto bad;
    while (n < 3) {
        ch = fgetc(f);
        if (ch == '#') {
            while ((ch = fgetc(f)) != '\n' && ch != EOF)
                ;
        } else if (ch >= '0' && ch <= '9') {
            ungetc(ch, f);
            if (fscanf(f, "%d", &v[n++]) != 1)
                goto bad;
        } else if (ch == EOF) {
            goto bad;
        }
    }
    fgetc(f);
    if (v[0] < 1 || v[1] < 1 || v[0] > 16384 || v[1] > 16384 || v[2] < 1 || v[2] > 65535)
        goto bad;
    if (alloc_img(im, v[0], v[1]) < 0)
        goto end;
    const int bps = v[2] > 255 ? 2 : 1;
    for (int64_t i = 0; i < (int64_t)v[0] * v[1]; i++)
        for (int c = 0; c < 3; c++) {
            int a = fgetc(f), b = bps == 2 ? fgetc(f) : 0;
            if (a == EOF || b == EOF)
                goto bad;
            im->data[c][i] = (bps == 2 ? (a << 8 | b) : a) / (float)v[2];
        }
    ret = 0;
    goto end;
bad:
    fprintf(stderr, "visgen: %s: not a P6 PPM (or truncated)\n", path);
end:
    fclose(f);
    return ret;
}

static int write_ppm(const char *path, const VgImage *im)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "P6\n%d %d\n255\n", im->width, im->height);
    for (int64_t i = 0; i < (int64_t)im->width * im->height; i++)
        for (int c = 0; c < 3; c++) {
            float x = im->data[c][i];
            x = x < 0.f ? 0.f : x > 1.f ? 1.f : x;
            fputc((int)(x * 255.f + 0.5f), f);
        }
    if (fclose(f)) {
        fprintf(stderr, "visgen: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* Raw gbrpf32le (one frame): planes G, B, R. */
static const int raw_plane[3] = { 1, 2, 0 };

static int read_raw(const char *path, VgImage *im, int w, int h)
{
    FILE *f = fopen(path, "rb");
    int ret = -1;
    if (!f) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (alloc_img(im, w, h) < 0)
        goto end;
    for (int p = 0; p < 3; p++)
        if (fread(im->data[raw_plane[p]], sizeof(float), (size_t)w * h, f) != (size_t)w * h) {
            fprintf(stderr, "visgen: %s: shorter than one %dx%d gbrpf32le frame (is --in-size "
                    "right?)\n", path, w, h);
            goto end;
        }
    ret = 0;
end:
    fclose(f);
    return ret;
}

static int write_raw(const char *path, const VgImage *im)
{
    FILE *f = fopen(path, "wb");
    const size_t n = (size_t)im->width * im->height;
    int ok = f != NULL;
    for (int p = 0; ok && p < 3; p++)
        ok = fwrite(im->data[raw_plane[p]], sizeof(float), n, f) == n;
    if (f && fclose(f))
        ok = 0;
    if (!ok)
        fprintf(stderr, "visgen: %s: write failed\n", path);
    return ok ? 0 : -1;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    *out = strtof(s, &end);
    return errno || end == s || *end ? -1 : 0;
}

int vg_cmd_img2img(int argc, char **argv)
{
    VgStylizeSettings s;
    VgStylizer *st = NULL;
    VgCtx *ctx = NULL;
    VgImage in = { 0 }, out = { 0 };
    const char *pos[3] = { 0 };
    int npos = 0, verbose = 0, threads = 0, iw = 0, ih = 0, ret = 1, r;

    vg_stylize_default_settings(&s);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-v")) {
            verbose = 1;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            if (npos >= 3)
                return sd_usage("img2img: unexpected argument '%s'", a);
            pos[npos++] = a;
            continue;
        }
        if (++i >= argc)
            return sd_usage("%s needs a value", a);
        v = argv[i];
        const char *k = a + 2;
        char *end;
        if (!strcmp(k, "prompt"))
            s.prompt = v;
        else if (!strcmp(k, "negative_prompt"))
            s.negative_prompt = v;
        else if (!strcmp(k, "strength")) {
            if (parse_float(v, &s.strength) < 0)
                return sd_usage("--strength: not a number: '%s'", v);
        } else if (!strcmp(k, "cfg")) {
            if (parse_float(v, &s.cfg) < 0)
                return sd_usage("--cfg: not a number: '%s'", v);
        } else if (!strcmp(k, "steps") || !strcmp(k, "clip_skip") || !strcmp(k, "threads") ||
                   !strcmp(k, "vae_tile")) {
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < -1000000 || n > 1000000)
                return sd_usage("not an integer: '%s'", v);
            if (!strcmp(k, "steps"))
                s.steps = (int)n;
            else if (!strcmp(k, "clip_skip"))
                s.clip_skip = (int)n;
            else if (!strcmp(k, "vae_tile"))
                s.vae_tile = (int)n;
            else
                threads = (int)n;
        } else if (!strcmp(k, "seed")) {
            errno = 0;
            s.seed = strtoull(v, &end, 10);
            if (errno || *end || end == v || *v == '-')
                return sd_usage("--seed: not an unsigned integer: '%s'", v);
        } else if (!strcmp(k, "sampler"))
            s.sampler = v;
        else if (!strcmp(k, "schedule"))
            s.schedule = v;
        else if (!strcmp(k, "spacing"))
            s.spacing = v;
        else if (!strcmp(k, "prediction"))
            s.prediction = v;
        else if (!strcmp(k, "vae"))
            s.vae = v;
        else if (!strcmp(k, "taesd_encoder"))
            s.taesd_encoder = v;
        else if (!strcmp(k, "taesd_decoder"))
            s.taesd_decoder = v;
        else if (!strcmp(k, "tokenizer"))
            s.tokenizer = v;
        else if (!strcmp(k, "size")) {
            if (parse_size(v, &s.width, &s.height) < 0)
                return sd_usage("--size: want WxH, got '%s'", v);
        } else if (!strcmp(k, "in-size") || !strcmp(k, "in_size")) {
            if (parse_size(v, &iw, &ih) < 0)
                return sd_usage("--in-size: want WxH, got '%s'", v);
        } else
            return sd_usage("img2img: unknown option '%s'", a);
    }
    if (npos != 3)
        return sd_usage("%s", "img2img: need MODEL IN OUT");
    s.model = pos[0];
    if (ends_with(pos[1], ".ppm")) {
        if (read_ppm(pos[1], &in) < 0)
            goto end;
    } else {
        if (!iw)
            return sd_usage("%s", "img2img: raw gbrpf32le input needs --in-size WxH");
        if (read_raw(pos[1], &in, iw, ih) < 0)
            goto end;
    }
    if (alloc_img(&out, in.width, in.height) < 0) {
        fprintf(stderr, "visgen: out of memory\n");
        goto end;
    }
    if (open_ctx(&ctx, threads, verbose) < 0)
        goto end;
    if ((r = vg_stylize_open(&st, ctx, &s)) < 0) {
        fprintf(stderr, "visgen: img2img: cannot set up '%s': %s\n", pos[0], vg_strerror(r));
        goto end;
    }
    if ((r = vg_stylize_run(st, &in, &out, 0)) < 0) {
        fprintf(stderr, "visgen: img2img: %s\n", vg_strerror(r));
        goto end;
    }
    if ((ends_with(pos[2], ".ppm") ? write_ppm(pos[2], &out) : write_raw(pos[2], &out)) < 0)
        goto end;
    fprintf(stderr, "visgen: %dx%d with %s\n", in.width, in.height, vg_stylize_describe(st));
    ret = 0;
end:
    free_img(&in);
    free_img(&out);
    vg_stylize_close(&st);
    vg_close(&ctx);
    return ret;
}
