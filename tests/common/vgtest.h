/*
 * Small helpers shared by the Check tests (every .c file in tests/common/ is linked into
 * every tests/check_*.c binary). Failures abort the running Check test with
 * a message, so callers need no error handling.
 *
 *   VgWeights *w = vgt_fixture("ops/conv.safetensors");   // tests/fixtures/...
 *   const VgTensor *ref = vgt_get(w, "%s.y", name);        // must exist
 *   VgTensor y; vgt_alloc_like(&y, ref);                   // zeroed F32, same shape
 *   ... run the op into y ...
 *   vgt_assert_close(&y, ref, 1e-4, name);                 // shape + max abs error
 *   vg_tensor_free(&y); vg_weights_close(&w);
 *
 * vgt_log_cb collects ERROR-level log lines: pass it as VgSettings.log_cb
 * and read vgt_last_error / vgt_n_errors (reset with vgt_log_reset()).
 */
#ifndef VG_TESTS_COMMON_VGTEST_H
#define VG_TESTS_COMMON_VGTEST_H

#include <stdarg.h>

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"

/* Opens VG_TOP/tests/fixtures/@rel (safetensors) or fails the test. Close
 * with vg_weights_close. */
VgWeights *vgt_fixture(const char *rel);

/* Tensor named printf(@fmt, ...) in @w; fails the test if absent. Owned by @w. */
const VgTensor *vgt_get(const VgWeights *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Zeroed contiguous F32 tensor shaped like @ref; fails the test on ENOMEM. */
void vgt_alloc_like(VgTensor *t, const VgTensor *ref);

/*
 * Largest |a - b| over all elements of two same-shaped tensors (any dtype,
 * compared as F32); *max_rel (may be NULL) gets the largest
 * |a - b| / max(|b|, 1e-6). A NaN in one but not the other counts as
 * infinite error; NaN in both as equal. Shapes must match (else INFINITY).
 */
double vgt_max_abs_err(const VgTensor *a, const VgTensor *b, double *max_rel);

/* Fails the test unless @got has @ref's shape and max abs error <= @tol. */
#define vgt_assert_close(got, ref, tol, what) vgt_assert_close_(got, ref, tol, what, __FILE__, __LINE__)
void vgt_assert_close_(const VgTensor *got, const VgTensor *ref, double tol, const char *what,
                       const char *file, int line);

/* Log capture. */
extern char vgt_last_error[512];
extern int vgt_n_errors;
void vgt_log_cb(void *cookie, int level, const char *fmt, va_list ap);
void vgt_log_reset(void);
/* A context with @n_threads threads logging into vgt_log_cb up to @log_level;
 * the test fails if it cannot be opened. Close with vg_close. */
VgCtx *vgt_ctx_open(int n_threads, int log_level);

#endif
