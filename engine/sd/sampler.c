/*
 * The five diffusers schedulers' step() and the img2img loop around them.
 * Scalars are float32 like the 0-dim tensors diffusers computes them in,
 * and each tensor expression is evaluated one torch op at a time, in the
 * order diffusers writes it (this file is -std=c11: no FMA contraction).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/sampler.h"

struct VgSampler {
    VgSamplerKind kind;
    VgSchedConfig cfg;
    int steps;          /* len(scheduler.timesteps) */
    int t_start;        /* first executed index */
    int step_index;     /* current index into ts */
    float *ac;          /* [num_train_timesteps] alphas_cumprod */
    float *ts;          /* [steps] */
    float *sigmas;      /* [steps + 1], Euler / DPM family, else NULL */
    float final_ac;     /* DDIM / LCM alpha beyond the last step */
    /* DPM-Solver++ 2M history: the previous data prediction */
    float *prev_x0;
    int64_t prev_n;
    int lower_order_nums;
};

static int uses_sigmas(VgSamplerKind k)
{
    return k == VG_SAMPLER_EULER || k == VG_SAMPLER_EULER_A || k == VG_SAMPLER_DPMPP_2M;
}

void vg_sampler_free(VgSampler **ps)
{
    VgSampler *s = ps ? *ps : NULL;
    if (!s)
        return;
    free(s->ac);
    free(s->ts);
    free(s->sigmas);
    free(s->prev_x0);
    free(s);
    *ps = NULL;
}

int vg_sampler_create(VgSampler **out, const VgSchedConfig *cfg, VgSamplerKind kind,
                      int steps, double strength, const VgCtx *c)
{
    VgSampler *s = NULL;
    int ret;
    *out = NULL;
    if ((unsigned)kind >= VG_SAMPLER_COUNT) {
        vg_log(c, VG_LOG_ERROR, "sampler: unknown sampler %d\n", (int)kind);
        return VG_ERR(EINVAL);
    }
    if ((ret = vg_sched_config_check(cfg, c)) < 0)
        return ret;
    if ((ret = vg_sched_config_supports(cfg, kind, c)) < 0)
        return ret;
    if (steps < 1 || steps > cfg->num_train_timesteps) {
        vg_log(c, VG_LOG_ERROR, "%s: steps %d out of range [1, %d]\n", vg_sampler_name(kind),
               steps, cfg->num_train_timesteps);
        return VG_ERR(EINVAL);
    }
    if ((ret = vg_sched_img2img_start(steps, strength, c)) < 0)
        return ret;
    if (!(s = calloc(1, sizeof(*s))))
        return VG_ERR(ENOMEM);
    s->kind = kind;
    s->cfg = *cfg;
    s->steps = steps;
    s->t_start = ret;
    s->ac = malloc(sizeof(*s->ac) * cfg->num_train_timesteps);
    s->ts = malloc(sizeof(*s->ts) * steps);
    if (uses_sigmas(kind))
        s->sigmas = malloc(sizeof(*s->sigmas) * (steps + 1));
    if (!s->ac || !s->ts || (uses_sigmas(kind) && !s->sigmas)) {
        ret = VG_ERR(ENOMEM);
        goto fail;
    }
    if ((ret = vg_sched_alphas_cumprod(cfg, s->ac)) < 0 ||
        (ret = vg_sched_timesteps(kind, cfg, s->ac, steps, s->ts, s->sigmas, c)) < 0)
        goto fail;
    s->final_ac = cfg->set_alpha_to_one ? 1.0f : s->ac[0];
    vg_sampler_reset(s);
    *out = s;
    return 0;
fail:
    vg_sampler_free(&s);
    return ret;
}

const float *vg_sampler_all_timesteps(const VgSampler *s, int *n)
{
    *n = s->steps;
    return s->ts;
}

const float *vg_sampler_timesteps(const VgSampler *s, int *n)
{
    *n = s->steps - s->t_start;
    return s->ts + s->t_start;
}

int vg_sampler_start_index(const VgSampler *s) { return s->t_start; }
const float *vg_sampler_sigmas(const VgSampler *s) { return s->sigmas; }

void vg_sampler_reset(VgSampler *s)
{
    s->step_index = s->t_start;
    s->lower_order_nums = 0;
}

static int check_f32(const VgTensor *t)
{
    return t && t->data && t->dtype == VG_DT_F32 && vg_tensor_is_contiguous(t);
}

/* alphas_cumprod at an integer-valued timestep; beyond the start: final. */
static float ac_at(const VgSampler *s, float t)
{
    const int i = (int)t;
    return i >= 0 ? s->ac[i] : s->final_ac;
}

