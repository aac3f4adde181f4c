#!/bin/sh
# Copies scikit-image's sample photos (Debian package python3-skimage) into
# build/media/: astronaut, coffee, chelsea (cat), rocket, motorcycle_left.
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT="$TOP/build/media"
die() { echo "get-skimage-photos.sh: $*" >&2; exit 1; }

if ! dpkg-query -W -f='${Status}' python3-skimage 2>/dev/null | grep -q "ok installed"; then
  echo "get-skimage-photos.sh: installing python3-skimage" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-skimage >&2 ||
    die "cannot install python3-skimage"
fi
# The data folder ships inside the package; ask dpkg rather than python.
DATA=$(dpkg -L python3-skimage | grep '/skimage/data/astronaut.png$' | head -n 1)
DATA=${DATA%/astronaut.png}
[ -n "$DATA" ] && [ -d "$DATA" ] || die "no skimage/data folder in python3-skimage"
mkdir -p "$OUT"
for f in astronaut.png coffee.png chelsea.png rocket.jpg motorcycle_left.png; do
  [ -f "$DATA/$f" ] || die "$DATA/$f missing"
  cmp -s "$DATA/$f" "$OUT/$f" || cp "$DATA/$f" "$OUT/$f"
  echo "$OUT/$f"
done
