/*
 * libvisgen: generative video processing on the CPU.
 *
 * Conventions (as dav1d's public API):
 *  - every function returns 0 on success or a negative error code
 *    (VG_ERR(errno) or one of the tagged VG_E* codes below);
 *  - contexts are opaque, created by *_open() from a settings struct that the
 *    matching *_default_settings() fills, and destroyed by *_close(&p), which
 *    sets the caller's pointer to NULL;
 *  - the library never prints: messages go to the log callback, if any.
 *  - Ownership of every pointer parameter is stated in its comment.
 */
#ifndef VISGEN_VISGEN_H
#define VISGEN_VISGEN_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VG_API_VERSION_MAJOR 0
#define VG_API_VERSION_MINOR 1

#define VG_ERR(e) (-(e))
/* Tagged codes for failures errno has no word for. */
#define VG_TAG(a, b, c, d) (-(int)((unsigned)(a) | ((unsigned)(b) << 8) | \
                                   ((unsigned)(c) << 16) | ((unsigned)(d) << 24)))
#define VG_EBADMODEL    VG_TAG('V', 'G', 'B', 'M') /* model file malformed or truncated */
#define VG_EUNSUPPORTED VG_TAG('V', 'G', 'U', 'N') /* valid model of a kind visgen cannot run */
#define VG_EREFUSED     VG_TAG('V', 'G', 'R', 'F') /* pickle asked for something not allowed */

enum VgLogLevel {
    VG_LOG_ERROR   = 0,
    VG_LOG_WARNING = 1,
    VG_LOG_INFO    = 2,
    VG_LOG_VERBOSE = 3,
    VG_LOG_DEBUG   = 4,
};

/**
 * Log callback. @cookie is VgSettings.log_cookie; @fmt/@ap are printf-style
 * and the message ends with '\n'. Called from the thread that called the
 * library; must not call back into the same context.
 */
typedef void (*VgLogCallback)(void *cookie, int level, const char *fmt, va_list ap);

typedef struct VgSettings {
    int n_threads;          /* worker threads, 0 = number of online CPUs */
    VgLogCallback log_cb;   /* NULL = silent */
    void *log_cookie;       /* passed to log_cb, remains with the caller */
    int log_level;          /* highest VgLogLevel passed to log_cb */
    /* 1 = make OpenBLAS use the fastest sgemm kernel this CPU runs
     * (Debian's 0.3.21 misdetects recent CPUs as Prescott); 0 = leave it. */
    int blas_autoselect;
    uint8_t reserved[32];
} VgSettings;

typedef struct VgCtx VgCtx;

/** Fill @s (owned by the caller) with the defaults. */
void vg_default_settings(VgSettings *s);

/**
 * Create a library context. @out receives a new context owned by the caller
 * (free with vg_close); @s is read only during the call.
 */
int vg_open(VgCtx **out, const VgSettings *s);

/** Destroy *@c (may be NULL) and set *@c to NULL. */
void vg_close(VgCtx **c);

/** Name of the sgemm kernel OpenBLAS runs for @c, e.g. "Haswell". Static string. */
const char *vg_blas_kernel(const VgCtx *c);

/** Human readable text for an error code. Static string. */
const char *vg_strerror(int err);

/** Library version string. Static string. */
const char *vg_version(void);

/**
 * A planar RGB picture in 0..1 floats, the format frames cross the API in.
 * Plane pointers and strides remain with whoever allocated them; strides are
 * in bytes. Channel order of data[] is R, G, B.
 */
typedef struct VgImage {
    int width, height;
    float *data[3];
    ptrdiff_t stride[3];
} VgImage;

/* ---------------------------------------------------------------- upscale */

typedef struct VgUpscaler VgUpscaler;

typedef struct VgUpscaleSettings {
    /* Built-in name ("default", "esrgan-slim", "esrgan-medium",
     * "esrgan-thick") or a path: a TF.js model.json (or its folder), or a
     * Real-ESRGAN .pth/.safetensors (SRVGGNetCompact or RRDBNet). Remains
     * with the caller; read during vg_upscale_open only. */
    const char *model;
    /* Where built-in names are looked up; NULL = $VISGEN_MODEL_DIR, then the
     * installed and build-tree model folders. Remains with the caller. */
    const char *model_dir;
    int scale;        /* 0 = the model's default; a built-in name picks its xN file */
    int tile;         /* tile edge in input pixels, 0 = automatic (bounded memory) */
    int tile_overlap; /* context pixels around each tile, -1 = automatic */
    uint8_t reserved[32];
} VgUpscaleSettings;

/** Fill @s (owned by the caller) with the defaults. */
void vg_upscale_default_settings(VgUpscaleSettings *s);

/**
 * Load an upscaling model. @out receives a new upscaler owned by the caller
 * (free with vg_upscale_close). @ctx remains with the caller and must outlive
 * the upscaler. @s is read only during the call.
 */
int vg_upscale_open(VgUpscaler **out, VgCtx *ctx, const VgUpscaleSettings *s);

/** Scale factor of the loaded model. */
int vg_upscale_get_scale(const VgUpscaler *u);

/** Short description of the loaded network ("esrgan-slim x4 (TF.js, 12 conv)"). Owned by @u. */
const char *vg_upscale_describe(const VgUpscaler *u);

/**
 * Upscale @in into @out. Both remain with the caller; @out must already have
 * width = in->width * scale and height = in->height * scale with its planes
 * allocated. Output values are clamped to 0..1.
 */
int vg_upscale_run(VgUpscaler *u, const VgImage *in, VgImage *out);

