/*
 * Schedules and samplers against references:
 *  - the 15 img2img runs in ../shared/data/diffusion/refs/img2img_settings.json
 *    (diffusers 0.27.2 itself): every full_timesteps and used_timesteps list
 *    reproduced exactly from the run's scheduler_config, steps and strength;
 *  - tests/reference/sd_sampler.py (a PyTorch reimplementation of the five
 *    schedulers) driven by a fake model: alphas_cumprod bit-exact, timesteps
 *    exact, sigmas <= 1e-6 relative, final latents <= 1e-5 relative
 *    (max|a - b| / max|b|), with the seed-42 generator drawn in diffusers'
 *    order (posterior sample, initial noise, step noise); including the
 *    scheduler_config keys visgen honours beyond the defaults (DPM solver_order
 *    1, final_sigmas_type sigma_min, lower_order_final, euler_at_final, Karras
 *    sigma_min / sigma_max);
 *  - test_config_keys: the values it does not implement are refused by exactly
 *    the samplers whose diffusers class reads the key, one error line each.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/sd/rng.h"
#include "engine/sd/sampler.h"
#include "engine/sd/schedule.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define SIG_TOL 1e-6
#define OUT_TOL 1e-5

static VgCtx *ctx;

static void setup(void)
{
    ctx = vgt_ctx_open(1, VG_LOG_WARNING);
    vgt_log_reset();
}

static void teardown(void)
{
    vg_close(&ctx);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "missing %s (the shared reference data)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq((long)fread(s, 1, n, f), n);
    s[n] = 0;
    fclose(f);
    return s;
}

static double rel_err(const float *a, const float *b, int64_t n)
{
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        md = d > md || isnan(d) ? d : md;
        mb = fabs(b[i]) > mb ? fabs(b[i]) : mb;
    }
    return md / (mb > 0 ? mb : 1);
}

/* ------------------------------------------------------ diffusers' runs */

static int kind_of_class(const char *cls)
{
    static const struct { const char *cls; VgSamplerKind k; } map[] = {
        { "EulerDiscreteScheduler", VG_SAMPLER_EULER },
        { "EulerAncestralDiscreteScheduler", VG_SAMPLER_EULER_A },
        { "DDIMScheduler", VG_SAMPLER_DDIM },
        { "DPMSolverMultistepScheduler", VG_SAMPLER_DPMPP_2M },
        { "LCMScheduler", VG_SAMPLER_LCM },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(cls, map[i].cls))
            return map[i].k;
    return -1;
}

START_TEST(test_diffusers_timesteps)
{
    char *text = read_text(VG_SHARED_DATA "/diffusion/refs/img2img_settings.json");
    /* Python's json wrote lambda_min_clipped as -Infinity, which cJSON
     * rejects: quote it here; vg_sched_config_parse gets the raw token
     * below (re-inserted) and must cope with it itself. */
    for (char *p = text; (p = strstr(p, "-Infinity")); p += 9)
        memcpy(p, "\"-Inf\"   ", 9); /* same length */
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    const cJSON *runs = cJSON_GetObjectItem(root, "runs"), *run;
    int nruns = 0;
    cJSON_ArrayForEach(run, runs) {
        const int kind = kind_of_class(cJSON_GetObjectItem(run, "scheduler")->valuestring);
        ck_assert_msg(kind >= 0, "%s: unknown scheduler", run->string);
        char *cfg_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(run, "scheduler_config"));
        for (char *p = cfg_json; (p = strstr(p, "\"-Inf\"")); p += 6)
            memcpy(p, "-Inf  ", 6);
        char *q = strstr(cfg_json, "-Inf  ");
        char *raw = malloc(strlen(cfg_json) + 8);
        ck_assert_ptr_nonnull(raw);
        if (q) /* put the original -Infinity token back */
            sprintf(raw, "%.*s-Infinity%s", (int)(q - cfg_json), cfg_json, q + 6);
        else
            strcpy(raw, cfg_json);
        free(cfg_json);
        cfg_json = raw;
        VgSchedConfig cfg;
        vg_sched_config_default(&cfg);
        ck_assert_int_eq(vg_sched_config_parse(&cfg, cfg_json, ctx), 0);
        free(cfg_json);
        const int steps = cJSON_GetObjectItem(run, "steps")->valueint;
        const double strength = cJSON_GetObjectItem(run, "strength")->valuedouble;
        VgSampler *s;
        ck_assert_int_eq(vg_sampler_create(&s, &cfg, kind, steps, strength, ctx), 0);
        int n;
        const float *ts = vg_sampler_all_timesteps(s, &n);
        const cJSON *full = cJSON_GetObjectItem(run, "full_timesteps");
        ck_assert_int_eq(n, cJSON_GetArraySize(full));
        for (int i = 0; i < n; i++)
            ck_assert_msg(ts[i] == (float)cJSON_GetArrayItem(full, i)->valuedouble,
                          "%s: timestep %d is %g, diffusers %g", run->string, i, ts[i],
                          cJSON_GetArrayItem(full, i)->valuedouble);
        const float *used = vg_sampler_timesteps(s, &n);
        const cJSON *ref_used = cJSON_GetObjectItem(run, "used_timesteps");
        ck_assert_int_eq(n, cJSON_GetArraySize(ref_used));
        for (int i = 0; i < n; i++)
            ck_assert(used[i] == (float)cJSON_GetArrayItem(ref_used, i)->valuedouble);
        vg_sampler_free(&s);
        nruns++;
    }
    ck_assert_int_eq(nruns, 15);
    cJSON_Delete(root);
    free(text);
}
END_TEST

