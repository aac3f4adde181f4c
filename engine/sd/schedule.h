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
    VG_SAMPLER_DPMPP_2M,    /* DPMSolverMultistepScheduler: dpmsolver++, order 2, midpoint */
    VG_SAMPLER_LCM,         /* LCMScheduler */
    VG_SAMPLER_COUNT
} VgSamplerKind;

typedef enum VgBetaSchedule { VG_BETA_SCALED_LINEAR, VG_BETA_LINEAR } VgBetaSchedule;
typedef enum VgSpacing { VG_SPACING_LEADING, VG_SPACING_TRAILING, VG_SPACING_LINSPACE } VgSpacing;
typedef enum VgPrediction { VG_PRED_EPSILON, VG_PRED_V, VG_PRED_SAMPLE } VgPrediction;

/* The scheduler_config.json fields the five samplers read. */
typedef struct VgSchedConfig {
    int num_train_timesteps;      /* 1000 */
    double beta_start, beta_end;  /* 0.00085, 0.012 */
    VgBetaSchedule beta_schedule; /* scaled_linear */
    VgSpacing spacing;            /* timestep_spacing; LCM ignores it */
    int steps_offset;             /* added to "leading" timesteps (1 for SD) */
    VgPrediction prediction;      /* prediction_type */
    int use_karras;               /* use_karras_sigmas (euler, dpm++2m) */
    int original_inference_steps; /* LCM: 50 */
    double timestep_scaling;      /* LCM: 10 */
    int set_alpha_to_one;         /* DDIM / LCM final alpha: 1 or alphas_cumprod[0] */
    int clip_sample;              /* DDIM / LCM x0 clipping: not implemented, refused */
    int thresholding;             /* dynamic thresholding: not implemented, refused */
} VgSchedConfig;

/* Stable Diffusion's values: the fields above at their documented defaults. */
void vg_sched_config_default(VgSchedConfig *c);

/*
 * Overrides the fields present in a diffusers scheduler_config.json text
 * (@json, NUL-terminated, remains the caller's). Unknown keys are ignored;
 * a known key with a value visgen cannot honour (e.g. beta_schedule
 * "squaredcos_cap_v2", trained_betas, timestep_spacing "foo") is an error
 * naming it, logged through @c (may be NULL). Returns 0 or a negative code.
 */
int vg_sched_config_parse(VgSchedConfig *cfg, const char *json, const VgCtx *c);

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
