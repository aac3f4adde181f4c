# `make check-cli-temporal`: `visgen flow` and `visgen metrics` end to end
# (tests/e2e/cli_temporal.sh): flow EPE on Middlebury RubberWhale from
# ../shared/data, E_warp / flicker on clips build/bin/ffmpeg cuts from
# build/media (tree.avi, and chelsea.png, which comes with coffee.png), error
# exits. FFmpeg only cuts the clips here, so it is built when missing but not
# relinked for this test whenever libvisgen changes (a make prerequisite,
# even order-only, would be brought up to date).
check-cli-temporal: all $(B)/media/tree.avi $(B)/media/coffee.png
	@[ -x $(B)/bin/ffmpeg ] && [ -x $(B)/bin/ffprobe ] || $(MAKE) --no-print-directory ffmpeg
	tests/e2e/cli_temporal.sh

.PHONY: check-cli-temporal
