#!/bin/sh
# Regenerates ffmpeg-patches/ from filter/ and the FFmpeg-side hunks below.
#   tools/mkpatches.sh [PRISTINE_FFMPEG_TREE [OUTDIR]]
# The tree defaults to FFMPEG_SOURCE from config.mak or bookworm's source
# package in build/src (fetched with tools/get-ffmpeg.sh); OUTDIR defaults to
# ffmpeg-patches/. Output is byte-for-byte reproducible (fixed author, dates
# and zero commit ids), which tests/e2e/patches.sh relies on.
#
# Every hunk is inserted next to an anchor line that is identical, with the
# same neighbours, in FFmpeg 5.1 and 7.1, so one series applies to both.
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "mkpatches.sh: $*" >&2; exit 1; }

src=$1
if [ -z "$src" ]; then
  src=$(sed -n 's/^FFMPEG_SOURCE *= *//p' "$TOP/config.mak" 2>/dev/null || true)
  [ -n "$src" ] || src=$("$TOP/tools/get-ffmpeg.sh" | tail -n 1)
fi
out=${2:-$TOP/ffmpeg-patches}
[ -f "$src/libavfilter/allfilters.c" ] || die "$src is not an FFmpeg source tree"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in configure libavfilter/Makefile libavfilter/allfilters.c doc/filters.texi; do
  mkdir -p "$work/$(dirname "$f")"
  cp "$src/$f" "$work/$f"
done

# insert FILE before|after ANCHOR(exact line) TEXT: the anchor must occur once.
insert() {
  n=$(grep -c -x -F -- "$3" "$work/$1" || true)
  [ "$n" = 1 ] || die "$1: anchor line found $n times, want 1: $3"
  # Through the environment: awk -v would expand backslashes in the text.
  WHERE=$2 ANCHOR=$3 TEXT=$4 awk '
    $0 == ENVIRON["ANCHOR"] && ENVIRON["WHERE"] == "before" { print ENVIRON["TEXT"] }
    { print }
    $0 == ENVIRON["ANCHOR"] && ENVIRON["WHERE"] == "after"  { print ENVIRON["TEXT"] }' "$work/$1" > "$work/$1.new"
  cat "$work/$1.new" > "$work/$1" && rm "$work/$1.new"
}

export GIT_AUTHOR_NAME="visgen" GIT_AUTHOR_EMAIL="visgen@localhost"
export GIT_COMMITTER_NAME="visgen" GIT_COMMITTER_EMAIL="visgen@localhost"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
g() { git -C "$work" -c core.autocrlf=false -c commit.gpgsign=false "$@"; }
g init -q
g add -A
g commit -q -m "pristine"

insert configure after '  --enable-libvidstab      enable video stabilization using vid.stab [no]' \
'  --enable-libvisgen       enable neural video filters via libvisgen [no]'
insert configure after '    libv4l2' '    libvisgen'
insert configure after 'vflip_vulkan_filter_deps="vulkan spirv_compiler"' \
'visgen_filter_deps="libvisgen"'
insert configure after \
'enabled libuavs3d         && require_pkg_config libuavs3d "uavs3d >= 1.1.41" uavs3d.h uavs3d_decode' \
'enabled libvisgen         && require_pkg_config libvisgen visgen visgen/visgen.h vg_open'
g commit -q -a -m "configure: add --enable-libvisgen

libvisgen is a C library for neural video processing on the CPU;
it is found with pkg-config (module visgen)."

insert libavfilter/Makefile after \
'OBJS-$(CONFIG_VIGNETTE_FILTER)               += vf_vignette.o' \
'OBJS-$(CONFIG_VISGEN_FILTER)                 += vf_visgen.o visgen_conv.o'
insert libavfilter/allfilters.c after 'extern const AVFilter ff_vf_vignette;' \
'extern const AVFilter ff_vf_visgen;'
for f in vf_visgen.c visgen_conv.c visgen_conv.h; do
  cp "$TOP/filter/$f" "$work/libavfilter/$f"
done
g add -A
g commit -q -m "avfilter: add visgen filter

Neural video processing with libvisgen: super-resolution upscaling
(mode=upscale) and latent-diffusion img2img steered by a prompt
(mode=stylize). Frames are converted to planar float RGB with libswscale
(visgen_conv.c), processed by the library and converted back to the
input's pixel format."

# $(cat) drops the file's trailing newlines; keep one blank line before the
# next section.
insert doc/filters.texi before '@section vmafmotion' "$(cat "$TOP/filter/filters.texi")
"
g commit -q -a -m "doc/filters: document the visgen filter"

mkdir -p "$out"
rm -f "$out"/*.patch
g format-patch -q --zero-commit --no-signature --no-stat --full-index -o "$out" HEAD~3
ls "$out"/*.patch