int vg_sampler_add_noise(const VgSampler *s, const VgTensor *init, const VgTensor *noise,
                         VgTensor *out)
{
    if (!check_f32(init) || !check_f32(noise) || !check_f32(out))
        return VG_ERR(EINVAL);
    const int64_t n = vg_tensor_nelem(init);
    if (vg_tensor_nelem(noise) != n || vg_tensor_nelem(out) != n)
        return VG_ERR(EINVAL);
    const float *x = init->data, *e = noise->data;
    float *y = out->data;
    const float t = s->ts[s->t_start];
    if (s->kind == VG_SAMPLER_EULER || s->kind == VG_SAMPLER_EULER_A) {
        const float sigma = s->sigmas[s->t_start];
        for (int64_t i = 0; i < n; i++) {
            const float en = e[i] * sigma;
            y[i] = x[i] + en;
        }
    } else if (s->kind == VG_SAMPLER_DPMPP_2M) {
        const float sigma = s->sigmas[s->t_start];
        const float alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f), sigma_t = sigma * alpha_t;
        for (int64_t i = 0; i < n; i++) {
            const float a = alpha_t * x[i], b = sigma_t * e[i];
            y[i] = a + b;
        }
    } else { /* DDIM, LCM */
        const float a = s->ac[(int)t];
        const float sa = sqrtf(a), sb = sqrtf(1.0f - a);
        for (int64_t i = 0; i < n; i++) {
            const float p = sa * x[i], q = sb * e[i];
            y[i] = p + q;
        }
    }
    return 0;
}

int vg_sampler_scale_input(const VgSampler *s, const VgTensor *x, VgTensor *out)
{
    if (!check_f32(x) || !check_f32(out) || vg_tensor_nelem(x) != vg_tensor_nelem(out))
        return VG_ERR(EINVAL);
    const int64_t n = vg_tensor_nelem(x);
    const float *a = x->data;
    float *y = out->data;
    if (s->kind == VG_SAMPLER_EULER || s->kind == VG_SAMPLER_EULER_A) {
        const float sigma = s->sigmas[s->step_index];
        const float d = sqrtf(sigma * sigma + 1.0f);
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] / d;
    } else if (y != a) {
        memcpy(y, a, sizeof(*y) * n);
    }
    return 0;
}

/* Euler-family data prediction x0 from the model output at sigma. */
static void euler_x0(VgPrediction p, float sigma, const float *m, const float *x, float *x0,
                     int64_t n)
{
    if (p == VG_PRED_EPSILON) {
        for (int64_t i = 0; i < n; i++) {
            const float sm = sigma * m[i];
            x0[i] = x[i] - sm;
        }
    } else if (p == VG_PRED_V) {
        const float s2p1 = sigma * sigma + 1.0f;
        const float cm = -sigma / sqrtf(s2p1);
        for (int64_t i = 0; i < n; i++) {
            const float a = m[i] * cm, b = x[i] / s2p1;
            x0[i] = a + b;
        }
    } else {
        memcpy(x0, m, sizeof(*x0) * n);
    }
}

/* DDIM / LCM: x0 (and eps when @eps != NULL) from alphas. */
static void alpha_x0(VgPrediction p, float a_t, const float *m, const float *x, float *x0,
                     float *eps, int64_t n)
{
    const float sa = sqrtf(a_t), sb = sqrtf(1.0f - a_t);
    for (int64_t i = 0; i < n; i++) {
        if (p == VG_PRED_EPSILON) {
            const float bm = sb * m[i], d = x[i] - bm;
            x0[i] = d / sa;
            if (eps)
                eps[i] = m[i];
        } else if (p == VG_PRED_V) {
            const float ax = sa * x[i], bm = sb * m[i];
            const float am = sa * m[i], bx = sb * x[i];
            x0[i] = ax - bm;
            if (eps)
                eps[i] = am + bx;
        } else {
            x0[i] = m[i];
            if (eps) {
                const float ax = sa * m[i], d = x[i] - ax;
                eps[i] = d / sb;
            }
        }
    }
}

static void dpm_alpha_sigma(float sigma, float *alpha_t, float *sigma_t)
{
    *alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha_t;
}

