# `make ffmpeg`: build/bin/ffmpeg and build/bin/ffprobe with the visgen filter.
#
#  pristine tree (FFMPEG_SOURCE, or bookworm's source package via
#  tools/get-ffmpeg.sh) --rsync--> build/ffmpeg-src, + ffmpeg-patches/
#  (re-copied when the patches or the source change: the stamp's name is their
#  hash), + filter/ copied over the patched files (so editing filter/ rebuilds
#  without regenerating the patches) --configure--> build/ffmpeg-build.
FF_SRC   := $(B)/ffmpeg-src
FF_BLD   := $(B)/ffmpeg-build
FF_JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
FF_PATCHES := $(sort $(wildcard ffmpeg-patches/*.patch))
FF_FILTER  := filter/vf_visgen.c filter/visgen_conv.c filter/visgen_conv.h
FF_KEY     := $(shell cat $(FF_PATCHES) /dev/null | { cat; echo '$(FFMPEG_SOURCE)'; } | sha1sum | cut -c1-12)
FF_PATCHED := $(FF_SRC)/.visgen-patched-$(FF_KEY)
FF_CONFIGURE_FLAGS := --enable-gpl --enable-libx264 --enable-libvisgen --enable-zlib \
  --disable-autodetect --disable-doc --disable-debug --disable-ffplay \
  --enable-static --disable-shared

ffmpeg: $(B)/bin/ffmpeg $(B)/bin/ffprobe

$(FF_PATCHED): $(FF_PATCHES)
	@src='$(FFMPEG_SOURCE)'; \
	 if [ -z "$$src" ]; then src=$$(tools/get-ffmpeg.sh | tail -n 1) || exit 1; fi; \
	 [ -f "$$src/libavfilter/allfilters.c" ] || { echo "ffmpeg.mk: $$src is not an FFmpeg tree" >&2; exit 1; }; \
	 echo "ffmpeg.mk: copying $$src to $(FF_SRC) and applying ffmpeg-patches/"; \
	 mkdir -p $(FF_SRC) && rsync -a --delete --exclude=/.visgen-unpacked "$$src"/ $(FF_SRC)/ || exit 1; \
	 for p in $(FF_PATCHES); do \
	   patch -s -p1 -F0 -N --no-backup-if-mismatch -d $(FF_SRC) < $$p || \
	     { echo "ffmpeg.mk: $$p does not apply to $$src" >&2; exit 1; }; \
	 done
	touch $@

# Copies only files that differ, so FFmpeg's make rebuilds only what changed.
$(FF_SRC)/.visgen-filter-synced: $(FF_PATCHED) $(FF_FILTER)
	@for f in $(FF_FILTER); do \
	   cmp -s $$f $(FF_SRC)/libavfilter/$${f#filter/} || cp $$f $(FF_SRC)/libavfilter/ || exit 1; \
	 done
	touch $@

# configure test-links vg_open, so libvisgen must exist (but a newer one does
# not need a new configure).
$(FF_BLD)/.visgen-configured: $(FF_PATCHED) | $(LIBVISGEN) $(B)/pkgconfig/visgen.pc
	@mkdir -p $(FF_BLD)
	cd $(FF_BLD) && PKG_CONFIG_PATH=$(TOP)/$(B)/pkgconfig $(TOP)/$(FF_SRC)/configure \
	  $(FF_CONFIGURE_FLAGS) > configure.out 2>&1 || \
	  { tail -n 20 configure.out; tail -n 30 ffbuild/config.log; exit 1; }
	touch $@

# FFmpeg's make does not know about libvisgen.a: drop the linked programs
# when it changed so they are linked again.
$(FF_BLD)/.visgen-built: $(FF_BLD)/.visgen-configured $(FF_SRC)/.visgen-filter-synced $(LIBVISGEN)
	$(if $(filter $(LIBVISGEN),$?),rm -f $(FF_BLD)/ffmpeg_g $(FF_BLD)/ffprobe_g)
	+$(MAKE) -C $(FF_BLD) -j$(FF_JOBS) ffmpeg ffprobe
	touch $@

# A new file renamed over the old one: a running ffmpeg keeps its copy
# (cp onto a running executable fails with "Text file busy").
$(B)/bin/ffmpeg $(B)/bin/ffprobe: $(B)/bin/%: $(FF_BLD)/.visgen-built
	@mkdir -p $(dir $@)
	cp $(FF_BLD)/$* $@.tmp && mv -f $@.tmp $@

ffmpeg-clean:
	rm -rf $(FF_SRC) $(FF_BLD) $(B)/bin/ffmpeg $(B)/bin/ffprobe

.PHONY: ffmpeg ffmpeg-clean

# `make ffmpeg71-check`: compile the filter against FFmpeg 7.1 (trixie's
# source package) with FFmpeg's own flags; only the visgen objects are built.
FF71_SRC := $(B)/ffmpeg71-src
FF71_BLD := $(B)/ffmpeg71-build

$(FF71_SRC)/.visgen-patched-$(FF_KEY): $(FF_PATCHES)
	@src=$$(tools/get-ffmpeg.sh --trixie | tail -n 1) || exit 1; \
	 mkdir -p $(FF71_SRC) && rsync -a --delete --exclude=/.visgen-unpacked "$$src"/ $(FF71_SRC)/ || exit 1; \
	 for p in $(FF_PATCHES); do \
	   patch -s -p1 -F0 -N --no-backup-if-mismatch -d $(FF71_SRC) < $$p || exit 1; done
	touch $@

$(FF71_BLD)/.visgen-configured: $(FF71_SRC)/.visgen-patched-$(FF_KEY) | $(LIBVISGEN) $(B)/pkgconfig/visgen.pc
	@mkdir -p $(FF71_BLD)
	cd $(FF71_BLD) && PKG_CONFIG_PATH=$(TOP)/$(B)/pkgconfig $(TOP)/$(FF71_SRC)/configure \
	  $(FF_CONFIGURE_FLAGS) > configure.out 2>&1 || { tail -n 20 configure.out; exit 1; }
	touch $@

ffmpeg71-check: $(FF71_BLD)/.visgen-configured $(FF_FILTER)
	cp $(FF_FILTER) $(FF71_SRC)/libavfilter/
	$(MAKE) -C $(FF71_BLD) libavfilter/vf_visgen.o libavfilter/visgen_conv.o
	@echo "ffmpeg71-check: the visgen filter compiles against FFmpeg 7.1"

.PHONY: ffmpeg71-check
