#!/bin/sh
# Copies OpenCV's sample videos (Debian package opencv-doc) into build/media/:
# tree.avi (a tree in wind, 320x240) and vtest.avi (pedestrians, 768x576).
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT="$TOP/build/media"
DATA=/usr/share/doc/opencv-doc/examples/data
die() { echo "get-opencv-samples.sh: $*" >&2; exit 1; }

if ! dpkg-query -W -f='${Status}' opencv-doc 2>/dev/null | grep -q "ok installed"; then
  echo "get-opencv-samples.sh: installing opencv-doc" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends opencv-doc >&2 ||
    die "cannot install opencv-doc"
fi
mkdir -p "$OUT"
for f in tree.avi vtest.avi; do
  [ -s "$OUT/$f" ] && { echo "$OUT/$f"; continue; }
  if [ -f "$DATA/$f" ]; then cp "$DATA/$f" "$OUT/$f.tmp"
  elif [ -f "$DATA/$f.gz" ]; then gzip -dc "$DATA/$f.gz" > "$OUT/$f.tmp"
  else die "$f not found in $DATA (opencv-doc layout changed?)"; fi
  mv "$OUT/$f.tmp" "$OUT/$f"
  echo "$OUT/$f"
done
