/*
 * Noise schedules as diffusers 0.27's schedulers build them: betas,
 * alphas_cumprod, the inference timesteps of each timestep spacing, the
 * sigmas (plain or Karras), and img2img's choice of where to start.
 *
 * Precision follows diffusers' dtypes so timesteps come out identical and
 * schedules to the float32 bit: betas are torch.linspace in float32 (then
 * squared for scaled_linear), alphas_cumprod a float32 cumprod accumulated in
 * double (as torch's CPU cumprod does), timestep grids and sigma
 * interpolation in float64 (numpy) stored as float32.
 */
#ifndef VG_ENGINE_SD_SCHEDULE_H
#define VG_ENGINE_SD_SCHEDULE_H

#include "visgen/visgen.h"

typedef enum VgSamplerKind {
    VG_SAMPLER_EULER,       /* EulerDiscreteScheduler */
    VG_SAMPLER_EULER_A,     /* EulerAncestralDiscreteScheduler */
    VG_SAMPLER_DDIM,        /* DDIMScheduler, eta 0 */
    VG_SAMPLER_DPMPP_2M,    /* DPMSolverMultistepScheduler: dpmsolver++, midpoint, order 2 (or 1) */
    VG_SAMPLER_LCM,         /* LCMScheduler */
    VG_SAMPLER_COUNT
} VgSamplerKind;

typedef enum VgBetaSchedule { VG_BETA_SCALED_LINEAR, VG_BETA_LINEAR } VgBetaSchedule;
typedef enum VgSpacing { VG_SPACING_LEADING, VG_SPACING_TRAILING, VG_SPACING_LINSPACE } VgSpacing;
typedef enum VgPrediction { VG_PRED_EPSILON, VG_PRED_V, VG_PRED_SAMPLE } VgPrediction;

/* A scheduler_config.json value visgen does not implement, kept until a
 * sampler that reads the key is built (see vg_sched_config_supports). */
typedef struct VgSchedUnsupported {
    const char *key;     /* static string */
    char value[40];      /* the value as written, for the error line */
    unsigned samplers;   /* bit (1 << VgSamplerKind) per sampler whose class reads the key */
    const char *what;    /* static: what visgen implements instead */
} VgSchedUnsupported;

#define VG_SCHED_MAX_UNSUPPORTED 16 /* every key parse_sampler_keys can record */

/* The scheduler_config.json fields the five samplers read. */
typedef struct VgSchedConfig {
    int num_train_timesteps;      /* 1000 */
    double beta_start, beta_end;  /* 0.00085, 0.012 */
    VgBetaSchedule beta_schedule; /* scaled_linear */
    VgSpacing spacing;            /* timestep_spacing; LCM ignores it */
    int steps_offset;             /* added to "leading" timesteps (1 for SD) */
    VgPrediction prediction;      /* prediction_type */
    int use_karras;               /* use_karras_sigmas (euler, dpm++2m) */
    double sigma_min, sigma_max;  /* Karras ramp ends (euler, dpm++2m); 0 = the schedule's */
    int original_inference_steps; /* LCM: 50 */
    double timestep_scaling;      /* LCM: 10 */
    int set_alpha_to_one;         /* DDIM / LCM final alpha: 1 or alphas_cumprod[0] */
    /* DPMSolverMultistepScheduler (dpm++2m), algorithm dpmsolver++ with the
     * midpoint solver; everything else is refused through `unsupported` */
    int solver_order;             /* 1 or 2 */
    int lower_order_final;        /* first-order final step when < 15 steps */
    int euler_at_final;           /* first-order final step always */
    int final_sigma_min;          /* final_sigmas_type: 0 "zero", 1 "sigma_min" */
    double lambda_min_clipped;    /* -inf; a value that clips the SD schedule is refused */
    int timestep_continuous;      /* Euler timestep_type "continuous": refused with v */
    VgSchedUnsupported unsupported[VG_SCHED_MAX_UNSUPPORTED];
    int n_unsupported;
} VgSchedConfig;

/* Stable Diffusion's values: the fields above at their documented defaults. */
void vg_sched_config_default(VgSchedConfig *c);

/*
 * Overrides the fields present in a diffusers scheduler_config.json text
 * (@json, NUL-terminated, remains the caller's). Keys no sampler here reads
 * (PNDM's skip_prk_steps, _class_name, ...) are ignored, as diffusers'
 * from_config ignores keys the chosen class does not take. A value no
 * sampler can honour (beta_schedule "squaredcos_cap_v2", trained_betas,
 * rescale_betas_zero_snr, timestep_spacing "foo") is an error naming it,
 * logged through @c (may be NULL). A value only some samplers read and
 * visgen does not implement (algorithm_type "sde-dpmsolver++", solver_order
 * 3, clip_sample true, ...) is recorded in cfg->unsupported and refused by
 * vg_sched_config_supports when such a sampler is built. Returns 0 or a
 * negative code.
 */
int vg_sched_config_parse(VgSchedConfig *cfg, const char *json, const VgCtx *c);

/*
 * 0 if sampler @kind can run @cfg exactly as its diffusers class would;
 * otherwise VG_ERR(EINVAL) and one log line naming the key and its value
 * (vg_sampler_create calls this).
 */
int vg_sched_config_supports(const VgSchedConfig *cfg, VgSamplerKind kind, const VgCtx *c);

/* Checks ranges; logs what is wrong through @c. */
int vg_sched_config_check(const VgSchedConfig *cfg, const VgCtx *c);

/* alphas_cumprod[num_train_timesteps] into @ac (caller's buffer). */
int vg_sched_alphas_cumprod(const VgSchedConfig *cfg, float *ac);

/*
 * The full inference schedule of @kind for @steps steps, as the scheduler's
 * set_timesteps(steps) leaves it: @ts gets @steps timesteps (integer-valued
 * except Euler's linspace / Karras ones); @sigmas (may be NULL; not used by
 * DDIM / LCM, left untouched then) gets steps + 1 sigmas ending in 0.
 * @ac is vg_sched_alphas_cumprod's output. Errors (logged through @c) for a
 * step count the sampler cannot do (e.g. LCM with more steps than
 * original_inference_steps) or Karras sigmas with a sampler without them.
 */
int vg_sched_timesteps(VgSamplerKind kind, const VgSchedConfig *cfg, const float *ac,
                       int steps, float *ts, float *sigmas, const VgCtx *c);

/*
 * img2img's get_timesteps: init_timestep = min(int(steps * strength), steps),
 * t_start = max(steps - init_timestep, 0); the run uses timesteps
 * [t_start, steps), i.e. int(steps * strength) of them. Returns t_start, or
 * a negative code (logged) when strength is outside [0, 1] or no step would
 * run.
 */
int vg_sched_img2img_start(int steps, double strength, const VgCtx *c);

const char *vg_sampler_name(VgSamplerKind kind);
/* "euler", "euler_a", "ddim", "dpm++2m", "lcm"; -1 if unknown. */
int vg_sampler_from_name(const char *name);

#endif
