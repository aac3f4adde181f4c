/* Shared test helpers; see vgtest.h. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/common/vgtest.h"

char vgt_last_error[512];
int vgt_n_errors;

VgWeights *vgt_fixture(const char *rel)
{
    char path[1024];
    VgWeights *w = NULL;
    snprintf(path, sizeof(path), "%s/tests/fixtures/%s", VG_TOP, rel);
    const int ret = vg_safetensors_open(&w, NULL, path);
    ck_assert_msg(ret == 0, "cannot open fixture %s: %s (regenerate it with the script in "
                  "tests/reference/)", path, vg_strerror(ret));
    return w;
}

const VgTensor *vgt_get(const VgWeights *w, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    const VgTensor *t = vg_weights_find(w, name);
    ck_assert_msg(t != NULL, "fixture has no tensor '%s'", name);
    return t;
}

void vgt_alloc_like(VgTensor *t, const VgTensor *ref)
{
    ck_assert_int_eq(vg_tensor_alloc(t, VG_DT_F32, ref->ndim, ref->ne), 0);
}

double vgt_max_abs_err(const VgTensor *a, const VgTensor *b, double *max_rel)
{
    VgTensor fa = { 0 }, fb = { 0 };
    double err = 0, rel = 0;
    if (!vg_tensor_same_shape(a, b) || vg_tensor_to_f32(a, &fa) < 0 ||
        vg_tensor_to_f32(b, &fb) < 0) {
        err = rel = INFINITY;
        goto end;
    }
    const float *pa = fa.data, *pb = fb.data;
    for (int64_t i = 0, n = vg_tensor_nelem(&fa); i < n; i++) {
        double d;
        if (isnan(pa[i]) || isnan(pb[i]))
            d = isnan(pa[i]) && isnan(pb[i]) ? 0 : INFINITY;
        else if (pa[i] == pb[i]) /* also equal infinities */
            d = 0;
        else
            d = fabs((double)pa[i] - pb[i]);
        err = fmax(err, d);
        rel = fmax(rel, d / fmax(fabs(pb[i]), 1e-6));
    }
end:
    vg_tensor_free(&fa);
    vg_tensor_free(&fb);
    if (max_rel)
        *max_rel = rel;
    return err;
}

void vgt_assert_close_(const VgTensor *got, const VgTensor *ref, double tol, const char *what,
                       const char *file, int line)
{
    char bg[96], br[96];
    ck_assert_msg(vg_tensor_same_shape(got, ref), "%s:%d %s: shape %s, expected %s", file,
                  line, what, vg_tensor_shape_str(got, bg, sizeof(bg)),
                  vg_tensor_shape_str(ref, br, sizeof(br)));
    double rel;
    const double err = vgt_max_abs_err(got, ref, &rel);
    ck_assert_msg(err <= tol, "%s:%d %s: max abs error %g (rel %g) > tolerance %g", file, line,
                  what, err, rel, tol);
}

void vgt_log_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    if (level != VG_LOG_ERROR)
        return;
    vsnprintf(vgt_last_error, sizeof(vgt_last_error), fmt, ap);
    vgt_n_errors++;
}

void vgt_log_reset(void)
{
    vgt_last_error[0] = 0;
    vgt_n_errors = 0;
}

VgCtx *vgt_ctx_open(int n_threads, int log_level)
{
    VgSettings s;
    VgCtx *c = NULL;
    vg_default_settings(&s);
    s.n_threads = n_threads;
    s.log_cb = vgt_log_cb;
    s.log_level = log_level;
    ck_assert_int_eq(vg_open(&c, &s), 0);
    return c;
}
