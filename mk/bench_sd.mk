# Stable Diffusion benchmark (bench/README.md, "make bench-sd"): random-weight
# models with the full SD2.1 / SD-Turbo shapes, visgen against PyTorch, one
# markdown report printed and written to bench/results_sd.md.
# BENCH_SD_ARGS passes options to run_bench_sd.py (e.g. "--no-torch").

BENCH_SD_ARGS ?=
BENCH_SD_BIN  := $(B)/bench/vgbench-sd

# bench/*.c make up vgbench (mk/bench.mk); bench_sd.c is its own program.

bench-sd-build: $(BENCH_SD_BIN)

$(BENCH_SD_BIN): bench/bench_sd.c bench/bench_util.c bench/bench_util.h $(LIBVISGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) bench/bench_sd.c bench/bench_util.c $(LIBVISGEN) $(DEPS_LIBS) -o $@

bench-sd: bench-sd-build
	$(BENCH_PYTHON) bench/run_bench_sd.py --vgbench-sd $(BENCH_SD_BIN) \
	  --out bench/results_sd.md $(BENCH_SD_ARGS)

.PHONY: bench-sd bench-sd-build
