#!/bin/sh
# Temporal consistency on real footage, measured: 2 s of Big Buck Bunny
# (../shared/data/video/big_buck_bunny.mp4, from START seconds, a slow camera
# move over trees with no cut) through build/bin/ffmpeg -vf visgen with
# flow=off (every frame on its own) and with the defaults (flow=dis: flow
# fusion), then `visgen metrics` on both:
#   stylize: the random-weight tiny SD2 (../shared/data/diffusion/tiny-sd2),
#            256x144, prompt 'an oil painting', steps=4, strength=0.5, seed=42;
#            also flow=off with seed_policy=increment (table only)
#   upscale: the default model; the clip is shrunk by the model's factor
#            (bicubic, 640x360 -> 320x180 for x2), brought back per frame and
#            fused, and both compared with the original (PSNR, mean of the
#            per-frame values; fusion must not cost more than 0.3 dB)
#   scene cuts: the filter's scene_score over the whole film at 160x90
# Writes the charts temporal-{stylize,upscale}.{svg,png} to $IMG (default
# build/demo/temporal/; IMG=docs/img refreshes the committed ones) and
# build/demo/temporal/frames.png (stills: input, per frame, fused; frames of
# the film, so not committed), keeps the clips and tables in build/demo/temporal/ and prints a summary (also in
# build/demo/temporal/summary.txt). Outputs are stored losslessly at 16 bits
# (FFV1 gbrp16le in .mkv): 8-bit or rawvideo-in-.nut storage (which falls back
# to rgb555) would add quantisation noise to what is measured.
# Environment: START (seconds, default 4), FRAMES (default 48), BIN (where
# ffmpeg, ffprobe and visgen are; default build/bin).
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$TOP/build/bin}
FF="$BIN/ffmpeg"
FP="$BIN/ffprobe"
VG="$BIN/visgen"
BBB="$TOP/../shared/data/video/big_buck_bunny.mp4"
SD="$TOP/../shared/data/diffusion/tiny-sd2"
OUT="$TOP/build/demo/temporal"
IMG=${IMG:-$OUT}
case $IMG in /*) ;; *) IMG="$TOP/$IMG" ;; esac
START=${START:-4}
FRAMES=${FRAMES:-48}
die() { echo "temporal-chart.sh: $*" >&2; exit 1; }
ff() { "$FF" -nostdin -hide_banner -loglevel error -y "$@"; }
# keep IN FILTERS OUT: lossless 16-bit RGB; format=gbrpf32le before visgen
# so its float output is not rounded to the input's 8-bit YUV
keep() { ff -i "$1" -fps_mode passthrough -vf "$2" -c:v ffv1 -pix_fmt gbrp16le "$3"; }
now() { date +%s; }
T0=$(now)
step() { echo "[$(($(now) - T0)) s] $*" >&2; }

for f in "$FF" "$FP" "$VG"; do [ -x "$f" ] || die "$f missing (make all ffmpeg)"; done
command -v rsvg-convert >/dev/null || die "rsvg-convert missing (tools/install-deps.sh: librsvg2-bin)"
[ -f "$BBB" ] || die "$BBB missing"
[ -f "$SD/model_index.json" ] || die "$SD (tiny SD2 diffusers folder) missing"
mkdir -p "$OUT" "$IMG"
cd "$OUT"

# The clip, decoded once into lossless 16-bit RGB: the reference everything is
# measured against, and the two sizes the filter gets.
step "cutting $FRAMES frames of big_buck_bunny.mp4 from ${START} s"
ff -ss "$START" -i "$BBB" -an -frames:v "$FRAMES" -fps_mode passthrough -vf format=gbrp16le \
  -c:v ffv1 -pix_fmt gbrp16le bbb-640x360.mkv
n=$("$FP" -v error -count_frames -select_streams v -show_entries \
  stream=nb_read_frames,width,height -of csv=p=0:s=x bbb-640x360.mkv)
[ "$n" = "640x360x$FRAMES" ] || die "clip is $n, expected 640x360x$FRAMES"
# the default upscale model's factor, from a 16x16 crop
S=$("$FP" -v error -f lavfi -i "movie=bbb-640x360.mkv,trim=end_frame=1,crop=16:16,visgen" \
  -show_entries stream=width -of csv=p=0)
S=$((${S:-0} / 16))
[ "$S" -ge 2 ] || die "cannot find the default model's factor"
LW=$((640 / S)) LH=$((360 / S))
keep bbb-640x360.mkv scale=256:144:flags=bicubic bbb-256x144.mkv
keep bbb-640x360.mkv "scale=$LW:$LH:flags=bicubic" "bbb-${LW}x$LH.mkv"

# --- stylize
st="visgen=mode=stylize:model=$SD:prompt='an oil painting':steps=4:strength=0.5:seed=42"
step "stylize, flow=off"
t=$(now); keep bbb-256x144.mkv "format=gbrpf32le,$st:flow=off" stylize-off.mkv; t_st_off=$(($(now) - t))
step "stylize, flow=dis (defaults)"
t=$(now); keep bbb-256x144.mkv "format=gbrpf32le,$st" stylize-dis.mkv; t_st_dis=$(($(now) - t))
step "stylize, flow=off, seed_policy=increment"
keep bbb-256x144.mkv "format=gbrpf32le,$st:flow=off:seed_policy=increment" stylize-off-increment.mkv

# --- upscale
step "upscale x$S, flow=off"
t=$(now); keep "bbb-${LW}x$LH.mkv" "format=gbrpf32le,visgen=flow=off" upscale-off.mkv; t_up_off=$(($(now) - t))
step "upscale x$S, flow=dis (defaults)"
t=$(now); keep "bbb-${LW}x$LH.mkv" "format=gbrpf32le,visgen" upscale-dis.mkv; t_up_dis=$(($(now) - t))
keep "bbb-${LW}x$LH.mkv" "format=gbrpf32le,scale=640:360:flags=bicubic" upscale-bicubic.mkv

# --- E_warp and flicker. The charts show the two filter outputs; the tables
# add references: the input itself, per-frame noise seeds, bicubic, the original.
step "visgen metrics"
"$VG" metrics --plot "$IMG/temporal-stylize.svg" --label "flow=off (every frame on its own)" \
  --label "flow=dis (default: fused)" bbb-256x144.mkv stylize-off.mkv stylize-dis.mkv > stylize-chart.txt
"$VG" metrics --label off --label dis --label off+increment --label input \
  bbb-256x144.mkv stylize-off.mkv stylize-dis.mkv stylize-off-increment.mkv bbb-256x144.mkv > stylize.txt
"$VG" metrics --plot "$IMG/temporal-upscale.svg" --label "flow=off (every frame on its own)" \
  --label "flow=dis (default: fused)" "bbb-${LW}x$LH.mkv" upscale-off.mkv upscale-dis.mkv > upscale-chart.txt
"$VG" metrics --label off --label dis --label bicubic --label original \
  "bbb-${LW}x$LH.mkv" upscale-off.mkv upscale-dis.mkv upscale-bicubic.mkv bbb-640x360.mkv > upscale.txt
for c in stylize upscale; do
  rsvg-convert "$IMG/temporal-$c.svg" -o "$IMG/temporal-$c.png"
done
# column COL of the "all" row of LABEL in table FILE
overall() {
  awk -v l="$2" -v col="$3" '/^output/ { for (i = 1; i <= NF; i++) if ($i == col) c = i }
                             $1 == l && $2 == "all" && c { print $c; exit }' "$1"
}

# --- PSNR against the original, mean of the per-frame values (16-bit RGB, peak 65535)
step "PSNR"
psnr() {
  ff -i "$1" -i bbb-640x360.mkv -lavfi "[0][1]psnr=stats_file=$1.psnr.txt" -f null -
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^mse_avg:/) { m = substr($i, 9); s += 10 * log(65535 * 65535 / m) / log(10); n++ } }
       END { if (n) printf "%.3f\n", s / n }' "$1.psnr.txt"
}
p_off=$(psnr upscale-off.mkv)
p_dis=$(psnr upscale-dis.mkv)
p_bic=$(psnr upscale-bicubic.mkv)

# --- stills, a few frames apart (the camera moves under a pixel per frame at
# 256x144): the input and both stylized versions, then a 256x144 crop (1:1,
# foliage) of both upscaled versions; labelled in an SVG that embeds them
step "stills"
last=$((FRAMES - 1)) third=$((FRAMES / 3))
pick="select=eq(n\,0)+eq(n\,$third)+eq(n\,$((2 * third)))+eq(n\,$last),format=rgb24,tile=4x1:padding=6:color=white"
ff -i bbb-256x144.mkv -vf "$pick" -frames:v 1 -update 1 row-input.png
ff -i stylize-off.mkv -vf "$pick" -frames:v 1 -update 1 row-st-off.png
ff -i stylize-dis.mkv -vf "$pick" -frames:v 1 -update 1 row-st-dis.png
ff -i upscale-off.mkv -vf "crop=256:144:384:200,$pick" -frames:v 1 -update 1 row-up-off.png
ff -i upscale-dis.mkv -vf "crop=256:144:384:200,$pick" -frames:v 1 -update 1 row-up-dis.png
RW=$((4 * 256 + 3 * 6)) LX=200
# row PNG|bold label|line 2|line 3, one per line
rows="row-input.png|input|256x144, from ${START} s|
row-st-off.png|stylize|flow=off:|every frame alone
row-st-dis.png|stylize|flow=dis (default):|fused
row-up-off.png|upscale x$S|flow=off, crop 1:1|of 640x360
row-up-dis.png|upscale x$S|flow=dis (default),|crop 1:1"
{
  printf '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="%d" height="%d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n' \
    $((LX + RW + 8)) $((5 * 156 + 40))
  printf '<rect width="100%%" height="100%%" fill="#fff"/>\n'
  i=0
  for f in 0 $third $((2 * third)) $last; do
    printf '<text x="%d" y="26" font-size="15" text-anchor="middle">frame %d</text>\n' $((LX + i * 262 + 128)) "$f"
    i=$((i + 1))
  done
  y=36
  echo "$rows" | while IFS='|' read -r png l1 l2 l3; do
    printf '<text x="8" y="%d" font-size="16" font-weight="bold">%s</text>\n' $((y + 52)) "$l1"
    printf '<text x="8" y="%d" font-size="14">%s</text>\n' $((y + 74)) "$l2"
    printf '<text x="8" y="%d" font-size="14">%s</text>\n' $((y + 92)) "$l3"
    printf '<image x="%d" y="%d" width="%d" height="144" xlink:href="data:image/png;base64,%s"/>\n' \
      "$LX" "$y" "$RW" "$(base64 -w0 "$png")"
    y=$((y + 156))
  done
  printf '</svg>\n'
} > frames.svg
rsvg-convert frames.svg -o frames.png

# --- scene cuts: the filter's per-frame scene_score over the whole film at
# 160x90 (keyint=250 and key_occlusion=1 so the upscaler seldom runs)
step "scene scores over the whole film at 160x90"
ff -i "$BBB" -an -vf "scale=160:90,visgen=keyint=250:key_occlusion=1,metadata=print:file=scenes-meta.txt" -f null -
awk '/^frame:/ { split($1, a, ":"); n = a[2]; split($3, b, ":"); t = b[2] }
     /scene_score=/ { split($0, a, "="); print n, t, a[2] }
     /scenecut=/ { split($0, a, "="); c[n] = a[2] }' scenes-meta.txt > scenes.txt

# --- summary
{
  es_off=$(overall stylize.txt off E_warp) es_dis=$(overall stylize.txt dis E_warp)
  eu_off=$(overall upscale.txt off E_warp) eu_dis=$(overall upscale.txt dis E_warp)
  echo "Temporal consistency, big_buck_bunny.mp4 frames from ${START} s, $FRAMES frames (E_warp: RGB 0..1, lower = steadier)"
  echo "stylize (tiny SD2, random weights, 256x144; $t_st_off s per-frame run, $t_st_dis s fused run):"
  printf '  E_warp  flow=off %s  flow=dis %s  (%s)\n' "$es_off" "$es_dis" \
    "$(awk -v a="$es_dis" -v b="$es_off" 'BEGIN { printf "%+.0f%%", 100 * (a / b - 1) }')"
  printf '  references: flow=off seed_policy=increment %s, the input clip itself %s\n' \
    "$(overall stylize.txt off+increment E_warp)" "$(overall stylize.txt input E_warp)"
  printf '  flicker_mad  flow=off %s  flow=dis %s  increment %s  input %s\n' \
    "$(overall stylize.txt off flicker_mad)" "$(overall stylize.txt dis flicker_mad)" \
    "$(overall stylize.txt off+increment flicker_mad)" "$(overall stylize.txt input flicker_mad)"
  echo "upscale (default model x$S, ${LW}x$LH -> 640x360; $t_up_off s per-frame run, $t_up_dis s fused run):"
  printf '  E_warp  flow=off %s  flow=dis %s  (%s)\n' "$eu_off" "$eu_dis" \
    "$(awk -v a="$eu_dis" -v b="$eu_off" 'BEGIN { printf "%+.0f%%", 100 * (a / b - 1) }')"
  printf '  references: bicubic %s, the original 640x360 %s\n' \
    "$(overall upscale.txt bicubic E_warp)" "$(overall upscale.txt original E_warp)"
  printf '  PSNR against the original (RGB, mean of per-frame): flow=off %s dB  flow=dis %s dB  difference %s dB (%s)  bicubic %s dB\n' \
    "$p_off" "$p_dis" "$(awk -v a="$p_dis" -v b="$p_off" 'BEGIN { printf "%+.3f", a - b }')" \
    "$(awk -v a="$p_dis" -v b="$p_off" 'BEGIN { print (b - a <= 0.3 ? "within the 0.3 dB allowed" : "MORE than the 0.3 dB allowed") }')" "$p_bic"
  echo "scene cuts (scene_score at 160x90, whole film, default threshold scenecut=0.5):"
  # the film opens with a fade from black (frames 1-50)
  awk '$3 > 0.5 { if ($1 <= 60) { nf++; if (!f0 || $3 < f0) f0 = $3 } else { printf "  cut at frame %d (%.2f s): %.4f\n", $1, $2, $3 } }
       $3 <= 0.5 && $1 <= 60 && $3 > mf { mf = $3 }
       $3 <= 0.5 && $1 > 60 && $3 > mx { mx = $3; mxn = $1; mxt = $2 }
       END { printf "  fade-in from black: %d of the first 60 frames above 0.5 (lowest %.4f), the others up to %.4f\n", nf, f0, mf
             printf "  every other frame: <= %.4f (frame %d, %.2f s)\n", mx, mxn, mxt }' scenes.txt
  echo "charts: $IMG/temporal-stylize.png $IMG/temporal-upscale.png; stills: $OUT/frames.png"
  echo "tables: build/demo/temporal/{stylize,upscale}.txt; total $(($(now) - T0)) s"
} | tee summary.txt
