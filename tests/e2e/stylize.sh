#!/bin/sh
# End-to-end tests of visgen=mode=stylize (latent-diffusion img2img) on real
# footage: 6 frames of OpenCV's tree.avi scaled to 64x48, through the
# random-weight tiny SD2 diffusers folder in ../shared/data (fast, and a
# result that cannot come from the input alone).
# One line per test; the last line is "N passed, M failed".
TOP=$(cd "$(dirname "$0")/../.." && pwd)
FF="$TOP/build/bin/ffmpeg"
FP="$TOP/build/bin/ffprobe"
VG="$TOP/build/bin/visgen"
PY=/usr/bin/python3
TREE="$TOP/build/media/tree.avi"
MODEL="$TOP/../shared/data/diffusion/tiny-sd2"
. "$TOP/tests/e2e/lib.sh"
# Raw planar float frames of a graph; -fps_mode passthrough keeps one output
# frame per filtered frame.
raw() { ff -lavfi "$1" -fps_mode passthrough -f rawvideo -pix_fmt gbrpf32le "$2"; }
# compare A B FRAMES: per-frame mean |A - B| of two gbrpf32le 64x48 files.
compare() {
  $PY - "$1" "$2" "$3" <<'PYEOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], '<f4'); b = np.fromfile(sys.argv[2], '<f4')
n = int(sys.argv[3]); fs = 64 * 48 * 3
if a.size != n * fs or b.size != n * fs:
    print("sizes %d %d, want %d" % (a.size, b.size, n * fs)); sys.exit(1)
a = a.reshape(n, fs).astype(np.float64); b = b.reshape(n, fs)
print(" ".join("%.3g" % x for x in np.abs(a - b).mean(axis=1)))
PYEOF
}

for f in "$FF" "$FP"; do
  [ -x "$f" ] || { echo "FAIL setup: $f missing (make ffmpeg)"; echo "0 passed, 1 failed"; exit 1; }
done
[ -s "$TREE" ] || "$TOP/media/get-opencv-samples.sh" >/dev/null ||
  { echo "FAIL setup: cannot get $TREE"; echo "0 passed, 1 failed"; exit 1; }
[ -f "$MODEL/model_index.json" ] ||
  { echo "FAIL setup: $MODEL (tiny SD2 diffusers folder) missing"; echo "0 passed, 1 failed"; exit 1; }

src="movie=$TREE,trim=end_frame=6,scale=64:48"
st="visgen=mode=stylize:model=$MODEL:prompt='a tree in autumn, oil painting':steps=4:strength=0.5:seed=42"

# --- 1. frame count, pts, size, format and SAR kept (yuv420p through the float conversion)
probe "$src,format=yuv420p" pts,width,height,pix_fmt,sample_aspect_ratio > "$tmp/in.txt" 2>"$tmp/err"
probe "$src,format=yuv420p,$st" pts,width,height,pix_fmt,sample_aspect_ratio > "$tmp/out.txt" 2>>"$tmp/err"
if [ "$(wc -l < "$tmp/in.txt")" = 6 ] && cmp -s "$tmp/in.txt" "$tmp/out.txt"; then
  ok "6 frames in, 6 out; pts, size, pix_fmt, SAR kept ($(sed -n '1s/^[^|]*|//p' "$tmp/out.txt"))"
else bad "frame count/pts/size/pix_fmt" "$(paste -d' ' "$tmp/in.txt" "$tmp/out.txt"; cat "$tmp/err")"; fi

# A real encode through the command line: EOF flushes every frame.
if ff -i "$TREE" -frames:v 6 -vf "scale=64:48,$st" -c:v libx264 -preset ultrafast "$tmp/st.mp4" 2>"$tmp/err" &&
   [ "$("$FP" -v error -count_frames -select_streams v -show_entries stream=nb_read_frames,width,height -of csv=p=0 "$tmp/st.mp4")" = "64,48,6" ]; then
  ok "ffmpeg -vf visgen=mode=stylize encode: 6 frames 64x48"