/* ---------------------------------------------------- PyTorch reference */

START_TEST(test_alphas_cumprod)
{
    VgWeights *w = vgt_fixture("sampler/sampler.safetensors");
    const VgTensor *ref = vgt_get(w, "alphas_cumprod");
    VgSchedConfig cfg;
    float ac[1000];
    vg_sched_config_default(&cfg);
    ck_assert_int_eq(vg_sched_alphas_cumprod(&cfg, ac), 0);
    ck_assert_int_eq(memcmp(ac, ref->data, sizeof(ac)), 0);
    vg_weights_close(&w);
}
END_TEST

/* The fake model of sd_sampler.py: 0.1 * x + 0.05 * sin(t / 100). */
static int fake_model(void *opaque, const VgTensor *x, float t, VgTensor *out)
{
    int *calls = opaque;
    const float c = (float)(0.05 * sin((double)t / 100.0));
    const float *a = x->data;
    float *y = out->data;
    for (int64_t i = 0; i < vg_tensor_nelem(x); i++) {
        const float p = 0.1f * a[i];
        y[i] = p + c;
    }
    (*calls)++;
    return 0;
}

static int ncases(void)
{
    VgWeights *w = NULL;
    int n = 0;
    if (vg_weights_open(&w, NULL, VG_TOP "/tests/fixtures/sampler/sampler.safetensors") == 0) {
        const VgTensor *t = vg_weights_find(w, "ncases");
        n = t ? *(const int32_t *)t->data : 0;
        vg_weights_close(&w);
    }
    return n;
}

