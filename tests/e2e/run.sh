#!/bin/sh
# End-to-end tests of the visgen FFmpeg filter on real footage (OpenCV's
# tree.avi), with build/bin/ffmpeg, build/bin/ffprobe and build/bin/visgen.
# One line per test; the last line is "N passed, M failed".
TOP=$(cd "$(dirname "$0")/../.." && pwd)
FF="$TOP/build/bin/ffmpeg"
FP="$TOP/build/bin/ffprobe"
VG="$TOP/build/bin/visgen"
PY=/usr/bin/python3
MEDIA="$TOP/build/media"
TREE="$MEDIA/tree.avi"
. "$TOP/tests/e2e/lib.sh"

for f in "$FF" "$FP" "$VG"; do
  [ -x "$f" ] || { echo "FAIL setup: $f missing (make all ffmpeg)"; echo "0 passed, 1 failed"; exit 1; }
done
[ -s "$TREE" ] || "$TOP/media/get-opencv-samples.sh" >/dev/null ||
  { echo "FAIL setup: cannot get $TREE"; echo "0 passed, 1 failed"; exit 1; }

# The default model's factor, from the filter itself.
S=$(probe "movie=$TREE,trim=end_frame=1,crop=16:16,visgen" width | sed -n 's/^width=//p')
S=$((${S:-0} / 16))
if [ "$S" -ge 2 ]; then ok "default model loads in the filter (x$S)"
else bad "default model loads in the filter" "$(probe "movie=$TREE,trim=end_frame=1,crop=16:16,visgen" width 2>&1)"; fi

# --- 1. frame count, size, pts and SAR preserved on 12 frames of tree.avi
# (a 96x72 crop: the CPU networks take seconds per full frame)
src="movie=$TREE,trim=end_frame=12,crop=96:72:100:60,setsar=4/3"
probe "$src" pts,width,height,sample_aspect_ratio > "$tmp/in.txt" 2>"$tmp/err"
probe "$src,visgen" pts,width,height,sample_aspect_ratio > "$tmp/out.txt" 2>>"$tmp/err"
n_in=$(wc -l < "$tmp/in.txt"); n_out=$(wc -l < "$tmp/out.txt")
if [ "$n_in" = 12 ] && [ "$n_out" = 12 ]; then ok "12 frames in, 12 frames out"
else bad "frame count (in $n_in, out $n_out, want 12)" "$(cat "$tmp/err")"; fi
if [ "$(cut -d'|' -f1 "$tmp/in.txt")" = "$(cut -d'|' -f1 "$tmp/out.txt")" ] &&
   [ -n "$(grep . "$tmp/in.txt")" ]; then ok "pts preserved"
else bad "pts preserved" "$(paste -d' ' "$tmp/in.txt" "$tmp/out.txt")"; fi
w=$(sed -n '1s/.*width=\([0-9]*\).*/\1/p' "$tmp/in.txt"); h=$(sed -n '1s/.*height=\([0-9]*\).*/\1/p' "$tmp/in.txt")
want="width=$((w * S))|height=$((h * S))|sample_aspect_ratio=4:3"
if [ "$(cut -d'|' -f2- "$tmp/out.txt" | sort -u)" = "$want" ]; then ok "size ${w}x${h} -> $((w * S))x$((h * S)), SAR 4:3 kept"
else bad "output size/SAR (want $want)" "$(cut -d'|' -f2- "$tmp/out.txt" | sort -u)"; fi

# A real encode through the command line: EOF flushes every frame.
if ff -i "$TREE" -frames:v 12 -vf crop=96:72:100:60,visgen -c:v libx264 -preset ultrafast "$tmp/up.mp4" &&
   [ "$("$FP" -v error -count_frames -select_streams v -show_entries stream=nb_read_frames,width -of csv=p=0 "$tmp/up.mp4")" = "$((w * S)),12" ]; then
  ok "ffmpeg -vf visgen encode: 12 frames at $((w * S)) wide"
else bad "ffmpeg -vf visgen encode" "$("$FP" -v error -count_frames -show_entries stream=nb_read_frames,width -of csv=p=0 "$tmp/up.mp4" 2>&1)"; fi

