/*
 * Shared by the libFuzzer harnesses: the readers' log lines are formatted
 * (so a bad format argument is caught by the sanitizers) and dropped, and
 * every tensor a reader returns is touched at its first and last byte so a
 * view that reaches outside its buffer is an ASan report.
 */
#ifndef VG_TESTS_FUZZ_COMMON_H
#define VG_TESTS_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/internal.h"
#include "engine/tensor.h"
#include "engine/weights.h"

/* The library's vg_log lives in ctx.c with the thread pool and BLAS set-up;
 * the harnesses link only the readers, so they provide the log sink. */
void vg_log(const VgCtx *c, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
}

static inline void fuzz_touch_tensor(const VgTensor *t)
{
    if (vg_tensor_nelem(t) == 0)
        return;
    const uint8_t *p = t->data;
    int64_t last = (int64_t)vg_dtype_size(t->dtype) - 1;
    for (int d = 0; d < t->ndim; d++)
        last += (t->ne[d] - 1) * t->nb[d];
    volatile uint8_t sink = p[0];
    sink ^= p[last];
    (void)sink;
}

static inline void fuzz_touch_weights(const VgWeights *w)
{
    for (int i = 0; i < vg_weights_count(w); i++) {
        fuzz_touch_tensor(vg_weights_at(w, i));
        vg_weights_find(w, vg_weights_name(w, i));
    }
}

#endif
