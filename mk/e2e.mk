# `make check-e2e`: FFmpeg filter tests on real footage (tests/e2e/run.sh,
# tests/e2e/stylize.sh for mode=stylize with ../shared/data's tiny SD2,
# tests/e2e/temporal.sh for flow fusion, keyint and scene cuts, and
# `visgen flow` / `visgen metrics` via check-cli-temporal),
# the FFmpeg patch series check (tests/e2e/patches.sh) and a compile of the
# filter against FFmpeg 7.1 (trixie's source package, which it fetches, so
# patches.sh also dry-runs the series there). `make check` runs it after the
# unit tests.
check-e2e: all models ffmpeg media
	@fail=0; \
	 echo "== ffmpeg71-check"; $(MAKE) --no-print-directory ffmpeg71-check || fail=1; \
	 echo "== tests/e2e/patches.sh"; tests/e2e/patches.sh || fail=1; \
	 echo "== tests/e2e/run.sh"; tests/e2e/run.sh || fail=1; \
	 echo "== tests/e2e/stylize.sh"; tests/e2e/stylize.sh || fail=1; \
	 echo "== tests/e2e/temporal.sh"; tests/e2e/temporal.sh || fail=1; \
	 echo "== check-cli-temporal"; $(MAKE) --no-print-directory check-cli-temporal || fail=1; \
	 exit $$fail

.PHONY: check-e2e