# --- 2. filter output == library output on the same decoded frame
cw=96 ch=64
maxdiff() {
  $PY - "$1" "$2" "$3" <<'PYEOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype='<f4'); b = np.fromfile(sys.argv[2], dtype='<f4')
n = int(sys.argv[3])
if a.size != n or b.size != n:
    print("sizes %d %d, want %d" % (a.size, b.size, n)); sys.exit(1)
d = float(np.abs(a.astype(np.float64) - b).max())
print("%.3g" % d); sys.exit(0 if d <= 1e-5 and a.std() > 0.01 else 1)
PYEOF
}
nout=$((cw * S * ch * S * 3))
if ff -ss 0.5 -i "$TREE" -frames:v 1 -vf crop=$cw:$ch:120:80 -f rawvideo -pix_fmt gbrpf32le "$tmp/in.raw" &&
   "$VG" upscale --size ${cw}x$ch "$tmp/in.raw" "$tmp/lib.raw" 2>"$tmp/err"; then
  if ff -f rawvideo -pix_fmt gbrpf32le -s ${cw}x$ch -i "$tmp/in.raw" -vf visgen \
        -f rawvideo -pix_fmt gbrpf32le "$tmp/filt.raw" 2>"$tmp/err" &&
     d=$(maxdiff "$tmp/lib.raw" "$tmp/filt.raw" $nout); then
    ok "filter == visgen CLI on a raw gbrpf32le frame (max |diff| $d)"
  else bad "filter == visgen CLI on a raw gbrpf32le frame" "$d $(cat "$tmp/err")"; fi
  # Same frame decoded and converted inside the filter graph.
  if ff -ss 0.5 -i "$TREE" -frames:v 1 -vf crop=$cw:$ch:120:80,format=gbrpf32le,visgen \
        -f rawvideo -pix_fmt gbrpf32le "$tmp/filt2.raw" 2>"$tmp/err" &&
     d=$(maxdiff "$tmp/lib.raw" "$tmp/filt2.raw" $nout); then
    ok "filter == visgen CLI on a decoded tree.avi frame (max |diff| $d)"
  else bad "filter == visgen CLI on a decoded tree.avi frame" "$d $(cat "$tmp/err")"; fi
else
  bad "decode + visgen CLI upscale" "$(cat "$tmp/err")"
fi

# --- 3. pixel formats: size, frame count, format kept, and the picture
# matches a bicubic upscale of the same input (a swapped plane or wrong
# matrix would drop the PSNR far below this).
psnr() { # graph-source [visgen args] -> average PSNR of visgen vs bicubic
  ff -lavfi "$1,split[a][b];[a]visgen$2[x];[b]scale=iw*$S:ih*$S:flags=bicubic[y];[x][y]psnr=stats_file=$tmp/psnr.log" \
     -f null - 2>&1 || return 1
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^psnr_avg:/) { sub("psnr_avg:", "", $i); s += ($i == "inf" ? 99 : $i); n++ } }
       END { if (n) printf "%.1f\n", s / n }' "$tmp/psnr.log"
}
for fmt in yuv420p yuv420p10le nv12 rgb24 rgba gray gray10le yuvj444p gbrp; do
  g="movie=$TREE,trim=end_frame=2,crop=64:48:100:60,format=$fmt"
  r=$(probe "$g,visgen" width,height,pix_fmt 2>&1 | sort | uniq -c | sed 's/^ *//')
  p=$(psnr "$g")
  if [ "$r" = "2 width=$((64 * S))|height=$((48 * S))|pix_fmt=$fmt" ] &&
     awk -v p="$p" 'BEGIN { exit !(p + 0 > 24) }'; then
    ok "pix_fmt $fmt: 2 frames $((64 * S))x$((48 * S)) $fmt, PSNR vs bicubic $p dB"
  else bad "pix_fmt $fmt (want 2 frames $((64 * S))x$((48 * S)), PSNR > 24)" "$r / PSNR $p"; fi
done

# --- 4. timeline: disabled frames are bicubic-scaled, size stays the same
g="movie=$TREE,trim=end_frame=4,crop=64:48:100:60"
r=$(probe "$g,visgen=enable='gte(n,2)'" width,height 2>&1 | sort | uniq -c | sed 's/^ *//')
p=$(psnr "$g" "=enable=0")
if [ "$r" = "4 width=$((64 * S))|height=$((48 * S))" ] && awk -v p="$p" 'BEGIN { exit !(p + 0 > 45) }'; then
  ok "timeline enable=: 4 frames at one size, disabled = bicubic (PSNR $p dB, 99 = identical)"
else bad "timeline enable=" "$r / PSNR $p"; fi

