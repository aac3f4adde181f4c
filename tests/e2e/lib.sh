# Shared by the end-to-end scripts (sourced after they set TOP, FF and FP):
# pass/fail counting, a temporary folder removed on exit, ffmpeg/ffprobe
# wrappers and the "fails with a clear message" check. Each script ends with
#   echo "$pass passed, $fail failed"; [ "$fail" = 0 ]
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()  { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && printf '%s\n' "$2" | head -n 15 | sed 's/^/    /'; }
ff()  { "$FF" -nostdin -hide_banner -loglevel error -y "$@"; }
# Frames of a lavfi graph as CSV "key=value" lines, straight from the filter.
probe() { "$FP" -hide_banner -loglevel error -f lavfi -i "$1" -show_entries "frame=$2" -of compact=p=0; }
# expect_fail NAME PATTERN FFMPEG-ARGS...: ffmpeg must fail and say PATTERN.
expect_fail() {
  name=$1 pat=$2; shift 2
  if ff "$@" -f null - > "$tmp/err" 2>&1; then bad "$name: exit status 0"
  elif grep -q -i -- "$pat" "$tmp/err"; then ok "$name: fails with '$(grep -i -m1 -- "$pat" "$tmp/err" | cut -c1-100)'"
  else bad "$name: message lacks '$pat'" "$(cat "$tmp/err")"; fi
}