START_TEST(test_reference_case)
{
    VgWeights *w = vgt_fixture("sampler/sampler.safetensors");
    const int32_t *cf = vgt_get(w, "c%d.cfg", _i)->data;
    const VgTensor *ref_ts = vgt_get(w, "c%d.ts", _i), *ref_out = vgt_get(w, "c%d.out", _i);
    const VgTensor *mean = vgt_get(w, "mean"), *stdv = vgt_get(w, "std");
    VgSchedConfig cfg;
    vg_sched_config_default(&cfg);
    cfg.spacing = cf[1];
    cfg.prediction = cf[2];
    cfg.use_karras = cf[3];
    const int steps = cf[4];
    const double strength = cf[5] / 1000.0;
    char what[160], opt_name[32];
    int len = snprintf(what, sizeof(what), "case %d: %s spacing %d pred %d karras %d steps %d "
                       "strength %g", _i, vg_sampler_name(cf[0]), cf[1], cf[2], cf[3], steps,
                       strength);
    snprintf(opt_name, sizeof(opt_name), "c%d.opt", _i);
    const VgTensor *opt = vg_weights_find(w, opt_name);
    if (opt) { /* scheduler_config keys beyond the defaults */
        const float *o = opt->data;
        cfg.solver_order = (int)o[0];
        cfg.final_sigma_min = (int)o[1];
        cfg.lower_order_final = (int)o[2];
        cfg.euler_at_final = (int)o[3];
        cfg.sigma_min = o[4];
        cfg.sigma_max = o[5];
        snprintf(what + len, sizeof(what) - len, " order %d final %s lof %d eaf %d sigmas %g..%g",
                 cfg.solver_order, cfg.final_sigma_min ? "sigma_min" : "zero",
                 cfg.lower_order_final, cfg.euler_at_final, cfg.sigma_min, cfg.sigma_max);
    }

    VgSampler *s;
    ck_assert_int_eq(vg_sampler_create(&s, &cfg, cf[0], steps, strength, ctx), 0);
    int n;
    const float *ts = vg_sampler_all_timesteps(s, &n);
    ck_assert_int_eq(n, vg_tensor_nelem(ref_ts));
    /* Euler's Karras timesteps stay fractional; numpy takes the log of the
     * float32 train sigmas with its own SIMD logf (up to 2 ulp off the
     * correctly rounded one we use), which moves them by ~1e-4. The others
     * are exact. */
    const double ts_tol = cf[0] == VG_SAMPLER_EULER && cf[3] ? 1e-3 : 0.0;
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(ts[i] - ((const float *)ref_ts->data)[i]) <= ts_tol,
                      "%s: timestep %d: %.9g vs %.9g", what, i, ts[i],
                      ((const float *)ref_ts->data)[i]);
    char sig_name[32];
    snprintf(sig_name, sizeof(sig_name), "c%d.sig", _i);
    const VgTensor *ref_sig = vg_weights_find(w, sig_name);
    if (ref_sig) {
        ck_assert_ptr_nonnull(vg_sampler_sigmas(s));
        const double e = rel_err(vg_sampler_sigmas(s), ref_sig->data, n + 1);
        ck_assert_msg(e <= SIG_TOL, "%s: sigmas rel err %g", what, e);
    }

    /* latent = 0.18215 * (mean + std * posterior noise), drawn first */
    VgRng rng;
    VgTensor lat, out = { 0 };
    const int64_t ne = vg_tensor_nelem(mean);
    ck_assert_int_eq(vg_tensor_alloc(&lat, VG_DT_F32, mean->ndim, mean->ne), 0);
    vg_rng_seed(&rng, 42);
    ck_assert_int_eq(vg_rng_randn_tensor(&rng, &lat), 0);
    float *l = lat.data;
    const float *mu = mean->data, *sd = stdv->data;
    for (int64_t i = 0; i < ne; i++) {
        const float e = sd[i] * l[i], x = mu[i] + e;
        l[i] = 0.18215f * x;
    }
    int calls = 0;
    ck_assert_int_eq(vg_sampler_run(s, fake_model, &calls, &lat, &rng, &out), 0);
    ck_assert_int_eq(calls, (int)(steps * strength));
    const double e = rel_err(out.data, ref_out->data, ne);
    if (getenv("VGT_VERBOSE"))
        printf("%s: latent rel err %.3g\n", what, e);
    ck_assert_msg(e <= OUT_TOL, "%s: latent rel err %g", what, e);

    /* a second run on the same sampler, same draws: same result (state reset) */
    VgTensor out2 = { 0 }, out3 = { 0 };
    ck_assert_int_eq(vg_tensor_alloc(&out2, VG_DT_F32, mean->ndim, mean->ne), 0);
    vg_rng_seed(&rng, 42);
    ck_assert_int_eq(vg_rng_randn_tensor(&rng, &out2), 0); /* the posterior draw */
    ck_assert_int_eq(vg_sampler_run(s, fake_model, &calls, &lat, &rng, &out3), 0);
    ck_assert_int_eq(memcmp(out.data, out3.data, sizeof(float) * ne), 0);

    vg_tensor_free(&out3);
    vg_tensor_free(&out2);
    vg_tensor_free(&out);
    vg_tensor_free(&lat);
    vg_sampler_free(&s);
    vg_weights_close(&w);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_errors)
{
    VgSchedConfig cfg;
    VgSampler *s = NULL;
    vg_sched_config_default(&cfg);
    /* 4 steps x 0.2 = 0 steps */
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_EULER, 4, 0.2, ctx), 0);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "runs no step"));
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_EULER, 4, 1.5, ctx), 0);
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_DDIM, 0, 1.0, ctx), 0);
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_LCM, 60, 1.0, ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "original_inference_steps"));
    cfg.use_karras = 1;
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_DDIM, 10, 1.0, ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "Karras"));
    vg_sched_config_default(&cfg);
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"timestep_spacing\": \"middle\"}", ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "timestep_spacing"));
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"beta_schedule\": \"squaredcos_cap_v2\"}", ctx), 0);
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "[1, 2", ctx), 0);
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"trained_betas\": [0.1]}", ctx), 0);
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"beta_end\": 2.0}", ctx), 0);
    vg_sched_config_default(&cfg);
    ck_assert_int_eq(vg_sched_config_parse(&cfg, "{\"clip_sample\": true}", ctx), 0);
    ck_assert_int_lt(vg_sampler_create(&s, &cfg, VG_SAMPLER_DDIM, 10, 1.0, ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "clip_sample"));
    ck_assert_int_eq(vg_sampler_create(&s, &cfg, VG_SAMPLER_EULER, 10, 1.0, ctx), 0);
    vg_sampler_free(&s);
    ck_assert_int_eq(vg_sampler_from_name("dpm++2m"), VG_SAMPLER_DPMPP_2M);
    ck_assert_int_eq(vg_sampler_from_name("heun"), -1);

    /* a step at the wrong timestep is refused */
    vg_sched_config_default(&cfg);
    ck_assert_int_eq(vg_sampler_create(&s, &cfg, VG_SAMPLER_DDIM, 10, 0.5, ctx), 0);
    VgTensor x, m;
    VgRng r;
    vg_rng_seed(&r, 0);
    ck_assert_int_eq(vg_tensor_alloc4(&x, 1, 4, 2, 2), 0);
    ck_assert_int_eq(vg_tensor_alloc4(&m, 1, 4, 2, 2), 0);
    ck_assert_int_lt(vg_sampler_step(s, &m, 123.0f, &x, &r), 0);
    int n;
    ck_assert_int_eq(vg_sampler_step(s, &m, vg_sampler_timesteps(s, &n)[0], &x, &r), 0);
    vg_tensor_free(&x);
    vg_tensor_free(&m);
    vg_sampler_free(&s);
}
END_TEST

