/*
 * Small helpers shared by the benchmark programs: a monotonic clock, a
 * median, the process's peak resident memory, and the machine's CPU name.
 * Benchmarks are tools: they print to stdout, the library never does.
 */
#ifndef VG_BENCH_UTIL_H
#define VG_BENCH_UTIL_H

#include <stddef.h>

/* Monotonic time in seconds. */
double vgb_now(void);

/* Median of @n values (sorts @v in place); 0 when n == 0. */
double vgb_median(double *v, int n);

/* User + system CPU seconds this process (all threads) has used. */
double vgb_cpu_time(void);

/* Peak resident set of this process in KiB (VmHWM), -1 if unknown. */
long vgb_peak_rss_kb(void);

/* "model name" of the first CPU in /proc/cpuinfo into @buf (always terminated). */
void vgb_cpu_model(char *buf, size_t size);

/* Print @s as a JSON string literal (quotes and escapes included). */
void vgb_json_str(const char *s);

#endif
