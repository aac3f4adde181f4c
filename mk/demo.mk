# `make demo`: upscale real footage with the visgen FFmpeg filter.
#   build/media/  test media (media/*.sh): tree.avi, vtest.avi, photos, pan.mp4
#   build/demo/   tree-visgen.mp4: first 2 s of OpenCV's tree.avi through
#                 -vf visgen=mode=upscale (default model); tree-before.png /
#                 tree-after.png: the same frame nearest-upscaled / by visgen;
#                 tree-compare.png: 256x192 crops of both side by side.
#                 temporal/: `make temporal-chart` (mk/temporal_chart.mk).
DEMO  := $(B)/demo
MEDIA := $(B)/media

media: $(MEDIA)/tree.avi $(MEDIA)/coffee.png $(MEDIA)/pan.mp4

$(MEDIA)/tree.avi:
	media/get-opencv-samples.sh

$(MEDIA)/coffee.png:
	media/get-skimage-photos.sh

$(MEDIA)/pan.mp4: media/make-pan.sh $(MEDIA)/coffee.png | $(B)/bin/ffmpeg
	media/make-pan.sh

DEMO_FF = $(B)/bin/ffmpeg -nostdin -hide_banner -loglevel error -y

$(DEMO)/tree-visgen.mp4: $(MEDIA)/tree.avi $(B)/bin/ffmpeg | models
	@mkdir -p $(DEMO)
	$(DEMO_FF) -t 2 -i $< -vf visgen=mode=upscale -c:v libx264 -crf 16 -preset medium -pix_fmt yuv420p $@

# One frame at 1 s: visgen's output, the input nearest-upscaled to the same
# size, and a side-by-side crop of the two (left nearest, right visgen).
$(DEMO)/tree-after.png: $(MEDIA)/tree.avi $(B)/bin/ffmpeg | models
	@mkdir -p $(DEMO)
	$(DEMO_FF) -ss 1 -i $< -frames:v 1 -vf visgen=mode=upscale -update 1 $@

$(DEMO)/tree-before.png: $(MEDIA)/tree.avi $(DEMO)/tree-after.png
	size=$$($(B)/bin/ffprobe -v error -show_entries stream=width,height -of csv=p=0:s=x $(DEMO)/tree-after.png) && \
	$(DEMO_FF) -ss 1 -i $< -frames:v 1 -vf "scale=$${size%x*}:$${size#*x}:flags=neighbor" -update 1 $@

$(DEMO)/tree-compare.png: $(DEMO)/tree-before.png $(DEMO)/tree-after.png
	$(DEMO_FF) -i $(DEMO)/tree-before.png -i $(DEMO)/tree-after.png -filter_complex \
	  "[0]crop=256:192:iw/3:ih/3[a];[1]crop=256:192:iw/3:ih/3[b];[a][b]hstack" -update 1 $@

# Super-resolution on a photograph: a 240x180 crop of skimage's chelsea.png
# shrunk 4x (bicubic, as SR benchmarks do), then brought back 4x by bicubic
# and by visgen (esrgan-thick); left to right: bicubic, visgen, the original.
$(DEMO)/photo-compare.png: $(MEDIA)/chelsea.png $(B)/bin/ffmpeg | models
	@mkdir -p $(DEMO)
	$(DEMO_FF) -i $< -vf "crop=240:180:110:40,scale=60:45:flags=bicubic" -update 1 $(DEMO)/photo-small.png
	$(DEMO_FF) -i $(DEMO)/photo-small.png -filter_complex \
	  "[0]split[a][b];[a]scale=240:180:flags=bicubic[bic];[b]visgen=model=esrgan-thick:scale=4,format=rgb24[sr]; \
	   movie=$<,crop=240:180:110:40,format=rgb24[orig];[bic]format=rgb24[bic2];[bic2][sr][orig]hstack=3" \
	  -update 1 $@

$(MEDIA)/chelsea.png: $(MEDIA)/coffee.png

DEMO_OUT := $(DEMO)/tree-visgen.mp4 $(DEMO)/tree-before.png $(DEMO)/tree-after.png \
            $(DEMO)/tree-compare.png $(DEMO)/photo-compare.png

# Installs what is missing first (tools/install-deps.sh), like `make check`.
demo: deps
	$(MAKE) demo-run

demo-run: all models ffmpeg media $(DEMO_OUT) temporal-chart
	@echo "demo: made"; for f in $(DEMO_OUT); do \
	  printf '  %-36s %s\n' "$$f" "$$($(B)/bin/ffprobe -v error -count_frames -select_streams v \
	    -show_entries stream=width,height,nb_read_frames -of csv=p=0:s=x $$f)"; done

.PHONY: media demo demo-run
