/*
 * Timestep and sigma schedules, step for step as diffusers 0.27 computes
 * them (numpy float64 for grids, torch float32 for the alphas), so that the
 * timesteps are identical and sigmas agree to the float32 bit.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/schedule.h"

static const char *const sampler_names[VG_SAMPLER_COUNT] = {
    "euler", "euler_a", "ddim", "dpm++2m", "lcm",
};

const char *vg_sampler_name(VgSamplerKind kind)
{
    return (unsigned)kind < VG_SAMPLER_COUNT ? sampler_names[kind] : "?";
}

int vg_sampler_from_name(const char *name)
{
    for (int i = 0; i < VG_SAMPLER_COUNT; i++)
        if (name && !strcmp(name, sampler_names[i]))
            return i;
    return -1;
}

void vg_sched_config_default(VgSchedConfig *c)
{
    memset(c, 0, sizeof(*c));
    c->num_train_timesteps = 1000;
    c->beta_start = 0.00085;
    c->beta_end = 0.012;
    c->beta_schedule = VG_BETA_SCALED_LINEAR;
    c->spacing = VG_SPACING_LEADING;
    c->steps_offset = 1;
    c->prediction = VG_PRED_EPSILON;
    c->use_karras = 0;
    c->original_inference_steps = 50;
    c->timestep_scaling = 10.0;
    c->set_alpha_to_one = 0;
    c->solver_order = 2;
    c->lower_order_final = 1;
    c->lambda_min_clipped = -INFINITY;
}

int vg_sched_config_check(const VgSchedConfig *cfg, const VgCtx *c)
{
    if (cfg->num_train_timesteps < 2 || cfg->num_train_timesteps > 100000) {
        vg_log(c, VG_LOG_ERROR, "scheduler: num_train_timesteps %d out of range [2, 100000]\n",
               cfg->num_train_timesteps);
        return VG_ERR(EINVAL);
    }
    if (!(cfg->beta_start > 0.0 && cfg->beta_end < 1.0 && cfg->beta_start <= cfg->beta_end)) {
        vg_log(c, VG_LOG_ERROR, "scheduler: betas %g..%g must satisfy 0 < start <= end < 1\n",
               cfg->beta_start, cfg->beta_end);
        return VG_ERR(EINVAL);
    }
    if (cfg->steps_offset < 0 || cfg->steps_offset >= cfg->num_train_timesteps) {
        vg_log(c, VG_LOG_ERROR, "scheduler: steps_offset %d out of range\n", cfg->steps_offset);
        return VG_ERR(EINVAL);
    }
    if (cfg->original_inference_steps < 1 ||
        cfg->original_inference_steps > cfg->num_train_timesteps) {
        vg_log(c, VG_LOG_ERROR, "scheduler: original_inference_steps %d out of range [1, %d]\n",
               cfg->original_inference_steps, cfg->num_train_timesteps);
        return VG_ERR(EINVAL);
    }
    if (!(cfg->timestep_scaling > 0.0 && isfinite(cfg->timestep_scaling))) {
        vg_log(c, VG_LOG_ERROR, "scheduler: timestep_scaling %g must be positive\n",
               cfg->timestep_scaling);
        return VG_ERR(EINVAL);
    }
    return 0;
}

static int json_enum(const cJSON *root, const char *key, const char *const *names, int n,
                     int *out, const VgCtx *c)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j))
        return 0;
    if (cJSON_IsString(j))
        for (int i = 0; i < n; i++)
            if (!strcmp(j->valuestring, names[i])) {
                *out = i;
                return 0;
            }
    if (cJSON_IsString(j))
        vg_log(c, VG_LOG_ERROR, "scheduler_config: %s = \"%s\" is not supported\n", key,
               j->valuestring);
    else
        vg_log(c, VG_LOG_ERROR, "scheduler_config: %s is not a string\n", key);
    return VG_ERR(EINVAL);
}

static int json_num(const cJSON *root, const char *key, double *out, const VgCtx *c)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j))
        return 0;
    if (cJSON_IsBool(j)) {
        *out = cJSON_IsTrue(j);
        return 0;
    }
    if (!cJSON_IsNumber(j)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: %s is not a number\n", key);
        return VG_ERR(EINVAL);
    }
    *out = j->valuedouble;
    return 0;
}

/*
 * Python's json writes float('-inf') as -Infinity (DPMSolverMultistep's
 * lambda_min_clipped), which is not JSON: outside strings, -Infinity,
 * Infinity and NaN become null, which is then ignored like a missing key.
 * Returns a malloc'd copy or NULL.
 */
