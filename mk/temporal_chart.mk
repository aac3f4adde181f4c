# `make temporal-chart`: temporal consistency measured on real footage
# (media/temporal-chart.sh, about 5 minutes on 2 cores): 2 s of Big Buck Bunny
# from ../shared/data, stylized (random-weight tiny SD2) and upscaled (default
# model) with flow=off and with the defaults (flow=dis), scored by
# `visgen metrics` (E_warp, flicker) and, for the upscaler, PSNR against the
# original; the filter's scene scores over the whole film. Charts, stills,
# clips and tables go to build/demo/temporal/ (`make temporal-chart
# IMG=docs/img` refreshes the committed charts), the summary to stdout and
# build/demo/temporal/summary.txt.
temporal-chart: all models ffmpeg
	media/temporal-chart.sh

.PHONY: temporal-chart
