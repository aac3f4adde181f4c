/* Library context: settings, logging, error text. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/blas.h"
#include "engine/internal.h"
#include "engine/mem.h"

#define VG_VERSION_STRING "0.1.0"

void vg_default_settings(VgSettings *s)
{
    memset(s, 0, sizeof(*s));
    s->n_threads = 0;
    s->log_level = VG_LOG_INFO;
    s->blas_autoselect = 1;
}

void vg_log(const VgCtx *c, int level, const char *fmt, ...)
{
    if (!c || !c->s.log_cb || level > c->s.log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    c->s.log_cb(c->s.log_cookie, level, fmt, ap);
    va_end(ap);
}

int vg_open(VgCtx **out, const VgSettings *s)
{
    VG_VALIDATE(out, VG_ERR(EINVAL));
    *out = NULL;
    VG_VALIDATE(s, VG_ERR(EINVAL));
    int ret;
    VgCtx *c = calloc(1, sizeof(*c));
    if (!c)
        return VG_ERR(ENOMEM);
    c->s = *s;
    if (s->n_threads < 0 || s->n_threads > 256) {
        vg_log(c, VG_LOG_ERROR, "n_threads %d out of range (0 = all CPUs, at most 256)\n",
               s->n_threads);
        ret = VG_ERR(EINVAL);
        goto fail;
    }
    c->n_threads = s->n_threads;
    if (!c->n_threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->n_threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    if ((ret = vg_pool_open(&c->pool, c->n_threads)) < 0) {
        vg_log(c, VG_LOG_ERROR, "cannot start %d worker threads\n", c->n_threads);
        goto fail;
    }
    if ((ret = vg_blas_setup(c)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    vg_close(&c);
    return ret;
}

void vg_close(VgCtx **pc)
{
    if (!pc || !*pc)
        return;
    vg_pool_close(&(*pc)->pool);
    vg_freep(&(*pc)->wscratch);
    free(*pc);
    *pc = NULL;
}

const char *vg_blas_kernel(const VgCtx *c)
{
    return c ? c->blas_kernel : "unknown";
}

const char *vg_strerror(int err)
{
    switch (err) {
    case 0:               return "success";
    case VG_EBADMODEL:    return "model file malformed or truncated";
    case VG_EUNSUPPORTED: return "model of a kind visgen cannot run";
    case VG_EREFUSED:     return "model file asks for something not allowed";
    }
    if (err < 0 && err > -4096) {
        /* strerrordesc_np returns a static string, unlike strerror */
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *vg_version(void)
{
    return VG_VERSION_STRING;
}