static char *json_sanitize(const char *json)
{
    static const char *const bad[] = { "-Infinity", "Infinity", "NaN" };
    const size_t n = strlen(json);
    char *out = malloc(n + 1), *o = out;
    int in_str = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        const char ch = json[i];
        if (in_str) {
            *o++ = ch;
            if (ch == '\\' && i + 1 < n)
                *o++ = json[++i];
            else if (ch == '"')
                in_str = 0;
            i++;
            continue;
        }
        if (ch == '"')
            in_str = 1;
        size_t k, len = 0;
        for (k = 0; k < VG_ARRAY_SIZE(bad); k++)
            if (!strncmp(json + i, bad[k], (len = strlen(bad[k]))))
                break;
        if (k < VG_ARRAY_SIZE(bad)) {
            memcpy(o, "null", 4); /* never longer than the token it replaces */
            o += 4;
            i += len;
        } else {
            *o++ = ch;
            i++;
        }
    }
    *o = 0;
    return out;
}

enum {
    S_EU = 1u << VG_SAMPLER_EULER,
    S_EA = 1u << VG_SAMPLER_EULER_A,
    S_DD = 1u << VG_SAMPLER_DDIM,
    S_DP = 1u << VG_SAMPLER_DPMPP_2M,
    S_LC = 1u << VG_SAMPLER_LCM,
};

/* Records that @key = @j (as written) cannot be honoured by @samplers; the
 * error waits until one of them is built, because a config written for one
 * scheduler class is often loaded into another (diffusers' from_config
 * drops the keys the new class does not take). */
static int unsupported(VgSchedConfig *cfg, const char *key, const cJSON *j, unsigned samplers,
                       const char *what, const VgCtx *c)
{
    VgSchedUnsupported *u;
    if (cfg->n_unsupported == VG_SCHED_MAX_UNSUPPORTED) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: too many unsupported settings (%s)\n", key);
        return VG_ERR(EINVAL);
    }
    u = &cfg->unsupported[cfg->n_unsupported++];
    u->key = key;
    u->samplers = samplers;
    u->what = what;
    if (cJSON_IsString(j)) {
        snprintf(u->value, sizeof(u->value), "\"%s\"", j->valuestring);
    } else {
        char *txt = cJSON_PrintUnformatted(j);
        snprintf(u->value, sizeof(u->value), "%s", txt ? txt : "?");
        free(txt);
    }
    return 0;
}

/* Index of @j's string in @names, -1 if absent / null, -2 if another value. */
static int json_choice(const cJSON *j, const char *const *names, int n)
{
    if (!j || cJSON_IsNull(j))
        return -1;
    if (cJSON_IsString(j))
        for (int i = 0; i < n; i++)
            if (!strcmp(j->valuestring, names[i]))
                return i;
    return -2;
}

/* Keys of the sampler classes visgen runs as far as they change the maths
 * (diffusers 0.27; use_*_sigmas are later additions), beyond the shared
 * schedule fields parsed above. */
