#!/bin/sh
# `visgen flow` and `visgen metrics` end to end: flow on Middlebury
# RubberWhale (../shared/data/flow) scored against its ground truth, and
# E_warp / flicker on clips that build/bin/ffmpeg cuts from OpenCV's tree.avi
# and from a still picture (lossless FFV1, so "identical" stays identical).
# One line per test; the last line is "N passed, M failed".
TOP=$(cd "$(dirname "$0")/../.." && pwd)
VG="$TOP/build/bin/visgen"
FF="$TOP/build/bin/ffmpeg"
FP="$TOP/build/bin/ffprobe"
MB="$TOP/../shared/data/flow/middlebury/RubberWhale"
MEDIA="$TOP/build/media"
. "$TOP/tests/e2e/lib.sh"
# Float comparison by awk: cmp_f A OP B, A and B numbers or expressions of them.
cmp_f() { awk "BEGIN { exit !(($1) $2 ($3)) }" < /dev/null; }
# The overall line of output $2 in a metrics table $1: "E_warp valid% mad dluma".
overall() { awk -v l="$2" '$1 == l && $2 == "all" { print $3, $4, $5, $6 }' "$1"; }
# visgen with stdout+stderr in $tmp/out; sets rc.
run() { "$VG" "$@" > "$tmp/out" 2>&1; rc=$?; }

for f in "$VG" "$FF" "$FP"; do
  [ -x "$f" ] || { echo "FAIL setup: $f missing (make all ffmpeg)"; echo "0 passed, 1 failed"; exit 1; }
done
for f in frame10.png frame11.png flow10.flo; do
  [ -s "$MB/$f" ] || { echo "FAIL setup: $MB/$f missing"; echo "0 passed, 1 failed"; exit 1; }
done
[ -s "$MEDIA/tree.avi" ] && [ -s "$MEDIA/chelsea.png" ] ||
  { "$TOP/media/get-opencv-samples.sh" && "$TOP/media/get-skimage-photos.sh"; } >/dev/null ||
  { echo "FAIL setup: cannot get tree.avi and chelsea.png into $MEDIA"; echo "0 passed, 1 failed"; exit 1; }

# --- 1. flow: RubberWhale frame10 -> frame11, scored against flow10.flo
run flow --preset medium --warp "$tmp/warp.png" "$MB/frame10.png" "$MB/frame11.png" "$tmp/rw.flo"
size=$(wc -c < "$tmp/rw.flo" 2>/dev/null)
if [ $rc = 0 ] && [ "$size" = $((12 + 584 * 388 * 8)) ] && [ "$(head -c 4 "$tmp/rw.flo")" = PIEH ]; then
  ok "visgen flow writes a 584x388 Middlebury .flo ($size bytes, PIEH tag)"
else bad "visgen flow (rc $rc, $size bytes)" "$(cat "$tmp/out")"; fi

run metrics --flo "$MB/flow10.flo" "$tmp/rw.flo"
epe=$(awk '/^EPE/ { print $2 }' "$tmp/out")
# DIS medium measured 0.21 (0.29 before the flow was tuned); the bound has margin
if [ $rc = 0 ] && [ -n "$epe" ] && cmp_f "$epe" "<" 0.4; then ok "EPE of visgen flow on RubberWhale: $epe px (< 0.4)"
else bad "EPE of visgen flow on RubberWhale: '$epe' (want < 0.4)" "$(cat "$tmp/out")"; fi

run metrics --flo "$MB/flow10.flo" "$MB/frame10.png" "$MB/frame11.png"
epe2=$(awk '/^EPE/ { print $2 }' "$tmp/out")
if [ $rc = 0 ] && [ "$epe2" = "$epe" ]; then ok "metrics --flo GT A B computes the same flow ($epe2 px)"
else bad "metrics --flo GT A B: '$epe2', from the .flo: '$epe'" "$(cat "$tmp/out")"; fi

dims=$("$FP" -v error -show_entries stream=width,height -of csv=p=0 "$tmp/warp.png" 2>&1)
if [ "$dims" = "584,388" ]; then ok "flow --warp writes a 584x388 PNG FFmpeg decodes"
else bad "flow --warp PNG" "$dims"; fi

