#!/bin/sh
# End-to-end tests of temporal consistency in the visgen filter (flow=dis,
# keyint, scene cuts) on real footage (OpenCV's tree.avi), measured with
# `visgen metrics` (E_warp of Lai et al. 2018, flicker index).
# One line per test; the last line is "N passed, M failed".
TOP=$(cd "$(dirname "$0")/../.." && pwd)
FF="$TOP/build/bin/ffmpeg"
FP="$TOP/build/bin/ffprobe"
VG="$TOP/build/bin/visgen"
TREE="$TOP/build/media/tree.avi"
MODEL="$TOP/../shared/data/diffusion/tiny-sd2"
. "$TOP/tests/e2e/lib.sh"
# Lossless, 16 bits per channel: what the metrics read must be what the
# filter made (rawvideo in .nut would fall back to a 5-bit format).
keep() { ff -i "$1" -fps_mode passthrough -vf "$2" -c:v ffv1 -pix_fmt gbrp16le "$3"; }
# metrics INPUT OUTPUT COLUMN: the overall value of a `visgen metrics` column
metric() {
  "$VG" metrics "$1" "$2" > "$tmp/metrics.txt" 2>&1 || { cat "$tmp/metrics.txt" >&2; return 1; }
  awk -v col="$3" '/^output/ { for (i = 1; i <= NF; i++) if ($i == col) c = i }
                   $2 == "all" && c { print $c; exit }' "$tmp/metrics.txt"
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

for f in "$FF" "$FP" "$VG"; do
  [ -x "$f" ] || { echo "FAIL setup: $f missing (make all ffmpeg)"; echo "0 passed, 1 failed"; exit 1; }
done
[ -s "$TREE" ] || "$TOP/media/get-opencv-samples.sh" >/dev/null ||
  { echo "FAIL setup: cannot get $TREE"; echo "0 passed, 1 failed"; exit 1; }
[ -f "$MODEL/model_index.json" ] ||
  { echo "FAIL setup: $MODEL (tiny SD2 diffusers folder) missing"; echo "0 passed, 1 failed"; exit 1; }

st="visgen=mode=stylize:model=$MODEL:prompt='an oil painting':steps=4:strength=0.5:seed=42"
ff -i "$TREE" -frames:v 24 -fps_mode passthrough -vf scale=160:120 -c:v ffv1 "$tmp/in.mkv" 2>"$tmp/err" ||
  bad "cut the test clip" "$(cat "$tmp/err")"

# --- 1. stylize: fusion at the defaults halves E_warp (at least) against per-frame output
keep "$tmp/in.mkv" "format=gbrpf32le,$st:flow=off" "$tmp/st_off.mkv" 2>"$tmp/err"
keep "$tmp/in.mkv" "format=gbrpf32le,$st" "$tmp/st_dis.mkv" 2>>"$tmp/err"
e_off=$(metric "$tmp/in.mkv" "$tmp/st_off.mkv" E_warp 2>>"$tmp/err")
e_dis=$(metric "$tmp/in.mkv" "$tmp/st_dis.mkv" E_warp 2>>"$tmp/err")
if [ -n "$e_off" ] && [ -n "$e_dis" ] && awk -v a="$e_dis" -v b="$e_off" 'BEGIN { exit !(b > 0 && a <= 0.5 * b) }'; then
  ok "stylize E_warp: flow=dis $e_dis <= 50% of flow=off $e_off ($(awk -v a="$e_dis" -v b="$e_off" 'BEGIN { printf "%.0f%%", 100 * a / b }'))"
else bad "stylize E_warp flow=dis ($e_dis) <= 50% of flow=off ($e_off)" "$(cat "$tmp/err")"; fi

# --- 1b. under fast motion (a photo panned 8 px per frame) the noise carried
# along the flow (noise=auto with flow=dis) beats noise that stays on the screen
ff -loop 1 -i "$TOP/../shared/data/images/kodim23.png" -vf "crop=256:192:'8*n':100" -frames:v 12 \
   -c:v ffv1 "$tmp/pan.mkv" 2>"$tmp/err"
keep "$tmp/pan.mkv" "format=gbrpf32le,$st:flow=off" "$tmp/pan_off.mkv" 2>>"$tmp/err"
keep "$tmp/pan.mkv" "format=gbrpf32le,$st:noise=seed" "$tmp/pan_seed.mkv" 2>>"$tmp/err"
keep "$tmp/pan.mkv" "format=gbrpf32le,$st" "$tmp/pan_warp.mkv" 2>>"$tmp/err"
p_off=$(metric "$tmp/pan.mkv" "$tmp/pan_off.mkv" E_warp) p_seed=$(metric "$tmp/pan.mkv" "$tmp/pan_seed.mkv" E_warp)
p_warp=$(metric "$tmp/pan.mkv" "$tmp/pan_warp.mkv" E_warp)
if [ -n "$p_warp" ] && awk -v w="$p_warp" -v s="$p_seed" -v o="$p_off" 'BEGIN { exit !(o > 0 && w < 0.5 * s && s <= 0.5 * o) }'; then
  ok "8 px/frame pan, E_warp: per-frame $p_off, fused with seed noise $p_seed, with warped noise $p_warp"
else bad "pan E_warp: warped noise ($p_warp) < 50% of seed noise ($p_seed) <= 50% of per-frame ($p_off)" "$(cat "$tmp/err")"; fi

# --- 2. upscale: fusion keeps the quality. A clip shrunk by the model's
# factor is upscaled per frame and with fusion; PSNR against the original.
S=$(probe "movie=$TREE,trim=end_frame=1,crop=16:16,visgen" width | sed -n 's/^width=//p')
S=$((${S:-0} / 16))
W=$((320 / S)) H=$((240 / S))
ff -i "$TREE" -frames:v 16 -fps_mode passthrough -vf "scale=$W:$H:flags=bicubic" -c:v ffv1 "$tmp/small.mkv" 2>"$tmp/err"
ff -i "$TREE" -frames:v 16 -fps_mode passthrough -c:v ffv1 "$tmp/orig.mkv" 2>>"$tmp/err"
psnr() { # upscaled video -> mean PSNR (dB) against orig.mkv
  ff -i "$1" -i "$tmp/orig.mkv" -lavfi "[0][1]psnr=stats_file=$tmp/psnr.log" -f null - 2>>"$tmp/err" || return 1
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^psnr_avg:/) { sub("psnr_avg:", "", $i); s += $i; n++ } }
       END { if (n) printf "%.3f\n", s / n }' "$tmp/psnr.log"
}
keep "$tmp/small.mkv" "format=gbrpf32le,visgen=flow=off" "$tmp/up_off.mkv" 2>>"$tmp/err"
keep "$tmp/small.mkv" "format=gbrpf32le,visgen" "$tmp/up_dis.mkv" 2>>"$tmp/err"
p_off=$(psnr "$tmp/up_off.mkv") p_dis=$(psnr "$tmp/up_dis.mkv")
if [ -n "$p_off" ] && [ -n "$p_dis" ] && awk -v a="$p_dis" -v b="$p_off" 'BEGIN { exit !(a >= b - 0.3) }'; then
  ok "upscale x$S PSNR vs original: fused $p_dis dB, per-frame $p_off dB (drop <= 0.3 dB)"
