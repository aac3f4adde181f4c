#!/bin/sh
# ffmpeg-patches/ is in sync with filter/ (regenerating it changes nothing)
# and applies without fuzz to FFmpeg 5.1 (bookworm) and, when fetched with
# `tools/get-ffmpeg.sh --trixie`, to FFmpeg 7.1.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && printf '%s\n' "$2" | sed 's/^/    /'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

src51=$(sed -n 's/^FFMPEG_SOURCE *= *//p' "$TOP/config.mak" 2>/dev/null)
[ -n "$src51" ] || src51=$("$TOP/tools/get-ffmpeg.sh" 2>"$tmp/get.err" | tail -n 1)
if [ ! -f "$src51/libavfilter/allfilters.c" ]; then
  bad "patches: FFmpeg source tree" "$(cat "$tmp/get.err" 2>/dev/null)"
  echo "$pass passed, $((fail + 1)) failed"; exit 1
fi

if ! out=$("$TOP/tools/mkpatches.sh" "$src51" "$tmp/regen" 2>&1); then
  bad "patches: tools/mkpatches.sh failed" "$out"
elif d=$(diff -r "$TOP/ffmpeg-patches" "$tmp/regen" 2>&1); then
  ok "patches: ffmpeg-patches/ matches tools/mkpatches.sh output (filter/ in sync)"
else
  bad "patches: ffmpeg-patches/ is stale (filter/ changed?), run tools/mkpatches.sh" \
    "$(printf '%s\n' "$d" | head -n 20)"
fi

# Apply for real to a copy of the touched files so later patches see earlier ones.
check_tree() {
  tree=$1
  name=$(basename "$tree")
  rm -rf "$tmp/t" && mkdir -p "$tmp/t/libavfilter" "$tmp/t/doc"
  for f in configure libavfilter/Makefile libavfilter/allfilters.c doc/filters.texi; do
    cp "$tree/$f" "$tmp/t/$f"
  done
  log=""
  for p in "$TOP"/ffmpeg-patches/*.patch; do
    if ! r=$(patch -p1 -F0 -N --no-backup-if-mismatch -d "$tmp/t" < "$p" 2>&1); then
      log="$log$(basename "$p"): $r
"
    elif printf '%s' "$r" | grep -q "offset\|fuzz"; then
      log="$log$(basename "$p") applies only with: $(printf '%s' "$r" | grep "offset\|fuzz" | head -n 3)
"
    fi
  done
  # Offsets are expected between versions; only failures and fuzz count.
  if [ -z "$(printf '%s' "$log" | grep -v 'offset' )" ] &&
     grep -q '^visgen_filter_deps="libvisgen"' "$tmp/t/configure" &&
     grep -q 'ff_vf_visgen' "$tmp/t/libavfilter/allfilters.c" &&
     [ -f "$tmp/t/libavfilter/vf_visgen.c" ]; then
    ok "patches: series applies to $name without fuzz"
    if command -v makeinfo >/dev/null; then
      cp "$tree/doc/ffmpeg-filters.texi" "$tmp/t/doc/"
      if r=$(makeinfo --no-split -I "$tree/doc" -o "$tmp/f.info" "$tmp/t/doc/ffmpeg-filters.texi" 2>&1) &&
         grep -q "^[0-9.]* visgen$" "$tmp/f.info"; then
        ok "patches: doc/filters.texi of $name renders with the visgen section"
      else bad "patches: makeinfo on the patched doc/filters.texi of $name" "$r"; fi
    else
      echo "note: makeinfo (texinfo) not installed, visgen doc section not rendered"
    fi
  else
    bad "patches: series does not apply cleanly to $name" "$log"
  fi
}
check_tree "$src51"
for t in "$TOP"/build/src/ffmpeg-7.1.*; do
  [ -f "$t/.visgen-unpacked" ] && check_tree "$t"
done
[ -d "$(ls -d "$TOP"/build/src/ffmpeg-7.1.* 2>/dev/null | head -n 1)" ] ||
  echo "note: no FFmpeg 7.1 tree (tools/get-ffmpeg.sh --trixie), 7.1 not checked"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