else bad "ffmpeg -vf visgen=mode=stylize encode" "$(cat "$tmp/err")"; fi

# --- 2. the output is the model's, not the input; the same seed repeats exactly
raw "$src,format=gbrpf32le" "$tmp/in.raw" 2>"$tmp/err"
raw "$src,format=gbrpf32le,$st" "$tmp/a.raw" 2>>"$tmp/err"
raw "$src,format=gbrpf32le,$st" "$tmp/b.raw" 2>>"$tmp/err"
if d=$(compare "$tmp/in.raw" "$tmp/a.raw" 6) &&
   $PY -c "import sys; sys.exit(0 if min(map(float, sys.argv[1:])) > 0.01 else 1)" $d; then
  ok "output differs from input (per-frame mean |diff| $d)"
else bad "output differs from input (mean |diff| > 0.01)" "$d $(cat "$tmp/err")"; fi
if [ -s "$tmp/a.raw" ] && cmp -s "$tmp/a.raw" "$tmp/b.raw"; then ok "same seed, two runs: identical output"
else bad "same seed, two runs: identical output" "$(compare "$tmp/a.raw" "$tmp/b.raw" 6)"; fi

# --- 3. seed_policy=increment: frame 0 uses the seed itself, frame n seed + n
raw "$src,format=gbrpf32le,$st:seed_policy=increment" "$tmp/c.raw" 2>"$tmp/err"
if d=$(compare "$tmp/a.raw" "$tmp/c.raw" 6) &&
   $PY -c "import sys; v = list(map(float, sys.argv[1:])); sys.exit(0 if v[0] == 0 and min(v[1:]) > 0 else 1)" $d; then
  ok "seed_policy=increment vs fixed: frame 0 equal, frames 1-5 differ ($d)"
else bad "seed_policy=increment vs fixed" "$d $(cat "$tmp/err")"; fi

# --- 4. runtime command: these frames are at 0, 0.73, 1.13, 1.6, 2.07 and
# 2.47 s (tree.avi drops frames), so a new seed at 1 s reaches frames 2-5
raw "$src,format=gbrpf32le,sendcmd=c='1.0 visgen seed 7',$st" "$tmp/d.raw" 2>"$tmp/err"
if d=$(compare "$tmp/a.raw" "$tmp/d.raw" 6) &&
   $PY -c "import sys; v = list(map(float, sys.argv[1:])); sys.exit(0 if max(v[:2]) == 0 and min(v[2:]) > 0 else 1)" $d; then
  ok "process_command seed=7 at 1 s: frames 0-1 unchanged, 2-5 differ ($d)"
else bad "process_command seed" "$d $(cat "$tmp/err")"; fi
raw "$src,format=gbrpf32le,sendcmd=c='1.0 visgen prompt watercolor',$st" "$tmp/d.raw" 2>"$tmp/err"
if d=$(compare "$tmp/a.raw" "$tmp/d.raw" 6) &&
   $PY -c "import sys; v = list(map(float, sys.argv[1:])); sys.exit(0 if max(v[:2]) == 0 and min(v[2:]) > 0 else 1)" $d; then
  ok "process_command prompt=watercolor at 1 s: frames 0-1 unchanged, 2-5 differ ($d)"
else bad "process_command prompt" "$d $(cat "$tmp/err")"; fi
# 4 steps x 0.01 runs no step: refused, and the frames keep the old strength.
raw "$src,format=gbrpf32le,sendcmd=c='1.0 visgen strength 0.01',$st" "$tmp/d.raw" 2>"$tmp/err"
if cmp -s "$tmp/a.raw" "$tmp/d.raw" && grep -q "command strength '0.01' refused" "$tmp/err"; then
  ok "process_command strength=0.01 refused, output unchanged: '$(grep -m1 refused "$tmp/err" | cut -c1-90)'"
else bad "process_command strength=0.01 refused" "$(compare "$tmp/a.raw" "$tmp/d.raw" 6) $(cat "$tmp/err")"; fi

