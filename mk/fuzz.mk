# `make fuzz`: libFuzzer + ASan + UBSan harnesses for the model file readers.
# libvisgen.a is built by gcc without sanitizers, so the reader sources are
# compiled straight into each harness with clang. Each fuzzer runs
# FUZZ_SECONDS; a crash fails the target and leaves the input in build/fuzz/.
# Keep every crash input as a regression fixture in
# tests/fixtures/readers/fuzz/<name>/ (check_readers replays them).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_NAMES   := safetensors pth tfjs
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -I. -Iinclude $(DEPS_CFLAGS) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(sort $(wildcard engine/io/*.c)) engine/tensor.c engine/mem.c
FUZZ_LIBS    := $(shell pkg-config --libs libcjson minizip 2>/dev/null) -lm
FUZZ_MAXLEN_safetensors := 65536
FUZZ_MAXLEN_pth         := 65536
FUZZ_MAXLEN_tfjs        := 32768
FUZZ_SEEDS_safetensors  := $(wildcard tests/fixtures/*/*.safetensors)
FUZZ_SEEDS_pth          := $(wildcard tests/fixtures/readers/*.pth)
FIXR := tests/fixtures/readers

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_SRCS) $(wildcard engine/io/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS) $(FUZZ_LIBS) -o $@

# Seed corpora from the reader fixtures (+ the kept crash inputs).
$(B)/fuzz/seeds_%: FORCE
	@rm -rf $@ && mkdir -p $@
	@for f in $(FUZZ_SEEDS_$*) $(wildcard $(FIXR)/fuzz/$*/*); do \
	  [ -f "$$f" ] && [ $$(stat -c %s "$$f") -le $(FUZZ_MAXLEN_$*) ] && \
	  cp "$$f" $@/$$(echo "$$f" | tr / _); true; done
	@if [ "$*" = pth ]; then for f in $(FUZZ_SEEDS_pth); do \
	  unzip -p "$$f" '*/data.pkl' > $@/pkl_$$(basename $$f) 2>/dev/null; done; true; fi
	@if [ "$*" = tfjs ]; then d=$(FIXR)/tfjs_tiny; \
	  { cat $$d/model.json; printf '\0'; cat $$d/group1-shard1of2.bin $$d/group1-shard2of2.bin; } \
	    > $@/tiny; fi

fuzz-build: $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

fuzz: fuzz-build $(FUZZ_NAMES:%=$(B)/fuzz/seeds_%)
	@fail=0; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(B)/fuzz/corpus_$$n; \
	  case $$n in safetensors) ml=$(FUZZ_MAXLEN_safetensors);; pth) ml=$(FUZZ_MAXLEN_pth);; \
	    *) ml=$(FUZZ_MAXLEN_tfjs);; esac; \
	  echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
	  $(B)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=$$ml -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/fuzz/crash-$$n- \
	    $(B)/fuzz/corpus_$$n $(B)/fuzz/seeds_$$n > $(B)/fuzz/log_$$n 2>&1; rc=$$?; \
	  grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|Test unit written' \
	    $(B)/fuzz/log_$$n; [ $$rc -eq 0 ] || { echo "fuzz_$$n FAILED, see $(B)/fuzz/log_$$n"; fail=1; }; \
	done; exit $$fail

.PHONY: fuzz fuzz-build FORCE
FORCE:
