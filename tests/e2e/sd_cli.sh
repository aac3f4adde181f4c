#!/bin/sh
# `visgen` Stable Diffusion subcommands against ../shared/data/diffusion refs
# (diffusers 0.27.2): forward unet / text / vae_encode / vae_decode within
# 1e-3 max relative error (max|a-b| / max|b|) for tiny-sd1 and tiny-sd2,
# tokenize ("a photo of a cat"), img2img (raw gbrpf32le in/out) >= 35 dB PSNR
# against tiny-sd2_trailing_{euler,dpmpp_karras}, VAE tiling (--vae_tile 64 stays >= 20 dB
# from the whole-frame picture), and error exits.
# Needs numpy and PIL in /usr/bin/python3. Run from the repo root after `make`.
set -eu
V=build/bin/visgen
D=../shared/data/diffusion
PY=/usr/bin/python3
[ -d "$D/refs" ] || { echo "sd_cli: $D missing" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

# safetensors reader/writer in numpy (no safetensors module needed)
cat > "$T/st.py" <<'PYEOF'
import json, struct, sys
import numpy as np
DT = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out
def save(p, d):
    hdr, off, blobs = {}, 0, []
    for k, a in d.items():
        a = np.ascontiguousarray(a)
        name = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        hdr[k] = {"dtype": name, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
def relerr(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())
PYEOF

check() { # name, python expression printing "ok"/"FAIL ..."
    r=$(cd "$T" && $PY -c "from st import *; $2") || r="FAIL (python error)"
    echo "sd_cli: $1: $r"
    case "$r" in ok*) ;; *) fail=1 ;; esac
}

for fam in tiny-sd1 tiny-sd2; do
    R=$D/refs/$fam
    $PY -c "import sys; sys.path.insert(0,'$T'); from st import *
u=load('$R''_unet.safetensors')
save('$T/u.safetensors', {'sample': u['sample'], 'timestep': u['timestep_500'], 'encoder_hidden_states': u['encoder_hidden_states']})
t=load('$R''_text.safetensors'); save('$T/t.safetensors', {'input_ids': t['input_ids']})
save('$T/e.safetensors', {'image': load('$R''_vaeenc.safetensors')['image']})
save('$T/d.safetensors', {'latent': load('$R''_vaedec.safetensors')['latent']})"
    $V forward $D/$fam unet "$T/u.safetensors" "$T/uo.safetensors" || fail=1
    check "$fam forward unet" "e=relerr(load('uo.safetensors')['out'], load('$PWD/$R''_unet.safetensors')['output_t500']); print('ok %.2e' % e if e <= 1e-3 else 'FAIL %.2e' % e)"
    $V forward $D/$fam text "$T/t.safetensors" "$T/to.safetensors" || fail=1
    check "$fam forward text" "e=relerr(load('to.safetensors')['hidden_states'], load('$PWD/$R''_text.safetensors')['last_hidden_state']); print('ok %.2e' % e if e <= 1e-3 else 'FAIL %.2e' % e)"
    $V forward $D/$fam vae_encode "$T/e.safetensors" "$T/eo.safetensors" || fail=1
    check "$fam forward vae_encode" "e=relerr(load('eo.safetensors')['latent_mean'], load('$PWD/$R''_vaeenc.safetensors')['output']); print('ok %.2e' % e if e <= 1e-3 else 'FAIL %.2e' % e)"
    $V forward $D/$fam vae_decode "$T/d.safetensors" "$T/do.safetensors" || fail=1
    check "$fam forward vae_decode" "e=relerr(load('do.safetensors')['image'], load('$PWD/$R''_vaedec.safetensors')['output']); print('ok %.2e' % e if e <= 1e-3 else 'FAIL %.2e' % e)"
done

ids=$($V tokenize --tokenizer ../shared/data/tokenizer/bpe_simple_vocab_16e6.txt.gz "a photo of a cat" | head -1 | cut -d' ' -f1-8)
if [ "$ids" = "49406 320 1125 539 320 2368 49407 49407" ]; then echo "sd_cli: tokenize: ok"
else echo "sd_cli: tokenize: FAIL ($ids)"; fail=1; fi

