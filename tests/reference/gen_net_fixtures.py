#!/usr/bin/python3
"""Writes tests/fixtures/nets/* for tests/check_nets.c (run from the repo root
with Debian's /usr/bin/python3, torch 1.13):

  srvgg_animev3_io.safetensors   output of the real realesr-animevideov3.pth on a 32x32 crop of
                                 kodim23
  rrdb_x4.safetensors / rrdb_x4.pth / rrdb_x4_old.pth   random RRDBNet x4 (nf 16, 2 blocks, gc 8),
                                 BasicSR layout, .pth {'params_ema': sd}, original ESRGAN layout
  rrdb_x4_io.safetensors         its output on a 16x16 crop of kodim23
  rrdb_x2.safetensors / rrdb_x2_io.safetensors   same for scale 2 (pixel_unshuffle input)
and build/reference/kodim23_crops.safetensors (not committed): the 24x24 and
16x16 crops gen_tfjs_ref.js feeds to TF.js.

The photo is third-party media and stays in ../shared/data: the *_io files
hold only the reference "output" [1, 3, H*s, W*s] float32 and, in their
metadata, where the input comes from: "input_image" (path below
../shared/data) and "input_crop" ("x,y,w,h" in pixels). The tests decode the
PNG at test time (tests/common/vgt_image.h: 8-bit RGB, v / 255 as float32)
and crop it; read_photo() and crop() below do the same, so both see the same
input bit for bit. Input tensors: [1, 3, h, w] float32, values 0..1.

Weights of the random nets are stored as F16 to keep each file < 300 KB; the
reference runs in float32 on exactly those rounded values.
"""
import json, os, struct, sys
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from realesrgan_arch import SRVGGNetCompact, RRDBNet, to_old_esrgan_layout

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(TOP, "..", "shared", "data")
OUT = os.path.join(TOP, "tests", "fixtures", "nets")
BUILD_OUT = os.path.join(TOP, "build", "reference")  # inputs for gen_tfjs_ref.js
PHOTO = "images/kodim23.png"  # below ../shared/data
CROP_SRVGG = (360, 180, 32, 32)  # x, y, w, h
CROP_RRDB = (200, 100, 16, 16)
CROP_TFJS = {"crop24": (360, 180, 24, 24), "crop16": (200, 100, 16, 16)}
DT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


def save_safetensors(path, tensors, meta=None):
    """safetensors by hand: u64 LE header size, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print("wrote %s (%d bytes)" % (os.path.relpath(path, TOP), os.path.getsize(path)))


def read_photo():
    """8-bit RGB [H, W, 3] uint8, as tests/common/vgt_image.h decodes it."""
    path = os.path.join(DATA, PHOTO)
    if not os.path.exists(path):
        sys.exit("cannot read %s" % path)
    im = Image.open(path)
    if im.mode != "RGB":  # 8-bit RGB only: anything else would not be v / 255 in the tests
        sys.exit("%s: mode %s, expected 8-bit RGB" % (path, im.mode))
    return np.asarray(im, dtype=np.uint8)


def crop(img, c):
    x, y, w, h = c
    a = img[y:y + h, x:x + w].astype(np.float32) / np.float32(255)  # float32 division, as the tests
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # [1, 3, h, w]


def input_meta(c):
    """Where the test finds the input: the metadata of an *_io file."""
    return {"input_image": PHOTO, "input_crop": ",".join(str(v) for v in c)}


def random_rrdb(scale, seed):
    torch.manual_seed(seed)
    net = RRDBNet(scale=scale, num_feat=16, num_block=2, num_grow_ch=8).eval()
    with torch.no_grad():
        for p in net.parameters():  # bigger than default init so the body matters
            p.copy_(torch.randn_like(p) * (0.5 / np.sqrt(p[0].numel())) if p.dim() > 1 else torch.randn_like(p) * 0.05)
            p.copy_(p.half().float())  # exactly representable in the F16 files
        net.conv_last.bias += 0.5  # output mid-grey, so 0..1 clamping keeps detail
        net.conv_last.bias.copy_(net.conv_last.bias.half().float())
    return net


def main():
    os.makedirs(OUT, exist_ok=True)
    img = read_photo()
    torch.set_num_threads(1)

    # Real SRVGGNetCompact.
    ck = torch.load(os.path.join(DATA, "models", "realesr-animevideov3.pth"), map_location="cpu")
    sd = ck.get("params_ema", ck.get("params"))
    nconv = (len(sd) - 3) // 3  # body.0 conv + prelu, nconv x (conv + prelu), last conv
    net = SRVGGNetCompact(num_feat=64, num_conv=nconv, upscale=4).eval()
    net.load_state_dict(sd)
    x = crop(img, CROP_SRVGG)
    with torch.no_grad():
        y = net(x)
    save_safetensors(os.path.join(OUT, "srvgg_animev3_io.safetensors"), {"output": y},
                     dict(model="realesr-animevideov3.pth", num_conv=str(nconv), **input_meta(CROP_SRVGG)))

    # Random RRDBNets.
    x16 = crop(img, CROP_RRDB)
    for scale, seed in ((4, 1), (2, 2)):
        net = random_rrdb(scale, seed)
        with torch.no_grad():
            y = net(x16)
        print("rrdb x%d output range %.3f..%.3f std %.3f" % (scale, y.min(), y.max(), y.std()))
        sd = {k: v.half() for k, v in net.state_dict().items()}
        save_safetensors(os.path.join(OUT, "rrdb_x%d.safetensors" % scale), sd)
        save_safetensors(os.path.join(OUT, "rrdb_x%d_io.safetensors" % scale), {"output": y},
                         input_meta(CROP_RRDB))
        if scale == 4:
            # "params" is an incomplete decoy: a loader must prefer params_ema.
            torch.save({"params": {"conv_first.weight": sd["conv_first.weight"] * 0}, "params_ema": sd},
                       os.path.join(OUT, "rrdb_x4.pth"))
            print("wrote rrdb_x4.pth (%d bytes)" % os.path.getsize(os.path.join(OUT, "rrdb_x4.pth")))
            torch.save(to_old_esrgan_layout(sd), os.path.join(OUT, "rrdb_x4_old.pth"))
            print("wrote rrdb_x4_old.pth (%d bytes)" % os.path.getsize(os.path.join(OUT, "rrdb_x4_old.pth")))

    # Not committed: the crops themselves, for gen_tfjs_ref.js (metadata: where each is from).
    os.makedirs(BUILD_OUT, exist_ok=True)
    save_safetensors(os.path.join(BUILD_OUT, "kodim23_crops.safetensors"),
                     {k: crop(img, c) for k, c in CROP_TFJS.items()},
                     {k: input_meta(c)["input_crop"] for k, c in CROP_TFJS.items()} | {"input_image": PHOTO})


if __name__ == "__main__":
    main()
