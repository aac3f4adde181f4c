# `make check-e2e`: FFmpeg filter tests on real footage (tests/e2e/run.sh) and
# the FFmpeg patch series check (tests/e2e/patches.sh). `make check` runs it
# after the unit tests.
check-e2e: all models ffmpeg media
	@fail=0; \
	 echo "== tests/e2e/patches.sh"; tests/e2e/patches.sh || fail=1; \
	 echo "== tests/e2e/run.sh"; tests/e2e/run.sh || fail=1; \
	 exit $$fail

.PHONY: check-e2e