# --- 5. timeline: a disabled frame passes through untouched
raw "$src,format=gbrpf32le,$st:enable='gte(n,1)'" "$tmp/e.raw" 2>"$tmp/err"
if d=$(compare "$tmp/in.raw" "$tmp/e.raw" 6) &&
   $PY -c "import sys; v = list(map(float, sys.argv[1:])); sys.exit(0 if v[0] == 0 and min(v[1:]) > 0.01 else 1)" $d; then
  ok "timeline enable='gte(n,1)': frame 0 is the input, the rest stylized ($d)"
else bad "timeline enable=" "$d $(cat "$tmp/err")"; fi

# --- 6. the library's img2img CLI on the same decoded frame
if "$VG" 2>&1 | grep -q img2img; then
  ff -lavfi "$src,trim=end_frame=1" -f rawvideo -pix_fmt gbrpf32le "$tmp/f0.raw" 2>"$tmp/err"
  if "$VG" img2img "$MODEL" "$tmp/f0.raw" "$tmp/lib.raw" --in-size 64x48 \
       --prompt 'a tree in autumn, oil painting' --steps 4 --strength 0.5 --seed 42 >>"$tmp/err" 2>&1 &&
     head -c $((64 * 48 * 12)) "$tmp/a.raw" > "$tmp/a0.raw" &&
     d=$(compare "$tmp/lib.raw" "$tmp/a0.raw" 1) &&
     $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-6 else 1)" $d; then
    ok "filter == visgen img2img on the first frame (mean |diff| $d)"
  else bad "filter == visgen img2img on the first frame" "$d $(cat "$tmp/err")"; fi
else
  echo "note: build/bin/visgen has no img2img command, filter vs CLI not compared"
fi

# --- 7. bad options fail with a clear message
expect_fail "strength=2" "strength" -i "$TREE" -frames:v 1 -vf "scale=64:48,$st:strength=2"
expect_fail "sampler=bogus" "bogus" -i "$TREE" -frames:v 1 -vf "scale=64:48,$st:sampler=bogus"
expect_fail "model=/nonexistent" "/nonexistent" -i "$TREE" -frames:v 1 -vf "scale=64:48,visgen=mode=stylize:model=/nonexistent"
expect_fail "mode=stylize without model" "needs model" -i "$TREE" -frames:v 1 -vf "scale=64:48,visgen=mode=stylize"
expect_fail "size=60x40" "multiples of 8" -i "$TREE" -frames:v 1 -vf "scale=64:48,$st:size=60x40"
expect_fail "seed_policy=bogus" "seed_policy" -i "$TREE" -frames:v 1 -vf "scale=64:48,$st:seed_policy=bogus"

# Options of the other mode: a warning, not an error.
if "$FF" -nostdin -hide_banner -loglevel warning -i "$TREE" -frames:v 1 \
     -vf "crop=16:16,visgen=prompt=x:steps=3" -f null - > "$tmp/err" 2>&1 &&
   grep -q "options prompt, steps ignored with mode=upscale" "$tmp/err"; then
  ok "stylize options with mode=upscale: warning '$(grep -m1 ignored "$tmp/err" | cut -c1-90)'"
else bad "stylize options with mode=upscale warn" "$(cat "$tmp/err")"; fi

# --- 8. documentation: every option is listed by ffmpeg -h filter=visgen
"$FF" -hide_banner -h filter=visgen > "$tmp/help" 2>&1
missing=""
for o in stylize prompt negative_prompt strength steps cfg sampler schedule spacing prediction \
         seed seed_policy fixed increment size vae taesd_encoder taesd_decoder tokenizer clip_skip; do
  grep -q "^ *$o .*[a-z]" "$tmp/help" || missing="$missing $o"
done
if [ -z "$missing" ]; then ok "ffmpeg -h filter=visgen documents every stylize option"
else bad "ffmpeg -h filter=visgen lacks:$missing" "$(cat "$tmp/help")"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