/*
 * scheduler_config.json keys: a value visgen does not implement is refused
 * by the samplers whose diffusers class reads the key, with one error line
 * naming key and value, and ignored by the others (diffusers' from_config
 * drops keys a class does not take); values visgen implements are taken.
 */
START_TEST(test_config_keys)
{
    static const struct {
        const char *json;
        unsigned refused;    /* bit per VgSamplerKind */
        const char *msg;     /* in the error line */
    } cases[] = {
#define EU (1u << VG_SAMPLER_EULER)
#define EA (1u << VG_SAMPLER_EULER_A)
#define DD (1u << VG_SAMPLER_DDIM)
#define DP (1u << VG_SAMPLER_DPMPP_2M)
#define LC (1u << VG_SAMPLER_LCM)
        { "{\"algorithm_type\": \"sde-dpmsolver++\"}", DP, "algorithm_type = \"sde-dpmsolver++\"" },
        { "{\"algorithm_type\": \"dpmsolver\"}", DP, "algorithm_type = \"dpmsolver\"" },
        { "{\"algorithm_type\": \"sde-dpmsolver\"}", DP, "algorithm_type = \"sde-dpmsolver\"" },
        { "{\"algorithm_type\": \"unipc\"}", DP, "algorithm_type = \"unipc\"" },
        { "{\"solver_order\": 3}", DP, "solver_order = 3" },
        { "{\"solver_type\": \"heun\"}", DP, "solver_type = \"heun\"" },
        { "{\"use_lu_lambdas\": true}", DP, "use_lu_lambdas = true" },
        { "{\"variance_type\": \"learned_range\"}", DP, "variance_type = \"learned_range\"" },
        { "{\"final_sigmas_type\": \"sigma_max\"}", DP | EU, "final_sigmas_type = \"sigma_max\"" },
        { "{\"final_sigmas_type\": \"sigma_min\"}", EU, "final_sigmas_type = \"sigma_min\"" },
        { "{\"thresholding\": true}", DD | LC | DP, "thresholding = true" },
        { "{\"clip_sample\": true}", DD | LC, "clip_sample = true" },
        { "{\"interpolation_type\": \"log_linear\"}", EU, "interpolation_type = \"log_linear\"" },
        { "{\"use_exponential_sigmas\": true}", EU | DP, "use_exponential_sigmas = true" },
        { "{\"use_beta_sigmas\": true}", EU | DP, "use_beta_sigmas = true" },
        { "{\"timestep_type\": \"continuous\", \"prediction_type\": \"v_prediction\"}", EU,
          "timestep_type = \"continuous\"" },
        { "{\"prediction_type\": \"sample\"}", EA, "prediction_type = \"sample\"" },
        { "{\"lambda_min_clipped\": 0.5}", DP, "lambda_min_clipped = 0.5" },
        /* implemented (or mapped by diffusers itself onto what is): accepted everywhere */
        { "{\"algorithm_type\": \"deis\", \"solver_type\": \"bh2\", \"solver_order\": 1, "
          "\"lower_order_final\": false, \"euler_at_final\": true, \"final_sigmas_type\": "
          "\"sigma_min\", \"lambda_min_clipped\": -5.1, \"variance_type\": null, "
          "\"use_lu_lambdas\": false, \"thresholding\": false, "
          "\"dynamic_thresholding_ratio\": 0.9, \"sample_max_value\": 2.0, "
          "\"timestep_type\": \"continuous\"}", EU, "final_sigmas_type" },
        { "{\"sigma_min\": 0.1, \"sigma_max\": 10.0, \"use_karras_sigmas\": false, "
          "\"timestep_type\": \"discrete\", \"interpolation_type\": \"linear\", "
          "\"skip_prk_steps\": true, \"clip_sample\": false, \"steps_offset\": 0}", 0, NULL },
#undef EU
#undef EA
#undef DD
#undef DP
#undef LC
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        VgSchedConfig cfg;
        vg_sched_config_default(&cfg);
        vgt_log_reset();
        ck_assert_msg(vg_sched_config_parse(&cfg, cases[i].json, ctx) == 0, "%s: %s",
                      cases[i].json, vgt_last_error);
        for (int k = 0; k < VG_SAMPLER_COUNT; k++) {
            VgSampler *s = NULL;
            vgt_log_reset();
            const int ret = vg_sampler_create(&s, &cfg, k, 4, 1.0, ctx);
            if (cases[i].refused & (1u << k)) {
                ck_assert_msg(ret == VG_ERR(EINVAL) && vgt_n_errors == 1 &&
                              strstr(vgt_last_error, cases[i].msg) &&
                              strstr(vgt_last_error, vg_sampler_name(k)),
                              "%s with %s: %d, '%s'", cases[i].json, vg_sampler_name(k), ret,
                              vgt_last_error);
                ck_assert_ptr_null(s);
            } else {
                ck_assert_msg(ret == 0, "%s with %s: %s", cases[i].json, vg_sampler_name(k),
                              vgt_last_error);
                vg_sampler_free(&s);
            }
        }
    }
    /* honoured values land in the configuration */
    VgSchedConfig cfg;
    vg_sched_config_default(&cfg);
    ck_assert_int_eq(vg_sched_config_parse(&cfg, "{\"solver_order\": 1, \"final_sigmas_type\": "
                                           "\"sigma_min\", \"lower_order_final\": false, "
                                           "\"euler_at_final\": true, \"sigma_min\": 0.1, "
                                           "\"sigma_max\": 10, \"lambda_min_clipped\": "
                                           "-Infinity}", ctx), 0);
    ck_assert_int_eq(cfg.solver_order, 1);
    ck_assert_int_eq(cfg.final_sigma_min, 1);
    ck_assert_int_eq(cfg.lower_order_final, 0);
    ck_assert_int_eq(cfg.euler_at_final, 1);
    ck_assert(cfg.sigma_min == 0.1 && cfg.sigma_max == 10.0 && isinf(cfg.lambda_min_clipped));
    /* dpm++2m's final sigma_min is the first train sigma */
    VgSampler *s = NULL;
    ck_assert_int_eq(vg_sampler_create(&s, &cfg, VG_SAMPLER_DPMPP_2M, 4, 1.0, ctx), 0);
    float ac[1000];
    vg_sched_alphas_cumprod(&cfg, ac);
    ck_assert_float_eq(vg_sampler_sigmas(s)[4], sqrtf((1.0f - ac[0]) / ac[0]));
    vg_sampler_free(&s);
    /* bad values of honoured keys fail at parse */
    vg_sched_config_default(&cfg);
    vgt_log_reset();
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"sigma_min\": 5, \"sigma_max\": 1}", ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "sigma_min"));
    ck_assert_int_lt(vg_sched_config_parse(&cfg, "{\"rescale_betas_zero_snr\": true}", ctx), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "rescale_betas_zero_snr"));
}
END_TEST

int main(void)
{
    const int nc = ncases();
    if (nc <= 0) {
        fprintf(stderr, "check_sampler: tests/fixtures/sampler/sampler.safetensors missing or bad\n");
        return EXIT_FAILURE;
    }
    Suite *su = suite_create("sampler");
    TCase *tc = tcase_create("schedules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diffusers_timesteps);
    tcase_add_test(tc, test_alphas_cumprod);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_config_keys);
    suite_add_tcase(su, tc);
    TCase *tr = tcase_create("reference_runs");
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_set_timeout(tr, 60);
    tcase_add_loop_test(tr, test_reference_case, 0, nc);
    suite_add_tcase(su, tr);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