static int parse_sampler_keys(VgSchedConfig *cfg, const cJSON *root, const VgCtx *c)
{
    /* booleans implemented only as false, and who reads them */
    static const struct { const char *key; unsigned samplers; const char *what; } off[] = {
        { "clip_sample", S_DD | S_LC, "x0 is not clipped; set it false" },
        { "thresholding", S_DD | S_LC | S_DP, "dynamic thresholding is not implemented" },
        { "use_lu_lambdas", S_DP, "plain or Karras sigmas only" },
        { "use_exponential_sigmas", S_EU | S_DP, "plain or Karras sigmas only" },
        { "use_beta_sigmas", S_EU | S_DP, "plain or Karras sigmas only" },
        { "use_flow_sigmas", S_DP, "plain or Karras sigmas only" },
    };
    static const char *const algos[] = { "dpmsolver++", "deis", "dpmsolver", "sde-dpmsolver",
                                         "sde-dpmsolver++" };
    static const char *const solvers[] = { "midpoint", "logrho", "bh1", "bh2", "heun" };
    static const char *const finals[] = { "zero", "sigma_min" };
    static const char *const interps[] = { "linear", "log_linear" };
    static const char *const ttypes[] = { "discrete", "continuous" };
    const cJSON *j;
    double v;
    int ret, k;

    for (size_t i = 0; i < VG_ARRAY_SIZE(off); i++) {
        j = cJSON_GetObjectItemCaseSensitive(root, off[i].key);
        if (j && !cJSON_IsNull(j) && !cJSON_IsFalse(j) &&
            (ret = unsupported(cfg, off[i].key, j, off[i].samplers, off[i].what, c)) < 0)
            return ret;
    }
    /* diffusers itself maps "deis" to dpmsolver++ and logrho / bh1 / bh2 to midpoint */
    j = cJSON_GetObjectItemCaseSensitive(root, "algorithm_type");
    if ((k = json_choice(j, algos, 5)) >= 2 || k == -2)
        if ((ret = unsupported(cfg, "algorithm_type", j, S_DP, "visgen implements dpmsolver++",
                               c)) < 0)
            return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "solver_type");
    if ((k = json_choice(j, solvers, 5)) >= 4 || k == -2)
        if ((ret = unsupported(cfg, "solver_type", j, S_DP, "visgen implements midpoint", c)) < 0)
            return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "final_sigmas_type");
    k = json_choice(j, finals, 2);
    if (k >= 0)
        cfg->final_sigma_min = k;
    /* Euler took final_sigmas_type after 0.27 and ends at sigma 0 here */
    if ((k == -2 || k == 1) &&
        (ret = unsupported(cfg, "final_sigmas_type", j, k == 1 ? S_EU : S_EU | S_DP,
                           k == 1 ? "euler ends at sigma 0"
                                  : "visgen implements zero, and sigma_min for dpm++2m", c)) < 0)
        return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "interpolation_type");
    if ((k = json_choice(j, interps, 2)) >= 1 || k == -2)
        if ((ret = unsupported(cfg, "interpolation_type", j, S_EU,
                               "visgen interpolates sigmas linearly", c)) < 0)
            return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "timestep_type");
    k = json_choice(j, ttypes, 2);
    cfg->timestep_continuous = k == 1;
    if (k == -2 && (ret = unsupported(cfg, "timestep_type", j, S_EU,
                                      "visgen implements discrete", c)) < 0)
        return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "variance_type");
    if (j && !cJSON_IsNull(j) &&
        (ret = unsupported(cfg, "variance_type", j, S_DP,
                           "the UNet predicts no variance; set it null", c)) < 0)
        return ret;
    j = cJSON_GetObjectItemCaseSensitive(root, "solver_order");
    if (j && !cJSON_IsNull(j)) {
        if (cJSON_IsNumber(j) && (j->valuedouble == 1.0 || j->valuedouble == 2.0))
            cfg->solver_order = (int)j->valuedouble;
        else if ((ret = unsupported(cfg, "solver_order", j, S_DP,
                                    "visgen implements orders 1 and 2", c)) < 0)
            return ret;
    }
#define NUM(key, field, cast) \
    v = cfg->field; \
    if ((ret = json_num(root, key, &v, c)) < 0) \
        return ret; \
    cfg->field = (cast)v;
    NUM("lower_order_final", lower_order_final, int);
    NUM("euler_at_final", euler_at_final, int);
    NUM("sigma_min", sigma_min, double);
    NUM("sigma_max", sigma_max, double);
    NUM("lambda_min_clipped", lambda_min_clipped, double);
