#!/bin/sh
# A synthetic camera move over a real photo: 48 frames of 320x180 at 24 fps
# panning and zooming across scikit-image's coffee.png, made with
# build/bin/ffmpeg into build/media/pan.mp4 (H.264, yuv420p).
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT="$TOP/build/media"
FFMPEG="$TOP/build/bin/ffmpeg"
die() { echo "make-pan.sh: $*" >&2; exit 1; }

[ -x "$FFMPEG" ] || die "$FFMPEG missing (make ffmpeg)"
[ -f "$OUT/coffee.png" ] || "$TOP/media/get-skimage-photos.sh" >/dev/null
if [ ! -s "$OUT/pan.mp4" ] || [ "$OUT/coffee.png" -nt "$OUT/pan.mp4" ]; then
  # Upsize first so zoompan's integer crop positions move smoothly.
  "$FFMPEG" -nostdin -loglevel error -y -loop 1 -i "$OUT/coffee.png" \
    -vf "scale=1280:-2,zoompan=z='1.2+0.01*on':x='(iw-iw/zoom)*on/47':y='(ih-ih/zoom)/2':d=48:s=320x180:fps=24,format=yuv420p" \
    -frames:v 48 -c:v libx264 -crf 16 -preset medium "$OUT/pan.tmp.mp4" ||
    die "ffmpeg failed"
  mv "$OUT/pan.tmp.mp4" "$OUT/pan.mp4"
fi
echo "$OUT/pan.mp4"