static int step_dpm(VgSampler *s, const float *m, float *x, float *x0, int64_t n)
{
    const int i = s->step_index, nt = s->steps;
    float alpha, sig;
    dpm_alpha_sigma(s->sigmas[i], &alpha, &sig);
    if (s->cfg.prediction == VG_PRED_EPSILON) {
        for (int64_t k = 0; k < n; k++) {
            const float sm = sig * m[k], d = x[k] - sm;
            x0[k] = d / alpha;
        }
    } else if (s->cfg.prediction == VG_PRED_V) {
        for (int64_t k = 0; k < n; k++) {
            const float ax = alpha * x[k], sm = sig * m[k];
            x0[k] = ax - sm;
        }
    } else {
        memcpy(x0, m, sizeof(*x0) * n);
    }
    /* the last step is first order with a zero final sigma (the second-order
     * formula would divide by it), with euler_at_final, or with
     * lower_order_final below 15 steps; lower_order_final's second-to-last
     * rule only affects order 3 */
    const int lower_final = i == nt - 1 &&
        (s->cfg.euler_at_final || (s->cfg.lower_order_final && nt < 15) ||
         !s->cfg.final_sigma_min);
    const int use_first = s->cfg.solver_order == 1 || s->lower_order_nums < 1 || lower_final;
    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    dpm_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    dpm_alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    const float lambda_t = logf(alpha_t) - logf(sigma_t);
    const float lambda_s0 = logf(alpha_s0) - logf(sigma_s0);
    const float h = lambda_t - lambda_s0;
    const float ratio = sigma_t / sigma_s0;
    const float b = alpha_t * (expf(-h) - 1.0f);
    if (use_first) {
        for (int64_t k = 0; k < n; k++) {
            const float p = ratio * x[k], q = b * x0[k];
            x[k] = p - q;
        }
    } else {
        float alpha_s1, sigma_s1;
        dpm_alpha_sigma(s->sigmas[i - 1], &alpha_s1, &sigma_s1);
        const float lambda_s1 = logf(alpha_s1) - logf(sigma_s1);
        const float h0 = lambda_s0 - lambda_s1;
        const float r0 = h0 / h;
        const float inv_r0 = 1.0f / r0;
        const float half_b = 0.5f * b;
        const float *m1 = s->prev_x0;
        for (int64_t k = 0; k < n; k++) {
            const float dd = x0[k] - m1[k], d1 = inv_r0 * dd;
            const float p = ratio * x[k], q = b * x0[k], r = half_b * d1;
            const float pq = p - q;
            x[k] = pq - r;
        }
    }
    memcpy(s->prev_x0, x0, sizeof(*x0) * n);
    if (s->lower_order_nums < s->cfg.solver_order)
        s->lower_order_nums++;
    return 0;
}