#undef NUM
    if (cfg->sigma_min < 0.0 || cfg->sigma_max < 0.0 ||
        (cfg->sigma_min > 0.0 && cfg->sigma_max > 0.0 && cfg->sigma_min >= cfg->sigma_max)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: sigma_min %g / sigma_max %g: want 0 < min < "
               "max\n", cfg->sigma_min, cfg->sigma_max);
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_sched_config_parse(VgSchedConfig *cfg, const char *json, const VgCtx *c)
{
    static const char *const beta_names[] = { "scaled_linear", "linear" };
    static const char *const spacing_names[] = { "leading", "trailing", "linspace" };
    static const char *const pred_names[] = { "epsilon", "v_prediction", "sample" };
    char *clean = json_sanitize(json);
    if (!clean)
        return VG_ERR(ENOMEM);
    cJSON *root = cJSON_Parse(clean);
    free(clean);
    int ret = 0, e;
    if (!root || !cJSON_IsObject(root)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: not a JSON object\n");
        ret = VG_ERR(EINVAL);
        goto end;
    }
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(root, "trained_betas");
    if (tb && !cJSON_IsNull(tb)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: trained_betas = [...] is not supported "
               "(visgen computes the betas from beta_schedule)\n");
        ret = VG_ERR(EINVAL);
        goto end;
    }
    const cJSON *rz = cJSON_GetObjectItemCaseSensitive(root, "rescale_betas_zero_snr");
    if (cJSON_IsTrue(rz)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: rescale_betas_zero_snr = true is not "
               "supported\n");
        ret = VG_ERR(EINVAL);
        goto end;
    }
    int b = cfg->beta_schedule, s = cfg->spacing, p = cfg->prediction;
    double v;
    if ((ret = json_enum(root, "beta_schedule", beta_names, 2, &b, c)) < 0 ||
        (ret = json_enum(root, "timestep_spacing", spacing_names, 3, &s, c)) < 0 ||
        (ret = json_enum(root, "prediction_type", pred_names, 3, &p, c)) < 0)
        goto end;
    cfg->beta_schedule = b;
    cfg->spacing = s;
    cfg->prediction = p;
#define NUM(key, field, cast) \
    v = cfg->field; \
    if ((e = json_num(root, key, &v, c)) < 0) { ret = e; goto end; } \
    cfg->field = (cast)v;
    NUM("num_train_timesteps", num_train_timesteps, int);
    NUM("beta_start", beta_start, double);
    NUM("beta_end", beta_end, double);
    NUM("steps_offset", steps_offset, int);
    NUM("use_karras_sigmas", use_karras, int);
    NUM("original_inference_steps", original_inference_steps, int);
    NUM("timestep_scaling", timestep_scaling, double);
    NUM("set_alpha_to_one", set_alpha_to_one, int);
#undef NUM
    if ((ret = parse_sampler_keys(cfg, root, c)) < 0)
        goto end;
    ret = vg_sched_config_check(cfg, c);
end:
    cJSON_Delete(root);
    return ret;
}

int vg_sched_config_supports(const VgSchedConfig *cfg, VgSamplerKind kind, const VgCtx *c)
{
    const char *name = vg_sampler_name(kind);
    for (int i = 0; i < cfg->n_unsupported; i++) {
        const VgSchedUnsupported *u = &cfg->unsupported[i];
        if (u->samplers & (1u << kind)) {
            vg_log(c, VG_LOG_ERROR, "scheduler_config: %s = %s is not supported by %s (%s)\n",
                   u->key, u->value, name, u->what);
            return VG_ERR(EINVAL);
        }
    }
    /* EulerAncestralDiscreteScheduler raises NotImplementedError for it */
    if (kind == VG_SAMPLER_EULER_A && cfg->prediction == VG_PRED_SAMPLE) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: prediction_type = \"sample\" is not supported "
               "by euler_a (diffusers' Euler ancestral has no sample prediction)\n");
        return VG_ERR(EINVAL);
    }
    /* continuous timesteps change the UNet input only for v prediction */
    if (kind == VG_SAMPLER_EULER && cfg->timestep_continuous && cfg->prediction == VG_PRED_V) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: timestep_type = \"continuous\" is not "
               "supported by euler with v prediction (visgen implements discrete)\n");
        return VG_ERR(EINVAL);
    }
    if (kind == VG_SAMPLER_DPMPP_2M && (cfg->solver_order < 1 || cfg->solver_order > 2)) {
        vg_log(c, VG_LOG_ERROR, "scheduler_config: solver_order = %d is not supported by "
               "dpm++2m (visgen implements orders 1 and 2)\n", cfg->solver_order);
        return VG_ERR(EINVAL);
    }
    return 0;
}