# --- 2. flow refuses what it cannot do
ff -i "$MB/frame11.png" -vf crop=300:200:0:0 "$tmp/small.png"
run flow "$MB/frame10.png" "$tmp/small.png" "$tmp/x.flo"
if [ $rc = 1 ] && grep -q "one size.*584x388.*300x200" "$tmp/out"; then ok "flow on different sizes: $(cat "$tmp/out")"
else bad "flow on different sizes (rc $rc)" "$(cat "$tmp/out")"; fi
run flow --preset slow "$MB/frame10.png" "$MB/frame11.png" "$tmp/x.flo"
if [ $rc = 2 ] && grep -q "ultrafast, fast or medium" "$tmp/out"; then ok "flow --preset slow: usage error"
else bad "flow --preset slow (rc $rc)" "$(cat "$tmp/out")"; fi
run flow "$TOP/Makefile" "$MB/frame11.png" "$tmp/x.flo"
if [ $rc = 1 ] && grep -q "Makefile: cannot open" "$tmp/out"; then ok "flow on a non-picture: $(cat "$tmp/out")"
else bad "flow on a non-picture (rc $rc)" "$(cat "$tmp/out")"; fi
head -c 100000 "$tmp/rw.flo" > "$tmp/trunc.flo"
run metrics --flo "$MB/flow10.flo" "$tmp/trunc.flo"
if [ $rc = 1 ] && grep -q "trunc.flo: truncated" "$tmp/out"; then ok "truncated .flo: $(cat "$tmp/out")"
else bad "truncated .flo (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics --flo "$MB/frame10.png" "$tmp/rw.flo"
if [ $rc = 1 ] && grep -q "not a Middlebury .flo" "$tmp/out"; then ok "a PNG as ground truth: $(cat "$tmp/out")"
else bad "a PNG as ground truth (rc $rc)" "$(cat "$tmp/out")"; fi

# --- 3. test clips (FFV1: lossless, so decoded frames are what was encoded)
ff -loop 1 -i "$MEDIA/chelsea.png" -frames:v 8 -vf crop=160:120:60:40 -c:v ffv1 "$tmp/still.mkv" &&
ff -i "$tmp/still.mkv" -vf "noise=alls=12:allf=t,eq=brightness='0.04*sin(2*n)':eval=frame" \
   -c:v ffv1 "$tmp/still_flicker.mkv" &&
ff -i "$MEDIA/tree.avi" -frames:v 12 -vf crop=160:120:80:60 -c:v ffv1 "$tmp/tree.mkv" &&
ff -i "$tmp/tree.mkv" -vf "noise=alls=12:allf=t,eq=brightness='0.04*sin(2*n)':eval=frame" \
   -c:v ffv1 "$tmp/tree_flicker.mkv" &&
ff -i "$tmp/tree.mkv" -vf scale=iw*4:ih*4:flags=bicubic -c:v ffv1 "$tmp/tree_x4.mkv" &&
ff -i "$tmp/tree.mkv" -frames:v 10 -c:v ffv1 "$tmp/tree10.mkv" ||
  { bad "making the test clips with $FF"; echo "$pass passed, $fail failed"; exit 1; }

# --- 4. a still against itself: nothing moves, nothing changes
run metrics "$tmp/still.mkv" "$tmp/still.mkv"
o=$(overall "$tmp/out" still.mkv)
if [ $rc = 0 ] && [ "$o" = "0.000000 100.00 0.0000 0.0000" ] &&
   [ "$(grep -c '^still.mkv ' "$tmp/out")" = 8 ]; then
  ok "still vs itself: E_warp 0, all pixels valid, flicker 0 (7 frame lines + overall)"
else bad "still vs itself (rc $rc): '$o'" "$(cat "$tmp/out")"; fi

