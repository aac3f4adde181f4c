# Optical flow benchmark (bench/flow/): our DIS against OpenCV 4.6's DIS in the
# same run, on Middlebury RubberWhale and a synthetic 1280x720 pair with exact
# flow. `make bench-flow` prints a markdown table and writes bench/flow/results.md.
# BENCH_FLOW_ARGS passes options to the driver (e.g. "--reps 50 --threads 1").
# The default compares 1 and 2 threads, 3 rounds x 20 runs each.

BENCH_PYTHON    ?= /usr/bin/python3
BENCH_FLOW_ARGS ?=
BENCH_FLOW_BIN  := $(B)/bench/bench_flow

$(BENCH_FLOW_BIN): bench/flow/bench_flow.c temporal/flow.h $(LIBVISGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) bench/flow/bench_flow.c $(LIBVISGEN) $(DEPS_LIBS) -o $@

bench-flow-build: $(BENCH_FLOW_BIN)

bench-flow: $(BENCH_FLOW_BIN)
	$(BENCH_PYTHON) bench/flow/run_bench_flow.py --bench $(BENCH_FLOW_BIN) \
	  --shared-data $(TOP)/../shared/data --work $(TOP)/$(B)/bench/flow \
	  --out bench/flow/results.md $(BENCH_FLOW_ARGS)

.PHONY: bench-flow bench-flow-build