/*
 * torch.linspace(start, end, n, dtype=float32) on the CPU: float step; the
 * first half counts up from start, the second down from end; the AVX2 path
 * builds each 8-lane chunk as base + k * step with the base fused
 * (start + step * idx0), as the float32 bits of torch 1.13 show.
 */
static void torch_linspace_f32(double start_d, double end_d, int n, float *out)
{
    const float start = (float)start_d, end = (float)end_d;
    const float step = (end - start) / (float)(n - 1);
    const int half = n / 2;
    for (int i0 = 0; i0 < n; i0 += 8) {
        if (i0 + 8 <= n) {
            const float base = i0 < half ? fmaf(step, (float)i0, start)
                                         : fmaf(-step, (float)(n - i0 - 1), end);
            for (int k = 0; k < 8; k++)
                out[i0 + k] = base + (float)k * step;
        } else {
            for (int i = i0; i < n; i++)
                out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - i - 1), end);
        }
    }
}

int vg_sched_alphas_cumprod(const VgSchedConfig *cfg, float *ac)
{
    const int n = cfg->num_train_timesteps;
    if (cfg->beta_schedule == VG_BETA_SCALED_LINEAR) {
        torch_linspace_f32(sqrt(cfg->beta_start), sqrt(cfg->beta_end), n, ac);
        for (int i = 0; i < n; i++)
            ac[i] = ac[i] * ac[i];
    } else {
        torch_linspace_f32(cfg->beta_start, cfg->beta_end, n, ac);
    }
    /* torch's CPU cumprod accumulates float32 in double */
    double acc = 1.0;
    for (int i = 0; i < n; i++) {
        acc *= (double)(1.0f - ac[i]);
        ac[i] = (float)acc;
    }
    return 0;
}

/* numpy.arange(start, stop, step) for doubles: numpy fills from the first
 * two values, so the stride is (start + step) - start. Returns the length. */
static int np_arange(double start, double stop, double step, double *out, int cap)
{
    const double len_d = ceil((stop - start) / step);
    int len = len_d > 0 ? (int)len_d : 0;
    if (len > cap)
        len = cap;
    if (len > 0)
        out[0] = start;
    if (len > 1) {
        out[1] = start + step;
        const double delta = out[1] - out[0];
        for (int i = 2; i < len; i++)
            out[i] = start + (double)i * delta;
    }
    return len;
}

/* numpy.linspace(start, stop, n[, endpoint]): i * step + start, last = stop. */
static void np_linspace(double start, double stop, int n, int endpoint, double *out)
{
    const int div = endpoint ? n - 1 : n;
    const double step = div > 0 ? (stop - start) / div : 0.0;
    for (int i = 0; i < n; i++)
        out[i] = (double)i * step + start;
    if (endpoint && n > 1)
        out[n - 1] = stop;
}