# --- 5. runtime command: tile changes mid-stream. tree.avi is 15 fps, so
# frame 0 runs with the automatic tile (one tile) and frames 1-3 with 24 px
# tiles, whose seams change the result a little (but only a little).
g="movie=$TREE,trim=end_frame=4,crop=96:64:100:60"
if ff -lavfi "$g,visgen" -fps_mode passthrough -f rawvideo -pix_fmt gbrpf32le "$tmp/a.raw" 2>"$tmp/err" &&
   ff -lavfi "$g,sendcmd=c='0.05 visgen tile 24',visgen" -fps_mode passthrough -f rawvideo -pix_fmt gbrpf32le "$tmp/b.raw" 2>>"$tmp/err" &&
   d=$($PY - "$tmp/a.raw" "$tmp/b.raw" $((96 * S * 64 * S * 3)) <<'PYEOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], '<f4'); b = np.fromfile(sys.argv[2], '<f4'); n = int(sys.argv[3])
if a.size != 4 * n or b.size != 4 * n:
    print("sizes", a.size, b.size); sys.exit(1)
d = [float(np.abs(a[i*n:(i+1)*n] - b[i*n:(i+1)*n]).max()) for i in range(4)]
print("per-frame max |diff| " + " ".join("%.2g" % x for x in d))
sys.exit(0 if d[0] == 0 and min(d[1:]) > 0 and max(d[1:]) < 0.02 else 1)
PYEOF
); then
  ok "process_command tile=24 at 0.05 s: frame 0 unchanged, then new tiles ($d)"
else bad "process_command tile" "$d $(cat "$tmp/err")"; fi

# --- 6. bad options and bad models fail with a clear message
one="-i $TREE -frames:v 1"
expect_fail "scale=7" "cannot load model" $one -vf visgen=scale=7
expect_fail "model=nosuch" "nosuch" $one -vf visgen=model=nosuch
expect_fail "mode=bogus" "bogus" $one -vf visgen=mode=bogus
expect_fail "tile=-1" "tile" $one -vf visgen=tile=-1
expect_fail "output > 16384" "larger than 16384" $one -vf scale=9000:100,visgen
mkdir -p "$tmp/bad"
cp "$TOP/build/models/default/model.json" "$tmp/bad/" 2>/dev/null
for shard in "$TOP"/build/models/default/*.bin; do
  [ -f "$shard" ] && head -c $(($(wc -c < "$shard") / 2)) "$shard" > "$tmp/bad/$(basename "$shard")"
done
expect_fail "truncated model weights" "Invalid data" $one -vf "visgen=model=$tmp/bad/model.json"
printf '{"modelTopology": {"class_name": "Sequen' > "$tmp/bad2.json"
expect_fail "corrupt model.json" "cannot load model" $one -vf "visgen=model=$tmp/bad2.json"

# --- 7. documentation: every option is listed by ffmpeg -h filter=visgen
"$FF" -hide_banner -h filter=visgen > "$tmp/help" 2>&1
missing=""
for o in mode upscale model scale tile threads; do
  grep -q "^ *$o " "$tmp/help" || missing="$missing $o"
done
grep -q "timeline" "$tmp/help" || missing="$missing (timeline)"
if [ -z "$missing" ]; then ok "ffmpeg -h filter=visgen documents mode, model, scale, tile, threads"
else bad "ffmpeg -h filter=visgen lacks:$missing" "$(cat "$tmp/help")"; fi

# --- 8. the CLI
if "$VG" version > "$tmp/v" 2>&1 && grep -q "OpenBLAS sgemm kernel: ." "$tmp/v"; then ok "visgen version: $(tr '\n' ' ' < "$tmp/v")"
else bad "visgen version" "$(cat "$tmp/v")"; fi
"$VG" upscale "$tmp/in.raw" "$tmp/x.raw" > "$tmp/v" 2>&1; rc=$?
if [ $rc = 2 ] && grep -q -- "--size" "$tmp/v"; then ok "visgen upscale without --size: usage error"
else bad "visgen upscale without --size (rc $rc)" "$(cat "$tmp/v")"; fi
head -c 1000 "$tmp/in.raw" > "$tmp/short.raw" 2>/dev/null
"$VG" upscale --size ${cw}x$ch "$tmp/short.raw" "$tmp/x.raw" > "$tmp/v" 2>&1; rc=$?
if [ $rc != 0 ] && grep -q "truncated" "$tmp/v"; then ok "visgen upscale on a truncated raw file: error"
else bad "visgen upscale on a truncated raw file (rc $rc)" "$(cat "$tmp/v")"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
