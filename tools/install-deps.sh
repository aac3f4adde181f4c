#!/bin/sh
# Installs the Debian packages visgen needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt itself.
set -e
PKGS="build-essential pkg-config nasm clang libclang-rt-14-dev \
 libopenblas-dev check libcjson-dev libminizip-dev zlib1g-dev libx264-dev dpkg-dev \
 python3-torch python3-numpy python3-opencv python3-skimage opencv-doc valgrind texinfo rsync \
 libavformat-dev libavcodec-dev libswscale-dev libavutil-dev librsvg2-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
