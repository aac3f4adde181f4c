/* OpenBLAS kernel re-selection and thread count; see blas.h for why. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "engine/blas.h"

/* OpenBLAS exports; weak so that a build without DYNAMIC_ARCH links too. */
extern char *openblas_get_corename(void) __attribute__((weak));
extern void openblas_set_num_threads(int n) __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

const char *vg_blas_corename(void)
{
    const char *s = openblas_get_corename ? openblas_get_corename() : NULL;
    return s && *s ? s : "unknown";
}

const char *vg_blas_best_core(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
#endif
    return NULL;
}

/* Tables with AVX2+FMA sgemm kernels, and those with AVX-512 ones. */
static const char *const avx2_cores[] = { "Haswell", "Zen", "SkylakeX", "Cooperlake",
                                          "SapphireRapids" };
static const char *const avx512_cores[] = { "SkylakeX", "Cooperlake", "SapphireRapids" };

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(name, list[i]))
            return 1;
    return 0;
}

int vg_blas_core_is_slow(const char *name, const char *best)
{
    if (!best)
        return 0;
    if (!strcasecmp(best, "SkylakeX"))
        return !in_list(name, avx512_cores, VG_ARRAY_SIZE(avx512_cores));
    return !in_list(name, avx2_cores, VG_ARRAY_SIZE(avx2_cores));
}

int vg_blas_force_core(const VgCtx *c, const char *name)
{
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename) {
        vg_log(c, VG_LOG_WARNING, "OpenBLAS has no run-time kernel selection; "
               "staying on %s\n", vg_blas_corename());
        return VG_ERR(ENOTSUP);
    }
    /* OpenBLAS reads OPENBLAS_CORETYPE inside gotoblas_dynamic_init only:
     * set it for that call, then put back whatever the user had. */
    const char *old = getenv("OPENBLAS_CORETYPE");
    char *saved = old ? strdup(old) : NULL;
    if (old && !saved)
        return VG_ERR(ENOMEM);
    setenv("OPENBLAS_CORETYPE", name, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    if (saved)
        setenv("OPENBLAS_CORETYPE", saved, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    free(saved);
    if (strcasecmp(vg_blas_corename(), name)) {
        vg_log(c, VG_LOG_WARNING, "OpenBLAS: asked for kernel %s, runs %s\n",
               name, vg_blas_corename());
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_blas_setup(VgCtx *c)
{
    const char *was = vg_blas_corename();
    const char *best = vg_blas_best_core();
    char prev[32];
    snprintf(prev, sizeof(prev), "%s", was);

    if (c->s.blas_autoselect && !getenv("OPENBLAS_CORETYPE") && best &&
        vg_blas_core_is_slow(prev, best)) {
        /* A failure here is not fatal: OpenBLAS still works, only slower. */
        if (vg_blas_force_core(c, best) == 0)
            vg_log(c, VG_LOG_VERBOSE, "OpenBLAS kernel: %s (was %s)\n", best, prev);
    }
    /* visgen splits its sgemms over its own pool (see blas.h) */
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
    snprintf(c->blas_kernel, sizeof(c->blas_kernel), "%s", vg_blas_corename());
    vg_log(c, VG_LOG_DEBUG, "OpenBLAS kernel %s, 1 thread (visgen pool: %d)\n", c->blas_kernel,
           c->n_threads);
    return 0;
}