else bad "upscale PSNR fused ($p_dis) >= per-frame ($p_off) - 0.3 dB" "$(cat "$tmp/err")"; fi
ue_off=$(metric "$tmp/small.mkv" "$tmp/up_off.mkv" E_warp) ue_dis=$(metric "$tmp/small.mkv" "$tmp/up_dis.mkv" E_warp)
if [ -n "$ue_dis" ] && le "$ue_dis" "$ue_off"; then ok "upscale E_warp: fused $ue_dis <= per-frame $ue_off"
else bad "upscale E_warp fused ($ue_dis) <= per-frame ($ue_off)"; fi

# --- 3. a still picture repeated for 48 frames does not flicker
ff -i "$TREE" -vf "trim=start_frame=5:end_frame=6,scale=160:120,loop=loop=47:size=1,setpts=N/24/TB" \
   -fps_mode passthrough -c:v ffv1 "$tmp/still.mkv" 2>"$tmp/err"
keep "$tmp/still.mkv" "format=gbrpf32le,$st" "$tmp/still_st.mkv" 2>>"$tmp/err"
n=$("$FP" -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$tmp/still_st.mkv")
fl=$(metric "$tmp/still.mkv" "$tmp/still_st.mkv" flicker_mad)
if [ "$n" = 48 ] && [ -n "$fl" ] && le "$fl" 0.5; then ok "still x48 stylized: flicker $fl/255 <= 0.5/255"
else bad "still x48 stylized: 48 frames ($n), flicker ($fl) <= 0.5/255" "$(cat "$tmp/err")"; fi

# --- 4. keyint: the network on a quarter of the frames; every frame out with its pts
for mode in "$st" "visgen"; do
  name=${mode%%=*}; [ "$mode" = visgen ] && name=upscale || name=stylize
  for n in 12 10; do
    g="movie=$TREE,trim=end_frame=$n,scale=96:72"
    probe "$g" pts > "$tmp/in.txt" 2>"$tmp/err"
    sep=":"; [ "$mode" = visgen ] && sep="="
    probe "$g,$mode${sep}keyint=4" pts:frame_tags=lavfi.visgen.keyframe > "$tmp/out.txt" 2>>"$tmp/err"
    keys=$(grep -c 'keyframe=1' "$tmp/out.txt")
    if [ "$(wc -l < "$tmp/in.txt")" = "$n" ] && [ "$(cut -d'|' -f1 "$tmp/out.txt")" = "$(cat "$tmp/in.txt")" ] &&
       [ "$keys" -le $(((n + 3) / 4)) ]; then
      ok "$name keyint=4, $n frames: $n out, pts kept, $keys network calls (<= $(((n + 3) / 4)))"
    else bad "$name keyint=4, $n frames: count/pts/keyframes ($keys)" "$(paste -d' ' "$tmp/in.txt" "$tmp/out.txt"; cat "$tmp/err")"; fi
  done
done

# --- 5. a scene cut (two unrelated crops joined) restarts: keyframe, nothing carried over
g="movie=$TREE,trim=end_frame=12,split[a][b];[a]trim=end_frame=6,crop=96:72:0:0[a1];[b]trim=start_frame=6,crop=96:72:200:150,hflip[b1];[a1][b1]concat"
probe "$g,visgen=keyint=4" pts:frame_tags=lavfi.visgen.keyframe,lavfi.visgen.scenecut > "$tmp/cut.txt" 2>"$tmp/err"
cuts=$(grep -n 'scenecut=1' "$tmp/cut.txt" | cut -d: -f1 | tr '\n' ' ')
if [ "$cuts" = "7 " ] && sed -n 7p "$tmp/cut.txt" | grep -q 'keyframe=1' && [ "$(wc -l < "$tmp/cut.txt")" = 12 ]; then
  ok "scene cut at frame 6 detected and made a keyframe (12 frames out)"
else bad "scene cut at frame 6 (lines with a cut: $cuts)" "$(cat "$tmp/cut.txt" "$tmp/err")"; fi

# --- 6. metadata: every frame says what happened to it
probe "movie=$TREE,trim=end_frame=3,scale=96:72,visgen" pts:frame_tags > "$tmp/meta.txt" 2>"$tmp/err"
if [ "$(grep -c 'lavfi.visgen.flow_mean=.*lavfi.visgen.occluded=' "$tmp/meta.txt")" = 3 ]; then
  ok "metadata lavfi.visgen.{keyframe,scenecut,flow_mean,occluded,scene_score} on every frame"
else bad "metadata" "$(cat "$tmp/meta.txt" "$tmp/err")"; fi

# --- 7. timeline with a queue: disabled frames flush it, order and count kept
g="movie=$TREE,trim=end_frame=10,scale=96:72"
probe "$g" pts > "$tmp/in.txt" 2>"$tmp/err"
probe "$g,visgen=keyint=4:enable='between(n,3,4)+gte(n,8)'" pts > "$tmp/out.txt" 2>>"$tmp/err"
if [ "$(cat "$tmp/in.txt")" = "$(cat "$tmp/out.txt")" ]; then ok "timeline + keyint=4: 10 frames, pts in order"
else bad "timeline + keyint=4" "$(paste -d' ' "$tmp/in.txt" "$tmp/out.txt"; cat "$tmp/err")"; fi

# --- 8. runtime command: temporal=0 from 1 s on turns fusion off for the later frames
g="movie=$TREE,trim=end_frame=6,scale=96:72,format=gbrpf32le"
if ff -lavfi "$g,visgen" -fps_mode passthrough -f rawvideo "$tmp/a.raw" 2>"$tmp/err" &&
   ff -lavfi "$g,sendcmd=c='1.0 visgen temporal 0',visgen" -fps_mode passthrough -f rawvideo "$tmp/b.raw" 2>>"$tmp/err" &&
   ff -lavfi "$g,visgen=flow=off" -fps_mode passthrough -f rawvideo "$tmp/c.raw" 2>>"$tmp/err" &&
   [ -s "$tmp/a.raw" ] && ! cmp -s "$tmp/a.raw" "$tmp/b.raw" &&
   [ "$(tail -c $((192 * 144 * 12)) "$tmp/b.raw" | md5sum)" = "$(tail -c $((192 * 144 * 12)) "$tmp/c.raw" | md5sum)" ]; then
  ok "process_command temporal=0 at 1 s: the last frame equals per-frame output"
else bad "process_command temporal" "$(cat "$tmp/err")"; fi

# --- 9. bad temporal options fail with one clear message
expect_fail "keyint=4:flow=off" "needs optical flow" -i "$TREE" -frames:v 2 -vf "scale=64:48,visgen=keyint=4:flow=off"
expect_fail "flow_downscale=16 at 64x48" "flow_downscale" -i "$TREE" -frames:v 2 -vf "scale=64:48,visgen=flow_downscale=16"
expect_fail "temporal=2" "temporal" -i "$TREE" -frames:v 2 -vf "scale=64:48,visgen=temporal=2"
expect_fail "noise=warped:flow=off" "needs flow=dis" -i "$TREE" -frames:v 1 -vf "scale=64:48,$st:noise=warped:flow=off"
expect_fail "flow=bogus" "bogus" -i "$TREE" -frames:v 2 -vf "scale=64:48,visgen=flow=bogus"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
