# Benchmarks (bench/README.md). `make bench` builds the C harness, fetches the
# models, and runs bench/run_bench.py: sgemm peak, visgen vs PyTorch per model
# and scale, printed as markdown and written to bench/results.md.
# `make bench-build` only builds. BENCH_ARGS passes options to run_bench.py
# (e.g. BENCH_ARGS="--quick" or BENCH_ARGS="--only esrgan-slim").

BENCH_PYTHON ?= /usr/bin/python3
BENCH_ARGS   ?=
BENCH_SRCS   := $(filter-out bench/bench_sd.c,$(sort $(wildcard bench/*.c)))  # bench_sd.c: mk/bench_sd.mk
BENCH_BIN    := $(B)/bench/vgbench

bench-build: $(BENCH_BIN)

$(BENCH_BIN): $(BENCH_SRCS) $(wildcard bench/*.h) $(LIBVISGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BENCH_SRCS) $(LIBVISGEN) $(DEPS_LIBS) -o $@

bench: bench-build models
	$(BENCH_PYTHON) bench/run_bench.py --vgbench $(BENCH_BIN) --model-dir $(TOP)/$(B)/models \
	  --shared-data $(TOP)/../shared/data --out bench/results.md $(BENCH_ARGS)

.PHONY: bench bench-build

# The PyTorch peer's TF.js graph runner against TF.js itself, every model.
bench-verify: models npm-ref
	$(BENCH_PYTHON) bench/verify_torch_tfjs.py --model-dir $(TOP)/$(B)/models \
	  --node-modules $(TOP)/$(B)/npm-ref/node_modules

.PHONY: bench-verify