# --- 5. added per-frame noise and brightness flicker is seen by both measures
run metrics --label clean --label flicker "$tmp/still.mkv" "$tmp/still.mkv" "$tmp/still_flicker.mkv"
o=$(overall "$tmp/out" flicker)
set -- $o
if [ $rc = 0 ] && [ $# = 4 ] && cmp_f "$1" ">" 0.005 && cmp_f "$3" ">" 5 && cmp_f "$4" ">" 2; then
  ok "still vs noisy+flickering copy: E_warp $1, flicker mad $3, dluma $4"
else bad "still vs noisy+flickering copy (rc $rc): '$o'" "$(cat "$tmp/out")"; fi

run metrics --plot "$tmp/tree.svg" --label same --label flicker --label "bicubic x4" \
  "$tmp/tree.mkv" "$tmp/tree.mkv" "$tmp/tree_flicker.mkv" "$tmp/tree_x4.mkv"
cp "$tmp/out" "$tmp/tree.txt"
same=$(overall "$tmp/tree.txt" same | cut -d' ' -f1)
flick=$(overall "$tmp/tree.txt" flicker | cut -d' ' -f1)
x4=$(awk '$1 == "bicubic" && $3 == "all" { print $4 }' "$tmp/tree.txt")
if [ $rc = 0 ] && [ -n "$same" ] && [ -n "$flick" ] && cmp_f "$flick" ">" "3 * $same"; then
  ok "tree.avi: E_warp of the flickering copy $flick > 3x the original's $same"
else bad "tree.avi flicker vs same (rc $rc): '$flick' vs '$same'" "$(cat "$tmp/tree.txt")"; fi
mad_same=$(overall "$tmp/tree.txt" same | cut -d' ' -f3)
mad_flick=$(overall "$tmp/tree.txt" flicker | cut -d' ' -f3)
if [ -n "$mad_same" ] && cmp_f "$mad_flick" ">" "2 * $mad_same"; then
  ok "tree.avi: flicker index of the flickering copy $mad_flick > 2x the original's $mad_same"
else bad "tree.avi flicker index: '$mad_flick' vs '$mad_same'" "$(cat "$tmp/tree.txt")"; fi

# --- 6. a 4x larger output (an upscaler's): flow resized, mask by nearest;
# a plain bicubic upscale is as consistent as its input
if grep -q "tree_x4.mkv 640x480 (flow resized x4 x4, mask nearest)" "$tmp/tree.txt" &&
   [ -n "$x4" ] && cmp_f "$x4" "<" "1.5 * $same" && cmp_f "$x4" ">" "0.5 * $same"; then
  ok "4x output: flow resized, E_warp $x4 close to the input's $same"
else bad "4x output: E_warp '$x4', input '$same'" "$(cat "$tmp/tree.txt")"; fi

# --- 7. the SVG chart: one polyline per output in the E_warp panel, two
# (solid, dashed) in the flicker one, the labels, and it renders
n_lines=$(grep -c '<polyline' "$tmp/tree.svg" 2>/dev/null)
if [ "$n_lines" = 9 ] && grep -q '>bicubic x4<' "$tmp/tree.svg" && grep -q '>flicker<' "$tmp/tree.svg"; then
  ok "--plot: SVG with 9 polylines and the --label names"
else bad "--plot SVG ($n_lines polylines)" "$(head -c 600 "$tmp/tree.svg" 2>&1)"; fi
if command -v rsvg-convert >/dev/null && rsvg-convert "$tmp/tree.svg" -o "$tmp/tree.png" 2>"$tmp/err" &&
   [ "$("$FP" -v error -show_entries stream=width -of csv=p=0 "$tmp/tree.png")" = 860 ]; then
  ok "rsvg-convert renders the SVG (860 px wide)"
else bad "rsvg-convert on the SVG (tools/install-deps.sh installs librsvg2-bin)" "$(cat "$tmp/err")"; fi

# --- 8. errors
run metrics "$tmp/tree.mkv" "$tmp/tree10.mkv"
if [ $rc = 1 ] && grep -q "frame counts differ: .*tree.mkv has 12 frames, .*tree10.mkv has 10" "$tmp/out"; then
  ok "mismatched frame counts: $(sed "s|$tmp/||g; s|$TOP/||g" "$tmp/out")"
else bad "mismatched frame counts (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics "$tmp/tree10.mkv" "$tmp/tree.mkv"
if [ $rc = 1 ] && grep -q "tree10.mkv has 10 frames, .*tree.mkv has 12" "$tmp/out"; then
  ok "mismatched frame counts, output longer: error"
else bad "mismatched frame counts, output longer (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics "$tmp/tree.mkv" "$TOP/Makefile"
if [ $rc = 1 ] && grep -q "Makefile: cannot open" "$tmp/out"; then ok "unreadable output video: $(sed "s|$tmp/||g; s|$TOP/||g" "$tmp/out")"
else bad "unreadable output video (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics "$tmp/missing.mkv" "$tmp/tree.mkv"
if [ $rc = 1 ] && grep -q "missing.mkv: cannot open: No such file" "$tmp/out"; then ok "missing input video: error"
else bad "missing input video (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics "$MB/frame10.png" "$MB/frame11.png"
if [ $rc = 1 ] && grep -q "1 frame(s)" "$tmp/out"; then ok "single pictures as videos: error"
else bad "single pictures as videos (rc $rc)" "$(cat "$tmp/out")"; fi
run metrics --label a --label b "$tmp/tree.mkv" "$tmp/tree.mkv"
if [ $rc = 2 ] && grep -q "more --label than output videos" "$tmp/out"; then ok "too many --label: usage error"
else bad "too many --label (rc $rc)" "$(cat "$tmp/out")"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