int vg_sampler_step(VgSampler *s, const VgTensor *model_out, float t, VgTensor *sample,
                    VgRng *rng)
{
    if (!check_f32(model_out) || !check_f32(sample))
        return VG_ERR(EINVAL);
    const int64_t n = vg_tensor_nelem(sample);
    if (vg_tensor_nelem(model_out) != n || s->step_index >= s->steps ||
        s->ts[s->step_index] != t)
        return VG_ERR(EINVAL);
    const int i = s->step_index;
    const float *m = model_out->data;
    float *x = sample->data;
    float *x0 = malloc(sizeof(*x0) * n), *aux = NULL;
    int ret = 0;
    if (!x0)
        return VG_ERR(ENOMEM);

    switch (s->kind) {
    case VG_SAMPLER_EULER: {
        /* s_churn 0: gamma 0, sigma_hat = sigma; the noise diffusers draws
         * here is unused but consumed from the generator */
        if (!(aux = malloc(sizeof(*aux) * n))) { ret = VG_ERR(ENOMEM); break; }
        vg_rng_randn(rng, aux, n);
        const float sigma = s->sigmas[i];
        euler_x0(s->cfg.prediction, sigma, m, x, x0, n);
        const float dt = s->sigmas[i + 1] - sigma;
        for (int64_t k = 0; k < n; k++) {
            const float d = x[k] - x0[k], der = d / sigma, step = der * dt;
            x[k] = x[k] + step;
        }
        break;
    }
    case VG_SAMPLER_EULER_A: {
        const float sf = s->sigmas[i], st = s->sigmas[i + 1];
        euler_x0(s->cfg.prediction, sf, m, x, x0, n);
        const float st2 = st * st, sf2 = sf * sf;
        const float up = sqrtf(st2 * (sf2 - st2) / sf2);
        const float down = sqrtf(st2 - up * up);
        const float dt = down - sf;
        for (int64_t k = 0; k < n; k++) {
            const float d = x[k] - x0[k], der = d / sf, step = der * dt;
            x[k] = x[k] + step;
        }
        if (!(aux = malloc(sizeof(*aux) * n))) { ret = VG_ERR(ENOMEM); break; }
        vg_rng_randn(rng, aux, n);
        for (int64_t k = 0; k < n; k++) {
            const float e = aux[k] * up;
            x[k] = x[k] + e;
        }
        break;
    }
    case VG_SAMPLER_DDIM: {
        if (!(aux = malloc(sizeof(*aux) * n))) { ret = VG_ERR(ENOMEM); break; }
        const float a_t = s->ac[(int)t];
        const float a_prev = ac_at(s, t - (float)(s->cfg.num_train_timesteps / s->steps));
        alpha_x0(s->cfg.prediction, a_t, m, x, x0, aux, n);
        const float dir = sqrtf((1.0f - a_prev) - 0.0f), sp = sqrtf(a_prev);
        for (int64_t k = 0; k < n; k++) {
            const float p = sp * x0[k], q = dir * aux[k];
            x[k] = p + q;
        }
        break;
    }
    case VG_SAMPLER_LCM: {
        const float prev_t = i + 1 < s->steps ? s->ts[i + 1] : t;
        const float a_t = s->ac[(int)t], a_prev = ac_at(s, prev_t);
        const float b_prev = 1.0f - a_prev;
        const float st = t * (float)s->cfg.timestep_scaling;
        const float st2 = st * st + 0.25f;
        const float c_skip = 0.25f / st2, c_out = st / sqrtf(st2);
        alpha_x0(s->cfg.prediction, a_t, m, x, x0, NULL, n);
        for (int64_t k = 0; k < n; k++) {
            const float p = c_out * x0[k], q = c_skip * x[k];
            x[k] = p + q; /* denoised */
        }
        if (i != s->steps - 1) {
            if (!(aux = malloc(sizeof(*aux) * n))) { ret = VG_ERR(ENOMEM); break; }
            vg_rng_randn(rng, aux, n);
            const float sa = sqrtf(a_prev), sb = sqrtf(b_prev);
            for (int64_t k = 0; k < n; k++) {
                const float p = sa * x[k], q = sb * aux[k];
                x[k] = p + q;
            }
        }
        break;
    }
    case VG_SAMPLER_DPMPP_2M:
        if (!s->prev_x0 || s->prev_n != n) {
            free(s->prev_x0);
            s->prev_n = 0;
            if (!(s->prev_x0 = calloc(n, sizeof(*s->prev_x0)))) { ret = VG_ERR(ENOMEM); break; }
            s->prev_n = n;
        }
        ret = step_dpm(s, m, x, x0, n);
        break;
    default:
        ret = VG_ERR(EINVAL);
    }
    free(x0);
    free(aux);
    if (ret >= 0)
        s->step_index++;
    return ret;
}

int vg_sampler_run(VgSampler *s, VgDenoiseFn fn, void *opaque, const VgTensor *init_latent,
                   VgRng *rng, VgTensor *out)
{
    VgTensor noise = { 0 }, xin = { 0 }, eps = { 0 };
    int ret, allocated = 0;
    if (!check_f32(init_latent))
        return VG_ERR(EINVAL);
    const int64_t n = vg_tensor_nelem(init_latent);
    if (!out->data) {
        if ((ret = vg_tensor_alloc(out, VG_DT_F32, init_latent->ndim, init_latent->ne)) < 0)
            return ret;
        allocated = 1;
    } else if (!check_f32(out) || vg_tensor_nelem(out) != n) {
        return VG_ERR(EINVAL);
    }
    vg_sampler_reset(s);
    if ((ret = vg_tensor_alloc(&noise, VG_DT_F32, init_latent->ndim, init_latent->ne)) < 0 ||
        (ret = vg_tensor_alloc(&xin, VG_DT_F32, init_latent->ndim, init_latent->ne)) < 0 ||
        (ret = vg_tensor_alloc(&eps, VG_DT_F32, init_latent->ndim, init_latent->ne)) < 0)
        goto end;
    vg_rng_randn(rng, noise.data, n);                 // [B, C, h, w]
    if ((ret = vg_sampler_add_noise(s, init_latent, &noise, out)) < 0)
        goto end;
    for (int i = s->t_start; i < s->steps; i++) {
        const float t = s->ts[i];
        if ((ret = vg_sampler_scale_input(s, out, &xin)) < 0 ||
            (ret = fn(opaque, &xin, t, &eps)) < 0 ||
            (ret = vg_sampler_step(s, &eps, t, out, rng)) < 0)
            goto end;
    }
end:
    vg_tensor_free(&noise);
    vg_tensor_free(&xin);
    vg_tensor_free(&eps);
    if (ret < 0 && allocated)
        vg_tensor_free(out);
    return ret;
}
