# `make check-sd-cli`: visgen info/tokenize/forward/img2img against
# ../shared/data/diffusion refs (tests/e2e/sd_cli.sh).
check-sd-cli: all
	tests/e2e/sd_cli.sh

.PHONY: check-sd-cli