/** Destroy *@u (may be NULL) and set *@u to NULL. */
void vg_upscale_close(VgUpscaler **u);


/* ---------------------------------------------------------------- stylize */

/*
 * Latent-diffusion img2img (SDEdit) per picture, as diffusers'
 * StableDiffusionImg2ImgPipeline does it: Stable Diffusion 1.x / 2.x /
 * SD-Turbo from a single-file checkpoint (.safetensors / .ckpt, original
 * layout) or a diffusers folder.
 */
typedef struct VgStylizer VgStylizer;

enum VgSeedPolicy {
    VG_SEED_FIXED     = 0, /* every picture uses `seed` (least flicker) */
    VG_SEED_INCREMENT = 1, /* picture i uses seed + i */
};

typedef struct VgStylizeSettings {
    /* Every string remains with the caller and is read during the call that
     * takes the settings only. NULL = default. */
    const char *model;           /* checkpoint file or diffusers folder (required) */
    const char *vae;             /* separate VAE file, replaces the model's */
    const char *taesd_encoder;   /* TAESD encoder (.safetensors/.pth): replaces the VAE encoder */
    const char *taesd_decoder;   /* TAESD decoder: replaces the VAE decoder */
    const char *tokenizer;       /* bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder;
                                  * NULL = the model folder's tokenizer/ */
    const char *prompt;
    const char *negative_prompt;
    float strength;              /* 0..1, share of the schedule re-run: steps*strength steps run */
    int steps;
    float cfg;                   /* guidance scale; <= 1 skips the unconditional pass */
    const char *sampler;         /* euler, euler_a, ddim, dpm++2m, lcm; NULL = family default */
    const char *schedule;        /* "default" or "karras" */
    const char *spacing;         /* leading, trailing, linspace; NULL = scheduler_config.json,
                                  * else the family's usual */
    const char *prediction;      /* epsilon, v; NULL = family default */
    int clip_skip;               /* 0 = the family's default text layer */
    uint64_t seed;
    int seed_policy;             /* enum VgSeedPolicy */
    int width, height;           /* processing size, multiples of 8; 0 = the picture's size
                                  * rounded down to a multiple of 8 */
    int vae_tile;                /* KL VAE encode / decode in tiles with blended overlaps:
                                  * 0 = auto (processing sizes above 512x512 in area, in 512
                                  * pixel tiles), -1 = never, N = tiles of N pixels (multiple
                                  * of 8, 64..16384) for sizes with a side above N. Tiles bound
                                  * the VAE's memory; the blend is not bit-exact to a whole
                                  * pass. TAESD is never tiled. */
    uint8_t reserved[28];
} VgStylizeSettings;

/** Fill @s (owned by the caller) with the defaults (strength 0.5, steps 20,
 * cfg 7.5, seed 0, fixed seeds). */
void vg_stylize_default_settings(VgStylizeSettings *s);

/**
 * Load a model and encode the prompts. @out receives a stylizer owned by the
 * caller (vg_stylize_close). @ctx remains with the caller and must outlive it.
 */
int vg_stylize_open(VgStylizer **out, VgCtx *ctx, const VgStylizeSettings *s);

/**
 * Change prompt, negative_prompt, strength, cfg, seed, seed_policy between
 * pictures (other fields of @s are ignored). Prompt embeddings are recomputed
 * only when a prompt changed. @s is read during the call only.
 */
int vg_stylize_update(VgStylizer *st, const VgStylizeSettings *s);

/**
 * Stylise @in into @out (both remain with the caller, same width and height,
 * planes allocated). @index is the picture's number, used by
 * VG_SEED_INCREMENT. The picture is resized to the processing size and back
 * inside the library when they differ.
 */
int vg_stylize_run(VgStylizer *st, const VgImage *in, VgImage *out, int64_t index);

/**
 * Shape of the initial noise vg_stylize_run_noise() takes for pictures of
 * @in_w x @in_h: *@c channels (4) of *@h x *@w latent pixels (the processing
 * size / 8). @c, @h, @w remain with the caller. Returns 0, or a negative
 * code (size unusable: below 8x8 once rounded down to multiples of 8) with
 * *@c, *@h, *@w set to 0.
 */
int vg_stylize_noise_shape(const VgStylizer *st, int in_w, int in_h, int *c, int *h, int *w);

/**
 * vg_stylize_run() with the initial noise in the caller's hands: the
 * unit-variance noise img2img adds to the encoded picture at the first
 * executed timestep (diffusers' scheduler.add_noise; sigma * noise for the
 * Euler / DPM samplers). @noise (NULL = exactly vg_stylize_run) is c*h*w
 * floats, [c, h, w] row-major, of vg_stylize_noise_shape() for @in's size;
 * it remains with the caller. On entry, finite values replace the
 * generator's draw at their positions and NaN keeps the draw (all NaN gives
 * vg_stylize_run's picture bit for bit); an infinity fails the call with
 * @noise untouched. On success it holds the noise that was used (after
 * another failure: either untouched or the noise used). Everything
 * else (seed, seed_policy, order of draws, per-step noise of ancestral
 * samplers) is unchanged: the generator still draws the whole initial noise.
 */
int vg_stylize_run_noise(VgStylizer *st, const VgImage *in, VgImage *out, int64_t index,
                         float *noise);

/** One line describing what was loaded (family, components, prediction). Owned by @st. */
const char *vg_stylize_describe(const VgStylizer *st);

/** Destroy *@st (may be NULL) and set *@st to NULL. */
void vg_stylize_close(VgStylizer **st);

#ifdef __cplusplus
}
#endif
#endif /* VISGEN_VISGEN_H */
