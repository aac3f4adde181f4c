/*
 * OpenBLAS set-up. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernel
 * table from CPUID once, at load time, and misdetects some recent CPUs as
 * "Prescott" (SSE3 kernels, ~4x slower sgemm). vg_blas_setup() checks the
 * choice against what the CPU runs and re-selects it when it is weaker.
 *
 * Threading: visgen owns parallelism. OpenBLAS is set to 1 thread
 * (process-wide) and the ops call cblas_sgemm concurrently from their ctx
 * pool's workers, each on its own slice (conv2d: output bands, linear: rows
 * or columns, attention: (batch, head, query block)). OpenBLAS's idle
 * worker threads otherwise spin in sched_yield between our sgemm calls and
 * take a core from the pool's copies and epilogues. Debian's pthread
 * OpenBLAS 0.3.21 serialises its buffer pool with a lock, so concurrent
 * calls are safe (tests/check_ops.c "blas_concurrent" checks it).
 *
 * Everything here is process-wide (OpenBLAS has one kernel table and one
 * thread count per process): no BLAS call may run in another thread while
 * vg_blas_setup / vg_blas_force_core run, i.e. open contexts before starting
 * to process. A build against a non-DYNAMIC_ARCH OpenBLAS still links (the
 * re-selection symbols are weak) and then leaves the kernel alone.
 */
#ifndef VG_ENGINE_BLAS_H
#define VG_ENGINE_BLAS_H

#include "engine/internal.h"

/*
 * Called by vg_open: unless c->s.blas_autoselect is 0 or the user set
 * OPENBLAS_CORETYPE, re-selects a weaker-than-possible kernel; sets
 * OpenBLAS's (process-wide) thread count to 1; stores the final
 * core name in c->blas_kernel.
 */
int vg_blas_setup(VgCtx *c);

/* Core name OpenBLAS runs now ("Haswell"), "unknown" if it cannot tell. */
const char *vg_blas_corename(void);

/*
 * Fastest OpenBLAS core table this CPU can run: "SkylakeX" (AVX-512
 * F/BW/VL/DQ), "Zen" (AMD, AVX2+FMA), "Haswell" (AVX2+FMA), or NULL (an
 * older CPU: no opinion, OpenBLAS's own choice stands).
 */
const char *vg_blas_best_core(void);

/* Is @name (case-insensitive) a table weaker than @best? */
int vg_blas_core_is_slow(const char *name, const char *best);

/*
 * Re-select OpenBLAS's kernel table to @name. Internal and for tests: the
 * caller guarantees the CPU runs that table (forcing "SkylakeX" on a CPU
 * without AVX-512 would fault). @c may be NULL (no logging).
 * VG_ERR(ENOTSUP) when this OpenBLAS has no run-time selection,
 * VG_ERR(EINVAL) when OpenBLAS does not end up on @name.
 */
int vg_blas_force_core(const VgCtx *c, const char *name);

#endif
