/*
 * img2img sampling loop as diffusers 0.27's StableDiffusionImg2ImgPipeline
 * runs it with each of the five schedulers; the model is the caller's
 * callback, so this file knows nothing of UNets or guidance.
 *
 *   VgSampler *s;
 *   vg_sampler_create(&s, &cfg, VG_SAMPLER_EULER_A, steps, strength, ctx);
 *   // rng: seeded, and already used for the VAE posterior sample
 *   vg_sampler_run(s, my_unet_cfg, opaque, &init_latent, &rng, &out);
 *   vg_sampler_free(&s);
 *
 * Order of random draws, as diffusers: one randn of the latent's shape for
 * the initial noise, then per executed step one more for euler (drawn but
 * unused, as diffusers does), euler_a and lcm (all but the final step).
 * Maths in float32 with diffusers' operation order; sigmas/alphas from
 * schedule.h.
 */
#ifndef VG_ENGINE_SD_SAMPLER_H
#define VG_ENGINE_SD_SAMPLER_H

#include "engine/sd/rng.h"
#include "engine/sd/schedule.h"
#include "engine/tensor.h"

/*
 * The model: fills @eps_out (F32, shaped like @x_in, allocated by the
 * sampler) with the prediction of the configured type (epsilon, v or
 * sample) for the already scaled input @x_in at timestep @t (the value
 * diffusers passes to the UNet). Classifier-free guidance happens inside.
 * Returns 0 or a negative code, which stops the run and is returned.
 */
typedef int (*VgDenoiseFn)(void *opaque, const VgTensor *x_in, float t, VgTensor *eps_out);

typedef struct VgSampler VgSampler;

/*
 * Builds the schedule for @steps inference steps and img2img @strength
 * (in [0, 1]; int(steps * strength) steps run). Errors (logged through @c,
 * which may be NULL and is only used during this call) for bad config,
 * steps, strength or sampler/config combinations. *out is the caller's,
 * free with vg_sampler_free.
 */
int vg_sampler_create(VgSampler **out, const VgSchedConfig *cfg, VgSamplerKind kind,
                      int steps, double strength, const VgCtx *c);
void vg_sampler_free(VgSampler **s);

/* The full schedule (set_timesteps) and its length. Owned by @s. */
const float *vg_sampler_all_timesteps(const VgSampler *s, int *n);
/* The timesteps the img2img run executes (a suffix of the above). */
const float *vg_sampler_timesteps(const VgSampler *s, int *n);
/* Index of the first executed step in the full schedule (t_start). */
int vg_sampler_start_index(const VgSampler *s);
/* Sigmas [n + 1] of the Euler / DPM family, or NULL. */
const float *vg_sampler_sigmas(const VgSampler *s);

/* Back to before the first step (multistep history cleared). */
void vg_sampler_reset(VgSampler *s);

/*
 * scheduler.add_noise at the first executed timestep: @out = noised
 * @init (both contiguous F32 of equal size; @out may alias @init).
 */
int vg_sampler_add_noise(const VgSampler *s, const VgTensor *init, const VgTensor *noise,
                         VgTensor *out);

/* scheduler.scale_model_input for the current step: @out = @x / sqrt(sigma^2 + 1)
 * for Euler / Euler a, a copy otherwise. @out may alias @x. */
int vg_sampler_scale_input(const VgSampler *s, const VgTensor *x, VgTensor *out);

/*
 * scheduler.step for the current step: @sample (contiguous F32) is replaced
 * by the previous sample; @t must be the current timestep (checked);
 * @rng supplies the step noise where the sampler draws it.
 */
int vg_sampler_step(VgSampler *s, const VgTensor *model_out, float t, VgTensor *sample,
                    VgRng *rng);

/*
 * The whole img2img loop: noise = randn(rng), x = add_noise(init, noise),
 * then for each executed t: fn(scale_input(x), t) -> step. @init_latent is
 * the scaled VAE latent (contiguous F32); @out gets the final latent
 * (allocated here if out->data is NULL, else must match in size).
 * Resets @s first, so a sampler can run many frames.
 */
int vg_sampler_run(VgSampler *s, VgDenoiseFn fn, void *opaque, const VgTensor *init_latent,
                   VgRng *rng, VgTensor *out);

#endif