/* numpy.interp over xp = 0..n-1 (integers). */
static double np_interp_grid(double x, const float *fp, int n)
{
    if (x <= 0.0)
        return fp[0];
    if (x >= n - 1)
        return fp[n - 1];
    const int j = (int)floor(x);
    if ((double)j == x)
        return fp[j];
    const double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

/* sigmas of every train timestep: sqrt((1 - ac) / ac) in float32. */
static void train_sigmas(const float *ac, int n, float *sig)
{
    for (int i = 0; i < n; i++)
        sig[i] = sqrtf((1.0f - ac[i]) / ac[i]);
}

/* diffusers' _convert_to_karras: rho = 7 ramp between the end sigmas. */
static void karras(double sigma_min, double sigma_max, int n, double *out)
{
    const double rho = 7.0;
    const double min_inv = pow(sigma_min, 1.0 / rho), max_inv = pow(sigma_max, 1.0 / rho);
    np_linspace(0.0, 1.0, n, 1, out);
    for (int i = 0; i < n; i++)
        out[i] = pow(max_inv + out[i] * (min_inv - max_inv), rho);
}

/* diffusers' _sigma_to_t: piecewise-linear in log sigma over the train
 * sigmas (log taken in float32, as numpy does on a float32 array). */
static double sigma_to_t(double sigma, const float *log_sig, int n)
{
    const double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int i = 0; i < n; i++)
        if (ls - (double)log_sig[i] >= 0.0)
            low = i; /* last index at or below: the cumsum argmax */
    if (low > n - 2)
        low = n - 2;
    const double lo = log_sig[low], hi = log_sig[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = w < 0.0 ? 0.0 : w > 1.0 ? 1.0 : w;
    return (1.0 - w) * low + w * (low + 1);
}

int vg_sched_img2img_start(int steps, double strength, const VgCtx *c)
{
    if (!(strength >= 0.0 && strength <= 1.0)) {
        vg_log(c, VG_LOG_ERROR, "img2img: strength %g outside [0, 1]\n", strength);
        return VG_ERR(EINVAL);
    }
    int init = (int)(steps * strength); /* Python int(): truncation */
    if (init > steps)
        init = steps;
    if (init < 1) {
        vg_log(c, VG_LOG_ERROR, "img2img: steps %d x strength %g runs no step (need >= 1)\n",
               steps, strength);
        return VG_ERR(EINVAL);
    }
    return steps - init;
}

int vg_sched_timesteps(VgSamplerKind kind, const VgSchedConfig *cfg, const float *ac,
                       int steps, float *ts, float *sigmas, const VgCtx *c)
{
    const int T = cfg->num_train_timesteps;
    double *t = NULL, *tmp = NULL;
    float *sig = NULL, *log_sig = NULL;
    int ret = 0;

    if (steps < 1 || steps > T) {
        vg_log(c, VG_LOG_ERROR, "%s: steps %d out of range [1, %d]\n", vg_sampler_name(kind),
               steps, T);
        return VG_ERR(EINVAL);
    }
    if (cfg->use_karras && kind != VG_SAMPLER_EULER && kind != VG_SAMPLER_DPMPP_2M) {
        vg_log(c, VG_LOG_ERROR, "%s: Karras sigmas are only for euler and dpm++2m\n",
               vg_sampler_name(kind));
        return VG_ERR(EINVAL);
    }
    t = malloc(sizeof(*t) * (T + 2));
    tmp = malloc(sizeof(*tmp) * (T + 2));
    sig = malloc(sizeof(*sig) * T);
    log_sig = malloc(sizeof(*log_sig) * T);
    if (!t || !tmp || !sig || !log_sig) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    train_sigmas(ac, T, sig);
    for (int i = 0; i < T; i++)
        log_sig[i] = (float)log((double)sig[i]);

    if (kind == VG_SAMPLER_LCM) {
        /* LCM: every k-th of original_inference_steps train steps, then
         * `steps` of those picked by floor(linspace(0, len, steps, endpoint=False)) */
        const int orig = cfg->original_inference_steps, k = T / orig;
        if (steps > orig) {
            vg_log(c, VG_LOG_ERROR, "lcm: steps %d exceeds original_inference_steps %d\n",
                   steps, orig);
            ret = VG_ERR(EINVAL);
            goto end;
        }
        np_linspace(0.0, (double)orig, steps, 0, tmp);
        for (int i = 0; i < steps; i++) {
            const int idx = (int)floor(tmp[i]);
            ts[i] = (float)((orig - idx) * k - 1); /* reversed [1..orig] * k - 1 */
        }
        goto end;
    }

    /* the grid of each spacing; DPM-Solver spaces steps + 1 and drops the last */
    const int dpm = kind == VG_SAMPLER_DPMPP_2M;
    if (dpm && cfg->lambda_min_clipped > -INFINITY) {
        /* DPM ends its grid at the first timestep whose log-SNR lambda is below
         * lambda_min_clipped; for SD's schedules a usual value (-5.1) clips
         * nothing, which is all visgen implements */
        int clipped = 0;
        for (int i = 0; i < T; i++) {
            const float lam = logf(sqrtf(ac[i])) - logf(sqrtf(1.0f - ac[i]));
            clipped += lam < (float)cfg->lambda_min_clipped;
        }
        if (clipped) {
            vg_log(c, VG_LOG_ERROR, "scheduler_config: lambda_min_clipped = %g is not supported "
                   "by dpm++2m: it clips %d train timesteps of this schedule (visgen implements "
                   "values that clip none)\n", cfg->lambda_min_clipped, clipped);
            ret = VG_ERR(EINVAL);
            goto end;
        }
    }
    const int ng = dpm ? steps + 1 : steps;
    int n = steps;
    switch (cfg->spacing) {
    case VG_SPACING_LINSPACE:
        np_linspace(0.0, (double)(T - 1), ng, 1, tmp);
        for (int i = 0; i < n; i++) {
            const double v = tmp[ng - 1 - i];
            /* Euler keeps these fractional (float32); the others round */
            t[i] = (kind == VG_SAMPLER_EULER || kind == VG_SAMPLER_EULER_A)
                   ? (double)(float)v : nearbyint(v);
        }
        break;
    case VG_SPACING_LEADING: {
        const int ratio = T / ng;
        for (int i = 0; i < n; i++)
            t[i] = (double)((ng - 1 - i) * ratio + cfg->steps_offset);
        break;
    }
    case VG_SPACING_TRAILING: {
        const double ratio = (double)T / steps;
        const int len = np_arange((double)T, 0.0, -ratio, tmp, T + 2);
        if (len != steps) {
            vg_log(c, VG_LOG_ERROR, "%s: trailing spacing gave %d timesteps for %d steps\n",
                   vg_sampler_name(kind), len, steps);
            ret = VG_ERR(EINVAL);
            goto end;
        }
        for (int i = 0; i < n; i++)
            t[i] = nearbyint(tmp[i]) - 1.0;
        break;
    }
    }

    if (kind == VG_SAMPLER_DDIM) {
        for (int i = 0; i < n; i++)
            ts[i] = (float)t[i];
        goto end;
    }

    /* sigma families */
    if (cfg->use_karras) {
        double smin, smax;
        if (dpm) { /* the whole train range */
            smin = sig[0];
            smax = sig[T - 1];
        } else {   /* the interpolated schedule's ends */
            smin = np_interp_grid(t[n - 1], sig, T);
            smax = np_interp_grid(t[0], sig, T);
        }
        /* _convert_to_karras takes the config's ends when it has them */
        if (cfg->sigma_min > 0.0)
            smin = cfg->sigma_min;
        if (cfg->sigma_max > 0.0)
            smax = cfg->sigma_max;
        karras(smin, smax, n, tmp);
        for (int i = 0; i < n; i++) {
            const double tt = sigma_to_t(tmp[i], log_sig, T);
            ts[i] = dpm ? (float)nearbyint(tt) : (float)tt;
            if (sigmas)
                sigmas[i] = (float)tmp[i];
        }
    } else {
        for (int i = 0; i < n; i++) {
            ts[i] = (float)t[i];
            if (sigmas)
                sigmas[i] = (float)np_interp_grid(t[i], sig, T);
        }
    }
    /* final_sigmas_type "zero" / Euler's appended 0, or DPM's "sigma_min":
     * the first train sigma, computed in float32 as torch does */
    if (sigmas)
        sigmas[n] = dpm && cfg->final_sigma_min ? sig[0] : 0.0f;

end:
    free(t);
    free(tmp);
    free(sig);
    free(log_sig);
    return ret;
}