# img2img on the reference input: raw gbrpf32le (planes G, B, R)
$PY -c "import numpy as np; from PIL import Image
a=np.asarray(Image.open('$D/refs/input_kodim23_crop_120_160_248_288.png').convert('RGB'),dtype=np.float32)/255
np.stack([a[...,1],a[...,2],a[...,0]]).astype('<f4').tofile('$T/in.raw')"
for s in "euler 4 0.5 1 default" "dpm++2m 8 0.7 3 karras"; do
    set -- $s
    ref=$1; [ "$1" = "dpm++2m" ] && ref=dpmpp_karras
    t0=$(date +%s.%N)
    $V img2img $D/tiny-sd2 "$T/in.raw" "$T/out.raw" --in-size 128x128 --prompt "a photo of a cat" \
        --negative_prompt "" --sampler $1 --steps $2 --strength $3 --cfg $4 --schedule $5 \
        --seed 42 || fail=1
    t1=$(date +%s.%N)
    check "img2img tiny-sd2 trailing $ref ($(echo "$t1 - $t0" | bc) s)" "import numpy as np
o=np.fromfile('out.raw','<f4').reshape(3,128,128); o=np.stack([o[2],o[0],o[1]],-1)
r=np.load('$PWD/$D/refs/tiny-sd2_trailing_$ref.npy'); p=10*np.log10(1/np.mean((o-r)**2))
print(('ok %.2f dB' if p >= 35 else 'FAIL %.2f dB') % p)"
done

# errors: one message, non-zero exit, no crash
if $V img2img $D/tiny-sd2_original_layout_fp16.safetensors "$T/in.raw" "$T/o.raw" --in-size 128x128 2>"$T/err"; then
    echo "sd_cli: missing tokenizer: FAIL (exit 0)"; fail=1
elif grep -q "no tokenizer" "$T/err"; then echo "sd_cli: missing tokenizer: ok"
else echo "sd_cli: missing tokenizer: FAIL ($(cat "$T/err"))"; fail=1; fi
if $V img2img $D/tiny-sd2 "$T/in.raw" "$T/o.raw" --in-size 128x128 --strength 1.5 2>"$T/err"; then
    echo "sd_cli: strength 1.5: FAIL (exit 0)"; fail=1
elif grep -q "strength" "$T/err"; then echo "sd_cli: strength 1.5: ok"
else echo "sd_cli: strength 1.5: FAIL"; fail=1; fi
if $V img2img $D/tiny-sd2 "$T/in.raw" "$T/o.raw" --in-size 128x128 --vae_tile 60 2>"$T/err"; then
    echo "sd_cli: vae_tile 60: FAIL (exit 0)"; fail=1
elif grep -q "vae_tile 60" "$T/err"; then echo "sd_cli: vae_tile 60: ok"
else echo "sd_cli: vae_tile 60: FAIL ($(cat "$T/err"))"; fail=1; fi
# 64-pixel VAE tiles: runs, and stays near the whole-frame picture (random-weight VAE:
# per-tile GroupNorm statistics cost about 25 dB here, see check_pipeline)
set -- --in-size 128x128 --prompt "a photo of a cat" --sampler euler --steps 4 --strength 0.5 \
    --cfg 1 --seed 42
if $V img2img $D/tiny-sd2 "$T/in.raw" "$T/whole.raw" "$@" --vae_tile -1 &&
   $V img2img $D/tiny-sd2 "$T/in.raw" "$T/tiled.raw" "$@" --vae_tile 64; then
    check "img2img --vae_tile 64" "import numpy as np
a=np.fromfile('tiled.raw','<f4'); b=np.fromfile('whole.raw','<f4')
p=10*np.log10(1/np.mean((a-b)**2)) if len(a) == len(b) else 0
print(('ok %.2f dB vs whole' if p >= 20 else 'FAIL %.2f dB vs whole') % p)"
else echo "sd_cli: img2img --vae_tile 64: FAIL (exit)"; fail=1; fi
if $V forward $D/tiny-sd2 nope "$T/u.safetensors" "$T/x" 2>/dev/null; then
    echo "sd_cli: bad component: FAIL"; fail=1
else echo "sd_cli: bad component: ok"; fi
exit $fail
