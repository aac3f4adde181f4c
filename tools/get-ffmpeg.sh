#!/bin/sh
# Fetches Debian's FFmpeg source package into build/src/ and prints the tree's
# path on the last line of stdout:
#   tools/get-ffmpeg.sh            bookworm's ffmpeg (5.1.x), the tree we build
#   tools/get-ffmpeg.sh --trixie   trixie's ffmpeg (7.1.x), only used to check
#                                  that ffmpeg-patches/ and filter/ fit 7.1 too
# Idempotent: an already unpacked tree is reused. Needs apt with deb-src for
# the suite; a deb-src-only entry is added when missing (it does not change
# which binary packages apt installs).
set -e
TOP=$(cd "$(dirname "$0")/.." && pwd)
DEST="$TOP/build/src"
suite=bookworm
series=5.1
case "$1" in
  "") ;;
  --trixie) suite=trixie; series=7.1 ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "get-ffmpeg.sh: unknown option '$1' (use --trixie or nothing)" >&2; exit 1 ;;
esac

die() { echo "get-ffmpeg.sh: $*" >&2; exit 1; }

# Reuse a tree unpacked by an earlier run.
for d in "$DEST"/ffmpeg-"$series".*; do
  if [ -f "$d/libavfilter/allfilters.c" ] && [ -f "$d/.visgen-unpacked" ]; then
    echo "$d"; exit 0
  fi
done

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
command -v dpkg-source >/dev/null ||
  { echo "get-ffmpeg.sh: installing dpkg-dev (needed by apt-get source)" >&2
    $SUDO apt-get install -y -qq --no-install-recommends dpkg-dev >&2 ||
      die "could not install dpkg-dev"; }

list=/etc/apt/sources.list.d/visgen-src-$suite.sources
if ! apt-cache showsrc ffmpeg 2>/dev/null | grep -q "^Version: 7:$series\."; then
  if [ ! -f "$list" ]; then
    echo "get-ffmpeg.sh: adding deb-src for $suite in $list" >&2
    if [ "$suite" = bookworm ]; then suites="bookworm bookworm-updates"; sec="bookworm-security"
    else suites="trixie trixie-updates"; sec="trixie-security"; fi
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://deb.debian.org/debian-security\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$suites" "$sec" | $SUDO tee "$list" >/dev/null || die "cannot write $list"
  fi
  $SUDO apt-get update -qq >&2 || die "apt-get update failed"
fi

# Highest source version of the wanted series (apt would otherwise pick the
# newest across all suites).
ver=$(apt-cache showsrc ffmpeg 2>/dev/null | sed -n 's/^Version: //p' |
      grep "^7:$series\." | sort -V | tail -n 1)
[ -n "$ver" ] || die "no ffmpeg $series.x source package visible to apt (check $list and network)"

mkdir -p "$DEST"
tmp="$DEST/.fetch-$series"
rm -rf "$tmp"; mkdir -p "$tmp"
echo "get-ffmpeg.sh: apt-get source ffmpeg=$ver" >&2
( cd "$tmp" && apt-get source -qq "ffmpeg=$ver" >&2 ) || die "apt-get source ffmpeg=$ver failed"
src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | head -n 1)
[ -n "$src" ] && [ -f "$src/libavfilter/allfilters.c" ] ||
  die "apt-get source produced no FFmpeg tree in $tmp"
name=$(basename "$src")
rm -rf "${DEST:?}/$name"
mv "$src" "$DEST/$name"
mv "$tmp"/*.dsc "$tmp"/*.tar.* "$DEST/" 2>/dev/null || true
rm -rf "$tmp"
touch "$DEST/$name/.visgen-unpacked"
echo "$DEST/$name"
